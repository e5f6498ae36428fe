//! Signed-in scans: `--header` and `--cookie` go to the target's origin only, and what the site
//! reflects of them never reaches a report.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;

use buttress_audit::scan::{audit, Options, ScanError};
use buttress_audit::sign_in::SignIn;
use buttress_audit::{report, Verdict};

use crate::fixtures::*;

const COOKIE: &str = "sid-3f9a7c1e5b2d4a60";
const TOKEN: &str = "tok-8c1d2e3f4a5b6c7d";

fn signed_in() -> Options {
    let mut o = Options::new();
    o.sign_in = SignIn::new()
        .header_arg(&format!("Authorization: Bearer {TOKEN}"))
        .and_then(|s| s.cookie_arg(&format!("sid={COOKIE}")))
        .expect("valid sign-in");
    o
}

/// One line per request: `METHOD path authorization | cookie`.
fn seen_with_cookie(seen: &Seen, app: Router) -> Router {
    let seen = seen.clone();
    app.layer(axum::middleware::from_fn(
        move |req: Request, next: axum::middleware::Next| {
            let seen = seen.clone();
            async move {
                let line = {
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned()
                    };
                    format!(
                        "{} {} {} | {}",
                        req.method(),
                        req.uri().path(),
                        h("authorization"),
                        h("cookie")
                    )
                };
                seen.push(line);
                next.run(req).await
            }
        },
    ))
}

#[tokio::test]
async fn sign_in_fields_go_to_the_origin_given_only() {
    // The page the target redirects to: same host, another port, so another origin.
    let elsewhere_seen = Seen::default();
    let elsewhere = serve(seen_with_cookie(
        &elsewhere_seen,
        Router::new().route("/", get(|| async { Html("<a href=\"/next\">next</a>") })),
    ))
    .await;
    let target_seen = Seen::default();
    let to = elsewhere.clone();
    let target = serve(seen_with_cookie(
        &target_seen,
        Router::new().route("/", get(move || async move { Redirect::temporary(&to) })),
    ))
    .await;
    let r = audit(&target, &signed_in()).await.expect("scan");
    assert_eq!(r.final_url.as_deref(), Some(elsewhere.as_str()), "followed");
    assert_eq!(
        target_seen.lines(),
        vec![format!("GET / Bearer {TOKEN} | sid={COOKIE}")],
        "the origin given gets them"
    );
    let there = elsewhere_seen.lines();
    assert!(there.len() > 2, "{there:?}");
    assert!(
        there.iter().all(|l| l.ends_with(" - | -")),
        "never another origin: {there:?}"
    );
}

#[tokio::test]
async fn what_the_site_reflects_is_masked_in_every_report() {
    // A debug page that dumps the request's headers, as Werkzeug's and Django's do.
    let app = Router::new()
        .route("/", get(|| async { Html("<a href=\"/item?id=1\">item</a><form method=post><input name=q></form>") }))
        .fallback(|req: Request| async move {
            let dump: String = req
                .headers()
                .iter()
                .map(|(k, v)| format!("HTTP_{}={}\n", k.as_str().to_uppercase().replace('-', "_"), v.to_str().unwrap_or("")))
                .collect();
            (
                StatusCode::NOT_FOUND,
                Html(format!("Traceback (most recent call last):\n  File \"/srv/app.py\", line 3\nKeyError: 'x'\n{dump}")),
            )
                .into_response()
        });
    let seen = Seen::default();
    let url = serve(seen_with_cookie(&seen, app)).await;
    let r = audit(&url, &signed_in()).await.expect("scan");
    let leak = r.finding("AUD-LEAK-001").expect("finding");
    assert_eq!(leak.verdict, Verdict::Fail, "{leak:?}");
    assert!(
        seen.lines().iter().all(|l| l.contains(COOKIE)),
        "sent on every request"
    );
    for (format, out) in [
        ("table", report::table(&r, false)),
        ("json", report::json(&r)),
        ("sarif", report::sarif(&r)),
        ("html", report::html(&r)),
    ] {
        assert!(
            !out.contains(COOKIE) && !out.contains(TOKEN),
            "{format}: {out}"
        );
    }
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("signed in: Authorization, cookie sid")),
        "{:?}",
        r.notes
    );
}

#[tokio::test]
async fn url_credentials_and_an_authorization_header_conflict() {
    let url = serve(weak_app())
        .await
        .replacen("http://", "http://u:p@", 1);
    let e = audit(&url, &signed_in())
        .await
        .expect_err("two Authorization sources");
    assert!(
        matches!(&e, ScanError::BadSignIn(m) if m.contains("give one")),
        "{e}"
    );
}

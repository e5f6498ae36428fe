//! What the scanner must not do whatever the scanned server answers, and whatever the URL
//! holds: leak the URL's credentials, or send its active probes anywhere but the origin given.

use axum::response::{Html, Redirect};
use axum::routing::get;
use axum::Router;
use buttress_audit::report;
use buttress_audit::scan::{audit, scan, Options, ScanError};

use crate::fixtures::*;

#[tokio::test]
async fn url_credentials_go_to_their_origin_only_and_are_never_shown() {
    let https = Seen::default();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                Html("<a href=\"/next\">next</a><form method=post><input name=q></form>")
            }),
        )
        .route("/next", get(|| async { Html("next") }));
    let h = hardened_with("credentials", recorded(app, &https)).await;
    // The plain-HTTP probe goes to a listener of ours that records what it gets.
    let http = Seen::default();
    let listener = serve(recorded(
        Router::new().fallback(|| async { Redirect::permanent("https://localhost/") }),
        &http,
    ))
    .await;
    let mut opts = h.options();
    opts.http_port = Some(port_of(&listener));
    let url = h.url.replacen("https://", "https://scanner:s3cret@", 1);
    let r = audit(&url, &opts).await.expect("scan");

    let on_https = https.lines();
    assert!(
        on_https.iter().any(|l| l.starts_with("GET /next ")),
        "crawled: {on_https:?}"
    );
    assert!(
        on_https
            .iter()
            .all(|l| l.ends_with(" Basic c2Nhbm5lcjpzM2NyZXQ=")),
        "the origin given gets them: {on_https:?}"
    );
    assert_eq!(
        http.lines(),
        vec!["GET / -".to_owned()],
        "never over plain HTTP"
    );

    assert_eq!(r.target, h.url);
    assert!(
        r.notes.iter().any(|n| n.contains("user name and password")),
        "{:?}",
        r.notes
    );
    for (format, out) in [
        ("table", report::table(&r, false)),
        ("json", report::json(&r)),
        ("sarif", report::sarif(&r)),
        ("html", report::html(&r)),
    ] {
        assert!(
            !out.contains("s3cret") && !out.contains("scanner@") && !out.contains("scanner:"),
            "{format}: {out}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_rate_limit_path_off_the_origin_is_refused_before_any_request() {
    // The guard checked the page's host, but the burst went to page.join(PATH).
    let site = Seen::default();
    let url = serve(recorded(weak_app(), &site)).await;
    let victim = Seen::default();
    let victim_port = port_of(&serve(recorded(limited_app(), &victim)).await);
    for path in [
        format!("//127.0.0.1:{victim_port}/login"),
        format!("http://127.0.0.1:{victim_port}/login"),
        "https://victim.example/login".to_owned(),
    ] {
        let mut opts = Options::new();
        opts.rate_limit_path = Some(path.clone());
        let e = scan(&url, &opts).await.expect_err(&path);
        assert!(
            matches!(&e, ScanError::BadProbePath(m) if m.contains("off the scanned origin")),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("bad --probe-rate-limit path:"),
            "{e}"
        );
    }
    assert_eq!(site.lines(), Vec::<String>::new());
    assert_eq!(victim.lines(), Vec::<String>::new());
}

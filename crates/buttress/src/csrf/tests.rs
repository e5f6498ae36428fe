use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use http::Request;

use super::*;
use crate::proxy::{ProxyConfig, ProxyLayer};
use crate::secret::Keyring;
use crate::session::SessionLayer;

fn app(csrf: CsrfLayer) -> Router {
    Router::new()
        .route(
            "/form",
            get(|t: CsrfToken| async move { t.masked() }).post(|| async { "accepted" }),
        )
        .route(
            "/login",
            axum::routing::post(
                |s: Session| async move { s.set_user(Some("u")).await.map(|()| "in") },
            ),
        )
        .route("/hook", axum::routing::post(|| async { "hooked" }))
        .layer(csrf)
        .layer(SessionLayer::cookie(&Keyring::ephemeral()).secure(false))
        .layer(ProxyLayer::new(ProxyConfig::default()))
}

struct Reply {
    status: u16,
    body: String,
    cookie: Option<String>,
    vary: Option<String>,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let mut req = req;
    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(
        "127.0.0.1:9".parse().expect("addr"),
    ));
    let r = buttress_testkit::reply::oneshot(app.clone(), req).await;
    let cookie = r.cookie_pair();
    let vary = r.header("vary").map(str::to_owned);
    let status = r.status.as_u16();
    let body = r.body;
    let body = match res_problem_kind(&body) {
        Some(k) => k,
        None => body,
    };
    Reply {
        status,
        body,
        cookie,
        vary,
    }
}

fn res_problem_kind(body: &str) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(body).ok()?;
    doc["reason"].as_str().map(str::to_owned)
}

/// A fresh session: its cookie and a token.
async fn session(app: &Router) -> (String, String) {
    let r = send(
        app,
        Request::get("/form")
            .header("host", "example.org")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    (r.cookie.expect("session cookie"), r.body)
}

fn post(path: &str, cookie: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut b = Request::post(path)
        .header("host", "example.org")
        .header("cookie", cookie);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_owned())).expect("req")
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const SAME_ORIGIN: (&str, &str) = ("origin", "http://example.org");

#[tokio::test]
async fn token_in_form_or_header_with_same_origin_passes() {
    let app = app(CsrfLayer::new());
    let (cookie, token) = session(&app).await;
    let form = send(
        &app,
        post(
            "/form",
            &cookie,
            &[FORM, SAME_ORIGIN],
            &format!("name=x&csrf_token={token}"),
        ),
    )
    .await;
    assert_eq!((form.status, form.body.as_str()), (200, "accepted"));
    assert_eq!(form.vary.as_deref(), Some("Origin, Sec-Fetch-Site"));
    for h in HEADERS {
        let r = send(
            &app,
            post(
                "/form",
                &cookie,
                &[(h, &token), ("sec-fetch-site", "same-origin")],
                "",
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{h}");
    }
}

#[tokio::test]
async fn origin_attacks_are_refused_even_with_a_valid_token() {
    let app = app(CsrfLayer::new());
    let (cookie, token) = session(&app).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("sec-fetch-site", "cross-site"), SAME_ORIGIN],
            "cross-site",
        ),
        (&[("sec-fetch-site", "same-site")], "same-site"),
        (&[("origin", "http://evil.test")], "origin-mismatch"),
        (&[("origin", "null")], "origin-mismatch"),
        (&[("origin", "https://example.org")], "origin-mismatch"),
        (&[("referer", "http://evil.test/page")], "origin-mismatch"),
        (&[], "no-origin"),
    ];
    for (headers, reason) in cases {
        let mut h = headers.to_vec();
        h.push(("x-csrf-token", &token));
        let r = send(&app, post("/form", &cookie, &h, "")).await;
        assert_eq!((r.status, r.body.as_str()), (403, *reason), "{headers:?}");
    }
    let ok = send(
        &app,
        post(
            "/form",
            &cookie,
            &[
                ("referer", "http://example.org/form"),
                ("x-csrf-token", &token),
            ],
            "",
        ),
    )
    .await;
    assert_eq!(ok.status, 200, "same-origin Referer is the fallback");
}

#[tokio::test]
async fn token_attacks_are_refused() {
    let app = app(CsrfLayer::new());
    let (cookie, token) = session(&app).await;
    let (other_cookie, other_token) = session(&app).await;
    let missing = send(&app, post("/form", &cookie, &[FORM, SAME_ORIGIN], "name=x")).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (403, "missing-token")
    );
    let foreign = send(
        &app,
        post(
            "/form",
            &cookie,
            &[SAME_ORIGIN, ("x-csrf-token", &other_token)],
            "",
        ),
    )
    .await;
    assert_eq!(
        (foreign.status, foreign.body.as_str()),
        (403, "bad-token"),
        "a token from another session"
    );
    let no_session = send(
        &app,
        post("/form", "x=y", &[SAME_ORIGIN, ("x-csrf-token", &token)], ""),
    )
    .await;
    assert_eq!(
        (no_session.status, no_session.body.as_str()),
        (403, "bad-token")
    );
    let garbage = send(
        &app,
        post(
            "/form",
            &other_cookie,
            &[SAME_ORIGIN, ("x-csrf-token", "%%%")],
            "",
        ),
    )
    .await;
    assert_eq!(garbage.body, "bad-token");
}

#[tokio::test]
async fn login_rotates_the_token() {
    let app = app(CsrfLayer::new());
    let (cookie, token) = session(&app).await;
    let login = send(
        &app,
        post(
            "/login",
            &cookie,
            &[SAME_ORIGIN, ("x-csrf-token", &token)],
            "",
        ),
    )
    .await;
    assert_eq!(
        login.status, 200,
        "login CSRF covered: the pre-login session carried a token"
    );
    let new_cookie = login.cookie.expect("rotated session");
    let replay = send(
        &app,
        post(
            "/form",
            &new_cookie,
            &[SAME_ORIGIN, ("x-csrf-token", &token)],
            "",
        ),
    )
    .await;
    assert_eq!(
        (replay.status, replay.body.as_str()),
        (403, "bad-token"),
        "the old token after rotation"
    );
}

#[tokio::test]
async fn exemptions_trusted_origins_and_same_site_option() {
    let app = app(CsrfLayer::new()
        .exempt("/hook")
        .trust_origin("https://admin.example.org".parse().expect("origin"))
        .allow_same_site(true));
    let hook = send(
        &app,
        Request::post("/hook")
            .header("host", "example.org")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(hook.status, 200);
    let (cookie, token) = session(&app).await;
    let trusted = send(
        &app,
        post(
            "/form",
            &cookie,
            &[
                ("origin", "https://admin.example.org:443"),
                ("x-csrf-token", &token),
            ],
            "",
        ),
    )
    .await;
    assert_eq!(trusted.status, 200);
    let sibling = send(
        &app,
        post(
            "/form",
            &cookie,
            &[("sec-fetch-site", "same-site"), ("x-csrf-token", &token)],
            "",
        ),
    )
    .await;
    assert_eq!(sibling.status, 200);
    let sibling_no_token = send(
        &app,
        post("/form", &cookie, &[("sec-fetch-site", "same-site")], ""),
    )
    .await;
    assert_eq!(sibling_no_token.status, 403);
}

#[test]
fn origins_compare_as_scheme_host_port() {
    let own = RequestOrigin {
        scheme: crate::proxy::Scheme::Https,
        host: "example.org".into(),
    };
    let config = Config::default();
    let verdict = |origin: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, origin.parse().expect("header"));
        origin_verdict(&config, &headers, Some(&own))
    };
    for same in ["HTTPS://Example.org:443/", "https://example.org"] {
        assert_eq!(verdict(same), Ok(()), "{same}");
    }
    for other in [
        "http://example.org",
        "https://example.org:8443",
        "https://example.org.evil.test",
        "null",
        "https://example.org/path",
    ] {
        assert_eq!(
            verdict(other),
            Err(CsrfRejection::OriginMismatch),
            "{other}"
        );
    }
    assert_eq!(
        form_urlencoded_field(b"a=1&csrf_token=abc&b=2", "csrf_token").as_deref(),
        Some("abc")
    );
}

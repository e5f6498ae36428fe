//! Sessions and CSRF through the whole stack, as a browser and an attacker meet them.

use axum::body::Body;
use axum::http::Request;

use crate::support::*;

const HTTPS: (&str, &str) = ("x-forwarded-proto", "https");

fn cookie_pair(r: &Reply) -> String {
    r.header("set-cookie")
        .expect("set-cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

fn post(path: &str, cookie: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(path)
        .header("host", "example.org")
        .header("cookie", cookie);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).expect("req")
}

#[tokio::test]
async fn production_cookie_is_host_prefixed_and_hardened() {
    let app = app(&production(&[]));
    let r = send(&app, "127.0.0.1:1", get_req("/form", &[HTTPS])).await;
    assert_eq!(r.status, 200);
    let set = r.header("set-cookie").expect("session cookie");
    for attr in [
        "__Host-session=",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn cross_site_post_is_a_rendered_403_with_every_header() {
    let app = app(&production(&[]));
    let form = send(&app, "127.0.0.1:1", get_req("/form", &[HTTPS])).await;
    let cookie = cookie_pair(&form);
    let token = form.body.clone();
    let attack = send(
        &app,
        "127.0.0.1:1",
        post(
            "/form",
            &cookie,
            &[
                HTTPS,
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.test"),
                ("x-csrf-token", &token),
                ("accept", "application/json"),
            ],
        ),
    )
    .await;
    assert_eq!(attack.status, 403);
    assert_eq!(
        attack.header("content-type"),
        Some("application/problem+json")
    );
    let doc: serde_json::Value = serde_json::from_str(&attack.body).expect("json");
    assert_eq!(doc["reason"], "cross-site");
    assert!(!attack.body.contains(&token), "the token is never echoed");
    assert_secure_headers(&attack, "csrf 403");
    assert!(attack
        .header("vary")
        .is_some_and(|v| v.contains("Sec-Fetch-Site")));

    let ok = send(
        &app,
        "127.0.0.1:1",
        post(
            "/form",
            &cookie,
            &[
                HTTPS,
                ("origin", "https://example.org"),
                ("x-csrf-token", &token),
            ],
        ),
    )
    .await;
    assert_eq!((ok.status.as_u16(), ok.body.as_str()), (200, "accepted"));
}

#[tokio::test]
async fn login_rotates_session_and_token_through_the_stack() {
    let app = app(&production(&[]));
    let form = send(&app, "127.0.0.1:1", get_req("/form", &[HTTPS])).await;
    let pre = cookie_pair(&form);
    let token = form.body.clone();
    let login = send(
        &app,
        "127.0.0.1:1",
        post(
            "/login",
            &pre,
            &[
                HTTPS,
                ("origin", "https://example.org"),
                ("x-csrf-token", &token),
            ],
        ),
    )
    .await;
    assert_eq!(login.status, 200);
    let post_login = cookie_pair(&login);
    assert_ne!(pre, post_login, "new session on login");
    let replay = send(
        &app,
        "127.0.0.1:1",
        post(
            "/form",
            &post_login,
            &[
                HTTPS,
                ("origin", "https://example.org"),
                ("x-csrf-token", &token),
                ("accept", "application/json"),
            ],
        ),
    )
    .await;
    assert_eq!(replay.status, 403, "the pre-login token no longer works");
    assert!(replay.body.contains("bad-token"), "{}", replay.body);
}

#[tokio::test]
async fn development_over_plain_http_drops_prefix_and_secure() {
    let app = app(&settings(&[]));
    let r = send(&app, "127.0.0.1:1", get_req("/form", &[])).await;
    let set = r.header("set-cookie").expect("cookie");
    assert!(
        set.starts_with("session=") && !set.contains("Secure"),
        "{set}"
    );
}

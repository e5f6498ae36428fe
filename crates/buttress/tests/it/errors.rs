//! Safe error pages: no internals in Production, debug detail only to loopback in Development.

use axum::body::Body;
use axum::http::Request;

use crate::support::*;

const HTTPS: (&str, &str) = ("x-forwarded-proto", "https");

#[tokio::test]
async fn panic_leaks_nothing_in_production() {
    let app = app(&production(&[]));
    for accept in ["text/html", "application/json"] {
        let r = send(
            &app,
            "127.0.0.1:1",
            get_req("/panic", &[HTTPS, ("accept", accept)]),
        )
        .await;
        assert_eq!(r.status, 500);
        assert!(!r.body.contains("secret-db-password"), "{}", r.body);
        assert!(!r.body.contains("panic"), "{}", r.body);
        let id = r.header("x-request-id").expect("request id");
        assert!(
            r.body.contains(id),
            "the page shows the request id: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn handler_internals_are_scrubbed_in_production() {
    let app = app(&production(&[]));
    for path in ["/leak", "/bad-input"] {
        let r = send(
            &app,
            "127.0.0.1:1",
            get_req(path, &[HTTPS, ("accept", "application/json")]),
        )
        .await;
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        for secret in ["SQL", "SELECT", "/srv/app", ".rs"] {
            assert!(!r.body.contains(secret), "{path}: {}", r.body);
        }
        let doc: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(doc["status"], r.status.as_u16());
    }
}

#[tokio::test]
async fn debug_detail_only_for_loopback_in_development() {
    let dev = app(&settings(&[("BUTTRESS_TRUSTED_PROXIES", "127.0.0.1")]));
    let local_req = |path: &str, host: &str, extra: &[(&str, &str)]| {
        let mut b = Request::builder().uri(path).header("host", host);
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).expect("request")
    };
    let local = send(
        &dev,
        "127.0.0.1:1",
        local_req("/panic", "localhost:8000", &[]),
    )
    .await;
    assert_eq!(local.status, 500);
    assert!(
        local.body.contains("secret-db-password"),
        "loopback developer sees the panic: {}",
        local.body
    );
    let leak = send(
        &dev,
        "127.0.0.1:1",
        local_req("/leak", "127.0.0.1:8000", &[]),
    )
    .await;
    assert!(leak.body.contains("SQL error"), "{}", leak.body);
    // A page on another site rebound to 127.0.0.1 (DNS rebinding) arrives under its own name.
    let rebound = send(
        &dev,
        "127.0.0.1:1",
        local_req("/panic", "evil.test:8000", &[]),
    )
    .await;
    assert_eq!(rebound.status, 500);
    assert!(
        !rebound.body.contains("secret-db-password"),
        "{}",
        rebound.body
    );
    // A tunnel or local proxy that is not a trusted one (ngrok, ssh -R) connects from loopback
    // but says it relays: no detail either.
    let untrusted = app(&settings(&[]));
    for relay in [("x-forwarded-for", "198.51.100.7"), ("via", "1.1 tunnel")] {
        let r = send(
            &untrusted,
            "127.0.0.1:1",
            local_req("/panic", "localhost", &[relay]),
        )
        .await;
        assert!(
            !r.body.contains("secret-db-password"),
            "{relay:?}: {}",
            r.body
        );
    }
    // A remote client behind a trusted local proxy must not see it, even in Development.
    let remote = send(
        &dev,
        "127.0.0.1:1",
        get_req("/panic", &[("x-forwarded-for", "198.51.100.7")]),
    )
    .await;
    assert!(
        !remote.body.contains("secret-db-password"),
        "{}",
        remote.body
    );
    // Debug off in Development: nothing.
    let quiet = app(&settings(&[("BUTTRESS_DEBUG", "false")]));
    let r = send(&quiet, "127.0.0.1:1", local_req("/panic", "localhost", &[])).await;
    assert!(!r.body.contains("secret-db-password"));
}

#[tokio::test]
async fn html_or_problem_json_by_accept() {
    let app = app(&settings(&[]));
    let html = send(
        &app,
        "127.0.0.1:1",
        get_req("/missing", &[("accept", "text/html,*/*;q=0.8")]),
    )
    .await;
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        html.body.contains("<h1>404 Not Found</h1>"),
        "{}",
        html.body
    );
    let nonce_in_csp = html
        .header("content-security-policy")
        .expect("csp")
        .contains(&format!(
            "'nonce-{}'",
            html.body
                .split("nonce=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("styled with the nonce")
        ));
    assert!(
        nonce_in_csp,
        "the error page's style carries the response's nonce"
    );
    let json = send(
        &app,
        "127.0.0.1:1",
        get_req("/missing", &[("accept", "application/json")]),
    )
    .await;
    assert_eq!(
        json.header("content-type"),
        Some("application/problem+json")
    );
    let doc: serde_json::Value = serde_json::from_str(&json.body).expect("json");
    assert_eq!(doc["status"], 404);
    assert_eq!(doc["request_id"], json.header("x-request-id").expect("id"));
}

#[tokio::test]
async fn problems_and_kept_bodies_pass_through() {
    let app = app(&production(&[]));
    let p = send(
        &app,
        "127.0.0.1:1",
        get_req("/problem", &[HTTPS, ("accept", "application/json")]),
    )
    .await;
    assert_eq!(p.status, 409);
    let doc: serde_json::Value = serde_json::from_str(&p.body).expect("json");
    assert_eq!(doc["detail"], "That name is taken.");
    assert_eq!(doc["type"], "urn:buttress:taken");
    let html = send(&app, "127.0.0.1:1", get_req("/problem", &[HTTPS])).await;
    assert!(html.body.contains("That name is taken."));
    let keep = send(&app, "127.0.0.1:1", get_req("/keep", &[HTTPS])).await;
    assert_eq!(keep.status, 422);
    assert_eq!(keep.body, "<p>Please fix the form</p>");
}

#[tokio::test]
async fn client_cannot_choose_the_request_id() {
    let app = app(&settings(&[]));
    let r = send(
        &app,
        "127.0.0.1:1",
        get_req(
            "/missing",
            &[
                ("x-request-id", "forged-id"),
                ("accept", "application/json"),
            ],
        ),
    )
    .await;
    let id = r.header("x-request-id").expect("id");
    assert_ne!(id, "forged-id");
    assert!(!r.body.contains("forged-id"));
}

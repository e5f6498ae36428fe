//! HTTPS enforcement: redirects, exemptions, canonical host, no loop behind a trusted proxy.

use axum::body::Body;
use axum::http::Request;

use crate::support::*;

#[tokio::test]
async fn plain_requests_are_redirected() {
    let app = app(&production(&[]));
    let get = send(&app, "127.0.0.1:1", get_req("/a/b?c=d", &[])).await;
    assert_eq!(get.status, 301);
    assert_eq!(get.header("location"), Some("https://example.org/a/b?c=d"));
    let post = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "example.org")
        .body(Body::from("x"))
        .expect("req");
    let post = send(&app, "127.0.0.1:1", post).await;
    assert_eq!(post.status, 308, "non-GET keeps method and body");
    let head = Request::builder()
        .method("HEAD")
        .uri("/")
        .header("host", "example.org")
        .body(Body::empty())
        .expect("req");
    assert_eq!(send(&app, "127.0.0.1:1", head).await.status, 301);
}

#[tokio::test]
async fn no_loop_behind_trusted_proxy_and_health_exempt() {
    let app = app(&production(&[]));
    let r = send(
        &app,
        "127.0.0.1:1",
        get_req("/", &[("x-forwarded-proto", "https")]),
    )
    .await;
    assert_eq!(r.status, 200);
    let h = send(&app, "127.0.0.1:1", get_req("/healthz", &[])).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body, "ok");
}

#[tokio::test]
async fn canonical_host_and_port() {
    let app = app(&production(&[
        ("BUTTRESS_CANONICAL_HOST", "www.example.org"),
        ("BUTTRESS_HTTPS_PORT", "8443"),
    ]));
    let r = send(&app, "127.0.0.1:1", get_req("/x", &[])).await;
    assert_eq!(r.header("location"), Some("https://www.example.org:8443/x"));
}

#[tokio::test]
async fn host_header_cannot_steer_redirects_to_other_sites() {
    let app = app(&production(&[]));
    let mut req = get_req("/", &[]);
    req.headers_mut()
        .insert("host", "evil.test".parse().expect("v"));
    let r = send(&app, "127.0.0.1:1", req).await;
    assert_eq!(r.status, 400, "host not allowed");
    assert_eq!(r.header("location"), None);
}

#[tokio::test]
async fn development_over_plain_http_is_not_redirected() {
    let r = send(&app(&settings(&[])), "127.0.0.1:1", get_req("/", &[])).await;
    assert_eq!(r.status, 200);
}

/// RFC 7239 §6.3: a proxy may hide the client (`for=_hidden`, `for=unknown`) or leave `for=`
/// out; its `proto=https` still says the request came over HTTPS, so no redirect loop.
#[tokio::test]
async fn no_loop_behind_a_forwarded_proxy_that_hides_the_client() {
    let app = app(&production(&[("BUTTRESS_PROXY_HEADER", "forwarded")]));
    for forwarded in [
        "for=_hidden;proto=https",
        "for=unknown;proto=https;host=example.org",
        "proto=https;host=example.org",
    ] {
        let r = send(
            &app,
            "127.0.0.1:1",
            get_req("/", &[("forwarded", forwarded)]),
        )
        .await;
        assert_eq!(r.status, 200, "{forwarded}: {:?}", r.header("location"));
    }
    let plain = send(
        &app,
        "127.0.0.1:1",
        get_req("/", &[("forwarded", "for=_hidden;proto=http")]),
    )
    .await;
    assert_eq!(plain.status, 301);
}

/// An empty host part (`Host: :80`) would build `https:///path`, which a browser reads with the
/// path's first segment as the host: an open redirect. It is a 400 instead, with or without
/// allowed hosts, and so is HttpsRedirectLayer used alone on a request without a host.
#[tokio::test]
async fn an_empty_host_is_never_redirected_to() {
    let app = app(&settings(&[("BUTTRESS_HTTPS_REDIRECT", "true")]));
    let mut req = get_req("/evil.test/x", &[]);
    req.headers_mut().insert("host", ":80".parse().expect("v"));
    let r = send(&app, "127.0.0.1:1", req).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("location"), None);

    use tower::ServiceExt as _;
    let alone = axum::Router::new()
        .route("/{*rest}", axum::routing::get(|| async { "x" }))
        .layer(buttress::https::HttpsRedirectLayer::new());
    let req = Request::builder()
        .uri("/evil.test/x")
        .body(Body::empty())
        .expect("req");
    let res = alone.oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), 400);
    assert!(
        res.headers().get("location").is_none(),
        "{:?}",
        res.headers()
    );
}

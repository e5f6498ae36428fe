//! `examples/behind_proxy.rs`: Production behind a TLS-terminating proxy on loopback. The
//! client comes from `X-Forwarded-For` sent by the trusted proxy only, a foreign `Host` is
//! refused, plain HTTP goes to the canonical host over HTTPS, HSTS only on HTTPS.

use axum::body::Body;
use axum::http::Request;
use buttress::settings::Settings;

use super::{client, reply, serve};
use crate::support::{assert_secure_headers, send, settings, Reply, STRONG_KEY};

#[path = "../../../examples/behind_proxy.rs"]
#[allow(dead_code)] // `main`: reads the environment, serves, waits for Ctrl-C.
mod example;

const HOST: &str = "donors.example.org";

/// The example's deployment, with the test itself as the proxy (on loopback), less the
/// variables named in `without`.
fn deployment(without: &[&str]) -> Settings {
    let vars = [
        ("BUTTRESS_ENV", "production"),
        ("SECRET_KEY", STRONG_KEY),
        ("BUTTRESS_BEHIND_PROXY", "true"),
        ("BUTTRESS_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("BUTTRESS_ALLOWED_HOSTS", HOST),
        ("BUTTRESS_CANONICAL_HOST", HOST),
        ("BUTTRESS_BIND", "127.0.0.1:0"),
    ];
    let vars: Vec<_> = vars
        .into_iter()
        .filter(|(k, _)| !without.contains(k))
        .collect();
    settings(&vars)
}

/// What the proxy sends for a client: `Host`, the chain it appended to, the scheme.
async fn through_proxy(base: &str, path: &str, host: &str, xff: &str, proto: &str) -> Reply {
    let res = client()
        .get(format!("{base}{path}"))
        .header("host", host)
        .header("x-forwarded-for", xff)
        .header("x-forwarded-proto", proto)
        .send()
        .await
        .expect("request through the proxy");
    reply(res).await
}

#[tokio::test]
async fn behind_proxy_resolves_the_client_and_refuses_a_foreign_host() {
    let s = deployment(&[]);
    let server = serve(example::app(&s).expect("a complete deployment starts"), &s).await;
    let base = format!("http://{}", server.local_addr());

    // The client wrote 10.6.6.6 itself; the proxy appended the address it saw.
    let page = through_proxy(&base, "/", HOST, "10.6.6.6, 203.0.113.9", "https").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body, format!("client 203.0.113.9 on https://{HOST}\n"));
    assert_secure_headers(&page, "behind proxy /");
    assert!(
        page.header("strict-transport-security")
            .is_some_and(|h| h.starts_with("max-age=31536000")),
        "HSTS on HTTPS"
    );

    let forged = through_proxy(&base, "/", "evil.example", "203.0.113.9", "https").await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert_secure_headers(&forged, "foreign host");
    assert!(!forged.body.contains("evil.example"), "{}", forged.body);
    server.shutdown().await;
}

#[tokio::test]
async fn behind_proxy_redirects_plain_http_to_the_canonical_host() {
    let s = deployment(&[]);
    let server = serve(example::app(&s).expect("starts"), &s).await;
    let base = format!("http://{}", server.local_addr());

    let plain = through_proxy(&base, "/a?b=c", HOST, "203.0.113.9", "http").await;
    assert_eq!(plain.status, 301);
    assert_eq!(
        plain.header("location"),
        Some(format!("https://{HOST}/a?b=c").as_str())
    );
    assert!(
        plain.header("strict-transport-security").is_none(),
        "not on HTTP"
    );

    let health = through_proxy(&base, "/healthz", HOST, "10.0.0.2", "http").await;
    assert_eq!((health.status.as_u16(), health.body.as_str()), (200, "ok"));
    server.shutdown().await;
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = example::app(&deployment(&[])).expect("starts");
    let req = Request::get("/")
        .header("host", HOST)
        .header("x-forwarded-for", "10.6.6.6")
        .header("x-forwarded-proto", "https")
        .body(Body::empty())
        .expect("request");
    // A client reaching the app directly, around the proxy.
    let r = send(&app, "198.51.100.20:40000", req).await;
    assert_eq!(r.status, 301, "its own plain HTTP counts: {}", r.body);

    let req = Request::get("/")
        .header("host", HOST)
        .header("x-forwarded-for", "10.6.6.6, 198.51.100.20")
        .header("x-forwarded-proto", "https")
        .body(Body::empty())
        .expect("request");
    let via_proxy = send(&app, "127.0.0.1:40000", req).await;
    assert_eq!(
        via_proxy.body,
        format!("client 198.51.100.20 on https://{HOST}\n")
    );
}

#[test]
fn behind_proxy_refuses_to_start_without_a_trusted_proxy() {
    let s = deployment(&["BUTTRESS_TRUSTED_PROXIES"]);
    let err = example::app(&s).expect_err("forwarded headers would be unusable");
    assert!(
        err.to_string().contains("BUTTRESS_TRUSTED_PROXIES"),
        "{err}"
    );
}

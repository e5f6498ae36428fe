//! One table of scenarios, run through the fused [`Stack`] and through the same protections
//! put together from the per-concern layers: both must answer each case alike (the layers are
//! thin wrappers over the functions the stack calls).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use buttress::csrf::CsrfLayer;
use buttress::errors::{catch_panic_layer, ErrorPagesLayer};
use buttress::headers::SecureHeadersLayer;
use buttress::https::HttpsRedirectLayer;
use buttress::proxy::{ClientIp, ProxyConfig, ProxyLayer};
use buttress::request_id::RequestIdLayer;
use buttress::settings::Settings;
use buttress::timeout::RequestTimeoutLayer;
use buttress::Buttress;

use crate::support::{production, send, Reply};

/// Production behind a trusted proxy on loopback, a small global limit, body limit and deadline.
fn scenario_settings() -> Settings {
    production(&[
        ("BUTTRESS_RATELIMIT_DEFAULT", "3 per minute"),
        ("BUTTRESS_BODY_LIMIT", "1KiB"),
        ("BUTTRESS_REQUEST_TIMEOUT", "200ms"),
        ("BUTTRESS_ALLOWED_HOSTS", "example.org"),
    ])
}

fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route(
            "/ip",
            get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("secret internals at /srv/app.rs:42");
                }
                "unreachable"
            }),
        )
        .route(
            "/own-frame",
            get(|| async { ([("x-frame-options", "SAMEORIGIN")], "framed") }),
        )
        .route("/form", post(|| async { "posted" }))
}

/// The fused stack.
fn fused() -> buttress::stack::Stack {
    Buttress::from_settings(&scenario_settings())
        .expect("stack")
        .apply(routes())
        .expect("stack")
}

/// The same protections from the per-concern layers, in the stack's order (outermost last).
fn layered() -> Router {
    use axum::extract::DefaultBodyLimit;
    use tower_http::limit::RequestBodyLimitLayer;
    let settings = scenario_settings();
    let b = Buttress::from_settings(&settings).expect("stack");
    let hosts = ["example.org".parse().expect("host")];
    let proxy = ProxyConfig::default()
        .trust("127.0.0.1/32".parse().expect("cidr"))
        .allowed_hosts(hosts);
    routes()
        .layer(CsrfLayer::new())
        .layer(b.session_layer())
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(RequestBodyLimitLayer::new(settings.body_limit))
        .layer(RequestTimeoutLayer::new(settings.request_timeout))
        .layer(b.rate_limiter().expect("global limit").clone())
        .layer(HttpsRedirectLayer::new())
        .layer(catch_panic_layer())
        .layer(ProxyLayer::new(proxy))
        .layer(SecureHeadersLayer::new())
        .layer(ErrorPagesLayer::new(false))
        .layer(RequestIdLayer)
}

/// A request as the trusted proxy (127.0.0.1) forwards it: HTTPS, for `example.org`.
fn via_proxy(method: &str, path: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example.org")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "203.0.113.50");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).expect("request")
}

struct Case {
    name: &'static str,
    /// Requests sent before the one checked (same peer), e.g. to spend a limit.
    before: usize,
    peer: &'static str,
    request: fn() -> Request<Body>,
    status: u16,
    check: fn(&Reply) -> Result<(), String>,
}

fn has(r: &Reply, name: &str, want: &str) -> Result<(), String> {
    match r.header(name) {
        Some(v) if v == want => Ok(()),
        other => Err(format!("{name}: {other:?}, want {want:?}")),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "forged Host",
            before: 0,
            peer: "127.0.0.1:5000",
            request: || {
                let mut r = via_proxy("GET", "/", &[]);
                r.headers_mut()
                    .insert("host", "evil.test".parse().expect("v"));
                r
            },
            status: 400,
            check: |r| has(r, "x-frame-options", "DENY"),
        },
        Case {
            name: "spoofed X-Forwarded-For through the proxy",
            before: 0,
            peer: "127.0.0.1:5000",
            request: || {
                let mut r = via_proxy("GET", "/ip", &[]);
                r.headers_mut().insert(
                    "x-forwarded-for",
                    "1.2.3.4, 198.51.100.7".parse().expect("v"),
                );
                r
            },
            status: 200,
            check: |r| {
                (r.body == "198.51.100.7")
                    .then_some(())
                    .ok_or(format!("client {:?}", r.body))
            },
        },
        Case {
            name: "plain HTTP in Production, and a client's own forwarding headers",
            before: 0,
            peer: "192.0.2.9:5000",
            request: || via_proxy("GET", "/page?x=1", &[]),
            status: 301,
            check: |r| {
                has(r, "location", "https://example.org/page?x=1")?;
                r.header("strict-transport-security")
                    .is_none()
                    .then_some(())
                    .ok_or("HSTS on a plain response".into())
            },
        },
        Case {
            name: "429 past the global limit",
            before: 3,
            peer: "127.0.0.1:5000",
            request: || via_proxy("GET", "/", &[]),
            status: 429,
            check: |r| {
                r.header("retry-after").ok_or("no Retry-After")?;
                r.header("ratelimit").ok_or("no RateLimit")?;
                has(r, "x-content-type-options", "nosniff")
            },
        },
        Case {
            name: "413 for a declared body over the limit",
            before: 0,
            peer: "127.0.0.1:5000",
            request: || via_proxy("POST", "/form", &[("content-length", "5000")]),
            status: 413,
            check: |r| has(r, "x-frame-options", "DENY"),
        },
        Case {
            name: "408 past the deadline",
            before: 0,
            peer: "127.0.0.1:5000",
            request: || via_proxy("GET", "/slow", &[]),
            status: 408,
            check: |r| {
                (!r.body.contains("late"))
                    .then_some(())
                    .ok_or("the late answer".into())
            },
        },
        Case {
            name: "cross-site POST",
            before: 0,
            peer: "127.0.0.1:5000",
            request: || {
                via_proxy(
                    "POST",
                    "/form",
                    &[
                        ("sec-fetch-site", "cross-site"),
                        ("origin", "https://evil.example"),
                    ],
                )
            },
            status: 403,
            check: |r| {
                r.body
                    .contains("cross-site")
                    .then_some(())
                    .ok_or(format!("reason missing: {}", r.body))
            },
        },
        Case {
            name: "panic",
            before: 0,
            peer: "127.0.0.1:5000",
            request: || via_proxy("GET", "/panic", &[]),
            status: 500,
            check: |r| {
                (!r.body.contains("secret internals"))
                    .then_some(())
                    .ok_or(format!("leaked: {}", r.body))?;
                has(r, "x-frame-options", "DENY")
            },
        },
        Case {
            name: "a header the handler set wins",
            before: 0,
            peer: "127.0.0.1:5000",
            request: || via_proxy("GET", "/own-frame", &[]),
            status: 200,
            check: |r| has(r, "x-frame-options", "SAMEORIGIN"),
        },
        Case {
            name: "HSTS on HTTPS",
            before: 0,
            peer: "127.0.0.1:5000",
            request: || via_proxy("GET", "/", &[]),
            status: 200,
            check: |r| {
                r.header("strict-transport-security")
                    .filter(|v| v.starts_with("max-age="))
                    .map(|_| ())
                    .ok_or("no HSTS on HTTPS".into())
            },
        },
    ]
}

#[tokio::test(start_paused = true)]
async fn every_scenario_alike_through_the_stack_and_the_layers() {
    for case in cases() {
        let fused = fused();
        let layered = layered();
        for (variant, reply) in [
            ("fused stack", run(&fused, &case).await),
            ("per-concern layers", run(&layered, &case).await),
        ] {
            assert_eq!(
                reply.status,
                StatusCode::from_u16(case.status).expect("status"),
                "{}: {variant}: {}",
                case.name,
                reply.body
            );
            if let Err(e) = (case.check)(&reply) {
                panic!("{}: {variant}: {e}", case.name);
            }
            assert!(
                reply.header("x-request-id").is_some(),
                "{}: {variant}",
                case.name
            );
        }
    }
}

async fn run<S: buttress::server::App>(app: &S, case: &Case) -> Reply {
    for _ in 0..case.before {
        send(app, case.peer, (case.request)()).await;
    }
    send(app, case.peer, (case.request)()).await
}

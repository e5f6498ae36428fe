//! Shared helpers: a test app with a route for every behaviour, settings, and requests.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::Router;
use buttress::errors::{KeepBody, Problem};
use buttress::headers::{Csp, CspNonce, CspOverrideLayer};
use buttress::headers::{Directive, Source};
use buttress::proxy::{ClientIp, RequestOrigin};
use buttress::server::App;
use buttress::settings::Settings;
use buttress::stack::Stack;
use buttress::Buttress;
use tower::ServiceExt as _;

pub const STRONG_KEY: &str = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";

/// Routes exercising each layer.
pub fn routes() -> Router {
    let map_csp = Csp::strict().directive(
        Directive::ImgSrc,
        [Source::SelfOrigin, Source::Scheme("https:".into())],
    );
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/panic", get(panics))
        .route(
            "/leak",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "SQL error near SELECT * FROM users at /srv/app/db.rs:42",
                )
            }),
        )
        .route(
            "/bad-input",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    "Failed to deserialize at /srv/app/x.rs",
                )
            }),
        )
        .route(
            "/problem",
            get(|| async {
                Problem::new(StatusCode::CONFLICT)
                    .with_kind("taken")
                    .with_detail("That name is taken.")
            }),
        )
        .route(
            "/keep",
            get(|| async {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    KeepBody,
                    Html("<p>Please fix the form</p>"),
                )
            }),
        )
        .route(
            "/sleep",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "slept"
            }),
        )
        .route(
            "/slow-ok",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(700)).await;
                "finished"
            }),
        )
        .route(
            "/whoami",
            get(|ClientIp(ip): ClientIp, origin: RequestOrigin| async move {
                format!("{ip} {}", origin.origin())
            }),
        )
        .route(
            "/trying-a-policy",
            get(|| async {
                (
                    [(
                        "content-security-policy-report-only",
                        "default-src 'none'; report-uri /csp",
                    )],
                    "trying",
                )
            }),
        )
        .route(
            "/own-headers",
            get(|| async {
                (
                    [
                        ("x-frame-options", "SAMEORIGIN"),
                        ("content-security-policy", "default-src 'self'"),
                        ("server", "leaky/1.0"),
                        ("x-powered-by", "PHP/5"),
                    ],
                    "mine",
                )
            }),
        )
        .route(
            "/csp-part",
            get(|| async {
                (
                    Csp::strict().directive(
                        Directive::ConnectSrc,
                        [Source::host("api.example.org").expect("host")],
                    ),
                    "part",
                )
            }),
        )
        .route(
            "/map",
            get(|| async { "map" }).route_layer(CspOverrideLayer::new(map_csp)),
        )
        .route(
            "/upload",
            post(|body: Bytes| async move { format!("got {}", body.len()) }),
        )
        .route(
            "/form",
            get(|t: buttress::csrf::CsrfToken| async move { t.masked() })
                .post(|| async { "accepted" }),
        )
        .route(
            "/login",
            post(|s: buttress::session::Session| async move {
                s.set_user(Some("alice")).await.map(|()| "signed in")
            }),
        )
}

async fn panics() -> &'static str {
    panic!("secret-db-password leaked in panic")
}

async fn page(nonce: CspNonce) -> Html<String> {
    Html(format!("<html><head><style nonce=\"{nonce}\">p{{}}</style></head><body><p>hi</p><script nonce=\"{nonce}\">1</script></body></html>"))
}

pub fn settings(vars: &[(&str, &str)]) -> Settings {
    Settings::loader()
        .env_vars(vars.iter().copied())
        .load()
        .expect("test settings load")
}

/// Production behind a trusted proxy on loopback.
pub fn production(extra: &[(&str, &str)]) -> Settings {
    let mut vars = vec![
        ("BUTTRESS_ENV", "production"),
        ("BUTTRESS_BEHIND_PROXY", "true"),
        ("BUTTRESS_TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
        ("BUTTRESS_ALLOWED_HOSTS", "example.org, localhost"),
        ("BUTTRESS_HSTS_PRELOAD", "true"),
        ("SECRET_KEY", STRONG_KEY),
    ];
    vars.extend_from_slice(extra);
    settings(&vars)
}

pub fn app(settings: &Settings) -> Stack {
    Buttress::from_settings(settings)
        .expect("stack builds")
        .csrf_exempt("/upload")
        .apply(routes())
        .expect("stack")
}

pub use buttress_testkit::reply::Reply;

/// Sends `req` from `peer` through `app` in-process.
pub async fn send<S: App>(app: &S, peer: &str, mut req: Request<Body>) -> Reply {
    let peer: SocketAddr = peer.parse().expect("peer address");
    req.extensions_mut().insert(ConnectInfo(peer));
    let res: Response<Body> = app
        .clone()
        .oneshot(req)
        .await
        .expect("infallible")
        .into_response();
    Reply::read(res).await
}

/// A GET with `Host: example.org` and extra headers.
pub fn get_req(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().uri(path).header("host", "example.org");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).expect("request")
}

/// The headers every response must carry.
pub const ALWAYS: &[(&str, &str)] = &[
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
];

pub fn assert_secure_headers(r: &Reply, what: &str) {
    for (name, value) in ALWAYS {
        assert_eq!(r.header(name), Some(*value), "{what}: {name}");
    }
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(csp.starts_with("default-src 'none'"), "{what}: {csp}");
    assert!(
        r.header("permissions-policy")
            .is_some_and(|p| p.contains("camera=()")),
        "{what}"
    );
    assert!(
        r.header("server").is_none() && r.header("x-powered-by").is_none(),
        "{what}"
    );
}

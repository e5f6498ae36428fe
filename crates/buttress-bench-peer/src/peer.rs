//! `buttress-bench peer`: the same page behind the stack a Rust user would assemble today from
//! axum, tower-http, tower-sessions and tower_governor, written as those crates' READMEs show.
//!
//! One `tower::ServiceBuilder` on the router (axum's advice for several middleware), outermost
//! first:
//!
//! | layer | crate | what it does here |
//! |---|---|---|
//! | `SetRequestIdLayer::x_request_id(MakeRequestUuid)` | tower-http | a UUID v4 `x-request-id` on requests without one (from the OS: `uuid` without its `fast-rng` feature) |
//! | `TraceLayer::new_for_http()` | tower-http | a span per request (no subscriber is installed, as in `stack`) |
//! | `PropagateRequestIdLayer::x_request_id()` | tower-http | copies the id onto the response |
//! | 8 × `SetResponseHeaderLayer::if_not_present` | tower-http | the stack's security headers as fixed values, a static CSP ([`SECURITY_HEADERS`], [`PEER_CSP`]); a header the handler set wins |
//! | `CatchPanicLayer::new()` | tower-http | a panic becomes a 500 |
//! | `RequestBodyLimitLayer::new(body_limit)` | tower-http | 413 over the limit |
//! | `GovernorLayer` (`use_headers()`) | tower_governor | per peer IP; `x-ratelimit-limit` and `x-ratelimit-remaining` on every answer, 429 with `retry-after` |
//! | `TimeoutLayer::with_status_code(408, request_timeout)` | tower-http | 408 when the handler takes too long |
//! | `SessionManagerLayer::new(MemoryStore::default())` | tower-sessions | lazy sessions in memory, 30 minutes idle expiry |
//!
//! The body limit sits above the governor because `GovernorLayer` answers its 429 with an axum
//! `Body`, so every layer under it must keep axum's body type, which `RequestBodyLimitLayer` does
//! not. The governor holds one quota (GCRA: tower_governor has one per layer), the hour window
//! of [`buttress_bench::BENCH_LIMITS`] (500,000,000 per hour, a cell every 7.2 µs), so no benchmark
//! reaches it; the stack checks both windows. Its state is trimmed every 60 s by a thread, as the
//! tower_governor README does. No HSTS: it is plain HTTP on loopback, where the stack (in
//! Development) sends none either. The session cookie is not `Secure` for the same reason.
//!
//! `GET /` answers the same page as `bare` and `stack` and does not touch its session, like
//! theirs; `GET /session` counts visits in the session (tower-sessions' README example), so a
//! test can see its cookie.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};

use buttress_bench::SECURITY_HEADERS;

/// The CSP the peer sends: the stack's policy (`Csp::strict()`) without its per-request nonce,
/// since a static header cannot carry one.
pub(crate) const PEER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Requests per window of the governor's one quota (the hour window of `BENCH_LIMITS`).
pub(crate) const PEER_LIMIT: u32 = 500_000_000;

/// The window [`PEER_LIMIT`] is counted over.
const PEER_WINDOW: Duration = Duration::from_secs(3600);

/// How often the governor's per-key state is trimmed (the tower_governor README's interval).
const RETAIN_INTERVAL: Duration = Duration::from_secs(60);

/// The session's idle expiry: the stack's default (`session_idle_timeout`, 30 minutes).
const SESSION_IDLE: time::Duration = time::Duration::minutes(30);

/// Why the peer stack could not be built.
#[derive(Debug)]
pub(crate) struct PeerError(&'static str);

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The key the `/session` route counts visits under.
const VISITS: &str = "visits";

/// `GET /session`: counts this session's visits (tower-sessions' README example), so that the
/// session layer has something to store and a cookie to set.
async fn visits(session: Session) -> Result<String, StatusCode> {
    let seen: usize = session
        .get(VISITS)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .unwrap_or_default();
    session
        .insert(VISITS, seen + 1)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(format!("visits: {}", seen + 1))
}

/// `router` (the bench page) plus `/session`, behind the peer stack described in the module docs.
/// Serve it with peer addresses (`into_make_service_with_connect_info::<SocketAddr>()`, or
/// `buttress::server::Server`, which inserts `ConnectInfo`): the governor keys on them and
/// answers 500 without one.
pub(crate) fn app(
    router: Router,
    body_limit: usize,
    request_timeout: Duration,
) -> Result<Router, PeerError> {
    let period = PEER_WINDOW / PEER_LIMIT;
    let governor = GovernorConfigBuilder::default()
        .period(period)
        .burst_size(PEER_LIMIT)
        .use_headers()
        .finish()
        .ok_or(PeerError(
            "tower_governor refused the quota (zero period or burst)",
        ))?;
    let limiter = governor.limiter().clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(RETAIN_INTERVAL);
        limiter.retain_recent();
    });

    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE));

    let header = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    let [h0, h1, h2, h3, h4, h5, h6] = SECURITY_HEADERS.map(|(n, v)| header(n, v));

    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(h0)
        .layer(h1)
        .layer(h2)
        .layer(h3)
        .layer(h4)
        .layer(h5)
        .layer(h6)
        .layer(header("content-security-policy", PEER_CSP))
        .layer(CatchPanicLayer::new())
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(GovernorLayer::new(Arc::new(governor)))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(sessions);

    Ok(router.route("/session", get(visits)).layer(layers))
}

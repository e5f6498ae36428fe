//! The one pipeline: every concern of a request, in order, in one service.
//!
//! [`Buttress::apply`](crate::Buttress::apply) wraps the whole application in a [`Stack`].
//! Its [`call`](tower_service::Service::call) below reads as the design's order, each step a
//! plain function of the module that owns the concern:
//!
//! | step | module | refusal |
//! |---|---|---|
//! | 1. a fresh request id, the tracing span | [`request_id`](crate::request_id) | |
//! | 2. client address, scheme and host, trusting only listed proxies | [`proxy`](crate::proxy) | 400 |
//! | 3. plain HTTP redirected to HTTPS | [`https`](crate::https) | 301/308 |
//! | 4. the global limit, then the path's own limit | [`ratelimit`](crate::ratelimit) | 429 (503) |
//! | 5. body size and the request's deadline | [`stack`](self) | 413, 408 |
//! | 6. the session (lazy), then CSRF for unsafe methods | [`session`](crate::session), [`csrf`](crate::csrf) | 403 |
//! | 7. the application (routing happens here, inside the stack) | | 404, 405 |
//!
//! and on the way out, for every response (the application's, a refusal's, a panic's):
//! session commit, rate-limit headers, security headers (CSP with the request's nonce, HSTS
//! on HTTPS only, a header the handler set wins), the safe error page of a 4xx/5xx, the request
//! id. One [`RequestContext`](crate::RequestContext) (request id, client, origin, nonce) is inserted once; the
//! extractors read it.
//!
//! A `Stack` takes no more routes: anything added after [`apply`](crate::Buttress::apply)
//! would go around the protections, so it does not compile.
//!
//! ```compile_fail
//! use axum::{routing::{get, post}, Router};
//! let stack = buttress::Buttress::from_settings(&Default::default()).unwrap();
//! let app = stack
//!     .apply(Router::new().route("/", get(|| async { "hello" })))
//!     .unwrap()
//!     .route("/transfer", post(|| async { "money moved" })); // no such method
//! ```
//!
//! A request that needs no waiting — a safe method, the memory limiter, a session it does not
//! touch, a response below 400 — goes through one future with no allocation of its own; a
//! Redis limit, a CSRF check, a session to save or an error page to render finish in a boxed
//! future.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::{stack::Stack, Buttress};
//!
//! let stack: Stack = Buttress::from_settings(&Default::default())?
//!     .apply(Router::new().route("/", get(|| async { "hello" })))?;
//! # Ok::<(), buttress::StartupError>(())
//! ```

mod future;
mod head;
mod steps;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::response::Response;
use axum::Router;
use http::Request;
use tower_service::Service;

pub use future::StackFuture;

use crate::proxy::ProxyConfig;
use crate::ratelimit::PathLimitsLayer;

/// The largest request body by default (`body_limit`): 1 MiB.
///
/// ```
/// assert_eq!(buttress::stack::DEFAULT_BODY_LIMIT, 1024 * 1024);
/// ```
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The time to answer a whole request by default (`request_timeout`): 30 s.
///
/// ```
/// assert_eq!(buttress::stack::DEFAULT_REQUEST_TIMEOUT.as_secs(), 30);
/// ```
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the stack does to a request, configured once at start-up.
pub(crate) struct Plan {
    pub(crate) proxy: ProxyConfig,
    pub(crate) https: Option<Arc<crate::https::Config>>,
    pub(crate) global: Option<Arc<crate::ratelimit::layer::Config>>,
    pub(crate) routes: PathLimitsLayer,
    pub(crate) body_limit: usize,
    pub(crate) timeout: Duration,
    pub(crate) session: Option<Arc<crate::session::Config>>,
    pub(crate) csrf: Arc<crate::csrf::Config>,
    pub(crate) headers: Arc<crate::headers::Config>,
    pub(crate) debug: bool,
    /// The counters and events of refusals.
    pub(crate) telemetry: crate::telemetry::Pipeline,
}

/// The application inside every protection, as one service (see the [module docs](self)).
/// Made by [`Buttress::apply`](crate::Buttress::apply); serve it with
/// `buttress::server::Server::bind` (feature `server`) or, with `axum::serve`, through
/// [`Stack::into_make_service_with_connect_info`].
#[derive(Clone)]
#[must_use]
pub struct Stack<S = Router> {
    inner: S,
    plan: Arc<Plan>,
}

impl<S> std::fmt::Debug for Stack<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("https", &self.plan.https.is_some())
            .field("global_limit", &self.plan.global.is_some())
            .field("limited_paths", &self.plan.routes)
            .field("sessions", &self.plan.session.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Stack<S> {
    pub(crate) fn new(inner: S, plan: Plan) -> Self {
        Stack {
            inner,
            plan: Arc::new(plan),
        }
    }

    /// The telemetry this stack counts with (see [`telemetry`](crate::telemetry)): give it to
    /// the server ([`ServeOptions`](crate::server)'s `telemetry`) and to the metrics listener.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// let stack = buttress::Buttress::from_settings(&Default::default())?
    ///     .apply(Router::new().route("/", get(|| async { "hello" })))?;
    /// assert!(!stack.telemetry().counts()); // no BUTTRESS_METRICS_BIND
    /// # Ok::<(), buttress::StartupError>(())
    /// ```
    pub fn telemetry(&self) -> &crate::telemetry::Telemetry {
        self.plan.telemetry.telemetry()
    }

    /// The make-service `axum::serve` takes, recording each connection's peer address (which
    /// the proxy step needs).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// use axum::{routing::get, Router};
    /// let stack = buttress::Buttress::from_settings(&Default::default()).unwrap()
    ///     .apply(Router::new().route("/", get(|| async { "hello" }))).unwrap();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    /// axum::serve(listener, stack.into_make_service_with_connect_info()).await
    /// # }
    /// ```
    pub fn into_make_service_with_connect_info(
        self,
    ) -> IntoMakeServiceWithConnectInfo<Self, SocketAddr>
    where
        Self: Service<Request<Body>>,
    {
        axum::ServiceExt::<Request<Body>>::into_make_service_with_connect_info::<SocketAddr>(self)
    }
}

impl<S> Service<Request<Body>> for Stack<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = StackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let plan = &self.plan;
        // 1: a fresh request id, the span, the deadline; the headers the steps read, in one pass.
        let head = head::Head::of(req.headers());
        let mut out = steps::Out::new(plan, &mut req, &head);
        // 2-3: proxy resolution (the context goes in here), HTTPS.
        if let Err(res) = steps::enter(plan, &mut req, &mut out, head.host.as_ref()) {
            return StackFuture::answer(out, res);
        }
        // 4: the global limit, then the path's own.
        let pending = match steps::limits_now(plan, &req, &mut out) {
            Ok(pending) => pending,
            Err(res) => return StackFuture::answer(out, res),
        };
        if !pending.is_empty() {
            let inner = take(&mut self.inner);
            let slow = steps::slow(plan.clone(), inner, req, pending, head, out);
            return StackFuture::boxed(slow);
        }
        // 5-6: body limit, session, the CSRF origin verdict; the token is checked in a box.
        if let Err(res) = steps::body_and_session(plan, &mut req, &mut out, head) {
            return StackFuture::answer(out, res);
        }
        match steps::csrf_now(plan, &req, &mut out) {
            steps::Csrf::Pass => {}
            steps::Csrf::Refuse(res) => return StackFuture::answer(out, res),
            steps::Csrf::CheckToken => {
                let inner = take(&mut self.inner);
                return StackFuture::boxed(steps::slow_csrf(plan.clone(), inner, req, out));
            }
        }
        // 7: the application, under the deadline and the panic catcher.
        StackFuture::call(out, &mut self.inner, req)
    }
}

/// The inner service for a boxed future: the one that was polled ready goes, a clone takes its
/// place.
fn take<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

//! [`RateLimitLayer`] and its service: count on the way in, refuse with 429, add headers on
//! the way out.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response};
use ipnet::IpNet;
use tower_layer::Layer;
use tower_service::Service;

use super::key::{request_key, Exemptions, KeyFn};
use super::overflow::Aggregate;
use super::response::{policy_header, set_headers, too_many, unavailable};
use super::{Decision, HeaderStyle, IpGrouping, OnStoreError, RateLimitError, RateLimiter, Scope};

type CostFn = Arc<dyn Fn(&Parts) -> u64 + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Config {
    limiter: RateLimiter,
    scope: Scope,
    key_fn: Option<KeyFn>,
    grouping: IpGrouping,
    exemptions: Exemptions,
    cost_fn: Option<CostFn>,
    style: HeaderStyle,
    shadow: bool,
    policy: HeaderValue,
}

/// Rate limits requests. Counting happens on the way in, so a request that a later layer or
/// the handler refuses (CSRF failure, validation error) still counts.
///
/// Defaults: key = client address from [`ClientIp`](crate::proxy::ClientIp) (IPv4 /32, IPv6
/// /64), scope = per route, cost 1, IETF headers, enforcing (not shadow). Every check carries
/// the client's network, so a full memory store counts a new client on its IPv6 /48's or IPv4
/// /24's overflow allowance (see [`MemoryStore`](super::MemoryStore)): a flood from a few networks never
/// takes the allowance of clients elsewhere.
///
/// ```
/// use axum::{routing::post, Router};
/// use buttress::ratelimit::RateLimitLayer;
///
/// let app: Router = Router::new().route(
///     "/login",
///     post(|| async { "welcome" }).route_layer(RateLimitLayer::parse("5 per minute")?),
/// );
/// # Ok::<(), buttress::ratelimit::RateLimitError>(())
/// ```
///
/// # Deployment caveat
///
/// Put [`ProxyLayer`](crate::proxy::ProxyLayer) outside this layer (as
/// [`Buttress::apply`](crate::Buttress::apply) does) and list your proxies in
/// `trusted_proxies`; otherwise every client behind the proxy shares the proxy's address.
#[derive(Clone)]
#[must_use]
pub struct RateLimitLayer {
    config: Arc<Config>,
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("RateLimitLayer")
            .field("limiter", &c.limiter)
            .field("scope", &c.scope)
            .field("grouping", &c.grouping)
            .field("exemptions", &c.exemptions)
            .field("style", &c.style)
            .field("shadow", &c.shadow)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// A layer checking `limiter`.
    ///
    /// ```
    /// use buttress::ratelimit::{RateLimitLayer, RateLimiter};
    /// let layer = RateLimitLayer::new(RateLimiter::parse("100 per minute")?);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn new(limiter: RateLimiter) -> Self {
        let policy = HeaderValue::from_str(&policy_header(limiter.limits()))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        RateLimitLayer {
            config: Arc::new(Config {
                limiter,
                scope: Scope::PerRoute,
                key_fn: None,
                grouping: IpGrouping::default(),
                exemptions: Exemptions::default(),
                cost_fn: None,
                style: HeaderStyle::Ietf,
                shadow: false,
                policy,
            }),
        }
    }

    /// A layer for a limit string, counted in memory (see [`RateLimiter::parse`]).
    ///
    /// ```
    /// assert!(buttress::ratelimit::RateLimitLayer::parse("5 per minute").is_ok());
    /// assert!(buttress::ratelimit::RateLimitLayer::parse("5 per minnute").is_err());
    /// ```
    pub fn parse(limits: &str) -> Result<Self, RateLimitError> {
        Ok(RateLimitLayer::new(RateLimiter::parse(limits)?))
    }

    /// The preset for a login route: `5 per minute` per client address, exact moving window,
    /// failing closed.
    ///
    /// ```
    /// let layer = buttress::ratelimit::RateLimitLayer::login();
    /// assert_eq!(layer.limiter().limits().to_string(), "5 per minute");
    /// ```
    pub fn login() -> Self {
        let limits = super::Limits::from(super::grammar::FIVE_PER_MINUTE);
        RateLimitLayer::new(
            RateLimiter::new(limits)
                .with_name("login")
                .with_on_store_error(OnStoreError::FailClosed),
        )
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// The limiter checked.
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimitLayer::parse("5/second")?;
    /// assert_eq!(l.limiter().limits().to_string(), "5 per second");
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn limiter(&self) -> &RateLimiter {
        &self.config.limiter
    }

    /// Which counter requests use (default [`Scope::PerRoute`]).
    ///
    /// ```
    /// use buttress::ratelimit::{RateLimitLayer, Scope};
    /// let l = RateLimitLayer::parse("5/second")?.scope(Scope::shared("auth"));
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn scope(self, scope: Scope) -> Self {
        self.edit(|c| c.scope = scope)
    }

    /// Counts by a key of your own (a user id, an API key); when it returns `None` the client
    /// address is used.
    ///
    /// ```
    /// use buttress::ratelimit::RateLimitLayer;
    /// let l = RateLimitLayer::parse("1000 per day")?.key_fn(|parts| {
    ///     parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned)
    /// });
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn key_fn(self, f: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        self.edit(|c| c.key_fn = Some(Arc::new(f)))
    }

    /// How client addresses are grouped (default IPv4 /32, IPv6 /64).
    ///
    /// ```
    /// use buttress::ratelimit::{IpGrouping, RateLimitLayer};
    /// let l = RateLimitLayer::parse("5/second")?.ip_grouping(IpGrouping::new(32, 56));
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn ip_grouping(self, grouping: IpGrouping) -> Self {
        self.edit(|c| c.grouping = grouping)
    }

    /// Requests to these exact paths are not counted (e.g. `/healthz`).
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimitLayer::parse("5/second")?.exempt_paths(["/healthz"]);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn exempt_paths<I: IntoIterator<Item = impl Into<String>>>(self, paths: I) -> Self {
        let paths: Vec<String> = paths.into_iter().map(Into::into).collect();
        self.edit(|c| c.exemptions.paths.extend(paths))
    }

    /// Requests whose path starts with `prefix` are not counted (static assets, `/static/`).
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimitLayer::parse("50/hour")?.exempt_prefix("/static/");
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn exempt_prefix(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.edit(|c| c.exemptions.prefixes.push(prefix))
    }

    /// Clients inside these networks are not counted (e.g. your monitoring).
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimitLayer::parse("5/second")?
    ///     .exempt_networks(["10.1.0.0/16".parse().unwrap()]);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn exempt_networks(self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        let nets: Vec<IpNet> = nets.into_iter().collect();
        self.edit(|c| c.exemptions.nets.extend(nets))
    }

    /// Requests for which `f` is true are not counted.
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimitLayer::parse("5/second")?
    ///     .exempt_if(|parts| parts.method == http::Method::OPTIONS);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn exempt_if(self, f: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> Self {
        self.edit(|c| c.exemptions.predicate = Some(Arc::new(f)))
    }

    /// The cost of a request (default 1; 0 counts nothing).
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimitLayer::parse("100/minute")?
    ///     .cost_fn(|parts| if parts.uri.path().starts_with("/export") { 10 } else { 1 });
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn cost_fn(self, f: impl Fn(&Parts) -> u64 + Send + Sync + 'static) -> Self {
        self.edit(|c| c.cost_fn = Some(Arc::new(f)))
    }

    /// Which headers to send (default [`HeaderStyle::Ietf`]).
    ///
    /// ```
    /// use buttress::ratelimit::{HeaderStyle, RateLimitLayer};
    /// let l = RateLimitLayer::parse("5/second")?.headers(HeaderStyle::Both);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn headers(self, style: HeaderStyle) -> Self {
        self.edit(|c| c.style = style)
    }

    /// Shadow mode: count and log what would be refused, refuse nothing, send no headers.
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimitLayer::parse("5/second")?.shadow(true);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn shadow(self, shadow: bool) -> Self {
        self.edit(|c| c.shadow = shadow)
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`RateLimitLayer`].
///
/// ```
/// use tower_layer::Layer;
/// let svc = buttress::ratelimit::RateLimitLayer::parse("5/second")?
///     .layer(tower::service_fn(|_req: http::Request<axum::body::Body>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::empty()))
///     }));
/// # Ok::<(), buttress::ratelimit::RateLimitError>(())
/// ```
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = RateLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        check_and_call(&self.config, &mut self.inner, req)
    }
}

impl RateLimitLayer {
    /// The shared configuration, for [`PathLimits`](super::PathLimits) and the stack.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

/// Checks `req` against `config` and calls `inner` unless the limit refuses it: the work of
/// [`RateLimit`] and of [`PathLimits`](super::PathLimits) for a limited path.
pub(super) fn check_and_call<S, ReqBody, ResBody>(
    config: &Arc<Config>,
    inner: &mut S,
    req: Request<ReqBody>,
) -> RateLimitFuture<S::Future>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    let (parts, body) = req.into_parts();
    let admission = admit(config, &parts);
    let req = Request::from_parts(parts, body);
    match admission {
        Admission::Pass => RateLimitFuture::admitted(inner.call(req), None),
        Admission::Allowed(decision) => {
            RateLimitFuture::admitted(inner.call(req), Some((config.clone(), decision)))
        }
        Admission::Refused(res) => RateLimitFuture::refused(res),
        Admission::Later { key, agg, cost } => {
            // The service that was polled ready handles this request; a clone takes its place.
            let clone = inner.clone();
            let mut inner = std::mem::replace(inner, clone);
            let config = config.clone();
            RateLimitFuture::boxed(Box::pin(async move {
                match admit_later(&config, &key, agg, cost).await {
                    Admission::Refused(res) => Ok(res),
                    Admission::Allowed(decision) => {
                        let mut res = inner.call(req).await?.map(Body::new);
                        add_headers(&config, &decision, res.headers_mut());
                        Ok(res)
                    }
                    Admission::Pass | Admission::Later { .. } => {
                        Ok(inner.call(req).await?.map(Body::new))
                    }
                }
            }))
        }
    }
}

/// What the rate-limit step decided for a request.
pub(crate) enum Admission {
    /// Not counted (exempt), or counted in shadow mode: nothing to add on the way out.
    Pass,
    /// Counted and allowed: the limit headers for this decision go on the response.
    Allowed(Decision),
    /// Refused: the 429 (or the 503 of a fail-closed store), with its headers.
    Refused(Response<Body>),
    /// The store needs a round trip (Redis), or shadow mode: finish with [`admit_later`].
    Later {
        /// The counter key.
        key: String,
        /// The client's network, where a full memory store counts it.
        agg: Aggregate,
        /// The request's cost.
        cost: u64,
    },
}

/// The rate-limit step of a request, as far as it can go without waiting: exempt, or decided
/// by the memory store, or [`Admission::Later`]. The client is read from the request's
/// [`RequestContext`](crate::RequestContext).
pub(crate) fn admit(config: &Config, parts: &Parts) -> Admission {
    let (path, extensions) = (parts.uri.path(), &parts.extensions);
    let predicate = config.exemptions.predicate.as_ref();
    if config.exemptions.exempt_head(path, extensions) || predicate.is_some_and(|f| f(parts)) {
        return Admission::Pass;
    }
    let own = config.key_fn.as_ref().and_then(|f| f(parts));
    let cost = config.cost_fn.as_ref().map_or(1, |f| f(parts));
    decide(config, path, extensions, own, cost)
}

/// [`admit`] from the request's path and extensions alone, for a limit with no function of the
/// whole head (key, cost or exemption: the limits [`Buttress`](crate::Buttress) makes have
/// none); `None` for one that has.
pub(crate) fn admit_head(
    config: &Config,
    path: &str,
    extensions: &http::Extensions,
) -> Option<Admission> {
    let plain = config.key_fn.is_none()
        && config.cost_fn.is_none()
        && config.exemptions.predicate.is_none();
    if !plain {
        return None;
    }
    if config.exemptions.exempt_head(path, extensions) {
        return Some(Admission::Pass);
    }
    Some(decide(config, path, extensions, None, 1))
}

fn decide(
    config: &Config,
    path: &str,
    extensions: &http::Extensions,
    own: Option<String>,
    cost: u64,
) -> Admission {
    let (key, agg) = request_key(path, extensions, &config.scope, own, config.grouping);
    if config.shadow {
        let key = key.into_string();
        return Admission::Later { key, agg, cost };
    }
    // The memory store answers at once: no future, no allocation.
    match config.limiter.check_now(key.as_str(), agg, cost) {
        Some(decision) if decision.allowed() => Admission::Allowed(decision),
        Some(decision) => Admission::Refused(refusal(config, &decision)),
        None => Admission::Later {
            key: key.into_string(),
            agg,
            cost,
        },
    }
}

/// The rest of [`admit`] for a store with a round trip, or in shadow mode: never `Later`.
pub(crate) async fn admit_later(
    config: &Config,
    key: &str,
    agg: Aggregate,
    cost: u64,
) -> Admission {
    let decision = match config.limiter.check_in(key, agg, cost).await {
        Ok(d) => d,
        Err(_unavailable) if config.shadow => {
            tracing::warn!(limiter = %config.limiter.name(), "shadow rate limit: store unavailable");
            return Admission::Pass;
        }
        Err(_unavailable) => return Admission::Refused(unavailable()),
    };
    if config.shadow {
        if !decision.allowed() {
            tracing::info!(limiter = %config.limiter.name(), limit = %decision.limit(), "shadow rate limit: would refuse");
        }
        return Admission::Pass;
    }
    if decision.allowed() {
        Admission::Allowed(decision)
    } else {
        Admission::Refused(refusal(config, &decision))
    }
}

/// [`add_headers`], knowing whether the response already has the IETF and the legacy fields;
/// gives whether it has them afterwards.
pub(crate) fn add_headers_present(
    config: &Config,
    decision: &Decision,
    headers: &mut http::HeaderMap,
    present: (bool, bool),
) -> (bool, bool) {
    super::response::set_headers_present(
        headers,
        config.style,
        config.limiter.limits(),
        &config.policy,
        decision,
        present,
    )
}

/// Adds the limit headers of `decision` (a limit nearer the handler that already set its own
/// keeps them).
pub(crate) fn add_headers(config: &Config, decision: &Decision, headers: &mut http::HeaderMap) {
    set_headers(
        headers,
        config.style,
        config.limiter.limits(),
        &config.policy,
        decision,
    );
}

/// The 429 for a refused request, logged, with the limit headers.
fn refusal(config: &Config, decision: &Decision) -> Response<Body> {
    tracing::info!(limiter = %config.limiter.name(), limit = %decision.limit(), "rate limited");
    let mut res = too_many(decision);
    add_headers(config, decision, res.headers_mut());
    res
}

pin_project_lite::pin_project! {
    /// Future of [`RateLimit`]. With the memory store the decision is made in `call`: an
    /// admitted request's future only adds the limit headers to the inner response. A store
    /// with a round trip (Redis) or shadow mode take a boxed future.
    pub struct RateLimitFuture<F> {
        #[pin]
        stage: Stage<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Admitted {
            #[pin]
            inner: F,
            headers: Option<(Arc<Config>, Decision)>,
        },
        Refused {
            res: Option<Response<Body>>,
        },
        Boxed {
            fut: Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>,
        },
    }
}

impl<F> RateLimitFuture<F> {
    pub(super) fn admitted(inner: F, headers: Option<(Arc<Config>, Decision)>) -> Self {
        RateLimitFuture {
            stage: Stage::Admitted { inner, headers },
        }
    }

    fn refused(res: Response<Body>) -> Self {
        RateLimitFuture {
            stage: Stage::Refused { res: Some(res) },
        }
    }

    fn boxed(
        fut: Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>,
    ) -> Self {
        RateLimitFuture {
            stage: Stage::Boxed { fut },
        }
    }
}

impl<F, ResBody> Future for RateLimitFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, Infallible>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().stage.project() {
            StageProj::Admitted { inner, headers } => {
                let Poll::Ready(Ok(res)) = inner.poll(cx) else {
                    return Poll::Pending;
                };
                let mut res = res.map(Body::new);
                if let Some((config, decision)) = headers.take() {
                    add_headers(&config, &decision, res.headers_mut());
                }
                Poll::Ready(Ok(res))
            }
            // Polled once: `Service::call` futures are not polled after completion.
            StageProj::Refused { res } => Poll::Ready(Ok(res
                .take()
                .unwrap_or_else(|| Response::new(Body::empty())))),
            StageProj::Boxed { fut } => fut.as_mut().poll(cx),
        }
    }
}

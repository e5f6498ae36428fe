//! Limits for exact paths: [`PathLimitsLayer`].

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::layer::{check_and_call, Config, RateLimitFuture};
use super::{RateLimitError, RateLimitLayer};

/// Limits for exact request paths (`5 per minute` on `/login`, `10 per minute` on `/sign-up`)
/// in one layer, looked up once per request.
///
/// Each [`RateLimitLayer`] wraps every request, so a stack with one layer per limited path,
/// each skipping the paths that are not its own, wrapped every request once per limit (and,
/// added with `Router::layer`, boxed the routes once more per limit). This layer looks the path
/// up once: a limited path is checked exactly as its [`RateLimitLayer`] would check it (its
/// limiter, key, exemptions, headers and failure policy); any other path goes straight to the
/// inner service, with no limit headers. [`Buttress::limit_route`](crate::Buttress::limit_route)
/// builds one.
///
/// Defaults: no path limited (every request passes through untouched).
///
/// ```
/// use axum::{routing::post, Router};
/// use buttress::ratelimit::{PathLimitsLayer, RateLimitLayer};
///
/// let limits = PathLimitsLayer::new()
///     .limit("/login", RateLimitLayer::parse("5 per minute")?)?
///     .limit("/sign-up", RateLimitLayer::parse("10 per minute; 60 per hour")?)?;
/// let app: Router = Router::new()
///     .route("/login", post(|| async { "welcome" }))
///     .route("/sign-up", post(|| async { "hello" }))
///     .layer(limits);
/// # Ok::<(), buttress::ratelimit::RateLimitError>(())
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct PathLimitsLayer {
    routes: Arc<[(Box<str>, Arc<Config>)]>,
}

impl fmt::Debug for PathLimitsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.paths()).finish()
    }
}

impl PathLimitsLayer {
    /// No path limited yet.
    ///
    /// ```
    /// assert!(buttress::ratelimit::PathLimitsLayer::new().is_empty());
    /// ```
    pub fn new() -> Self {
        PathLimitsLayer::default()
    }

    /// Checks requests for exactly `path` (no prefix; the query is not part of it) with
    /// `layer`. A path that could never match (no leading `/`, or a `?` or `#` in it) is
    /// refused, and so is a second limit for the same path: put both in one limit string
    /// instead, so that one `RateLimit` header describes them.
    ///
    /// ```
    /// use buttress::ratelimit::{PathLimitsLayer, RateLimitError, RateLimitLayer};
    /// let limits = PathLimitsLayer::new().limit("/login", RateLimitLayer::parse("5/minute")?)?;
    /// assert!(matches!(
    ///     limits.limit("/login", RateLimitLayer::parse("100/day")?),
    ///     Err(RateLimitError::DuplicatePath(p)) if p == "/login"
    /// ));
    /// assert!(matches!(
    ///     PathLimitsLayer::new().limit("login", RateLimitLayer::login()),
    ///     Err(RateLimitError::Path(_))
    /// ));
    /// # Ok::<(), RateLimitError>(())
    /// ```
    pub fn limit(
        self,
        path: impl Into<String>,
        layer: RateLimitLayer,
    ) -> Result<Self, RateLimitError> {
        let path = path.into();
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(RateLimitError::Path(path));
        }
        if self.paths().any(|p| p == path) {
            return Err(RateLimitError::DuplicatePath(path));
        }
        let mut routes = self.routes.to_vec();
        routes.push((path.into_boxed_str(), layer.config().clone()));
        Ok(PathLimitsLayer {
            routes: routes.into(),
        })
    }

    /// The limited paths, in the order they were added.
    ///
    /// ```
    /// use buttress::ratelimit::{PathLimitsLayer, RateLimitLayer};
    /// let limits = PathLimitsLayer::new().limit("/login", RateLimitLayer::login())?;
    /// assert_eq!(limits.paths().collect::<Vec<_>>(), ["/login"]);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(p, _)| &**p)
    }

    /// The limit of exactly `path`, if it has one.
    pub(crate) fn find(&self, path: &str) -> Option<&Arc<Config>> {
        find(&self.routes, path)
    }

    /// The place of `limit` among the limited paths (the order of [`paths`](Self::paths)).
    pub(crate) fn position(&self, limit: &Arc<Config>) -> Option<usize> {
        self.routes.iter().position(|(_, l)| Arc::ptr_eq(l, limit))
    }

    /// Whether no path is limited.
    ///
    /// ```
    /// use buttress::ratelimit::{PathLimitsLayer, RateLimitLayer};
    /// let limits = PathLimitsLayer::new().limit("/login", RateLimitLayer::login())?;
    /// assert!(!limits.is_empty());
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn find<'a>(routes: &'a [(Box<str>, Arc<Config>)], path: &str) -> Option<&'a Arc<Config>> {
    routes.iter().find(|(p, _)| **p == *path).map(|(_, c)| c)
}

impl<S> Layer<S> for PathLimitsLayer {
    type Service = PathLimits<S>;
    fn layer(&self, inner: S) -> PathLimits<S> {
        PathLimits {
            inner,
            routes: self.routes.clone(),
        }
    }
}

/// The service made by [`PathLimitsLayer`].
///
/// ```
/// use tower_layer::Layer;
/// use buttress::ratelimit::{PathLimitsLayer, RateLimitLayer};
/// let svc = PathLimitsLayer::new()
///     .limit("/login", RateLimitLayer::login())?
///     .layer(tower::service_fn(|_req: http::Request<axum::body::Body>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::empty()))
///     }));
/// # Ok::<(), buttress::ratelimit::RateLimitError>(())
/// ```
#[derive(Clone)]
pub struct PathLimits<S> {
    inner: S,
    routes: Arc<[(Box<str>, Arc<Config>)]>,
}

impl<S: fmt::Debug> fmt::Debug for PathLimits<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathLimits")
            .field("inner", &self.inner)
            .field(
                "paths",
                &self.routes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for PathLimits<S>
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
        match find(&self.routes, req.uri().path()) {
            Some(config) => check_and_call(config, &mut self.inner, req),
            None => RateLimitFuture::admitted(self.inner.call(req), None),
        }
    }
}

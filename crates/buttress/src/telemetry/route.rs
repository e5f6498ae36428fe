//! [`DurationLayer`]: times each routed request into the histogram of its matched route
//! pattern (axum's [`MatchedPath`], never the raw path; the router's fallback is `unmatched`).
//!
//! The stack adds it with `Router::layer`, so that every route and the fallback are wrapped
//! once, when the application is built. Each route's service keeps the histogram of the
//! pattern it last saw, so a request costs a string comparison, not a registry lookup.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::Request;
use prometheus_client::metrics::histogram::Histogram;
use tower_layer::Layer;
use tower_service::Service;

use super::metrics::Metrics;

/// Times the requests of each route (see the [module docs](self)).
#[derive(Clone)]
pub(crate) struct DurationLayer {
    metrics: Arc<Metrics>,
}

impl DurationLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        DurationLayer { metrics }
    }
}

impl<S> Layer<S> for DurationLayer {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed {
            inner,
            metrics: self.metrics.clone(),
            cached: Arc::new(OnceLock::new()),
        }
    }
}

/// A route's service, timed.
#[derive(Clone)]
pub(crate) struct Timed<S> {
    inner: S,
    metrics: Arc<Metrics>,
    /// The pattern this route answered first, and its histogram.
    cached: Arc<OnceLock<(Box<str>, Histogram)>>,
}

impl<S> Timed<S> {
    fn histogram(&self, route: Option<&MatchedPath>) -> Histogram {
        let Some(route) = route.map(MatchedPath::as_str) else {
            return self.metrics.unmatched.clone();
        };
        let (pattern, histogram) = self
            .cached
            .get_or_init(|| (route.into(), self.metrics.duration(route)));
        if **pattern == *route {
            histogram.clone()
        } else {
            // A service mounted under several patterns (`nest_service`): look it up.
            self.metrics.duration(route)
        }
    }
}

impl<S, B> Service<Request<B>> for Timed<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TimedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let observe = Observe {
            histogram: self.histogram(req.extensions().get::<MatchedPath>()),
            start: Instant::now(),
        };
        TimedFuture {
            fut: self.inner.call(req),
            observe: Some(observe),
        }
    }
}

/// Observes the time since `start` when dropped: when the response is ready, or when the
/// request is dropped unanswered (the deadline passed, the handler panicked).
struct Observe {
    histogram: Histogram,
    start: Instant,
}

impl Drop for Observe {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

pin_project_lite::pin_project! {
    /// [`Timed`]'s future.
    pub(crate) struct TimedFuture<F> {
        #[pin]
        fut: F,
        observe: Option<Observe>,
    }
}

impl<F: Future> Future for TimedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.fut.poll(cx));
        this.observe.take();
        Poll::Ready(out)
    }
}

//! [`DurationLayer`]: times each routed request into the histogram of its matched route
//! pattern (axum's [`MatchedPath`], never the raw path; the router's fallback is `unmatched`).
//!
//! The stack adds it with `Router::layer`, so that every route and the fallback are wrapped
//! once, when the application is built. Each wrapped service answers for one pattern only and
//! keeps its histogram from its first request on: a request costs no lookup.

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
            route: Arc::new(RouteTimer {
                metrics: self.metrics.clone(),
                histogram: OnceLock::new(),
            }),
        }
    }
}

/// One route's histogram, found on its first request.
struct RouteTimer {
    metrics: Arc<Metrics>,
    histogram: OnceLock<Histogram>,
}

/// A route's service, timed.
#[derive(Clone)]
pub(crate) struct Timed<S> {
    inner: S,
    route: Arc<RouteTimer>,
}

impl<S> Timed<S> {
    /// The histogram of this route. `Router::layer` wraps each route (and each method of it,
    /// and the fallback) in a service of its own, so its pattern never changes: it is looked
    /// up on the first request only.
    fn histogram<B>(&self, req: &Request<B>) -> Histogram {
        self.route
            .histogram
            .get_or_init(|| match req.extensions().get::<MatchedPath>() {
                Some(route) => self.route.metrics.duration(route.as_str()),
                None => self.route.metrics.unmatched.clone(),
            })
            .clone()
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
            histogram: self.histogram(&req),
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

//! The request timeout: a request not answered within its time gets an empty `408 Request
//! Timeout` (the error pages layer then gives it a body).
//!
//! Written here rather than taken from `tower_http::timeout::TimeoutLayer`, which behaves the
//! same but polls its timer before the handler, so every request registers a timer in tokio's
//! wheel and removes it again, even the many whose handler answers on its first poll. This one
//! polls the handler first and arms the timer only when the handler has to wait: a request
//! answered at once never touches the timer (about 2,000 instructions per request in the
//! stack's profile). The deadline still counts from when the request arrived.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use buttress::timeout::RequestTimeoutLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hi" }))
//!     .layer(RequestTimeoutLayer::new(Duration::from_secs(30)));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

/// Answers `408 Request Timeout` when the inner service takes longer than the timeout.
///
/// ```
/// use std::time::Duration;
/// let layer = buttress::timeout::RequestTimeoutLayer::new(Duration::from_secs(30));
/// assert_eq!(layer.timeout(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeoutLayer {
    timeout: Duration,
}

impl RequestTimeoutLayer {
    /// A layer answering 408 after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        RequestTimeoutLayer { timeout }
    }

    /// The time a request is given.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl<S> Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// Service made by [`RequestTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestTimeout<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        TimeoutFuture {
            deadline: Instant::now() + self.timeout,
            inner: self.inner.call(req),
            sleep: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`RequestTimeout`]: the handler's, with a timer armed only if it waits.
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        deadline: Instant,
    }
}

impl<F, B, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(res) = this.inner.poll(cx) {
            return Poll::Ready(res);
        }
        if this.sleep.is_none() {
            this.sleep
                .set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            if sleep.poll(cx).is_ready() {
                let mut res = Response::new(B::default());
                *res.status_mut() = StatusCode::REQUEST_TIMEOUT;
                return Poll::Ready(Ok(res));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt as _;

    fn app(work: Duration) -> Router {
        Router::new()
            .route(
                "/",
                get(move || async move {
                    if !work.is_zero() {
                        tokio::time::sleep(work).await;
                    }
                    "done"
                }),
            )
            .layer(RequestTimeoutLayer::new(Duration::from_millis(100)))
    }

    async fn status(app: Router) -> (StatusCode, usize) {
        let res = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, body.len())
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_time_passes_whether_at_once_or_after_waiting() {
        assert_eq!(status(app(Duration::ZERO)).await, (StatusCode::OK, 4));
        assert_eq!(
            status(app(Duration::from_millis(60))).await,
            (StatusCode::OK, 4)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_is_408_at_the_deadline() {
        let started = Instant::now();
        assert_eq!(
            status(app(Duration::from_secs(5))).await,
            (StatusCode::REQUEST_TIMEOUT, 0)
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(150),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_the_request_not_from_the_first_wait() {
        // The handler's future is created at `call` and first polled later: the timer armed at
        // the first wait still ends 100 ms after the call.
        let mut svc = RequestTimeoutLayer::new(Duration::from_millis(100)).layer(
            tower::service_fn(|_req: Request<Body>| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
            }),
        );
        let started = Instant::now();
        let fut = svc.call(Request::new(Body::empty()));
        tokio::time::sleep(Duration::from_millis(80)).await;
        let res = fut.await.unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(150), "{took:?}");
    }
}

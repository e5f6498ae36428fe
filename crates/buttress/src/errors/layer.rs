//! [`ErrorPagesLayer`] and the panic catcher, for users who want them without the whole stack.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::page::{panic_response, ErrorPage};
use crate::context::{ClientIp, CspNonce};

/// Layer that renders error responses safely. See the [module docs](super).
///
/// ```
/// use axum::{routing::get, Router};
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(buttress::errors::ErrorPagesLayer::new(false));
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct ErrorPagesLayer {
    debug: bool,
}

impl ErrorPagesLayer {
    /// `debug`: show debug detail to loopback clients (turn on only in Development).
    pub fn new(debug: bool) -> Self {
        ErrorPagesLayer { debug }
    }
}

impl<S> Layer<S> for ErrorPagesLayer {
    type Service = ErrorPages<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ErrorPages {
            inner,
            debug: self.debug,
        }
    }
}

/// Service made by [`ErrorPagesLayer`].
#[derive(Debug, Clone)]
pub struct ErrorPages<S> {
    inner: S,
    debug: bool,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ErrorPages<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ErrorPagesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let page = ErrorPage::of(&req, self.debug);
        let request_id = req.headers().get(&crate::request_id::X_REQUEST_ID).cloned();
        ErrorPagesFuture {
            state: Stage::Waiting {
                inner: self.inner.call(req),
                page: Some((page, request_id)),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`ErrorPages`]: a response below 400 passes through without allocation; an
    /// error response whose body must be read is rendered by a boxed second stage.
    pub struct ErrorPagesFuture<F> {
        #[pin]
        state: Stage<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Waiting {
            #[pin]
            inner: F,
            page: Option<(ErrorPage, Option<http::HeaderValue>)>,
        },
        Rendering {
            page: Pin<Box<dyn Future<Output = Response<Body>> + Send>>,
        },
    }
}

impl<F, ResBody> Future for ErrorPagesFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, Infallible>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StageProj::Waiting { inner, page } => {
                    let Poll::Ready(Ok(res)) = inner.poll(cx) else {
                        return Poll::Pending;
                    };
                    let res = res.map(Body::new);
                    let Some((page, id)) = page.take().filter(|_| ErrorPage::wanted(&res)) else {
                        return Poll::Ready(Ok(res));
                    };
                    // The proxy and headers layers copy these onto error responses.
                    let loopback = res
                        .extensions()
                        .get::<ClientIp>()
                        .is_some_and(|ip| ip.0.is_loopback());
                    let nonce = res.extensions().get::<CspNonce>().copied();
                    let nonce = nonce.as_ref().map(CspNonce::as_str);
                    match page.render_now(res, loopback, nonce, id.as_ref()) {
                        Ok(res) => return Poll::Ready(Ok(res)),
                        Err(res) => {
                            let nonce = nonce.map(str::to_owned);
                            let render = page.render(res, loopback, nonce, id);
                            state.set(Stage::Rendering {
                                page: Box::pin(render),
                            });
                        }
                    }
                }
                StageProj::Rendering { page } => return page.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

/// The function [`catch_panic_layer`] turns panics into responses with.
pub type PanicHandler = fn(Box<dyn Any + Send + 'static>) -> Response<http_body_util::Full<Bytes>>;

/// The panic catcher: tower-http's `CatchPanicLayer` with a handler that leaks nothing (a bare
/// 500 carrying a [`Problem`](super::Problem); the panic message is kept aside as debug detail).
///
/// ```
/// use axum::{routing::get, Router};
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(buttress::errors::catch_panic_layer());
/// ```
pub fn catch_panic_layer() -> tower_http::catch_panic::CatchPanicLayer<PanicHandler> {
    tower_http::catch_panic::CatchPanicLayer::custom(
        panic_response::<http_body_util::Full<Bytes>> as PanicHandler,
    )
}

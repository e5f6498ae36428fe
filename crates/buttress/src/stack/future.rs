//! [`StackFuture`]: the application's future under the deadline and the panic catcher, then
//! the way out; no allocation unless a step has to wait.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use futures_util::future::BoxFuture;
use http::Request;
use tokio::time::Sleep;
use tower_service::Service;

use super::steps::{finish_now, timed_out, Finished, Out};
use crate::errors::panic_response;

pin_project_lite::pin_project! {
    /// Future of [`Stack`](super::Stack).
    pub struct StackFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        /// The application's future; the timer is armed only once it has to wait.
        Call {
            #[pin]
            fut: F,
            // Boxed, and only once the application has to wait: most requests never arm it, and
            // it would make this future (moved a few times on its way to the connection) 112
            // bytes larger for all of them.
            sleep: Option<Pin<Box<Sleep>>>,
            out: Option<Out>,
        },
        /// A step that waits (a store, a CSRF token, a session to save, a page to render).
        Boxed { fut: BoxFuture<'static, Response> },
        /// Answered without waiting.
        Ready { res: Option<Response> },
    }
}

impl<F> StackFuture<F> {
    /// A response made on the way in (a refusal, a redirect), sent through the way out.
    pub(super) fn answer(out: Out, res: Response) -> Self {
        StackFuture::finished(finish_now(out, res))
    }

    fn finished(finished: Finished) -> Self {
        let state = match finished {
            Finished::Now(res) => State::Ready { res: Some(res) },
            Finished::Later(fut) => State::Boxed { fut },
        };
        StackFuture { state }
    }

    /// The rest of the request in a boxed future that ends with the way out.
    pub(super) fn boxed(fut: impl Future<Output = Response> + Send + 'static) -> Self {
        StackFuture {
            state: State::Boxed { fut: Box::pin(fut) },
        }
    }

    /// Step 7: calls the application (a panic in `call` is caught too).
    pub(super) fn call<S>(out: Out, inner: &mut S, req: Request<Body>) -> Self
    where
        S: Service<Request<Body>, Future = F>,
    {
        let mut out = out;
        out.mark_routed();
        let called = {
            let _entered = out.span.enter();
            std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(req)))
        };
        match called {
            Ok(fut) => StackFuture {
                state: State::Call {
                    fut,
                    sleep: None,
                    out: Some(out),
                },
            },
            Err(panic) => StackFuture::answer(out, panic_response(panic)),
        }
    }
}

impl<F> Future for StackFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let finished = match state.as_mut().project() {
                StateProj::Call { fut, sleep, out } => {
                    let Some(deadline) = out.as_ref().map(|o| o.deadline) else {
                        // Polled after it finished: `Service` futures never are.
                        return Poll::Pending;
                    };
                    let polled = {
                        let _entered = out.as_ref().map(|o| o.span.enter());
                        std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx)))
                    };
                    let res = match polled {
                        Ok(Poll::Ready(Ok(res))) => res,
                        Ok(Poll::Ready(Err(never))) => match never {},
                        Err(panic) => panic_response(panic),
                        Ok(Poll::Pending) => {
                            let sleep = sleep.get_or_insert_with(|| {
                                Box::pin(tokio::time::sleep_until(deadline))
                            });
                            match sleep.as_mut().poll(cx) {
                                Poll::Ready(()) => timed_out(),
                                Poll::Pending => return Poll::Pending,
                            }
                        }
                    };
                    let Some(out) = out.take() else {
                        return Poll::Pending;
                    };
                    finish_now(out, res)
                }
                StateProj::Boxed { fut } => return fut.as_mut().poll(cx).map(Ok),
                StateProj::Ready { res } => {
                    return Poll::Ready(Ok(res
                        .take()
                        .unwrap_or_else(|| Response::new(Body::empty()))))
                }
            };
            match finished {
                Finished::Now(res) => return Poll::Ready(Ok(res)),
                Finished::Later(fut) => state.set(State::Boxed { fut }),
            }
        }
    }
}

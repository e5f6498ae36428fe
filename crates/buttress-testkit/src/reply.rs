//! The in-process client of every test: [`oneshot`] sends one request through a service (an
//! axum `Router`, the Buttress stack) and reads the whole response into a [`Reply`].
//!
//! ```
//! # tokio_test_free_block_on(async {
//! use buttress_testkit::reply::{oneshot, Reply};
//! let app = tower::service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
//! });
//! let r: Reply = oneshot(app, http::Request::new(String::new())).await;
//! assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "hi"));
//! # });
//! # fn tokio_test_free_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let waker = std::task::Waker::noop();
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     let mut f = std::pin::pin!(f);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! ```

use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use tower::{Service, ServiceExt as _};

/// A response read in full.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text (invalid UTF-8 replaced).
    pub body: String,
}

impl Reply {
    /// Reads `res` in full.
    ///
    /// # Panics
    /// When the body fails (a test helper: the test fails there).
    pub async fn read<B>(res: Response<B>) -> Reply
    where
        B: http_body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.expect("a response body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `name=value` of the first `Set-Cookie` (an empty value when it clears the cookie).
    pub fn cookie_pair(&self) -> Option<String> {
        let set = self.header("set-cookie")?;
        set.split(';').next().map(str::to_owned)
    }

    /// The `Location` header, or `""`.
    pub fn location(&self) -> &str {
        self.header("location").unwrap_or("")
    }

    /// Asserts the status (the start of the body in the message).
    ///
    /// # Panics
    /// When the status differs.
    #[track_caller]
    pub fn assert_status(&self, want: u16) -> &Self {
        let end = self
            .body
            .char_indices()
            .nth(3000)
            .map_or(self.body.len(), |(i, _)| i);
        assert_eq!(
            self.status.as_u16(),
            want,
            "status; body:\n{}",
            &self.body[..end]
        );
        self
    }

    /// Asserts a `303 See Other` to `to`.
    ///
    /// # Panics
    /// When the response is not that redirect.
    #[track_caller]
    pub fn assert_redirect(&self, to: &str) -> &Self {
        assert_eq!(self.status.as_u16(), 303, "{}", self.body);
        assert_eq!(self.location(), to);
        self
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends `req` through `app` in-process (`tower::ServiceExt::oneshot`) and reads the response.
///
/// # Panics
/// When the service fails (the Buttress stack and axum routers are infallible).
pub async fn oneshot<S, B, RB>(app: S, req: Request<B>) -> Reply
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: std::fmt::Debug,
    RB: http_body::Body,
    RB::Error: std::fmt::Debug,
{
    let res = app.oneshot(req).await.expect("the service answers");
    Reply::read(res).await
}

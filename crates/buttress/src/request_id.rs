//! Request ids: a random UUID (version 4) per request, from the thread's CSPRNG, in the
//! `x-request-id` header of the request (for handlers, logs and the error pages) and of its
//! response.
//!
//! [`RequestIdLayer`] is what the stack uses: one layer that drops a client's own
//! `x-request-id` (a client-chosen id could collide with or forge log lines), sets a fresh one
//! and copies it onto the response unless the handler set one. It does in one service what
//! tower-http's `SetRequestIdLayer` and `PropagateRequestIdLayer` and a header-stripping
//! `MapRequest` did in three, which cost 5,100 instructions a request in the stack's profile
//! (three nested futures, the id copied between the header and `RequestId` extensions on the
//! request and the response); this costs about a quarter of that. The id is not put in the
//! extensions: read the request's `x-request-id` header.
//!
//! tower-http's `MakeRequestUuid` calls `Uuid::new_v4()`, which asks the operating system for
//! 16 bytes on every request (one `getrandom` system call; about 2% of the whole stack's CPU
//! time under load here). Request ids need to be unique and unguessable, not fresh from the
//! kernel: [`RandomRequestId`] draws them from `rand`'s thread-local ChaCha generator (seeded
//! by the OS), the same source as the CSP nonces. It is written here because no crate of the
//! field offers a `MakeRequestId` on a user-space generator.
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::request_id::RandomRequestId;
//! use http::HeaderName;
//! use tower_http::request_id::SetRequestIdLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hi" }))
//!     .layer(SetRequestIdLayer::new(HeaderName::from_static("x-request-id"), RandomRequestId));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use rand::RngCore as _;
use tower_http::request_id::{MakeRequestId, RequestId};
use tower_layer::Layer;
use tower_service::Service;

/// Makes a random version-4 UUID per request (see the module docs).
///
/// ```
/// use buttress::request_id::RandomRequestId;
/// use tower_http::request_id::MakeRequestId;
///
/// let id = RandomRequestId.make_request_id(&http::Request::new(())).unwrap();
/// let text = id.header_value().to_str().unwrap();
/// assert_eq!(text.len(), 36);
/// assert_eq!(&text[14..15], "4"); // version 4
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomRequestId;

/// `x-request-id`, parsed once (a lookup by `&str` parses and hashes the name every time).
pub(crate) static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        random_id().map(RequestId::new)
    }
}

/// A random version-4 UUID as a header value (`None` cannot happen: hex digits and hyphens).
fn random_id() -> Option<HeaderValue> {
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    let id = uuid::Builder::from_random_bytes(raw).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = id.hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).ok()
}

/// The request id step: a fresh id in the request's `x-request-id` (replacing every value a
/// client sent under the name), returned for the response.
pub(crate) fn assign(headers: &mut http::HeaderMap) -> Option<HeaderValue> {
    let id = random_id();
    match &id {
        Some(id) => {
            headers.insert(X_REQUEST_ID.clone(), id.clone());
        }
        None => {
            headers.remove(&X_REQUEST_ID);
        }
    }
    id
}

/// [`assign`], and the response's CSP nonce, from one draw of the thread's CSPRNG and without
/// the formatting machinery: the request id and the nonce are the stack's two per-request
/// random values.
pub(crate) fn assign_with_nonce(
    headers: &mut http::HeaderMap,
) -> (Option<HeaderValue>, crate::context::CspNonce) {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let (id_bytes, nonce_bytes) = raw.split_at(16);
    let mut id_raw = [0u8; 16];
    id_raw.copy_from_slice(id_bytes);
    let mut nonce_raw = [0u8; 16];
    nonce_raw.copy_from_slice(nonce_bytes);
    let id = HeaderValue::from_bytes(&uuid_v4_text(id_raw)).ok();
    match &id {
        Some(id) => {
            headers.insert(X_REQUEST_ID.clone(), id.clone());
        }
        None => {
            headers.remove(&X_REQUEST_ID);
        }
    }
    (id, crate::context::CspNonce::from_random(nonce_raw))
}

/// The hyphenated lower-case text of a version-4 UUID made of `raw` (whose version and variant
/// bits are set here).
fn uuid_v4_text(mut raw: [u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    raw[6] = (raw[6] & 0x0f) | 0x40;
    raw[8] = (raw[8] & 0x3f) | 0x80;
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    out
}

/// Puts the request's id on the response, unless the handler set one.
pub(crate) fn stamp(headers: &mut http::HeaderMap, id: HeaderValue) {
    if let http::header::Entry::Vacant(slot) = headers.entry(&X_REQUEST_ID) {
        slot.insert(id);
    }
}

/// [`stamp`], knowing whether the handler set one (`present`).
pub(crate) fn stamp_present(headers: &mut http::HeaderMap, id: HeaderValue, present: bool) {
    if !present {
        headers.append(X_REQUEST_ID.clone(), id);
    }
}

/// Gives each request a fresh random `x-request-id` (a client's own is dropped) and copies it
/// onto the response unless the handler set one (see the module docs).
///
/// ```
/// use axum::{routing::get, Router};
/// use buttress::request_id::RequestIdLayer;
///
/// let app: Router = Router::new()
///     .route("/", get(|headers: http::HeaderMap| async move {
///         format!("{:?}", headers.get("x-request-id"))
///     }))
///     .layer(RequestIdLayer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = SetRequestIds<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SetRequestIds { inner }
    }
}

/// Service made by [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct SetRequestIds<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SetRequestIds<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let id = assign(req.headers_mut());
        if let Some(id) = &id {
            crate::context::RequestContext::of_mut(req.extensions_mut()).request_id =
                Some(id.clone());
        }
        RequestIdFuture {
            inner: self.inner.call(req),
            id,
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`SetRequestIds`]: the response, with the request's id.
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, B, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(result) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        Poll::Ready(result.map(|mut res| {
            if let Some(id) = this.id.take() {
                stamp(res.headers_mut(), id);
            }
            res
        }))
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

    /// The id the handler saw and the response's, for a request sending `sent` (if any).
    async fn ids(app: Router, sent: Option<&str>) -> (String, Option<String>) {
        let mut req = Request::get("/").body(Body::empty()).unwrap();
        if let Some(sent) = sent {
            req.headers_mut()
                .append("x-request-id", sent.parse().unwrap());
            req.headers_mut()
                .append("x-request-id", sent.parse().unwrap());
        }
        let res = app.oneshot(req).await.unwrap();
        let header = res
            .headers()
            .get_all("x-request-id")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        assert!(header.len() <= 1, "{header:?}");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        (
            String::from_utf8(body.to_vec()).unwrap(),
            header.into_iter().next(),
        )
    }

    fn seen() -> Router {
        Router::new()
            .route(
                "/",
                get(|headers: http::HeaderMap| async move {
                    let all: Vec<_> = headers.get_all("x-request-id").iter().collect();
                    assert_eq!(all.len(), 1, "exactly one id reaches the handler");
                    all[0].to_str().unwrap().to_owned()
                }),
            )
            .layer(RequestIdLayer)
    }

    #[tokio::test]
    async fn the_handler_and_the_response_see_the_same_fresh_id() {
        let (handler, response) = ids(seen(), None).await;
        assert_eq!(Some(&handler), response.as_ref());
        assert_eq!(
            uuid::Uuid::parse_str(&handler).unwrap().get_version_num(),
            4
        );
        let (again, _) = ids(seen(), None).await;
        assert_ne!(handler, again);
    }

    #[tokio::test]
    async fn a_client_chosen_id_is_replaced() {
        let (handler, response) = ids(seen(), Some("forged-id")).await;
        assert_ne!(handler, "forged-id");
        assert_eq!(Some(handler), response);
    }

    #[tokio::test]
    async fn an_id_the_handler_set_on_the_response_is_kept() {
        let app = Router::new()
            .route(
                "/",
                get(|| async { ([("x-request-id", "upstream-7")], "ok") }),
            )
            .layer(RequestIdLayer);
        let (_, response) = ids(app, None).await;
        assert_eq!(response.as_deref(), Some("upstream-7"));
    }

    proptest::proptest! {
        /// The hand-made text is what the `uuid` crate writes for the same bytes.
        #[test]
        fn uuid_text_matches_the_uuid_crate(raw: [u8; 16]) {
            let ours = uuid_v4_text(raw);
            let theirs = uuid::Builder::from_random_bytes(raw).into_uuid().hyphenated().to_string();
            proptest::prop_assert_eq!(std::str::from_utf8(&ours).unwrap(), theirs);
        }
    }

    #[test]
    fn ids_are_uuid_v4_and_distinct() {
        let req = Request::new(());
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| {
                let id = RandomRequestId.make_request_id(&req).expect("id");
                let text = id.header_value().to_str().expect("ascii").to_owned();
                let parsed = uuid::Uuid::parse_str(&text).expect("a UUID");
                assert_eq!(parsed.get_version_num(), 4);
                text
            })
            .collect();
        assert_eq!(ids.len(), 1000);
    }
}

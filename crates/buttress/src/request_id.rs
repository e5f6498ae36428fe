//! Request ids: a random UUID (version 4) per request, from the thread's CSPRNG.
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

use http::{HeaderValue, Request};
use rand::RngCore as _;
use tower_http::request_id::{MakeRequestId, RequestId};

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
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let id = uuid::Builder::from_random_bytes(raw).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = id.hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

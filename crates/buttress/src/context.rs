//! The request's context: what the stack learned about a request before the handler runs,
//! inserted into its extensions once.
//!
//! | field | set by | read with |
//! |---|---|---|
//! | request id | the request id step ([`RequestIdLayer`](crate::request_id::RequestIdLayer)) | [`RequestContext::request_id`], or the `x-request-id` header |
//! | client address | proxy resolution ([`ProxyLayer`](crate::proxy::ProxyLayer)) | [`ClientIp`](crate::proxy::ClientIp) |
//! | scheme and host | proxy resolution | [`RequestOrigin`](crate::proxy::RequestOrigin) |
//! | CSP nonce | the secure headers ([`SecureHeadersLayer`](crate::headers::SecureHeadersLayer)) | [`CspNonce`](crate::headers::CspNonce) |
//!
//! The fused [`Stack`](crate::stack::Stack) fills every field and inserts the context once (one
//! allocation, one map insert); a per-concern layer used alone fills its own field in the
//! context it finds, or inserts one. The extractors read from here, so they work the same
//! behind either.
//!
//! This module is a leaf: it holds plain values and imports no other concern (only the `host`
//! leaf), so every concern can depend on it without an import circle.
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::RequestContext;
//!
//! async fn handler(ctx: RequestContext) -> String {
//!     format!("{:?} {:?}", ctx.client(), ctx.request_id())
//! }
//! let app: Router = Router::new().route("/", get(handler));
//! ```

use std::net::IpAddr;

use http::{Extensions, HeaderValue};

/// Set by the server on each request: whether the connection itself is TLS, and on a plain
/// listener of a server that also serves TLS, the TLS listener's port (for HTTPS redirects).
///
/// ```
/// let plain = buttress::proxy::Transport::default();
/// assert!(!plain.tls && plain.https_port.is_none());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transport {
    /// The connection is TLS.
    pub tls: bool,
    /// The port of the same server's TLS listener, if it has one.
    pub https_port: Option<u16>,
}

/// The client's IP address as resolved by the proxy step (forwarding headers believed only
/// from trusted proxies).
///
/// ```
/// use buttress::proxy::ClientIp;
/// async fn handler(ClientIp(ip): ClientIp) -> String { ip.to_string() }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// `http` or `https`.
///
/// ```
/// assert_eq!(buttress::proxy::Scheme::Https.as_str(), "https");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The scheme and host the client used, as resolved by the proxy step.
///
/// ```
/// use buttress::proxy::{RequestOrigin, Scheme};
/// let o = RequestOrigin { scheme: Scheme::Https, host: "example.org:8443".into() };
/// assert_eq!(o.origin(), "https://example.org:8443");
/// assert_eq!(o.hostname(), "example.org");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The scheme.
    pub scheme: Scheme,
    /// The host, lower-cased, with a port when one was given (`example.org`, `localhost:8000`).
    pub host: String,
}

impl RequestOrigin {
    /// The web origin, e.g. `https://example.org`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.host)
    }

    /// The host without its port.
    pub fn hostname(&self) -> &str {
        crate::host::hostname(&self.host)
    }

    /// Whether the client used HTTPS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }
}

/// A per-response nonce: 128 random bits, base64 (22 characters). Read it in handlers and
/// put it on inline `<script>`/`<style>` elements.
///
/// ```
/// use axum::response::Html;
/// use buttress::headers::CspNonce;
///
/// async fn page(nonce: CspNonce) -> Html<String> {
///     Html(format!("<script nonce=\"{nonce}\">console.log('hi')</script>"))
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CspNonce {
    text: [u8; 22],
}

impl CspNonce {
    /// A fresh nonce from the thread's CSPRNG (ChaCha, seeded by the OS).
    ///
    /// ```
    /// use buttress::headers::CspNonce;
    /// assert_eq!(CspNonce::generate().as_str().len(), 22);
    /// ```
    pub fn generate() -> Self {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let mut text = [0u8; 22];
        let written = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(raw, &mut text)
            .unwrap_or(0);
        debug_assert_eq!(written, 22);
        CspNonce { text }
    }

    /// The nonce of 128 random bits `raw`, written as URL-safe base64 without padding by hand
    /// (the stack draws its random values at once).
    pub(crate) fn from_random(raw: [u8; 16]) -> Self {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut text = [0u8; 22];
        let sextet = |v: u32| ALPHABET[(v & 63) as usize];
        for (group, chunk) in raw.chunks(3).enumerate() {
            let at = group * 4;
            match *chunk {
                [a, b, c] => {
                    let v = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
                    text[at] = sextet(v >> 18);
                    text[at + 1] = sextet(v >> 12);
                    text[at + 2] = sextet(v >> 6);
                    text[at + 3] = sextet(v);
                }
                // 16 = 5 * 3 + 1: the last byte makes two characters.
                [a] => {
                    let v = u32::from(a) << 16;
                    text[at] = sextet(v >> 18);
                    text[at + 1] = sextet(v >> 12);
                }
                _ => {}
            }
        }
        CspNonce { text }
    }

    /// The nonce as text (URL-safe base64, no padding).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or("")
    }
}

impl std::fmt::Display for CspNonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for CspNonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CspNonce({})", self.as_str())
    }
}

/// What the stack learned about a request before its handler: request id, client, origin,
/// nonce (and the session, for the session module).
/// Also an extractor.
///
/// ```
/// use buttress::RequestContext;
/// let ctx = RequestContext::default();
/// assert!(ctx.client().is_none() && ctx.nonce().is_none());
/// ```
#[derive(Clone, Default)]
pub struct RequestContext {
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) client: Option<IpAddr>,
    pub(crate) origin: Option<RequestOrigin>,
    pub(crate) nonce: Option<CspNonce>,
    /// The request's session, kept by the session module (a leaf cannot name its type).
    pub(crate) session: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("request_id", &self.request_id)
            .field("client", &self.client)
            .field("origin", &self.origin)
            .field("nonce", &self.nonce)
            .field("session", &self.session.is_some())
            .finish()
    }
}

impl RequestContext {
    /// The request's id (also in its `x-request-id` header).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_ref().and_then(|v| v.to_str().ok())
    }

    /// The client's address, once the proxy step resolved it.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }

    /// The scheme and host the client used, once the proxy step resolved them.
    pub fn origin(&self) -> Option<&RequestOrigin> {
        self.origin.as_ref()
    }

    /// This response's CSP nonce, once the secure headers made one.
    pub fn nonce(&self) -> Option<CspNonce> {
        self.nonce
    }

    /// The context in `extensions`, if a layer put one there.
    pub(crate) fn of(extensions: &Extensions) -> Option<&RequestContext> {
        extensions.get::<RequestContext>()
    }

    /// The context in `extensions`, inserted empty first if there is none: for a per-concern
    /// layer used alone.
    pub(crate) fn of_mut(extensions: &mut Extensions) -> &mut RequestContext {
        extensions.get_or_insert_default::<RequestContext>()
    }
}

/// The client address in `extensions`: the resolved one, if any.
pub(crate) fn client_of(extensions: &Extensions) -> Option<IpAddr> {
    RequestContext::of(extensions).and_then(|c| c.client)
}

/// The resolved origin in `extensions`, if any.
pub(crate) fn origin_of(extensions: &Extensions) -> Option<&RequestOrigin> {
    RequestContext::of(extensions).and_then(|c| c.origin.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    proptest::proptest! {
        /// The hand-made encoding is the `base64` crate's URL-safe, unpadded one.
        #[test]
        fn nonce_text_is_base64url(raw: [u8; 16]) {
            let theirs = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            let ours = CspNonce::from_random(raw);
            proptest::prop_assert_eq!(ours.as_str(), theirs);
        }
    }
}

//! Secure response headers, set on every response: pages, redirects, 403s, 429s and errors.
//!
//! [`SecureHeadersLayer::new`] is the safe set, which earns an A+ under Mozilla HTTP
//! Observatory's classic and MDN v2 scoring (our test suite scores it with both rule sets):
//!
//! | header | default | what it does |
//! |---|---|---|
//! | `Content-Security-Policy` | [`Csp::strict`] with a fresh nonce per response | blocks injected scripts, styles, plugins, framing, `<base>` and off-site form posts |
//! | `Strict-Transport-Security` | `max-age=31536000; includeSubDomains`, **only on HTTPS responses** | browsers use HTTPS only for a year |
//! | `X-Frame-Options` | `DENY` | no framing in browsers without `frame-ancestors` |
//! | `X-Content-Type-Options` | `nosniff` | no MIME sniffing |
//! | `Referrer-Policy` | `strict-origin-when-cross-origin` | no paths or queries leak to other sites |
//! | `Permissions-Policy` | camera, microphone, geolocation, payment, USB, … all `()` | powerful features off |
//! | `Cross-Origin-Opener-Policy` | `same-origin` | no cross-window access (XS-Leaks) |
//! | `Cross-Origin-Resource-Policy` | `same-origin` | other sites cannot embed responses |
//! | `Origin-Agent-Cluster` | `?1` | origin-keyed agent clusters |
//! | `Server`, `X-Powered-By` | removed | no version banners |
//!
//! A header the handler set itself is kept (a handler that needs a different CSP sets it, or
//! returns a [`Csp`] as a response part, or its route uses [`CspOverrideLayer`]).
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::headers::{CspNonce, SecureHeadersLayer};
//!
//! async fn page(nonce: CspNonce) -> axum::response::Html<String> {
//!     axum::response::Html(format!("<style nonce=\"{nonce}\">body{{margin:0}}</style>"))
//! }
//! let app: Router = Router::new()
//!     .route("/", get(page))
//!     .layer(SecureHeadersLayer::new());
//! ```

mod csp;
mod report;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponseParts, ResponseParts};
use http::{header, HeaderName, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

pub use crate::context::CspNonce;
pub use csp::{Csp, CspError, Directive, Source};
pub use report::{csp_report, dropped_reports, CspReports, REPORT_BODY_LIMIT};

use crate::context::{RequestContext, RequestOrigin};

/// `x-powered-by`, parsed once.
static X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");

/// The HSTS lifetime by default: one year.
///
/// ```
/// assert_eq!(buttress::headers::DEFAULT_HSTS_MAX_AGE.as_secs(), 31_536_000);
/// ```
pub const DEFAULT_HSTS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(31_536_000);

/// `Strict-Transport-Security` settings.
///
/// ```
/// use buttress::headers::Hsts;
/// assert_eq!(Hsts::default().value(), "max-age=31536000; includeSubDomains");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hsts {
    /// Lifetime in seconds.
    pub max_age: u64,
    /// Adds `includeSubDomains`.
    pub include_subdomains: bool,
    /// Adds `preload` (submit the site to the preload list yourself; hard to undo).
    pub preload: bool,
}

impl Default for Hsts {
    fn default() -> Self {
        Hsts {
            max_age: DEFAULT_HSTS_MAX_AGE.as_secs(),
            include_subdomains: true,
            preload: false,
        }
    }
}

impl Hsts {
    /// The header value.
    pub fn value(&self) -> String {
        let mut v = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        v
    }
}

/// The default `Permissions-Policy`: powerful features denied to every origin.
pub const DEFAULT_PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), serial=(), usb=(), xr-spatial-tracking=()";

/// Layer that sets secure headers. See the [module docs](self) for the defaults.
#[derive(Debug, Clone)]
#[must_use]
pub struct SecureHeadersLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    csp: Option<Csp>,
    /// `csp` rendered once for HTTP (`[0]`) and HTTPS (`[1]`), with holes for the nonce.
    csp_templates: [Option<csp::Template>; 2],
    csp_report_only: bool,
    hsts: Option<HeaderValue>,
    fixed: Vec<(HeaderName, HeaderValue)>,
    /// Bit `n`: some name [`scan`] looks for is `n` bytes long (names of 64 bytes or more set
    /// bit 63). A response's header of another length is none of them: one test, no compare.
    name_lengths: u64,
}

/// The names [`scan`] looks for besides the fixed headers.
const SCANNED: [&str; 8] = [
    "content-security-policy",
    "content-security-policy-report-only",
    "strict-transport-security",
    "server",
    "x-powered-by",
    "ratelimit",
    "x-ratelimit-limit",
    "x-request-id",
];

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// [`Config::name_lengths`] of `fixed`.
fn name_lengths(fixed: &[(HeaderName, HeaderValue)]) -> u64 {
    let fixed = fixed.iter().map(|(n, _)| n.as_str().len());
    SCANNED
        .iter()
        .map(|n| n.len())
        .chain(fixed)
        .fold(0, |bits, len| bits | length_bit(len))
}

impl Default for SecureHeadersLayer {
    fn default() -> Self {
        SecureHeadersLayer::new()
    }
}

impl SecureHeadersLayer {
    /// The safe set described in the [module docs](self).
    pub fn new() -> Self {
        let fixed = [
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
            ("permissions-policy", DEFAULT_PERMISSIONS_POLICY),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("origin-agent-cluster", "?1"),
        ]
        .into_iter()
        .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
        .collect();
        let mut config = Config {
            csp: Some(Csp::strict()),
            csp_templates: [None, None],
            csp_report_only: false,
            hsts: HeaderValue::from_str(&Hsts::default().value()).ok(),
            fixed,
            name_lengths: 0,
        };
        config.csp_templates = templates(config.csp.as_ref());
        config.name_lengths = name_lengths(&config.fixed);
        SecureHeadersLayer {
            config: Arc::new(config),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        let config = Arc::make_mut(&mut self.config);
        f(config);
        config.csp_templates = templates(config.csp.as_ref());
        config.name_lengths = name_lengths(&config.fixed);
        self
    }

    /// Replaces the Content-Security-Policy.
    pub fn csp(self, csp: Csp) -> Self {
        self.edit(|c| c.csp = Some(csp))
    }

    /// Edits the Content-Security-Policy in place (adds a source, a directive), keeping the
    /// rest; a layer that sends none edits the strict default.
    ///
    /// ```
    /// use buttress::headers::{Directive, SecureHeadersLayer, Source};
    /// let layer = SecureHeadersLayer::new()
    ///     .map_csp(|csp| csp.directive(Directive::ImgSrc, [Source::SelfOrigin, Source::Scheme("data:".into())]));
    /// ```
    pub fn map_csp(self, f: impl FnOnce(Csp) -> Csp) -> Self {
        self.edit(|c| c.csp = Some(f(c.csp.take().unwrap_or_else(Csp::strict))))
    }

    /// Sends no Content-Security-Policy (`buttress check` and `buttress audit` will flag it).
    pub fn no_csp(self) -> Self {
        self.edit(|c| c.csp = None)
    }

    /// Sends the policy as `Content-Security-Policy-Report-Only`: violations are reported,
    /// nothing is blocked. For trying a policy out.
    pub fn csp_report_only(self, on: bool) -> Self {
        self.edit(|c| c.csp_report_only = on)
    }

    /// Sets HSTS (sent only on HTTPS responses); `None` turns it off.
    pub fn hsts(self, hsts: Option<Hsts>) -> Self {
        self.edit(|c| c.hsts = hsts.and_then(|h| HeaderValue::from_str(&h.value()).ok()))
    }

    /// Sets (or replaces) one of the fixed headers, e.g. `Referrer-Policy: no-referrer`.
    pub fn header(self, name: HeaderName, value: HeaderValue) -> Self {
        self.edit(|c| match c.fixed.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => c.fixed.push((name, value)),
        })
    }

    /// The configuration, for the stack.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Stops sending one of the fixed headers.
    pub fn without(self, name: HeaderName) -> Self {
        self.edit(|c| c.fixed.retain(|(n, _)| *n != name))
    }
}

impl<S> Layer<S> for SecureHeadersLayer {
    type Service = SecureHeaders<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SecureHeaders {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Service made by [`SecureHeadersLayer`].
#[derive(Debug, Clone)]
pub struct SecureHeaders<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SecureHeaders<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = HeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let nonce = CspNonce::generate();
        RequestContext::of_mut(req.extensions_mut()).nonce = Some(nonce);
        HeadersFuture {
            inner: self.inner.call(req),
            config: self.config.clone(),
            nonce,
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`SecureHeaders`].
    pub struct HeadersFuture<F> {
        #[pin]
        inner: F,
        config: Arc<Config>,
        nonce: CspNonce,
    }
}

impl<F, B> std::future::Future for HeadersFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(Ok(mut res)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        let https = res
            .extensions()
            .get::<RequestOrigin>()
            .is_some_and(RequestOrigin::is_https);
        apply(this.config, *this.nonce, https, &mut res);
        // The error pages (outside this layer) put the nonce in the pages they render, for
        // error responses only; the handler had it from the request.
        if res.status().as_u16() >= 400 {
            res.extensions_mut().insert(*this.nonce);
        }
        Poll::Ready(Ok(res))
    }
}

/// The templates of `csp` for HTTP and HTTPS ([`Config::csp_templates`]).
fn templates(csp: Option<&Csp>) -> [Option<csp::Template>; 2] {
    [false, true].map(|https| csp.and_then(|c| csp::Template::new(c, https)))
}

/// Which of the headers the stack sets a response already has (the handler's win), found in
/// one pass over the response's header names: a handful of comparisons for a typical response,
/// instead of a hash lookup per header the stack might add.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Present {
    /// Bit `i`: the `i`th fixed header of the [`Config`].
    fixed: u64,
    csp: bool,
    csp_report_only: bool,
    hsts: bool,
    /// `Server` or `X-Powered-By`, to remove.
    banner: bool,
    /// `RateLimit` (the IETF fields) and `X-RateLimit-Limit` (the legacy ones).
    pub(crate) ratelimit: bool,
    pub(crate) x_ratelimit: bool,
    pub(crate) request_id: bool,
}

/// The [`Present`] of `headers` for `config`.
pub(crate) fn scan(config: &Config, headers: &http::HeaderMap) -> Present {
    let mut present = Present::default();
    for name in headers.keys() {
        let name = name.as_str();
        if config.name_lengths & length_bit(name.len()) == 0 {
            continue;
        }
        if let Some(i) = config.fixed.iter().position(|(n, _)| n.as_str() == name) {
            present.fixed |= 1u64.checked_shl(i as u32).unwrap_or(0);
            continue;
        }
        match name {
            "content-security-policy" => present.csp = true,
            "content-security-policy-report-only" => present.csp_report_only = true,
            "strict-transport-security" => present.hsts = true,
            "server" | "x-powered-by" => present.banner = true,
            "ratelimit" => present.ratelimit = true,
            "x-ratelimit-limit" => present.x_ratelimit = true,
            "x-request-id" => present.request_id = true,
            _ => {}
        }
    }
    present
}

/// Sets the secure headers on `res`, with `nonce` in the CSP, HSTS only when the request came
/// over `https`; a header the handler set wins.
pub(crate) fn apply<B>(config: &Config, nonce: CspNonce, https: bool, res: &mut Response<B>) {
    let present = scan(config, res.headers());
    apply_present(config, nonce, https, present, res);
}

/// [`apply`], knowing what the response already has.
pub(crate) fn apply_present<B>(
    config: &Config,
    nonce: CspNonce,
    https: bool,
    present: Present,
    res: &mut Response<B>,
) {
    let override_csp = res.extensions_mut().remove::<Csp>();
    let headers = res.headers_mut();
    // Room for every header below at once: growing the map one insert at a time rehashes it
    // several times per response.
    headers.reserve(config.fixed.len() + 2);
    for (i, (name, value)) in config.fixed.iter().enumerate() {
        // Past 64 fixed headers the bit set cannot tell: look the name up.
        let set = match 1u64.checked_shl(i as u32) {
            Some(bit) => present.fixed & bit != 0,
            None => headers.contains_key(name),
        };
        if !set {
            headers.append(name.clone(), value.clone());
        }
    }
    // Only the handler's own header of the same name wins: a handler trying a policy out in
    // `Content-Security-Policy-Report-Only` must not switch the enforcing one off.
    let (csp_name, handler_set_csp) = if config.csp_report_only {
        (
            header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
            present.csp_report_only,
        )
    } else {
        (header::CONTENT_SECURITY_POLICY, present.csp)
    };
    if !handler_set_csp {
        let template = &config.csp_templates[usize::from(https)];
        let value = match (&override_csp, template) {
            (None, Some(template)) => Some(template.render(nonce.as_str())),
            _ => override_csp
                .as_ref()
                .or(config.csp.as_ref())
                .map(|policy| policy.render(nonce.as_str(), https)),
        };
        if let Some(Ok(v)) = value.map(HeaderValue::try_from) {
            headers.append(csp_name, v);
        }
    }
    if https && !present.hsts {
        if let Some(v) = &config.hsts {
            headers.append(header::STRICT_TRANSPORT_SECURITY, v.clone());
        }
    }
    if present.banner {
        headers.remove(header::SERVER);
        headers.remove(&X_POWERED_BY);
    }
}

impl IntoResponseParts for Csp {
    type Error = Infallible;
    /// Returning a [`Csp`] from a handler replaces the policy for that response.
    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

/// Route layer that replaces the CSP for the routes it wraps.
///
/// ```
/// use axum::{routing::get, Router};
/// use buttress::headers::{Csp, CspOverrideLayer, Directive, Source};
///
/// let map_csp = Csp::strict().directive(Directive::ImgSrc, [Source::SelfOrigin, Source::Scheme("https:".into())]);
/// let app: Router = Router::new()
///     .route("/map", get(|| async { "map" }))
///     .route_layer(CspOverrideLayer::new(map_csp));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CspOverrideLayer {
    csp: Arc<Csp>,
}

impl CspOverrideLayer {
    /// Uses `csp` for the wrapped routes.
    pub fn new(csp: Csp) -> Self {
        CspOverrideLayer { csp: Arc::new(csp) }
    }
}

impl<S> Layer<S> for CspOverrideLayer {
    type Service = CspOverride<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CspOverride {
            inner,
            csp: self.csp.clone(),
        }
    }
}

/// Service made by [`CspOverrideLayer`].
#[derive(Debug, Clone)]
pub struct CspOverride<S> {
    inner: S,
    csp: Arc<Csp>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CspOverride<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let fut = self.inner.call(req);
        let csp = self.csp.clone();
        Box::pin(async move {
            let mut res = fut.await?;
            if res.extensions().get::<Csp>().is_none() {
                res.extensions_mut().insert((*csp).clone());
            }
            Ok(res)
        })
    }
}

crate::errors::context_extractor!(CspNonce, "SecureHeadersLayer", |ctx| ctx.nonce);

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn one_pass_finds_every_header_the_handler_set() {
        let layer = SecureHeadersLayer::new();
        let config = layer.config();
        let mut h = http::HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        assert_eq!(scan(config, &h).fixed, 0);
        for name in [
            "x-frame-options",
            "content-security-policy",
            "server",
            "ratelimit",
            "x-ratelimit-limit",
            "x-request-id",
            "strict-transport-security",
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
        }
        let p = scan(config, &h);
        assert_eq!(p.fixed, 1, "x-frame-options is the first fixed header");
        assert!(p.csp && p.banner && p.ratelimit && p.x_ratelimit && p.request_id && p.hsts);
        assert!(!p.csp_report_only);
        // A fixed header added later, of a length no other name has, is found too.
        let custom = SecureHeadersLayer::new().header(
            HeaderName::from_static("x-a-very-long-custom-security-header-name"),
            HeaderValue::from_static("1"),
        );
        let mut h = http::HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-a-very-long-custom-security-header-name"),
            HeaderValue::from_static("0"),
        );
        let p = scan(custom.config(), &h);
        assert_ne!(p.fixed, 0);
    }
}

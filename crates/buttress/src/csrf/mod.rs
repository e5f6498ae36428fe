//! CSRF defence: an origin verdict AND a session-bound token for every unsafe request.
//!
//! For `POST`, `PUT`, `PATCH`, `DELETE` (any method but GET, HEAD, OPTIONS, TRACE):
//!
//! 1. **Origin verdict.** `Sec-Fetch-Site: cross-site` is refused; `same-site` is refused unless
//!    allowed (sibling subdomains can be hostile); `same-origin` passes. Without Fetch
//!    Metadata, `Origin` must equal the request's own origin (as resolved by the proxy layer)
//!    or a trusted origin; without `Origin`, `Referer` must; with none of them the request is
//!    refused.
//! 2. **Token.** The session's CSRF secret, masked afresh per response ([`CsrfToken`]), sent in
//!    the form field `csrf_token` (URL-encoded forms) or the header `X-CSRF-Token` /
//!    `X-CSRFToken`, compared in constant time. The secret rotates with the session id on login
//!    and logout, so tokens from before do not work after.
//!
//! Both must pass: Flask-WTF checks only the token (and the Referer on HTTPS), Django accepts a
//! matching token from a same-site attacker, Fetch-Metadata alone fails on older browsers.
//! Failures are a 403 with a typed reason, logged as a security event without the token:
//!
//! | reason | meaning |
//! |---|---|
//! | `cross-site` | `Sec-Fetch-Site: cross-site` |
//! | `same-site` | `Sec-Fetch-Site: same-site`, not allowed |
//! | `origin-mismatch` | `Origin` (or `Referer`) is another origin, or `null` |
//! | `no-origin` | neither Fetch Metadata, `Origin` nor `Referer` |
//! | `missing-token` | no token in the header or form |
//! | `bad-token` | a token that does not belong to this session |
//!
//! Exempt paths (webhooks, the CSP report endpoint) are listed explicitly and logged at start-up.
//!
//! # Example
//!
//! ```
//! use axum::{routing::{get, post}, Router};
//! use buttress::csrf::{CsrfLayer, CsrfToken};
//! use buttress::secret::Keyring;
//! use buttress::session::SessionLayer;
//!
//! let app: Router = Router::new()
//!     .route("/form", get(|t: CsrfToken| async move { t.masked() }))
//!     .route("/form", post(|| async { "accepted" }))
//!     .layer(CsrfLayer::new().exempt("/webhooks/payments"))
//!     .layer(SessionLayer::cookie(&Keyring::ephemeral()));
//! ```
//!
//! Multipart forms must send the token in the `X-CSRF-Token` header (the layer does not parse
//! multipart bodies).

mod token;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use tower_layer::Layer;
use tower_service::Service;

pub use token::{mask_token, verify_token, CsrfToken};

use crate::context::RequestOrigin;
use crate::errors::Problem;
pub use crate::host::TrustedOrigin;
use crate::host::WebOrigin;
use crate::session::Session;

/// The form field carrying the token.
pub const FORM_FIELD: &str = "csrf_token";
/// The headers carrying the token.
pub const HEADERS: [&str; 2] = ["x-csrf-token", "x-csrftoken"];

/// Why an unsafe request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// `Sec-Fetch-Site: cross-site`.
    #[error("cross-site")]
    CrossSite,
    /// `Sec-Fetch-Site: same-site`, not allowed.
    #[error("same-site")]
    SameSite,
    /// `Origin`/`Referer` of another origin.
    #[error("origin-mismatch")]
    OriginMismatch,
    /// No Fetch Metadata, `Origin` or `Referer`.
    #[error("no-origin")]
    NoOrigin,
    /// No token.
    #[error("missing-token")]
    MissingToken,
    /// A token not of this session.
    #[error("bad-token")]
    BadToken,
}

impl CsrfRejection {
    /// The stable reason string.
    pub fn reason(self) -> &'static str {
        match self {
            CsrfRejection::CrossSite => "cross-site",
            CsrfRejection::SameSite => "same-site",
            CsrfRejection::OriginMismatch => "origin-mismatch",
            CsrfRejection::NoOrigin => "no-origin",
            CsrfRejection::MissingToken => "missing-token",
            CsrfRejection::BadToken => "bad-token",
        }
    }

    fn detail(self) -> &'static str {
        match self {
            CsrfRejection::CrossSite | CsrfRejection::SameSite | CsrfRejection::OriginMismatch => {
                "This request came from another site and was refused."
            }
            CsrfRejection::NoOrigin => "The browser did not say where this request came from, so it was refused.",
            CsrfRejection::MissingToken | CsrfRejection::BadToken => {
                "The form has expired or was not sent from this site. Reload the page and try again."
            }
        }
    }

    fn into_problem(self) -> Problem {
        Problem::new(StatusCode::FORBIDDEN)
            .with_title("Forbidden: request refused")
            .with_kind(self.reason())
            .with_detail(self.detail())
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    trusted_origins: Vec<TrustedOrigin>,
    allow_same_site: bool,
    exempt: Vec<String>,
    max_form_bytes: usize,
}

/// Layer enforcing the CSRF checks. Install it inside [`SessionLayer`](crate::session::SessionLayer)
/// and [`ProxyLayer`](crate::proxy::ProxyLayer).
#[derive(Debug, Clone)]
#[must_use]
pub struct CsrfLayer {
    config: Arc<Config>,
}

impl Default for CsrfLayer {
    fn default() -> Self {
        CsrfLayer::new()
    }
}

impl CsrfLayer {
    /// Same-origin only, no exemptions, same-site refused.
    pub fn new() -> Self {
        CsrfLayer {
            config: Arc::new(Config {
                max_form_bytes: 1024 * 1024,
                ..Config::default()
            }),
        }
    }

    /// Also accepts unsafe requests whose `Origin` is `origin` (`https://admin.example.org`,
    /// or `https://*.example.org` for any subdomain); the token is still required.
    ///
    /// ```
    /// use buttress::csrf::CsrfLayer;
    /// let layer = CsrfLayer::new().trust_origin("https://admin.example.org".parse()?);
    /// # Ok::<(), buttress::proxy::HostError>(())
    /// ```
    pub fn trust_origin(mut self, origin: TrustedOrigin) -> Self {
        Arc::make_mut(&mut self.config).trusted_origins.push(origin);
        self
    }

    /// Accepts `Sec-Fetch-Site: same-site` (sibling subdomains); the token is still required.
    pub fn allow_same_site(mut self, allow: bool) -> Self {
        Arc::make_mut(&mut self.config).allow_same_site = allow;
        self
    }

    /// Exempts one exact path (a webhook that authenticates itself). Logged at start-up.
    pub fn exempt(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        tracing::info!(path = %path, "CSRF exemption");
        Arc::make_mut(&mut self.config).exempt.push(path);
        self
    }

    /// The configuration, for the stack.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The exempt paths.
    pub fn exemptions(&self) -> &[String] {
        &self.config.exempt
    }
}

impl<S> Layer<S> for CsrfLayer {
    type Service = Csrf<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Csrf {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Service made by [`CsrfLayer`].
#[derive(Debug, Clone)]
pub struct Csrf<S> {
    inner: S,
    config: Arc<Config>,
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl<S> Service<Request<Body>> for Csrf<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        futures_util::future::Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        use futures_util::future::Either;
        if !needs_check(&self.config, &req) {
            // Safe methods and exempt paths: the inner future itself, no allocation.
            return Either::Left(self.inner.call(req));
        }
        // The service that was polled ready handles this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Either::Right(Box::pin(async move {
            let origin = crate::context::origin_of(req.extensions()).cloned();
            let verdict = origin_verdict(&config, req.headers(), origin.as_ref());
            let session = Session::of(req.extensions());
            let (req, verdict) = match (verdict, session) {
                (Err(r), _) => (req, Err(Refusal::Csrf(r))),
                (Ok(()), Some(session)) => check_token(&config, req, &session).await,
                (Ok(()), None) => {
                    tracing::error!("CsrfLayer needs SessionLayer outside it");
                    let res = Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response();
                    (req, Err(Refusal::Other(res)))
                }
            };
            let mut res = match verdict {
                Ok(()) => inner.call(req).await?,
                Err(refusal) => refusal.into_response(&req),
            };
            vary(&mut res);
            Ok(res)
        }))
    }
}

/// Whether `req` is checked: an unsafe method on a path that is not exempt.
pub(crate) fn needs_check<B>(config: &Config, req: &Request<B>) -> bool {
    !is_safe(req.method()) && !config.exempt.iter().any(|p| p == req.uri().path())
}

/// A checked response depends on the request's `Origin` and `Sec-Fetch-Site`.
pub(crate) fn vary(res: &mut Response) {
    res.headers_mut().append(
        header::VARY,
        HeaderValue::from_static("Origin, Sec-Fetch-Site"),
    );
}

/// Why a checked request does not reach the handler.
pub(crate) enum Refusal {
    /// A CSRF failure: 403 with its reason.
    Csrf(CsrfRejection),
    /// Something else answered first (a form too large, the session store down).
    Other(Response),
}

impl Refusal {
    /// The response for this refusal to `req`, logged as a security event without the token.
    pub(crate) fn into_response<B>(self, req: &Request<B>) -> Response {
        match self {
            Refusal::Csrf(r) => {
                tracing::warn!(
                    target: "buttress::security",
                    reason = r.reason(),
                    method = %req.method(),
                    path = %req.uri().path(),
                    client = ?crate::context::client_of(req.extensions()),
                    "CSRF check refused a request"
                );
                r.into_problem().into_response()
            }
            Refusal::Other(res) => res,
        }
    }

    /// The response, without the log line: the fused stack logs its own event.
    pub(crate) fn into_quiet_response(self) -> Response {
        match self {
            Refusal::Csrf(r) => r.into_problem().into_response(),
            Refusal::Other(res) => res,
        }
    }

    /// The CSRF reason, if this is a CSRF failure.
    pub(crate) fn csrf_reason(&self) -> Option<&'static str> {
        match self {
            Refusal::Csrf(r) => Some(r.reason()),
            Refusal::Other(_) => None,
        }
    }
}

/// The token half of the check, after [`origin_verdict`] passed: the token from the header or
/// the (bounded) URL-encoded form must belong to `session`. Gives the request back, rebuilt
/// with its body when the form was read.
pub(crate) async fn check_token(
    config: &Config,
    req: Request<Body>,
    session: &Session,
) -> (Request<Body>, Result<(), Refusal>) {
    let (req, token) = match header_token(req.headers()) {
        Some(t) => (req, Some(t)),
        None => match form_token(req, config.max_form_bytes).await {
            Ok(pair) => pair,
            Err(res) => return (Request::new(Body::empty()), Err(Refusal::Other(res))),
        },
    };
    let Some(token) = token else {
        return (req, Err(Refusal::Csrf(CsrfRejection::MissingToken)));
    };
    match session.existing_csrf_secret().await {
        Ok(Some(secret)) if verify_token(&token, &secret) => (req, Ok(())),
        Ok(_) => (req, Err(Refusal::Csrf(CsrfRejection::BadToken))),
        Err(e) => (req, Err(Refusal::Other(e.into_response()))),
    }
}

/// The origin half of the check: Fetch Metadata, else `Origin`, else `Referer` against the
/// request's own origin (as the proxy step resolved it) and the trusted origins.
pub(crate) fn origin_verdict(
    config: &Config,
    headers: &HeaderMap,
    own: Option<&RequestOrigin>,
) -> Result<(), CsrfRejection> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    match fetch_site.as_deref() {
        Some("cross-site") => return Err(CsrfRejection::CrossSite),
        Some("same-site") if !config.allow_same_site => return Err(CsrfRejection::SameSite),
        Some("same-origin") => return Ok(()),
        _ => {}
    }
    let own = own.and_then(|o| WebOrigin::of(o.is_https(), &o.host));
    let allowed = |origin: &WebOrigin| {
        own.as_ref() == Some(origin) || config.trusted_origins.iter().any(|t| t.matches(origin))
    };
    let header_text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header_text(header::ORIGIN) {
        // `null` (a sandboxed frame, a redirect across origins) parses as no origin at all.
        return match WebOrigin::parse(origin) {
            Some(o) if allowed(&o) => Ok(()),
            _ => Err(CsrfRejection::OriginMismatch),
        };
    }
    if let Some(referer) = header_text(header::REFERER) {
        return match WebOrigin::of_url(referer) {
            Some(o) if allowed(&o) => Ok(()),
            _ => Err(CsrfRejection::OriginMismatch),
        };
    }
    if fetch_site.as_deref() == Some("same-site") {
        // Allowed same-site with no Origin: cannot be checked further; the token decides.
        return Ok(());
    }
    Err(CsrfRejection::NoOrigin)
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    HEADERS
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Reads a URL-encoded body (bounded) for the `csrf_token` field and rebuilds the request.
async fn form_token(
    req: Request<Body>,
    limit: usize,
) -> Result<(Request<Body>, Option<String>), Response> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
                .with_detail("The form is too large.")
                .into_response())
        }
    };
    let token = form_urlencoded_field(&bytes, FORM_FIELD);
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let mut it = pair.splitn(2, |b| *b == b'=');
        let key = it.next()?;
        (key == name.as_bytes())
            .then(|| String::from_utf8_lossy(it.next().unwrap_or(b"")).into_owned())
    })
}

#[cfg(test)]
mod tests;

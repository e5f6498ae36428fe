//! Safe error responses: no stack trace, path, SQL or internal message leaves the process.
//!
//! Two pieces work together:
//!
//! - [`catch_panic_layer`] (tower-http's `CatchPanicLayer` with our handler) turns a panic into
//!   a bare 500 that carries a [`Problem`]; the panic message is kept aside as debug detail.
//! - [`ErrorPagesLayer`] renders every error response (status >= 400) on its way out, as HTML
//!   or `application/problem+json` chosen by the request's `Accept`, with the request id so the
//!   logs can be found. A response that carries a [`Problem`] is rendered from it; a response
//!   marked [`KeepBody`] (an application's own error page) passes untouched; any other error
//!   body is replaced by the generic page for its status. Its original text is shown as debug
//!   detail only when debug is on (Development) **and** the client is on loopback: a loopback
//!   peer (after trusted proxies), a loopback `Host` (not a DNS-rebinding page under its own
//!   name) and no forwarding header (not a tunnel relaying others).
//!
//! | response | Production | Development, loopback client |
//! |---|---|---|
//! | `Problem` | its title, detail and members | same |
//! | `KeepBody` | untouched | untouched |
//! | other 4xx/5xx | generic page for the status | generic page + original body as detail |
//! | panic | generic 500 | generic 500 + panic message |
//!
//! # Example
//!
//! ```
//! use axum::{http::StatusCode, routing::get, Router};
//! use buttress::errors::{ErrorPagesLayer, Problem};
//!
//! async fn handler() -> Result<&'static str, Problem> {
//!     Err(Problem::new(StatusCode::CONFLICT).with_detail("that name is taken"))
//! }
//! let app: Router = Router::new()
//!     .route("/", get(handler))
//!     .layer(ErrorPagesLayer::new(false));
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, IntoResponseParts, ResponseParts};
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use tower_layer::Layer;
use tower_service::Service;

use crate::headers::CspNonce;
use crate::proxy::ClientIp;

/// The most of an original error body kept as debug detail.
const DEBUG_DETAIL_LIMIT: usize = 16 * 1024;

/// An error for the client, rendered as `application/problem+json` ([RFC 9457]) or HTML.
/// Everything in it is shown to the client, so put nothing internal in it.
///
/// ```
/// use buttress::errors::Problem;
/// use http::StatusCode;
/// let p = Problem::new(StatusCode::FORBIDDEN).with_kind("bad-token").with_detail("The form expired; reload and try again.");
/// assert_eq!(p.status(), StatusCode::FORBIDDEN);
/// assert_eq!(p.kind(), Some("bad-token"));
/// ```
///
/// [RFC 9457]: https://www.rfc-editor.org/rfc/rfc9457
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    title: Cow<'static, str>,
    detail: Option<String>,
    kind: Option<&'static str>,
    members: Vec<(&'static str, serde_json::Value)>,
}

impl Problem {
    /// A problem with the status's standard title.
    pub fn new(status: StatusCode) -> Self {
        Problem {
            status,
            title: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
            detail: None,
            kind: None,
            members: Vec::new(),
        }
    }

    /// Replaces the title.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<Cow<'static, str>>) -> Self {
        self.title = title.into();
        self
    }

    /// A sentence for the user saying what happened and what to do.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// A stable machine-readable reason (`cross-site`, `missing-token`), sent as `type`
    /// `urn:buttress:<kind>` in JSON.
    #[must_use]
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = Some(kind);
        self
    }

    /// An extension member of the problem document (e.g. `errors` listing fields).
    #[must_use]
    pub fn with_member(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.members.push((name, value));
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable reason.
    pub fn kind(&self) -> Option<&'static str> {
        self.kind
    }

    /// The user-facing detail.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// An empty response of this status carrying the problem, for [`ErrorPagesLayer`] to render.
    pub fn into_empty_response<B: Default>(self) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = self.status;
        res.extensions_mut().insert(self);
        res
    }

    /// The problem as JSON.
    pub fn to_json(&self, request_id: Option<&str>) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "type": self.kind.map_or_else(|| "about:blank".to_owned(), |k| format!("urn:buttress:{k}")),
            "title": self.title,
            "status": self.status.as_u16(),
        });
        if let Some(obj) = doc.as_object_mut() {
            if let Some(d) = &self.detail {
                obj.insert("detail".into(), d.clone().into());
            }
            if let Some(k) = self.kind {
                obj.insert("reason".into(), k.into());
            }
            if let Some(id) = request_id {
                obj.insert("request_id".into(), id.into());
            }
            for (name, value) in &self.members {
                obj.insert((*name).into(), value.clone());
            }
        }
        doc
    }

    fn render(&self, format: Format, ctx: &RenderContext<'_>) -> Response<Body> {
        let (content_type, body) = match format {
            Format::Json => {
                let mut doc = self.to_json(ctx.request_id);
                if let (Some(debug), Some(obj)) = (ctx.debug, doc.as_object_mut()) {
                    obj.insert("debug".into(), debug.into());
                }
                ("application/problem+json", doc.to_string())
            }
            Format::Html => ("text/html; charset=utf-8", self.html(ctx)),
        };
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = self.status;
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }

    fn html(&self, ctx: &RenderContext<'_>) -> String {
        let code = self.status.as_u16();
        let mut page = String::with_capacity(1024);
        page.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        page.push_str(&format!("<title>{code} {}</title>", escape(&self.title)));
        if let Some(nonce) = ctx.nonce {
            page.push_str(&format!(
                "<style nonce=\"{}\">body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}}code,pre{{background:#f4f4f4;padding:.2rem .4rem;white-space:pre-wrap}}</style>",
                escape(nonce)
            ));
        }
        page.push_str(&format!(
            "</head><body><h1>{code} {}</h1>",
            escape(&self.title)
        ));
        if let Some(d) = &self.detail {
            page.push_str(&format!("<p>{}</p>", escape(d)));
        }
        if let Some(k) = self.kind {
            page.push_str(&format!("<p>Reason: <code>{}</code></p>", escape(k)));
        }
        if let Some(id) = ctx.request_id {
            page.push_str(&format!("<p>Request id: <code>{}</code></p>", escape(id)));
        }
        if let Some(debug) = ctx.debug {
            page.push_str(&format!(
                "<h2>Debug detail (development, loopback only)</h2><pre>{}</pre>",
                escape(debug)
            ));
        }
        page.push_str("</body></html>\n");
        page
    }
}

impl IntoResponse for Problem {
    /// Renders as problem+json; [`ErrorPagesLayer`] re-renders it for the client's `Accept`.
    fn into_response(self) -> axum::response::Response {
        let mut res = self.render(Format::Json, &RenderContext::default());
        res.extensions_mut().insert(self);
        res
    }
}

/// Marks an error response whose body the application wrote for the user on purpose (a
/// validation page, its own 404), so [`ErrorPagesLayer`] keeps it.
///
/// ```
/// use axum::response::{Html, IntoResponse};
/// use buttress::errors::KeepBody;
/// use http::StatusCode;
/// let res = (StatusCode::UNPROCESSABLE_ENTITY, KeepBody, Html("<p>Check the form</p>")).into_response();
/// assert!(res.extensions().get::<KeepBody>().is_some());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KeepBody;

impl IntoResponseParts for KeepBody {
    type Error = Infallible;
    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(KeepBody);
        Ok(res)
    }
}

/// Rejection of an extractor whose layer is not installed in front of the handler: a setup
/// mistake, not the client's, so it is logged and answered with a generic 500.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{layer} is not installed in front of this handler")]
pub struct MissingLayer {
    /// The layer that should have provided the value.
    pub layer: &'static str,
}

impl IntoResponse for MissingLayer {
    fn into_response(self) -> axum::response::Response {
        tracing::error!("{self}");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response()
    }
}

/// Implements `FromRequestParts` for a value a layer put into the request's extensions.
macro_rules! extension_extractor {
    ($ty:ty, $layer:literal) => {
        impl<S: Send + Sync> axum::extract::FromRequestParts<S> for $ty {
            type Rejection = $crate::errors::MissingLayer;
            async fn from_request_parts(
                parts: &mut http::request::Parts,
                _: &S,
            ) -> Result<Self, Self::Rejection> {
                parts
                    .extensions
                    .get::<$ty>()
                    .cloned()
                    .ok_or($crate::errors::MissingLayer { layer: $layer })
            }
        }
    };
}
pub(crate) use extension_extractor;

/// Debug detail attached to a response (e.g. a panic's message); shown only to loopback
/// clients when debug is on.
#[derive(Debug, Clone)]
pub struct DebugDetail(pub String);

/// A panic handler for tower-http's `CatchPanicLayer`: a bare 500 carrying a [`Problem`].
fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response<http_body_util::Full<Bytes>> {
    let message = err
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    let mut res: Response<http_body_util::Full<Bytes>> =
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_empty_response();
    res.extensions_mut()
        .insert(DebugDetail(format!("panic: {message}")));
    res
}

/// The function [`catch_panic_layer`] turns panics into responses with.
pub type PanicHandler = fn(Box<dyn Any + Send + 'static>) -> Response<http_body_util::Full<Bytes>>;

/// The panic catcher: tower-http's `CatchPanicLayer` with a handler that leaks nothing.
///
/// ```
/// use axum::{routing::get, Router};
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(buttress::errors::catch_panic_layer());
/// ```
pub fn catch_panic_layer() -> tower_http::catch_panic::CatchPanicLayer<PanicHandler> {
    tower_http::catch_panic::CatchPanicLayer::custom(panic_response as fn(_) -> _)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

/// Chooses JSON when the client prefers `application/json` or `application/problem+json` (or
/// any `+json` type) over HTML; HTML otherwise.
fn negotiate(accept: Option<&HeaderValue>) -> Format {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Format::Html;
    };
    let mut best_json = -1.0f32;
    let mut best_html = -1.0f32;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media == "application/json" || media.ends_with("+json") {
            best_json = best_json.max(q);
        } else if media == "text/html"
            || media == "application/xhtml+xml"
            || media == "*/*"
            || media == "text/*"
        {
            best_html = best_html.max(q);
        }
    }
    if best_json > best_html {
        Format::Json
    } else {
        Format::Html
    }
}

#[derive(Default)]
struct RenderContext<'a> {
    request_id: Option<&'a str>,
    nonce: Option<&'a str>,
    debug: Option<&'a str>,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Layer that renders error responses safely. See the [module docs](self).
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
        let format = negotiate(req.headers().get(header::ACCEPT));
        let request_id = RequestIdText::of(req.headers().get(&crate::request_id::X_REQUEST_ID));
        let debug = self.debug && looks_local(&req);
        ErrorPagesFuture {
            state: Stage::Waiting {
                inner: self.inner.call(req),
                format,
                request_id,
                debug,
            },
        }
    }
}

/// Whether a request looks like it came straight from a browser on this machine, the only one
/// that may see debug detail (besides a loopback peer, checked on the way out): no forwarding
/// header (a tunnel such as ngrok or `ssh -R`, or a local proxy, connects from loopback but
/// relays everyone), and a loopback host name (a DNS-rebinding page reaches a loopback server
/// under its own name).
fn looks_local<B>(req: &Request<B>) -> bool {
    // Names parsed once, not on every request.
    const RELAYED: [HeaderName; 4] = [
        header::FORWARDED,
        HeaderName::from_static("x-forwarded-for"),
        HeaderName::from_static("x-real-ip"),
        header::VIA,
    ];
    if RELAYED.iter().any(|h| req.headers().contains_key(h)) {
        return false;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    host.is_none_or(is_loopback_host)
}

/// `localhost`, `*.localhost`, or a loopback address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let dotted = name.len() > ".localhost".len()
        && name.as_bytes()[name.len() - ".localhost".len()..].eq_ignore_ascii_case(b".localhost");
    name.eq_ignore_ascii_case("localhost")
        || dotted
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The request id as text, kept inline (no allocation) for ids of up to 48 bytes, such as
/// request ids (UUIDs).
#[derive(Debug)]
enum RequestIdText {
    None,
    Inline([u8; 48], u8),
    Long(String),
}

impl RequestIdText {
    fn of(value: Option<&HeaderValue>) -> Self {
        let Some(text) = value.and_then(|v| v.to_str().ok()) else {
            return RequestIdText::None;
        };
        let bytes = text.as_bytes();
        if bytes.len() <= 48 {
            let mut buf = [0u8; 48];
            buf[..bytes.len()].copy_from_slice(bytes);
            RequestIdText::Inline(buf, bytes.len() as u8)
        } else {
            RequestIdText::Long(text.to_owned())
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            RequestIdText::None => None,
            RequestIdText::Inline(buf, len) => std::str::from_utf8(&buf[..usize::from(*len)]).ok(),
            RequestIdText::Long(s) => Some(s),
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`ErrorPages`]: a response below 400 passes through without allocation; an
    /// error response is rendered by a boxed second stage.
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
            format: Format,
            request_id: RequestIdText,
            debug: bool,
        },
        Rendering {
            page: Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>,
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
                StageProj::Waiting {
                    inner,
                    format,
                    request_id,
                    debug,
                } => {
                    let Poll::Ready(Ok(res)) = inner.poll(cx) else {
                        return Poll::Pending;
                    };
                    if res.status().as_u16() < 400 || res.extensions().get::<KeepBody>().is_some() {
                        return Poll::Ready(Ok(res.map(Body::new)));
                    }
                    let (format, debug) = (*format, *debug);
                    let request_id = request_id.as_str().map(str::to_owned);
                    let page = Box::pin(render_error(res, format, request_id, debug));
                    state.set(Stage::Rendering { page });
                }
                StageProj::Rendering { page } => return page.as_mut().poll(cx),
            }
        }
    }
}

/// Replaces an error response's body with the page for its [`Problem`] or status.
async fn render_error<ResBody>(
    res: Response<ResBody>,
    format: Format,
    request_id: Option<String>,
    debug: bool,
) -> Result<Response<Body>, Infallible>
where
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    let show_debug = debug
        && res
            .extensions()
            .get::<ClientIp>()
            .is_some_and(|ip| ip.0.is_loopback());
    let (mut parts, body) = res.into_parts();
    let carried = parts.extensions.remove::<Problem>();
    let has_problem = carried.is_some();
    let problem = carried.unwrap_or_else(|| Problem::new(parts.status));
    let mut detail = parts.extensions.get::<DebugDetail>().map(|d| d.0.clone());
    // A problem's body is its own rendering: nothing more to show.
    if show_debug && detail.is_none() && !has_problem {
        detail = read_prefix(body).await.filter(|t| !t.trim().is_empty());
    }
    let nonce = parts
        .extensions
        .get::<CspNonce>()
        .map(|n| n.as_str().to_owned());
    let ctx = RenderContext {
        request_id: request_id.as_deref(),
        nonce: nonce.as_deref(),
        debug: detail.as_deref().filter(|_| show_debug),
    };
    let rendered = problem.render(format, &ctx);
    let (new_parts, new_body) = rendered.into_parts();
    for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
        if let Some(v) = new_parts.headers.get(&name) {
            parts.headers.insert(name, v.clone());
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.extensions.insert(problem);
    Ok(Response::from_parts(parts, new_body))
}

async fn read_prefix<B>(body: B) -> Option<String>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    let limited = http_body_util::Limited::new(body, DEBUG_DETAIL_LIMIT);
    let bytes = limited.collect().await.ok()?.to_bytes();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let cases = [
            (None, Format::Html),
            (
                Some("text/html,application/xhtml+xml,*/*;q=0.8"),
                Format::Html,
            ),
            (Some("application/json"), Format::Json),
            (Some("application/problem+json"), Format::Json),
            (Some("application/json;q=0.5, text/html"), Format::Html),
            (Some("*/*"), Format::Html),
            (Some("text/html;q=0.1, application/json"), Format::Json),
            (Some("garbage;;;q=x"), Format::Html),
        ];
        for (accept, want) in cases {
            let v = accept.map(|a| HeaderValue::from_str(a).expect("header"));
            assert_eq!(negotiate(v.as_ref()), want, "{accept:?}");
        }
    }

    #[test]
    fn html_escapes_everything_shown() {
        let p = Problem::new(StatusCode::BAD_REQUEST).with_detail("<script>alert(1)</script>");
        let ctx = RenderContext {
            request_id: Some("\"><img>"),
            nonce: None,
            debug: Some("</pre><script>"),
        };
        let html = p.html(&ctx);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn json_document_members() {
        let p = Problem::new(StatusCode::FORBIDDEN)
            .with_kind("cross-site")
            .with_member("errors", serde_json::json!([{"field": "email"}]));
        let doc = p.to_json(Some("abc"));
        assert_eq!(doc["type"], "urn:buttress:cross-site");
        assert_eq!(doc["status"], 403);
        assert_eq!(doc["request_id"], "abc");
        assert_eq!(doc["errors"][0]["field"], "email");
    }
}

//! Rendering an error response: the page (HTML or problem+json), the debug detail shown to a
//! loopback client in Development, and the panic's 500.

use std::any::Any;

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt as _;

use super::{DebugDetail, KeepBody, Problem};

/// The most of an original error body kept as debug detail.
const DEBUG_DETAIL_LIMIT: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
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
pub(super) struct RenderContext<'a> {
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

impl Problem {
    pub(super) fn render(&self, format: Format, ctx: &RenderContext<'_>) -> Response<Body> {
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

/// What an error page needs from its request, taken before the request goes on to the handler:
/// cheap copies only (header values are reference-counted), negotiated only for an error.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorPage {
    accept: Option<HeaderValue>,
    /// Debug is on and no header says the request was relayed: its `Host` (checked for a
    /// loopback name only when a page is rendered); `None`: no debug detail.
    local_host: Option<Option<HeaderValue>>,
}

impl ErrorPage {
    /// Takes what an error page for `req` would need; `debug`: Development's debug detail.
    pub(crate) fn of<B>(req: &Request<B>, debug: bool) -> ErrorPage {
        let headers = req.headers();
        let host = || {
            headers.get(header::HOST).cloned().or_else(|| {
                req.uri()
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            })
        };
        ErrorPage::from_head(
            headers.get(header::ACCEPT).cloned(),
            if debug { host() } else { None },
            relayed(headers),
            debug,
        )
    }

    /// What the stack gives from its one pass over the headers: `Accept`, and for debug detail
    /// the `Host` (or the target's authority) and whether the request was relayed.
    pub(crate) fn from_head(
        accept: Option<HeaderValue>,
        host: Option<HeaderValue>,
        relayed: bool,
        debug: bool,
    ) -> ErrorPage {
        ErrorPage {
            accept,
            local_host: (debug && !relayed).then_some(host),
        }
    }

    /// Debug detail may be shown: debug is on, the request was not relayed, its host is a
    /// loopback name (not a DNS-rebinding page under its own name), and the resolved client
    /// (after trusted proxies) is on loopback.
    fn shows_debug(&self, loopback: bool) -> bool {
        loopback
            && self.local_host.as_ref().is_some_and(|host| {
                host.as_ref()
                    .and_then(|h| h.to_str().ok())
                    .is_none_or(crate::host::is_loopback_host)
            })
    }

    /// Whether `res` gets a page: an error status, not marked [`KeepBody`].
    pub(crate) fn wanted<B>(res: &Response<B>) -> bool {
        res.status().as_u16() >= 400 && res.extensions().get::<KeepBody>().is_none()
    }

    /// Renders the page for `res` at once when nothing must be read from its body; otherwise
    /// gives `res` back for [`ErrorPage::render`]. `loopback`: the resolved client is loopback.
    #[allow(clippy::result_large_err)] // the response either way, never boxed
    pub(crate) fn render_now(
        &self,
        res: Response<Body>,
        loopback: bool,
        nonce: Option<&str>,
        request_id: Option<&HeaderValue>,
    ) -> Result<Response<Body>, Response<Body>> {
        let show_debug = self.shows_debug(loopback);
        let reads_body = show_debug
            && res.extensions().get::<DebugDetail>().is_none()
            && res.extensions().get::<Problem>().is_none();
        if reads_body {
            return Err(res);
        }
        let (parts, _) = res.into_parts();
        Ok(self.finish(parts, None, show_debug, nonce, request_id))
    }

    /// Renders the page for `res`, reading its body as debug detail when that may be shown.
    pub(crate) async fn render<B>(
        self,
        res: Response<B>,
        loopback: bool,
        nonce: Option<String>,
        request_id: Option<HeaderValue>,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let show_debug = self.shows_debug(loopback);
        let (parts, body) = res.into_parts();
        let read = show_debug
            && parts.extensions.get::<DebugDetail>().is_none()
            && parts.extensions.get::<Problem>().is_none();
        let detail = if read {
            read_prefix(body).await.filter(|t| !t.trim().is_empty())
        } else {
            None
        };
        self.finish(
            parts,
            detail,
            show_debug,
            nonce.as_deref(),
            request_id.as_ref(),
        )
    }

    fn finish(
        &self,
        mut parts: http::response::Parts,
        body_detail: Option<String>,
        show_debug: bool,
        nonce: Option<&str>,
        request_id: Option<&HeaderValue>,
    ) -> Response<Body> {
        let problem = parts
            .extensions
            .remove::<Problem>()
            .unwrap_or_else(|| Problem::new(parts.status));
        let detail = parts
            .extensions
            .get::<DebugDetail>()
            .map(|d| d.0.as_str())
            .or(body_detail.as_deref());
        let ctx = RenderContext {
            request_id: request_id.and_then(|v| v.to_str().ok()),
            nonce,
            debug: detail.filter(|_| show_debug),
        };
        let rendered = problem.render(negotiate(self.accept.as_ref()), &ctx);
        let (new_parts, new_body) = rendered.into_parts();
        for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
            if let Some(v) = new_parts.headers.get(&name) {
                parts.headers.insert(name, v.clone());
            }
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.extensions.insert(problem);
        Response::from_parts(parts, new_body)
    }
}

/// Whether a header says the request was relayed: a tunnel such as ngrok or `ssh -R`, or a
/// local proxy, connects from loopback but relays everyone. One pass over the request's names
/// (a handful of comparisons) rather than a lookup per name.
fn relayed(headers: &http::HeaderMap) -> bool {
    static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
    headers.keys().any(|name| {
        name == header::FORWARDED
            || name == header::VIA
            || name == X_FORWARDED_FOR
            || name == X_REAL_IP
    })
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

/// A panic turned into a bare 500 carrying a [`Problem`]; the message is kept aside as debug
/// detail (shown only to a loopback client in Development) and logged.
pub(crate) fn panic_response<B: Default>(err: Box<dyn Any + Send + 'static>) -> Response<B> {
    let message = err
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    let mut res: Response<B> =
        Problem::new(http::StatusCode::INTERNAL_SERVER_ERROR).into_empty_response();
    res.extensions_mut()
        .insert(DebugDetail(format!("panic: {message}")));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

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
}

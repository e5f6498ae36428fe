//! HTTPS enforcement: plain-HTTP requests are redirected to HTTPS.
//!
//! The scheme is the one [`ProxyLayer`](crate::proxy::ProxyLayer) resolved, so behind a
//! trusted TLS-terminating proxy a request that reached the proxy over HTTPS is not redirected
//! again (no loop), and a client cannot skip the redirect by sending `X-Forwarded-Proto: https`
//! itself unless it is a trusted proxy.
//!
//! | setting | default |
//! |---|---|
//! | status | `301` for GET and HEAD, `308` for other methods (the method and body are kept) |
//! | host | the request's host, or the canonical host when set; without one, 400 (never `https:///…`) |
//! | caching | `Cache-Control: private` when the host is the request's (a shared cache must not keep a target chosen by one request's headers for everyone); a redirect to the canonical host is the same for all and is left cacheable |
//! | port | the configured HTTPS port, else the canonical host's own, else the serving TLS listener's, else 443 (omitted) |
//! | exempt paths | `/healthz` (load balancers' health checks often speak plain HTTP) |
//!
//! HSTS is sent by [`SecureHeadersLayer`](crate::headers::SecureHeadersLayer), only on HTTPS
//! responses, as [RFC 6797 §7.2](https://www.rfc-editor.org/rfc/rfc6797#section-7.2) requires.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::https::HttpsRedirectLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "secure" }))
//!     .layer(HttpsRedirectLayer::new().canonical_host("example.org").exempt("/healthz"));
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::context::RequestOrigin;
use crate::errors::Problem;
use crate::host::split_host;

/// The path served over plain HTTP too by default: load balancers' health checks often speak
/// plain HTTP.
///
/// ```
/// assert_eq!(buttress::https::DEFAULT_EXEMPT_PATH, "/healthz");
/// ```
pub const DEFAULT_EXEMPT_PATH: &str = "/healthz";

/// Layer that redirects plain-HTTP requests to HTTPS.
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpsRedirectLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    canonical_host: Option<String>,
    port: Option<u16>,
    exempt: Vec<String>,
}

impl Default for HttpsRedirectLayer {
    fn default() -> Self {
        HttpsRedirectLayer::new()
    }
}

impl HttpsRedirectLayer {
    /// Redirects to the request's own host on port 443, exempting `/healthz`.
    pub fn new() -> Self {
        HttpsRedirectLayer {
            config: Arc::new(Config {
                exempt: vec![DEFAULT_EXEMPT_PATH.to_owned()],
                ..Config::default()
            }),
        }
    }

    /// Always redirects to this host (also stops redirects to whatever `Host` a client sent).
    pub fn canonical_host(mut self, host: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).canonical_host = Some(host.into());
        self
    }

    /// The HTTPS port to redirect to (443 is left out of the URL). Without it, the port of the
    /// serving `buttress::server::Server`'s TLS listener is used, else 443.
    pub fn port(mut self, port: u16) -> Self {
        Arc::make_mut(&mut self.config).port = Some(port);
        self
    }

    /// Serves `path` (exactly) over plain HTTP too.
    pub fn exempt(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        let c = Arc::make_mut(&mut self.config);
        if !c.exempt.contains(&path) {
            c.exempt.push(path);
        }
        self
    }

    /// The configuration, for the stack.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Replaces the list of exempt paths.
    pub fn exempt_paths(mut self, paths: impl IntoIterator<Item = String>) -> Self {
        Arc::make_mut(&mut self.config).exempt = paths.into_iter().collect();
        self
    }
}

impl<S> Layer<S> for HttpsRedirectLayer {
    type Service = HttpsRedirect<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpsRedirect {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Service made by [`HttpsRedirectLayer`].
#[derive(Debug, Clone)]
pub struct HttpsRedirect<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpsRedirect<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response<ResBody>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let origin = crate::context::origin_of(req.extensions());
        match redirect_if_plain(&self.config, &req, origin) {
            None => Either::Left(self.inner.call(req)),
            Some(res) => Either::Right(futures_util::future::ready(Ok(res))),
        }
    }
}

/// The HTTPS step: the redirect (or 400) for a request that came over plain HTTP to a path
/// that is not exempt; `None` lets it through. `origin` is what the proxy step resolved;
/// without it the scheme is unknown and the request is redirected (fail closed).
pub(crate) fn redirect_if_plain<B: Default, ReqBody>(
    config: &Config,
    req: &Request<ReqBody>,
    origin: Option<&RequestOrigin>,
) -> Option<Response<B>> {
    let plain = origin.is_none_or(|o| !o.is_https());
    if !plain || config.exempt.iter().any(|p| p == req.uri().path()) {
        return None;
    }
    Some(redirect(config, req, origin))
}

/// Why a plain request is answered with 400 instead of a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum NoRedirect {
    /// Neither a canonical host nor a valid host in the request: `https://` followed by no host
    /// would make a browser take the path's first segment for the host (an open redirect).
    #[error("the request names no valid host to redirect to HTTPS")]
    NoHost,
    /// The URL does not make a header value (cannot happen with a valid host and a parsed URI).
    #[error("the HTTPS address of this request is not a valid Location")]
    BadLocation,
}

impl NoRedirect {
    fn into_response<B: Default, ReqBody>(self, req: &Request<ReqBody>) -> Response<B> {
        tracing::warn!(uri = %req.uri(), reason = %self, "plain request not redirected to HTTPS");
        Problem::new(StatusCode::BAD_REQUEST)
            .with_detail(self.to_string())
            .into_empty_response()
    }
}

/// The host name to redirect to, and a port when the canonical host names one: the canonical
/// host, else the one [`ProxyLayer`] resolved (without its port: that was the plain one), else,
/// without a `ProxyLayer`, the request's `Host` or authority. Never empty.
///
/// [`ProxyLayer`]: crate::proxy::ProxyLayer
fn target_host<ReqBody>(
    config: &Config,
    req: &Request<ReqBody>,
    origin: Option<&RequestOrigin>,
) -> Option<(String, Option<u16>)> {
    if let Some(canonical) = &config.canonical_host {
        return split_host(canonical).map(|(name, port)| (name.to_owned(), port));
    }
    let from_request = match origin {
        Some(origin) => Some(origin.host.clone()),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .map(str::to_ascii_lowercase),
    }?;
    split_host(&from_request).map(|(name, _)| (name.to_owned(), None))
}

fn redirect<B, ReqBody>(
    config: &Config,
    req: &Request<ReqBody>,
    origin: Option<&RequestOrigin>,
) -> Response<B>
where
    B: Default,
{
    let Some((host, canonical_port)) = target_host(config, req, origin) else {
        return NoRedirect::NoHost.into_response(req);
    };
    let server_port = req
        .extensions()
        .get::<crate::proxy::Transport>()
        .and_then(|t| t.https_port);
    let port = match config.port.or(canonical_port).or(server_port) {
        Some(p) if p != 443 => format!(":{p}"),
        _ => String::new(),
    };
    // `*` (OPTIONS) and authority-form targets have no path to keep.
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| p.starts_with('/'))
        .unwrap_or("/");
    let status = if req.method() == Method::GET || req.method() == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    let Ok(location) = HeaderValue::try_from(format!("https://{host}{port}{path}")) else {
        return NoRedirect::BadLocation.into_response(req);
    };
    let mut res = Response::new(B::default());
    *res.status_mut() = status;
    res.headers_mut().insert(header::LOCATION, location);
    if config.canonical_host.is_none() {
        // The target came from the request (Host, or a proxy's forwarded host) and a shared
        // cache may key on neither: let only the client's own browser keep it.
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Scheme;

    /// The redirect for `req`, with the origin a test put into its extensions.
    fn go(config: &Config, req: &Request<()>) -> Response<()> {
        redirect(config, req, req.extensions().get::<RequestOrigin>())
    }

    fn req(method: Method, uri: &str, scheme: Scheme) -> Request<()> {
        let mut r = Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .expect("request");
        r.extensions_mut().insert(RequestOrigin {
            scheme,
            host: "example.org:8080".into(),
        });
        r
    }

    #[test]
    fn redirect_targets() {
        let base = Config::default();
        let r: Response<()> = go(&base, &req(Method::GET, "/a?b=1", Scheme::Http));
        assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(r.headers()[header::LOCATION], "https://example.org/a?b=1");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "private");
        let r: Response<()> = go(&base, &req(Method::POST, "/form", Scheme::Http));
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        let custom = Config {
            canonical_host: Some("www.example.org".into()),
            port: Some(8443),
            exempt: vec![],
        };
        let r: Response<()> = go(&custom, &req(Method::GET, "/", Scheme::Http));
        assert_eq!(
            r.headers()[header::LOCATION],
            "https://www.example.org:8443/"
        );
        assert!(r.headers().get(header::CACHE_CONTROL).is_none());
        let r: Response<()> = go(&base, &req(Method::OPTIONS, "*", Scheme::Http));
        assert_eq!(r.headers()[header::LOCATION], "https://example.org/");
    }

    /// A canonical host with its own port (settings accept `www.example.org:8443`) gets one
    /// port in the URL, not two: the configured HTTPS port wins, then the canonical host's,
    /// then the serving TLS listener's.
    #[test]
    fn canonical_host_with_a_port() {
        let with_port = |port: Option<u16>| Config {
            canonical_host: Some("www.example.org:8443".into()),
            port,
            exempt: vec![],
        };
        let mut served = req(Method::GET, "/x", Scheme::Http);
        served.extensions_mut().insert(crate::proxy::Transport {
            tls: false,
            https_port: Some(7443),
        });
        for (config, want) in [
            (with_port(None), "https://www.example.org:8443/x"),
            (with_port(Some(9443)), "https://www.example.org:9443/x"),
            (with_port(Some(443)), "https://www.example.org/x"),
        ] {
            let r: Response<()> = go(&config, &served);
            assert_eq!(r.headers()[header::LOCATION], want);
        }
    }

    /// `https:///evil.test/x` is read by browsers as `https://evil.test/x`: never send it.
    #[test]
    fn never_redirects_to_an_empty_host() {
        let bare = |uri: &str, host: Option<&str>| {
            let mut b = Request::builder().uri(uri);
            if let Some(h) = host {
                b = b.header(header::HOST, h);
            }
            b.body(()).expect("request")
        };
        let base = Config::default();
        // Used without ProxyLayer, no Host: 400 with a reason, no Location.
        for (uri, host) in [("/evil.test/x", None), ("/evil.test/x", Some(":80"))] {
            let r: Response<()> = go(&base, &bare(uri, host));
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{uri} {host:?}");
            assert!(r.headers().get(header::LOCATION).is_none());
            let problem = r.extensions().get::<Problem>().expect("a reason");
            assert!(
                problem.to_json(None)["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("no valid host")),
                "{problem:?}"
            );
        }
        // Without ProxyLayer, a valid Host is used.
        let r: Response<()> = go(&base, &bare("/x", Some("Example.org:8080")));
        assert_eq!(r.headers()[header::LOCATION], "https://example.org/x");
        // A resolved origin with an empty name (built by hand: ProxyLayer refuses it).
        let mut r = bare("/evil.test/x", None);
        r.extensions_mut().insert(RequestOrigin {
            scheme: Scheme::Http,
            host: ":80".into(),
        });
        let res: Response<()> = go(&base, &r);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        // An empty canonical host is no better.
        let empty = Config {
            canonical_host: Some(String::new()),
            ..Config::default()
        };
        let res: Response<()> = go(&empty, &req(Method::GET, "/evil.test/x", Scheme::Http));
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().get(header::LOCATION).is_none());
    }
}

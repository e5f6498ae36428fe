//! The client's address, scheme and host, trusting forwarding headers only from trusted proxies.
//!
//! [`ProxyLayer`] reads the TCP peer address (axum's [`ConnectInfo`]) and, only when that peer
//! is inside one of the trusted CIDRs, the forwarding header family the proxies are declared to
//! set ([`ProxyHeader`]). It walks the chain from the right and takes the first hop that is not
//! itself a trusted proxy: the rightmost untrusted hop. Everything to the left of it was written
//! by the client and is ignored, so a spoofed `X-Forwarded-For` changes nothing. The results are
//! put into the request's extensions as [`ClientIp`] and [`RequestOrigin`], which later layers
//! (HTTPS, rate limits, CSRF, error pages) and handlers read.
//!
//! | header family | client | scheme | host |
//! |---|---|---|---|
//! | `x-forwarded` | rightmost untrusted `X-Forwarded-For` hop | rightmost `X-Forwarded-Proto` | rightmost `X-Forwarded-Host`, if `allowed_hosts` is set |
//! | `forwarded` | rightmost untrusted `for=` | `proto=` of the element the walk stopped at | `host=` of that element, if `allowed_hosts` is set |
//!
//! A hop that is not an address (`unknown`, `_hidden`, garbage) ends the walk: the last proxy
//! that could be trusted stands in for the client. With `Forwarded`, the `proto=` and `host=`
//! of the element the walk stopped at are read even then (a trusted proxy wrote it), so a
//! proxy that hides its clients (`for=_hidden;proto=https`) causes no redirect loop. Each hop
//! is decoded alone, from the raw header bytes: a client's own non-ASCII hop is one unreadable
//! hop left of the one its proxy appended (nginx appends to the client's line), so it cannot
//! hide the real client. A syntactically broken `Forwarded` header from a trusted proxy is
//! answered with 400. With `allowed_hosts` set, any other host gets 400; an entry with a port
//! allows that port only. Trusted ranges may be written IPv4-mapped (`::ffff:10.0.0.0/104`):
//! see [`canonical_net`].
//!
//! The forwarded host (`X-Forwarded-Host`, `host=`) is believed only when `allowed_hosts` is
//! set, and then it must be one of them (else 400, as for `Host`). With `allowed_hosts` empty it
//! is ignored and `Host` is used: many proxies (nginx by default) do not set it and pass the
//! client's own through, which would let a client choose the origin and the HTTPS redirect's
//! target (`Location: https://evil.test/`, which a shared cache may keep for everyone).
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::proxy::{ClientIp, ProxyConfig, ProxyLayer};
//!
//! let config = ProxyConfig::default().trust("10.0.0.0/8".parse().unwrap());
//! let app: Router = Router::new()
//!     .route("/", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }))
//!     .layer(ProxyLayer::new(config));
//! ```
//!
//! # Deployment caveat
//!
//! List exactly the proxies in front of the application, and set `proxy_header` to the family
//! they write. A proxy that appends to `X-Forwarded-For` but passes a client's `Forwarded`
//! through untouched is safe only because the other family is never read.

// Its `pub` items are re-exported only by `crate::fuzzing`, for the fuzz target.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub(crate) mod parse;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use futures_util::future::{Either, Ready};
use http::{header, HeaderMap, Request, Response, StatusCode};
use ipnet::IpNet;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::RequestContext;
pub use crate::context::{ClientIp, RequestOrigin, Scheme, Transport};
use crate::errors::Problem;
use crate::host::split_host;
pub use crate::host::{HostError, HostPattern};
use parse::{list_items, parse_forwarded_bytes, parse_x_forwarded_for_bytes, Element, Node};

/// Which forwarding header the trusted proxies set. Only that family is read, so a client
/// cannot smuggle the other one through a proxy that passes it on untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyHeader {
    /// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` (nginx, HAProxy, most cloud
    /// load balancers).
    #[default]
    XForwarded,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

/// A [`ProxyHeader`] name that is neither `x-forwarded` nor `forwarded`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a forwarding header family: use x-forwarded or forwarded")]
pub struct UnknownProxyHeader(pub String);

impl std::str::FromStr for ProxyHeader {
    type Err = UnknownProxyHeader;
    /// `x-forwarded` (or `x-forwarded-for`) or `forwarded`, any case.
    ///
    /// ```
    /// use buttress::proxy::ProxyHeader;
    /// assert_eq!("Forwarded".parse::<ProxyHeader>(), Ok(ProxyHeader::Forwarded));
    /// ```
    fn from_str(s: &str) -> Result<Self, UnknownProxyHeader> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded" | "x-forwarded-for" => Ok(ProxyHeader::XForwarded),
            "forwarded" => Ok(ProxyHeader::Forwarded),
            _ => Err(UnknownProxyHeader(s.to_owned())),
        }
    }
}

/// Configuration for [`ProxyLayer`]. The default trusts no proxy and allows any host.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ProxyConfig {
    trusted: Vec<IpNet>,
    header: ProxyHeader,
    allowed_hosts: Vec<HostPattern>,
}

/// `net` truncated to its network, and an IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`)
/// written as the IPv4 range it is (`10.0.0.0/8`): peers and hops are compared in their
/// canonical form, where a mapped address is its IPv4 address, so the mapped form of a range
/// would never match. Other IPv6 ranges are left as they are.
///
/// ```
/// use buttress::proxy::canonical_net;
/// assert_eq!(canonical_net("::ffff:10.1.2.3/104".parse().unwrap()), "10.0.0.0/8".parse().unwrap());
/// assert_eq!(canonical_net("2001:db8::1/32".parse().unwrap()), "2001:db8::/32".parse().unwrap());
/// ```
pub fn canonical_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (
            v6.network().to_ipv4_mapped(),
            v6.prefix_len().checked_sub(96),
        ) {
            if let Ok(v4net) = ipnet::Ipv4Net::new(v4, len) {
                return IpNet::V4(v4net);
            }
        }
    }
    net
}

impl ProxyConfig {
    /// Trusts forwarding headers from peers inside `net` (see [`canonical_net`]).
    pub fn trust(mut self, net: IpNet) -> Self {
        self.trusted.push(trusted_net(net));
        self
    }

    /// Trusts forwarding headers from peers inside any of `nets` (see [`canonical_net`]).
    pub fn trust_all(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.trusted.extend(nets.into_iter().map(trusted_net));
        self
    }

    /// Which header family the trusted proxies set.
    pub fn header(mut self, header: ProxyHeader) -> Self {
        self.header = header;
        self
    }

    /// Host names (`example.org`, `*.example.org`) allowed in `Host`; others get 400. An entry
    /// with a port (`example.org:8443`) allows that port only (a `Host` without a port is on
    /// the scheme's default port); one without allows any port. Only with this set is a
    /// trusted proxy's forwarded host believed (see the [module docs](self)).
    ///
    /// ```
    /// use buttress::proxy::{HostPattern, ProxyConfig};
    /// let hosts: Vec<HostPattern> = ["example.org", "*.example.org"]
    ///     .iter().map(|h| h.parse()).collect::<Result<_, _>>()?;
    /// let config = ProxyConfig::default().allowed_hosts(hosts);
    /// # Ok::<(), buttress::proxy::HostError>(())
    /// ```
    pub fn allowed_hosts(mut self, hosts: impl IntoIterator<Item = HostPattern>) -> Self {
        self.allowed_hosts = hosts.into_iter().collect();
        self
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Resolves client, scheme and host for a request from `peer` (over TLS or not).
    ///
    /// ```
    /// use buttress::proxy::{ProxyConfig, Scheme};
    /// let cfg = ProxyConfig::default().trust("10.0.0.0/8".parse().unwrap());
    /// let mut h = http::HeaderMap::new();
    /// h.insert("host", "example.org".parse().unwrap());
    /// h.insert("x-forwarded-for", "1.1.1.1, 203.0.113.5".parse().unwrap());
    /// h.insert("x-forwarded-proto", "https".parse().unwrap());
    /// let r = cfg.resolve("10.0.0.2:4000".parse().unwrap(), false, &h, None).unwrap();
    /// assert_eq!(r.client.0.to_string(), "203.0.113.5");
    /// assert_eq!(r.origin.scheme, Scheme::Https);
    /// ```
    pub fn resolve(
        &self,
        peer: SocketAddr,
        tls: bool,
        headers: &HeaderMap,
        uri_host: Option<&str>,
    ) -> Result<Resolved, ProxyRejection> {
        self.resolve_with_host(peer, tls, headers, headers.get(header::HOST), uri_host)
    }

    /// [`ProxyConfig::resolve`] with the request's `Host` already looked up.
    pub(crate) fn resolve_with_host(
        &self,
        peer: SocketAddr,
        tls: bool,
        headers: &HeaderMap,
        host_header: Option<&http::HeaderValue>,
        uri_host: Option<&str>,
    ) -> Result<Resolved, ProxyRejection> {
        let peer_ip = peer.ip().to_canonical();
        let mut client = peer_ip;
        let mut scheme = if tls { Scheme::Https } else { Scheme::Http };
        let mut host = host_header
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| uri_host.map(str::to_owned));

        let mut forwarded_host = None;
        if self.is_trusted(peer_ip) {
            match self.header {
                ProxyHeader::XForwarded => {
                    let hops = parse_x_forwarded_for_bytes(&lines(headers, "x-forwarded-for"));
                    let elements: Vec<Element> = hops
                        .into_iter()
                        .map(|n| Element {
                            for_node: Some(n),
                            ..Element::default()
                        })
                        .collect();
                    client = self.walk(peer_ip, &elements).0;
                    if let Some(p) = rightmost(headers, "x-forwarded-proto") {
                        scheme = parse_scheme(&p).ok_or(ProxyRejection::BadForwardedProto)?;
                    }
                    forwarded_host = rightmost(headers, "x-forwarded-host");
                }
                ProxyHeader::Forwarded => {
                    let elements = parse_forwarded_bytes(&lines(headers, "forwarded"))
                        .map_err(|_| ProxyRejection::MalformedForwarded)?;
                    let (ip, stop) = self.walk(peer_ip, &elements);
                    client = ip;
                    if let Some(el) = stop.and_then(|i| elements.get(i)) {
                        if let Some(p) = &el.proto {
                            scheme = parse_scheme(p).ok_or(ProxyRejection::BadForwardedProto)?;
                        }
                        forwarded_host.clone_from(&el.host);
                    }
                }
            }
        }

        if let Some(h) = forwarded_host {
            // A proxy that does not set the forwarded host itself (nginx by default) passes the
            // client's through: believe it only for a host that is served here anyway.
            if self.allowed_hosts.is_empty() {
                forwarded_host_ignored(&h);
            } else {
                host = Some(h);
            }
        }
        let mut host = host.ok_or(ProxyRejection::MissingHost)?;
        host.make_ascii_lowercase();
        if !valid_host(&host) {
            return Err(ProxyRejection::BadHost);
        }
        if !self.allowed_hosts.is_empty() && !self.host_allowed(&host, scheme) {
            return Err(ProxyRejection::HostNotAllowed);
        }
        Ok(Resolved {
            client: ClientIp(client),
            origin: RequestOrigin { scheme, host },
        })
    }

    /// Walks the chain from the right; returns the client and the index of the element the walk
    /// stopped at (`None` for an empty chain).
    ///
    /// That element was written by a trusted proxy: the rightmost one by the peer, each one to
    /// its left by the proxy named in the `for=` right of it, and the walk only goes on past a
    /// trusted `for=`. So its `proto=`/`host=` are believed even when its `for=` is hidden
    /// (`_hidden`, `unknown`: RFC 7239 §6.3) or missing, and the last trusted address stands in
    /// for the client.
    fn walk(&self, peer: IpAddr, elements: &[Element]) -> (IpAddr, Option<usize>) {
        let mut client = peer;
        let mut stop = None;
        for (i, el) in elements.iter().enumerate().rev() {
            stop = Some(i);
            match &el.for_node {
                Some(Node::Ip(ip)) => {
                    client = *ip;
                    if !self.is_trusted(*ip) {
                        break;
                    }
                }
                _ => break,
            }
        }
        (client, stop)
    }

    fn host_allowed(&self, host: &str, scheme: Scheme) -> bool {
        let https = scheme == Scheme::Https;
        self.allowed_hosts
            .iter()
            .any(|a| a.allows_host(host, https))
    }
}

/// The result of [`ProxyConfig::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The client's address.
    pub client: ClientIp,
    /// The scheme and host the client used.
    pub origin: RequestOrigin,
}

/// Why a request was refused by [`ProxyLayer`] (all are 400 except a missing peer address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyRejection {
    /// No `Host` header and no authority in the request target.
    #[error("the request has no Host header")]
    MissingHost,
    /// The host has characters no host name has.
    #[error("the Host header is not a valid host name")]
    BadHost,
    /// The host is not in `allowed_hosts`.
    #[error("this host name is not served here")]
    HostNotAllowed,
    /// A trusted proxy sent a `Forwarded` header that does not parse.
    #[error("the Forwarded header is malformed")]
    MalformedForwarded,
    /// A trusted proxy sent a forwarded protocol other than http or https.
    #[error("the forwarded protocol is neither http nor https")]
    BadForwardedProto,
    /// The server did not record the peer address (a setup mistake, not the client's).
    #[error("the peer address is unknown")]
    NoPeerAddress,
}

impl ProxyRejection {
    /// The 400 (or 500) for this refusal, carrying a [`Problem`] for the error pages.
    pub(crate) fn into_response<B: Default>(self) -> Response<B> {
        let status = match self {
            ProxyRejection::NoPeerAddress => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let problem = match self {
            ProxyRejection::NoPeerAddress => {
                tracing::error!("ProxyLayer found no ConnectInfo<SocketAddr>: serve with buttress::server or into_make_service_with_connect_info");
                Problem::new(status)
            }
            _ => Problem::new(status).with_detail(self.to_string()),
        };
        problem.into_empty_response()
    }
}

/// [`canonical_net`], with a warning for a range that holds every address of its family.
fn trusted_net(net: IpNet) -> IpNet {
    let net = canonical_net(net);
    if net.prefix_len() == 0 {
        tracing::warn!(%net, "every address of this family is trusted as a proxy: any client can choose its address and scheme");
    }
    net
}

/// Logs, once per process, that a forwarded host was not believed for want of `allowed_hosts`
/// (behind a proxy that rewrites `Host`, origins would otherwise look wrong with no hint why).
fn forwarded_host_ignored(host: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            forwarded_host = %host.escape_debug(),
            "a trusted proxy forwarded a host, which is ignored (Host is used) because allowed_hosts is empty: a client may have sent it. List the site's host names in allowed_hosts (BUTTRESS_ALLOWED_HOSTS) to believe it; logged once"
        );
    }
}

/// The raw bytes of each `name` line. Not decoded as a whole: a line may hold a client's
/// non-ASCII bytes and, after them, what a proxy appended; the parsers decode item by item.
fn lines<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a [u8]> {
    headers
        .get_all(name)
        .iter()
        .map(http::HeaderValue::as_bytes)
        .collect()
}

/// The rightmost item of the comma-separated `name` lines (the one the nearest proxy wrote),
/// decoded alone; an item that is not UTF-8 comes back with U+FFFD, which no scheme or host
/// has.
fn rightmost(headers: &HeaderMap, name: &str) -> Option<String> {
    list_items(
        headers
            .get_all(name)
            .iter()
            .map(http::HeaderValue::as_bytes),
    )
    .next_back()
    .map(|item| String::from_utf8_lossy(item).into_owned())
}

fn parse_scheme(text: &str) -> Option<Scheme> {
    match text.to_ascii_lowercase().as_str() {
        "https" => Some(Scheme::Https),
        "http" => Some(Scheme::Http),
        _ => None,
    }
}

fn valid_host(host: &str) -> bool {
    split_host(host).is_some()
}

/// Layer that resolves [`ClientIp`] and [`RequestOrigin`]. See the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct ProxyLayer {
    config: Arc<ProxyConfig>,
}

impl ProxyLayer {
    /// A layer with the given configuration.
    pub fn new(config: ProxyConfig) -> Self {
        ProxyLayer {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for ProxyLayer {
    type Service = Proxy<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Proxy {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Service made by [`ProxyLayer`].
#[derive(Debug, Clone)]
pub struct Proxy<S> {
    inner: S,
    config: Arc<ProxyConfig>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Proxy<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Either<ResolvedFuture<S::Future>, Ready<Result<Response<ResBody>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match resolve_request(&self.config, &req) {
            Ok(resolved) => {
                let ctx = RequestContext::of_mut(req.extensions_mut());
                ctx.client = Some(resolved.client.0);
                ctx.origin = Some(resolved.origin.clone());
                Either::Left(ResolvedFuture {
                    inner: self.inner.call(req),
                    resolved: Some(resolved),
                })
            }
            Err((rejection, peer)) => {
                let mut res = rejection.into_response();
                if let Some(peer) = peer {
                    res.extensions_mut().insert(ClientIp(peer));
                }
                Either::Right(futures_util::future::ready(Ok(res)))
            }
        }
    }
}

/// The proxy step of a request: its client, scheme and host from the TCP peer (axum's
/// [`ConnectInfo`]), the server's [`Transport`] and the headers, or why it is refused (logged
/// here) with the peer's address when known.
pub(crate) fn resolve_request<B>(
    config: &ProxyConfig,
    req: &Request<B>,
) -> Result<Resolved, (ProxyRejection, Option<IpAddr>)> {
    resolve_request_with_host(config, req, req.headers().get(header::HOST))
}

/// [`resolve_request`] with the request's `Host` already looked up.
pub(crate) fn resolve_request_with_host<B>(
    config: &ProxyConfig,
    req: &Request<B>,
    host: Option<&http::HeaderValue>,
) -> Result<Resolved, (ProxyRejection, Option<IpAddr>)> {
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
    else {
        return Err((ProxyRejection::NoPeerAddress, None));
    };
    let tls = req.extensions().get::<Transport>().is_some_and(|t| t.tls);
    let uri_host = req.uri().authority().map(|a| a.as_str());
    config
        .resolve_with_host(peer, tls, req.headers(), host, uri_host)
        .map_err(|rejection| {
            tracing::warn!(%peer, reason = %rejection, "request refused by proxy layer");
            (rejection, Some(peer.ip().to_canonical()))
        })
}

pin_project_lite::pin_project! {
    /// Future of [`Proxy`]: copies into the response's extensions what the layers outside it
    /// read there: [`ClientIp`] on an error response (the error pages show debug details to
    /// loopback clients only) and [`RequestOrigin`] for a request that came over HTTPS (the
    /// secure headers then send HSTS and the policy's HTTPS form). Both are on the request's
    /// extensions for everything inside, always.
    pub struct ResolvedFuture<F> {
        #[pin]
        inner: F,
        resolved: Option<Resolved>,
    }
}

impl<F, B> std::future::Future for ResolvedFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(Ok(mut res)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        if let Some(r) = this.resolved.take() {
            // Each insert is a box and a map insert, on every response: only what is read.
            if res.status().as_u16() >= 400 {
                res.extensions_mut().insert(r.client);
            }
            if r.origin.is_https() {
                res.extensions_mut().insert(r.origin);
            }
        }
        Poll::Ready(Ok(res))
    }
}

crate::errors::context_extractor!(ClientIp, "ProxyLayer", |ctx| ctx.client.map(ClientIp));
crate::errors::context_extractor!(RequestOrigin, "ProxyLayer", |ctx| ctx.origin.clone());
crate::errors::context_extractor!(RequestContext, "ProxyLayer", |ctx| Some(ctx.clone()));

#[cfg(test)]
mod tests;

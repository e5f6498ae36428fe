//! Who a request is counted against: the client address (as resolved by the proxy layer,
//! grouped by network prefix), or a key of your own; and which counter (scope).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath};
use http::request::Parts;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::overflow::Aggregate;

/// Which counter a request uses.
///
/// ```
/// use buttress::ratelimit::Scope;
/// let s = Scope::shared("auth");
/// assert_eq!(s, Scope::Shared("auth".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// One counter per client per route (the route's matched path, e.g. `/users/{id}`; the
    /// request path when no route matched). The default for [`RateLimitLayer`](super::RateLimitLayer).
    #[default]
    PerRoute,
    /// One counter per client for the whole application: all routes count together (the
    /// global limit of [`Buttress`](crate::Buttress)).
    App,
    /// One counter per client shared by every layer with this name.
    Shared(Cow<'static, str>),
    /// One counter for all clients together (protects a costly resource as a whole).
    Global,
}

impl Scope {
    /// A scope shared under `name`.
    ///
    /// ```
    /// let _ = buttress::ratelimit::Scope::shared("login");
    /// ```
    pub fn shared(name: impl Into<Cow<'static, str>>) -> Scope {
        Scope::Shared(name.into())
    }
}

/// A function from the request to a key (`None` falls back to the client address).
///
/// ```
/// use std::sync::Arc;
/// let by_user: buttress::ratelimit::KeyFn = Arc::new(|parts| {
///     parts.headers.get("x-user").and_then(|v| v.to_str().ok()).map(str::to_owned)
/// });
/// ```
pub type KeyFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// How the client address is grouped: IPv4 by `/v4` (default 32), IPv6 by `/v6` (default 64,
/// since one customer usually holds a whole /64 and can change the rest at will).
///
/// ```
/// use buttress::ratelimit::IpGrouping;
/// let g = IpGrouping::default();
/// assert_eq!(g.key("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
/// assert_eq!(g.key("203.0.113.9".parse().unwrap()), "203.0.113.9/32");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpGrouping {
    v4: u8,
    v6: u8,
}

impl Default for IpGrouping {
    fn default() -> Self {
        IpGrouping { v4: 32, v6: 64 }
    }
}

impl IpGrouping {
    /// Groups IPv4 by `/v4` (0–32) and IPv6 by `/v6` (0–128); larger values are clamped.
    ///
    /// ```
    /// let g = buttress::ratelimit::IpGrouping::new(24, 56);
    /// assert_eq!(g.key("198.51.100.7".parse().unwrap()), "198.51.100.0/24");
    /// ```
    pub fn new(v4: u8, v6: u8) -> Self {
        IpGrouping {
            v4: v4.min(32),
            v6: v6.min(128),
        }
    }

    /// The IPv6 prefix length.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::IpGrouping::default().v6(), 64);
    /// ```
    pub fn v6(&self) -> u8 {
        self.v6
    }

    /// The key of `ip`: its network at the configured prefix. An IPv4-mapped IPv6 address
    /// counts as IPv4.
    ///
    /// ```
    /// let g = buttress::ratelimit::IpGrouping::default();
    /// assert_eq!(g.key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1/32");
    /// ```
    pub fn key(&self, ip: IpAddr) -> String {
        let (addr, prefix) = self.network(ip);
        format!("{addr}/{prefix}")
    }

    /// The network address and prefix length of `ip`'s group.
    pub(crate) fn network(&self, ip: IpAddr) -> (IpAddr, u8) {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let net: IpNet = match ip {
            // The prefix lengths are clamped to the address size in `new`, so these succeed.
            IpAddr::V4(a) => Ipv4Net::new(a, self.v4).map_or(IpNet::from(ip), |n| n.trunc().into()),
            IpAddr::V6(a) => Ipv6Net::new(a, self.v6).map_or(IpNet::from(ip), |n| n.trunc().into()),
        };
        (net.addr(), net.prefix_len())
    }
}

/// The address a request is counted against: the [`ClientIp`](crate::proxy::ClientIp) set by
/// [`ProxyLayer`](crate::proxy::ProxyLayer) (forwarding headers believed only from trusted
/// proxies), else the TCP peer. Never a forwarding header read here.
pub(crate) fn client_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    crate::context::client_of(extensions).or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    })
}

/// A counter key, kept inline (no allocation) when it fits, as the usual
/// `app␟ip:203.0.113.9/32` and `route:/login␟ip:2001:db8:1:2::/64` do.
pub(crate) struct KeyText {
    inline: [u8; 96],
    len: usize,
    heap: Option<String>,
}

impl KeyText {
    fn new() -> KeyText {
        KeyText {
            inline: [0; 96],
            len: 0,
            heap: None,
        }
    }

    fn push_str(&mut self, text: &str) {
        let end = self.len + text.len();
        match (&mut self.heap, self.inline.get_mut(self.len..end)) {
            (None, Some(room)) => {
                room.copy_from_slice(text.as_bytes());
                self.len = end;
            }
            _ => self.spill(text),
        }
    }

    /// ASCII digits and punctuation written by this module, without a UTF-8 check per piece
    /// (the key is checked once, in [`KeyText::as_str`]).
    fn push_ascii(&mut self, ascii: &[u8]) {
        debug_assert!(ascii.is_ascii());
        let end = self.len + ascii.len();
        match (&mut self.heap, self.inline.get_mut(self.len..end)) {
            (None, Some(room)) => {
                room.copy_from_slice(ascii);
                self.len = end;
            }
            _ => self.spill(&String::from_utf8_lossy(ascii)),
        }
    }

    #[cold]
    fn spill(&mut self, text: &str) {
        let heap = self.heap.get_or_insert_with(|| {
            let mut heap = String::with_capacity(self.len + text.len() + 32);
            heap.push_str(std::str::from_utf8(&self.inline[..self.len]).unwrap_or(""));
            heap
        });
        heap.push_str(text);
    }

    /// The key.
    pub(crate) fn as_str(&self) -> &str {
        match &self.heap {
            Some(heap) => heap,
            // Only whole `&str`s are ever copied in.
            None => std::str::from_utf8(&self.inline[..self.len]).unwrap_or(""),
        }
    }

    /// The key, owned (for a check that waits for its store).
    pub(crate) fn into_string(self) -> String {
        match self.heap {
            Some(heap) => heap,
            None => self.as_str().to_owned(),
        }
    }
}

impl std::fmt::Write for KeyText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// Writes `n` in decimal at the start of `out` (room for three digits); gives the length.
fn decimal(n: u8, out: &mut [u8]) -> usize {
    let digits = [b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10];
    let skip = if n >= 100 {
        0
    } else if n >= 10 {
        1
    } else {
        2
    };
    let len = 3 - skip;
    if let Some(room) = out.get_mut(..len) {
        room.copy_from_slice(&digits[skip..]);
    }
    len
}

/// The counter key of a request: scope, then the key of `key_fn` (`own`, when it gave one)
/// or the client, built without an allocation when it fits.
pub(crate) fn request_key(
    path: &str,
    extensions: &http::Extensions,
    scope: &Scope,
    own: Option<String>,
    grouping: IpGrouping,
) -> (KeyText, Aggregate) {
    use std::fmt::Write as _;
    let mut key = KeyText::new();
    match scope {
        Scope::PerRoute => {
            key.push_str("route:");
            key.push_str(
                extensions
                    .get::<MatchedPath>()
                    .map_or(path, MatchedPath::as_str),
            );
        }
        Scope::App => key.push_str("app"),
        Scope::Shared(name) => {
            key.push_str("shared:");
            key.push_str(name);
        }
        // One key for everyone: it is always tracked.
        Scope::Global => {
            key.push_str("global");
            return (key, Aggregate::NONE);
        }
    }
    key.push_str("\u{1f}");
    let client = client_ip(extensions).map(|ip| grouping.network(ip));
    let agg = client.map_or(Aggregate::NONE, |(addr, prefix)| {
        Aggregate::of(addr, prefix)
    });
    match own {
        Some(k) => {
            key.push_str("key:");
            key.push_str(&k);
        }
        None => match client {
            Some((addr, prefix)) => {
                key.push_str("ip:");
                match addr {
                    // The common case, without the formatting machinery (a tenth of the
                    // layer's cost under load).
                    IpAddr::V4(v4) => {
                        let mut text = [0u8; 15];
                        let mut len = 0;
                        for (i, octet) in v4.octets().into_iter().enumerate() {
                            if i > 0 {
                                text[len] = b'.';
                                len += 1;
                            }
                            len += decimal(octet, &mut text[len..]);
                        }
                        key.push_ascii(&text[..len]);
                    }
                    // Writing to a KeyText cannot fail.
                    IpAddr::V6(v6) => {
                        let _ = write!(key, "{v6}");
                    }
                }
                let mut text = [b'/', 0, 0, 0];
                let len = 1 + decimal(prefix, &mut text[1..]);
                key.push_ascii(&text[..len]);
            }
            // No proxy layer and no peer address: every such request shares one counter, so
            // the limit still holds (tests and misconfigured stacks), never a bypass.
            None => key.push_str("ip:unknown"),
        },
    }
    (key, agg)
}

/// A predicate on the request head.
pub(crate) type Predicate = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;

/// Requests that are not counted at all.
#[derive(Clone, Default)]
pub(crate) struct Exemptions {
    pub(crate) paths: Vec<String>,
    pub(crate) prefixes: Vec<String>,
    pub(crate) nets: Vec<IpNet>,
    pub(crate) predicate: Option<Predicate>,
}

impl fmt::Debug for Exemptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exemptions")
            .field("paths", &self.paths)
            .field("prefixes", &self.prefixes)
            .field("nets", &self.nets)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl Exemptions {
    /// Whether a request for `path` is not counted, by path and client; a predicate
    /// ([`RateLimitLayer::exempt_if`](super::RateLimitLayer::exempt_if)) is asked separately.
    pub(crate) fn exempt_head(&self, path: &str, extensions: &http::Extensions) -> bool {
        // A prefix never exempts a path that climbs out of it (`/static/../login`), in case
        // something in front normalises it into another route.
        let under_prefix = |p: &String| path.starts_with(p.as_str()) && !path.contains("..");
        if self.paths.iter().any(|p| p == path) || self.prefixes.iter().any(under_prefix) {
            return true;
        }
        if !self.nets.is_empty() {
            if let Some(ip) = client_ip(extensions) {
                if self.nets.iter().any(|n| n.contains(&ip)) {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts_from(ip: IpAddr) -> Parts {
        let mut req = http::Request::new(());
        req.extensions_mut().insert(crate::RequestContext {
            client: Some(ip),
            ..Default::default()
        });
        req.into_parts().0
    }

    fn key_of(parts: &Parts, scope: &Scope, grouping: IpGrouping) -> String {
        key_and_aggregate(parts, scope, grouping).0
    }

    fn key_and_aggregate(
        parts: &Parts,
        scope: &Scope,
        grouping: IpGrouping,
    ) -> (String, Aggregate) {
        let (key, agg) = request_key(parts.uri.path(), &parts.extensions, scope, None, grouping);
        (key.into_string(), agg)
    }

    /// A key longer than the inline buffer moves to the heap whole.
    #[test]
    fn long_keys_spill_to_the_heap_whole() {
        let name = "n".repeat(200);
        let ip: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        let key = key_of(
            &parts_from(ip),
            &Scope::Shared(name.clone().into()),
            IpGrouping::default(),
        );
        assert_eq!(key, format!("shared:{name}\u{1f}ip:2001:db8:1:2::/64"));
    }

    proptest! {
        /// The hand-written key text is the network's usual notation, for every address and
        /// grouping.
        #[test]
        fn key_text_is_the_network_notation(
            v4 in any::<[u8; 4]>(),
            v6 in any::<[u16; 8]>(),
            p4 in 0u8..=40,
            p6 in 0u8..=140,
        ) {
            let grouping = IpGrouping::new(p4, p6);
            for ip in [IpAddr::from(v4), IpAddr::from(v6)] {
                let (key, agg) = key_and_aggregate(&parts_from(ip), &Scope::App, grouping);
                prop_assert_eq!(key, format!("app\u{1f}ip:{}", grouping.key(ip)));
                let (addr, prefix) = grouping.network(ip);
                let net = IpNet::new(addr, prefix).expect("a valid prefix");
                prop_assert_eq!(agg, Aggregate::of_net(crate::ratelimit::overflow::aggregate(net)));
            }
        }
    }

    #[test]
    fn examples() {
        let g = IpGrouping::default();
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        assert_eq!(
            key_of(&parts_from(ip), &Scope::App, g),
            "app\u{1f}ip:203.0.113.7/32"
        );
        let ip: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        assert_eq!(
            key_of(&parts_from(ip), &Scope::Shared("login".into()), g),
            "shared:login\u{1f}ip:2001:db8:1:2::/64"
        );
        let none = http::Request::new(()).into_parts().0;
        assert_eq!(key_of(&none, &Scope::App, g), "app\u{1f}ip:unknown");
    }
}

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
use crate::proxy::ClientIp;

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

/// The address a request is counted against: the [`ClientIp`] set by
/// [`ProxyLayer`](crate::proxy::ProxyLayer) (forwarding headers believed only from trusted
/// proxies), else the TCP peer. Never a forwarding header read here.
pub(crate) fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ClientIp>().map(|c| c.0).or_else(|| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    })
}

/// The counter key of a request (scope, then client, built in one allocation) and the aggregate
/// network of its client, where a full memory store counts it.
pub(super) fn request_key(
    parts: &Parts,
    scope: &Scope,
    key_fn: Option<&KeyFn>,
    grouping: IpGrouping,
) -> (String, Aggregate) {
    use std::fmt::Write as _;
    let mut key = String::with_capacity(64);
    match scope {
        Scope::PerRoute => {
            key.push_str("route:");
            key.push_str(
                parts
                    .extensions
                    .get::<MatchedPath>()
                    .map_or_else(|| parts.uri.path(), MatchedPath::as_str),
            );
        }
        Scope::App => key.push_str("app"),
        Scope::Shared(name) => {
            key.push_str("shared:");
            key.push_str(name);
        }
        // One key for everyone: it is always tracked.
        Scope::Global => return ("global".to_owned(), Aggregate::NONE),
    }
    key.push('\u{1f}');
    let client = client_ip(parts).map(|ip| grouping.network(ip));
    let agg = client.map_or(Aggregate::NONE, |(addr, prefix)| {
        Aggregate::of(addr, prefix)
    });
    match key_fn.and_then(|f| f(parts)) {
        Some(k) => {
            key.push_str("key:");
            key.push_str(&k);
        }
        None => match client {
            Some((addr, prefix)) => {
                key.push_str("ip:");
                let mut digits = itoa::Buffer::new();
                match addr {
                    // The common case, without the formatting machinery (a tenth of the
                    // layer's cost under load).
                    IpAddr::V4(v4) => {
                        for (i, octet) in v4.octets().into_iter().enumerate() {
                            if i > 0 {
                                key.push('.');
                            }
                            key.push_str(digits.format(octet));
                        }
                    }
                    // Writing to a String cannot fail.
                    IpAddr::V6(v6) => {
                        let _ = write!(key, "{v6}");
                    }
                }
                key.push('/');
                key.push_str(digits.format(prefix));
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
    pub(crate) nets: Vec<IpNet>,
    pub(crate) predicate: Option<Predicate>,
}

impl fmt::Debug for Exemptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exemptions")
            .field("paths", &self.paths)
            .field("nets", &self.nets)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl Exemptions {
    pub(crate) fn exempt(&self, parts: &Parts) -> bool {
        if self.paths.iter().any(|p| p == parts.uri.path()) {
            return true;
        }
        if !self.nets.is_empty() {
            if let Some(ip) = client_ip(parts) {
                if self.nets.iter().any(|n| n.contains(&ip)) {
                    return true;
                }
            }
        }
        self.predicate.as_ref().is_some_and(|f| f(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts_from(ip: IpAddr) -> Parts {
        let mut req = http::Request::new(());
        req.extensions_mut().insert(ClientIp(ip));
        req.into_parts().0
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
                let (key, agg) = request_key(&parts_from(ip), &Scope::App, None, grouping);
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
            request_key(&parts_from(ip), &Scope::App, None, g).0,
            "app\u{1f}ip:203.0.113.7/32"
        );
        let ip: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        assert_eq!(
            request_key(&parts_from(ip), &Scope::Shared("login".into()), None, g).0,
            "shared:login\u{1f}ip:2001:db8:1:2::/64"
        );
        let none = http::Request::new(()).into_parts().0;
        assert_eq!(
            request_key(&none, &Scope::App, None, g),
            ("app\u{1f}ip:unknown".to_owned(), Aggregate::NONE)
        );
    }
}

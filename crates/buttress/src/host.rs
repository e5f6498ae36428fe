//! Host names and web origins, parsed and compared in one place.
//!
//! Every concern that reads a host (`Host`, a forwarded host, `allowed_hosts`, the canonical
//! host of the HTTPS redirect, the loopback check of the error pages) or an origin (`Origin`,
//! `Referer`, CSRF's trusted origins) uses these functions, so that two of them can never
//! disagree about what a host is. A leaf: it imports no other concern.

/// Splits a host as `Host` carries it into its name and port, or `None` when it is not one:
/// a non-empty name of letters, digits, `-`, `.` and `_` (a DNS name or an IPv4 address), or an
/// IPv6 address in brackets, then optionally `:` and a port of one to five digits (at most
/// 65535). An empty name (`:80`) is refused: `https://` followed by nothing would make a
/// browser read the first path segment as the host.
pub(crate) fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if host.len() > 255 {
        return None;
    }
    let (name, rest) = match host.strip_prefix('[') {
        Some(bracketed) => {
            let (inside, rest) = bracketed.split_once(']')?;
            inside.parse::<std::net::Ipv6Addr>().ok()?;
            (&host[..inside.len() + 2], rest)
        }
        None => {
            let end = host.bytes().position(|b| b == b':').unwrap_or(host.len());
            let (name, rest) = host.split_at(end);
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !name_ok {
                return None;
            }
            (name, rest)
        }
    };
    if rest.is_empty() {
        return Some((name, None));
    }
    let digits = rest.strip_prefix(':')?;
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, Some(digits.parse().ok()?)))
}

/// The name part of a host (`example.org` of `example.org:8443`, `[::1]` of `[::1]:80`); the
/// text itself when it is not a host.
pub(crate) fn hostname(host: &str) -> &str {
    split_host(host).map_or(host, |(name, _)| name)
}

/// `localhost`, `*.localhost`, or a loopback address, with or without a port.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let Some((name, _)) = split_host(host) else {
        return false;
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let dotted = name.len() > ".localhost".len()
        && name.as_bytes()[name.len() - ".localhost".len()..].eq_ignore_ascii_case(b".localhost");
    name.eq_ignore_ascii_case("localhost")
        || dotted
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A host name that `allowed_hosts` lists: `example.org`, `*.example.org` (any subdomain, not
/// the name itself), an address (`127.0.0.1`, `[::1]`), each optionally with the only port it
/// allows (`example.org:8443`). Parsed once, at start-up; anything else is refused with the
/// reason, never kept as an entry that silently matches nothing.
///
/// ```
/// use buttress::proxy::HostPattern;
/// let p: HostPattern = "*.Example.org".parse()?;
/// assert!(p.allows("www.example.org", 443) && !p.allows("example.org", 443));
/// let local: HostPattern = "[::1]:8000".parse()?;
/// assert!(local.allows("[::1]", 8000) && !local.allows("[::1]", 80));
/// assert!("https://example.org".parse::<HostPattern>().is_err());
/// # Ok::<(), buttress::proxy::HostError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// The name, lower-cased; `*.suffix` for a wildcard.
    name: String,
    port: Option<u16>,
}

/// A host or origin that cannot be used (in `allowed_hosts`, the canonical host or the CSRF
/// trusted origins). The message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Not a host name (or `[IPv6]`), with an optional port.
    #[error("{0:?} is not a host name: write a bare name such as example.org, *.example.org or [::1], optionally with :port, with no scheme and no path")]
    NotAHost(String),
    /// A `*` anywhere but a leading `*.`.
    #[error(
        "{0:?} has a wildcard that can never match: only a leading `*.` (any subdomain) is allowed"
    )]
    Wildcard(String),
    /// An origin without `http://` or `https://`.
    #[error("{0:?} is not an origin: it needs a scheme, e.g. https://admin.example.org")]
    NoScheme(String),
    /// An origin with a path, query or fragment (browsers never send one).
    #[error("{0:?} is not an origin: an origin has no path, query or fragment (browsers send only scheme://host[:port])")]
    Path(String),
}

impl std::str::FromStr for HostPattern {
    type Err = HostError;
    fn from_str(text: &str) -> Result<Self, HostError> {
        let lower = text.trim().to_ascii_lowercase();
        let (wild, rest) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if rest.contains('*') {
            return Err(HostError::Wildcard(text.to_owned()));
        }
        let (name, port) = split_host(rest).ok_or_else(|| HostError::NotAHost(text.to_owned()))?;
        if wild && name.starts_with('[') {
            return Err(HostError::Wildcard(text.to_owned()));
        }
        let name = if wild {
            format!("*.{name}")
        } else {
            name.to_owned()
        };
        Ok(HostPattern { name, port })
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl HostPattern {
    /// Whether a host `name` (lower-case, without its port) on `port` matches.
    pub fn allows(&self, name: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
            && match self.name.strip_prefix("*.") {
                Some(suffix) => name
                    .strip_suffix(suffix)
                    .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
                None => self.name == name,
            }
    }

    /// Whether a `Host` value (`example.org:8443`, already lower-cased) on a request of this
    /// scheme (its default port when the host names none) matches.
    pub(crate) fn allows_host(&self, host: &str, https: bool) -> bool {
        split_host(host).is_some_and(|(name, port)| {
            self.allows(name, port.unwrap_or(if https { 443 } else { 80 }))
        })
    }
}

/// A web origin: scheme, host name and port (the scheme's default when not written), compared
/// as the triple browsers compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebOrigin {
    https: bool,
    name: String,
    port: u16,
}

impl WebOrigin {
    /// An origin as `Origin` sends it (`https://example.org:8443`); a trailing `/` is
    /// tolerated, anything else after the host is not an origin.
    pub(crate) fn parse(text: &str) -> Option<WebOrigin> {
        let (https, rest) = split_scheme(text.trim())?;
        let host = rest.strip_suffix('/').unwrap_or(rest);
        WebOrigin::of(https, &host.to_ascii_lowercase())
    }

    /// The origin of a URL (a `Referer`): scheme, host and port, the rest dropped.
    pub(crate) fn of_url(url: &str) -> Option<WebOrigin> {
        let (https, rest) = split_scheme(url.trim())?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        // Userinfo in a Referer is not an origin's; refuse rather than guess.
        if authority.contains('@') {
            return None;
        }
        WebOrigin::of(https, &authority.to_ascii_lowercase())
    }

    /// The origin of a request that came over `https` (or not) to `host` (lower-case).
    pub(crate) fn of(https: bool, host: &str) -> Option<WebOrigin> {
        let (name, port) = split_host(host)?;
        Some(WebOrigin {
            https,
            name: name.to_owned(),
            port: port.unwrap_or(if https { 443 } else { 80 }),
        })
    }
}

fn split_scheme(text: &str) -> Option<(bool, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    if scheme.eq_ignore_ascii_case("https") {
        Some((true, rest))
    } else if scheme.eq_ignore_ascii_case("http") {
        Some((false, rest))
    } else {
        None
    }
}

/// An origin that may send unsafe requests besides the site's own (`https://admin.example.org`,
/// `https://*.example.org` for any subdomain), parsed once at start-up: one that could never
/// match a browser's `Origin` is refused with the reason.
///
/// ```
/// use buttress::csrf::TrustedOrigin;
/// let t: TrustedOrigin = "https://*.example.org".parse()?;
/// assert_eq!(t.to_string(), "https://*.example.org");
/// for bad in ["admin.example.org", "https://example.org/path", "https://ex*ample.org"] {
///     assert!(bad.parse::<TrustedOrigin>().is_err(), "{bad}");
/// }
/// # Ok::<(), buttress::proxy::HostError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedOrigin {
    https: bool,
    host: HostPattern,
    port: u16,
}

impl std::str::FromStr for TrustedOrigin {
    type Err = HostError;
    fn from_str(text: &str) -> Result<Self, HostError> {
        let trimmed = text.trim();
        let (https, rest) =
            split_scheme(trimmed).ok_or_else(|| HostError::NoScheme(text.to_owned()))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(HostError::Path(text.to_owned()));
        }
        let host: HostPattern = rest.parse().map_err(|e| match e {
            HostError::NotAHost(_) => HostError::NotAHost(text.to_owned()),
            _ => HostError::Wildcard(text.to_owned()),
        })?;
        let port = host.port.unwrap_or(if https { 443 } else { 80 });
        Ok(TrustedOrigin {
            https,
            host: HostPattern { port: None, ..host },
            port,
        })
    }
}

impl std::fmt::Display for TrustedOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host)?;
        if self.port != if self.https { 443 } else { 80 } {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

impl TrustedOrigin {
    /// Whether `origin` is this one (or, for a wildcard, one of its subdomains).
    pub(crate) fn matches(&self, origin: &WebOrigin) -> bool {
        self.https == origin.https
            && self.port == origin.port
            && self.host.allows(&origin.name, origin.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_patterns() {
        let cases: &[(&str, Option<&str>)] = &[
            ("example.org", Some("example.org")),
            ("EXAMPLE.org:8443", Some("example.org:8443")),
            ("*.example.org", Some("*.example.org")),
            ("[::1]", Some("[::1]")),
            ("[::1]:8000", Some("[::1]:8000")),
            ("127.0.0.1", Some("127.0.0.1")),
            ("https://example.org", None),
            ("example.org/x", None),
            ("ex*mple.org", None),
            ("*example.org", None),
            ("*.[::1]", None),
            ("", None),
            (":80", None),
            ("example.org:99999", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<HostPattern>().ok().map(|p| p.to_string());
            assert_eq!(got.as_deref(), *want, "{text}");
        }
    }

    #[test]
    fn trusted_origins() {
        let ok = |t: &str| t.parse::<TrustedOrigin>().expect(t);
        let o = |t: &str| WebOrigin::parse(t).expect(t);
        assert!(ok("https://admin.example.org").matches(&o("https://ADMIN.example.org:443")));
        assert!(!ok("https://admin.example.org").matches(&o("http://admin.example.org")));
        assert!(!ok("https://admin.example.org").matches(&o("https://admin.example.org:8443")));
        assert!(ok("https://*.example.org").matches(&o("https://a.b.example.org")));
        assert!(!ok("https://*.example.org").matches(&o("https://example.org")));
        assert!(!ok("https://*.example.org").matches(&o("https://evilexample.org")));
        assert!(ok("http://[::1]:8000").matches(&o("http://[::1]:8000")));
        for bad in [
            "admin.example.org",
            "https://example.org/path",
            "https://example.org?x",
            "https://ex*ample.org",
            "https://*",
            "ftp://example.org",
            "https://",
        ] {
            assert!(bad.parse::<TrustedOrigin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn referer_origins() {
        let of = |u: &str| WebOrigin::of_url(u);
        assert_eq!(
            of("https://example.org/a?b#c"),
            WebOrigin::parse("https://example.org")
        );
        assert_eq!(
            of("https://example.org:443/"),
            WebOrigin::parse("https://example.org")
        );
        assert_eq!(of("https://user@evil.test/"), None);
        assert_eq!(of("/relative"), None);
    }

    proptest! {
        /// A pattern accepted from text prints back to text that parses to the same pattern.
        #[test]
        fn host_patterns_round_trip(text in "[*.]{0,2}[a-zA-Z0-9.:-]{0,20}") {
            if let Ok(p) = text.parse::<HostPattern>() {
                prop_assert_eq!(p.to_string().parse::<HostPattern>(), Ok(p));
            }
        }

        /// The origin of a request to `host` over `https` matches an exact trusted origin made
        /// from the same pair, whatever the case and however the default port is written.
        #[test]
        fn own_origin_matches_its_trusted_form(name in "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){1,2}", https: bool, port in proptest::option::of(1u16..)) {
            let scheme = if https { "https" } else { "http" };
            let host = match port { Some(p) => format!("{name}:{p}"), None => name.clone() };
            let trusted: TrustedOrigin = format!("{scheme}://{}", host.to_uppercase()).parse().expect("valid");
            let own = WebOrigin::of(https, &host).expect("valid host");
            prop_assert!(trusted.matches(&own));
        }
    }
}

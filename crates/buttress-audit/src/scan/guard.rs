//! Where the two probes that change state or load a site (`--active`'s cross-site POSTs and
//! the `--probe-rate-limit` burst) may go: a host that is loopback by name and by address, or
//! one the user named with `--allow-host`, and only on the origin the user gave.
//!
//! A scanned site chooses its redirects, and the user's `--resolve` chooses addresses, so the
//! name in the URL is not enough: the address it is sent to (`--resolve`) and the address that
//! answered are checked too, and a redirect to another port or scheme of the same host (another
//! service) is not followed by the probes.

use std::net::{IpAddr, SocketAddr};

use url::Url;

use super::{same_origin, Options};

/// Whether the active probes may touch a host of this name: `localhost`, `*.localhost`, a
/// loopback address, or a host named in `allow`. (The scanner also checks the address the name
/// is sent to and that answered, and the origin: see [`crate::scan`].)
pub fn host_allowed(host: &str, allow: &[String]) -> bool {
    let h = bare(host);
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    if h.parse::<IpAddr>().is_ok_and(is_loopback) {
        return true;
    }
    allow_listed(&h, allow)
}

/// `host` lowercased, without the brackets of an IPv6 literal.
fn bare(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// Whether the user named `host` with `--allow-host` (then any address goes).
fn allow_listed(host: &str, allow: &[String]) -> bool {
    allow.iter().any(|a| a.eq_ignore_ascii_case(host))
}

/// Loopback, IPv4-mapped IPv6 loopback included.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether `page` is the plain-HTTP `start` upgraded to HTTPS on the default ports
/// (`http://host/` to `https://host/`), which the probes follow.
fn upgrade(start: &Url, page: &Url) -> bool {
    start.scheme() == "http"
        && page.scheme() == "https"
        && start.host_str() == page.host_str()
        && start.port_or_known_default() == Some(80)
        && page.port_or_known_default() == Some(443)
}

/// Why the active probes may not touch `page` (the page judged, reached from the URL given,
/// `start`), whose answer came from `peer`; `None` if they may.
pub(super) fn refusal(
    start: &Url,
    page: &Url,
    peer: Option<SocketAddr>,
    opts: &Options,
) -> Option<String> {
    let host = page.host_str().unwrap_or("");
    if !host_allowed(host, &opts.allow_hosts) {
        return Some(format!(
            "{host} is not loopback and not named by --allow-host"
        ));
    }
    if !allow_listed(&bare(host), &opts.allow_hosts) {
        let resolved = opts
            .resolve
            .iter()
            .filter(|(name, _)| bare(name) == bare(host))
            .map(|(_, addr)| addr.ip())
            .find(|ip| !is_loopback(*ip));
        if let Some(ip) = resolved {
            return Some(format!(
                "--resolve sends {host} to {ip}, which is not loopback: name {host} with --allow-host to probe it there"
            ));
        }
        if let Some(why) = peer_refusal(host, peer, opts) {
            return Some(why);
        }
    }
    if !same_origin(start, page) && !upgrade(start, page) {
        return Some(format!(
            "the page is at {}, another origin than the URL given ({}): the probes touch only the origin given; scan {page} to probe it",
            page.origin().ascii_serialization(),
            start.origin().ascii_serialization()
        ));
    }
    None
}

/// Why the active probes must stop after an answer from `peer` for `host`: a host that is not
/// named by `--allow-host` must answer from loopback (an unknown address, which the HTTP client
/// does not give in practice, counts as not loopback). `None` if they may go on.
pub(super) fn peer_refusal(host: &str, peer: Option<SocketAddr>, opts: &Options) -> Option<String> {
    if allow_listed(&bare(host), &opts.allow_hosts) {
        return None;
    }
    match peer.map(|p| p.ip()) {
        Some(ip) if is_loopback(ip) => None,
        Some(ip) => Some(format!(
            "{host} answered from {ip}, which is not loopback: name {host} with --allow-host to probe it there"
        )),
        None => Some(format!(
            "the address {host} answered from is unknown: name {host} with --allow-host to probe it"
        )),
    }
}

/// The URL `--probe-rate-limit PATH` names on `page`: PATH must stay on the page's origin
/// (`/login`, not `//elsewhere.example/login` nor `https://elsewhere.example/`).
pub(super) fn probe_url(page: &Url, path: &str) -> Result<Url, String> {
    let url = page
        .join(path)
        .map_err(|e| format!("{path:?} is not a path: {e}"))?;
    if !same_origin(&url, page) {
        return Err(format!(
            "{path:?} leads to {url}, off the scanned origin {}: give a path on the site, such as /login",
            page.origin().ascii_serialization()
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn only_loopback_or_named_hosts_are_probed() {
        assert!(host_allowed("127.0.0.1", &[]));
        assert!(host_allowed("[::1]", &[]));
        assert!(host_allowed("[::ffff:7f00:1]", &[]));
        assert!(host_allowed("LOCALHOST", &[]));
        assert!(host_allowed("app.localhost", &[]));
        assert!(!host_allowed("example.org", &[]));
        assert!(host_allowed(
            "staging.example.org",
            &["Staging.Example.org".into()]
        ));
        assert!(!host_allowed("10.0.0.1", &[]));
    }

    #[test]
    fn addresses_count_not_only_names() {
        let page = url("http://localhost:8080/");
        let public: SocketAddr = ([203, 0, 113, 7], 0).into();
        let local = Some(([127, 0, 0, 1], 8080).into());
        let mut opts = Options::new();
        assert_eq!(refusal(&page, &page, local, &opts), None);
        opts.resolve = vec![("LocalHost".into(), public)];
        let why = refusal(&page, &page, local, &opts).expect("refused");
        assert!(
            why.contains("--resolve sends localhost to 203.0.113.7"),
            "{why}"
        );
        opts.resolve = vec![("localhost".into(), ([127, 0, 0, 2], 0).into())];
        assert_eq!(refusal(&page, &page, local, &opts), None);
        let why = refusal(&page, &page, Some(public), &opts).expect("refused");
        assert!(why.contains("answered from 203.0.113.7"), "{why}");
        let why = refusal(&page, &page, None, &opts).expect("refused");
        assert!(why.contains("is unknown"), "{why}");
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:80".parse().expect("addr");
        assert_eq!(refusal(&page, &page, Some(mapped), &opts), None);
        // Named by --allow-host: any address goes.
        opts.resolve = vec![("localhost".into(), public)];
        opts.allow_hosts = vec!["localhost".into()];
        assert_eq!(refusal(&page, &page, Some(public), &opts), None);
        assert_eq!(peer_refusal("localhost", None, &opts), None);
    }

    #[test]
    fn only_the_origin_given_or_its_https_upgrade() {
        let opts = Options::new();
        let local = Some(([127, 0, 0, 1], 80).into());
        let start = url("http://localhost/");
        for (page, ok) in [
            ("http://localhost/login", true),
            ("https://localhost/", true),
            ("https://localhost:8443/", false),
            ("http://localhost:6379/", false),
            ("http://127.0.0.1/", false),
        ] {
            let why = refusal(&start, &url(page), local, &opts);
            assert_eq!(why.is_none(), ok, "{page}: {why:?}");
        }
        let why = refusal(
            &url("http://localhost:8080/"),
            &url("https://localhost:8443/"),
            local,
            &opts,
        )
        .expect("refused");
        assert!(
            why.contains("another origin than the URL given (http://localhost:8080)")
                && why.contains("scan https://localhost:8443/"),
            "{why}"
        );
    }

    #[test]
    fn rate_limit_paths_stay_on_the_origin() {
        let page = url("http://127.0.0.1:5000/app/");
        assert_eq!(
            probe_url(&page, "/login").map(String::from),
            Ok("http://127.0.0.1:5000/login".to_owned())
        );
        assert!(probe_url(&page, "login").is_ok());
        assert!(probe_url(&page, "http://127.0.0.1:5000/x").is_ok());
        for off in [
            "//victim.example/login",
            "https://victim.example/",
            "http://127.0.0.1:6379/",
            "https://127.0.0.1:5000/",
            "///victim.example/",
            "\\\\victim.example/login",
        ] {
            let e = probe_url(&page, off).expect_err(off);
            assert!(
                e.contains("off the scanned origin http://127.0.0.1:5000")
                    || e.contains("is not a path"),
                "{e}"
            );
        }
    }
}

//! Where the two probes that change state or load a site (`--active`'s cross-site POSTs and
//! the `--probe-rate-limit` burst) may go: a loopback host or one the user named with
//! `--allow-host`, and for the burst a path on the scanned origin.

use std::net::IpAddr;

use url::Url;

use super::same_origin;

/// Whether the active probes may touch a host of this name: `localhost`, `*.localhost`, a
/// loopback address, or a host named in `allow`.
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

/// Whether the user named `host` with `--allow-host`.
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

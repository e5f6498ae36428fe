//! Parsing one setting's text into its type, with errors that name the variable, what is wrong
//! with the value and how to fix it. Types that belong to a concern (`ProxyHeader`, `Csp`,
//! `RateLimitStorage`, host patterns and origins…) are parsed by that concern's own `FromStr`;
//! this module only words the error.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

use super::load::{invalid, redact_userinfo, Origin};
use super::{env_name, Environment, SettingsError};
use crate::csrf::TrustedOrigin;
use crate::headers::Csp;
use crate::proxy::{HostPattern, ProxyHeader};
use crate::ratelimit::{HeaderStyle, Limits, OnStoreError, RateLimitStorage};
use crate::secret::ConnectionUrl;
use crate::secret::SecretKey;
use crate::session::{SameSite, SessionStoreKind};

/// One value as given, with where it came from.
pub(crate) struct Field<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: &'a str,
    pub(crate) origin: &'a Origin,
}

type Parsed<T> = Result<T, SettingsError>;

impl Field<'_> {
    fn name(&self) -> String {
        match self.origin {
            Origin::Env => env_name(self.key),
            _ => self.key.to_owned(),
        }
    }

    /// The error for this value: the value shown quoted, with a URL's password hidden, or not
    /// at all for a secret key.
    pub(crate) fn fail(&self, problem: &str, fix: &str) -> SettingsError {
        let value = if self.key.starts_with("secret_key") && self.key != "secret_key_file" {
            "<redacted>".to_owned()
        } else {
            format!("{:?}", redact_userinfo(self.value))
        };
        invalid(&self.name(), self.origin, &value, problem, fix)
    }

    pub(crate) fn fail_redacted(&self, problem: &str, fix: &str) -> SettingsError {
        invalid(&self.name(), self.origin, "<redacted>", problem, fix)
    }

    fn text(&self) -> &str {
        self.value.trim()
    }

    fn lower(&self) -> String {
        self.text().to_ascii_lowercase()
    }

    fn list(&self) -> Vec<&str> {
        self.value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The value through `T`'s own parser, the error worded with `problem` and `fix`.
    fn via<T: FromStr>(&self, problem: &str, fix: &str) -> Parsed<T> {
        self.text().parse().map_err(|_| self.fail(problem, fix))
    }

    fn num<T: FromStr>(&self, what: &str) -> Parsed<T> {
        self.via("not a number in range", &format!("use {what}"))
    }
}

pub(crate) fn environment(f: &Field<'_>) -> Parsed<Environment> {
    match f.lower().as_str() {
        "development" | "dev" => Ok(Environment::Development),
        "production" | "prod" => Ok(Environment::Production),
        _ => Err(f.fail("not an environment", "use development or production")),
    }
}

pub(crate) fn boolean(f: &Field<'_>) -> Parsed<bool> {
    match f.lower().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(f.fail("not a boolean", "use true or false")),
    }
}

pub(crate) fn address(f: &Field<'_>) -> Parsed<SocketAddr> {
    let v = f.text();
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = v.strip_prefix("localhost:") {
        if let Ok(p) = port.parse::<u16>() {
            return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
        }
    }
    Err(f.fail(
        "not an IP address with a port",
        "use ADDRESS:PORT, e.g. 127.0.0.1:8000 or [::1]:8000",
    ))
}

pub(crate) fn some_address(f: &Field<'_>) -> Parsed<Option<SocketAddr>> {
    address(f).map(Some)
}

pub(crate) fn path(f: &Field<'_>) -> Parsed<PathBuf> {
    Ok(PathBuf::from(f.text()))
}

pub(crate) fn some_path(f: &Field<'_>) -> Parsed<Option<PathBuf>> {
    path(f).map(Some)
}

pub(crate) fn some_text(f: &Field<'_>) -> Parsed<Option<String>> {
    Ok(Some(f.text().to_owned()))
}

pub(crate) fn cidrs(f: &Field<'_>) -> Parsed<Vec<IpNet>> {
    f.list()
        .into_iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    f.fail(
                        &format!("{item:?} is not an IP address or CIDR range"),
                        "list ranges such as 10.0.0.0/8, 192.168.1.5 or fd00::/8, separated by commas",
                    )
                })
        })
        .collect()
}

pub(crate) fn proxy_header(f: &Field<'_>) -> Parsed<ProxyHeader> {
    f.via("not a proxy header family", "use x-forwarded or forwarded")
}

pub(crate) fn host_patterns(f: &Field<'_>) -> Parsed<Vec<HostPattern>> {
    f.list()
        .into_iter()
        .map(|h| {
            h.parse().map_err(|e: crate::proxy::HostError| {
                f.fail(&e.to_string(), "list host names such as example.org, *.example.org or [::1]:8000, separated by commas")
            })
        })
        .collect()
}

pub(crate) fn canonical_host(f: &Field<'_>) -> Parsed<Option<String>> {
    let host = f.lower();
    if host.contains('*') || crate::host::split_host(&host).is_none() {
        return Err(f.fail(
            "not a host name",
            "write one host name such as www.example.org, optionally with :port (no scheme, no path)",
        ));
    }
    Ok(Some(host))
}

pub(crate) fn paths(f: &Field<'_>) -> Parsed<Vec<String>> {
    let paths = f.list();
    if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
        return Err(f.fail(
            &format!("path {bad:?} does not start with '/'"),
            "list absolute paths such as /healthz",
        ));
    }
    Ok(paths.into_iter().map(str::to_owned).collect())
}

pub(crate) fn port(f: &Field<'_>) -> Parsed<Option<u16>> {
    Ok(Some(f.num::<u16>("a port number (1-65535)")?).filter(|p| *p != 0))
}

pub(crate) fn duration(f: &Field<'_>) -> Parsed<Duration> {
    let v = f.text();
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(v).map_err(|e| {
        f.fail(
            &format!("not a duration ({e})"),
            "use seconds (`300`) or units (`30s`, `10m`, `1y`)",
        )
    })
}

pub(crate) fn positive_duration(f: &Field<'_>) -> Parsed<Duration> {
    let d = duration(f)?;
    if d.is_zero() {
        return Err(f.fail(
            "a zero timeout would turn the limit off",
            "use a positive duration such as 30s",
        ));
    }
    Ok(d)
}

pub(crate) fn redis_budget(f: &Field<'_>) -> Parsed<Duration> {
    let d = positive_duration(f)?;
    if !(Duration::from_millis(1)..=Duration::from_secs(10)).contains(&d) {
        return Err(f.fail(
            "outside 1ms to 10s",
            "use a budget like 50ms (a check waits this long for Redis)",
        ));
    }
    Ok(d)
}

pub(crate) fn csp(f: &Field<'_>) -> Parsed<Option<Csp>> {
    Csp::parse(f.value).map(Some).map_err(|e| {
        f.fail(
            &e.to_string(),
            "write directives as `name source source; name source`",
        )
    })
}

pub(crate) fn same_site(f: &Field<'_>) -> Parsed<SameSite> {
    f.via("not a SameSite value", "use lax, strict or none")
}

pub(crate) fn ratelimit_storage(f: &Field<'_>) -> Parsed<RateLimitStorage> {
    f.via("not a storage", "use memory or a redis:// URL")
}

pub(crate) fn global_limit(f: &Field<'_>) -> Parsed<Option<Limits>> {
    match f.lower().as_str() {
        "none" | "off" => Ok(None),
        _ => f.text().parse::<Limits>().map(Some).map_err(|e| {
            f.fail(
                &format!("the limit string does not parse {e}"),
                "write limits as `200 per day; 50 per hour` (units: second, minute, hour, day, month, year), or none",
            )
        }),
    }
}

pub(crate) fn static_prefix(f: &Field<'_>) -> Parsed<Option<String>> {
    let text = f.text();
    if text.eq_ignore_ascii_case("none") || text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    if !text.starts_with('/') || !text.ends_with('/') || text.len() < 3 || text.contains(['?', '#'])
    {
        return Err(f.fail(
            "not a path prefix",
            "write the directory static files are served from, with slashes at both ends (/static/), or none",
        ));
    }
    Ok(Some(text.to_owned()))
}

pub(crate) fn header_style(f: &Field<'_>) -> Parsed<HeaderStyle> {
    f.via("not a header style", "use ietf, legacy, both or none")
}

pub(crate) fn max_keys(f: &Field<'_>) -> Parsed<usize> {
    let n = f.num::<usize>("a whole number of keys, at least 1000")?;
    if n < 1000 {
        return Err(f.fail("below the 1000-key minimum", "use 1000 or more"));
    }
    Ok(n)
}

pub(crate) fn ipv6_prefix(f: &Field<'_>) -> Parsed<u8> {
    let n = f.num::<u8>("a prefix length from 1 to 128")?;
    if !(1..=128).contains(&n) {
        return Err(f.fail("not a prefix length", "use 1 to 128 (64 is typical)"));
    }
    Ok(n)
}

pub(crate) fn on_store_error(f: &Field<'_>) -> Parsed<OnStoreError> {
    f.via(
        "not a store-failure policy",
        "use fail-closed, fail-open or memory",
    )
}

pub(crate) fn instances(f: &Field<'_>) -> Parsed<u32> {
    let n = f.num::<u32>("a whole number of instances (at least 1)")?;
    if n == 0 {
        return Err(f.fail("zero instances", "use 1 or more"));
    }
    Ok(n)
}

pub(crate) fn bytes(f: &Field<'_>) -> Parsed<usize> {
    parse_bytes(f.value).ok_or_else(|| {
        f.fail(
            "not a size in bytes",
            "use a number of bytes or a size such as 512KiB or 1MiB",
        )
    })
}

pub(crate) fn header_bytes(f: &Field<'_>) -> Parsed<usize> {
    let n = bytes(f)?;
    if n < 8192 {
        return Err(f.fail(
            "below the 8KiB minimum the HTTP server needs",
            "use 8KiB or more",
        ));
    }
    Ok(n)
}

pub(crate) fn session_store(f: &Field<'_>) -> Parsed<SessionStoreKind> {
    f.via("not a session store", "use cookie, memory, sql or redis")
}

pub(crate) fn max_per_user(f: &Field<'_>) -> Parsed<usize> {
    let n = f.num::<usize>("a whole number of sessions (at least 1)")?;
    if n == 0 {
        return Err(f.fail("zero sessions per user", "use 1 or more (default 50)"));
    }
    Ok(n)
}

pub(crate) fn app_id(f: &Field<'_>) -> Parsed<Option<crate::secret::AppId>> {
    crate::secret::AppId::new(f.value)
        .map(Some)
        .map_err(|e| f.fail("not an application id", &e.to_string()))
}

pub(crate) fn trusted_origins(f: &Field<'_>) -> Parsed<Vec<TrustedOrigin>> {
    f.list()
        .into_iter()
        .map(|o| {
            o.parse().map_err(|e: crate::proxy::HostError| {
                f.fail(
                    &e.to_string(),
                    "list origins as scheme://host[:port] with no path, e.g. https://admin.example.org or https://*.example.org",
                )
            })
        })
        .collect()
}

pub(crate) fn database_url(f: &Field<'_>) -> Parsed<Option<ConnectionUrl>> {
    let l = f.lower();
    if !(l.starts_with("sqlite:") || l.starts_with("postgres://") || l.starts_with("postgresql://"))
    {
        return Err(f.fail(
            "not a database URL",
            "use sqlite:PATH or postgres://user@host/db",
        ));
    }
    Ok(Some(ConnectionUrl::new(f.text())))
}

pub(crate) fn redis_url(f: &Field<'_>) -> Parsed<Option<ConnectionUrl>> {
    let l = f.lower();
    if !(l.starts_with("redis://") || l.starts_with("rediss://")) {
        return Err(f.fail("not a Redis URL", "use redis://host:6379"));
    }
    Ok(Some(ConnectionUrl::new(f.text())))
}

pub(crate) fn smtp_url(f: &Field<'_>) -> Parsed<Option<ConnectionUrl>> {
    let l = f.lower();
    if !(l.starts_with("smtp://") || l.starts_with("smtps://")) {
        return Err(f.fail(
            "not an SMTP URL",
            "use smtps://user:password@host:465 or smtp://user:password@host:587?tls=required",
        ));
    }
    Ok(Some(ConnectionUrl::new(f.text())))
}

pub(crate) fn mail_from(f: &Field<'_>) -> Parsed<String> {
    let v = f.text();
    if !v.contains('@') || v.chars().any(char::is_control) {
        return Err(f.fail(
            "not a mail address",
            "use an address such as registry@example.org or `Registry <registry@example.org>`",
        ));
    }
    Ok(v.to_owned())
}

pub(crate) fn public_url(f: &Field<'_>) -> Parsed<Option<String>> {
    let v = f.text().trim_end_matches('/');
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| !r.is_empty() && !r.contains(['/', '?', '#', '@']));
    if !ok {
        return Err(f.fail(
            "not an origin",
            "use scheme://host[:port] with no path, e.g. https://donors.example.org",
        ));
    }
    Ok(Some(v.to_owned()))
}

pub(crate) fn count(f: &Field<'_>) -> Parsed<u32> {
    f.num::<u32>("a whole number")
}

pub(crate) fn positive_count(f: &Field<'_>) -> Parsed<u32> {
    let n = f.num::<u32>("a whole number, at least 1")?;
    if n == 0 {
        return Err(f.fail("zero", "use 1 or more"));
    }
    Ok(n)
}

pub(crate) fn metrics_token(f: &Field<'_>) -> Parsed<Option<crate::telemetry::MetricsToken>> {
    f.text()
        .parse()
        .map(Some)
        .map_err(|e: crate::telemetry::MetricsTokenError| {
            f.fail_redacted(&e.to_string(), "make one with `openssl rand -hex 32`")
        })
}

pub(crate) fn log_format(f: &Field<'_>) -> Parsed<crate::telemetry::LogFormat> {
    f.via("not a log format", "use text or json")
}

pub(crate) fn secret_key(f: &Field<'_>) -> Parsed<Option<SecretKey>> {
    Ok(Some(SecretKey::from_bytes(f.value.as_bytes().to_vec())))
}

pub(crate) fn secret_keys(f: &Field<'_>) -> Parsed<Vec<SecretKey>> {
    Ok(f.list()
        .into_iter()
        .map(|k| SecretKey::from_bytes(k.as_bytes().to_vec()))
        .collect())
}

/// Parses `1048576`, `1MiB`, `512 KiB`, `2MB`, `64k`.
fn parse_bytes(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        for (text, want) in [
            ("1048576", Some(1_048_576)),
            ("1MiB", Some(1_048_576)),
            ("512 KiB", Some(524_288)),
            ("64k", Some(65_536)),
            ("0", None),
            ("1 parsec", None),
        ] {
            assert_eq!(parse_bytes(text), want, "{text}");
        }
    }
}

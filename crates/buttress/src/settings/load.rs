//! Reading settings from their sources and parsing each value, with errors that name the
//! variable, what is wrong with the value and how to fix it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::{Environment, ProxyHeader, SameSite, SessionStoreKind, Settings, Tls};
use crate::secret::SecretKey;

/// Every setting: TOML key, what it takes, and its default. The environment variable is
/// `BUTTRESS_` + the key in upper case, except the `secret_key*` keys, which are read from
/// `SECRET_KEY`, `SECRET_KEY_FILE` and `SECRET_KEY_FALLBACKS`.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("env", "development | production", "development"),
    (
        "debug",
        "bool: error detail to loopback clients",
        "true in development, else false",
    ),
    (
        "bind",
        "socket address of the main listener",
        "127.0.0.1:8000",
    ),
    (
        "http_bind",
        "with TLS, a plain-HTTP listener that redirects to HTTPS",
        "none",
    ),
    ("tls_cert", "PEM certificate chain (with tls_key)", "none"),
    ("tls_key", "PEM private key (with tls_cert)", "none"),
    (
        "dev_tls",
        "bool: self-signed certificate for localhost (development)",
        "false",
    ),
    (
        "behind_proxy",
        "bool: a trusted proxy terminates TLS",
        "false",
    ),
    (
        "trusted_proxies",
        "comma-separated CIDRs or IPs whose forwarding headers are believed",
        "none",
    ),
    (
        "proxy_header",
        "x-forwarded | forwarded: the header family the proxies set",
        "x-forwarded",
    ),
    (
        "allowed_hosts",
        "comma-separated host names; other Host headers get 400",
        "any",
    ),
    (
        "canonical_host",
        "host name that HTTPS redirects go to",
        "the request's host",
    ),
    (
        "https_redirect",
        "bool: redirect plain HTTP to HTTPS",
        "true in production or with TLS",
    ),
    (
        "https_exempt_paths",
        "comma-separated paths also served over plain HTTP",
        "/healthz",
    ),
    (
        "https_port",
        "port in HTTPS redirects",
        "TLS listener's port, else 443",
    ),
    (
        "hsts_max_age",
        "duration (`1y`, `180d`, seconds); 0 disables HSTS",
        "1 year",
    ),
    ("hsts_include_subdomains", "bool", "true"),
    ("hsts_preload", "bool", "false"),
    (
        "csp",
        "a whole Content-Security-Policy replacing the default",
        "the nonce-based default",
    ),
    (
        "csp_report_only",
        "bool: send the policy as report-only",
        "false",
    ),
    (
        "csp_report_uri",
        "URL or path receiving violation reports",
        "none",
    ),
    ("cookie_secure", "bool", "true"),
    ("cookie_http_only", "bool", "true"),
    ("cookie_same_site", "lax | strict | none", "lax"),
    ("ratelimit_storage", "memory | redis://host:port", "memory"),
    (
        "ratelimit_default",
        "global limit string (`200 per day; 50 per hour`) or none",
        "200 per day; 50 per hour",
    ),
    ("ratelimit_headers", "ietf | legacy | both | none", "ietf"),
    (
        "ratelimit_max_keys",
        "clients tracked in memory at most",
        "100000",
    ),
    (
        "ratelimit_ipv6_prefix",
        "IPv6 prefix length keyed on (1-128)",
        "64",
    ),
    (
        "ratelimit_on_store_error",
        "fail-closed | fail-open | memory (global limit)",
        "memory",
    ),
    (
        "ratelimit_redis_budget",
        "duration a check waits for Redis (1ms to 10s)",
        "50ms",
    ),
    (
        "instances",
        "number of instances serving this site (divides the memory fallback's limits)",
        "1",
    ),
    ("body_limit", "bytes (`1MiB`, `512KiB`, `1048576`)", "1MiB"),
    ("max_header_bytes", "bytes, at least 8KiB", "16KiB"),
    ("header_read_timeout", "duration (`10s`)", "10s"),
    ("request_timeout", "duration (`30s`)", "30s"),
    (
        "data_dir",
        "directory for files Buttress makes",
        "./buttress-data",
    ),
    (
        "session_store",
        "cookie | memory | sql | redis: where sessions live",
        "cookie",
    ),
    (
        "session_idle_timeout",
        "duration a session may sit unused",
        "30m",
    ),
    (
        "session_absolute_timeout",
        "duration after which a session ends however active",
        "12h",
    ),
    (
        "csrf_trusted_origins",
        "comma-separated extra origins allowed to POST (https://admin.example.org)",
        "none",
    ),
    (
        "csrf_allow_same_site",
        "bool: accept Sec-Fetch-Site: same-site (sibling subdomains)",
        "false",
    ),
    (
        "database_url",
        "sqlite:PATH or postgres://… (DATABASE_URL)",
        "SQLite under data_dir",
    ),
    ("redis_url", "redis://host:port (REDIS_URL)", "none"),
    (
        "smtp_url",
        "smtps://user:pass@host:465 or smtp://host:587?tls=required: mail server",
        "none (development: .eml files in data_dir/outbox)",
    ),
    (
        "mail_from",
        "From address of mail sent",
        "registry@localhost",
    ),
    (
        "public_url",
        "https://host the site is reached at, for links in mail",
        "the request's origin (development)",
    ),
    (
        "reveal_quota",
        "phone numbers one account may reveal per day",
        "10",
    ),
    ("open_request_cap", "open blood requests per account", "3"),
    (
        "unverified_retention",
        "duration before an unverified account is erased",
        "7d",
    ),
    (
        "secret_key",
        "the master key (environment only: SECRET_KEY)",
        "none",
    ),
    (
        "secret_key_file",
        "file holding the master key (SECRET_KEY_FILE)",
        "none",
    ),
    (
        "secret_key_fallbacks",
        "comma-separated verify-only keys (SECRET_KEY_FALLBACKS)",
        "none",
    ),
];

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A TOML file.
    File(PathBuf),
    /// An environment variable.
    Env,
    /// A command-line flag, e.g. `--bind`.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "in {}", p.display()),
            Origin::Env => f.write_str("environment variable"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A setting that could not be read. The message names the variable, the problem and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value that does not parse or is not allowed.
    #[error("{name} ({origin}) = {value}: {problem}. Fix: {fix}")]
    Invalid {
        /// The variable or key name.
        name: String,
        /// Where the value came from.
        origin: Origin,
        /// The value, quoted (or `<redacted>` for secrets).
        value: String,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// A key or `BUTTRESS_*` variable that Buttress does not know.
    #[error("{name} ({origin}) is not a Buttress setting{suggestion}. Fix: remove it or correct its name (`buttress check --help` lists them)")]
    Unknown {
        /// The name as given.
        name: String,
        /// Where it came from.
        origin: Origin,
        /// `; did you mean X?` or empty.
        suggestion: String,
    },
    /// The TOML file could not be read or parsed.
    #[error("cannot read settings file {path}: {reason}. Fix: check the path given to --config and the TOML syntax")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        reason: String,
    },
}

/// Collects settings sources, then parses them into [`Settings`]. Later sources win.
///
/// ```
/// use buttress::settings::{Origin, Settings};
/// let s = Settings::loader()
///     .env_vars([("BUTTRESS_BIND", "127.0.0.1:9000")])
///     .set("bind", "127.0.0.1:9001", Origin::Flag("--bind"))
///     .load()?;
/// assert_eq!(s.bind.port(), 9001);
/// # Ok::<(), buttress::settings::SettingsError>(())
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct Loader {
    values: BTreeMap<&'static str, (String, Origin)>,
    error: Option<SettingsError>,
}

impl Loader {
    /// Reads a TOML file of `key = value` pairs (keys as in [`KEYS`]).
    pub fn file(mut self, path: &Path) -> Self {
        if self.error.is_some() {
            return self;
        }
        let origin = Origin::File(path.to_owned());
        let table = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                text.parse::<toml::Table>()
                    .map_err(|e| e.message().to_owned())
            });
        let table = match table {
            Ok(t) => t,
            Err(reason) => {
                self.error = Some(SettingsError::File {
                    path: path.to_owned(),
                    reason,
                });
                return self;
            }
        };
        for (key, value) in table {
            if key == "secret_key" || key == "secret_key_fallbacks" {
                self.error = Some(invalid(
                    &key,
                    &origin,
                    "<redacted>",
                    "secret keys do not belong in a settings file that may be committed",
                    "set SECRET_KEY in the environment or point secret_key_file at a file readable only by the service",
                ));
                return self;
            }
            let text = match toml_to_text(&value) {
                Some(t) => t,
                None => {
                    self.error = Some(invalid(
                        &key,
                        &origin,
                        &value.to_string(),
                        "tables and dates are not setting values",
                        "use a string, number, boolean or array of strings",
                    ));
                    return self;
                }
            };
            self = self.set(&key, &text, origin.clone());
        }
        self
    }

    /// Reads `BUTTRESS_*` variables and the `SECRET_KEY*` variables from the process.
    pub fn process_env(self) -> Self {
        self.env_vars(std::env::vars())
    }

    /// Reads `BUTTRESS_*` and `SECRET_KEY*` variables from the given pairs; others are ignored.
    pub fn env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (name, value) in vars {
            let name = name.as_ref();
            let key = match name {
                "SECRET_KEY"
                | "SECRET_KEY_FILE"
                | "SECRET_KEY_FALLBACKS"
                | "DATABASE_URL"
                | "REDIS_URL" => name.to_ascii_lowercase(),
                _ => match name.strip_prefix("BUTTRESS_") {
                    Some(rest) => rest.to_ascii_lowercase(),
                    None => continue,
                },
            };
            if key.starts_with("secret_key") && !name.starts_with("SECRET_KEY") {
                self.fail_unknown(name, Origin::Env);
                continue;
            }
            self = self.set_named(&key, name, value.as_ref(), Origin::Env);
        }
        self
    }

    /// Sets one value by TOML key, e.g. from a command-line flag.
    pub fn set(self, key: &str, value: &str, origin: Origin) -> Self {
        let name = match &origin {
            Origin::Env => env_name(key),
            _ => key.to_owned(),
        };
        self.set_named(key, &name, value, origin)
    }

    fn set_named(mut self, key: &str, name: &str, value: &str, origin: Origin) -> Self {
        if self.error.is_some() {
            return self;
        }
        match KEYS.iter().find(|(k, _, _)| *k == key) {
            Some((k, _, _)) => {
                if value.trim().is_empty() {
                    self.values.remove(k);
                } else {
                    self.values.insert(k, (value.to_owned(), origin));
                }
            }
            None => self.fail_unknown(name, origin),
        }
        self
    }

    fn fail_unknown(&mut self, name: &str, origin: Origin) {
        let wanted = name.trim_start_matches("BUTTRESS_").to_ascii_lowercase();
        let suggestion = KEYS
            .iter()
            .map(|(k, _, _)| (edit_distance(&wanted, k), *k))
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, k)| match origin {
                Origin::Env => format!("; did you mean {}?", env_name(k)),
                _ => format!("; did you mean {k}?"),
            })
            .unwrap_or_default();
        self.error.get_or_insert(SettingsError::Unknown {
            name: name.to_owned(),
            origin,
            suggestion,
        });
    }

    /// Parses the collected values into [`Settings`].
    pub fn load(self) -> Result<Settings, SettingsError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut s = Settings::default();
        let v = &self.values;
        let get = |k: &'static str| {
            v.get(k).map(|(val, origin)| Field {
                key: k,
                value: val,
                origin,
            })
        };

        if let Some(f) = get("env") {
            s.environment = f.parse_env()?;
        }
        s.debug = s.environment == Environment::Development;
        if let Some(f) = get("debug") {
            s.debug = f.parse_bool()?;
        }
        if let Some(f) = get("bind") {
            s.bind = f.parse_addr()?;
        }
        s.http_bind = get("http_bind").map(|f| f.parse_addr()).transpose()?;
        s.tls =
            match (get("tls_cert"), get("tls_key")) {
                (Some(c), Some(k)) => Tls::Files {
                    cert: PathBuf::from(c.value),
                    key: PathBuf::from(k.value),
                },
                (Some(f), None) | (None, Some(f)) => return Err(f.fail(
                    "a TLS certificate and key must be given together",
                    "set both BUTTRESS_TLS_CERT and BUTTRESS_TLS_KEY (or --tls-cert and --tls-key)",
                )),
                (None, None) => Tls::Off,
            };
        if let Some(f) = get("dev_tls") {
            if f.parse_bool()? {
                if s.tls != Tls::Off {
                    return Err(f.fail(
                        "dev_tls and a certificate file are both set",
                        "use either --dev-tls or --tls-cert/--tls-key",
                    ));
                }
                s.tls = Tls::DevSelfSigned;
            }
        }
        if let Some(f) = get("behind_proxy") {
            s.behind_proxy = f.parse_bool()?;
        }
        if let Some(f) = get("trusted_proxies") {
            s.trusted_proxies = f.parse_cidrs()?;
        }
        if let Some(f) = get("proxy_header") {
            s.proxy_header = match f.lower().as_str() {
                "x-forwarded" | "x-forwarded-for" => ProxyHeader::XForwarded,
                "forwarded" => ProxyHeader::Forwarded,
                _ => {
                    return Err(f.fail("not a proxy header family", "use x-forwarded or forwarded"))
                }
            };
        }
        if let Some(f) = get("allowed_hosts") {
            s.allowed_hosts = f.parse_hosts()?;
        }
        if let Some(f) = get("canonical_host") {
            s.canonical_host = f.parse_hosts()?.into_iter().next();
        }
        s.https_redirect = s.environment == Environment::Production || s.serves_tls();
        if let Some(f) = get("https_redirect") {
            s.https_redirect = f.parse_bool()?;
        }
        if let Some(f) = get("https_exempt_paths") {
            s.https_exempt_paths = f.list();
            if let Some(bad) = s.https_exempt_paths.iter().find(|p| !p.starts_with('/')) {
                return Err(f.fail(
                    &format!("path {bad:?} does not start with '/'"),
                    "list absolute paths such as /healthz",
                ));
            }
        }
        if let Some(f) = get("https_port") {
            s.https_port = Some(f.parse_num::<u16>("a port number (1-65535)")?).filter(|p| *p != 0);
        }
        if let Some(f) = get("hsts_max_age") {
            s.hsts_max_age = f.parse_duration()?;
        }
        if let Some(f) = get("hsts_include_subdomains") {
            s.hsts_include_subdomains = f.parse_bool()?;
        }
        if let Some(f) = get("hsts_preload") {
            s.hsts_preload = f.parse_bool()?;
        }
        if let Some(f) = get("csp") {
            let _policy = crate::headers::csp::Csp::parse(f.value).map_err(|e| {
                f.fail(
                    &e.to_string(),
                    "write directives as `name source source; name source`",
                )
            })?;
            s.csp = Some(f.value.to_owned());
        }
        if let Some(f) = get("csp_report_only") {
            s.csp_report_only = f.parse_bool()?;
        }
        s.csp_report_uri = get("csp_report_uri").map(|f| f.value.to_owned());
        if let Some(f) = get("cookie_secure") {
            s.cookie_secure = f.parse_bool()?;
        }
        if let Some(f) = get("cookie_http_only") {
            s.cookie_http_only = f.parse_bool()?;
        }
        if let Some(f) = get("cookie_same_site") {
            s.cookie_same_site = match f.lower().as_str() {
                "lax" => SameSite::Lax,
                "strict" => SameSite::Strict,
                "none" => SameSite::None,
                _ => return Err(f.fail("not a SameSite value", "use lax, strict or none")),
            };
        }
        if let Some(f) = get("ratelimit_storage") {
            let l = f.lower();
            if l != "memory" && !l.starts_with("redis://") && !l.starts_with("rediss://") {
                return Err(f.fail("not a storage", "use memory or a redis:// URL"));
            }
            s.ratelimit_storage = f.value.to_owned();
        }
        if let Some(f) = get("ratelimit_default") {
            s.ratelimit_default = match f.lower().as_str() {
                "none" | "off" => None,
                _ => Some(f.value.parse::<crate::ratelimit::Limits>().map_err(|e| {
                    f.fail(
                        &format!("the limit string does not parse {e}"),
                        "write limits as `200 per day; 50 per hour` (units: second, minute, hour, day, month, year), or none",
                    )
                })?),
            };
        }
        if let Some(f) = get("ratelimit_headers") {
            s.ratelimit_headers = f
                .value
                .parse()
                .map_err(|_| f.fail("not a header style", "use ietf, legacy, both or none"))?;
        }
        if let Some(f) = get("ratelimit_max_keys") {
            s.ratelimit_max_keys = f.parse_num::<usize>("a whole number of keys, at least 1000")?;
            if s.ratelimit_max_keys < 1000 {
                return Err(f.fail("below the 1000-key minimum", "use 1000 or more"));
            }
        }
        if let Some(f) = get("ratelimit_ipv6_prefix") {
            s.ratelimit_ipv6_prefix = f.parse_num::<u8>("a prefix length from 1 to 128")?;
            if !(1..=128).contains(&s.ratelimit_ipv6_prefix) {
                return Err(f.fail("not a prefix length", "use 1 to 128 (64 is typical)"));
            }
        }
        if let Some(f) = get("ratelimit_on_store_error") {
            s.ratelimit_on_store_error = f.value.parse().map_err(|_| {
                f.fail(
                    "not a store-failure policy",
                    "use fail-closed, fail-open or memory",
                )
            })?;
        }
        if let Some(f) = get("ratelimit_redis_budget") {
            s.ratelimit_redis_budget = f.parse_positive_duration()?;
            if !(Duration::from_millis(1)..=Duration::from_secs(10))
                .contains(&s.ratelimit_redis_budget)
            {
                return Err(f.fail(
                    "outside 1ms to 10s",
                    "use a budget like 50ms (a check waits this long for Redis)",
                ));
            }
        }
        if let Some(f) = get("instances") {
            s.instances = f.parse_num::<u32>("a whole number of instances (at least 1)")?;
            if s.instances == 0 {
                return Err(f.fail("zero instances", "use 1 or more"));
            }
        }
        if let Some(f) = get("body_limit") {
            s.body_limit = f.parse_bytes()?;
        }
        if let Some(f) = get("max_header_bytes") {
            s.max_header_bytes = f.parse_bytes()?;
            if s.max_header_bytes < 8192 {
                return Err(f.fail(
                    "below the 8KiB minimum the HTTP server needs",
                    "use 8KiB or more",
                ));
            }
        }
        if let Some(f) = get("header_read_timeout") {
            s.header_read_timeout = f.parse_positive_duration()?;
        }
        if let Some(f) = get("request_timeout") {
            s.request_timeout = f.parse_positive_duration()?;
        }
        if let Some(f) = get("data_dir") {
            s.data_dir = PathBuf::from(f.value);
        }
        if let Some(f) = get("session_store") {
            s.session_store = match f.lower().as_str() {
                "cookie" => SessionStoreKind::Cookie,
                "memory" => SessionStoreKind::Memory,
                "sql" => SessionStoreKind::Sql,
                "redis" => SessionStoreKind::Redis,
                _ => return Err(f.fail("not a session store", "use cookie, memory, sql or redis")),
            };
        }
        if let Some(f) = get("session_idle_timeout") {
            s.session_idle_timeout = f.parse_positive_duration()?;
        }
        if let Some(f) = get("session_absolute_timeout") {
            s.session_absolute_timeout = f.parse_positive_duration()?;
        }
        if s.session_absolute_timeout < s.session_idle_timeout {
            let f = get("session_absolute_timeout").or_else(|| get("session_idle_timeout"));
            if let Some(f) = f {
                return Err(f.fail(
                    "the absolute session timeout is shorter than the idle timeout",
                    "make BUTTRESS_SESSION_ABSOLUTE_TIMEOUT at least BUTTRESS_SESSION_IDLE_TIMEOUT",
                ));
            }
        }
        if let Some(f) = get("csrf_trusted_origins") {
            s.csrf_trusted_origins = f.list();
            if let Some(bad) = s.csrf_trusted_origins.iter().find(|o| !is_origin(o)) {
                return Err(f.fail(
                    &format!("{bad:?} is not an origin"),
                    "list origins as scheme://host[:port] with no path, e.g. https://admin.example.org",
                ));
            }
        }
        if let Some(f) = get("csrf_allow_same_site") {
            s.csrf_allow_same_site = f.parse_bool()?;
        }
        if let Some(f) = get("database_url") {
            let l = f.lower();
            if !(l.starts_with("sqlite:")
                || l.starts_with("postgres://")
                || l.starts_with("postgresql://"))
            {
                return Err(f.fail(
                    "not a database URL",
                    "use sqlite:PATH or postgres://user@host/db",
                ));
            }
            s.database_url = Some(f.value.to_owned());
        }
        if let Some(f) = get("redis_url") {
            let l = f.lower();
            if !(l.starts_with("redis://") || l.starts_with("rediss://")) {
                return Err(f.fail("not a Redis URL", "use redis://host:6379"));
            }
            s.redis_url = Some(f.value.to_owned());
        }
        if let Some(f) = get("smtp_url") {
            let l = f.lower();
            if !(l.starts_with("smtp://") || l.starts_with("smtps://")) {
                return Err(f.fail(
                    "not an SMTP URL",
                    "use smtps://user:password@host:465 or smtp://user:password@host:587?tls=required",
                ));
            }
            s.smtp_url = Some(super::SecretUrl::new(f.value.trim()));
        }
        if let Some(f) = get("mail_from") {
            let v = f.value.trim();
            if !v.contains('@') || v.chars().any(char::is_control) {
                return Err(f.fail(
                    "not a mail address",
                    "use an address such as registry@example.org or `Registry <registry@example.org>`",
                ));
            }
            s.mail_from = v.to_owned();
        }
        if let Some(f) = get("public_url") {
            let v = f.value.trim().trim_end_matches('/');
            if !is_origin(v) {
                return Err(f.fail(
                    "not an origin",
                    "use scheme://host[:port] with no path, e.g. https://donors.example.org",
                ));
            }
            s.public_url = Some(v.to_owned());
        }
        if let Some(f) = get("reveal_quota") {
            s.reveal_quota =
                f.parse_num::<u32>("a whole number of reveals per day (0 turns reveals off)")?;
        }
        if let Some(f) = get("open_request_cap") {
            s.open_request_cap =
                f.parse_num::<u32>("a whole number of open requests (at least 1)")?;
            if s.open_request_cap == 0 {
                return Err(f.fail("zero open requests", "use 1 or more"));
            }
        }
        if let Some(f) = get("unverified_retention") {
            s.unverified_retention = f.parse_positive_duration()?;
        }
        if s.session_store == SessionStoreKind::Redis && s.redis_url.is_none() {
            if let Some(f) = get("session_store") {
                return Err(f.fail(
                    "the Redis session store needs a Redis server",
                    "set REDIS_URL=redis://host:6379",
                ));
            }
        }

        match (get("secret_key"), get("secret_key_file")) {
            (Some(f), Some(_)) => {
                return Err(f.fail_redacted(
                    "SECRET_KEY and SECRET_KEY_FILE are both set",
                    "keep only one of them",
                ))
            }
            (Some(f), None) => {
                s.secret_key = Some(SecretKey::from_bytes(f.value.as_bytes().to_vec()))
            }
            (None, Some(f)) => {
                let path = PathBuf::from(f.value);
                let key =
                    SecretKey::from_file(&path).map_err(|e| f.fail(&e.to_string(), e.fix()))?;
                s.secret_key = Some(key);
                s.secret_key_file = Some(path);
            }
            (None, None) => {}
        }
        if let Some(f) = get("secret_key_fallbacks") {
            s.secret_key_fallbacks = f
                .list()
                .into_iter()
                .map(|k| SecretKey::from_bytes(k.into_bytes()))
                .collect();
        }
        Ok(s)
    }
}

/// The environment variable of a settings key: `bind` -> `BUTTRESS_BIND`,
/// `secret_key` -> `SECRET_KEY`, `database_url` -> `DATABASE_URL`.
///
/// ```
/// assert_eq!(buttress::settings::env_name("hsts_max_age"), "BUTTRESS_HSTS_MAX_AGE");
/// assert_eq!(buttress::settings::env_name("redis_url"), "REDIS_URL");
/// ```
pub fn env_name(key: &str) -> String {
    if key.starts_with("secret_key") || key == "database_url" || key == "redis_url" {
        key.to_ascii_uppercase()
    } else {
        format!("BUTTRESS_{}", key.to_ascii_uppercase())
    }
}

/// `value` with the user and password of a URL (`postgres://app:pw@db/x`,
/// `redis://:pw@cache`) replaced by `***`, so that an error about a database or Redis URL never
/// shows its password. Anything without `scheme://…@` comes back unchanged.
pub(crate) fn redact_userinfo(value: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = value.find("://").map(|i| i + 3) else {
        // Not a URL (a typo such as `redis//:pw@host`): whatever precedes an `@` may be a
        // password all the same.
        return match value.rfind('@') {
            Some(at) => format!("***{}", &value[at..]).into(),
            None => value.into(),
        };
    };
    let authority_end = value[start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| start + i);
    match value[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &value[..start], &value[start + at..]).into(),
        None => value.into(),
    }
}

fn invalid(name: &str, origin: &Origin, value: &str, problem: &str, fix: &str) -> SettingsError {
    SettingsError::Invalid {
        name: name.to_owned(),
        origin: origin.clone(),
        value: value.to_owned(),
        problem: problem.to_owned(),
        fix: fix.to_owned(),
    }
}

fn toml_to_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(toml_to_text)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}

struct Field<'a> {
    key: &'a str,
    value: &'a str,
    origin: &'a Origin,
}

impl Field<'_> {
    fn name(&self) -> String {
        match self.origin {
            Origin::Env => env_name(self.key),
            _ => self.key.to_owned(),
        }
    }

    fn fail(&self, problem: &str, fix: &str) -> SettingsError {
        let value = if self.key.starts_with("secret_key") && self.key != "secret_key_file" {
            "<redacted>".to_owned()
        } else {
            format!("{:?}", redact_userinfo(self.value))
        };
        invalid(&self.name(), self.origin, &value, problem, fix)
    }

    fn fail_redacted(&self, problem: &str, fix: &str) -> SettingsError {
        invalid(&self.name(), self.origin, "<redacted>", problem, fix)
    }

    fn lower(&self) -> String {
        self.value.trim().to_ascii_lowercase()
    }

    fn list(&self) -> Vec<String> {
        self.value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn parse_env(&self) -> Result<Environment, SettingsError> {
        match self.lower().as_str() {
            "development" | "dev" => Ok(Environment::Development),
            "production" | "prod" => Ok(Environment::Production),
            _ => Err(self.fail("not an environment", "use development or production")),
        }
    }

    fn parse_bool(&self) -> Result<bool, SettingsError> {
        match self.lower().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.fail("not a boolean", "use true or false")),
        }
    }

    fn parse_addr(&self) -> Result<SocketAddr, SettingsError> {
        let v = self.value.trim();
        if let Ok(a) = v.parse::<SocketAddr>() {
            return Ok(a);
        }
        if let Some(port) = v.strip_prefix("localhost:") {
            if let Ok(p) = port.parse::<u16>() {
                return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
            }
        }
        Err(self.fail(
            "not an IP address with a port",
            "use ADDRESS:PORT, e.g. 127.0.0.1:8000 or [::1]:8000",
        ))
    }

    fn parse_cidrs(&self) -> Result<Vec<IpNet>, SettingsError> {
        self.list()
            .iter()
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        self.fail(
                            &format!("{item:?} is not an IP address or CIDR range"),
                            "list ranges such as 10.0.0.0/8, 192.168.1.5 or fd00::/8, separated by commas",
                        )
                    })
            })
            .collect()
    }

    fn parse_hosts(&self) -> Result<Vec<String>, SettingsError> {
        let hosts = self.list();
        for h in &hosts {
            let (name, port) = h.split_once(':').unwrap_or((h, "0"));
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*')
                && port.parse::<u16>().is_ok();
            if !ok {
                return Err(self.fail(
                    &format!("{h:?} is not a host name"),
                    "list bare host names such as example.org or *.example.org (no scheme, no path)",
                ));
            }
        }
        Ok(hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect())
    }

    fn parse_num<T: std::str::FromStr>(&self, what: &str) -> Result<T, SettingsError> {
        self.value
            .trim()
            .parse::<T>()
            .map_err(|_| self.fail("not a number in range", &format!("use {what}")))
    }

    fn parse_duration(&self) -> Result<Duration, SettingsError> {
        let v = self.value.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Ok(Duration::from_secs(secs));
        }
        humantime::parse_duration(v).map_err(|e| {
            self.fail(
                &format!("not a duration ({e})"),
                "use seconds (`300`) or units (`30s`, `10m`, `1y`)",
            )
        })
    }

    fn parse_positive_duration(&self) -> Result<Duration, SettingsError> {
        let d = self.parse_duration()?;
        if d.is_zero() {
            return Err(self.fail(
                "a zero timeout would turn the limit off",
                "use a positive duration such as 30s",
            ));
        }
        Ok(d)
    }

    fn parse_bytes(&self) -> Result<usize, SettingsError> {
        parse_bytes(self.value).ok_or_else(|| {
            self.fail(
                "not a size in bytes",
                "use a number of bytes or a size such as 512KiB or 1MiB",
            )
        })
    }
}

/// `scheme://host[:port]` with no path.
fn is_origin(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.contains('/') && !r.contains('?') && !r.contains('#'))
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

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::loader().env_vars(vars.iter().copied()).load()
    }

    #[test]
    fn defaults_are_development_on_loopback() {
        let s = load(&[]).expect("defaults load");
        assert_eq!(s.environment, Environment::Development);
        assert!(s.bind.ip().is_loopback());
        assert!(s.debug);
        assert!(!s.https_redirect);
        assert!(s.secret_key.is_none());
    }

    #[test]
    fn production_turns_on_https_and_off_debug() {
        let s = load(&[("BUTTRESS_ENV", "production")]).expect("loads");
        assert!(s.https_redirect);
        assert!(!s.debug);
    }

    struct Case {
        vars: &'static [(&'static str, &'static str)],
        mentions: &'static [&'static str],
    }

    #[test]
    fn bad_values_name_variable_problem_and_fix() {
        let cases = [
            Case {
                vars: &[("BUTTRESS_BIND", "8000")],
                mentions: &["BUTTRESS_BIND", "\"8000\"", "ADDRESS:PORT"],
            },
            Case {
                vars: &[("BUTTRESS_ENV", "staging")],
                mentions: &["BUTTRESS_ENV", "development or production"],
            },
            Case {
                vars: &[("BUTTRESS_DEBUG", "maybe")],
                mentions: &["BUTTRESS_DEBUG", "true or false"],
            },
            Case {
                vars: &[("BUTTRESS_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")],
                mentions: &["proxy.local", "CIDR"],
            },
            Case {
                vars: &[("BUTTRESS_HSTS_MAX_AGE", "forever")],
                mentions: &["BUTTRESS_HSTS_MAX_AGE", "duration"],
            },
            Case {
                vars: &[("BUTTRESS_BODY_LIMIT", "1 lightyear")],
                mentions: &["BUTTRESS_BODY_LIMIT", "1MiB"],
            },
            Case {
                vars: &[("BUTTRESS_MAX_HEADER_BYTES", "100")],
                mentions: &["8KiB"],
            },
            Case {
                vars: &[("BUTTRESS_REQUEST_TIMEOUT", "0s")],
                mentions: &["positive"],
            },
            Case {
                vars: &[("BUTTRESS_TLS_CERT", "/c.pem")],
                mentions: &["BUTTRESS_TLS_KEY"],
            },
            Case {
                vars: &[("BUTTRESS_HSTS_MAXAGE", "1")],
                mentions: &["did you mean BUTTRESS_HSTS_MAX_AGE"],
            },
            Case {
                vars: &[("BUTTRESS_COOKIE_SAME_SITE", "sometimes")],
                mentions: &["lax, strict or none"],
            },
            Case {
                vars: &[("BUTTRESS_RATELIMIT_STORAGE", "memcached://x")],
                mentions: &["redis://"],
            },
            Case {
                vars: &[("BUTTRESS_CSP", "default-src 'self'; ;;; script-src \u{1}")],
                mentions: &["BUTTRESS_CSP"],
            },
            Case {
                vars: &[("BUTTRESS_ALLOWED_HOSTS", "https://example.org/")],
                mentions: &["host name"],
            },
        ];
        for case in cases {
            let err = load(case.vars).expect_err("must be refused").to_string();
            assert!(err.contains("Fix:"), "{err}");
            for m in case.mentions {
                assert!(err.contains(m), "{:?}: {err} should mention {m}", case.vars);
            }
        }
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let err = load(&[
            ("SECRET_KEY", "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E"),
            ("SECRET_KEY_FILE", "/k"),
        ])
        .expect_err("both set")
        .to_string();
        assert!(!err.contains("q3Jx9"), "{err}");
        assert!(err.contains("<redacted>"));
    }

    #[test]
    fn url_passwords_never_appear_in_errors() {
        for (var, value) in [
            ("DATABASE_URL", "mysql://app:hunter2pw@db.internal/x"),
            ("REDIS_URL", "http://:hunter2pw@cache.internal:6379"),
            ("BUTTRESS_RATELIMIT_STORAGE", "rediss//:hunter2pw@cache"),
            (
                "BUTTRESS_SMTP_URL",
                "smtpx://mailer:hunter2pw@mail.internal:465",
            ),
            (
                "BUTTRESS_RATELIMIT_STORAGE",
                "memcached://u:hunter2pw@cache/0",
            ),
        ] {
            let Err(err) = load(&[(var, value)]) else {
                continue; // accepted as it is: nothing to show
            };
            let err = err.to_string();
            assert!(!err.contains("hunter2pw"), "{var}: {err}");
        }
        assert_eq!(
            redact_userinfo("postgres://app:pw@db:5432/x?sslmode=require"),
            "postgres://***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redact_userinfo("redis://cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(redact_userinfo("rediss//:pw@cache"), "***@cache");
        assert_eq!(redact_userinfo("redis://h/p@x"), "redis://h/p@x");
    }

    #[test]
    fn smtp_url_password_never_printed() {
        let s = load(&[(
            "BUTTRESS_SMTP_URL",
            "smtps://mailer:hunter2pw@mail.example.org:465",
        )])
        .expect("loads");
        let url = s.smtp_url.as_ref().expect("set");
        assert_eq!(
            url.expose(),
            "smtps://mailer:hunter2pw@mail.example.org:465"
        );
        for shown in [format!("{s:?}"), format!("{url:?}"), url.to_string()] {
            assert!(!shown.contains("hunter2pw"), "{shown}");
        }
        assert!(url.to_string().contains("mail.example.org"));
        let err = load(&[("BUTTRESS_REVEAL_QUOTA", "lots")]).expect_err("refused");
        assert!(err.to_string().contains("BUTTRESS_REVEAL_QUOTA"), "{err}");
        let err = load(&[("BUTTRESS_PUBLIC_URL", "donors.example.org/x")]).expect_err("refused");
        assert!(err.to_string().contains("origin"), "{err}");
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = std::env::temp_dir().join(format!("btr-settings-{}.toml", std::process::id()));
        std::fs::write(
            &dir,
            "bind = \"127.0.0.1:7000\"\nhsts_max_age = \"180d\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
        )
        .expect("write");
        let s = Settings::loader()
            .file(&dir)
            .env_vars([("BUTTRESS_HSTS_MAX_AGE", "1y")])
            .load()
            .expect("loads");
        assert_eq!(s.bind.port(), 7000);
        assert_eq!(s.hsts_max_age, humantime::parse_duration("1y").expect("1y"));
        assert_eq!(s.trusted_proxies.len(), 2);
        std::fs::write(&dir, "secret_key = \"abc\"\n").expect("write");
        let err = Settings::loader()
            .file(&dir)
            .load()
            .expect_err("refused")
            .to_string();
        assert!(err.contains("SECRET_KEY") && !err.contains("abc"), "{err}");
        std::fs::write(&dir, "bnid = \"x\"\n").expect("write");
        let err = Settings::loader()
            .file(&dir)
            .load()
            .expect_err("refused")
            .to_string();
        assert!(err.contains("did you mean bind"), "{err}");
        std::fs::remove_file(&dir).ok();
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let s = load(&[("BUTTRESS_BIND", ""), ("SECRET_KEY", "")]).expect("loads");
        assert_eq!(s.bind.port(), 8000);
        assert!(s.secret_key.is_none());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("1MiB"), Some(1 << 20));
        assert_eq!(parse_bytes("512 KiB"), Some(512 << 10));
        assert_eq!(parse_bytes("64k"), Some(64 << 10));
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("99999999999999999999G"), None);
    }
}

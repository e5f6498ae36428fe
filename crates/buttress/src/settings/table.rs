//! The one table of settings: each row is a field of [`Settings`], its TOML key (the variable
//! is [`env_name`](super::env_name) of it), its doc line, its default (taken from the owning
//! concern's `DEFAULT_*` constant where it has one) and its parser. The struct, its `Default`,
//! [`KEYS`] (which `buttress check --help`, the error suggestions and the README test read)
//! and the loader's dispatch are all made from it, so a setting cannot be documented,
//! defaulted or parsed in two different ways.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::parse::{self, Field};
use super::{Environment, SettingsError};
use crate::csrf::TrustedOrigin;
use crate::headers::Csp;
use crate::proxy::{HostPattern, ProxyHeader};
use crate::ratelimit::{HeaderStyle, Limits, OnStoreError, RateLimitStorage};
use crate::secret::ConnectionUrl;
use crate::secret::SecretKey;
use crate::session::{SameSite, SessionStoreKind};

/// One setting, as [`KEYS`] lists it.
///
/// ```
/// let bind = buttress::settings::KEYS.iter().find(|k| k.key == "bind").unwrap();
/// assert_eq!(bind.default, "127.0.0.1:8000");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Key {
    /// The TOML key (`bind`); the variable is [`env_name`](super::env_name) of it.
    pub key: &'static str,
    /// What it sets and what it takes, in one line.
    pub doc: &'static str,
    /// The default, as a user would write it (or in words).
    pub default: &'static str,
}

macro_rules! settings {
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };
    ($(
        #[doc = $doc:literal]
        $field:ident $(@ $key:literal)? : $ty:ty = $default:expr, $shown:literal, $parse:path;
    )*) => {
        /// The effective settings. `Settings::default()` is the Development default; each field
        /// says its variable, and [`KEYS`] (and the README's table) lists them all.
        ///
        /// ```
        /// let s = buttress::settings::Settings::default();
        /// assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
        /// assert_eq!(s.body_limit, 1024 * 1024);
        /// ```
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub struct Settings {
            $(
                #[doc = concat!("`", settings!(@key $field $($key)?), "`:", $doc, " Default: ", $shown, ".")]
                pub $field: $ty,
            )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $field: $default, )* }
            }
        }

        /// Every setting, in the order of the README's table.
        pub const KEYS: &[Key] = &[
            $( Key { key: settings!(@key $field $($key)?), doc: $doc.trim_ascii(), default: $shown }, )*
        ];

        /// Parses `field` into its place in `s`.
        pub(super) fn set(s: &mut Settings, field: &Field<'_>) -> Result<(), SettingsError> {
            match field.key {
                $( settings!(@key $field $($key)?) => s.$field = $parse(field)?, )*
                _ => {}
            }
            Ok(())
        }
    };
}

settings! {
    /// development or production.
    environment @ "env": Environment = Environment::Development, "development", parse::environment;
    /// bool: show error detail (a panic's message) to loopback clients.
    debug: bool = true, "true in development, else false", parse::boolean;
    /// socket address of the main listener.
    bind: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8000)), "127.0.0.1:8000", parse::address;
    /// with TLS, a plain-HTTP listener that redirects to HTTPS.
    http_bind: Option<SocketAddr> = None, "none", parse::some_address;
    /// PEM certificate chain (with tls_key).
    tls_cert: Option<PathBuf> = None, "none", parse::some_path;
    /// PEM private key (with tls_cert).
    tls_key: Option<PathBuf> = None, "none", parse::some_path;
    /// bool: a self-signed certificate for localhost (development only).
    dev_tls: bool = false, "false", parse::boolean;
    /// bool: a trusted proxy terminates TLS and forwards the request.
    behind_proxy: bool = false, "false", parse::boolean;
    /// comma-separated CIDRs or IPs whose forwarding headers are believed.
    trusted_proxies: Vec<IpNet> = Vec::new(), "none", parse::cidrs;
    /// x-forwarded | forwarded: the header family the proxies set.
    proxy_header: ProxyHeader = ProxyHeader::XForwarded, "x-forwarded", parse::proxy_header;
    /// comma-separated host names (`example.org`, `*.example.org`, `[::1]:8000`); other hosts get 400.
    allowed_hosts: Vec<HostPattern> = Vec::new(), "any", parse::host_patterns;
    /// the host name (with an optional port) that HTTPS redirects go to.
    canonical_host: Option<String> = None, "the request's host", parse::canonical_host;
    /// bool: redirect plain HTTP to HTTPS.
    https_redirect: bool = false, "true in production or with TLS", parse::boolean;
    /// comma-separated paths also served over plain HTTP.
    https_exempt_paths: Vec<String> = vec![crate::https::DEFAULT_EXEMPT_PATH.to_owned()], "/healthz", parse::paths;
    /// port in HTTPS redirects.
    https_port: Option<u16> = None, "TLS listener's port, else 443", parse::port;
    /// duration (`1y`, `180d`, seconds); 0 disables HSTS.
    hsts_max_age: Duration = crate::headers::DEFAULT_HSTS_MAX_AGE, "1 year", parse::duration;
    /// bool: HSTS covers subdomains.
    hsts_include_subdomains: bool = true, "true", parse::boolean;
    /// bool: HSTS asks for preloading (hard to undo).
    hsts_preload: bool = false, "false", parse::boolean;
    /// a whole Content-Security-Policy replacing the default (checked at start-up).
    csp: Option<Csp> = None, "the nonce-based default", parse::csp;
    /// bool: send the policy as report-only.
    csp_report_only: bool = false, "false", parse::boolean;
    /// URL or path receiving violation reports.
    csp_report_uri: Option<String> = None, "none", parse::some_text;
    /// bool: cookies are `Secure` (dropped only on loopback in development).
    cookie_secure: bool = true, "true", parse::boolean;
    /// bool: cookies are `HttpOnly`.
    cookie_http_only: bool = true, "true", parse::boolean;
    /// lax | strict | none.
    cookie_same_site: SameSite = SameSite::Lax, "lax", parse::same_site;
    /// memory | redis://host:port: where rate limits count.
    ratelimit_storage: RateLimitStorage = RateLimitStorage::Memory, "memory", parse::ratelimit_storage;
    /// global limit string (`200 per day; 50 per hour`; `0 per minute` refuses every request) or none.
    ratelimit_default: Option<Limits> = Some(Limits::global_default()), "200 per day; 50 per hour", parse::global_limit;
    /// path prefix of static assets, not counted by the global limit (a route limit still counts), or none.
    ratelimit_static_prefix: Option<String> = Some(crate::ratelimit::DEFAULT_STATIC_PREFIX.to_owned()), "/static/", parse::static_prefix;
    /// ietf | legacy | both | none.
    ratelimit_headers: HeaderStyle = HeaderStyle::Ietf, "ietf", parse::header_style;
    /// clients tracked in memory at most (at least 1000).
    ratelimit_max_keys: usize = crate::ratelimit::DEFAULT_MAX_KEYS, "100000", parse::max_keys;
    /// IPv6 prefix length clients are keyed on (1-128).
    ratelimit_ipv6_prefix: u8 = crate::ratelimit::DEFAULT_IPV6_PREFIX, "64", parse::ipv6_prefix;
    /// fail-closed | fail-open | memory: the global limit when Redis fails.
    ratelimit_on_store_error: OnStoreError = OnStoreError::Memory, "memory", parse::on_store_error;
    /// duration a check waits for Redis (1ms to 10s).
    ratelimit_redis_budget: Duration = crate::ratelimit::DEFAULT_BUDGET, "50ms", parse::redis_budget;
    /// number of instances serving this site (divides the memory fallback's limits).
    instances: u32 = 1, "1", parse::instances;
    /// bytes (`1MiB`, `512KiB`, `1048576`): the largest request body.
    body_limit: usize = crate::stack::DEFAULT_BODY_LIMIT, "1MiB", parse::bytes;
    /// bytes, at least 8KiB: the largest request head.
    max_header_bytes: usize = super::DEFAULT_MAX_HEADER_BYTES, "16KiB", parse::header_bytes;
    /// duration (`10s`) to receive a request head.
    header_read_timeout: Duration = super::DEFAULT_HEADER_READ_TIMEOUT, "10s", parse::positive_duration;
    /// duration (`30s`) to answer a whole request.
    request_timeout: Duration = crate::stack::DEFAULT_REQUEST_TIMEOUT, "30s", parse::positive_duration;
    /// directory for files Buttress makes.
    data_dir: PathBuf = PathBuf::from("buttress-data"), "./buttress-data", parse::path;
    /// cookie | memory | sql | redis: where sessions live.
    session_store: SessionStoreKind = SessionStoreKind::Cookie, "cookie", parse::session_store;
    /// duration a session may sit unused.
    session_idle_timeout: Duration = crate::session::DEFAULT_IDLE, "30m", parse::positive_duration;
    /// duration after which a session ends however active.
    session_absolute_timeout: Duration = crate::session::DEFAULT_ABSOLUTE, "12h", parse::positive_duration;
    /// signed-in sessions one user may hold in a server-side store (the least recently active go first).
    session_max_per_user: usize = crate::session::DEFAULT_MAX_PER_USER, "50", parse::max_per_user;
    /// this application's name in a Redis or database shared with other deployments (letters, digits, `.`, `_`, `-`).
    app_id: Option<crate::secret::AppId> = None, "derived from each key", parse::app_id;
    /// comma-separated extra origins allowed to send unsafe requests (`https://admin.example.org`, `https://*.example.org`).
    csrf_trusted_origins: Vec<TrustedOrigin> = Vec::new(), "none", parse::trusted_origins;
    /// bool: accept `Sec-Fetch-Site: same-site` (sibling subdomains).
    csrf_allow_same_site: bool = false, "false", parse::boolean;
    /// socket address of the private `/metrics` listener for Prometheus (never the main one), or none.
    metrics_bind: Option<SocketAddr> = None, "none (off)", parse::some_address;
    /// bearer token `/metrics` asks for (16+ characters; needed off loopback).
    metrics_token: Option<crate::telemetry::MetricsToken> = None, "none", parse::metrics_token;
    /// text | json: the log lines of `buttress serve` and the portal.
    log_format: crate::telemetry::LogFormat = crate::telemetry::LogFormat::Text, "text", parse::log_format;
    /// bool: security events name the client's network (IPv4 /24, IPv6 /48), not its address.
    log_client_network: bool = false, "false", parse::boolean;
    /// sqlite:PATH or postgres://… (`DATABASE_URL`).
    database_url: Option<ConnectionUrl> = None, "SQLite under data_dir", parse::database_url;
    /// redis://host:port (`REDIS_URL`).
    redis_url: Option<ConnectionUrl> = None, "none", parse::redis_url;
    /// smtps://user:pass@host:465 or smtp://user:pass@host:587?tls=required: the mail server (its password never printed).
    smtp_url: Option<ConnectionUrl> = None, "none (development: .eml files in data_dir/outbox)", parse::smtp_url;
    /// the From address of mail sent (`Registry <registry@example.org>`).
    mail_from: String = "registry@localhost".to_owned(), "registry@localhost", parse::mail_from;
    /// https://host the site is reached at, for links in mail.
    public_url: Option<String> = None, "the request's origin (development)", parse::public_url;
    /// phone numbers one account may reveal per day (0 turns reveals off).
    reveal_quota: u32 = 10, "10", parse::count;
    /// open blood requests per account (at least 1).
    open_request_cap: u32 = 3, "3", parse::positive_count;
    /// duration before an account whose address is not confirmed is erased.
    unverified_retention: Duration = Duration::from_secs(7 * 86_400), "7d", parse::positive_duration;
    /// the master key (environment only: `SECRET_KEY`).
    secret_key: Option<SecretKey> = None, "none", parse::secret_key;
    /// file holding the master key (`SECRET_KEY_FILE`).
    secret_key_file: Option<PathBuf> = None, "none", parse::some_path;
    /// comma-separated verify-only keys, newest first (`SECRET_KEY_FALLBACKS`).
    secret_key_fallbacks: Vec<SecretKey> = Vec::new(), "none", parse::secret_keys;
}

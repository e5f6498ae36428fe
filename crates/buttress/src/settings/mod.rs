//! Typed settings from environment variables and an optional TOML file.
//!
//! Every setting has a TOML key (`bind`) and an environment variable (`BUTTRESS_BIND`); the
//! secret key uses the conventional `SECRET_KEY`, `SECRET_KEY_FILE` and `SECRET_KEY_FALLBACKS`.
//! Later sources win: built-in defaults, then the TOML file, then the environment, then
//! command-line flags. An unknown key or `BUTTRESS_*` variable is an error (with a
//! "did you mean" suggestion), never silently ignored; an empty variable counts as unset.
//!
//! # Example
//!
//! ```
//! use buttress::settings::{Environment, Settings};
//!
//! let settings = Settings::loader()
//!     .env_vars([("BUTTRESS_ENV", "production"), ("BUTTRESS_BEHIND_PROXY", "true")])
//!     .env_vars([("BUTTRESS_TRUSTED_PROXIES", "10.0.0.0/8")])
//!     .load()?;
//! assert_eq!(settings.environment, Environment::Production);
//! assert!(settings.https_redirect, "Production enforces HTTPS by default");
//!
//! let err = Settings::loader().env_vars([("BUTTRESS_HSTS_MAXAGE", "1")]).load().unwrap_err();
//! assert!(err.to_string().contains("BUTTRESS_HSTS_MAX_AGE"), "{err}");
//! # Ok::<(), buttress::settings::SettingsError>(())
//! ```
//!
//! The whole table of settings, with defaults, is in the README and in [`KEYS`].

mod load;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

pub use load::{env_name, Loader, Origin, SettingsError, KEYS};

use crate::secret::SecretKey;

/// Where the application runs. Development is the default so a fresh clone runs at once over
/// plain HTTP, but Development only ever listens on loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    /// Local work: loopback only, debug detail to loopback clients, an ephemeral key if none.
    #[default]
    Development,
    /// A deployment: a strong key and HTTPS are required, debug detail is never shown.
    Production,
}

impl Environment {
    /// `"development"` or `"production"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
}

/// How TLS is provided when Buttress serves it itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Tls {
    /// Plain HTTP (Development on loopback, or behind a TLS-terminating proxy).
    #[default]
    Off,
    /// A certificate chain and private key in PEM files.
    Files {
        /// PEM certificate chain.
        cert: PathBuf,
        /// PEM private key.
        key: PathBuf,
    },
    /// A self-signed certificate for `localhost`, generated at start-up (Development only).
    DevSelfSigned,
}

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

/// The `SameSite` attribute of cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites, not on their sub-requests or POSTs.
    #[default]
    Lax,
    /// Never sent from another site.
    Strict,
    /// Always sent (requires `Secure`); weakens CSRF defence.
    None,
}

/// Where sessions are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionStoreKind {
    /// Encrypted cookies: no server state, no revocation.
    #[default]
    Cookie,
    /// This process's memory: one instance only.
    Memory,
    /// The SQL database (`DATABASE_URL`).
    Sql,
    /// Redis (`REDIS_URL`).
    Redis,
}

/// A URL that may hold a password (`smtps://user:password@host`): `Debug` and `Display` show
/// it with the user information replaced by `***`; [`SecretUrl::expose`] gives the whole URL
/// to the one place that connects with it.
///
/// ```
/// let url = buttress::settings::SecretUrl::new("smtps://app:pw@mail.example.org:465");
/// assert_eq!(url.to_string(), "smtps://***@mail.example.org:465");
/// assert_eq!(format!("{url:?}"), "SecretUrl(\"smtps://***@mail.example.org:465\")");
/// assert_eq!(url.expose(), "smtps://app:pw@mail.example.org:465");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps `url`.
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL with its password: only for the connection itself, never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&load::redact_userinfo(&self.0))
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SecretUrl")
            .field(&load::redact_userinfo(&self.0))
            .finish()
    }
}

/// The effective settings. `Settings::default()` is the Development default; see the README's
/// settings table for each field's variable and default.
///
/// ```
/// let s = buttress::settings::Settings::default();
/// assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
/// assert_eq!(s.body_limit, 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// `BUTTRESS_ENV`: development (default) or production.
    pub environment: Environment,
    /// `BUTTRESS_DEBUG`: show error detail to loopback clients. Default: on in Development.
    pub debug: bool,
    /// `BUTTRESS_BIND`: the main listener. Default `127.0.0.1:8000`.
    pub bind: SocketAddr,
    /// `BUTTRESS_HTTP_BIND`: with TLS on, a plain-HTTP listener that redirects to HTTPS.
    pub http_bind: Option<SocketAddr>,
    /// `BUTTRESS_TLS_CERT` + `BUTTRESS_TLS_KEY`, or `BUTTRESS_DEV_TLS`.
    pub tls: Tls,
    /// `BUTTRESS_BEHIND_PROXY`: a trusted proxy terminates TLS and forwards the request.
    pub behind_proxy: bool,
    /// `BUTTRESS_TRUSTED_PROXIES`: CIDRs whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `BUTTRESS_PROXY_HEADER`: `x-forwarded` (default) or `forwarded`.
    pub proxy_header: ProxyHeader,
    /// `BUTTRESS_ALLOWED_HOSTS`: host names this site answers to; empty allows any.
    pub allowed_hosts: Vec<String>,
    /// `BUTTRESS_CANONICAL_HOST`: the host HTTPS redirects go to.
    pub canonical_host: Option<String>,
    /// `BUTTRESS_HTTPS_REDIRECT`: redirect plain HTTP to HTTPS. Default: on in Production and
    /// whenever TLS is served.
    pub https_redirect: bool,
    /// `BUTTRESS_HTTPS_EXEMPT_PATHS`: paths served over plain HTTP too. Default `/healthz`.
    pub https_exempt_paths: Vec<String>,
    /// `BUTTRESS_HTTPS_PORT`: the port HTTPS redirects point at. Default: the TLS listener's
    /// port when serving TLS, else 443.
    pub https_port: Option<u16>,
    /// `BUTTRESS_HSTS_MAX_AGE`: HSTS lifetime; `0` turns HSTS off. Default one year.
    pub hsts_max_age: Duration,
    /// `BUTTRESS_HSTS_INCLUDE_SUBDOMAINS`. Default on.
    pub hsts_include_subdomains: bool,
    /// `BUTTRESS_HSTS_PRELOAD`. Default off (preloading is hard to undo).
    pub hsts_preload: bool,
    /// `BUTTRESS_CSP`: a whole Content-Security-Policy replacing the default.
    pub csp: Option<String>,
    /// `BUTTRESS_CSP_REPORT_ONLY`: send the policy as report-only. Default off.
    pub csp_report_only: bool,
    /// `BUTTRESS_CSP_REPORT_URI`: where browsers report violations.
    pub csp_report_uri: Option<String>,
    /// `BUTTRESS_COOKIE_SECURE`. Default on (dropped only on loopback in Development).
    pub cookie_secure: bool,
    /// `BUTTRESS_COOKIE_HTTP_ONLY`. Default on.
    pub cookie_http_only: bool,
    /// `BUTTRESS_COOKIE_SAME_SITE`: lax (default), strict or none.
    pub cookie_same_site: SameSite,
    /// `BUTTRESS_RATELIMIT_STORAGE`: `memory` (default) or a `redis://` URL.
    pub ratelimit_storage: String,
    /// `BUTTRESS_RATELIMIT_DEFAULT`: the global limit per client; `None` turns it off.
    /// Default `200 per day; 50 per hour`.
    pub ratelimit_default: Option<crate::ratelimit::Limits>,
    /// `BUTTRESS_RATELIMIT_HEADERS`: ietf (default), legacy, both or none.
    pub ratelimit_headers: crate::ratelimit::HeaderStyle,
    /// `BUTTRESS_RATELIMIT_MAX_KEYS`: clients tracked in memory at most. Default 100,000.
    pub ratelimit_max_keys: usize,
    /// `BUTTRESS_RATELIMIT_IPV6_PREFIX`: IPv6 clients are keyed on this prefix. Default 64.
    pub ratelimit_ipv6_prefix: u8,
    /// `BUTTRESS_RATELIMIT_ON_STORE_ERROR`: what the global limit does when Redis fails:
    /// fail-closed, fail-open or memory (default).
    pub ratelimit_on_store_error: crate::ratelimit::OnStoreError,
    /// `BUTTRESS_RATELIMIT_REDIS_BUDGET`: how long a rate-limit check may wait for Redis
    /// before the failure policy answers. Default 50 ms.
    pub ratelimit_redis_budget: Duration,
    /// `BUTTRESS_INSTANCES`: how many instances serve this site (and share Redis). Default 1.
    /// With limits on Redis and the `memory` failure policy, each instance then counts its
    /// share of each limit while Redis fails.
    pub instances: u32,
    /// `BUTTRESS_BODY_LIMIT`: largest request body. Default 1 MiB.
    pub body_limit: usize,
    /// `BUTTRESS_MAX_HEADER_BYTES`: largest request head (line + headers). Default 16 KiB.
    pub max_header_bytes: usize,
    /// `BUTTRESS_HEADER_READ_TIMEOUT`: time to receive the request head. Default 10 s.
    pub header_read_timeout: Duration,
    /// `BUTTRESS_REQUEST_TIMEOUT`: time to answer a whole request. Default 30 s.
    pub request_timeout: Duration,
    /// `BUTTRESS_DATA_DIR`: where files Buttress makes are kept. Default `./buttress-data`.
    pub data_dir: PathBuf,
    /// `BUTTRESS_SESSION_STORE`: where sessions live. Default: encrypted cookies.
    pub session_store: SessionStoreKind,
    /// `BUTTRESS_SESSION_IDLE_TIMEOUT`. Default 30 minutes.
    pub session_idle_timeout: Duration,
    /// `BUTTRESS_SESSION_ABSOLUTE_TIMEOUT`. Default 12 hours.
    pub session_absolute_timeout: Duration,
    /// `BUTTRESS_CSRF_TRUSTED_ORIGINS`: other origins allowed to send unsafe requests.
    pub csrf_trusted_origins: Vec<String>,
    /// `BUTTRESS_CSRF_ALLOW_SAME_SITE`: accept `Sec-Fetch-Site: same-site`. Default off.
    pub csrf_allow_same_site: bool,
    /// `DATABASE_URL`: `sqlite:PATH` or `postgres://…`. Default: SQLite under `data_dir`.
    pub database_url: Option<String>,
    /// `REDIS_URL`: Redis for sessions (with `session_store = redis`) and rate limits.
    pub redis_url: Option<String>,
    /// `BUTTRESS_SMTP_URL`: the mail server (`smtps://…` or `smtp://…?tls=required`); its
    /// password is never printed. Default none: in Development mail is written to
    /// `data_dir/outbox`.
    pub smtp_url: Option<SecretUrl>,
    /// `BUTTRESS_MAIL_FROM`: the From address of mail sent. Default `registry@localhost`.
    pub mail_from: String,
    /// `BUTTRESS_PUBLIC_URL`: the origin links in mail point at. Default: the request's own
    /// origin (Development).
    pub public_url: Option<String>,
    /// `BUTTRESS_REVEAL_QUOTA`: phone numbers one account may reveal per day. Default 10.
    pub reveal_quota: u32,
    /// `BUTTRESS_OPEN_REQUEST_CAP`: open blood requests per account. Default 3.
    pub open_request_cap: u32,
    /// `BUTTRESS_UNVERIFIED_RETENTION`: how long an account whose address is not verified is
    /// kept. Default 7 days.
    pub unverified_retention: Duration,
    /// `SECRET_KEY` or the content of `SECRET_KEY_FILE`.
    pub secret_key: Option<SecretKey>,
    /// `SECRET_KEY_FILE`, when the key came from a file (for permission checks).
    pub secret_key_file: Option<PathBuf>,
    /// `SECRET_KEY_FALLBACKS`: comma-separated verify-only keys, newest first.
    pub secret_key_fallbacks: Vec<SecretKey>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            environment: Environment::Development,
            debug: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            http_bind: None,
            tls: Tls::Off,
            behind_proxy: false,
            trusted_proxies: Vec::new(),
            proxy_header: ProxyHeader::XForwarded,
            allowed_hosts: Vec::new(),
            canonical_host: None,
            https_redirect: false,
            https_exempt_paths: vec!["/healthz".to_owned()],
            https_port: None,
            hsts_max_age: Duration::from_secs(31_536_000),
            hsts_include_subdomains: true,
            hsts_preload: false,
            csp: None,
            csp_report_only: false,
            csp_report_uri: None,
            cookie_secure: true,
            cookie_http_only: true,
            cookie_same_site: SameSite::Lax,
            ratelimit_storage: "memory".to_owned(),
            ratelimit_default: Some(crate::ratelimit::Limits::global_default()),
            ratelimit_headers: crate::ratelimit::HeaderStyle::Ietf,
            ratelimit_max_keys: crate::ratelimit::DEFAULT_MAX_KEYS,
            ratelimit_ipv6_prefix: 64,
            ratelimit_on_store_error: crate::ratelimit::OnStoreError::Memory,
            ratelimit_redis_budget: crate::ratelimit::DEFAULT_BUDGET,
            instances: 1,
            body_limit: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            data_dir: PathBuf::from("buttress-data"),
            session_store: SessionStoreKind::Cookie,
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_absolute_timeout: Duration::from_secs(12 * 3600),
            csrf_trusted_origins: Vec::new(),
            csrf_allow_same_site: false,
            database_url: None,
            redis_url: None,
            smtp_url: None,
            mail_from: "registry@localhost".to_owned(),
            public_url: None,
            reveal_quota: 10,
            open_request_cap: 3,
            unverified_retention: Duration::from_secs(7 * 86_400),
            secret_key: None,
            secret_key_file: None,
            secret_key_fallbacks: Vec::new(),
        }
    }
}

impl Settings {
    /// Starts loading settings from files, the environment and flags.
    ///
    /// ```
    /// let s = buttress::settings::Settings::loader().load()?;
    /// assert!(!s.https_redirect);
    /// # Ok::<(), buttress::settings::SettingsError>(())
    /// ```
    pub fn loader() -> Loader {
        Loader::default()
    }

    /// Loads from the process environment and an optional TOML file.
    ///
    /// ```no_run
    /// let s = buttress::settings::Settings::from_env(Some("buttress.toml".as_ref()))?;
    /// # Ok::<(), buttress::settings::SettingsError>(())
    /// ```
    pub fn from_env(config: Option<&std::path::Path>) -> Result<Settings, SettingsError> {
        let mut loader = Settings::loader();
        if let Some(path) = config {
            loader = loader.file(path);
        }
        loader.process_env().load()
    }

    /// The CSP report path when `csp_report_uri` is a local path: exempt from CSRF checks,
    /// since browsers send reports without tokens.
    pub fn csrf_report_path(&self) -> Option<String> {
        self.csp_report_uri
            .as_deref()
            .filter(|u| u.starts_with('/'))
            .map(str::to_owned)
    }

    /// Whether this instance serves TLS itself.
    pub fn serves_tls(&self) -> bool {
        self.tls != Tls::Off
    }

    /// Whether requests reach the application over HTTPS (own TLS or a TLS-terminating proxy).
    pub fn https_available(&self) -> bool {
        self.serves_tls() || self.behind_proxy
    }

    /// Whether cookies may drop `Secure` and the `__Host-` prefix: only in Development, over
    /// plain HTTP, on a loopback listener.
    ///
    /// ```
    /// let s = buttress::settings::Settings::default();
    /// assert!(s.plain_http_loopback_dev());
    /// ```
    pub fn plain_http_loopback_dev(&self) -> bool {
        self.environment == Environment::Development
            && !self.https_available()
            && self.bind.ip().is_loopback()
    }
}

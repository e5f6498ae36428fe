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
mod parse;
mod table;

use std::path::PathBuf;
use std::time::Duration;

pub use load::{env_name, Loader, Origin, SettingsError};
pub use table::{Key, Settings, KEYS};

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

/// The largest request head by default (`max_header_bytes`): 16 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// The time to receive a request head by default (`header_read_timeout`): 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// How this instance serves TLS itself (`tls_cert` + `tls_key`, or `dev_tls`).
    ///
    /// ```
    /// use buttress::settings::{Settings, Tls};
    /// assert_eq!(Settings::default().tls(), Tls::Off);
    /// ```
    pub fn tls(&self) -> Tls {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Tls::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if self.dev_tls => Tls::DevSelfSigned,
            _ => Tls::Off,
        }
    }

    /// Whether this instance serves TLS itself.
    pub fn serves_tls(&self) -> bool {
        self.tls() != Tls::Off
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

//! [`StartupError`]: every reason Buttress refuses to start, each with its fix, and the checks
//! that run before anything is configured (loopback in Development, the key, the checklist).

use crate::check::{self, Finding, Severity};
use crate::secret::{KeyError, Keyring};
use crate::settings::{Environment, Settings};

/// Why Buttress refused to start. Each message says what to do.
///
/// ```
/// let settings = buttress::settings::Settings::loader()
///     .env_vars([("BUTTRESS_ENV", "production")])
///     .load()?;
/// let err = buttress::Buttress::from_settings(&settings).unwrap_err();
/// assert!(err.to_string().contains("Fix:"), "{err}");
/// assert_eq!(err.exit_code(), 3);
/// # Ok::<(), buttress::settings::SettingsError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// Development listens on loopback only.
    #[error("Development refuses to listen on {addr}, which is not a loopback address. Fix: bind to 127.0.0.1 for local work, or set BUTTRESS_ENV=production (or pass --production) to serve others")]
    NotLoopback {
        /// The address asked for.
        addr: std::net::SocketAddr,
    },
    /// Production without a usable key.
    #[error("Production needs a strong secret key: {error}. Fix: {}", error.fix())]
    Key {
        /// What is wrong with the key.
        error: KeyError,
    },
    /// Production with error-level checklist findings.
    #[error("Production refuses to start with {} unsafe setting(s):\n{}\nRun `buttress check` for the whole checklist.", findings.len(), findings.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Unsafe {
        /// The error-level findings.
        findings: Vec<Finding>,
    },
    /// A rate-limit setting that cannot be used (a Redis URL that does not parse, Redis in a
    /// build without it, a route limit that does not parse or repeats a path).
    #[error("rate limiting cannot start: {0}. Fix: correct BUTTRESS_RATELIMIT_STORAGE or the limit given in code")]
    RateLimit(#[from] crate::ratelimit::RateLimitError),
    /// The configured session store cannot be used, or none was given for
    /// `BUTTRESS_SESSION_STORE=sql`.
    #[error("the session store cannot be used: {reason}. Fix: {fix}")]
    SessionStore {
        /// What is wrong.
        reason: String,
        /// What to do.
        fix: &'static str,
    },
    /// The header policy was replaced while the settings configure it: the settings' CSP,
    /// report-only flag or HSTS would be lost.
    #[error("Buttress::with_headers replaces the header policy, which would throw away the CSP, report-only flag or HSTS the settings ask for. Fix: use Buttress::map_headers(|h| h.…) to edit the policy built from the settings, or unset those settings")]
    HeadersReplaced,
    /// The metrics listener is not on loopback and has no token: anyone could read it.
    #[error("the metrics listener BUTTRESS_METRICS_BIND={addr} is not on loopback and has no token. Fix: set BUTTRESS_METRICS_TOKEN (make one with `openssl rand -hex 32`; Prometheus sends it as a bearer token), or bind BUTTRESS_METRICS_BIND to 127.0.0.1")]
    MetricsToken {
        /// The metrics listener's address.
        addr: std::net::SocketAddr,
    },
}

impl StartupError {
    /// The process exit code for this refusal: always 3 ("configuration refused").
    pub fn exit_code(&self) -> u8 {
        3
    }

    pub(crate) fn session_store(reason: impl Into<String>, fix: &'static str) -> StartupError {
        StartupError::SessionStore {
            reason: reason.into(),
            fix,
        }
    }
}

/// The checks before anything is configured: Development on loopback only; in Production a
/// strong key and no error-level finding. Gives the keyring (an ephemeral one, with a warning,
/// in Development without a key) and the checklist's findings.
pub(crate) fn admit(settings: &Settings) -> Result<(Keyring, Vec<Finding>), StartupError> {
    let prod = settings.environment == Environment::Production;
    if let (Some(addr), None) = (settings.metrics_bind, &settings.metrics_token) {
        if !addr.ip().is_loopback() {
            return Err(StartupError::MetricsToken { addr });
        }
    }
    if !prod {
        let listeners = std::iter::once(settings.bind)
            .chain(settings.http_bind)
            .chain(settings.metrics_bind);
        if let Some(addr) = listeners.into_iter().find(|a| !a.ip().is_loopback()) {
            return Err(StartupError::NotLoopback { addr });
        }
    }
    let keyring = match (&settings.secret_key, prod) {
        (Some(key), true) => {
            key.check_strength()
                .map_err(|error| StartupError::Key { error })?;
            Keyring::new(key.clone(), settings.secret_key_fallbacks.clone())
        }
        (None, true) => {
            return Err(StartupError::Key {
                error: KeyError::Missing,
            })
        }
        (Some(key), false) => {
            if let Err(e) = key.check_strength() {
                tracing::warn!("the secret key is weak ({e}); Production would refuse it");
            }
            Keyring::new(key.clone(), settings.secret_key_fallbacks.clone())
        }
        (None, false) => {
            tracing::warn!("no SECRET_KEY set: using an ephemeral key for this run only; sessions and signed values will not survive a restart (run `buttress keygen`)");
            Keyring::ephemeral()
        }
    };
    let findings = check::run(settings);
    if prod {
        let errors: Vec<Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .cloned()
            .collect();
        if !errors.is_empty() {
            return Err(StartupError::Unsafe { findings: errors });
        }
    }
    Ok((keyring, findings))
}

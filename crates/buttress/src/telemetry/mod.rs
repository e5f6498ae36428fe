//! Security telemetry: how many requests each protection refused and why, as Prometheus
//! metrics on a private listener, and one structured event per refusal.
//!
//! The [`Stack`](crate::stack::Stack) counts each refusal **once**, on its way out, from a
//! small tag the refusing step leaves behind; the per-concern `*Layer`s used on their own are
//! not counted (only the fused stack is). With the cargo feature `metrics` off (the default
//! for the library), [`Telemetry`] counts nothing and the counting compiles to nothing; the
//! events are plain [`tracing`] events and are there either way.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `buttress_requests_total` | `status_class` (`1xx`…`5xx`) | responses sent |
//! | `buttress_request_duration_seconds` | `route` (the matched pattern, e.g. `/donors/{id}`; `unmatched`) | histogram, 1 ms to 10 s |
//! | `buttress_refusals_total` | `layer`, `reason` (table below) | requests a protection refused |
//! | `buttress_login_attempts_total` | `outcome` (`success`, `failure`, `throttled`) | sign-ins ([`Telemetry::login_attempt`]) |
//! | `buttress_csp_reports_total` | `directive` (a CSP directive name, else `other`) | violation reports |
//! | `buttress_store_errors_total` | `store` (`ratelimit`, `session`) | failures of a shared store |
//! | `buttress_store_degraded` | `store` | gauge: 1 while a store's failure policy is in force |
//!
//! | layer | reasons |
//! |---|---|
//! | `proxy` | `host` (missing, malformed or not allowed), `header` (a trusted proxy's malformed header), `no-peer` |
//! | `https` | `redirect` |
//! | `ratelimit` | `global`, or the path of a route's limit (`/login`) |
//! | `body` | `too-large` (413) |
//! | `timeout` | `deadline` (408) |
//! | `csrf` | `cross-site`, `same-site`, `origin-mismatch`, `no-origin`, `missing-token`, `bad-token` |
//! | `session` | `store-unavailable` (503) |
//! | `headers` | `too-large` (431), `read-timeout` (counted by `buttress::server`) |
//!
//! Every label value comes from a fixed list or from the application's own code (route
//! patterns, limited paths): never from the request, so a flood of odd paths cannot grow the
//! series. The durations are measured from the router's call to its response (or its drop);
//! a request refused before routing is timed from its arrival and labelled `unmatched`.
//!
//! # Example
//!
//! ```
//! use buttress::telemetry::{LoginOutcome, Telemetry};
//!
//! let telemetry = Telemetry::new();
//! telemetry.login_attempt(LoginOutcome::Throttled);
//! # #[cfg(feature = "metrics")]
//! assert!(telemetry.render().contains(r#"buttress_login_attempts_total{outcome="throttled"} 1"#));
//! ```
//!
//! # Deployment caveat
//!
//! `/metrics` is served only on `BUTTRESS_METRICS_BIND`, never on the application's listener.
//! Bind it to loopback, or set `BUTTRESS_METRICS_TOKEN` (sent by Prometheus as a bearer
//! token): a non-loopback bind without one refuses to start.

mod event;
#[cfg(feature = "metrics")]
mod metrics;
mod pipeline;
#[cfg(feature = "metrics")]
mod route;
mod token;

#[cfg(test)]
mod tests;

#[cfg(feature = "metrics")]
use std::sync::Arc;

pub(crate) use event::client_field;
pub(crate) use pipeline::{Pipeline, Refusal, Seen};
pub use token::{MetricsToken, MetricsTokenError, MIN_TOKEN_CHARS};

/// The form of the log lines `buttress serve` and the portal write (`BUTTRESS_LOG_FORMAT`).
///
/// ```
/// use buttress::telemetry::LogFormat;
/// assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
/// assert_eq!(LogFormat::default(), LogFormat::Text);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for a log pipeline).
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// A log format that is neither `text` nor `json`.
///
/// ```
/// assert!("yaml".parse::<buttress::telemetry::LogFormat>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a log format (use text or json)")]
pub struct UnknownLogFormat;

impl std::str::FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat),
        }
    }
}

/// How a sign-in attempt ended, for `buttress_login_attempts_total`.
///
/// ```
/// assert_eq!(buttress::telemetry::LoginOutcome::Throttled.as_str(), "throttled");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// The password was right.
    Success,
    /// A wrong password or an unknown account (the same: no user enumeration).
    Failure,
    /// Refused by the login throttle before the password was checked.
    Throttled,
}

impl LoginOutcome {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [LoginOutcome; 3] = [
        LoginOutcome::Success,
        LoginOutcome::Failure,
        LoginOutcome::Throttled,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::Failure => "failure",
            LoginOutcome::Throttled => "throttled",
        }
    }
}

/// A shared store, for `buttress_store_errors_total` and `buttress_store_degraded`.
///
/// ```
/// assert_eq!(buttress::telemetry::StoreKind::RateLimit.as_str(), "ratelimit");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// The rate limits' store (Redis).
    RateLimit,
    /// The session store (Redis, SQL).
    Session,
}

impl StoreKind {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [StoreKind; 2] = [StoreKind::RateLimit, StoreKind::Session];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::RateLimit => "ratelimit",
            StoreKind::Session => "session",
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn index(self) -> usize {
        self as usize
    }
}

/// The directive names `buttress_csp_reports_total` keeps (CSP Level 3); any other is `other`.
pub const CSP_DIRECTIVES: &[&str] = &[
    "default-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "style-src",
    "style-src-elem",
    "style-src-attr",
    "img-src",
    "font-src",
    "connect-src",
    "media-src",
    "object-src",
    "frame-src",
    "child-src",
    "worker-src",
    "manifest-src",
    "base-uri",
    "form-action",
    "frame-ancestors",
    "require-trusted-types-for",
    "trusted-types",
];

/// The bounded label of a reported directive: one of [`CSP_DIRECTIVES`], else `other`.
///
/// ```
/// use buttress::telemetry::csp_directive_label;
/// assert_eq!(csp_directive_label("script-src-elem"), "script-src-elem");
/// assert_eq!(csp_directive_label("script-src 'self'"), "script-src"); // CSP 2 `violated-directive`
/// assert_eq!(csp_directive_label("x\u{1b}[31m"), "other");
/// ```
pub fn csp_directive_label(reported: &str) -> &'static str {
    let name = reported.split_ascii_whitespace().next().unwrap_or("");
    CSP_DIRECTIVES
        .iter()
        .find(|d| d.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or("other")
}

/// The handle every part counts with: a Prometheus registry of its own (feature `metrics`),
/// and how events name the client. Cheap to clone (one `Arc`); [`Telemetry::off`] (the
/// default) counts nothing.
///
/// [`Buttress`](crate::Buttress) makes one that counts when `BUTTRESS_METRICS_BIND` is set
/// (or when given one with [`Buttress::with_telemetry`](crate::Buttress::with_telemetry));
/// [`Buttress::telemetry`](crate::Buttress::telemetry) hands it to the server, the metrics
/// listener (`buttress::server::MetricsServer`, features `metrics` and `server`) and a login form.
///
/// ```
/// use buttress::telemetry::{StoreKind, Telemetry};
/// let t = Telemetry::new().client_network(true);
/// t.store_error(StoreKind::RateLimit);
/// assert_eq!(t.counts(), cfg!(feature = "metrics"));
/// assert!(!Telemetry::off().counts());
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Telemetry {
    #[cfg(feature = "metrics")]
    metrics: Option<Arc<metrics::Metrics>>,
    /// Events name the client's network (IPv4 /24, IPv6 /48), not its address.
    network_only: bool,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("counts", &self.counts())
            .field("network_only", &self.network_only)
            .finish()
    }
}

impl Telemetry {
    /// A telemetry that counts, with a registry of its own (with the `metrics` feature; without
    /// it, the same as [`Telemetry::off`]).
    pub fn new() -> Telemetry {
        Telemetry {
            #[cfg(feature = "metrics")]
            metrics: Some(Arc::new(metrics::Metrics::new())),
            network_only: false,
        }
    }

    /// A telemetry that counts nothing (events are still logged).
    pub fn off() -> Telemetry {
        Telemetry::default()
    }

    /// Whether events name only the client's network (IPv4 /24, IPv6 /48) instead of its
    /// address (`BUTTRESS_LOG_CLIENT_NETWORK`).
    pub fn client_network(mut self, network_only: bool) -> Telemetry {
        self.network_only = network_only;
        self
    }

    /// Whether this telemetry counts (the `metrics` feature is on and it was made by
    /// [`Telemetry::new`]).
    pub fn counts(&self) -> bool {
        #[cfg(feature = "metrics")]
        return self.metrics.is_some();
        #[cfg(not(feature = "metrics"))]
        false
    }

    /// Records how a sign-in attempt ended, and logs a `login` event. Call it once per
    /// attempt from the sign-in handler (the portal does).
    ///
    /// ```
    /// use buttress::telemetry::{LoginOutcome, Telemetry};
    /// Telemetry::new().login_attempt(LoginOutcome::Failure);
    /// ```
    pub fn login_attempt(&self, outcome: LoginOutcome) {
        event::login(outcome);
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.logins[outcome as usize].inc();
        }
    }

    /// Counts a CSP violation report of `directive` (the report's `effective-directive` or
    /// `violated-directive`), as one of [`CSP_DIRECTIVES`] or `other`.
    ///
    /// ```
    /// buttress::telemetry::Telemetry::new().csp_report("img-src");
    /// ```
    pub fn csp_report(&self, directive: &str) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            let label = csp_directive_label(directive);
            let i = CSP_DIRECTIVES
                .iter()
                .position(|d| *d == label)
                .unwrap_or(CSP_DIRECTIVES.len());
            m.csp[i].inc();
        }
        #[cfg(not(feature = "metrics"))]
        let _ = directive;
    }

    /// Counts a failure of `store`.
    ///
    /// ```
    /// buttress::telemetry::Telemetry::new().store_error(buttress::telemetry::StoreKind::Session);
    /// ```
    pub fn store_error(&self, store: StoreKind) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.store_errors[store.index()].inc();
        }
        #[cfg(not(feature = "metrics"))]
        let _ = store;
    }

    /// Sets `buttress_store_degraded{store}`: 1 while its failure policy is in force.
    ///
    /// ```
    /// use buttress::telemetry::{StoreKind, Telemetry};
    /// Telemetry::new().store_degraded(StoreKind::RateLimit, true);
    /// ```
    pub fn store_degraded(&self, store: StoreKind, degraded: bool) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.degraded[store.index()].set(i64::from(degraded));
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (store, degraded);
    }

    /// Every metric in the Prometheus text exposition format (what `/metrics` serves).
    ///
    /// ```
    /// let text = buttress::telemetry::Telemetry::new().render();
    /// assert!(text.contains("# TYPE buttress_refusals counter"));
    /// assert!(text.ends_with("# EOF\n"));
    /// ```
    #[cfg(feature = "metrics")]
    pub fn render(&self) -> String {
        match &self.metrics {
            Some(m) => m.render(),
            None => "# EOF\n".to_owned(),
        }
    }

    /// Counts a refusal the server itself answers (431, a head that never came).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn refused_by_server(&self, refusal: Refusal, client: Option<std::net::IpAddr>) {
        event::refusal(&event::Refused {
            layer: refusal.layer(),
            reason: refusal.reason(),
            status: refusal.status(),
            request_id: None,
            client: client.map(|c| client_field(c, self.network_only)),
            method: None,
            route: "unmatched",
        });
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            if let Some(i) = refusal.fixed_index() {
                m.fixed[i].inc();
            }
        }
    }

    pub(crate) fn network_only(&self) -> bool {
        self.network_only
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn metrics(&self) -> Option<&Arc<metrics::Metrics>> {
        self.metrics.as_ref()
    }
}

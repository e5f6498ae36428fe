//! The deploy checklist: settings in, findings out, like Django's `check --deploy`.
//!
//! Every finding has a stable id; `E` ids are errors (Production refuses to start on them, and
//! `buttress check` exits non-zero), `W` ids are warnings, `I` ids are notes. [`CATALOGUE`]
//! lists them all, with what each means; the README's table is checked against it.
//!
//! # Example
//!
//! ```
//! use buttress::check::{run, Severity};
//! use buttress::settings::Settings;
//!
//! let findings = run(&Settings::default());
//! assert!(findings.iter().any(|f| f.id == "BTR-E002" && f.severity == Severity::Error));
//! ```

mod rules;

use std::fmt;

use serde::Serialize;

use crate::settings::Settings;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Weakens the deployment.
    Warning,
    /// Unsafe: Production refuses to start.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`.
    ///
    /// ```
    /// assert_eq!(buttress::check::Severity::Warning.as_str(), "warning");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One checklist result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, e.g. `BTR-E002`.
    pub id: &'static str,
    /// Severity.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} Fix: {}",
            self.id, self.severity, self.message, self.fix
        )
    }
}

/// One id of the checklist: its severity and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Stable id, e.g. `BTR-E002`.
    pub id: &'static str,
    /// Severity of every finding with this id.
    pub severity: Severity,
    /// What it means, in one line.
    pub summary: &'static str,
}

const fn entry(id: &'static str, severity: Severity, summary: &'static str) -> Entry {
    Entry {
        id,
        severity,
        summary,
    }
}

/// Every id `buttress check` can report, with its severity: the one list (the README's table
/// is tested against it).
///
/// ```
/// let e = buttress::check::CATALOGUE.iter().find(|e| e.id == "BTR-E002").unwrap();
/// assert_eq!(e.severity, buttress::check::Severity::Error);
/// ```
pub const CATALOGUE: &[Entry] = &[
    entry("BTR-E001", Severity::Error, "debug detail on in Production"),
    entry("BTR-E002", Severity::Error, "no secret key"),
    entry("BTR-E003", Severity::Error, "the secret key is weak (short, low entropy or published)"),
    entry("BTR-E004", Severity::Error, "a fallback key is weak"),
    entry("BTR-E005", Severity::Error, "no HTTPS: neither own TLS nor a TLS-terminating proxy"),
    entry("BTR-E006", Severity::Error, "HTTPS redirect off"),
    entry("BTR-E007", Severity::Error, "HSTS off or shorter than six months"),
    entry("BTR-E008", Severity::Error, "cookies without `Secure` or `HttpOnly`"),
    entry("BTR-E009", Severity::Error, "CSP allows inline or eval'd script, or any source (`*`, `https:`)"),
    entry("BTR-E010", Severity::Error, "behind a proxy with no trusted proxies listed"),
    entry("BTR-E011", Severity::Error, "in-memory rate-limit storage with more than one instance"),
    entry("BTR-E012", Severity::Error, "every address trusted as a proxy (`0.0.0.0/0`, `::/0`)"),
    entry("BTR-E013", Severity::Error, "Development environment bound to a non-loopback address"),
    entry("BTR-E014", Severity::Error, "CSP turned off"),
    entry("BTR-E015", Severity::Error, "in-memory session store with more than one instance"),
    entry("BTR-E016", Severity::Error, "the self-signed development certificate in Production"),
    entry("BTR-E017", Severity::Error, "the metrics listener is off loopback without a token"),
    entry("BTR-W001", Severity::Warning, "Development environment (not for deployment)"),
    entry("BTR-W002", Severity::Warning, "`allowed_hosts` empty: any `Host` is answered"),
    entry("BTR-W003", Severity::Warning, "HSTS shorter than one year"),
    entry("BTR-W004", Severity::Warning, "`SameSite=None` cookies"),
    entry("BTR-W005", Severity::Warning, "CSP in report-only mode"),
    entry("BTR-W006", Severity::Warning, "secret key file readable by other users"),
    entry("BTR-W007", Severity::Warning, "body limit above 64 MiB or timeouts above 5 minutes"),
    entry("BTR-W008", Severity::Warning, "CSP misses `object-src`, `base-uri` or `frame-ancestors` restrictions"),
    entry("BTR-W009", Severity::Warning, "Production without a global rate limit, or with one that fails open when Redis is down"),
    entry("BTR-W010", Severity::Warning, "several instances on Redis with the `memory` fallback and a limit smaller than the number of instances (their shares cannot keep it)"),
    entry("BTR-W011", Severity::Warning, "several instances with cookie sessions and no `REDIS_URL`: a sign-out is remembered by the instance that saw it only"),
    entry("BTR-I001", Severity::Info, "HSTS preload off"),
];

/// A finding of catalogue id `id` (its severity from the [`CATALOGUE`]).
fn finding(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    let severity = CATALOGUE
        .iter()
        .find(|e| e.id == id)
        .map_or(Severity::Error, |e| e.severity);
    debug_assert!(
        CATALOGUE.iter().any(|e| e.id == id),
        "{id} is not catalogued"
    );
    Finding {
        id,
        severity,
        message: message.into(),
        fix: fix.into(),
    }
}

/// Runs every check on `s`, most severe first.
pub fn run(s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    rules::environment(s, &mut out);
    rules::keys(s, &mut out);
    rules::https(s, &mut out);
    rules::cookies(s, &mut out);
    rules::csp(s, &mut out);
    rules::proxies(s, &mut out);
    rules::limits(s, &mut out);
    rules::request_limits(s, &mut out);
    rules::metrics(s, &mut out);
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(b.id)));
    out
}

/// Whether any finding is an error.
///
/// ```
/// use buttress::check::{has_errors, run};
/// assert!(has_errors(&run(&buttress::settings::Settings::default())));
/// ```
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

#[cfg(test)]
mod tests;

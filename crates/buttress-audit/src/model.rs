//! What a report is made of: layers, verdicts, the catalogue of checks and their findings.

use serde::{Deserialize, Serialize};

/// The layer of DESIGN.md §2 a check looks at from the outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// HTTPS, certificates, redirects.
    Transport,
    /// Security response headers.
    Headers,
    /// Cookie flags, prefixes and lifetimes.
    Cookies,
    /// Cross-site request forgery defences.
    Csrf,
    /// Cross-origin resource sharing.
    Cors,
    /// Debug pages, stack traces, directory listings.
    Leaks,
    /// Rate limiting.
    RateLimit,
}

impl Layer {
    /// Every layer, in the order of the request's way through the stack.
    pub const ALL: [Layer; 7] = [
        Layer::Transport,
        Layer::Headers,
        Layer::Cookies,
        Layer::Csrf,
        Layer::Cors,
        Layer::Leaks,
        Layer::RateLimit,
    ];

    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Transport => "Transport",
            Layer::Headers => "Headers",
            Layer::Cookies => "Cookies",
            Layer::Csrf => "CSRF",
            Layer::Cors => "CORS",
            Layer::Leaks => "Leaks",
            Layer::RateLimit => "Rate limit",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Looked, and found it right.
    Pass,
    /// Not tested, or not applicable (no cookies, no forms, no probe asked for).
    Info,
    /// Weaker than it should be.
    Warn,
    /// A weakness an attacker can use.
    Fail,
}

impl Verdict {
    /// `pass`, `info`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Info => "info",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the catalogue: what a check is and how it weighs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Check {
    /// Stable id, e.g. `AUD-CSP-001`.
    pub id: &'static str,
    /// The layer it looks at.
    pub layer: Layer,
    /// What passing means, in a few words.
    pub title: &'static str,
    /// The Observatory (MDN v2) test whose modifier this check carries, if any. `None` means
    /// the check is ours alone.
    pub observatory: Option<&'static str>,
    /// Points taken on a fail (ours alone); Observatory checks use the Observatory's modifier.
    pub fail_weight: i32,
    /// Points taken on a warn (ours alone).
    pub warn_weight: i32,
}

macro_rules! checks {
    ($( $id:literal, $layer:ident, $obs:expr, $fail:literal, $warn:literal, $title:literal; )*) => {
        /// Every check the scanner runs, in report order. The ids are stable.
        pub const CHECKS: &[Check] = &[
            $( Check { id: $id, layer: Layer::$layer, title: $title, observatory: $obs, fail_weight: $fail, warn_weight: $warn }, )*
        ];
    };
}

checks! {
    "AUD-NET-001", Transport, None, 0, 0, "Site answers within the request and time budget";
    "AUD-TLS-001", Transport, None, 0, 0, "HTTPS with a certificate that verifies";
    "AUD-RED-001", Transport, Some("redirection"), 0, 0, "Plain HTTP redirects to HTTPS on the same host first";
    "AUD-RED-002", Transport, None, 0, 0, "Redirect chain is short, loop-free and stays on the host";
    "AUD-CSP-001", Headers, Some("content-security-policy"), 0, 0, "Content-Security-Policy is enforced and strict";
    "AUD-CSP-002", Headers, None, 0, 0, "Scripts: no 'unsafe-inline' (without a nonce or hash)";
    "AUD-CSP-003", Headers, None, 0, 0, "Scripts: no 'unsafe-eval'";
    "AUD-CSP-004", Headers, None, 0, 0, "Scripts: no wildcard or scheme-wide sources";
    "AUD-CSP-005", Headers, None, 0, 0, "Scripts: no data: sources";
    "AUD-CSP-006", Headers, None, -5, 0, "object-src is 'none' (directly or via default-src)";
    "AUD-CSP-007", Headers, None, -5, 0, "base-uri is restricted";
    "AUD-CSP-008", Headers, None, 0, 0, "frame-ancestors is set";
    "AUD-CSP-009", Headers, None, -5, 0, "form-action is restricted";
    "AUD-CSP-010", Headers, None, 0, 0, "Scripts are allowed by nonce or hash";
    "AUD-CSP-011", Headers, None, 0, 0, "The policy is enforced, not only report-only";
    "AUD-HSTS-001", Headers, Some("strict-transport-security"), 0, 0, "Strict-Transport-Security for at least six months";
    "AUD-HSTS-002", Headers, None, 0, 0, "HSTS covers subdomains (preload-ready)";
    "AUD-XFO-001", Headers, Some("x-frame-options"), 0, 0, "Framing restricted by X-Frame-Options or frame-ancestors";
    "AUD-XCTO-001", Headers, Some("x-content-type-options"), 0, 0, "X-Content-Type-Options: nosniff";
    "AUD-REF-001", Headers, Some("referrer-policy"), 0, 0, "Referrer-Policy keeps URLs private";
    "AUD-PP-001", Headers, None, 0, -5, "Permissions-Policy is set";
    "AUD-COOP-001", Headers, None, 0, -5, "Cross-Origin-Opener-Policy isolates the window";
    "AUD-CORP-001", Headers, Some("cross-origin-resource-policy"), 0, 0, "Cross-Origin-Resource-Policy is set";
    "AUD-SRI-001", Headers, Some("subresource-integrity"), 0, 0, "Foreign scripts carry Subresource Integrity";
    "AUD-BAN-001", Headers, None, -5, 0, "No version banner in Server or X-Powered-By";
    "AUD-COOK-001", Cookies, Some("cookies"), 0, 0, "Cookies are Secure, HttpOnly (sessions) and SameSite";
    "AUD-COOK-002", Cookies, None, 0, 0, "Session-like cookies are HttpOnly";
    "AUD-COOK-003", Cookies, None, 0, 0, "Cookies declare SameSite";
    "AUD-COOK-004", Cookies, None, -5, 0, "Session-like cookies use the __Host- or __Secure- prefix correctly";
    "AUD-COOK-005", Cookies, None, 0, 0, "Session-like cookies do not live for months";
    "AUD-CSRF-001", Csrf, None, 0, -5, "Forms that change state carry a token field";
    "AUD-CSRF-002", Csrf, None, -30, 0, "A tokenless cross-site POST is refused (--active)";
    "AUD-CORS-001", Cors, Some("cross-origin-resource-sharing"), 0, 0, "An arbitrary Origin is not reflected with credentials";
    "AUD-LEAK-001", Leaks, None, -20, 0, "The 404 page shows no debug page or stack trace";
    "AUD-LEAK-002", Leaks, None, -20, 0, "Malformed parameters show no stack trace or SQL error";
    "AUD-LEAK-003", Leaks, None, -10, 0, "No directory listings";
    "AUD-RATE-001", RateLimit, None, -10, 0, "A burst is answered with 429 and Retry-After (--probe-rate-limit)";
}

/// The catalogue entry for `id`.
///
/// ```
/// let c = buttress_audit::check("AUD-CORS-001").unwrap();
/// assert_eq!(c.observatory, Some("cross-origin-resource-sharing"));
/// ```
pub fn check(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

/// The result of one check on one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable check id (see [`CHECKS`]).
    pub id: &'static str,
    /// The layer.
    pub layer: Layer,
    /// What passing means.
    pub title: &'static str,
    /// pass, info, warn or fail.
    pub verdict: Verdict,
    /// What was seen: a header, a cookie, a snippet of a page.
    pub evidence: String,
    /// How to fix it (empty on a pass).
    pub fix: String,
    /// Points this finding adds to or takes from 100.
    pub modifier: i32,
    /// `observatory` for a check shared with Mozilla HTTP Observatory (same modifier), `ours`
    /// for a check of this scanner alone.
    pub source: &'static str,
    /// For checks shared with the Observatory: its result name, e.g. `hsts-not-implemented`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observatory: Option<String>,
}

/// Grades on the Observatory's chart; `rank("A+") > rank("A")`. Unknown letters rank lowest.
///
/// ```
/// use buttress_audit::grade_rank as rank;
/// assert!(rank("A+") > rank("A-") && rank("B") > rank("F"));
/// ```
pub fn grade_rank(grade: &str) -> u8 {
    const ORDER: [&str; 13] = [
        "F", "D-", "D", "D+", "C-", "C", "C+", "B-", "B", "B+", "A-", "A", "A+",
    ];
    ORDER
        .iter()
        .position(|g| g.eq_ignore_ascii_case(grade.trim()))
        .map_or(0, |p| p as u8)
}

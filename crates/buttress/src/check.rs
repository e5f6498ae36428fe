//! The deploy checklist: settings in, findings out, like Django's `check --deploy`.
//!
//! Every finding has a stable id; `E` ids are errors (Production refuses to start on them, and
//! `buttress check` exits non-zero), `W` ids are warnings, `I` ids are notes.
//!
//! | id | severity | finding |
//! |---|---|---|
//! | `BTR-E001` | error | debug detail on in Production |
//! | `BTR-E002` | error | no secret key |
//! | `BTR-E003` | error | the secret key is weak (short, low entropy or published) |
//! | `BTR-E004` | error | a fallback key is weak |
//! | `BTR-E005` | error | no HTTPS: neither own TLS nor a TLS-terminating proxy |
//! | `BTR-E006` | error | HTTPS redirect off |
//! | `BTR-E007` | error | HSTS off or shorter than six months |
//! | `BTR-E008` | error | cookies without `Secure` or `HttpOnly` |
//! | `BTR-E009` | error | CSP allows inline or eval'd script, or any source (`*`, `https:`) |
//! | `BTR-E010` | error | behind a proxy with no trusted proxies listed |
//! | `BTR-E011` | error | in-memory rate-limit storage with more than one instance |
//! | `BTR-E012` | error | every address trusted as a proxy (`0.0.0.0/0`, `::/0`) |
//! | `BTR-E013` | error | Development environment bound to a non-loopback address |
//! | `BTR-E014` | error | CSP turned off |
//! | `BTR-E015` | error | in-memory session store with more than one instance |
//! | `BTR-E016` | error | the self-signed development certificate in Production |
//! | `BTR-W001` | warning | Development environment (not for deployment) |
//! | `BTR-W002` | warning | `allowed_hosts` empty: any `Host` is answered |
//! | `BTR-W003` | warning | HSTS shorter than one year |
//! | `BTR-W004` | warning | `SameSite=None` cookies |
//! | `BTR-W005` | warning | CSP in report-only mode |
//! | `BTR-W006` | warning | secret key file readable by other users |
//! | `BTR-W007` | warning | body limit above 64 MiB or timeouts above 5 minutes |
//! | `BTR-W008` | warning | CSP misses `object-src`, `base-uri` or `frame-ancestors` restrictions |
//! | `BTR-W009` | warning | Production without a global rate limit, or with one that fails open when Redis is down |
//! | `BTR-W010` | warning | several instances on Redis with the `memory` fallback and a limit smaller than the number of instances (their shares cannot keep it) |
//! | `BTR-W011` | warning | several instances with cookie sessions and no `REDIS_URL`: a sign-out is remembered by the instance that saw it only |
//! | `BTR-I001` | info | HSTS preload off |
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

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::headers::csp::{Csp, Directive, Source};
use crate::secret::{KeyError, SecretKey};
use crate::settings::{Environment, SameSite, Settings};

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

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
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

fn finding(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    let severity = match id.as_bytes().get(4) {
        Some(b'E') => Severity::Error,
        Some(b'W') => Severity::Warning,
        _ => Severity::Info,
    };
    Finding {
        id,
        severity,
        message: message.into(),
        fix: fix.into(),
    }
}

const SIX_MONTHS: Duration = Duration::from_secs(15_768_000);
const ONE_YEAR: Duration = Duration::from_secs(31_536_000);

/// Runs every check on `s`, most severe first.
pub fn run(s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let prod = s.environment == Environment::Production;

    if prod && s.debug {
        out.push(finding(
            "BTR-E001",
            "debug detail is on in Production",
            "unset BUTTRESS_DEBUG (or set it to false)",
        ));
    }
    if !prod {
        out.push(finding(
            "BTR-W001",
            "the environment is Development: loopback only, ephemeral key if none, debug detail to loopback clients",
            "set BUTTRESS_ENV=production (or pass --production) for a deployment",
        ));
        if !s.bind.ip().is_loopback() {
            out.push(finding(
                "BTR-E013",
                format!("Development refuses to listen on {}, which is not a loopback address", s.bind),
                "bind to 127.0.0.1 or [::1] for local work, or set BUTTRESS_ENV=production (or --production) to serve others",
            ));
        }
    }
    match &s.secret_key {
        None => out.push(finding(
            "BTR-E002",
            "no secret key is set",
            KeyError::Missing.fix(),
        )),
        Some(k) => {
            if let Err(e) = k.check_strength() {
                out.push(finding("BTR-E003", e.to_string(), e.fix()));
            }
        }
    }
    for (i, k) in s.secret_key_fallbacks.iter().enumerate() {
        if let Err(e) = SecretKey::check_strength(k) {
            out.push(finding(
                "BTR-E004",
                format!("fallback key #{} in SECRET_KEY_FALLBACKS: {e}", i + 1),
                "remove it; fallback keys must be former strong primary keys",
            ));
        }
    }
    check_key_file(s, &mut out);
    if prod && s.tls == crate::settings::Tls::DevSelfSigned {
        out.push(finding(
            "BTR-E016",
            "Production serves the self-signed development certificate: browsers warn on every visit, and users who learn to click through warnings will click through an attacker's too",
            "set BUTTRESS_TLS_CERT and BUTTRESS_TLS_KEY to a real certificate (or terminate TLS at a proxy with BUTTRESS_BEHIND_PROXY=true), and unset BUTTRESS_DEV_TLS",
        ));
    }
    if !s.https_available() {
        out.push(finding(
            "BTR-E005",
            "HTTPS is not configured: no TLS certificate and no TLS-terminating proxy",
            "set BUTTRESS_TLS_CERT and BUTTRESS_TLS_KEY, or BUTTRESS_BEHIND_PROXY=true with BUTTRESS_TRUSTED_PROXIES",
        ));
    }
    if !s.https_redirect {
        out.push(finding(
            "BTR-E006",
            "plain-HTTP requests are not redirected to HTTPS",
            "set BUTTRESS_HTTPS_REDIRECT=true",
        ));
    }
    if s.hsts_max_age < SIX_MONTHS {
        out.push(finding(
            "BTR-E007",
            format!(
                "HSTS max-age is {} seconds (off or under six months)",
                s.hsts_max_age.as_secs()
            ),
            "set BUTTRESS_HSTS_MAX_AGE=1y",
        ));
    } else if s.hsts_max_age < ONE_YEAR {
        out.push(finding(
            "BTR-W003",
            "HSTS max-age is under one year",
            "set BUTTRESS_HSTS_MAX_AGE=1y",
        ));
    }
    if !s.hsts_preload {
        out.push(finding(
            "BTR-I001",
            "HSTS preload is off: first visits can still be downgraded",
            "once every subdomain serves HTTPS, set BUTTRESS_HSTS_PRELOAD=true and submit the domain to hstspreload.org",
        ));
    }
    if !s.cookie_secure || !s.cookie_http_only {
        let which = match (s.cookie_secure, s.cookie_http_only) {
            (false, false) => "Secure and HttpOnly are",
            (false, true) => "Secure is",
            _ => "HttpOnly is",
        };
        out.push(finding(
            "BTR-E008",
            format!("cookie flag {which} off: cookies can leak over HTTP or to scripts"),
            "set BUTTRESS_COOKIE_SECURE=true and BUTTRESS_COOKIE_HTTP_ONLY=true",
        ));
    }
    if s.cookie_same_site == SameSite::None {
        out.push(finding(
            "BTR-W004",
            "cookies are SameSite=None: sent on cross-site requests",
            "set BUTTRESS_COOKIE_SAME_SITE=lax",
        ));
    }
    check_csp(s, &mut out);
    if s.behind_proxy && s.trusted_proxies.is_empty() {
        out.push(finding(
            "BTR-E010",
            "BUTTRESS_BEHIND_PROXY is set but no proxy is trusted: forwarded headers are ignored, every client appears as the proxy and HTTPS cannot be detected",
            "list the proxy addresses in BUTTRESS_TRUSTED_PROXIES (e.g. 10.0.0.0/8)",
        ));
    }
    // `::ffff:0:0/96` is every IPv4 address once mapped ranges are read as IPv4.
    if s.trusted_proxies
        .iter()
        .any(|n| crate::proxy::canonical_net(*n).prefix_len() == 0)
    {
        out.push(finding(
            "BTR-E012",
            "every address is trusted as a proxy: any client can spoof its IP and scheme",
            "list only your proxies' addresses in BUTTRESS_TRUSTED_PROXIES",
        ));
    }
    if s.instances > 1 && s.ratelimit_storage.eq_ignore_ascii_case("memory") {
        out.push(finding(
            "BTR-E011",
            format!("{} instances declared but rate limits are kept in memory: each instance counts alone, so limits are multiplied", s.instances),
            "set BUTTRESS_RATELIMIT_STORAGE=redis://HOST:6379",
        ));
    }
    if s.instances > 1 && s.session_store == crate::settings::SessionStoreKind::Memory {
        out.push(finding(
            "BTR-E015",
            format!("{} instances declared but sessions are kept in memory: a user signed in on one instance is unknown to the others, and revocation misses them", s.instances),
            "set BUTTRESS_SESSION_STORE=sql or redis (or cookie)",
        ));
    }
    if s.instances > 1
        && s.session_store == crate::settings::SessionStoreKind::Cookie
        && s.redis_url.is_none()
    {
        out.push(finding(
            "BTR-W011",
            format!("{} instances declared with cookie sessions and no REDIS_URL: a logout or \"sign out everywhere\" is remembered only by the instance that saw it, so a copied cookie still works on the others", s.instances),
            "set REDIS_URL so that sign-outs are shared (or use BUTTRESS_SESSION_STORE=sql or redis)",
        ));
    }
    let fails_open = s.ratelimit_on_store_error == crate::ratelimit::OnStoreError::FailOpen
        && !s.ratelimit_storage.eq_ignore_ascii_case("memory");
    if prod && (s.ratelimit_default.is_none() || fails_open) {
        out.push(finding(
            "BTR-W009",
            "the global rate limit is off, or switches off whenever Redis is unavailable (fail-open)",
            "keep BUTTRESS_RATELIMIT_DEFAULT set and use BUTTRESS_RATELIMIT_ON_STORE_ERROR=memory (or fail-closed)",
        ));
    }
    if s.instances > 1
        && s.ratelimit_on_store_error == crate::ratelimit::OnStoreError::Memory
        && !s.ratelimit_storage.eq_ignore_ascii_case("memory")
    {
        let n = u64::from(s.instances);
        if let Some(small) = s
            .ratelimit_default
            .as_ref()
            .and_then(|l| l.iter().find(|l| l.amount() < n))
        {
            out.push(finding(
                "BTR-W010",
                format!("the global limit {small} is smaller than the {n} instances: while Redis fails each instance counts at least 1 of it in memory, so together they admit up to {n}"),
                "raise the limit to at least the number of instances, or use BUTTRESS_RATELIMIT_ON_STORE_ERROR=fail-closed",
            ));
        }
    }
    if prod && s.allowed_hosts.is_empty() {
        out.push(finding(
            "BTR-W002",
            "BUTTRESS_ALLOWED_HOSTS is empty: requests for any Host are answered",
            "set BUTTRESS_ALLOWED_HOSTS to the site's host names",
        ));
    }
    if s.body_limit > 64 * 1024 * 1024
        || s.request_timeout > Duration::from_secs(300)
        || s.header_read_timeout > Duration::from_secs(300)
    {
        out.push(finding(
            "BTR-W007",
            "request limits are very loose (body over 64 MiB or a timeout over 5 minutes): slow or large requests can tie up the server",
            "lower BUTTRESS_BODY_LIMIT, BUTTRESS_REQUEST_TIMEOUT and BUTTRESS_HEADER_READ_TIMEOUT",
        ));
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(b.id)));
    out
}

#[cfg(unix)]
fn check_key_file(s: &Settings, out: &mut Vec<Finding>) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(path) = &s.secret_key_file {
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                out.push(finding(
                    "BTR-W006",
                    format!(
                        "the secret key file {} is readable by other users",
                        path.display()
                    ),
                    format!("chmod 600 {}", path.display()),
                ));
            }
        }
    }
}

#[cfg(not(unix))]
fn check_key_file(_: &Settings, _: &mut Vec<Finding>) {}

fn check_csp(s: &Settings, out: &mut Vec<Finding>) {
    let Some(text) = &s.csp else {
        // The built-in default is strict; only report-only mode weakens it.
        if s.csp_report_only {
            out.push(finding(
                "BTR-W005",
                "the CSP is report-only: nothing is blocked",
                "unset BUTTRESS_CSP_REPORT_ONLY once no violations are reported",
            ));
        }
        return;
    };
    let csp = match Csp::parse(text) {
        Ok(c) => c,
        Err(e) => {
            out.push(finding(
                "BTR-E009",
                format!("the CSP does not parse: {e}"),
                "fix BUTTRESS_CSP",
            ));
            return;
        }
    };
    if csp.directives().next().is_none() {
        out.push(finding(
            "BTR-E014",
            "the CSP is empty",
            "unset BUTTRESS_CSP to use the strict default",
        ));
        return;
    }
    if s.csp_report_only {
        out.push(finding(
            "BTR-W005",
            "the CSP is report-only: nothing is blocked",
            "unset BUTTRESS_CSP_REPORT_ONLY once no violations are reported",
        ));
    }
    let script = csp
        .get(Directive::ScriptSrc)
        .or_else(|| csp.get(Directive::DefaultSrc));
    let style = csp
        .get(Directive::StyleSrc)
        .or_else(|| csp.get(Directive::DefaultSrc));
    let object = csp
        .get(Directive::ObjectSrc)
        .or_else(|| csp.get(Directive::DefaultSrc));
    let mut problems = Vec::new();
    match script {
        None => problems.push("no script-src or default-src: any script may run".to_owned()),
        Some(src) => {
            let strict_dynamic = src.contains(&Source::StrictDynamic);
            let has_nonce = src
                .iter()
                .any(|x| matches!(x, Source::Nonce | Source::Hash(_)));
            if src.contains(&Source::UnsafeInline) && !has_nonce {
                problems.push("script-src allows 'unsafe-inline'".to_owned());
            }
            if src.contains(&Source::UnsafeEval) {
                problems.push("script-src allows 'unsafe-eval'".to_owned());
            }
            if !strict_dynamic && src.iter().any(is_broad) {
                problems
                    .push("script-src allows any source (*, https:, http: or data:)".to_owned());
            }
        }
    }
    if let Some(src) = style {
        if src.contains(&Source::UnsafeInline)
            && !src
                .iter()
                .any(|x| matches!(x, Source::Nonce | Source::Hash(_)))
        {
            problems.push("style-src allows 'unsafe-inline'".to_owned());
        }
    }
    if object.is_some_and(|o| o.iter().any(is_broad)) {
        problems.push("object-src allows any source".to_owned());
    }
    if !problems.is_empty() {
        out.push(finding(
            "BTR-E009",
            format!("the CSP is weak: {}", problems.join("; ")),
            "use nonces ('nonce-…' is filled in per response) instead of 'unsafe-inline', drop 'unsafe-eval' and wildcards, or unset BUTTRESS_CSP",
        ));
    }
    let restricted = |d: Directive| csp.get(d).is_some_and(|s| !s.iter().any(is_broad));
    let mut missing = Vec::new();
    if !restricted(Directive::ObjectSrc) && !restricted(Directive::DefaultSrc) {
        missing.push("object-src");
    }
    for d in [Directive::BaseUri, Directive::FrameAncestors] {
        if !restricted(d) {
            missing.push(d.name());
        }
    }
    if !missing.is_empty() {
        out.push(finding(
            "BTR-W008",
            format!("the CSP does not restrict {}", missing.join(", ")),
            "add object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ));
    }
}

fn is_broad(s: &Source) -> bool {
    match s {
        Source::Wildcard => true,
        Source::Scheme(x) => matches!(
            x.as_str(),
            "https:" | "http:" | "data:" | "blob:" | "filesystem:"
        ),
        _ => false,
    }
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
mod tests {
    use super::*;

    fn strong() -> SecretKey {
        SecretKey::from_bytes(b"q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E".to_vec())
    }

    fn hardened() -> Settings {
        let mut s = Settings::loader()
            .env_vars([
                ("BUTTRESS_ENV", "production"),
                ("BUTTRESS_BEHIND_PROXY", "true"),
                ("BUTTRESS_TRUSTED_PROXIES", "10.0.0.0/8"),
                ("BUTTRESS_ALLOWED_HOSTS", "example.org"),
                ("BUTTRESS_HSTS_PRELOAD", "true"),
            ])
            .load()
            .expect("loads");
        s.secret_key = Some(strong());
        s
    }

    fn ids(s: &Settings) -> Vec<&'static str> {
        run(s).into_iter().map(|f| f.id).collect()
    }

    #[test]
    fn hardened_production_is_clean() {
        assert!(run(&hardened()).is_empty(), "{:?}", run(&hardened()));
    }

    #[test]
    fn each_weakness_is_found() {
        type Edit = fn(&mut Settings);
        let cases: &[(&str, Edit)] = &[
            ("BTR-E001", |s| s.debug = true),
            ("BTR-E002", |s| s.secret_key = None),
            ("BTR-E003", |s| {
                s.secret_key = Some(SecretKey::from_bytes(b"short".to_vec()))
            }),
            ("BTR-E004", |s| {
                s.secret_key_fallbacks = vec![SecretKey::from_bytes(b"changeme".to_vec())]
            }),
            ("BTR-E005", |s| s.behind_proxy = false),
            ("BTR-E006", |s| s.https_redirect = false),
            ("BTR-E007", |s| s.hsts_max_age = Duration::ZERO),
            ("BTR-E007", |s| s.hsts_max_age = Duration::from_secs(86_400)),
            ("BTR-W003", |s| {
                s.hsts_max_age = Duration::from_secs(20_000_000)
            }),
            ("BTR-E008", |s| s.cookie_secure = false),
            ("BTR-E008", |s| s.cookie_http_only = false),
            ("BTR-W004", |s| s.cookie_same_site = SameSite::None),
            ("BTR-E009", |s| {
                s.csp = Some("default-src 'self'; script-src 'self' 'unsafe-inline'".into())
            }),
            ("BTR-E009", |s| s.csp = Some("default-src *".into())),
            ("BTR-E009", |s| {
                s.csp = Some("script-src 'self' 'unsafe-eval'; object-src 'none'".into())
            }),
            ("BTR-E014", |s| s.csp = Some(" ".into())),
            ("BTR-W008", |s| s.csp = Some("default-src 'self'".into())),
            ("BTR-W005", |s| s.csp_report_only = true),
            ("BTR-E010", |s| s.trusted_proxies.clear()),
            ("BTR-E012", |s| {
                s.trusted_proxies = vec!["0.0.0.0/0".parse().expect("cidr")]
            }),
            ("BTR-E012", |s| {
                s.trusted_proxies = vec!["::ffff:0:0/96".parse().expect("cidr")]
            }),
            ("BTR-E011", |s| s.instances = 3),
            ("BTR-E015", |s| {
                s.instances = 2;
                s.session_store = crate::settings::SessionStoreKind::Memory;
            }),
            ("BTR-W011", |s| {
                s.instances = 2;
                s.ratelimit_storage = "redis://127.0.0.1:6379".into();
                s.session_store = crate::settings::SessionStoreKind::Cookie;
                s.redis_url = None;
            }),
            ("BTR-E016", |s| s.tls = crate::settings::Tls::DevSelfSigned),
            ("BTR-W002", |s| s.allowed_hosts.clear()),
            ("BTR-W009", |s| s.ratelimit_default = None),
            ("BTR-W009", |s| {
                s.ratelimit_storage = "redis://127.0.0.1:6379".into();
                s.ratelimit_on_store_error = crate::ratelimit::OnStoreError::FailOpen;
            }),
            ("BTR-W010", |s| {
                s.instances = 4;
                s.ratelimit_storage = "redis://127.0.0.1:6379".into();
                s.ratelimit_default = Some("200 per day; 3 per minute".parse().expect("limits"));
            }),
            ("BTR-W007", |s| s.body_limit = 1 << 30),
            ("BTR-I001", |s| s.hsts_preload = false),
            ("BTR-W001", |s| s.environment = Environment::Development),
        ];
        for (id, edit) in cases {
            let mut s = hardened();
            edit(&mut s);
            assert!(ids(&s).contains(id), "{id} not found in {:?}", ids(&s));
        }
    }

    #[test]
    fn shares_that_keep_the_limit_are_not_flagged() {
        let mut s = hardened();
        s.instances = 3;
        s.ratelimit_storage = "redis://127.0.0.1:6379".into();
        assert!(!ids(&s).contains(&"BTR-W010"), "{:?}", run(&s));
        s.ratelimit_default = Some("2 per second".parse().expect("limits"));
        assert!(ids(&s).contains(&"BTR-W010"));
        s.ratelimit_on_store_error = crate::ratelimit::OnStoreError::FailClosed;
        assert!(
            !ids(&s).contains(&"BTR-W010"),
            "fail-closed keeps the bound"
        );
    }

    #[test]
    fn development_off_loopback_is_an_error() {
        let s = Settings {
            bind: "0.0.0.0:8000".parse().expect("addr"),
            ..Settings::default()
        };
        assert!(ids(&s).contains(&"BTR-E013"));
    }

    #[test]
    fn nonce_with_unsafe_inline_fallback_is_not_flagged() {
        let mut s = hardened();
        s.csp = Some("default-src 'none'; script-src 'nonce-x' 'unsafe-inline' 'strict-dynamic'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'".into());
        assert!(!ids(&s).contains(&"BTR-E009"), "{:?}", run(&s));
    }

    #[test]
    fn findings_never_contain_the_key() {
        let mut s = hardened();
        s.secret_key = Some(SecretKey::from_bytes(
            b"changeme-q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1G".to_vec(),
        ));
        let text = format!("{:?}", run(&s));
        assert!(!text.contains("q3Jx9"), "{text}");
    }
}

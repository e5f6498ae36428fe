//! The checks, one function per part of a deployment; [`run`](super::run) calls them in turn.

use std::time::Duration;

use super::{finding, Finding};
use crate::headers::{Directive, Source};
use crate::secret::{KeyError, SecretKey};
use crate::session::SameSite;
use crate::settings::{Environment, Settings};

const SIX_MONTHS: Duration = Duration::from_secs(15_768_000);
const ONE_YEAR: Duration = Duration::from_secs(31_536_000);

/// The environment: debug detail, Development and its listener.
pub(super) fn environment(s: &Settings, out: &mut Vec<Finding>) {
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
}

/// The secret key, its fallbacks and its file.
pub(super) fn keys(s: &Settings, out: &mut Vec<Finding>) {
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
    check_key_file(s, out);
}

/// HTTPS: a certificate or a proxy, the redirect, HSTS.
pub(super) fn https(s: &Settings, out: &mut Vec<Finding>) {
    let prod = s.environment == Environment::Production;
    if prod && s.tls() == crate::settings::Tls::DevSelfSigned {
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
}

/// Cookie flags.
pub(super) fn cookies(s: &Settings, out: &mut Vec<Finding>) {
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
}

/// Trusted proxies and allowed hosts.
pub(super) fn proxies(s: &Settings, out: &mut Vec<Finding>) {
    let prod = s.environment == Environment::Production;
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
    if prod && s.allowed_hosts.is_empty() {
        out.push(finding(
            "BTR-W002",
            "BUTTRESS_ALLOWED_HOSTS is empty: requests for any Host are answered",
            "set BUTTRESS_ALLOWED_HOSTS to the site's host names",
        ));
    }
}

/// Rate limits and sessions across instances.
pub(super) fn limits(s: &Settings, out: &mut Vec<Finding>) {
    let prod = s.environment == Environment::Production;
    if s.instances > 1 && !s.ratelimit_storage.is_shared() {
        out.push(finding(
            "BTR-E011",
            format!("{} instances declared but rate limits are kept in memory: each instance counts alone, so limits are multiplied", s.instances),
            "set BUTTRESS_RATELIMIT_STORAGE=redis://HOST:6379",
        ));
    }
    if s.instances > 1 && s.session_store == crate::session::SessionStoreKind::Memory {
        out.push(finding(
            "BTR-E015",
            format!("{} instances declared but sessions are kept in memory: a user signed in on one instance is unknown to the others, and revocation misses them", s.instances),
            "set BUTTRESS_SESSION_STORE=sql or redis (or cookie)",
        ));
    }
    if s.instances > 1
        && s.session_store == crate::session::SessionStoreKind::Cookie
        && s.redis_url.is_none()
    {
        out.push(finding(
            "BTR-W011",
            format!("{} instances declared with cookie sessions and no REDIS_URL: a logout or \"sign out everywhere\" is remembered only by the instance that saw it, so a copied cookie still works on the others", s.instances),
            "set REDIS_URL so that sign-outs are shared (or use BUTTRESS_SESSION_STORE=sql or redis)",
        ));
    }
    let fails_open = s.ratelimit_on_store_error == crate::ratelimit::OnStoreError::FailOpen
        && s.ratelimit_storage.is_shared();
    if prod && (s.ratelimit_default.is_none() || fails_open) {
        out.push(finding(
            "BTR-W009",
            "the global rate limit is off, or switches off whenever Redis is unavailable (fail-open)",
            "keep BUTTRESS_RATELIMIT_DEFAULT set and use BUTTRESS_RATELIMIT_ON_STORE_ERROR=memory (or fail-closed)",
        ));
    }
    if s.instances > 1
        && s.ratelimit_on_store_error == crate::ratelimit::OnStoreError::Memory
        && s.ratelimit_storage.is_shared()
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
}

/// Body size and timeouts.
pub(super) fn request_limits(s: &Settings, out: &mut Vec<Finding>) {
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

/// The Content-Security-Policy.
pub(super) fn csp(s: &Settings, out: &mut Vec<Finding>) {
    let Some(csp) = &s.csp else {
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

/// The metrics listener: off loopback only with a token.
pub(super) fn metrics(s: &Settings, out: &mut Vec<Finding>) {
    if let (Some(addr), None) = (s.metrics_bind, &s.metrics_token) {
        if !addr.ip().is_loopback() {
            out.push(finding(
                "BTR-E017",
                format!("the metrics listener on {addr} is not on loopback and has no token: anyone who reaches it reads the counters"),
                "set BUTTRESS_METRICS_TOKEN (`openssl rand -hex 32`; Prometheus sends it as a bearer token), or bind BUTTRESS_METRICS_BIND to 127.0.0.1",
            ));
        }
    }
}

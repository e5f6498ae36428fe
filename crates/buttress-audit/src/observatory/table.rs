//! The modifier of every result name: SCORE_TABLE of both rule sets (grade.py / charts.js).

/// SCORE_TABLE of both rule sets. Shared names have identical modifiers in both tables;
/// names that exist in only one table are only ever produced by that rule set.
pub(super) fn modifier(result: &str) -> i32 {
    match result {
        // CSP
        "csp-implemented-with-no-unsafe-default-src-none" => 10,
        "csp-implemented-with-no-unsafe" => 5,
        "csp-implemented-with-unsafe-inline-in-style-src-only" => 0,
        "csp-implemented-but-duplicate-directives" => 0, // v2 only
        "csp-implemented-with-insecure-scheme-in-passive-content-only" => -10,
        "csp-implemented-with-unsafe-eval" => -10,
        "csp-implemented-with-unsafe-inline" => -20,
        "csp-implemented-with-insecure-scheme" => -20,
        "csp-header-invalid" => -25,
        "csp-not-implemented" => -25,
        "csp-not-implemented-but-reporting-enabled" => -25, // v2 only
        // contribute.json / HPKP (classic only)
        "contribute-json-only-required-on-mozilla-properties" => 0,
        "hpkp-not-present" => 0,
        "hpkp-is-deprecated" => -5,
        // Cookies
        "cookies-secure-with-httponly-sessions-and-samesite" => 5,
        "cookies-secure-with-httponly-sessions" => 0,
        "cookies-not-found" => 0,
        "cookies-without-secure-flag-but-protected-by-hsts" => -5,
        "cookies-session-without-secure-flag-but-protected-by-hsts" => -10,
        "cookies-without-secure-flag" => -20,
        "cookies-samesite-flag-invalid" => -20,
        "cookies-anticsrf-without-samesite-flag" => -20,
        "cookies-session-without-httponly-flag" => -30,
        "cookies-session-without-secure-flag" => -40,
        // CORS
        "cross-origin-resource-sharing-not-implemented" => 0,
        "cross-origin-resource-sharing-implemented-with-public-access" => 0,
        "cross-origin-resource-sharing-implemented-with-restricted-access" => 0,
        "cross-origin-resource-sharing-implemented-with-universal-access" => -50,
        // Redirection
        "redirection-to-https" => 0,
        "redirection-not-needed-no-http" => 0,
        "redirection-missing" => -20,
        // Referrer-Policy
        "referrer-policy-private" => 5,
        "referrer-policy-no-referrer-when-downgrade" => 0, // classic only
        "referrer-policy-not-implemented" => 0,
        "referrer-policy-unsafe" => -5,
        "referrer-policy-header-invalid" => -5,
        // HSTS
        "hsts-implemented-max-age-at-least-six-months" => 0,
        "hsts-implemented-max-age-less-than-six-months" => -10,
        "hsts-not-implemented" => -20,
        "hsts-header-invalid" => -20,
        "hsts-not-implemented-no-https" => -20,
        // SRI
        "sri-implemented-and-all-scripts-loaded-securely" => 5,
        "sri-implemented-and-external-scripts-loaded-securely" => 5,
        "sri-not-implemented-response-not-html" => 0,
        "sri-not-implemented-but-no-scripts-loaded" => 0,
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin" => 0,
        "sri-not-implemented-but-external-scripts-loaded-securely" => -5,
        "sri-implemented-but-external-scripts-not-loaded-securely" => -20,
        "sri-not-implemented-and-external-scripts-not-loaded-securely" => -50,
        // X-Content-Type-Options
        "x-content-type-options-nosniff" => 0,
        "x-content-type-options-not-implemented" => -5,
        "x-content-type-options-header-invalid" => -5,
        // X-Frame-Options
        "x-frame-options-implemented-via-csp" => 5,
        "x-frame-options-sameorigin-or-deny" => 0,
        "x-frame-options-allow-from-origin" => 0,
        "x-frame-options-not-implemented" => -20,
        "x-frame-options-header-invalid" => -20,
        // X-XSS-Protection (classic only)
        "x-xss-protection-enabled-mode-block" => 0,
        "x-xss-protection-enabled" => 0,
        "x-xss-protection-not-needed-due-to-csp" => 0,
        "x-xss-protection-disabled" => -10,
        "x-xss-protection-not-implemented" => -10,
        "x-xss-protection-header-invalid" => -10,
        // Cross-Origin-Resource-Policy (v2 only)
        "corp-implemented-with-same-origin" => 10,
        "corp-implemented-with-same-site" => 10,
        "corp-implemented-with-cross-origin" => 0,
        "corp-not-implemented" => 0,
        "corp-header-invalid" => -5,
        other => panic!("observatory: no modifier for result {other:?}"),
    }
}

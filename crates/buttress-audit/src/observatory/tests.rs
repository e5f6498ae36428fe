//! Tests of whole scores under both rule sets, and the fixtures the submodules' tests share.

use super::*;

const NONCE: &str = "'nonce-AAAAAAAAAAAAAAAAAAAAAA'";

fn hardened_csp() -> String {
    format!(
        "default-src 'none'; script-src 'self' {NONCE}; style-src 'self' {NONCE}; img-src 'self'; \
         font-src 'self'; connect-src 'self'; manifest-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'; upgrade-insecure-requests"
    )
}

pub(super) fn hardened() -> Vec<(String, String)> {
    let csp = hardened_csp();
    let raw: [(&str, &str); 8] = [
        ("Content-Security-Policy", csp.as_str()),
        (
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        (
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
    ];
    hdrs(&raw)
}

pub(super) fn hdrs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
    raw.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `headers` with `name` replaced (or removed when `value` is None).
pub(super) fn with(
    mut headers: Vec<(String, String)>,
    name: &str,
    value: Option<&str>,
) -> Vec<(String, String)> {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        headers.push((name.to_string(), v.to_string()));
    }
    headers
}

pub(super) fn run(
    rules: Ruleset,
    headers: &[(String, String)],
    https: bool,
    redirect: Option<bool>,
) -> Score {
    score(
        rules,
        &Input {
            headers,
            https,
            http_redirects_to_https: redirect,
            html: None,
        },
    )
}

pub(super) fn result_of<'s>(s: &'s Score, test: &str) -> &'s TestResult {
    s.tests
        .iter()
        .find(|t| t.test == test)
        .unwrap_or_else(|| panic!("no test {test} in\n{s}"))
}

pub(super) const BOTH: [Ruleset; 2] = [Ruleset::Classic, Ruleset::MdnV2];

#[test]
fn hardened_set_is_a_plus_under_both_rulesets() {
    let h = hardened();
    for (rules, expected) in [(Ruleset::Classic, 120), (Ruleset::MdnV2, 130)] {
        let s = run(rules, &h, true, Some(true));
        assert_eq!(s.grade, "A+", "{rules:?}\n{s}");
        assert!(s.score >= 100, "{rules:?}\n{s}");
        assert_eq!(s.score, expected, "{rules:?}\n{s}");
        assert!(s.tests.iter().all(|t| t.modifier >= 0), "{rules:?}\n{s}");
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-implemented-with-no-unsafe-default-src-none"
        );
        assert_eq!(
            result_of(&s, "x-frame-options").result,
            "x-frame-options-implemented-via-csp"
        );
        assert_eq!(
            result_of(&s, "referrer-policy").result,
            "referrer-policy-private"
        );
    }
    let s = run(Ruleset::MdnV2, &h, true, Some(true));
    assert_eq!(
        result_of(&s, "cross-origin-resource-policy").result,
        "corp-implemented-with-same-origin"
    );
    let s = run(Ruleset::Classic, &h, true, Some(true));
    assert_eq!(
        result_of(&s, "x-xss-protection").result,
        "x-xss-protection-not-needed-due-to-csp"
    );
    assert_eq!(s.tests.len(), 12);
    assert_eq!(run(Ruleset::MdnV2, &h, true, Some(true)).tests.len(), 10);
}

#[test]
fn bare_response_over_https() {
    let none: Vec<(String, String)> = Vec::new();
    for redirect in [None, Some(true)] {
        // classic: CSP -25, HSTS -20, XCTO -5, XFO -20, X-XSS-Protection -10
        let s = run(Ruleset::Classic, &none, true, redirect);
        assert_eq!((s.score, s.grade), (20, "F"), "{s}");
        // v2: CSP -25, HSTS -20, XCTO -5, XFO -20
        let s = run(Ruleset::MdnV2, &none, true, redirect);
        assert_eq!((s.score, s.grade), (30, "D"), "{s}");
    }
    let s = run(Ruleset::MdnV2, &none, true, Some(false));
    assert_eq!((s.score, s.grade), (10, "F"), "{s}");
}

#[test]
fn hsts_below_six_months_is_penalised() {
    let cases: [(&str, &str, i32); 5] = [
        (
            "max-age=86400",
            "hsts-implemented-max-age-less-than-six-months",
            -10,
        ),
        (
            "max-age=15551999; includeSubDomains",
            "hsts-implemented-max-age-less-than-six-months",
            -10,
        ),
        (
            "max-age=15552000",
            "hsts-implemented-max-age-at-least-six-months",
            0,
        ),
        ("includeSubDomains", "hsts-header-invalid", -20),
        (
            "max-age=31536000, max-age=31536000",
            "hsts-header-invalid",
            -20,
        ),
    ];
    for rules in BOTH {
        for (value, result, modifier) in cases {
            let h = with(hardened(), "Strict-Transport-Security", Some(value));
            let s = run(rules, &h, true, Some(true));
            let t = result_of(&s, "strict-transport-security");
            assert_eq!(
                (t.result.as_str(), t.modifier),
                (result, modifier),
                "{rules:?} {value}\n{s}"
            );
        }
    }
}

#[test]
fn hsts_over_plain_http_is_ignored() {
    for rules in BOTH {
        let with_hsts = run(rules, &hardened(), false, Some(false));
        let without = run(
            rules,
            &with(hardened(), "Strict-Transport-Security", None),
            false,
            Some(false),
        );
        let t = result_of(&with_hsts, "strict-transport-security");
        assert_eq!(
            (t.result.as_str(), t.modifier),
            ("hsts-not-implemented-no-https", -20)
        );
        assert_eq!(with_hsts, without, "{rules:?}");
    }
}

#[test]
fn other_headers() {
    type Case = (
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
        i32,
    );
    let cases: [Case; 12] = [
        (
            "Referrer-Policy",
            Some("unsafe-url"),
            "referrer-policy",
            "referrer-policy-unsafe",
            -5,
        ),
        (
            "Referrer-Policy",
            Some("no-referrer, bogus"),
            "referrer-policy",
            "referrer-policy-private",
            5,
        ),
        (
            "Referrer-Policy",
            Some("bogus"),
            "referrer-policy",
            "referrer-policy-header-invalid",
            -5,
        ),
        (
            "Referrer-Policy",
            None,
            "referrer-policy",
            "referrer-policy-not-implemented",
            0,
        ),
        (
            "X-Content-Type-Options",
            None,
            "x-content-type-options",
            "x-content-type-options-not-implemented",
            -5,
        ),
        (
            "X-Content-Type-Options",
            Some("sniff"),
            "x-content-type-options",
            "x-content-type-options-header-invalid",
            -5,
        ),
        (
            "Access-Control-Allow-Origin",
            Some("*"),
            "cross-origin-resource-sharing",
            "cross-origin-resource-sharing-implemented-with-public-access",
            0,
        ),
        (
            "Access-Control-Allow-Origin",
            Some("https://app.example"),
            "cross-origin-resource-sharing",
            "cross-origin-resource-sharing-implemented-with-restricted-access",
            0,
        ),
        (
            "X-Frame-Options",
            None,
            "x-frame-options",
            "x-frame-options-implemented-via-csp",
            5,
        ),
        (
            "X-Frame-Options",
            Some("ALLOWALL"),
            "x-frame-options",
            "x-frame-options-implemented-via-csp",
            5,
        ),
        (
            "Strict-Transport-Security",
            None,
            "strict-transport-security",
            "hsts-not-implemented",
            -20,
        ),
        (
            "Content-Security-Policy",
            None,
            "content-security-policy",
            "csp-not-implemented",
            -25,
        ),
    ];
    for rules in BOTH {
        for (name, value, test, result, modifier) in cases {
            let h = with(hardened(), name, value);
            let s = run(rules, &h, true, Some(true));
            let t = result_of(&s, test);
            assert_eq!(
                (t.result.as_str(), t.modifier),
                (result, modifier),
                "{rules:?} {name}: {value:?}\n{s}"
            );
        }
        // reflecting the probe origin with credentials is the -50 case
        let mut h = hardened();
        h.push((
            "Access-Control-Allow-Origin".into(),
            CORS_PROBE_ORIGIN.into(),
        ));
        h.push(("Access-Control-Allow-Credentials".into(), "true".into()));
        let s = run(rules, &h, true, Some(true));
        assert_eq!(result_of(&s, "cross-origin-resource-sharing").modifier, -50);
        // XFO without CSP frame-ancestors
        let csp = hardened_csp().replace("; frame-ancestors 'none'", "");
        let h = with(hardened(), "Content-Security-Policy", Some(&csp));
        let s = run(rules, &h, true, Some(true));
        assert_eq!(
            result_of(&s, "x-frame-options").result,
            "x-frame-options-sameorigin-or-deny"
        );
        let h = with(h, "X-Frame-Options", None);
        let s = run(rules, &h, true, Some(true));
        assert_eq!(result_of(&s, "x-frame-options").modifier, -20);
    }
    // no-referrer-when-downgrade: neutral in classic, unsafe in v2
    let h = with(
        hardened(),
        "Referrer-Policy",
        Some("no-referrer-when-downgrade"),
    );
    assert_eq!(
        result_of(&run(Ruleset::Classic, &h, true, None), "referrer-policy").modifier,
        0
    );
    assert_eq!(
        result_of(&run(Ruleset::MdnV2, &h, true, None), "referrer-policy").modifier,
        -5
    );
    // CORP (v2 only)
    for (v, r, m) in [
        ("same-site", "corp-implemented-with-same-site", 10),
        ("cross-origin", "corp-implemented-with-cross-origin", 0),
        ("nope", "corp-header-invalid", -5),
    ] {
        let h = with(hardened(), "Cross-Origin-Resource-Policy", Some(v));
        let s = run(Ruleset::MdnV2, &h, true, None);
        let t = result_of(&s, "cross-origin-resource-policy");
        assert_eq!((t.result.as_str(), t.modifier), (r, m));
    }
}

#[test]
fn grade_chart_and_extra_credit() {
    let chart = [
        (130, "A+"),
        (100, "A+"),
        (99, "A"),
        (90, "A"),
        (89, "A-"),
        (85, "A-"),
        (84, "B+"),
        (80, "B+"),
        (79, "B"),
        (70, "B"),
        (69, "B-"),
        (65, "B-"),
        (64, "C+"),
        (60, "C+"),
        (59, "C"),
        (50, "C"),
        (49, "C-"),
        (45, "C-"),
        (44, "D+"),
        (40, "D+"),
        (39, "D"),
        (30, "D"),
        (29, "D-"),
        (25, "D-"),
        (24, "F"),
        (0, "F"),
        (-30, "F"),
    ];
    for (s, g) in chart {
        assert_eq!(grade_for(s), g, "{s}");
    }
    // -5 (XCTO missing) keeps the bonuses: 130 - 5 = 125 in v2
    let h = with(hardened(), "X-Content-Type-Options", None);
    assert_eq!(run(Ruleset::MdnV2, &h, true, Some(true)).score, 125);
    // -20 drops below 90, so the +30 of bonuses are discarded: 80
    let h = with(hardened(), "Strict-Transport-Security", None);
    assert_eq!(run(Ruleset::MdnV2, &h, true, Some(true)).score, 80);
    assert_eq!("v2".parse::<Ruleset>(), Ok(Ruleset::MdnV2));
    assert_eq!("Classic".parse::<Ruleset>(), Ok(Ruleset::Classic));
    assert!("x".parse::<Ruleset>().is_err());
}

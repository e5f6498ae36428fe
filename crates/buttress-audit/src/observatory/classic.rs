//! The classic rule set (mozilla/http-observatory): its list of 12 tests and those of its
//! header tests that have no module of their own.

use std::collections::BTreeMap;

use super::compat::{chars_slice, py_int};
use super::cookies::classic_cookies;
use super::csp::{classic_csp, CspOut};
use super::plumbing::{Ctx, Raw, SIX_MONTHS};
use super::shared::{redirection, sri};
use super::tags::{classic_http_equiv, is_html_mime, ClassicEquiv};
use super::CORS_PROBE_ORIGIN;

pub(super) fn classic_run(c: &Ctx<'_>) -> Vec<Raw> {
    let content_type = c.h.joined("content-type");
    let meta = match c.html {
        Some(body) if is_html_mime(content_type.as_deref()) => classic_http_equiv(body),
        _ => ClassicEquiv::default(),
    };
    let csp = classic_csp(
        c.https,
        c.h.joined("content-security-policy").as_deref(),
        meta.csp.as_deref(),
    );
    let hsts = classic_hsts(c);
    let hsts_pass = hsts.1;
    vec![
        ("content-security-policy", csp.result, csp.pass),
        (
            "contribute",
            "contribute-json-only-required-on-mozilla-properties",
            true,
        ),
        classic_cookies(c, hsts_pass),
        classic_cors(c),
        (
            "public-key-pinning",
            if c.h.joined("public-key-pins").is_some() {
                "hpkp-is-deprecated"
            } else {
                "hpkp-not-present"
            },
            true,
        ),
        redirection(c),
        classic_referrer(c, meta.referrer.as_deref()),
        ("strict-transport-security", hsts.0, hsts.1),
        sri(c, true),
        classic_xcto(c),
        classic_xfo(c, &csp),
        classic_xxssp(c, csp.pass),
    ]
}

fn classic_hsts(c: &Ctx<'_>) -> (&'static str, bool) {
    let result = classic_hsts_result(c);
    (
        result,
        result == "hsts-implemented-max-age-at-least-six-months",
    )
}

fn classic_hsts_result(c: &Ctx<'_>) -> &'static str {
    if !c.https {
        return "hsts-not-implemented-no-https";
    }
    let Some(raw) = c.h.joined("strict-transport-security") else {
        return "hsts-not-implemented";
    };
    let data = chars_slice(&raw, 0, 1024);
    if data.contains(',') {
        return "hsts-header-invalid"; // header set twice
    }
    let mut max_age: Option<i128> = None;
    for p in data.split(';') {
        let p = p.to_lowercase();
        let p = p.trim();
        if p.starts_with("max-age=") {
            match py_int(&chars_slice(p, 8, 128)) {
                Some(v) => max_age = Some(v),
                None => return "hsts-header-invalid",
            }
        }
    }
    match max_age {
        Some(v) if v != 0 => {
            if v < SIX_MONTHS {
                "hsts-implemented-max-age-less-than-six-months"
            } else {
                "hsts-implemented-max-age-at-least-six-months"
            }
        }
        _ => "hsts-header-invalid",
    }
}

fn classic_cors(c: &Ctx<'_>) -> Raw {
    let result = match c.h.joined("access-control-allow-origin") {
        None => "cross-origin-resource-sharing-not-implemented",
        Some(acao) => {
            let creds =
                c.h.joined("access-control-allow-credentials")
                    .unwrap_or_default();
            if chars_slice(acao.trim(), 0, 256) == "*" {
                "cross-origin-resource-sharing-implemented-with-public-access"
            } else if acao == CORS_PROBE_ORIGIN && creds.trim().to_lowercase() == "true" {
                "cross-origin-resource-sharing-implemented-with-universal-access"
            } else {
                "cross-origin-resource-sharing-implemented-with-restricted-access"
            }
        }
    };
    let pass = result != "cross-origin-resource-sharing-implemented-with-universal-access";
    ("cross-origin-resource-sharing", result, pass)
}

fn classic_referrer(c: &Ctx<'_>, meta: Option<&str>) -> Raw {
    const GOOD: [&str; 4] = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    const BAD: [&str; 3] = ["origin", "origin-when-cross-origin", "unsafe-url"];
    let http = c.h.joined("referrer-policy");
    let data = match (http, meta) {
        (None, None) => return ("referrer-policy", "referrer-policy-not-implemented", true),
        (Some(h), Some(m)) => format!("{h}, {m}"),
        (h, m) => m
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .or(h)
            .unwrap_or_default(),
    };
    let data = chars_slice(&data, 0, 256).to_lowercase();
    let policy = data
        .split(',')
        .map(str::trim)
        .rfind(|t| GOOD.contains(t) || BAD.contains(t) || *t == "no-referrer-when-downgrade");
    let result = match policy {
        Some(p) if GOOD.contains(&p) => "referrer-policy-private",
        Some("no-referrer-when-downgrade") => "referrer-policy-no-referrer-when-downgrade",
        Some(_) => "referrer-policy-unsafe",
        None => "referrer-policy-header-invalid",
    };
    let pass = matches!(
        result,
        "referrer-policy-private" | "referrer-policy-no-referrer-when-downgrade"
    );
    ("referrer-policy", result, pass)
}

fn classic_xcto(c: &Ctx<'_>) -> Raw {
    let result = match c.h.joined("x-content-type-options") {
        None => "x-content-type-options-not-implemented",
        Some(v) if chars_slice(&v, 0, 256).trim().to_lowercase() == "nosniff" => {
            "x-content-type-options-nosniff"
        }
        Some(_) => "x-content-type-options-header-invalid",
    };
    (
        "x-content-type-options",
        result,
        result == "x-content-type-options-nosniff",
    )
}

fn classic_xfo(c: &Ctx<'_>, csp: &CspOut) -> Raw {
    let mut result = match c.h.joined("x-frame-options") {
        None => "x-frame-options-not-implemented",
        Some(v) => {
            let xfo = chars_slice(&v, 0, 1024).trim().to_lowercase();
            if xfo == "deny" || xfo == "sameorigin" {
                "x-frame-options-sameorigin-or-deny"
            } else if xfo.starts_with("allow-from ") {
                "x-frame-options-allow-from-origin"
            } else {
                "x-frame-options-header-invalid"
            }
        }
    };
    // frame-ancestors present at all (its value is deliberately not checked)
    if csp
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key("frame-ancestors"))
    {
        result = "x-frame-options-implemented-via-csp";
    }
    let pass = !matches!(
        result,
        "x-frame-options-not-implemented" | "x-frame-options-header-invalid"
    );
    ("x-frame-options", result, pass)
}

fn classic_xxssp(c: &Ctx<'_>, csp_pass: bool) -> Raw {
    let header = c.h.joined("x-xss-protection").unwrap_or_default();
    let header = header.trim();
    let mut valid = true;
    let mut pass = false;
    let mut result = "x-xss-protection-not-implemented";
    if !header.is_empty() {
        let parsed = (|| -> Option<(bool, BTreeMap<String, Option<String>>)> {
            let first = header.chars().next()?;
            if first != '0' && first != '1' {
                return None;
            }
            let mut map = BTreeMap::new();
            for directive in header.to_lowercase().split(';') {
                let (k, v) = if directive.contains('=') {
                    let parts: Vec<&str> = directive.split('=').collect();
                    if parts.len() != 2 {
                        return None;
                    }
                    (
                        parts[0].trim().to_string(),
                        Some(parts[1].trim().to_string()),
                    )
                } else {
                    (directive.trim().to_string(), None)
                };
                if !["0", "1", "mode", "report"].contains(&k.as_str()) {
                    return None;
                }
                if k == "mode" && v.as_deref() != Some("block") {
                    return None;
                }
                if map.insert(k, v).is_some() {
                    return None;
                }
            }
            Some((first == '1', map))
        })();
        match parsed {
            None => {
                valid = false;
                result = "x-xss-protection-header-invalid";
            }
            Some((true, map)) if map.get("mode") == Some(&Some("block".to_string())) => {
                result = "x-xss-protection-enabled-mode-block";
                pass = true;
            }
            Some((true, _)) => {
                result = "x-xss-protection-enabled";
                pass = true;
            }
            Some((false, _)) => result = "x-xss-protection-disabled",
        }
    }
    if valid && !pass && csp_pass {
        pass = true;
        result = "x-xss-protection-not-needed-due-to-csp";
    }
    ("x-xss-protection", result, pass)
}

#[cfg(test)]
mod tests {
    use crate::observatory::tests::{hdrs, result_of, run};
    use crate::observatory::Ruleset;

    #[test]
    fn x_xss_protection_classic_only() {
        let no_csp = hdrs(&[("X-XSS-Protection", "1; mode=block")]);
        let s = run(Ruleset::Classic, &no_csp, true, None);
        assert_eq!(
            result_of(&s, "x-xss-protection").result,
            "x-xss-protection-enabled-mode-block"
        );
        for (value, result) in [
            ("0", "x-xss-protection-disabled"),
            ("1; mode=block;", "x-xss-protection-header-invalid"),
            ("1", "x-xss-protection-enabled"),
        ] {
            let h = hdrs(&[("X-XSS-Protection", value)]);
            let s = run(Ruleset::Classic, &h, true, None);
            assert_eq!(result_of(&s, "x-xss-protection").result, result, "{value}");
        }
        // an unsafe CSP does not excuse the missing header
        let h = hdrs(&[("Content-Security-Policy", "default-src 'unsafe-inline'")]);
        let s = run(Ruleset::Classic, &h, true, None);
        assert_eq!(
            result_of(&s, "x-xss-protection").result,
            "x-xss-protection-not-implemented"
        );
        assert!(run(Ruleset::MdnV2, &h, true, None)
            .tests
            .iter()
            .all(|t| t.test != "x-xss-protection"));
    }
}

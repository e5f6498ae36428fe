//! The MDN v2 rule set (mdn/mdn-http-observatory): its list of 10 tests and those of its
//! header tests that have no module of their own.

use super::compat::{chars_slice, js_parse_int};
use super::cookies::mdn_cookies;
use super::csp::{mdn_csp, CspOut};
use super::plumbing::{Ctx, Raw, SIX_MONTHS};
use super::shared::{redirection, sri};
use super::tags::{is_html_mime, mdn_http_equiv, MdnEquiv};
use super::CORS_PROBE_ORIGIN;

pub(super) fn mdn_run(c: &Ctx<'_>) -> Vec<Raw> {
    let meta = match c.html {
        Some(body) if is_html_mime(c.h.node("content-type").as_deref()) => mdn_http_equiv(body),
        _ => MdnEquiv::default(),
    };
    let csp = mdn_csp(c, &meta.csp);
    let hsts = mdn_hsts(c);
    vec![
        ("content-security-policy", csp.result, csp.pass),
        mdn_cookies(c, hsts.1),
        mdn_cors(c),
        redirection(c),
        mdn_referrer(c, meta.referrer.as_deref()),
        ("strict-transport-security", hsts.0, hsts.1),
        sri(c, false),
        mdn_xcto(c),
        mdn_xfo(c, &csp),
        mdn_corp(c),
    ]
}

fn mdn_hsts(c: &Ctx<'_>) -> (&'static str, bool) {
    let result = (|| {
        if !c.https {
            return "hsts-not-implemented-no-https";
        }
        let Some(header) = c.h.node("strict-transport-security") else {
            return "hsts-not-implemented";
        };
        let data = chars_slice(&header, 0, 1024);
        if data.contains(',') {
            return "hsts-header-invalid";
        }
        let mut max_age: Option<Option<i128>> = None; // Some(None) = NaN
        for p in data.split(';') {
            let p = p.trim().to_lowercase();
            if p.starts_with("max-age=") {
                max_age = Some(js_parse_int(&chars_slice(&p, 8, 128)));
            }
        }
        match max_age {
            None => "hsts-header-invalid",
            // NaN < SIX_MONTHS is false in JavaScript
            Some(Some(v)) if v < SIX_MONTHS => "hsts-implemented-max-age-less-than-six-months",
            Some(_) => "hsts-implemented-max-age-at-least-six-months",
        }
    })();
    (
        result,
        result == "hsts-implemented-max-age-at-least-six-months",
    )
}

fn mdn_cors(c: &Ctx<'_>) -> Raw {
    let result = match c
        .h
        .node("access-control-allow-origin")
        .filter(|v| !v.is_empty())
    {
        None => "cross-origin-resource-sharing-not-implemented",
        Some(acao) => {
            let data = chars_slice(&acao, 0, 256).trim().to_lowercase();
            let creds =
                c.h.node("access-control-allow-credentials")
                    .unwrap_or_default();
            if data == "*" {
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

fn mdn_referrer(c: &Ctx<'_>, meta: Option<&str>) -> Raw {
    const GOOD: [&str; 4] = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    const BAD: [&str; 4] = [
        "origin",
        "origin-when-cross-origin",
        "unsafe-url",
        "no-referrer-when-downgrade",
    ];
    let mut parts: Vec<String> = c.h.node("referrer-policy").into_iter().collect();
    parts.extend(meta.map(str::to_string));
    if parts.is_empty() {
        return ("referrer-policy", "referrer-policy-not-implemented", true);
    }
    let data = parts.join(", ");
    let policy = data
        .split(',')
        .map(|t| t.trim().to_lowercase())
        .rfind(|t| GOOD.contains(&t.as_str()) || BAD.contains(&t.as_str()))
        .unwrap_or_default();
    let result = if GOOD.contains(&policy.as_str()) {
        "referrer-policy-private"
    } else if BAD.contains(&policy.as_str()) {
        "referrer-policy-unsafe"
    } else {
        "referrer-policy-header-invalid"
    };
    (
        "referrer-policy",
        result,
        result == "referrer-policy-private",
    )
}

fn mdn_xcto(c: &Ctx<'_>) -> Raw {
    let result = match c.h.node("x-content-type-options").filter(|v| !v.is_empty()) {
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

fn mdn_xfo(c: &Ctx<'_>, csp: &CspOut) -> Raw {
    let mut result = match c.h.node("x-frame-options").filter(|v| !v.is_empty()) {
        None => "x-frame-options-not-implemented",
        Some(v) => {
            let xfo = chars_slice(&v, 0, 1024).trim().to_lowercase();
            if xfo == "deny" || xfo == "sameorigin" {
                "x-frame-options-sameorigin-or-deny"
            } else if xfo.starts_with("allow-from") {
                "x-frame-options-allow-from-origin"
            } else {
                "x-frame-options-header-invalid"
            }
        }
    };
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

fn mdn_corp(c: &Ctx<'_>) -> Raw {
    let result = match c
        .h
        .node("cross-origin-resource-policy")
        .filter(|v| !v.is_empty())
    {
        None => "corp-not-implemented",
        Some(v) => match chars_slice(&v, 0, 256).trim().to_lowercase().as_str() {
            "same-site" => "corp-implemented-with-same-site",
            "same-origin" => "corp-implemented-with-same-origin",
            "cross-origin" => "corp-implemented-with-cross-origin",
            _ => "corp-header-invalid",
        },
    };
    (
        "cross-origin-resource-policy",
        result,
        result != "corp-header-invalid",
    )
}

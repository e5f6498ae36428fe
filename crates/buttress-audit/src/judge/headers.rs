//! Response headers: the CSP, framing, sniffing, referrer, permissions, cross-origin
//! isolation, subresource integrity and version banners.

use super::{d, Cx, Draft};
use crate::csp::{self, Policy};
use crate::model::Verdict;
use crate::observe::Page;

/// `AUD-CSP-001` (the Observatory's test) and the CSP checks of [`csp::judge`].
pub(super) fn csp(cx: &Cx<'_>) -> Vec<(&'static str, Draft)> {
    let main = cx.main;
    let enforced = &cx.enforced;
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    let mut csp_a = cx.anchor("content-security-policy");
    csp_a.evidence = cx.hv("content-security-policy");
    csp_a.fix = "Send a Content-Security-Policy starting from default-src 'none', with per-response nonces for scripts and styles (buttress::headers::Csp::strict()).".into();
    drafts.push(("AUD-CSP-001", csp_a));
    let report_only: Vec<Policy> = main
        .all("content-security-policy-report-only")
        .flat_map(Policy::parse_list)
        .collect();
    for j in csp::judge(enforced, &report_only) {
        drafts.push((j.id, d(j.verdict, j.evidence, j.fix)));
    }
    drafts
}

/// Framing, sniffing, referrer, permissions, COOP, CORP, SRI and `AUD-BAN-001`.
pub(super) fn others(cx: &Cx<'_>) -> Vec<(&'static str, Draft)> {
    let main = cx.main;
    let enforced = &cx.enforced;
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    let mut a = cx.anchor("x-frame-options");
    a.evidence = format!(
        "{}; frame-ancestors {}",
        cx.hv("x-frame-options"),
        enforced
            .iter()
            .find_map(|p| p.get("frame-ancestors"))
            .map_or("absent".to_owned(), |s| s.join(" "))
    );
    a.fix = "Send CSP frame-ancestors 'none' (and X-Frame-Options: DENY for old browsers).".into();
    drafts.push(("AUD-XFO-001", a));
    let mut a = cx.anchor("x-content-type-options");
    a.evidence = cx.hv("x-content-type-options");
    a.fix = "Send X-Content-Type-Options: nosniff.".into();
    drafts.push(("AUD-XCTO-001", a));
    let mut a = cx.anchor("referrer-policy");
    a.evidence = cx.hv("referrer-policy");
    if main.header("referrer-policy").is_none() && a.verdict == Verdict::Pass {
        a.verdict = Verdict::Warn;
    }
    a.fix = "Send Referrer-Policy: strict-origin-when-cross-origin (or no-referrer).".into();
    drafts.push(("AUD-REF-001", a));
    drafts.push((
        "AUD-PP-001",
        match main.header("permissions-policy") {
            Some(_) => d(Verdict::Pass, cx.hv("permissions-policy"), ""),
            None => d(
                Verdict::Warn,
                "no permissions-policy header",
                "Send Permissions-Policy denying what the site does not use, e.g. camera=(), microphone=(), geolocation=().",
            ),
        },
    ));
    drafts.push((
        "AUD-COOP-001",
        match main.header("cross-origin-opener-policy").map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v.starts_with("same-origin") => {
                d(Verdict::Pass, cx.hv("cross-origin-opener-policy"), "")
            }
            _ => d(
                Verdict::Warn,
                cx.hv("cross-origin-opener-policy"),
                "Send Cross-Origin-Opener-Policy: same-origin so other windows cannot script or probe this one.",
            ),
        },
    ));
    let mut a = cx.anchor("cross-origin-resource-policy");
    a.evidence = cx.hv("cross-origin-resource-policy");
    if main.header("cross-origin-resource-policy").is_none() {
        a.verdict = Verdict::Warn;
    }
    a.fix = "Send Cross-Origin-Resource-Policy: same-origin (same-site for shared assets).".into();
    drafts.push(("AUD-CORP-001", a));
    let mut a = cx.anchor("subresource-integrity");
    a.evidence = format!(
        "{} script tag(s) on the page",
        main.body.to_ascii_lowercase().matches("<script").count()
    );
    a.fix = "Load foreign scripts over HTTPS with integrity=\"sha384-…\" crossorigin, or host them yourself.".into();
    drafts.push(("AUD-SRI-001", a));
    drafts.push(("AUD-BAN-001", banner(main)));
    drafts
}

fn banner(main: &Page) -> Draft {
    let mut version = Vec::new();
    let mut product = Vec::new();
    for name in [
        "server",
        "x-powered-by",
        "x-aspnet-version",
        "x-aspnetmvc-version",
    ] {
        for v in main.all(name) {
            let item = format!("{name}: {v}");
            if v.chars().any(|c| c.is_ascii_digit()) {
                version.push(item);
            } else {
                product.push(item);
            }
        }
    }
    let fix = "Drop Server and X-Powered-By (or strip the version): they tell attackers which exploits to try.";
    if !version.is_empty() {
        d(Verdict::Fail, version.join("; "), fix)
    } else if !product.is_empty() {
        d(Verdict::Warn, product.join("; "), fix)
    } else {
        d(Verdict::Pass, "no Server or X-Powered-By header", "")
    }
}

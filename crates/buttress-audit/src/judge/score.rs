//! From drafts to the graded [`Report`]: one finding per check in catalogue order, the score
//! (see the module docs of [`judge`](super)), and the report of a page that could not be read.

use super::{d, Draft, ObservatoryView, Report, REPORT_FORMAT};
use crate::model::{check, Finding, Verdict, CHECKS};
use crate::observatory::{self, grade_for, MINIMUM_SCORE_FOR_EXTRA_CREDIT};
use crate::observe::{Failure, Observations, Page};

/// The report of a page that could not be read: 0 and F, every check but the failure's "not tested".
pub(super) fn unreadable(obs: &Observations, f: &Failure) -> Report {
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    let why = format!("not tested: the page could not be read ({})", f.message());
    let (net, tls) = match f {
        Failure::Tls(m) => (
            d(Verdict::Info, "connected, but TLS failed (see AUD-TLS-001)", ""),
            d(
                Verdict::Fail,
                format!("certificate problem: {m}"),
                "Serve a certificate valid for this host from a trusted CA (for a private CA or self-signed test certificate, scan with --ca-cert FILE).",
            ),
        ),
        _ => (
            d(
                Verdict::Fail,
                f.message().to_owned(),
                match f {
                    Failure::RedirectLoop(_) | Failure::TooManyRedirects(_) => {
                        "Make every redirect end at the canonical HTTPS page in one hop."
                    }
                    Failure::Timeout(_) => {
                        "Answer within a few seconds (or raise --max-time for a slow site)."
                    }
                    Failure::Budget(_) => "Raise --max-requests.",
                    _ => "Check the URL, DNS and that the server listens.",
                },
            ),
            d(Verdict::Info, why.clone(), ""),
        ),
    };
    drafts.push(("AUD-NET-001", net));
    drafts.push(("AUD-TLS-001", tls));
    if matches!(f, Failure::RedirectLoop(_) | Failure::TooManyRedirects(_)) {
        let chain: Vec<String> = obs
            .chain
            .iter()
            .map(|h| format!("{} ({})", h.url, h.status))
            .collect();
        drafts.push((
            "AUD-RED-002",
            d(
                Verdict::Fail,
                chain.join(" → "),
                "Make every redirect end at the canonical HTTPS page in one hop.",
            ),
        ));
    }
    for c in CHECKS {
        if !drafts.iter().any(|(id, _)| *id == c.id) {
            drafts.push((c.id, d(Verdict::Info, why.clone(), "")));
        }
    }
    finish(obs, None, None, drafts)
}

/// The findings, score and grade of `drafts` (one per check id; a missing id is left out).
pub(super) fn finish(
    obs: &Observations,
    main: Option<&Page>,
    graded: Option<&observatory::Score>,
    drafts: Vec<(&'static str, Draft)>,
) -> Report {
    let mut findings: Vec<Finding> = Vec::with_capacity(CHECKS.len());
    for c in CHECKS {
        let Some((_, draft)) = drafts.iter().find(|(id, _)| *id == c.id) else {
            continue;
        };
        let info = check(c.id).unwrap_or(c);
        let modifier = match (&draft.observatory, draft.verdict) {
            (Some((_, m)), _) => *m,
            (None, Verdict::Fail) => info.fail_weight,
            (None, Verdict::Warn) => info.warn_weight,
            (None, _) => 0,
        };
        findings.push(Finding {
            id: c.id,
            layer: c.layer,
            title: c.title,
            verdict: draft.verdict,
            evidence: draft.evidence.clone(),
            fix: if draft.verdict == Verdict::Pass || draft.verdict == Verdict::Info {
                String::new()
            } else {
                draft.fix.clone()
            },
            modifier,
            source: if c.observatory.is_some() {
                "observatory"
            } else {
                "ours"
            },
            observatory: draft.observatory.as_ref().map(|(r, _)| r.clone()),
        });
    }
    let (score, grade) = match main {
        None => (0, "F"),
        Some(_) => {
            let uncurved: i32 = 100
                + findings
                    .iter()
                    .map(|f| f.modifier)
                    .filter(|m| *m < 0)
                    .sum::<i32>();
            let with_extra: i32 = 100 + findings.iter().map(|f| f.modifier).sum::<i32>();
            let s = if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT {
                with_extra
            } else {
                uncurved
            }
            .max(0);
            (s, grade_for(s))
        }
    };
    Report {
        report_format: REPORT_FORMAT,
        grade,
        score,
        target: obs.target.clone(),
        final_url: main.map(|m| m.url.clone()),
        observatory: graded.map(|g| ObservatoryView {
            ruleset: "mdn-v2",
            score: g.score,
            grade: g.grade,
        }),
        findings,
        redirects: obs.chain.clone(),
        requests: obs.requests,
        notes: obs.notes.clone(),
    }
}

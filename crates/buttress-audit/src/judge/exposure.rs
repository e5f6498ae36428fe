//! What a site gives away or lets through: CORS, debug pages and listings, and the rate-limit
//! probe.

use super::{clip, d, Cx, Draft};
use crate::leaks;
use crate::model::Verdict;
use crate::observatory;
use crate::observe::Probe;

/// `AUD-CORS-001`: does the site echo a foreign Origin with credentials.
pub(super) fn cors(cx: &Cx<'_>) -> Vec<(&'static str, Draft)> {
    let obs = cx.obs;
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    let mut a = cx.anchor("cross-origin-resource-sharing");
    match &obs.cors {
        None => {
            a.verdict = Verdict::Info;
            a.evidence = "not probed".into();
        }
        Some(c) => {
            let acao = c.header("access-control-allow-origin");
            let acac = c.header("access-control-allow-credentials");
            a.evidence = format!(
                "Origin: {} → access-control-allow-origin: {}, access-control-allow-credentials: {}",
                observatory::CORS_PROBE_ORIGIN,
                acao.unwrap_or("(none)"),
                acac.unwrap_or("(none)")
            );
            if acao == Some(observatory::CORS_PROBE_ORIGIN) && a.verdict == Verdict::Pass {
                a.verdict = Verdict::Warn;
            }
        }
    }
    a.fix = "Allow only a fixed list of trusted origins; never echo the request's Origin together with Access-Control-Allow-Credentials: true.".into();
    drafts.push(("AUD-CORS-001", a));
    drafts
}

/// `AUD-LEAK-001` to `AUD-LEAK-003`: traces on error pages, directory listings.
pub(super) fn leaks(cx: &Cx<'_>) -> Vec<(&'static str, Draft)> {
    let obs = cx.obs;
    let main = cx.main;
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    drafts.push((
        "AUD-LEAK-001",
        match &obs.not_found {
            None => d(Verdict::Info, "not tested", ""),
            Some(p) => match leaks::find_leak(&p.body) {
                Some(l) => d(
                    Verdict::Fail,
                    format!("{} ({}): {}: {}", p.url, p.status, l.kind, clip(&l.snippet, 200)),
                    "Turn debug mode off in production and serve a generic error page (buttress::errors).",
                ),
                None => d(
                    Verdict::Pass,
                    format!("{} answered {} without a trace", p.url, p.status),
                    "",
                ),
            },
        },
    ));
    drafts.push((
        "AUD-LEAK-002",
        if obs.malformed.is_empty() {
            d(Verdict::Info, "not tested", "")
        } else {
            match obs
                .malformed
                .iter()
                .find_map(|p| leaks::find_leak(&p.body).map(|l| (p, l)))
            {
                Some((p, l)) => d(
                    Verdict::Fail,
                    format!("{} ({}): {}: {}", p.url, p.status, l.kind, clip(&l.snippet, 200)),
                    "Validate input into a 4xx and never render exceptions, panics or SQL errors; bind SQL parameters.",
                ),
                None => d(
                    Verdict::Pass,
                    format!(
                        "{} malformed request(s) answered {} without a trace",
                        obs.malformed.len(),
                        obs.malformed
                            .iter()
                            .map(|p| p.status.to_string())
                            .collect::<Vec<_>>()
                            .join("/")
                    ),
                    "",
                ),
            }
        },
    ));
    let listing = obs
        .listings
        .iter()
        .chain(std::iter::once(main))
        .chain(obs.pages.iter())
        .find_map(|p| leaks::is_listing(&p.body).map(|s| (p, s)));
    drafts.push((
        "AUD-LEAK-003",
        match listing {
            Some((p, s)) => d(
                Verdict::Fail,
                format!("{}: {}", p.url, clip(&s, 160)),
                "Turn off automatic directory indexes (autoindex off / Options -Indexes).",
            ),
            None => d(
                Verdict::Pass,
                format!(
                    "no listing among {} page(s)",
                    obs.listings.len() + 1 + obs.pages.len()
                ),
                "",
            ),
        },
    ));
    drafts
}

/// `AUD-RATE-001`: the bounded rate-limit probe, when asked.
pub(super) fn rate_limit(cx: &Cx<'_>) -> Vec<(&'static str, Draft)> {
    let obs = cx.obs;
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    drafts.push((
        "AUD-RATE-001",
        match &obs.rate {
            Probe::NotAsked => d(
                Verdict::Info,
                "not probed (use --probe-rate-limit PATH; loopback or --allow-host only)",
                "",
            ),
            Probe::Skipped(why) => d(Verdict::Info, format!("not probed: {why}"), ""),
            Probe::Done(r) => {
                let ev = format!(
                    "{} request(s) to {}: {} answered 429{}{}",
                    r.sent,
                    r.url,
                    r.limited,
                    r.first_limited_at
                        .map_or(String::new(), |n| format!(", first at #{n}")),
                    r.retry_after
                        .as_deref()
                        .map_or(String::new(), |v| format!(", Retry-After: {v}"))
                );
                if r.limited == 0 {
                    d(
                        Verdict::Fail,
                        ev,
                        "Rate-limit by client address: answer 429 with Retry-After (buttress ratelimit layer).",
                    )
                } else if r.retry_after.is_none() {
                    d(Verdict::Warn, ev, "Send Retry-After with every 429.")
                } else {
                    d(Verdict::Pass, ev, "")
                }
            }
        },
    ));
    drafts
}

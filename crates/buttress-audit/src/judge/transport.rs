//! Transport: the connection, the certificate, the way from plain HTTP to HTTPS, and HSTS.

use super::{d, host_of, Cx, Draft};
use crate::model::Verdict;

/// `AUD-NET-001`, `AUD-TLS-001`, `AUD-RED-001`, `AUD-RED-002`.
pub(super) fn transport(cx: &Cx<'_>) -> Vec<(&'static str, Draft)> {
    let obs = cx.obs;
    let main = cx.main;
    let https = cx.https;
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    drafts.push((
        "AUD-NET-001",
        d(
            Verdict::Pass,
            format!(
                "{} answered {} after {} redirect(s); {} request(s) in all",
                main.url,
                main.status,
                obs.chain.len(),
                obs.requests
            ),
            "",
        ),
    ));
    drafts.push((
        "AUD-TLS-001",
        if !https {
            d(
                Verdict::Fail,
                format!("{} is served over plain HTTP", main.url),
                "Serve the site over HTTPS (own TLS or a TLS-terminating proxy) and redirect HTTP to it.",
            )
        } else if !obs.verified {
            d(
                Verdict::Warn,
                "certificate NOT verified (--insecure)",
                "Scan without --insecure (use --ca-cert for a private CA) to judge the certificate.",
            )
        } else {
            d(Verdict::Pass, "certificate verified", "")
        },
    ));
    let mut red = cx.anchor("redirection");
    match &obs.plain_http {
        None | Some(Err(_)) => {
            red.verdict = Verdict::Info;
            red.evidence = match &obs.plain_http {
                Some(Err(e)) => format!("plain HTTP did not answer: {e}"),
                _ => "plain HTTP not tested (the URL has a port; give --http-port)".into(),
            };
        }
        Some(Ok(hop)) => {
            red.evidence = format!(
                "{} → {} {}",
                hop.url,
                hop.status,
                hop.location.as_deref().unwrap_or("(no Location)")
            );
            red.fix = "Answer every plain-HTTP request with a 301/308 to https:// on the same host before anything else.".into();
        }
    }
    drafts.push(("AUD-RED-001", red));
    let first_host = host_of(&obs.target).1;
    let off_host = obs
        .chain
        .iter()
        .filter_map(|h| h.location.as_deref())
        .any(|l| l.contains("://") && host_of(l).1 != first_host);
    let chain_text = if obs.chain.is_empty() {
        "no redirects".to_owned()
    } else {
        let mut s: Vec<String> = obs
            .chain
            .iter()
            .map(|h| format!("{} ({})", h.url, h.status))
            .collect();
        s.push(main.url.clone());
        s.join(" → ")
    };
    drafts.push((
        "AUD-RED-002",
        if obs.chain.len() > 3 || off_host {
            d(
                Verdict::Warn,
                chain_text,
                "Redirect in one hop to the canonical HTTPS URL.",
            )
        } else {
            d(Verdict::Pass, chain_text, "")
        },
    ));
    drafts
}

/// `AUD-HSTS-001`, `AUD-HSTS-002`: HSTS over HTTPS, its age and preload.
pub(super) fn hsts(cx: &Cx<'_>) -> Vec<(&'static str, Draft)> {
    let main = cx.main;
    let https = cx.https;
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    let hsts = main.header("strict-transport-security");
    let mut a = cx.anchor("strict-transport-security");
    a.evidence = if https {
        cx.hv("strict-transport-security")
    } else {
        "page is plain HTTP: HSTS only counts over HTTPS".into()
    };
    a.fix =
        "Send Strict-Transport-Security: max-age=31536000; includeSubDomains on HTTPS responses."
            .into();
    drafts.push(("AUD-HSTS-001", a));
    drafts.push((
        "AUD-HSTS-002",
        match (https, hsts) {
            (false, _) | (true, None) => {
                d(Verdict::Info, "no HSTS over HTTPS (see AUD-HSTS-001)", "")
            }
            (true, Some(v)) => {
                let l = v.to_ascii_lowercase();
                let sub = l.contains("includesubdomains");
                let pre = l.contains("preload");
                let age = l
                    .split(';')
                    .find_map(|d| d.trim().strip_prefix("max-age="))
                    .and_then(|v| v.trim().trim_matches('"').parse::<u64>().ok())
                    .unwrap_or(0);
                if pre && (!sub || age < 31_536_000) {
                    d(
                        Verdict::Warn,
                        format!("strict-transport-security: {v} (preload asked for, but the preload list needs max-age >= 31536000 and includeSubDomains)"),
                        "Use max-age=31536000; includeSubDomains; preload, or drop preload.",
                    )
                } else if sub {
                    d(
                        Verdict::Pass,
                        format!(
                            "strict-transport-security: {v}{}",
                            if pre { "" } else { " (preload not requested)" }
                        ),
                        "",
                    )
                } else {
                    d(
                        Verdict::Warn,
                        format!("strict-transport-security: {v}"),
                        "Add includeSubDomains (and preload once every subdomain is HTTPS).",
                    )
                }
            }
        },
    ));
    drafts
}

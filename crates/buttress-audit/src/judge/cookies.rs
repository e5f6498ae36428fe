//! Cookies (flags, SameSite, prefixes, lifetime) and CSRF (forms without a token, and a
//! tokenless cross-site POST when asked).

use super::{d, Cx, Draft};
use crate::cookie::SetCookie;
use crate::html;
use crate::model::Verdict;
use crate::observatory;
use crate::observe::{Observations, Page, Probe};

/// `AUD-COOK-001` to `AUD-COOK-005`, over every page the scan read.
pub(super) fn cookies(cx: &Cx<'_>) -> Vec<(&'static str, Draft)> {
    let obs = cx.obs;
    let main = cx.main;
    let https = cx.https;
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    let mut seen: Vec<SetCookie> = Vec::new();
    let all_pages = std::iter::once(main)
        .chain(obs.pages.iter())
        .chain(obs.not_found.iter())
        .chain(obs.malformed.iter());
    for p in all_pages {
        for c in p.all("set-cookie").filter_map(SetCookie::parse) {
            if !c.is_deletion() && !seen.iter().any(|s| s.name == c.name) {
                seen.push(c);
            }
        }
    }
    let mut a = cx.anchor("cookies");
    a.evidence = if seen.is_empty() {
        "no cookies set".into()
    } else {
        seen.iter()
            .map(|c| c.summary())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    if seen.is_empty() {
        a.verdict = Verdict::Info;
    }
    a.fix = "Set cookies with Secure, HttpOnly (all session cookies) and SameSite=Lax or Strict."
        .into();
    drafts.push(("AUD-COOK-001", a));
    drafts.extend(cookie_details(&seen, https));
    drafts
}

fn cookie_details(seen: &[SetCookie], https: bool) -> Vec<(&'static str, Draft)> {
    if seen.is_empty() {
        return [
            "AUD-COOK-002",
            "AUD-COOK-003",
            "AUD-COOK-004",
            "AUD-COOK-005",
        ]
        .into_iter()
        .map(|id| (id, d(Verdict::Info, "no cookies set", "")))
        .collect();
    }
    let names = |f: &dyn Fn(&SetCookie) -> bool| -> Vec<String> {
        seen.iter().filter(|c| f(c)).map(|c| c.summary()).collect()
    };
    let mut out = Vec::new();
    let bad = names(&|c| c.is_session_like() && !c.http_only);
    out.push((
        "AUD-COOK-002",
        if bad.is_empty() {
            d(Verdict::Pass, format!("{} cookie(s) checked", seen.len()), "")
        } else {
            d(
                Verdict::Fail,
                bad.join(" | "),
                "Add HttpOnly to session cookies: scripts (and injected scripts) then cannot read them.",
            )
        },
    ));
    let none_insecure = names(&|c| c.same_site.as_deref() == Some("none") && !c.secure);
    let missing = names(&|c| !c.same_site_valid());
    out.push((
        "AUD-COOK-003",
        if !none_insecure.is_empty() {
            d(
                Verdict::Fail,
                format!("SameSite=None without Secure (browsers reject it): {}", none_insecure.join(" | ")),
                "Use SameSite=Lax (or Strict); SameSite=None needs Secure.",
            )
        } else if !missing.is_empty() {
            d(
                Verdict::Warn,
                missing.join(" | "),
                "Declare SameSite=Lax (or Strict) on every cookie rather than relying on browser defaults.",
            )
        } else {
            d(Verdict::Pass, format!("{} cookie(s) declare SameSite", seen.len()), "")
        },
    ));
    let broken: Vec<String> = seen
        .iter()
        .filter_map(|c| c.prefix_problem().map(|p| format!("{}: {p}", c.name)))
        .collect();
    let unprefixed = names(&|c| c.is_session_like() && !c.has_prefix());
    out.push((
        "AUD-COOK-004",
        if !broken.is_empty() {
            d(
                Verdict::Fail,
                broken.join(" | "),
                "A __Host- cookie needs Secure, Path=/ and no Domain; a __Secure- cookie needs Secure.",
            )
        } else if https && !unprefixed.is_empty() {
            d(
                Verdict::Warn,
                unprefixed.join(" | "),
                "Name session cookies __Host-… (Secure, Path=/, no Domain): a subdomain then cannot overwrite them.",
            )
        } else {
            d(Verdict::Pass, format!("{} cookie(s) checked", seen.len()), "")
        },
    ));
    const MONTH: i64 = 30 * 24 * 3600;
    let now = observatory::now_epoch();
    let long = names(&|c| c.is_session_like() && c.lifetime(now).is_some_and(|a| a > MONTH));
    out.push((
        "AUD-COOK-005",
        if long.is_empty() {
            d(Verdict::Pass, "no session-like cookie lives longer than 30 days", "")
        } else {
            d(
                Verdict::Warn,
                long.join(" | "),
                "Keep session cookies short (hours to days) and enforce the timeout on the server too.",
            )
        },
    ));
    out
}

/// `AUD-CSRF-001` (forms) and `AUD-CSRF-002` (the active probe).
pub(super) fn csrf(obs: &Observations, main: &Page) -> Vec<(&'static str, Draft)> {
    let pages: Vec<&Page> = std::iter::once(main).chain(obs.pages.iter()).collect();
    let mut unsafe_forms = 0;
    let mut tokenless = Vec::new();
    for p in &pages {
        for f in html::forms(&p.body) {
            if !f.is_unsafe() {
                continue;
            }
            unsafe_forms += 1;
            if !f.has_token() {
                let fields: Vec<&str> = f.fields.iter().map(|x| x.name.as_str()).collect();
                tokenless.push(format!(
                    "{} form on {} → {} (fields: {})",
                    f.method.to_ascii_uppercase(),
                    p.url,
                    if f.action.is_empty() {
                        "(itself)"
                    } else {
                        &f.action
                    },
                    fields.join(", ")
                ));
            }
        }
    }
    let passive = if unsafe_forms == 0 {
        d(
            Verdict::Info,
            format!("no state-changing form on {} page(s)", pages.len()),
            "",
        )
    } else if tokenless.is_empty() {
        d(
            Verdict::Pass,
            format!("{unsafe_forms} form(s), each with a token field"),
            "",
        )
    } else {
        d(
            Verdict::Warn,
            tokenless.join(" | "),
            "Add a session-bound anti-CSRF token to every state-changing form and check Sec-Fetch-Site/Origin (buttress csrf layer).",
        )
    };
    let active = match &obs.csrf {
        Probe::NotAsked => d(
            Verdict::Info,
            "not tried (use --active; loopback or --allow-host only)",
            "",
        ),
        Probe::Skipped(why) => d(Verdict::Info, format!("not tried: {why}"), ""),
        Probe::Done(v) if v.is_empty() => d(Verdict::Info, "no form to try", ""),
        Probe::Done(v) => {
            let accepted: Vec<String> = v
                .iter()
                .filter(|a| a.accepted)
                .map(|a| format!("POST {} (form on {}) without token, Origin: https://attacker.invalid → {} accepted", a.action, a.page, a.status))
                .collect();
            if accepted.is_empty() {
                d(
                    Verdict::Pass,
                    v.iter()
                        .map(|a| format!("POST {} → {} refused", a.action, a.status))
                        .collect::<Vec<_>>()
                        .join(" | "),
                    "",
                )
            } else {
                d(
                    Verdict::Fail,
                    accepted.join(" | "),
                    "Refuse unsafe requests whose Sec-Fetch-Site/Origin is cross-site or that lack the session-bound token (buttress csrf layer).",
                )
            }
        }
    };
    vec![("AUD-CSRF-001", passive), ("AUD-CSRF-002", active)]
}

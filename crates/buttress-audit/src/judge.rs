//! From [`Observations`] to a graded [`Report`]: every check of [`CHECKS`], once, in order.
//!
//! # Scoring
//!
//! The score starts at 100. Each finding adds its `modifier`:
//!
//! - a check shared with Mozilla's HTTP Observatory (its `observatory` field names the test)
//!   carries exactly the Observatory's modifier for the result the Observatory module computes
//!   on the same responses (MDN v2 rules), bonuses included;
//! - a check that is ours alone takes its documented `fail_weight` or `warn_weight` (never a
//!   bonus), and 0 on pass and info.
//!
//! As in the Observatory, bonuses count only if the penalties leave at least 90 points; the
//! score is never below 0, and the letter comes from the Observatory's chart. So when all our
//! own checks pass, our score *is* the Observatory's; the report shows both. A site whose page
//! cannot be read at all (no connection, certificate refused, redirect loop, budget spent) gets
//! 0 and F, as the Observatory refuses to grade it.

use serde::Serialize;

use crate::cookie::SetCookie;
use crate::csp::{self, Policy};
pub use crate::model::grade_rank;
use crate::model::{check, Finding, Layer, Verdict, CHECKS};
use crate::observatory::{self, grade_for, Input, Ruleset, MINIMUM_SCORE_FOR_EXTRA_CREDIT};
use crate::observe::{Failure, Observations, Page, Probe};
use crate::{html, leaks};

/// The Observatory's own view of the same responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservatoryView {
    /// Rule set used (`mdn-v2`).
    pub ruleset: &'static str,
    /// Its score.
    pub score: i32,
    /// Its grade.
    pub grade: &'static str,
}

/// The version of the JSON report's layout, written as its `report_format` field. A reader
/// (such as [`crate::baseline`]) refuses a report of a newer format rather than misreading it.
pub const REPORT_FORMAT: u32 = 1;

/// The graded result of one scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// [`REPORT_FORMAT`]: the layout of this report as JSON.
    pub report_format: u32,
    /// Letter grade, `A+` to `F`.
    pub grade: &'static str,
    /// Points (100 + modifiers, see the module docs).
    pub score: i32,
    /// The URL given.
    pub target: String,
    /// The page judged, after redirects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    /// The Observatory's grade of the same responses (absent if the page could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observatory: Option<ObservatoryView>,
    /// One finding per check, in catalogue order.
    pub findings: Vec<Finding>,
    /// Redirect hops followed to the page.
    pub redirects: Vec<crate::observe::Hop>,
    /// Requests sent.
    pub requests: u32,
    /// What the scanner skipped or cut.
    pub notes: Vec<String>,
}

impl Report {
    /// The finding of check `id`.
    pub fn finding(&self, id: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    /// The worst verdict of a layer (pass when everything was only info).
    pub fn layer_verdict(&self, layer: Layer) -> Verdict {
        self.findings
            .iter()
            .filter(|f| f.layer == layer)
            .map(|f| f.verdict)
            .filter(|v| *v != Verdict::Info)
            .max()
            .unwrap_or(Verdict::Info)
    }

    /// Counts of (fail, warn, pass, info).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let n = |v| self.findings.iter().filter(|f| f.verdict == v).count();
        (
            n(Verdict::Fail),
            n(Verdict::Warn),
            n(Verdict::Pass),
            n(Verdict::Info),
        )
    }
}

struct Draft {
    verdict: Verdict,
    evidence: String,
    fix: String,
    observatory: Option<(String, i32)>,
}

fn d(verdict: Verdict, evidence: impl Into<String>, fix: impl Into<String>) -> Draft {
    Draft {
        verdict,
        evidence: evidence.into(),
        fix: fix.into(),
        observatory: None,
    }
}

fn host_of(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if authority.starts_with('[') {
        authority
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
    } else {
        authority.split(':').next().unwrap_or("")
    };
    (scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

/// Whether a plain-HTTP first hop goes to HTTPS on the same host.
pub(crate) fn redirects_to_https(from: &str, status: u16, location: Option<&str>) -> bool {
    let Some(loc) = location else { return false };
    if !(300..400).contains(&status) {
        return false;
    }
    let (scheme, host) = host_of(loc);
    scheme == "https" && host == host_of(from).1
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Judges what a scan saw. Pure: the same observations give the same report.
pub fn judge(obs: &Observations) -> Report {
    let main = match &obs.main {
        Ok(p) => p,
        Err(f) => return unreadable(obs, f),
    };
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    let https = main.url.to_ascii_lowercase().starts_with("https://");

    // --- the Observatory's view of the same responses
    let mut obs_headers: Vec<(String, String)> = main
        .headers
        .iter()
        .filter(|(n, _)| !n.starts_with("access-control-"))
        .cloned()
        .collect();
    if let Some(c) = &obs.cors {
        obs_headers.extend(
            c.headers
                .iter()
                .filter(|(n, _)| n.starts_with("access-control-"))
                .cloned(),
        );
    }
    let redirect = match &obs.plain_http {
        Some(Ok(hop)) => Some(redirects_to_https(
            &hop.url,
            hop.status,
            hop.location.as_deref(),
        )),
        _ => None,
    };
    let graded = observatory::score(
        Ruleset::MdnV2,
        &Input {
            headers: &obs_headers,
            https,
            http_redirects_to_https: redirect,
            html: Some(&main.body),
        },
    );
    let anchor = |test: &str| -> Draft {
        let Some(t) = graded.tests.iter().find(|t| t.test == test) else {
            return d(Verdict::Info, "not graded", "");
        };
        let verdict = if t.modifier > 0 || (t.modifier == 0 && t.pass) {
            Verdict::Pass
        } else if t.modifier <= -20 {
            Verdict::Fail
        } else {
            Verdict::Warn
        };
        Draft {
            verdict,
            evidence: String::new(),
            fix: String::new(),
            observatory: Some((t.result.clone(), t.modifier)),
        }
    };
    let hv = |name: &str| -> String {
        let v: Vec<&str> = main.all(name).collect();
        if v.is_empty() {
            format!("no {name} header")
        } else {
            format!("{name}: {}", clip(&v.join(", "), 160))
        }
    };

    // --- transport
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
    let mut red = anchor("redirection");
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

    // --- CSP
    let mut csp_a = anchor("content-security-policy");
    csp_a.evidence = hv("content-security-policy");
    csp_a.fix = "Send a Content-Security-Policy starting from default-src 'none', with per-response nonces for scripts and styles (buttress::headers::Csp::strict()).".into();
    drafts.push(("AUD-CSP-001", csp_a));
    let enforced: Vec<Policy> = main
        .all("content-security-policy")
        .flat_map(Policy::parse_list)
        .collect();
    let report_only: Vec<Policy> = main
        .all("content-security-policy-report-only")
        .flat_map(Policy::parse_list)
        .collect();
    for j in csp::judge(&enforced, &report_only) {
        drafts.push((j.id, d(j.verdict, j.evidence, j.fix)));
    }

    // --- HSTS
    let hsts = main.header("strict-transport-security");
    let mut a = anchor("strict-transport-security");
    a.evidence = if https {
        hv("strict-transport-security")
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

    // --- other headers
    let mut a = anchor("x-frame-options");
    a.evidence = format!(
        "{}; frame-ancestors {}",
        hv("x-frame-options"),
        enforced
            .iter()
            .find_map(|p| p.get("frame-ancestors"))
            .map_or("absent".to_owned(), |s| s.join(" "))
    );
    a.fix = "Send CSP frame-ancestors 'none' (and X-Frame-Options: DENY for old browsers).".into();
    drafts.push(("AUD-XFO-001", a));
    let mut a = anchor("x-content-type-options");
    a.evidence = hv("x-content-type-options");
    a.fix = "Send X-Content-Type-Options: nosniff.".into();
    drafts.push(("AUD-XCTO-001", a));
    let mut a = anchor("referrer-policy");
    a.evidence = hv("referrer-policy");
    if main.header("referrer-policy").is_none() && a.verdict == Verdict::Pass {
        a.verdict = Verdict::Warn;
    }
    a.fix = "Send Referrer-Policy: strict-origin-when-cross-origin (or no-referrer).".into();
    drafts.push(("AUD-REF-001", a));
    drafts.push((
        "AUD-PP-001",
        match main.header("permissions-policy") {
            Some(_) => d(Verdict::Pass, hv("permissions-policy"), ""),
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
                d(Verdict::Pass, hv("cross-origin-opener-policy"), "")
            }
            _ => d(
                Verdict::Warn,
                hv("cross-origin-opener-policy"),
                "Send Cross-Origin-Opener-Policy: same-origin so other windows cannot script or probe this one.",
            ),
        },
    ));
    let mut a = anchor("cross-origin-resource-policy");
    a.evidence = hv("cross-origin-resource-policy");
    if main.header("cross-origin-resource-policy").is_none() {
        a.verdict = Verdict::Warn;
    }
    a.fix = "Send Cross-Origin-Resource-Policy: same-origin (same-site for shared assets).".into();
    drafts.push(("AUD-CORP-001", a));
    let mut a = anchor("subresource-integrity");
    a.evidence = format!(
        "{} script tag(s) on the page",
        main.body.to_ascii_lowercase().matches("<script").count()
    );
    a.fix = "Load foreign scripts over HTTPS with integrity=\"sha384-…\" crossorigin, or host them yourself.".into();
    drafts.push(("AUD-SRI-001", a));
    drafts.push(("AUD-BAN-001", banner(main)));

    // --- cookies
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
    let mut a = anchor("cookies");
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

    // --- CSRF
    drafts.extend(csrf(obs, main));

    // --- CORS
    let mut a = anchor("cross-origin-resource-sharing");
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

    // --- leaks
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

    // --- rate limit
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

    finish(obs, Some(main), Some(&graded), drafts)
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

fn csrf(obs: &Observations, main: &Page) -> Vec<(&'static str, Draft)> {
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

fn unreadable(obs: &Observations, f: &Failure) -> Report {
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

fn finish(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_redirect_rule() {
        assert!(redirects_to_https(
            "http://a.example/x",
            301,
            Some("https://a.example/x")
        ));
        assert!(redirects_to_https(
            "http://localhost:8080/",
            308,
            Some("https://localhost:8443/")
        ));
        assert!(!redirects_to_https(
            "http://a.example/",
            301,
            Some("https://www.a.example/")
        ));
        assert!(!redirects_to_https(
            "http://a.example/",
            200,
            Some("https://a.example/")
        ));
        assert!(!redirects_to_https(
            "http://a.example/",
            302,
            Some("/login")
        ));
    }

    #[test]
    fn hsts_detail() {
        let cases = [
            (
                "max-age=31536000; includeSubDomains; preload",
                Verdict::Pass,
            ),
            ("max-age=31536000; includeSubDomains", Verdict::Pass),
            ("max-age=31536000", Verdict::Warn),
            ("max-age=600; includeSubDomains; preload", Verdict::Warn),
        ];
        for (hsts, want) in cases {
            let mut obs =
                Observations::failed("https://a.test/", vec![], Failure::Other(String::new()));
            obs.main = Ok(Page {
                url: "https://a.test/".into(),
                status: 200,
                headers: vec![("strict-transport-security".into(), hsts.into())],
                body: String::new(),
                truncated: false,
            });
            obs.verified = true;
            let r = judge(&obs);
            assert_eq!(
                r.finding("AUD-HSTS-002").map(|f| f.verdict),
                Some(want),
                "{hsts}"
            );
        }
    }

    #[test]
    fn every_check_is_reported_once_even_when_unreadable() {
        let obs = Observations::failed(
            "https://x.invalid/",
            vec![],
            Failure::Connect("refused".into()),
        );
        let r = judge(&obs);
        assert_eq!(r.findings.len(), CHECKS.len());
        assert_eq!((r.grade, r.score), ("F", 0));
        assert_eq!(
            r.finding("AUD-NET-001").map(|f| f.verdict),
            Some(Verdict::Fail)
        );
    }
}

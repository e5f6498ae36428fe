//! From [`Observations`] to a graded [`Report`]: every check of
//! [`CHECKS`](crate::model::CHECKS), once, in order.
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

use crate::csp::Policy;
pub use crate::model::grade_rank;
use crate::model::{Finding, Layer, Verdict};
use crate::observatory::{self, Input, Ruleset};
use crate::observe::{Observations, Page};

mod cookies;
mod exposure;
mod headers;
mod score;
mod transport;

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

/// What every section reads: the scan, its page, and the Observatory's grading of it.
struct Cx<'a> {
    obs: &'a Observations,
    main: &'a Page,
    /// Whether the page judged was served over HTTPS.
    https: bool,
    /// The Observatory's tests on the same responses.
    graded: observatory::Score,
    /// The enforced CSPs of the page.
    enforced: Vec<Policy>,
}

impl<'a> Cx<'a> {
    fn new(obs: &'a Observations, main: &'a Page) -> Self {
        let https = main.url.to_ascii_lowercase().starts_with("https://");
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
        let enforced = main
            .all("content-security-policy")
            .flat_map(Policy::parse_list)
            .collect();
        Cx {
            obs,
            main,
            https,
            graded,
            enforced,
        }
    }

    /// The draft of a check shared with the Observatory: its verdict and modifier as the
    /// Observatory grades `test`, evidence and fix left to the caller.
    fn anchor(&self, test: &str) -> Draft {
        let Some(t) = self.graded.tests.iter().find(|t| t.test == test) else {
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
    }

    /// The page's `name` header(s) as evidence, or that there is none.
    fn hv(&self, name: &str) -> String {
        let v: Vec<&str> = self.main.all(name).collect();
        if v.is_empty() {
            format!("no {name} header")
        } else {
            format!("{name}: {}", clip(&v.join(", "), 160))
        }
    }
}

/// Judges what a scan saw. Pure: the same observations give the same report.
pub fn judge(obs: &Observations) -> Report {
    let main = match &obs.main {
        Ok(p) => p,
        Err(f) => return score::unreadable(obs, f),
    };
    let cx = Cx::new(obs, main);
    let mut drafts: Vec<(&'static str, Draft)> = Vec::new();
    drafts.extend(transport::transport(&cx));
    drafts.extend(headers::csp(&cx));
    drafts.extend(transport::hsts(&cx));
    drafts.extend(headers::others(&cx));
    drafts.extend(cookies::cookies(&cx));
    drafts.extend(cookies::csrf(obs, main));
    drafts.extend(exposure::cors(&cx));
    drafts.extend(exposure::leaks(&cx));
    drafts.extend(exposure::rate_limit(&cx));
    score::finish(obs, Some(main), Some(&cx.graded), drafts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CHECKS;
    use crate::observe::Failure;

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

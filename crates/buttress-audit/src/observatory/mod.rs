//! Offline re-implementation of Mozilla HTTP Observatory scoring: a grade (e.g. `A+`) from one
//! response's headers (and optionally its HTML body), by either published rule set. Depends on
//! `std` and the crate's own HTML tokenizer only. The scanner uses it for every check that
//! overlaps an Observatory test, so the two agree on the same site; the layer tests use it to
//! demand an A+ from the served stack.
//!
//! # Example
//!
//! ```
//! use buttress_audit::observatory::{score, Input, Ruleset};
//!
//! let headers = vec![("X-Content-Type-Options".to_owned(), "nosniff".to_owned())];
//! let graded = score(
//!     Ruleset::MdnV2,
//!     &Input { headers: &headers, https: true, http_redirects_to_https: Some(true), html: None },
//! );
//! assert_eq!((graded.score, graded.grade), (35, "D"), "{graded}");
//! assert!(graded.tests.iter().any(|t| t.result == "csp-not-implemented" && t.modifier == -25));
//! ```
//!
//! # Sources (read from the upstream repositories; names and modifiers are copied verbatim)
//! Classic Observatory, `mozilla/http-observatory` (archived 2024):
//! - `httpobs/docs/scoring.md`: the published modifier tables and grade chart
//! - `httpobs/scanner/grader/grade.py`: `SCORE_TABLE`, `GRADE_CHART`,
//!   `MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90`, `get_grade_and_likelihood_for_score`
//! - `httpobs/scanner/scanner.py`: the two-round scoring (bonuses only if the score is >= 90 after penalties)
//! - `httpobs/scanner/analyzer/__init__.py`: the list of the 12 tests
//! - `httpobs/scanner/analyzer/headers.py`: CSP parser and CSP, cookies, HPKP, referrer-policy,
//!   HSTS, X-Content-Type-Options, X-Frame-Options and X-XSS-Protection tests
//! - `httpobs/scanner/analyzer/misc.py`: CORS and redirection tests
//! - `httpobs/scanner/analyzer/content.py`: contribute.json and SRI tests
//! - `httpobs/scanner/utils.py` (`parse_http_equiv_headers`), `httpobs/scanner/retriever/retriever.py`
//!
//! MDN HTTP Observatory v2, `mdn/mdn-http-observatory`:
//! - `src/grader/charts.js` (SCORE_TABLE, GRADE_CHART, MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90),
//!   `src/grader/grader.js`, `src/scanner/index.js` (test list and two-round scoring), `src/types.js`
//! - `src/analyzer/cspParser.js`, `src/analyzer/utils.js`
//! - `src/analyzer/tests/{csp,cookies,cors,cross-origin-resource-policy,redirection,
//!   referrer-policy,strict-transport-security,subresource-integrity,x-content-type-options,
//!   x-frame-options}.js`
//! - `src/retriever/retriever.js`, `src/retriever/utils.js` (http-equiv), `src/config.js` (CORS probe origin)
//! - `package.json` (`tough-cookie ^5`: how cookie attributes parse)
//! - <https://developer.mozilla.org/en-US/observatory/docs/tests_and_scoring>
//!
//! # What cannot be judged from one response, and what this module does instead
//! - Redirection: `http_redirects_to_https = Some(true)` gives `redirection-to-https`,
//!   `Some(false)` gives `redirection-missing` (-20), and `None` (not tested) gives
//!   `redirection-not-needed-no-http` (0, pass). That is the neutral result the Observatory uses
//!   when plain HTTP is not reachable at all.
//! - HSTS and redirection preload lists are not consulted, so `hsts-preloaded` (+5) and
//!   `redirection-all-redirects-preloaded` never occur. Certificates are assumed valid.
//! - HSTS is judged from these headers only if `https` is true. Otherwise the Observatory has no
//!   HTTPS response and reports `hsts-not-implemented-no-https` (-20), ignoring any header.
//! - CORS: the headers are taken as the answer to the Observatory's probe, which sends
//!   `Origin: `[`CORS_PROBE_ORIGIN`]. crossdomain.xml and clientaccesspolicy.xml are not fetched.
//! - SRI: the page host is unknown, so every absolute script URL counts as a foreign site. This
//!   is never more lenient than the real scanner. If `html` is `None`, the body counts as empty.
//! - Cookies: only this response's `Set-Cookie` fields count, not those from the scanner's
//!   other requests. Expired cookies (`Max-Age<=0` or a past `Expires`) delete rather than set.
//! - Classic `contribute` is scored as a non-Mozilla site (0). Classic `public-key-pinning` gives
//!   `hpkp-is-deprecated` (-5) if a `Public-Key-Pins` header is present, otherwise 0.
//! - MDN v2 CSP: more than 64 policies (header fields and `<meta http-equiv>` together, split
//!   on commas) or 32 KiB of policy text give `csp-header-invalid`. Upstream has no bound, but
//!   intersecting policies costs time quadratic in their number, and a scanned site may send
//!   thousands.
//! - Repeated header fields are folded with ", ", as requests/urllib3 and Node's http module do.
//!   Node keeps only the first `Content-Type`. Meta http-equiv tags are read only for HTML
//!   content types, as the retrievers do.

mod classic;
mod compat;
mod cookies;
mod csp;
mod mdn;
mod plumbing;
mod shared;
mod table;
mod tags;
#[cfg(test)]
mod tests;

use std::fmt;

pub(crate) use cookies::parse_cookie_date;
pub(crate) use plumbing::now_epoch;
use plumbing::{Ctx, Headers};

/// Which published rule set to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ruleset {
    /// mozilla/http-observatory (12 tests, includes X-XSS-Protection, contribute.json, HPKP).
    Classic,
    /// mdn/mdn-http-observatory (10 tests, adds Cross-Origin-Resource-Policy).
    MdnV2,
}

impl std::str::FromStr for Ruleset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "classic" | "v1" | "mozilla" => Ok(Ruleset::Classic),
            "mdn" | "v2" | "mdnv2" | "mdn-v2" => Ok(Ruleset::MdnV2),
            other => Err(format!("unknown Observatory ruleset {other:?}")),
        }
    }
}

/// What the scanner saw for the final page.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Response headers of the final page. Names are matched case-insensitively. Repeated
    /// names (e.g. several `Set-Cookie`) are allowed.
    pub headers: &'a [(String, String)],
    /// The final page was fetched over https.
    pub https: bool,
    /// `None` = not tested (scored as `redirection-not-needed-no-http`, see module docs).
    pub http_redirects_to_https: Option<bool>,
    /// Page body, used for SRI and for `<meta http-equiv>` (only read for HTML content types).
    pub html: Option<&'a str>,
}

/// One Observatory test outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// Observatory test name, e.g. `content-security-policy`.
    pub test: &'static str,
    /// Observatory result name, e.g. `csp-implemented-with-no-unsafe-default-src-none`.
    pub result: String,
    /// Score modifier of the result in the published SCORE_TABLE.
    pub modifier: i32,
    /// The analyzer's own pass/fail flag (informational; the score uses only modifiers).
    pub pass: bool,
}

/// Final score: `score` is after the extra-credit rule and clamped at 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    /// Points, 0 and up (100 + modifiers, bonuses only when penalties leave at least 90).
    pub score: i32,
    /// Letter grade from the published chart (`A+` .. `F`).
    pub grade: &'static str,
    /// Every test's outcome, in the scanner's order.
    pub tests: Vec<TestResult>,
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "score {} grade {}", self.score, self.grade)?;
        for t in &self.tests {
            let flag = if t.pass { "pass" } else { "FAIL" };
            writeln!(f, "  [{:+4}] {flag} {}: {}", t.modifier, t.test, t.result)?;
        }
        Ok(())
    }
}

/// `Origin` sent by both scanners' CORS probe (classic `RETRIEVER_CORS_ORIGIN`, v2 `corsOrigin`).
pub const CORS_PROBE_ORIGIN: &str = "https://http-observatory.security.mozilla.org";

/// Score `input` with the given rules.
pub fn score(rules: Ruleset, input: &Input<'_>) -> Score {
    let ctx = Ctx {
        h: Headers::new(input.headers),
        https: input.https,
        redirect: input.http_redirects_to_https,
        html: input.html,
        now: now_epoch(),
    };
    let raw = match rules {
        Ruleset::Classic => classic::classic_run(&ctx),
        Ruleset::MdnV2 => mdn::mdn_run(&ctx),
    };
    let tests: Vec<TestResult> = raw
        .into_iter()
        .map(|(test, result, pass)| TestResult {
            test,
            result: result.to_string(),
            modifier: table::modifier(result),
            pass,
        })
        .collect();
    // scanner.py / scanner/index.js: penalties first, bonuses only if the result is still an A.
    let mut with_extra = 100;
    let mut uncurved = 100;
    for t in &tests {
        with_extra += t.modifier;
        if t.modifier < 0 {
            uncurved += t.modifier;
        }
    }
    let s = if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT {
        with_extra
    } else {
        uncurved
    };
    let s = s.max(0);
    Score {
        score: s,
        grade: grade_for(s),
        tests,
    }
}

// ---------------------------------------------------------------------------------------------
// Grading tables (grade.py / charts.js); the modifier of each result is in `table.rs`

/// Bonuses count only when the penalties leave at least this many points.
pub const MINIMUM_SCORE_FOR_EXTRA_CREDIT: i32 = 90;

/// The letter for a score, from the published grade chart (steps of 5 points).
pub fn grade_for(score: i32) -> &'static str {
    let s = score.max(0);
    match (s - s % 5).min(100) {
        100 => "A+",
        90 | 95 => "A",
        85 => "A-",
        80 => "B+",
        70 | 75 => "B",
        65 => "B-",
        60 => "C+",
        50 | 55 => "C",
        45 => "C-",
        40 => "D+",
        30 | 35 => "D",
        25 => "D-",
        _ => "F",
    }
}

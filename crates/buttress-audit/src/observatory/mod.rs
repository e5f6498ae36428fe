//! Offline re-implementation of Mozilla HTTP Observatory scoring: a grade (e.g. `A+`) from one
//! response's headers (and optionally its HTML body), by either published rule set. Depends on
//! `std` only. The scanner uses it for every check that overlaps an Observatory test, so the two
//! agree on the same site; the layer tests use it to demand an A+ from the served stack.
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
//! - Repeated header fields are folded with ", ", as requests/urllib3 and Node's http module do.
//!   Node keeps only the first `Content-Type`. Meta http-equiv tags are read only for HTML
//!   content types, as the retrievers do.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

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
        Ruleset::Classic => classic_run(&ctx),
        Ruleset::MdnV2 => mdn_run(&ctx),
    };
    let tests: Vec<TestResult> = raw
        .into_iter()
        .map(|(test, result, pass)| TestResult {
            test,
            result: result.to_string(),
            modifier: modifier(result),
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
// Grading tables (grade.py / charts.js)

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

/// SCORE_TABLE of both rule sets. Shared names have identical modifiers in both tables;
/// names that exist in only one table are only ever produced by that rule set.
fn modifier(result: &str) -> i32 {
    match result {
        // CSP
        "csp-implemented-with-no-unsafe-default-src-none" => 10,
        "csp-implemented-with-no-unsafe" => 5,
        "csp-implemented-with-unsafe-inline-in-style-src-only" => 0,
        "csp-implemented-but-duplicate-directives" => 0, // v2 only
        "csp-implemented-with-insecure-scheme-in-passive-content-only" => -10,
        "csp-implemented-with-unsafe-eval" => -10,
        "csp-implemented-with-unsafe-inline" => -20,
        "csp-implemented-with-insecure-scheme" => -20,
        "csp-header-invalid" => -25,
        "csp-not-implemented" => -25,
        "csp-not-implemented-but-reporting-enabled" => -25, // v2 only
        // contribute.json / HPKP (classic only)
        "contribute-json-only-required-on-mozilla-properties" => 0,
        "hpkp-not-present" => 0,
        "hpkp-is-deprecated" => -5,
        // Cookies
        "cookies-secure-with-httponly-sessions-and-samesite" => 5,
        "cookies-secure-with-httponly-sessions" => 0,
        "cookies-not-found" => 0,
        "cookies-without-secure-flag-but-protected-by-hsts" => -5,
        "cookies-session-without-secure-flag-but-protected-by-hsts" => -10,
        "cookies-without-secure-flag" => -20,
        "cookies-samesite-flag-invalid" => -20,
        "cookies-anticsrf-without-samesite-flag" => -20,
        "cookies-session-without-httponly-flag" => -30,
        "cookies-session-without-secure-flag" => -40,
        // CORS
        "cross-origin-resource-sharing-not-implemented" => 0,
        "cross-origin-resource-sharing-implemented-with-public-access" => 0,
        "cross-origin-resource-sharing-implemented-with-restricted-access" => 0,
        "cross-origin-resource-sharing-implemented-with-universal-access" => -50,
        // Redirection
        "redirection-to-https" => 0,
        "redirection-not-needed-no-http" => 0,
        "redirection-missing" => -20,
        // Referrer-Policy
        "referrer-policy-private" => 5,
        "referrer-policy-no-referrer-when-downgrade" => 0, // classic only
        "referrer-policy-not-implemented" => 0,
        "referrer-policy-unsafe" => -5,
        "referrer-policy-header-invalid" => -5,
        // HSTS
        "hsts-implemented-max-age-at-least-six-months" => 0,
        "hsts-implemented-max-age-less-than-six-months" => -10,
        "hsts-not-implemented" => -20,
        "hsts-header-invalid" => -20,
        "hsts-not-implemented-no-https" => -20,
        // SRI
        "sri-implemented-and-all-scripts-loaded-securely" => 5,
        "sri-implemented-and-external-scripts-loaded-securely" => 5,
        "sri-not-implemented-response-not-html" => 0,
        "sri-not-implemented-but-no-scripts-loaded" => 0,
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin" => 0,
        "sri-not-implemented-but-external-scripts-loaded-securely" => -5,
        "sri-implemented-but-external-scripts-not-loaded-securely" => -20,
        "sri-not-implemented-and-external-scripts-not-loaded-securely" => -50,
        // X-Content-Type-Options
        "x-content-type-options-nosniff" => 0,
        "x-content-type-options-not-implemented" => -5,
        "x-content-type-options-header-invalid" => -5,
        // X-Frame-Options
        "x-frame-options-implemented-via-csp" => 5,
        "x-frame-options-sameorigin-or-deny" => 0,
        "x-frame-options-allow-from-origin" => 0,
        "x-frame-options-not-implemented" => -20,
        "x-frame-options-header-invalid" => -20,
        // X-XSS-Protection (classic only)
        "x-xss-protection-enabled-mode-block" => 0,
        "x-xss-protection-enabled" => 0,
        "x-xss-protection-not-needed-due-to-csp" => 0,
        "x-xss-protection-disabled" => -10,
        "x-xss-protection-not-implemented" => -10,
        "x-xss-protection-header-invalid" => -10,
        // Cross-Origin-Resource-Policy (v2 only)
        "corp-implemented-with-same-origin" => 10,
        "corp-implemented-with-same-site" => 10,
        "corp-implemented-with-cross-origin" => 0,
        "corp-not-implemented" => 0,
        "corp-header-invalid" => -5,
        other => panic!("observatory: no modifier for result {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

type Raw = (&'static str, &'static str, bool);
type Set = BTreeSet<String>;

struct Ctx<'a> {
    h: Headers<'a>,
    https: bool,
    redirect: Option<bool>,
    html: Option<&'a str>,
    now: i64,
}

pub(crate) fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const HTML_TYPES: [&str; 2] = ["text/html", "application/xhtml+xml"];
const SIX_MONTHS: i128 = 15_552_000; // both analyzers: "a white lie" below 15768000

struct Headers<'a> {
    entries: Vec<(String, &'a str)>,
}

impl<'a> Headers<'a> {
    fn new(raw: &'a [(String, String)]) -> Self {
        let entries = raw
            .iter()
            .map(|(n, v)| {
                (
                    n.trim().to_ascii_lowercase(),
                    v.trim_matches(|c| c == ' ' || c == '\t'),
                )
            })
            .collect();
        Headers { entries }
    }
    fn all(&self, name: &str) -> Vec<&'a str> {
        self.entries
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect()
    }
    /// requests/urllib3 view: repeated fields folded with ", ".
    fn joined(&self, name: &str) -> Option<String> {
        let v = self.all(name);
        if v.is_empty() {
            None
        } else {
            Some(v.join(", "))
        }
    }
    /// Node http view: some fields keep only the first value, the rest fold with ", ".
    fn node(&self, name: &str) -> Option<String> {
        const FIRST_ONLY: [&str; 18] = [
            "age",
            "authorization",
            "content-length",
            "content-type",
            "etag",
            "expires",
            "from",
            "host",
            "if-modified-since",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "proxy-authorization",
            "referer",
            "retry-after",
            "server",
            "user-agent",
        ];
        if FIRST_ONLY.contains(&name) {
            self.all(name).first().map(|s| s.to_string())
        } else {
            self.joined(name)
        }
    }
}

fn set_once(slot: &mut Option<&'static str>, value: &'static str) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// `only_if_worse` / `onlyIfWorse`: keep the result that is later in `order`.
fn only_if_worse(
    new: &'static str,
    old: Option<&'static str>,
    order: &[&str],
) -> Option<&'static str> {
    match old {
        None => Some(new),
        Some(o) => {
            let pos = |x: &str| order.iter().position(|y| *y == x);
            if pos(new) > pos(o) {
                Some(new)
            } else {
                Some(o)
            }
        }
    }
}

fn chars_slice(s: &str, start: usize, end: usize) -> String {
    s.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// Python `int(str)`: surrounding whitespace, optional sign, digits with single `_` separators.
fn py_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        match c {
            '_' => {}
            '0'..='9' => {
                v = v
                    .saturating_mul(10)
                    .saturating_add(i128::from(c as u8 - b'0'))
            }
            _ => return None,
        }
    }
    Some(if neg { -v } else { v })
}

/// JavaScript `Number.parseInt(str, 10)`; `None` is NaN.
fn js_parse_int(s: &str) -> Option<i128> {
    let s = s.trim_start();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    let mut v: i128 = 0;
    for c in digits.bytes() {
        v = v.saturating_mul(10).saturating_add(i128::from(c - b'0'));
    }
    Some(if neg { -v } else { v })
}

// ---------------------------------------------------------------------------------------------
// Minimal HTML tag scanner (enough for <meta> and <script> attributes)

struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Start tags of `html`, from the scanner's one tokenizer ([`crate::html`]).
fn scan_tags(html: &str) -> Vec<Tag> {
    crate::html::start_tags(html)
        .into_iter()
        .map(|(name, attrs)| Tag { name, attrs })
        .collect()
}

fn is_html_mime(content_type: Option<&str>) -> bool {
    let mime = content_type.unwrap_or("").split(';').next().unwrap_or("");
    HTML_TYPES.contains(&mime)
}

// ---------------------------------------------------------------------------------------------
// CSP shared pieces (headers.py content_security_policy / tests/csp.js)

const DANGEROUSLY_BROAD: [&str; 8] = [
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
];
const UNSAFE_INLINE: [&str; 2] = ["'unsafe-inline'", "data:"];
const NONCES_HASHES: [&str; 4] = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];
const PASSIVE_DIRECTIVES: [&str; 2] = ["img-src", "media-src"];
const SHORTEST_DIRECTIVE_LENGTH: usize = "img-src".len() - 1;

fn is_broad(s: &str) -> bool {
    DANGEROUSLY_BROAD.contains(&s)
}
fn is_broad_or_inline(s: &str) -> bool {
    is_broad(s) || UNSAFE_INLINE.contains(&s)
}
fn has_nonce_or_hash(set: &Set) -> bool {
    set.iter()
        .any(|s| NONCES_HASHES.iter().any(|p| s.starts_with(p)))
}

/// Directive map whose source sets can be aliased the way Python/JS references alias them:
/// `script_src = csp.get('script-src') or csp.get('default-src') or {'*'}` shares the set.
struct Pool {
    sets: Vec<Set>,
    dirs: BTreeMap<String, usize>,
}

impl Pool {
    fn new(map: BTreeMap<String, Set>) -> Self {
        let mut sets = Vec::new();
        let mut dirs = BTreeMap::new();
        for (k, v) in map {
            dirs.insert(k, sets.len());
            sets.push(v);
        }
        Pool { sets, dirs }
    }
    /// First present directive (Python: and non-empty) among `keys`, else a fresh `{'*'}`.
    fn slot(&mut self, keys: &[&str], empty_is_falsy: bool) -> usize {
        for k in keys {
            if let Some(&i) = self.dirs.get(*k) {
                if !(empty_is_falsy && self.sets[i].is_empty()) {
                    return i;
                }
            }
        }
        self.sets.push(["*".to_string()].into_iter().collect());
        self.sets.len() - 1
    }
    fn get(&self, dir: &str) -> Option<&Set> {
        self.dirs.get(dir).map(|&i| &self.sets[i])
    }
    fn snapshot(&self) -> BTreeMap<String, Vec<String>> {
        self.dirs
            .iter()
            .map(|(k, &i)| (k.clone(), self.sets[i].iter().cloned().collect()))
            .collect()
    }
}

struct CspOut {
    result: &'static str,
    pass: bool,
    /// Parsed policy as the analyzer stores it in `data`; `None` when the test returned early.
    data: Option<BTreeMap<String, Vec<String>>>,
}

impl CspOut {
    fn early(result: &'static str) -> Self {
        CspOut {
            result,
            pass: false,
            data: None,
        }
    }
}

fn csp_pass(result: &str) -> bool {
    matches!(
        result,
        "csp-implemented-with-no-unsafe"
            | "csp-implemented-with-no-unsafe-default-src-none"
            | "csp-implemented-with-unsafe-inline-in-style-src-only"
            | "csp-implemented-with-insecure-scheme-in-passive-content-only"
    )
}

// ---------------------------------------------------------------------------------------------
// Classic rule set

fn classic_run(c: &Ctx<'_>) -> Vec<Raw> {
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

#[derive(Default)]
struct ClassicEquiv {
    csp: Option<String>,
    referrer: Option<String>,
}

/// utils.py parse_http_equiv_headers
fn classic_http_equiv(html: &str) -> ClassicEquiv {
    let mut eq = ClassicEquiv::default();
    for tag in scan_tags(html).iter().filter(|t| t.name == "meta") {
        match (tag.attr("http-equiv"), tag.attr("content")) {
            (Some(he), Some(content)) => match he.trim().to_lowercase().as_str() {
                "content-security-policy" => {
                    eq.csp = Some(match eq.csp.take() {
                        Some(prev) => format!("{prev}; {content}"),
                        None => content.to_string(),
                    })
                }
                "referrer-policy" => eq.referrer = Some(content.to_string()),
                _ => {}
            },
            _ => {
                if let (Some(name), Some(content)) = (tag.attr("name"), tag.attr("content")) {
                    if name.trim().eq_ignore_ascii_case("referrer") {
                        eq.referrer = Some(content.to_string());
                    }
                }
            }
        }
    }
    eq
}

/// headers.py __parse_csp: directive names are case-sensitive here, sources are lowercased,
/// a directive without sources means 'none', repeated directives make the header invalid.
fn classic_parse_csp(raw: &str) -> Result<BTreeMap<String, Set>, ()> {
    let s = raw.replace(['\r', '\n'], "");
    let s = s.trim();
    if s.chars().count() < SHORTEST_DIRECTIVE_LENGTH {
        return Err(());
    }
    let mut csp = BTreeMap::new();
    for part in s.split(';').filter(|p| !p.is_empty()) {
        let mut tokens = part.split_whitespace();
        let Some(directive) = tokens.next() else {
            continue;
        };
        let mut values: Set = tokens.map(|t| t.to_lowercase()).collect();
        if values.is_empty() {
            values.insert("'none'".to_string());
        }
        if csp.insert(directive.to_string(), values).is_some() {
            return Err(());
        }
    }
    Ok(csp)
}

fn python_repr_len(map: &BTreeMap<String, Vec<String>>) -> usize {
    let mut len = 2;
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            len += 2;
        }
        len += k.chars().count() + 2 + 2 + 2;
        len +=
            v.iter().map(|s| s.chars().count() + 2).sum::<usize>() + 2 * v.len().saturating_sub(1);
    }
    len
}

fn classic_csp(https: bool, http: Option<&str>, meta: Option<&str>) -> CspOut {
    let parse = |s: Option<&str>| s.map(classic_parse_csp).transpose();
    let (Ok(http_p), Ok(meta_p)) = (parse(http), parse(meta)) else {
        return CspOut::early("csp-header-invalid");
    };
    if http_p.is_none() && meta_p.is_none() {
        return CspOut::early("csp-not-implemented");
    }
    let http_nonempty = http_p.as_ref().is_some_and(|m| !m.is_empty());
    let meta_nonempty = meta_p.as_ref().is_some_and(|m| !m.is_empty());
    let csp: BTreeMap<String, Set> = if http_nonempty && meta_nonempty {
        // union of the two policies, as the analyzer does
        let (a, b) = (http_p.unwrap_or_default(), meta_p.unwrap_or_default());
        let mut u = a.clone();
        for (k, v) in b {
            u.entry(k).or_default().extend(v);
        }
        u
    } else if http_nonempty {
        http_p.unwrap_or_default()
    } else {
        meta_p.or(http_p).unwrap_or_default()
    };

    let mut pool = Pool::new(csp);
    let object = pool.slot(&["object-src", "default-src"], true);
    let script = pool.slot(&["script-src", "default-src"], true);
    let style = pool.slot(&["style-src", "default-src"], true);
    let mut result: Option<&'static str> = None;

    // 'unsafe-inline' is ignored when a nonce or hash is present (issues #88, #277)
    for idx in [script, style] {
        let set = &mut pool.sets[idx];
        if has_nonce_or_hash(set) && set.contains("'unsafe-inline'") {
            set.remove("'unsafe-inline'");
        }
    }
    let mut strict_dynamic = false;
    {
        let set = &mut pool.sets[script];
        if has_nonce_or_hash(set) && set.contains("'strict-dynamic'") {
            set.retain(|s| {
                !(DANGEROUSLY_BROAD.iter().any(|p| s.starts_with(p))
                    || s == "'self'"
                    || s == "'unsafe-inline'")
            });
            strict_dynamic = true;
        } else if set.contains("'strict-dynamic'") {
            set_once(&mut result, "csp-header-invalid");
        }
    }

    // note: `directive not in 'script-src'` is a substring test in the original
    let mut active: Vec<&String> = pool
        .dirs
        .iter()
        .filter(|(d, _)| {
            !PASSIVE_DIRECTIVES.contains(&d.as_str()) && !"script-src".contains(d.as_str())
        })
        .flat_map(|(_, &i)| pool.sets[i].iter())
        .collect();
    active.extend(pool.sets[script].iter());
    let passive: Vec<&String> = PASSIVE_DIRECTIVES
        .iter()
        .filter_map(|d| pool.get(d).or_else(|| pool.get("default-src")))
        .flat_map(|s| s.iter())
        .collect();

    let (script_set, object_set, style_set) =
        (&pool.sets[script], &pool.sets[object], &pool.sets[style]);
    if script_set.iter().any(|s| is_broad_or_inline(s)) || object_set.iter().any(|s| is_broad(s)) {
        set_once(&mut result, "csp-implemented-with-unsafe-inline");
    }
    if https
        && active
            .iter()
            .any(|s| s.contains("http:") || s.contains("ftp:"))
        && !strict_dynamic
    {
        set_once(&mut result, "csp-implemented-with-insecure-scheme");
    }
    if script_set.contains("'unsafe-eval'") || style_set.contains("'unsafe-eval'") {
        set_once(&mut result, "csp-implemented-with-unsafe-eval");
    }
    if https
        && passive
            .iter()
            .any(|s| s.contains("http:") || s.contains("ftp:"))
    {
        set_once(
            &mut result,
            "csp-implemented-with-insecure-scheme-in-passive-content-only",
        );
    }
    if style_set.iter().any(|s| is_broad_or_inline(s)) {
        set_once(
            &mut result,
            "csp-implemented-with-unsafe-inline-in-style-src-only",
        );
    }
    let default_none = pool
        .get("default-src")
        .is_some_and(|s| s.len() == 1 && s.contains("'none'"));
    if default_none {
        set_once(
            &mut result,
            "csp-implemented-with-no-unsafe-default-src-none",
        );
    } else {
        set_once(&mut result, "csp-implemented-with-no-unsafe");
    }
    let result = result.unwrap_or("csp-implemented-with-no-unsafe");
    let mut data = pool.snapshot();
    if python_repr_len(&data) >= 32768 {
        data = BTreeMap::new();
    }
    CspOut {
        result,
        pass: csp_pass(result),
        data: Some(data),
    }
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

struct ClassicCookie {
    name: String,
    secure: bool,
    rest: Vec<(String, Option<String>)>,
}

enum Parsed<C> {
    Ignore,
    Delete(String),
    Set(String, C),
}

/// http.cookiejar parse_ns_headers + _normalized_cookie_tuples + _cookie_from_cookie_tuple.
fn classic_parse_cookie(header: &str, now: i64) -> Parsed<ClassicCookie> {
    const KNOWN: [&str; 7] = [
        "expires", "domain", "path", "secure", "version", "port", "max-age",
    ];
    const VALUE_ATTRS: [&str; 8] = [
        "version",
        "expires",
        "max-age",
        "domain",
        "path",
        "port",
        "comment",
        "commenturl",
    ];
    const BOOLEAN_ATTRS: [&str; 2] = ["discard", "secure"];
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    for (ii, param) in header.split(';').enumerate() {
        let param = param.trim();
        let (key, val) = match param.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (param.to_string(), None),
        };
        if key.is_empty() {
            if ii == 0 {
                break;
            }
            continue;
        }
        let mut key = key;
        let mut val = val;
        if ii != 0 {
            let lc = key.to_lowercase();
            if KNOWN.contains(&lc.as_str()) {
                key = lc;
            }
            if key == "expires" {
                val = val
                    .and_then(|v| parse_cookie_date(v.trim_matches('"')))
                    .map(|t| t.to_string());
            }
        }
        pairs.push((key, val));
    }
    if pairs.is_empty() {
        return Parsed::Ignore;
    }
    let name = pairs[0].0.clone();
    let mut standard: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut rest: Vec<(String, Option<String>)> = Vec::new();
    let mut max_age_set = false;
    for (k, v) in pairs.into_iter().skip(1) {
        let lc = k.to_lowercase();
        let mut k = if VALUE_ATTRS.contains(&lc.as_str()) || BOOLEAN_ATTRS.contains(&lc.as_str()) {
            lc
        } else {
            k
        };
        let mut v = v;
        if BOOLEAN_ATTRS.contains(&k.as_str()) && v.is_none() {
            v = Some("True".to_string());
        }
        if standard.contains_key(&k) {
            continue;
        }
        if k == "domain" && v.is_none() {
            return Parsed::Ignore;
        }
        if k == "expires" && (max_age_set || v.is_none()) {
            continue; // max-age wins; a bad date makes a session cookie
        }
        if k == "max-age" {
            max_age_set = true;
            match v.as_deref().and_then(py_int) {
                Some(secs) => v = Some((i128::from(now) + secs).to_string()),
                None => return Parsed::Ignore,
            }
            k = "expires".to_string();
        }
        if VALUE_ATTRS.contains(&k.as_str()) || BOOLEAN_ATTRS.contains(&k.as_str()) {
            if v.is_none() && !matches!(k.as_str(), "port" | "comment" | "commenturl") {
                return Parsed::Ignore;
            }
            standard.insert(k, v);
        } else if let Some(slot) = rest.iter_mut().find(|(rk, _)| *rk == k) {
            slot.1 = v;
        } else {
            rest.push((k, v));
        }
    }
    let domain = standard
        .get("domain")
        .cloned()
        .flatten()
        .unwrap_or_default();
    let path = standard.get("path").cloned().flatten().unwrap_or_default();
    let key = format!("{name}\u{0}{domain}\u{0}{path}");
    if let Some(Some(exp)) = standard.get("expires") {
        if exp
            .parse::<i128>()
            .map(|e| e <= i128::from(now))
            .unwrap_or(false)
        {
            return Parsed::Delete(key);
        }
    }
    let secure = matches!(standard.get("secure"), Some(Some(v)) if !v.is_empty());
    Parsed::Set(key, ClassicCookie { name, secure, rest })
}

fn jar<C>(items: impl Iterator<Item = Parsed<C>>) -> Vec<C> {
    let mut jar: Vec<(String, C)> = Vec::new();
    for p in items {
        match p {
            Parsed::Ignore => {}
            Parsed::Delete(k) => jar.retain(|(jk, _)| *jk != k),
            Parsed::Set(k, c) => {
                jar.retain(|(jk, _)| *jk != k);
                jar.push((k, c));
            }
        }
    }
    jar.into_iter().map(|(_, c)| c).collect()
}

const COOKIE_GOODNESS: [&str; 7] = [
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
];

fn is_session_name(name: &str) -> bool {
    let l = name.to_lowercase();
    l.contains("login") || l.contains("sess")
}

fn classic_cookies(c: &Ctx<'_>, hsts: bool) -> Raw {
    let cookies = jar(c
        .h
        .all("set-cookie")
        .into_iter()
        .map(|h| classic_parse_cookie(h, c.now)));
    if cookies.is_empty() {
        return ("cookies", "cookies-not-found", true);
    }
    let mut result: Option<&'static str> = None;
    let mut same_site_seen = false;
    let order = &COOKIE_GOODNESS[..];
    for cookie in cookies
        .iter()
        .filter(|k| !["__cfduid", "heroku-session-affinity"].contains(&k.name.as_str()))
    {
        let (mut httponly, mut samesite) = (false, false);
        for (k, v) in &cookie.rest {
            let kl = k.to_lowercase();
            if kl == "httponly" && !httponly {
                httponly = true;
            } else if kl == "samesite" && !samesite {
                let val = v.as_deref().map(|s| s.trim().to_lowercase());
                match val.as_deref() {
                    None | Some("lax") | Some("strict") => {
                        samesite = true;
                        same_site_seen = true;
                    }
                    Some(_) => {
                        result = only_if_worse("cookies-samesite-flag-invalid", result, order)
                    }
                }
            }
        }
        let session = is_session_name(&cookie.name);
        let anticsrf = cookie.name.to_lowercase().contains("csrf");
        if !cookie.secure && hsts {
            result = only_if_worse(
                "cookies-without-secure-flag-but-protected-by-hsts",
                result,
                order,
            );
        } else if !cookie.secure {
            result = only_if_worse("cookies-without-secure-flag", result, order);
        }
        if anticsrf && !samesite {
            result = only_if_worse("cookies-anticsrf-without-samesite-flag", result, order);
        }
        if session && !cookie.secure && hsts {
            result = only_if_worse(
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                result,
                order,
            );
        } else if session && !cookie.secure {
            result = only_if_worse("cookies-session-without-secure-flag", result, order);
        }
        if session && !httponly {
            result = only_if_worse("cookies-session-without-httponly-flag", result, order);
        }
    }
    let result = result.unwrap_or(if same_site_seen {
        "cookies-secure-with-httponly-sessions-and-samesite"
    } else {
        "cookies-secure-with-httponly-sessions"
    });
    let pass = matches!(
        result,
        "cookies-not-found"
            | "cookies-secure-with-httponly-sessions-and-samesite"
            | "cookies-secure-with-httponly-sessions"
    );
    ("cookies", result, pass)
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

fn redirection(c: &Ctx<'_>) -> Raw {
    match c.redirect {
        None => ("redirection", "redirection-not-needed-no-http", true),
        Some(true) => ("redirection", "redirection-to-https", true),
        Some(false) => ("redirection", "redirection-missing", false),
    }
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

// ---------------------------------------------------------------------------------------------
// Subresource integrity (content.py / tests/subresource-integrity.js)

const SRI_GOODNESS: [&str; 6] = [
    "sri-implemented-and-all-scripts-loaded-securely",
    "sri-implemented-and-external-scripts-loaded-securely",
    "sri-implemented-but-external-scripts-not-loaded-securely",
    "sri-not-implemented-but-external-scripts-loaded-securely",
    "sri-not-implemented-and-external-scripts-not-loaded-securely",
    "sri-not-implemented-response-not-html",
];

/// Python `urlsplit` scheme and netloc, enough to classify script URLs.
fn py_scheme_netloc(url: &str) -> (String, String) {
    let url: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut scheme = String::new();
    let mut rest = url.as_str();
    if let Some(i) = url.find(':') {
        let cand = &url[..i];
        if i > 0
            && cand.as_bytes()[0].is_ascii_alphabetic()
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &url[i + 1..];
        }
    }
    let netloc = match rest.strip_prefix("//") {
        Some(r) => r.split(['/', '?', '#']).next().unwrap_or("").to_string(),
        None => String::new(),
    };
    (scheme, netloc)
}

fn sri(c: &Ctx<'_>, classic: bool) -> Raw {
    let html_response = if classic {
        is_html_mime(Some(
            c.h.joined("content-type").unwrap_or_default().as_str(),
        ))
    } else {
        // newest analyzer: a missing Content-Type is treated as HTML
        let ct = c.h.node("content-type").unwrap_or_default();
        let mime = ct.split(';').next().unwrap_or("");
        mime.is_empty() || HTML_TYPES.contains(&mime)
    };
    if !html_response {
        return (
            "subresource-integrity",
            "sri-not-implemented-response-not-html",
            true,
        );
    }
    let tags = scan_tags(c.html.unwrap_or(""));
    let scripts: Vec<&Tag> = tags.iter().filter(|t| t.name == "script").collect();
    let mut result: Option<&'static str> = None;
    let mut foreign = false;
    for script in &scripts {
        let Some(src) = script.attr("src") else {
            continue;
        };
        let integrity = script.attr("integrity").is_some_and(|v| !v.is_empty());
        let (relative_origin, relative_protocol, same_sld, secure_scheme_abs);
        if classic {
            let (scheme, netloc) = py_scheme_netloc(src);
            relative_origin = scheme.is_empty() && netloc.is_empty();
            relative_protocol = scheme.is_empty() && !netloc.is_empty();
            same_sld = false; // page host unknown: treat every absolute URL as another site
            secure_scheme_abs = scheme == "https";
        } else {
            let s = src.trim();
            let lower = s.to_ascii_lowercase();
            let rel_proto = s.starts_with("//") && !s[2..].starts_with('/') && s.len() > 2;
            let full = lower.starts_with("http://") || lower.starts_with("https://");
            relative_protocol = rel_proto;
            relative_origin = !rel_proto && !full;
            same_sld = rel_proto; // full URLs: page host unknown, treated as another site
            secure_scheme_abs = full && lower.starts_with("https://");
        }
        let secure_origin = relative_origin || (same_sld && !relative_protocol);
        if !secure_origin {
            foreign = true;
        }
        let secure_scheme = secure_scheme_abs || (relative_origin && c.https);
        if !secure_origin {
            let r = if integrity && !secure_scheme {
                Some("sri-implemented-but-external-scripts-not-loaded-securely")
            } else if !integrity && secure_scheme {
                Some("sri-not-implemented-but-external-scripts-loaded-securely")
            } else if !integrity && !secure_scheme {
                Some("sri-not-implemented-and-external-scripts-not-loaded-securely")
            } else {
                None
            };
            if let Some(r) = r {
                result = only_if_worse(r, result, &SRI_GOODNESS);
            }
        } else if integrity && secure_scheme && result.is_none() {
            result = Some("sri-implemented-and-all-scripts-loaded-securely");
        }
    }
    let result = if scripts.is_empty() {
        "sri-not-implemented-but-no-scripts-loaded"
    } else {
        result.unwrap_or(if foreign {
            "sri-implemented-and-external-scripts-loaded-securely"
        } else {
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
        })
    };
    let pass = matches!(
        result,
        "sri-implemented-and-all-scripts-loaded-securely"
            | "sri-implemented-and-external-scripts-loaded-securely"
            | "sri-not-implemented-response-not-html"
            | "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
            | "sri-not-implemented-but-no-scripts-loaded"
    );
    ("subresource-integrity", result, pass)
}

// ---------------------------------------------------------------------------------------------
// MDN v2 rule set

fn mdn_run(c: &Ctx<'_>) -> Vec<Raw> {
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

#[derive(Default)]
struct MdnEquiv {
    csp: Vec<String>,
    referrer: Option<String>,
}

/// src/retriever/utils.js parseHttpEquivHeaders
fn mdn_http_equiv(html: &str) -> MdnEquiv {
    let mut eq = MdnEquiv::default();
    for tag in scan_tags(html).iter().filter(|t| t.name == "meta") {
        match (tag.attr("http-equiv"), tag.attr("content")) {
            (Some(he), Some(content)) => {
                if he.trim().to_lowercase() == "content-security-policy" {
                    eq.csp.push(content.to_string());
                }
            }
            _ => {
                if let (Some(name), Some(content)) = (tag.attr("name"), tag.attr("content")) {
                    if name.trim().to_lowercase() == "referrer" {
                        eq.referrer = Some(content.to_string());
                    }
                }
            }
        }
    }
    eq
}

const DUPLICATE_WARNINGS_KEY: &str = "_observatory_duplicate_warnings";

/// Primary collation weight approximating `Intl.Collator("en")` (CLDR root, non-ignorable)
/// for the characters that occur in CSP sources.
fn collation_weight(c: char) -> u32 {
    const PUNCT: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";
    let c = c.to_ascii_lowercase();
    if c.is_whitespace() {
        return c as u32;
    }
    if let Some(p) = PUNCT.find(c) {
        return 0x100 + p as u32;
    }
    if c.is_ascii_digit() {
        return 0x200 + (c as u32 - '0' as u32);
    }
    if c.is_ascii_lowercase() {
        return 0x300 + (c as u32 - 'a' as u32);
    }
    0x1000 + c as u32
}

fn collate(a: &str, b: &str) -> Ordering {
    a.chars()
        .map(collation_weight)
        .cmp(b.chars().map(collation_weight))
}

/// JavaScript `decodeURIComponent`; `Err` where it would throw URIError.
fn decode_uri_component(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// cspParser.js pathPartMatch (called with whole sources, as upstream does).
fn path_part_match(a: &str, b: &str) -> Result<bool, ()> {
    if a.is_empty() || (a == "/" && b.is_empty()) {
        return Ok(true);
    }
    let exact = !a.ends_with('/');
    let mut la: Vec<&str> = a.split('/').collect();
    let lb: Vec<&str> = b.split('/').collect();
    if la.len() > lb.len() || (exact && la.len() != lb.len()) {
        return Ok(false);
    }
    if !exact {
        la.pop();
    }
    for (x, y) in la.iter().zip(lb.iter()) {
        if decode_uri_component(x)? != decode_uri_component(y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[derive(Clone)]
struct Src {
    source: String,
    index: usize,
    keep: bool,
}

/// cspParser.js parseCsp: several policies are intersected; names are case-insensitive;
/// duplicate report-uri/report-to only produce a warning entry.
fn mdn_parse_csp(list: &[String]) -> Result<BTreeMap<String, Set>, ()> {
    let clean: Vec<String> = list
        .iter()
        .map(|s| s.replace(['\r', '\n'], "").trim().to_string())
        .collect();
    if clean.is_empty() {
        return Ok(BTreeMap::new());
    }
    if clean
        .iter()
        .any(|s| s.is_empty() || s.encode_utf16().count() < SHORTEST_DIRECTIVE_LENGTH)
    {
        return Err(());
    }
    let mut csp: BTreeMap<String, Vec<Src>> = BTreeMap::new();
    let mut duplicates: Set = Set::new();
    for (pi, policy) in clean.iter().enumerate() {
        let mut seen: Set = Set::new();
        for entry in policy.split(';') {
            let mut tokens = entry.split_whitespace();
            let Some(first) = tokens.next() else { continue };
            let directive = first.to_lowercase();
            if !seen.insert(directive.clone()) {
                if directive == "report-uri" || directive == "report-to" {
                    duplicates.insert(directive.clone());
                } else {
                    return Err(());
                }
            }
            let keep = pi == 0;
            let mut values: Vec<Src> = tokens
                .map(|t| Src {
                    source: t.to_lowercase(),
                    index: pi,
                    keep,
                })
                .collect();
            if values.is_empty() && directive.ends_with("-src") {
                values.push(Src {
                    source: "'none'".to_string(),
                    index: pi,
                    keep,
                });
            }
            let mut combined = if pi == 0 {
                values
            } else {
                let mut v = csp.get(&directive).cloned().unwrap_or_default();
                v.extend(values);
                v
            };
            combined.sort_by(|a, b| collate(&a.source, &b.source));
            for i in 1..combined.len() {
                let (prev_source, prev_index) =
                    (combined[i - 1].source.clone(), combined[i - 1].index);
                let cur = &mut combined[i];
                if cur.index == prev_index && cur.source.starts_with(&prev_source) {
                    cur.keep = false;
                }
                if cur.index != prev_index && path_part_match(&prev_source, &cur.source)? {
                    cur.keep = true;
                }
            }
            let mut kept: Vec<Src> = combined.into_iter().filter(|s| s.keep).collect();
            if pi == 0 && clean.len() > 1 {
                for s in &mut kept {
                    s.keep = false;
                }
            }
            csp.insert(directive, kept);
        }
    }
    let mut out: BTreeMap<String, Set> = csp
        .into_iter()
        .map(|(d, srcs)| {
            let set: Set = if srcs.is_empty() {
                ["'none'".to_string()].into_iter().collect()
            } else {
                srcs.into_iter().map(|s| s.source).collect()
            };
            (d, set)
        })
        .collect();
    if !duplicates.is_empty() {
        out.insert(DUPLICATE_WARNINGS_KEY.to_string(), duplicates);
    }
    Ok(out)
}

fn mdn_csp(c: &Ctx<'_>, meta: &[String]) -> CspOut {
    let split = |values: Vec<String>| -> Vec<String> {
        values
            .iter()
            .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
            .collect()
    };
    let http_policies = split(c.h.node("content-security-policy").into_iter().collect());
    let meta_policies = split(meta.to_vec());
    let all: Vec<String> = http_policies
        .iter()
        .chain(meta_policies.iter())
        .cloned()
        .collect();
    let Ok(csp) = mdn_parse_csp(&all) else {
        return CspOut::early("csp-header-invalid");
    };
    let http_only = mdn_parse_csp(&http_policies).unwrap_or_default();
    let mut meta_only = mdn_parse_csp(&meta_policies).unwrap_or_default();
    for d in ["frame-ancestors", "report-uri", "sandbox"] {
        meta_only.remove(d);
    }
    if http_only.len() + meta_only.len() == 0 {
        let report_only =
            c.h.node("content-security-policy-report-only")
                .is_some_and(|v| !v.is_empty());
        return CspOut::early(if report_only {
            "csp-not-implemented-but-reporting-enabled"
        } else {
            "csp-not-implemented"
        });
    }

    let mut pool = Pool::new(csp);
    let object = pool.slot(&["object-src", "default-src"], false);
    let script = pool.slot(&["script-src", "default-src"], false);
    let style = pool.slot(&["style-src", "default-src"], false);
    let mut result: Option<&'static str> = None;
    for idx in [script, style] {
        let set = &mut pool.sets[idx];
        if has_nonce_or_hash(set) && set.contains("'unsafe-inline'") {
            set.remove("'unsafe-inline'");
        }
    }
    {
        let set = &mut pool.sets[script];
        if has_nonce_or_hash(set) && set.contains("'strict-dynamic'") {
            set.retain(|s| {
                !(DANGEROUSLY_BROAD.iter().any(|p| s.starts_with(p))
                    || s == "'self'"
                    || s == "'unsafe-inline'")
            });
        } else if set.contains("'strict-dynamic'") {
            set_once(&mut result, "csp-header-invalid");
        }
    }
    let mut active: Vec<&String> = pool
        .dirs
        .iter()
        .filter(|(d, _)| !PASSIVE_DIRECTIVES.contains(&d.as_str()) && d.as_str() != "script-src")
        .flat_map(|(_, &i)| pool.sets[i].iter())
        .collect();
    active.extend(pool.sets[script].iter());
    let passive: Vec<&String> = PASSIVE_DIRECTIVES
        .iter()
        .filter_map(|d| pool.get(d).or_else(|| pool.get("default-src")))
        .flat_map(|s| s.iter())
        .collect();
    let (script_set, object_set, style_set) =
        (&pool.sets[script], &pool.sets[object], &pool.sets[style]);
    if script_set.iter().any(|s| is_broad_or_inline(s)) || object_set.iter().any(|s| is_broad(s)) {
        set_once(&mut result, "csp-implemented-with-unsafe-inline");
    }
    let insecure = |s: &&String| s.starts_with("http:") || s.starts_with("ftp:");
    if c.https && active.iter().any(insecure) {
        set_once(&mut result, "csp-implemented-with-insecure-scheme");
    }
    if script_set.contains("'unsafe-eval'") || style_set.contains("'unsafe-eval'") {
        set_once(&mut result, "csp-implemented-with-unsafe-eval");
    }
    if c.https && passive.iter().any(insecure) {
        set_once(
            &mut result,
            "csp-implemented-with-insecure-scheme-in-passive-content-only",
        );
    }
    if style_set.iter().any(|s| is_broad_or_inline(s)) {
        set_once(
            &mut result,
            "csp-implemented-with-unsafe-inline-in-style-src-only",
        );
    }
    if pool
        .get("default-src")
        .is_some_and(|s| s.len() == 1 && s.contains("'none'"))
    {
        set_once(
            &mut result,
            "csp-implemented-with-no-unsafe-default-src-none",
        );
    } else {
        set_once(&mut result, "csp-implemented-with-no-unsafe");
    }
    let mut result = result.unwrap_or("csp-implemented-with-no-unsafe");
    let pass = csp_pass(result);
    if pass && pool.get(DUPLICATE_WARNINGS_KEY).is_some() {
        result = "csp-implemented-but-duplicate-directives";
    }
    let mut data = pool.snapshot();
    data.remove(DUPLICATE_WARNINGS_KEY);
    CspOut {
        result,
        pass,
        data: Some(data),
    }
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

struct MdnCookie {
    name: String,
    secure: bool,
    http_only: bool,
    same_site: Option<String>,
}

/// tough-cookie v5 `Cookie.parse` (strict mode) plus the CookieJar prefix rules.
fn mdn_parse_cookie(header: &str, now: i64) -> Parsed<MdnCookie> {
    let header = header.split(['\n', '\r', '\0']).next().unwrap_or("").trim();
    let (pair, rest) = match header.find(';') {
        Some(p) => (&header[..p], Some(&header[p + 1..])),
        None => (header, None),
    };
    let Some(eq) = pair.find('=').filter(|&e| e > 0) else {
        return Parsed::Ignore;
    };
    let name = pair[..eq].trim().to_string();
    let value = pair[eq + 1..].trim();
    if name.chars().chain(value.chars()).any(|c| (c as u32) < 0x20) {
        return Parsed::Ignore;
    }
    let mut cookie = MdnCookie {
        name,
        secure: false,
        http_only: false,
        same_site: None,
    };
    let (mut domain, mut path) = (String::new(), String::new());
    let mut expires: Option<i64> = None;
    let mut max_age: Option<i128> = None;
    for av in rest.unwrap_or("").split(';') {
        let av = av.trim();
        if av.is_empty() {
            continue;
        }
        let (key, val) = match av.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim())),
            None => (av.trim().to_lowercase(), None),
        };
        let val = val.filter(|v| !v.is_empty());
        match key.as_str() {
            "expires" => {
                if let Some(t) = val.and_then(parse_cookie_date) {
                    expires = Some(t);
                }
            }
            "max-age" => {
                if let Some(v) = val {
                    let digits = v.strip_prefix('-').unwrap_or(v);
                    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                        max_age = js_parse_int(v);
                    }
                }
            }
            "domain" => {
                if let Some(v) = val {
                    domain = v.trim_start_matches('.').to_lowercase();
                }
            }
            "path" => path = val.filter(|v| v.starts_with('/')).unwrap_or("").to_string(),
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => {
                cookie.same_site = match val.map(str::to_lowercase).as_deref() {
                    Some(v @ ("strict" | "lax" | "none")) => Some(v.to_string()),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    if cookie.name.starts_with("__Secure-") && !cookie.secure {
        return Parsed::Ignore;
    }
    if cookie.name.starts_with("__Host-")
        && !(cookie.secure && domain.is_empty() && (path.is_empty() || path == "/"))
    {
        return Parsed::Ignore;
    }
    let key = format!("{}\u{0}{domain}\u{0}{path}", cookie.name);
    let expired = match max_age {
        Some(m) => m <= 0,
        None => expires.is_some_and(|t| t <= now),
    };
    if expired {
        Parsed::Delete(key)
    } else {
        Parsed::Set(key, cookie)
    }
}

/// cookies.js containsInvalidSameSiteCookie (on the raw header)
fn mdn_raw_samesite_invalid(raw: &str) -> bool {
    for part in raw.trim().split(';') {
        let mut it = part.trim().split('=');
        let key = it.next().unwrap_or("");
        let value = it.next();
        if key.trim().to_lowercase() == "samesite" {
            match value {
                None | Some("") => return true,
                Some(v)
                    if !["lax", "strict", "none"].contains(&v.trim().to_lowercase().as_str()) =>
                {
                    return true
                }
                _ => {}
            }
        }
    }
    false
}

fn mdn_cookies(c: &Ctx<'_>, hsts: bool) -> Raw {
    let order = &COOKIE_GOODNESS[..];
    let raw = c.h.all("set-cookie");
    let mut result: Option<&'static str> = None;
    if raw.iter().any(|r| mdn_raw_samesite_invalid(r)) {
        result = only_if_worse("cookies-samesite-flag-invalid", result, order);
    }
    let cookies: Vec<MdnCookie> = jar(raw.iter().map(|h| mdn_parse_cookie(h, c.now)))
        .into_iter()
        .filter(|k| !k.name.is_empty() && k.name != "heroku-session-affinity")
        .collect();
    if cookies.is_empty() {
        return ("cookies", "cookies-not-found", true);
    }
    let mut missing_same_site = false;
    for cookie in &cookies {
        let session = is_session_name(&cookie.name);
        let anticsrf = cookie.name.to_lowercase().contains("csrf");
        if !cookie.secure && cookie.same_site.as_deref() == Some("none") {
            result = only_if_worse("cookies-samesite-flag-invalid", result, order);
        }
        if !cookie.secure && hsts {
            result = only_if_worse(
                "cookies-without-secure-flag-but-protected-by-hsts",
                result,
                order,
            );
        } else if !cookie.secure {
            result = only_if_worse("cookies-without-secure-flag", result, order);
        }
        if anticsrf && cookie.same_site.is_none() {
            result = only_if_worse("cookies-anticsrf-without-samesite-flag", result, order);
        }
        if session && !cookie.secure && hsts {
            result = only_if_worse(
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                result,
                order,
            );
        } else if session && !cookie.secure {
            result = only_if_worse("cookies-session-without-secure-flag", result, order);
        }
        if session && !cookie.http_only {
            result = only_if_worse("cookies-session-without-httponly-flag", result, order);
        }
        if cookie.same_site.is_none() {
            missing_same_site = true;
        }
    }
    let result = result.unwrap_or(if missing_same_site {
        "cookies-secure-with-httponly-sessions"
    } else {
        "cookies-secure-with-httponly-sessions-and-samesite"
    });
    let pass = matches!(
        result,
        "cookies-not-found"
            | "cookies-secure-with-httponly-sessions-and-samesite"
            | "cookies-secure-with-httponly-sessions"
    );
    ("cookies", result, pass)
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

// ---------------------------------------------------------------------------------------------
// RFC 6265 section 5.1.1 cookie-date parsing (as in tough-cookie), in seconds since the epoch

/// Seconds since the epoch of a cookie date (RFC 6265 §5.1.1 algorithm), if it parses.
pub(crate) fn parse_cookie_date(s: &str) -> Option<i64> {
    fn digits(tok: &str, min: usize, max: usize, trailing_ok: bool) -> Option<i64> {
        let count = tok.bytes().take_while(|b| b.is_ascii_digit()).count();
        if count < min || count > max || (!trailing_ok && count != tok.len()) {
            return None;
        }
        tok[..count].parse().ok()
    }
    let is_delim = |c: char| matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~');
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for tok in s.split(is_delim).map(str::trim).filter(|t| !t.is_empty()) {
        if time.is_none() {
            let parts: Vec<&str> = tok.split(':').collect();
            if parts.len() == 3 {
                let h = digits(parts[0], 1, 2, false);
                let m = digits(parts[1], 1, 2, false);
                let sec = digits(parts[2], 1, 2, true);
                if let (Some(h), Some(m), Some(sec)) = (h, m, sec) {
                    time = Some((h, m, sec));
                    continue;
                }
            }
        }
        if day.is_none() {
            if let Some(d) = digits(tok, 1, 2, true) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            const MONTHS: [&str; 12] = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            let t: String = tok.chars().take(3).collect::<String>().to_lowercase();
            if let Some(m) = MONTHS.iter().position(|m| *m == t) {
                month = Some(m as i64 + 1);
                continue;
            }
        }
        if year.is_none() {
            if let Some(mut y) = digits(tok, 2, 4, true) {
                if (70..=99).contains(&y) {
                    y += 1900;
                } else if (0..=69).contains(&y) {
                    y += 2000;
                }
                year = Some(y);
            }
        }
    }
    let ((h, mi, sec), d, m, y) = (time?, day?, month?, year?);
    if !(1..=31).contains(&d) || y < 1601 || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // days from civil (Howard Hinnant)
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "'nonce-AAAAAAAAAAAAAAAAAAAAAA'";

    fn hardened_csp() -> String {
        format!(
            "default-src 'none'; script-src 'self' {NONCE}; style-src 'self' {NONCE}; img-src 'self'; \
             font-src 'self'; connect-src 'self'; manifest-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'; upgrade-insecure-requests"
        )
    }

    fn hardened() -> Vec<(String, String)> {
        let csp = hardened_csp();
        let raw: [(&str, &str); 8] = [
            ("Content-Security-Policy", csp.as_str()),
            (
                "Strict-Transport-Security",
                "max-age=31536000; includeSubDomains",
            ),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            (
                "Permissions-Policy",
                "camera=(), microphone=(), geolocation=()",
            ),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
        ];
        hdrs(&raw)
    }

    fn hdrs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `headers` with `name` replaced (or removed when `value` is None).
    fn with(
        mut headers: Vec<(String, String)>,
        name: &str,
        value: Option<&str>,
    ) -> Vec<(String, String)> {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            headers.push((name.to_string(), v.to_string()));
        }
        headers
    }

    fn run(
        rules: Ruleset,
        headers: &[(String, String)],
        https: bool,
        redirect: Option<bool>,
    ) -> Score {
        score(
            rules,
            &Input {
                headers,
                https,
                http_redirects_to_https: redirect,
                html: None,
            },
        )
    }

    fn result_of<'s>(s: &'s Score, test: &str) -> &'s TestResult {
        s.tests
            .iter()
            .find(|t| t.test == test)
            .unwrap_or_else(|| panic!("no test {test} in\n{s}"))
    }

    const BOTH: [Ruleset; 2] = [Ruleset::Classic, Ruleset::MdnV2];

    #[test]
    fn hardened_set_is_a_plus_under_both_rulesets() {
        let h = hardened();
        for (rules, expected) in [(Ruleset::Classic, 120), (Ruleset::MdnV2, 130)] {
            let s = run(rules, &h, true, Some(true));
            assert_eq!(s.grade, "A+", "{rules:?}\n{s}");
            assert!(s.score >= 100, "{rules:?}\n{s}");
            assert_eq!(s.score, expected, "{rules:?}\n{s}");
            assert!(s.tests.iter().all(|t| t.modifier >= 0), "{rules:?}\n{s}");
            assert_eq!(
                result_of(&s, "content-security-policy").result,
                "csp-implemented-with-no-unsafe-default-src-none"
            );
            assert_eq!(
                result_of(&s, "x-frame-options").result,
                "x-frame-options-implemented-via-csp"
            );
            assert_eq!(
                result_of(&s, "referrer-policy").result,
                "referrer-policy-private"
            );
        }
        let s = run(Ruleset::MdnV2, &h, true, Some(true));
        assert_eq!(
            result_of(&s, "cross-origin-resource-policy").result,
            "corp-implemented-with-same-origin"
        );
        let s = run(Ruleset::Classic, &h, true, Some(true));
        assert_eq!(
            result_of(&s, "x-xss-protection").result,
            "x-xss-protection-not-needed-due-to-csp"
        );
        assert_eq!(s.tests.len(), 12);
        assert_eq!(run(Ruleset::MdnV2, &h, true, Some(true)).tests.len(), 10);
    }

    #[test]
    fn bare_response_over_https() {
        let none: Vec<(String, String)> = Vec::new();
        for redirect in [None, Some(true)] {
            // classic: CSP -25, HSTS -20, XCTO -5, XFO -20, X-XSS-Protection -10
            let s = run(Ruleset::Classic, &none, true, redirect);
            assert_eq!((s.score, s.grade), (20, "F"), "{s}");
            // v2: CSP -25, HSTS -20, XCTO -5, XFO -20
            let s = run(Ruleset::MdnV2, &none, true, redirect);
            assert_eq!((s.score, s.grade), (30, "D"), "{s}");
        }
        let s = run(Ruleset::MdnV2, &none, true, Some(false));
        assert_eq!((s.score, s.grade), (10, "F"), "{s}");
    }

    #[test]
    fn csp_unsafe_inline_in_script_src_is_penalised() {
        let cases: [(&str, &str, i32); 6] = [
            (
                "default-src 'none'; script-src 'self' 'unsafe-inline'",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
            (
                "default-src 'self' 'unsafe-inline'",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
            (
                "default-src 'none'; script-src 'self' data:",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
            (
                "default-src 'none'; script-src https:",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
            // a nonce makes the analyzers ignore 'unsafe-inline' (mozilla/http-observatory#88, #277)
            (
                "default-src 'none'; script-src 'self' 'unsafe-inline' 'nonce-abc'",
                "csp-implemented-with-no-unsafe-default-src-none",
                10,
            ),
            // no script-src and no default-src: scripts are unrestricted
            (
                "img-src 'self'; object-src 'none'",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
        ];
        for rules in BOTH {
            for (csp, result, modifier) in cases {
                let h = with(hardened(), "Content-Security-Policy", Some(csp));
                let s = run(rules, &h, true, Some(true));
                let t = result_of(&s, "content-security-policy");
                assert_eq!(
                    (t.result.as_str(), t.modifier),
                    (result, modifier),
                    "{rules:?} {csp}\n{s}"
                );
            }
            // the penalty also forfeits all bonuses (100 - 20 = 80 < 90); in classic the weak CSP
            // no longer excuses the missing X-XSS-Protection either (-10 more)
            let h = with(
                hardened(),
                "Content-Security-Policy",
                Some("default-src 'none'; script-src 'unsafe-inline'"),
            );
            let s = run(rules, &h, true, Some(true));
            let expected = if rules == Ruleset::Classic {
                (70, "B")
            } else {
                (80, "B+")
            };
            assert_eq!((s.score, s.grade), expected, "{rules:?}\n{s}");
        }
    }

    #[test]
    fn csp_other_results() {
        let cases: [(&str, &str); 9] = [
            (
                "default-src 'none'; script-src 'self' 'unsafe-eval'",
                "csp-implemented-with-unsafe-eval",
            ),
            (
                "default-src 'self'; script-src 'self' http://cdn.example.com",
                "csp-implemented-with-insecure-scheme",
            ),
            (
                "default-src 'self'; img-src http://img.example.com",
                "csp-implemented-with-insecure-scheme-in-passive-content-only",
            ),
            (
                "default-src 'none'; style-src 'unsafe-inline'",
                "csp-implemented-with-unsafe-inline-in-style-src-only",
            ),
            ("default-src 'self'", "csp-implemented-with-no-unsafe"),
            (
                "default-src 'none' 'self'",
                "csp-implemented-with-no-unsafe",
            ),
            (
                "default-src 'none'; script-src 'strict-dynamic'",
                "csp-header-invalid",
            ),
            (
                "default-src 'none'; script-src 'self'; script-src 'none'",
                "csp-header-invalid",
            ),
            ("abc", "csp-header-invalid"),
        ];
        for rules in BOTH {
            for (csp, expected) in cases {
                let h = hdrs(&[("content-security-policy", csp)]);
                let s = run(rules, &h, true, None);
                assert_eq!(
                    result_of(&s, "content-security-policy").result,
                    expected,
                    "{rules:?} {csp}\n{s}"
                );
            }
            // strict-dynamic with a nonce drops host and scheme sources from script-src
            let h = hdrs(&[(
                "content-security-policy",
                "default-src 'none'; script-src 'strict-dynamic' 'nonce-x' https: http:",
            )]);
            let s = run(rules, &h, true, None);
            assert_eq!(
                result_of(&s, "content-security-policy").result,
                "csp-implemented-with-no-unsafe-default-src-none",
                "{rules:?}\n{s}"
            );
            // over plain http, http: sources are not flagged
            let h = hdrs(&[(
                "content-security-policy",
                "default-src 'self' http://cdn.example.com",
            )]);
            let s = run(rules, &h, false, None);
            assert_eq!(
                result_of(&s, "content-security-policy").result,
                "csp-implemented-with-no-unsafe"
            );
        }
        // only v2 lower-cases directive names and tolerates repeated report-uri
        let h = hdrs(&[(
            "content-security-policy",
            "DEFAULT-SRC 'none'; report-uri /a; report-uri /b",
        )]);
        let s = run(Ruleset::MdnV2, &h, true, None);
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-implemented-but-duplicate-directives"
        );
        assert_eq!(result_of(&s, "content-security-policy").modifier, 0);
        let s = run(Ruleset::Classic, &h, true, None);
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-header-invalid"
        );
        // v2: report-only is still not implemented
        let h = hdrs(&[("content-security-policy-report-only", "default-src 'none'")]);
        let s = run(Ruleset::MdnV2, &h, true, None);
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-not-implemented-but-reporting-enabled"
        );
        // v2: two policies are intersected; the weaker one does not widen the stricter one
        let h = hdrs(&[
            (
                "content-security-policy",
                "default-src 'none'; script-src 'self'",
            ),
            (
                "content-security-policy",
                "script-src 'self' 'unsafe-inline'",
            ),
        ]);
        let s = run(Ruleset::MdnV2, &h, true, None);
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-implemented-with-no-unsafe-default-src-none",
            "{s}"
        );
    }

    #[test]
    fn hsts_below_six_months_is_penalised() {
        let cases: [(&str, &str, i32); 5] = [
            (
                "max-age=86400",
                "hsts-implemented-max-age-less-than-six-months",
                -10,
            ),
            (
                "max-age=15551999; includeSubDomains",
                "hsts-implemented-max-age-less-than-six-months",
                -10,
            ),
            (
                "max-age=15552000",
                "hsts-implemented-max-age-at-least-six-months",
                0,
            ),
            ("includeSubDomains", "hsts-header-invalid", -20),
            (
                "max-age=31536000, max-age=31536000",
                "hsts-header-invalid",
                -20,
            ),
        ];
        for rules in BOTH {
            for (value, result, modifier) in cases {
                let h = with(hardened(), "Strict-Transport-Security", Some(value));
                let s = run(rules, &h, true, Some(true));
                let t = result_of(&s, "strict-transport-security");
                assert_eq!(
                    (t.result.as_str(), t.modifier),
                    (result, modifier),
                    "{rules:?} {value}\n{s}"
                );
            }
        }
    }

    #[test]
    fn hsts_over_plain_http_is_ignored() {
        for rules in BOTH {
            let with_hsts = run(rules, &hardened(), false, Some(false));
            let without = run(
                rules,
                &with(hardened(), "Strict-Transport-Security", None),
                false,
                Some(false),
            );
            let t = result_of(&with_hsts, "strict-transport-security");
            assert_eq!(
                (t.result.as_str(), t.modifier),
                ("hsts-not-implemented-no-https", -20)
            );
            assert_eq!(with_hsts, without, "{rules:?}");
        }
    }

    #[test]
    fn cookies() {
        let cases: [(&[&str], &str, &str); 9] = [
            // (Set-Cookie values, classic result, v2 result)
            (
                &["sessionid=a; Secure; HttpOnly; SameSite=Lax"],
                "cookies-secure-with-httponly-sessions-and-samesite",
                "cookies-secure-with-httponly-sessions-and-samesite",
            ),
            (
                &["sessionid=a; Secure; HttpOnly"],
                "cookies-secure-with-httponly-sessions",
                "cookies-secure-with-httponly-sessions",
            ),
            (
                &["sessionid=a; Secure; SameSite=Strict"],
                "cookies-session-without-httponly-flag",
                "cookies-session-without-httponly-flag",
            ),
            (
                &["sessionid=a; HttpOnly; SameSite=Lax"],
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                "cookies-session-without-secure-flag-but-protected-by-hsts",
            ),
            (
                &["theme=dark; SameSite=Lax"],
                "cookies-without-secure-flag-but-protected-by-hsts",
                "cookies-without-secure-flag-but-protected-by-hsts",
            ),
            (
                &["csrftoken=x; Secure"],
                "cookies-anticsrf-without-samesite-flag",
                "cookies-anticsrf-without-samesite-flag",
            ),
            // classic accepts only Lax/Strict; v2 accepts None when Secure
            (
                &["a=b; Secure; SameSite=None"],
                "cookies-samesite-flag-invalid",
                "cookies-secure-with-httponly-sessions-and-samesite",
            ),
            // classic: a valueless SameSite means Lax; v2 flags it on the raw header
            (
                &["a=b; Secure; SameSite"],
                "cookies-secure-with-httponly-sessions-and-samesite",
                "cookies-samesite-flag-invalid",
            ),
            // deletion cookies do not count
            (
                &["sessionid=; Max-Age=0"],
                "cookies-not-found",
                "cookies-not-found",
            ),
        ];
        for (cookies, classic, v2) in cases {
            let mut h = hardened();
            for c in cookies {
                h.push(("Set-Cookie".to_string(), c.to_string()));
            }
            for (rules, expected) in [(Ruleset::Classic, classic), (Ruleset::MdnV2, v2)] {
                let s = run(rules, &h, true, Some(true));
                assert_eq!(
                    result_of(&s, "cookies").result,
                    expected,
                    "{rules:?} {cookies:?}\n{s}"
                );
            }
        }
        // without HSTS (plain http) a session cookie lacking Secure costs 40
        let h = hdrs(&[("set-cookie", "PHPSESSID=1; HttpOnly")]);
        for rules in BOTH {
            let s = run(rules, &h, false, None);
            let t = result_of(&s, "cookies");
            assert_eq!(
                (t.result.as_str(), t.modifier),
                ("cookies-session-without-secure-flag", -40),
                "{rules:?}"
            );
        }
    }

    #[test]
    fn other_headers() {
        type Case = (
            &'static str,
            Option<&'static str>,
            &'static str,
            &'static str,
            i32,
        );
        let cases: [Case; 12] = [
            (
                "Referrer-Policy",
                Some("unsafe-url"),
                "referrer-policy",
                "referrer-policy-unsafe",
                -5,
            ),
            (
                "Referrer-Policy",
                Some("no-referrer, bogus"),
                "referrer-policy",
                "referrer-policy-private",
                5,
            ),
            (
                "Referrer-Policy",
                Some("bogus"),
                "referrer-policy",
                "referrer-policy-header-invalid",
                -5,
            ),
            (
                "Referrer-Policy",
                None,
                "referrer-policy",
                "referrer-policy-not-implemented",
                0,
            ),
            (
                "X-Content-Type-Options",
                None,
                "x-content-type-options",
                "x-content-type-options-not-implemented",
                -5,
            ),
            (
                "X-Content-Type-Options",
                Some("sniff"),
                "x-content-type-options",
                "x-content-type-options-header-invalid",
                -5,
            ),
            (
                "Access-Control-Allow-Origin",
                Some("*"),
                "cross-origin-resource-sharing",
                "cross-origin-resource-sharing-implemented-with-public-access",
                0,
            ),
            (
                "Access-Control-Allow-Origin",
                Some("https://app.example"),
                "cross-origin-resource-sharing",
                "cross-origin-resource-sharing-implemented-with-restricted-access",
                0,
            ),
            (
                "X-Frame-Options",
                None,
                "x-frame-options",
                "x-frame-options-implemented-via-csp",
                5,
            ),
            (
                "X-Frame-Options",
                Some("ALLOWALL"),
                "x-frame-options",
                "x-frame-options-implemented-via-csp",
                5,
            ),
            (
                "Strict-Transport-Security",
                None,
                "strict-transport-security",
                "hsts-not-implemented",
                -20,
            ),
            (
                "Content-Security-Policy",
                None,
                "content-security-policy",
                "csp-not-implemented",
                -25,
            ),
        ];
        for rules in BOTH {
            for (name, value, test, result, modifier) in cases {
                let h = with(hardened(), name, value);
                let s = run(rules, &h, true, Some(true));
                let t = result_of(&s, test);
                assert_eq!(
                    (t.result.as_str(), t.modifier),
                    (result, modifier),
                    "{rules:?} {name}: {value:?}\n{s}"
                );
            }
            // reflecting the probe origin with credentials is the -50 case
            let mut h = hardened();
            h.push((
                "Access-Control-Allow-Origin".into(),
                CORS_PROBE_ORIGIN.into(),
            ));
            h.push(("Access-Control-Allow-Credentials".into(), "true".into()));
            let s = run(rules, &h, true, Some(true));
            assert_eq!(result_of(&s, "cross-origin-resource-sharing").modifier, -50);
            // XFO without CSP frame-ancestors
            let csp = hardened_csp().replace("; frame-ancestors 'none'", "");
            let h = with(hardened(), "Content-Security-Policy", Some(&csp));
            let s = run(rules, &h, true, Some(true));
            assert_eq!(
                result_of(&s, "x-frame-options").result,
                "x-frame-options-sameorigin-or-deny"
            );
            let h = with(h, "X-Frame-Options", None);
            let s = run(rules, &h, true, Some(true));
            assert_eq!(result_of(&s, "x-frame-options").modifier, -20);
        }
        // no-referrer-when-downgrade: neutral in classic, unsafe in v2
        let h = with(
            hardened(),
            "Referrer-Policy",
            Some("no-referrer-when-downgrade"),
        );
        assert_eq!(
            result_of(&run(Ruleset::Classic, &h, true, None), "referrer-policy").modifier,
            0
        );
        assert_eq!(
            result_of(&run(Ruleset::MdnV2, &h, true, None), "referrer-policy").modifier,
            -5
        );
        // CORP (v2 only)
        for (v, r, m) in [
            ("same-site", "corp-implemented-with-same-site", 10),
            ("cross-origin", "corp-implemented-with-cross-origin", 0),
            ("nope", "corp-header-invalid", -5),
        ] {
            let h = with(hardened(), "Cross-Origin-Resource-Policy", Some(v));
            let s = run(Ruleset::MdnV2, &h, true, None);
            let t = result_of(&s, "cross-origin-resource-policy");
            assert_eq!((t.result.as_str(), t.modifier), (r, m));
        }
    }

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

    #[test]
    fn subresource_integrity() {
        let cases: [(&str, &str, i32); 7] = [
            ("<html><body><p>hi</p></body></html>", "sri-not-implemented-but-no-scripts-loaded", 0),
            ("<script src=\"/app.js\"></script>", "sri-not-implemented-but-all-scripts-loaded-from-secure-origin", 0),
            ("<script src='/app.js' integrity='sha384-x'></script>", "sri-implemented-and-all-scripts-loaded-securely", 5),
            ("<script src=\"https://cdn.example.net/x.js\"></script>", "sri-not-implemented-but-external-scripts-loaded-securely", -5),
            ("<SCRIPT SRC=https://cdn.example.net/x.js INTEGRITY=sha384-x></SCRIPT>", "sri-implemented-and-external-scripts-loaded-securely", 5),
            ("<script src=\"//cdn.example.net/x.js\"></script>", "sri-not-implemented-and-external-scripts-not-loaded-securely", -50),
            ("<!-- <script src=\"http://x/y.js\"></script> --><script>var a = '<script src=http://x>';</script>", "sri-not-implemented-but-all-scripts-loaded-from-secure-origin", 0),
        ];
        let h = with(hardened(), "Content-Type", Some("text/html; charset=utf-8"));
        for rules in BOTH {
            for (html, result, modifier) in cases {
                let s = score(
                    rules,
                    &Input {
                        headers: &h,
                        https: true,
                        http_redirects_to_https: Some(true),
                        html: Some(html),
                    },
                );
                let t = result_of(&s, "subresource-integrity");
                assert_eq!(
                    (t.result.as_str(), t.modifier),
                    (result, modifier),
                    "{rules:?} {html}\n{s}"
                );
            }
            let json = with(hardened(), "Content-Type", Some("application/json"));
            let s = score(
                rules,
                &Input {
                    headers: &json,
                    https: true,
                    http_redirects_to_https: None,
                    html: Some("<script src=//x></script>"),
                },
            );
            assert_eq!(
                result_of(&s, "subresource-integrity").result,
                "sri-not-implemented-response-not-html"
            );
        }
    }

    #[test]
    fn meta_http_equiv_csp_counts_for_html() {
        let h = hdrs(&[("Content-Type", "text/html")]);
        let html = "<head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\"></head>";
        for rules in BOTH {
            let s = score(
                rules,
                &Input {
                    headers: &h,
                    https: true,
                    http_redirects_to_https: None,
                    html: Some(html),
                },
            );
            assert_eq!(
                result_of(&s, "content-security-policy").result,
                "csp-implemented-with-no-unsafe-default-src-none",
                "{rules:?}\n{s}"
            );
        }
    }

    #[test]
    fn grade_chart_and_extra_credit() {
        let chart = [
            (130, "A+"),
            (100, "A+"),
            (99, "A"),
            (90, "A"),
            (89, "A-"),
            (85, "A-"),
            (84, "B+"),
            (80, "B+"),
            (79, "B"),
            (70, "B"),
            (69, "B-"),
            (65, "B-"),
            (64, "C+"),
            (60, "C+"),
            (59, "C"),
            (50, "C"),
            (49, "C-"),
            (45, "C-"),
            (44, "D+"),
            (40, "D+"),
            (39, "D"),
            (30, "D"),
            (29, "D-"),
            (25, "D-"),
            (24, "F"),
            (0, "F"),
            (-30, "F"),
        ];
        for (s, g) in chart {
            assert_eq!(grade_for(s), g, "{s}");
        }
        // -5 (XCTO missing) keeps the bonuses: 130 - 5 = 125 in v2
        let h = with(hardened(), "X-Content-Type-Options", None);
        assert_eq!(run(Ruleset::MdnV2, &h, true, Some(true)).score, 125);
        // -20 drops below 90, so the +30 of bonuses are discarded: 80
        let h = with(hardened(), "Strict-Transport-Security", None);
        assert_eq!(run(Ruleset::MdnV2, &h, true, Some(true)).score, 80);
        assert_eq!("v2".parse::<Ruleset>(), Ok(Ruleset::MdnV2));
        assert_eq!("Classic".parse::<Ruleset>(), Ok(Ruleset::Classic));
        assert!("x".parse::<Ruleset>().is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_cookie_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_cookie_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(parse_cookie_date("garbage"), None);
        assert_eq!(py_int(" 31_536_000 "), Some(31_536_000));
        assert_eq!(py_int("1__0"), None);
        assert_eq!(js_parse_int("12abc"), Some(12));
        assert_eq!(js_parse_int("abc"), None);
        assert_eq!(collate("'self'", "'nonce-x'"), Ordering::Greater);
        assert_eq!(decode_uri_component("%41b"), Ok("Ab".to_string()));
        assert!(decode_uri_component("%zz").is_err());
    }
}

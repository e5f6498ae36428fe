//! A scan against a saved report (`buttress audit --baseline REPORT.json`): what got worse.
//!
//! A baseline is a JSON report as `buttress audit URL --format json` writes it (or `--json
//! FILE`). [`Baseline::from_json`] reads one, refusing anything else with the reason and the fix
//! (not JSON, SARIF, a `--compare` report, a report of a newer format, a field missing or of the
//! wrong type); [`compare`] sets it beside a new [`Report`] of the same URL, check by check.
//!
//! | change | counts as a regression |
//! |---|---|
//! | the grade is lower, or the score is lower | yes |
//! | a check's verdict got worse: pass or info → warn or fail, warn → fail | yes |
//! | a check kept its verdict but lost points (e.g. CSP +10 → +5) | yes |
//! | a check of the baseline is missing from the new report | yes, unless [`RETIRED_CHECKS`] explains it |
//! | a check is new (not in the baseline) | no: listed; its points show in the score |
//! | a check is no longer tested (pass, warn or fail → info) | no: listed |
//! | a check got better | no: listed |
//!
//! "No longer tested" is not a regression because `info` means "not tested or not applicable"
//! (no cookies set, no `--active`): the site did not get weaker, the scan saw less. If that
//! costs points (a +5 cookie bonus gone), the lower score is a regression all the same.
//!
//! # Example
//!
//! ```
//! use buttress_audit::baseline::{compare, Baseline};
//! use buttress_audit::{judge, report, Failure, Observations, Page};
//!
//! let mut obs = Observations::failed("http://app.example/", vec![], Failure::Other(String::new()));
//! obs.main = Ok(Page { url: "http://app.example/".into(), status: 200, ..Page::default() });
//! let before = judge(&obs);
//! let saved = report::json(&before);
//!
//! // Later the site starts sending a version banner.
//! if let Ok(page) = &mut obs.main {
//!     page.headers.push(("server".into(), "nginx/1.25.3".into()));
//! }
//! let after = judge(&obs);
//!
//! let baseline = Baseline::from_json(&saved).unwrap();
//! let cmp = compare(&baseline, &after).unwrap();
//! assert!(cmp.regressed());
//! assert!(cmp.regressions().any(|c| c.id == "AUD-BAN-001"));
//! assert!(cmp.render().contains("AUD-BAN-001"));
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

use crate::judge::{grade_rank, Report, REPORT_FORMAT};
use crate::model::{check, Verdict};

/// Checks that an earlier version reported and this one no longer does, with why: a baseline
/// holding one of them is not charged for its absence. (Empty: no check has been retired yet.
/// A retired id is never reused.)
pub const RETIRED_CHECKS: &[(&str, &str)] = &[];

/// The largest baseline read (a report is a few tens of KiB).
pub const MAX_BASELINE_BYTES: u64 = 8 << 20;

/// Why a baseline cannot be used. The scan's exit code for all of these is 4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// The file is not JSON at all.
    #[error("the baseline is not JSON ({0}). Fix: give a report written by `buttress audit URL --format json -o FILE`")]
    NotJson(String),
    /// JSON, but not a single-site `buttress audit` report.
    #[error("the baseline is not a `buttress audit` JSON report: {0}. Fix: write one with `buttress audit URL --format json -o FILE`")]
    Incompatible(String),
    /// A report of a newer layout than this version reads.
    #[error("the baseline has report_format {found}, newer than this buttress reads ({REPORT_FORMAT}). Fix: upgrade buttress, or rewrite the baseline with this version")]
    NewerFormat {
        /// The baseline's `report_format`.
        found: u64,
    },
    /// A report of another site.
    #[error("the baseline is a report of {baseline}, not of {scanned}. Fix: compare a site with its own baseline, or rewrite it with `buttress audit {scanned} --format json -o FILE`")]
    OtherTarget {
        /// The baseline's `target`.
        baseline: String,
        /// The URL scanned now.
        scanned: String,
    },
}

/// One check of a baseline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BaselineFinding {
    /// Check id.
    pub id: String,
    /// Its verdict then.
    pub verdict: Verdict,
    /// Its points then.
    pub modifier: i32,
}

/// A saved report, as far as a comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// The URL it scanned.
    pub target: String,
    /// Its grade.
    pub grade: String,
    /// Its score.
    pub score: i32,
    /// Its findings, ids unique.
    pub findings: Vec<BaselineFinding>,
}

#[derive(Deserialize)]
struct Raw {
    target: String,
    grade: String,
    score: i32,
    findings: Vec<BaselineFinding>,
}

impl Baseline {
    /// Reads a JSON report. Accepts the reports of this version and of earlier ones (without
    /// `report_format`); refuses anything else with the reason.
    ///
    /// ```
    /// use buttress_audit::baseline::{Baseline, BaselineError};
    ///
    /// let b = Baseline::from_json(r#"{"target":"https://a.example/","grade":"A","score":90,
    ///     "findings":[{"id":"AUD-PP-001","verdict":"warn","modifier":-5}]}"#).unwrap();
    /// assert_eq!(b.findings[0].modifier, -5);
    /// let sarif = r#"{"version":"2.1.0","runs":[]}"#;
    /// assert!(matches!(Baseline::from_json(sarif), Err(BaselineError::Incompatible(m)) if m.contains("SARIF")));
    /// ```
    pub fn from_json(text: &str) -> Result<Baseline, BaselineError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| BaselineError::NotJson(e.to_string()))?;
        let Some(obj) = value.as_object() else {
            return Err(BaselineError::Incompatible(
                "it is not a JSON object".into(),
            ));
        };
        if obj.contains_key("runs") {
            return Err(BaselineError::Incompatible(
                "it is SARIF (--format sarif); a baseline is the JSON report".into(),
            ));
        }
        if obj.contains_key("left") && obj.contains_key("right") {
            return Err(BaselineError::Incompatible(
                "it is a --compare report of two sites; a baseline is the report of one".into(),
            ));
        }
        if obj.contains_key("environment") {
            return Err(BaselineError::Incompatible(
                "it is a `buttress check` report (deploy settings), not a scan".into(),
            ));
        }
        match obj.get("report_format") {
            None => {}
            Some(v) => match v.as_u64() {
                Some(n) if n <= u64::from(REPORT_FORMAT) && n > 0 => {}
                Some(n) if n > u64::from(REPORT_FORMAT) => {
                    return Err(BaselineError::NewerFormat { found: n })
                }
                _ => {
                    return Err(BaselineError::Incompatible(format!(
                        "report_format {v} is not a format number"
                    )))
                }
            },
        }
        let raw: Raw = serde_json::from_value(value)
            .map_err(|e| BaselineError::Incompatible(e.to_string()))?;
        if !is_grade(&raw.grade) {
            return Err(BaselineError::Incompatible(format!(
                "grade {:?} is not a grade (A+ … F)",
                raw.grade
            )));
        }
        let mut ids = HashSet::new();
        for f in &raw.findings {
            if !ids.insert(f.id.as_str()) {
                return Err(BaselineError::Incompatible(format!(
                    "check {} appears twice",
                    f.id
                )));
            }
        }
        Ok(Baseline {
            target: raw.target,
            grade: raw.grade.trim().to_ascii_uppercase(),
            score: raw.score,
            findings: raw.findings,
        })
    }

    /// Whether this baseline is a report of `url` (scheme and host compared without case,
    /// default ports and an empty path ignored, any user name and password left out).
    ///
    /// ```
    /// # let b = buttress_audit::baseline::Baseline::from_json(
    /// #     r#"{"target":"https://a.example/","grade":"A","score":90,"findings":[]}"#).unwrap();
    /// assert!(b.is_of("HTTPS://A.example:443"));
    /// assert!(!b.is_of("https://b.example/"));
    /// ```
    pub fn is_of(&self, url: &str) -> bool {
        same_target(&self.target, url)
    }

    /// [`Baseline::is_of`] as a result: [`BaselineError::OtherTarget`] names `url` without
    /// any user name and password.
    ///
    /// ```
    /// # let b = buttress_audit::baseline::Baseline::from_json(
    /// #     r#"{"target":"https://a.example/","grade":"A","score":90,"findings":[]}"#).unwrap();
    /// let e = b.check_target("https://user:pw@b.example/").unwrap_err();
    /// assert!(e.to_string().contains("https://b.example/") && !e.to_string().contains("pw"));
    /// ```
    pub fn check_target(&self, url: &str) -> Result<(), BaselineError> {
        if self.is_of(url) {
            Ok(())
        } else {
            Err(BaselineError::OtherTarget {
                baseline: self.target.clone(),
                scanned: canonical(url),
            })
        }
    }
}

fn is_grade(g: &str) -> bool {
    grade_rank(g) > 0 || g.trim().eq_ignore_ascii_case("F")
}

/// `url` in a canonical form for comparing targets: lowercase scheme and host, no user
/// information, no default port, `/` for an empty path.
fn canonical(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let mut host_port = host_port.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(p) = default_port {
        if let Some(h) = host_port.strip_suffix(p) {
            host_port = h.to_owned();
        }
    }
    let tail = if tail.is_empty() || tail.starts_with(['?', '#']) {
        format!("/{tail}")
    } else {
        tail.to_owned()
    };
    format!("{scheme}://{host_port}{tail}")
}

fn same_target(a: &str, b: &str) -> bool {
    canonical(a) == canonical(b)
}

/// What happened to one check between the baseline and the new report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// Worse verdict, or the same verdict with fewer points.
    Regressed,
    /// In the baseline, missing now, and not explained by [`RETIRED_CHECKS`].
    Gone,
    /// In the baseline, missing now, retired for this reason.
    Retired(&'static str),
    /// Not in the baseline.
    New,
    /// Tested then, `info` (not tested or not applicable) now.
    NoLongerTested,
    /// Better verdict, or the same verdict with more points.
    Improved,
}

impl ChangeKind {
    /// Whether this change fails the gate.
    pub fn is_regression(self) -> bool {
        matches!(self, ChangeKind::Regressed | ChangeKind::Gone)
    }

    fn label(self) -> &'static str {
        match self {
            ChangeKind::Regressed => "REGRESSED",
            ChangeKind::Gone => "GONE",
            ChangeKind::Retired(_) => "retired",
            ChangeKind::New => "new",
            ChangeKind::NoLongerTested => "untested",
            ChangeKind::Improved => "improved",
        }
    }
}

/// One check that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Check id.
    pub id: String,
    /// What passing means (empty for a check this version does not know).
    pub title: &'static str,
    /// What happened.
    pub kind: ChangeKind,
    /// Verdict and points in the baseline (`None`: not there).
    pub before: Option<(Verdict, i32)>,
    /// Verdict and points now (`None`: not there).
    pub after: Option<(Verdict, i32)>,
}

/// A new report set beside its baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The URL scanned.
    pub target: String,
    /// Grade then and now.
    pub grade: (String, &'static str),
    /// Score then and now.
    pub score: (i32, i32),
    /// Every check that changed, in the new report's order (then the ones gone).
    pub changes: Vec<Change>,
}

/// How bad a verdict is, for a check that was tested both times.
fn badness(v: Verdict) -> u8 {
    match v {
        Verdict::Pass | Verdict::Info => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 2,
    }
}

fn classify(before: (Verdict, i32), after: (Verdict, i32)) -> Option<ChangeKind> {
    let ((bv, bm), (av, am)) = (before, after);
    if av == Verdict::Info && bv != Verdict::Info {
        return Some(ChangeKind::NoLongerTested);
    }
    match badness(av).cmp(&badness(bv)) {
        std::cmp::Ordering::Greater => Some(ChangeKind::Regressed),
        std::cmp::Ordering::Less => Some(ChangeKind::Improved),
        std::cmp::Ordering::Equal => match am.cmp(&bm) {
            std::cmp::Ordering::Less => Some(ChangeKind::Regressed),
            std::cmp::Ordering::Greater => Some(ChangeKind::Improved),
            // info → pass is a check now tested and passing.
            std::cmp::Ordering::Equal if bv != av => Some(ChangeKind::Improved),
            std::cmp::Ordering::Equal => None,
        },
    }
}

/// Compares `report` with `baseline`, which must be a report of the same URL.
///
/// ```
/// use buttress_audit::baseline::{compare, Baseline, BaselineError};
/// use buttress_audit::{judge, report, Failure, Observations};
///
/// let down = judge(&Observations::failed("https://a.example/", vec![], Failure::Connect("refused".into())));
/// let saved = Baseline::from_json(&report::json(&down)).unwrap();
/// assert!(!compare(&saved, &down).unwrap().regressed());
///
/// let other = judge(&Observations::failed("https://b.example/", vec![], Failure::Connect("refused".into())));
/// assert!(matches!(compare(&saved, &other), Err(BaselineError::OtherTarget { .. })));
/// ```
///
/// # Errors
/// [`BaselineError::OtherTarget`] when the baseline scanned another URL.
pub fn compare(baseline: &Baseline, report: &Report) -> Result<Comparison, BaselineError> {
    compare_with(baseline, report, RETIRED_CHECKS)
}

fn compare_with(
    baseline: &Baseline,
    report: &Report,
    retired: &[(&str, &'static str)],
) -> Result<Comparison, BaselineError> {
    baseline.check_target(&report.target)?;
    let mut changes = Vec::new();
    for f in &report.findings {
        let after = (f.verdict, f.modifier);
        let kind = match baseline.findings.iter().find(|b| b.id == f.id) {
            None => Some((ChangeKind::New, None)),
            Some(b) => {
                let before = (b.verdict, b.modifier);
                classify(before, after).map(|k| (k, Some(before)))
            }
        };
        if let Some((kind, before)) = kind {
            changes.push(Change {
                id: f.id.to_owned(),
                title: f.title,
                kind,
                before,
                after: Some(after),
            });
        }
    }
    for b in &baseline.findings {
        if report.finding(&b.id).is_some() {
            continue;
        }
        let kind = match retired.iter().find(|(id, _)| *id == b.id) {
            Some((_, why)) => ChangeKind::Retired(why),
            None => ChangeKind::Gone,
        };
        changes.push(Change {
            id: b.id.clone(),
            title: check(&b.id).map_or("", |c| c.title),
            kind,
            before: Some((b.verdict, b.modifier)),
            after: None,
        });
    }
    Ok(Comparison {
        target: report.target.clone(),
        grade: (baseline.grade.clone(), report.grade),
        score: (baseline.score, report.score),
        changes,
    })
}

impl Comparison {
    /// Whether the grade is lower than the baseline's.
    pub fn grade_regressed(&self) -> bool {
        grade_rank(self.grade.1) < grade_rank(&self.grade.0)
    }

    /// Whether the score is lower than the baseline's.
    pub fn score_regressed(&self) -> bool {
        self.score.1 < self.score.0
    }

    /// The checks that got worse (or went missing unexplained).
    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.kind.is_regression())
    }

    /// Whether anything regressed: grade, score, or a check.
    pub fn regressed(&self) -> bool {
        self.grade_regressed() || self.score_regressed() || self.regressions().next().is_some()
    }

    /// How many regressions: the grade, the score and each check that got worse count one each.
    pub fn regression_count(&self) -> usize {
        usize::from(self.grade_regressed())
            + usize::from(self.score_regressed())
            + self.regressions().count()
    }

    /// The comparison for people: a line for the grade and score, one per changed check
    /// (regressions first), and a verdict line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "against the baseline: grade {} → {}, score {} → {}",
            self.grade.0, self.grade.1, self.score.0, self.score.1
        );
        if self.grade_regressed() {
            let _ = writeln!(
                out,
                "  {:<10} {:<13} {} → {}",
                "REGRESSED", "grade", self.grade.0, self.grade.1
            );
        }
        if self.score_regressed() {
            let _ = writeln!(
                out,
                "  {:<10} {:<13} {} → {}",
                "REGRESSED", "score", self.score.0, self.score.1
            );
        }
        let mut ordered: Vec<&Change> = self.regressions().collect();
        ordered.extend(self.changes.iter().filter(|c| !c.kind.is_regression()));
        for c in ordered {
            let show = |s: Option<(Verdict, i32)>, missing: &str| match s {
                Some((v, m)) => format!("{v} {m:+}"),
                None => missing.to_owned(),
            };
            let _ = write!(
                out,
                "  {:<10} {:<13} {} → {}",
                c.kind.label(),
                c.id,
                show(c.before, "(not in the baseline)"),
                show(c.after, "(not in this report)"),
            );
            if !c.title.is_empty() {
                let _ = write!(out, "  {}", c.title);
            }
            if let ChangeKind::Retired(why) = c.kind {
                let _ = write!(out, " ({why})");
            }
            out.push('\n');
        }
        let new = self
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::New)
            .count();
        if self.score_regressed() && new > 0 {
            let _ = writeln!(
                out,
                "  note: {new} check(s) are new since the baseline; if they explain the lower score, rewrite the baseline"
            );
        }
        match self.regression_count() {
            0 => out.push_str("no regression against the baseline\n"),
            n => {
                let _ = writeln!(out, "{n} regression(s) against the baseline");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;

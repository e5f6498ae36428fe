//! Reports: a terminal table, JSON, SARIF 2.1.0, a self-contained HTML page, and two reports
//! side by side (`--compare`).
//!
//! # Example
//!
//! ```
//! use buttress_audit::{judge, report, Failure, Observations};
//!
//! let r = judge(&Observations::failed("https://down.invalid/", vec![], Failure::Connect("refused".into())));
//! let json: serde_json::Value = serde_json::from_str(&report::json(&r)).unwrap();
//! assert_eq!(json["grade"], "F");
//! assert!(report::table(&r, false).contains("AUD-NET-001"));
//! assert!(report::html(&r).contains("<svg"));
//! ```

mod html;
mod sarif;
mod text;

use std::fmt::Write as _;

use serde::Serialize;

use crate::judge::Report;
use crate::model::{Verdict, CHECKS};

pub use html::{html, html_compare};
pub use sarif::sarif;
use text::visible;

fn paint(colour: bool, v: Verdict, text: &str) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match v {
        Verdict::Pass => "32",
        Verdict::Info => "2",
        Verdict::Warn => "33",
        Verdict::Fail => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn grade_verdict(grade: &str) -> Verdict {
    match grade.chars().next() {
        Some('A') => Verdict::Pass,
        Some('B' | 'C') => Verdict::Warn,
        _ => Verdict::Fail,
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The terminal table: one line per check, the evidence under it, and the fix for every warn
/// and fail. `colour` adds ANSI colours (use it when standard output is a terminal). Control
/// and bidi characters from the site are shown as `\u{1b}`-style escapes, never sent raw.
pub fn table(r: &Report, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "buttress audit {}", visible(&r.target));
    if let Some(u) = &r.final_url {
        if u != &r.target {
            let _ = writeln!(out, "  page judged: {}", visible(u));
        }
    }
    let (fail, warn, pass, info) = r.counts();
    let grade = paint(
        colour,
        grade_verdict(r.grade),
        &format!("grade {}", r.grade),
    );
    let _ = write!(out, "{grade}  score {}", r.score);
    if let Some(o) = &r.observatory {
        let _ = write!(
            out,
            "  (Observatory {} rules on the same responses: {} {})",
            o.ruleset, o.grade, o.score
        );
    }
    let _ = writeln!(
        out,
        "\n{fail} fail, {warn} warn, {pass} pass, {info} info; {} request(s)\n",
        r.requests
    );
    let _ = writeln!(
        out,
        "{:<13} {:<10} {:<7} {:>6}  {:<4}  CHECK",
        "ID", "LAYER", "VERDICT", "POINTS", "FROM"
    );
    for f in &r.findings {
        let verdict = paint(colour, f.verdict, &format!("{:<7}", f.verdict.as_str()));
        let from = if f.source == "observatory" {
            "obs"
        } else {
            "ours"
        };
        let _ = writeln!(
            out,
            "{:<13} {:<10} {verdict} {:>+6}  {from:<4}  {}",
            f.id,
            f.layer.name(),
            f.modifier,
            f.title
        );
        if !f.evidence.is_empty() {
            let _ = writeln!(out, "{:<13} {}", "", clip(&visible(&f.evidence), 150));
        }
        if matches!(f.verdict, Verdict::Warn | Verdict::Fail) && !f.fix.is_empty() {
            let _ = writeln!(out, "{:<13} fix: {}", "", clip(&visible(&f.fix), 150));
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(out, "\nnotes:");
        for n in &r.notes {
            let _ = writeln!(out, "  - {}", visible(n));
        }
    }
    let _ = writeln!(
        out,
        "\nFROM obs: same check and modifier as Mozilla HTTP Observatory (MDN v2); ours: this scanner alone."
    );
    out
}

/// The report as pretty JSON: top-level `grade`, `score`, `findings` (each with `id`,
/// `verdict`, `evidence`, `fix`, `modifier`, `source`) and more.
/// Control and bidi characters in strings are written as `\u` escapes: the data is the site's,
/// the bytes are safe on a terminal.
pub fn json(r: &Report) -> String {
    text::json(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// One row of a side-by-side comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompareRow {
    /// Check id.
    pub id: &'static str,
    /// What passing means.
    pub title: &'static str,
    /// Verdict on the left site.
    pub left: Verdict,
    /// Verdict on the right site.
    pub right: Verdict,
    /// Whether the verdicts differ.
    pub differs: bool,
}

/// Check-by-check verdicts of two reports, in catalogue order.
pub fn compare_rows(a: &Report, b: &Report) -> Vec<CompareRow> {
    CHECKS
        .iter()
        .filter_map(|c| {
            let l = a.finding(c.id)?.verdict;
            let r = b.finding(c.id)?.verdict;
            Some(CompareRow {
                id: c.id,
                title: c.title,
                left: l,
                right: r,
                differs: l != r,
            })
        })
        .collect()
}

/// Two reports side by side: both grades, then every check with both verdicts; `≠` marks a
/// difference. Control and bidi characters are shown escaped, as in [`table`].
pub fn compare_table(a: &Report, b: &Report, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "buttress audit --compare");
    let _ = writeln!(
        out,
        "  left:  {}  grade {}  score {}",
        visible(&a.target),
        a.grade,
        a.score
    );
    let _ = writeln!(
        out,
        "  right: {}  grade {}  score {}",
        visible(&b.target),
        b.grade,
        b.score
    );
    let rows = compare_rows(a, b);
    let _ = writeln!(
        out,
        "{} of {} checks differ\n",
        rows.iter().filter(|r| r.differs).count(),
        rows.len()
    );
    let _ = writeln!(out, "   {:<13} {:<7} {:<7} CHECK", "ID", "LEFT", "RIGHT");
    let _ = writeln!(
        out,
        "   {:<13} {:<7} {:<7} letter grade",
        "grade", a.grade, b.grade
    );
    for r in rows {
        let mark = if r.differs { "≠" } else { " " };
        let _ = writeln!(
            out,
            " {mark} {:<13} {} {} {}",
            r.id,
            paint(colour, r.left, &format!("{:<7}", r.left.as_str())),
            paint(colour, r.right, &format!("{:<7}", r.right.as_str())),
            r.title
        );
    }
    out
}

/// Two reports side by side as JSON: `left`, `right` (each the full report) and `checks`.
pub fn compare_json(a: &Report, b: &Report) -> String {
    let doc = serde_json::json!({
        "left": a,
        "right": b,
        "checks": compare_rows(a, b),
    });
    text::json(&doc).unwrap_or_default()
}

//! A self-contained HTML page: inline CSS, an inline SVG of the layers (green, amber, red),
//! and every finding. No script, no external resource.

use std::fmt::Write as _;

use crate::judge::Report;
use crate::model::{Layer, Verdict};
use crate::report::compare_rows;

/// Text as HTML: markup characters as references, control and bidi characters as visible
/// `\u{..}` escapes (they would reorder or hide evidence on the page, or act on a terminal if
/// the page is printed to one).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => super::text::push_visible(&mut out, c),
        }
    }
    out
}

fn fill(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "#2e7d32",
        Verdict::Warn => "#f9a825",
        Verdict::Fail => "#c62828",
        Verdict::Info => "#9e9e9e",
    }
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d1d1f}
h1{margin:.2rem 0}h2{margin-top:2rem}.grade{display:inline-block;font-size:2.4rem;font-weight:700;color:#fff;border-radius:.5rem;padding:.1rem 1rem;margin-right:1rem}
.meta{color:#555}table{border-collapse:collapse;width:100%;margin-top:1rem}th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #e4e4e4}
th{background:#f5f5f5}.pill{display:inline-block;min-width:3.2rem;text-align:center;color:#fff;border-radius:1rem;padding:0 .5rem;font-size:.85rem}
.pass{background:#2e7d32}.warn{background:#f9a825;color:#222}.fail{background:#c62828}.info{background:#9e9e9e}
.ev{font-family:ui-monospace,monospace;font-size:.82rem;word-break:break-all;color:#333}.fix{font-size:.85rem;color:#6d4c00}.id{font-family:ui-monospace,monospace;white-space:nowrap}
.diff{background:#fff8e1}.layers{display:flex;gap:2rem;flex-wrap:wrap}.layers>div{flex:1 1 0;min-width:22rem}svg{max-width:100%;height:auto}";

/// The SVG picture: the layers as courses of a wall, outermost at the top, each coloured by its
/// worst verdict, with counts.
fn svg(r: &Report) -> String {
    let row = 44;
    let width = 520;
    let height = row * Layer::ALL.len() as i32 + 40;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"layers of {}\">",
        esc(&r.target)
    );
    let _ = write!(
        s,
        "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"700\" fill=\"#1d1d1f\">The request's way in, outermost first</text>"
    );
    for (i, layer) in Layer::ALL.iter().enumerate() {
        let y = 34 + i as i32 * row;
        let v = r.layer_verdict(*layer);
        let inset = (i as i32) * 12;
        let count = |x| {
            r.findings
                .iter()
                .filter(|f| f.layer == *layer && f.verdict == x)
                .count()
        };
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" rx=\"6\" fill=\"{}\"/>",
            10 + inset,
            width - 20 - 2 * inset,
            row - 6,
            fill(v)
        );
        let text_fill = if v == Verdict::Warn { "#222" } else { "#fff" };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"15\" font-weight=\"600\" fill=\"{text_fill}\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"end\" fill=\"{text_fill}\">{} fail · {} warn · {} pass</text>",
            22 + inset,
            y + 24,
            esc(layer.name()),
            width - 22 - inset,
            y + 24,
            count(Verdict::Fail),
            count(Verdict::Warn),
            count(Verdict::Pass)
        );
    }
    s.push_str("</svg>");
    s
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    )
}

fn grade_badge(grade: &str) -> String {
    let colour = match grade.chars().next() {
        Some('A') => "#2e7d32",
        Some('B' | 'C') => "#e09000",
        _ => "#c62828",
    };
    format!(
        "<span class=\"grade\" style=\"background:{colour}\">{}</span>",
        esc(grade)
    )
}

fn summary(r: &Report) -> String {
    let (fail, warn, pass, info) = r.counts();
    let mut s = format!(
        "<div>{}<h1 style=\"display:inline\">{}</h1><p class=\"meta\">score {} · {fail} fail · {warn} warn · {pass} pass · {info} info · {} request(s)",
        grade_badge(r.grade),
        esc(&r.target),
        r.score,
        r.requests
    );
    if let Some(o) = &r.observatory {
        let _ = write!(
            s,
            " · Mozilla Observatory ({}) on the same responses: {} {}",
            o.ruleset,
            esc(o.grade),
            o.score
        );
    }
    s.push_str("</p></div>");
    s
}

fn findings_table(r: &Report) -> String {
    let mut s = String::from(
        "<table><thead><tr><th>Check</th><th>Verdict</th><th>Points</th><th>What we saw, and the fix</th></tr></thead><tbody>",
    );
    for f in &r.findings {
        let from = if f.source == "observatory" {
            "shared with Observatory"
        } else {
            "ours alone"
        };
        let _ = write!(
            s,
            "<tr><td><span class=\"id\">{}</span><br>{}<br><small class=\"meta\">{} · {from}</small></td><td><span class=\"pill {}\">{}</span></td><td>{:+}</td><td><div class=\"ev\">{}</div>",
            esc(f.id),
            esc(f.title),
            esc(f.layer.name()),
            f.verdict.as_str(),
            f.verdict.as_str(),
            f.modifier,
            esc(&f.evidence)
        );
        if !f.fix.is_empty() {
            let _ = write!(s, "<div class=\"fix\">Fix: {}</div>", esc(&f.fix));
        }
        s.push_str("</td></tr>");
    }
    s.push_str("</tbody></table>");
    if !r.notes.is_empty() {
        s.push_str("<h2>Notes</h2><ul>");
        for n in &r.notes {
            let _ = write!(s, "<li>{}</li>", esc(n));
        }
        s.push_str("</ul>");
    }
    s
}

/// One report as a page.
pub fn html(r: &Report) -> String {
    let mut s = head(&format!("buttress audit: {} ({})", r.target, r.grade));
    s.push_str(&summary(r));
    s.push_str("<div class=\"layers\">");
    s.push_str(&svg(r));
    s.push_str("</div><h2>Findings</h2>");
    s.push_str(&findings_table(r));
    s.push_str("<p class=\"meta\">Points: checks shared with Mozilla HTTP Observatory carry its modifier; checks of ours alone only take points. Bonuses count only if penalties leave 90 or more.</p></body></html>\n");
    s
}

/// Two reports on one page: both pictures, the check-by-check table, then each report.
pub fn html_compare(a: &Report, b: &Report) -> String {
    let mut s = head(&format!("buttress audit: {} vs {}", a.target, b.target));
    s.push_str("<div class=\"layers\">");
    for r in [a, b] {
        let _ = write!(s, "<div>{}{}</div>", summary(r), svg(r));
    }
    s.push_str("</div><h2>Check by check</h2><table><thead><tr><th>Check</th>");
    let _ = write!(
        s,
        "<th>{} ({})</th><th>{} ({})</th></tr></thead><tbody>",
        esc(&a.target),
        esc(a.grade),
        esc(&b.target),
        esc(b.grade)
    );
    for row in compare_rows(a, b) {
        let _ = write!(
            s,
            "<tr{}><td><span class=\"id\">{}</span> {}</td><td><span class=\"pill {}\">{}</span></td><td><span class=\"pill {}\">{}</span></td></tr>",
            if row.differs { " class=\"diff\"" } else { "" },
            row.id,
            esc(row.title),
            row.left.as_str(),
            row.left.as_str(),
            row.right.as_str(),
            row.right.as_str()
        );
    }
    s.push_str("</tbody></table>");
    for r in [a, b] {
        let _ = write!(s, "<h2>{}</h2>", esc(&r.target));
        s.push_str(&findings_table(r));
    }
    s.push_str("</body></html>\n");
    s
}

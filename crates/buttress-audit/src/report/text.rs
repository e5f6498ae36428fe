//! Text from the scanned site made safe to show. A site controls its headers, bodies, form
//! fields and redirects, hence much of a finding's evidence, and `&#27;` in its HTML decodes
//! to a real ESC: printed raw, `ESC]52;…BEL` would write the reader's clipboard and
//! `ESC[1A ESC[2K` erase a `fail` line above it, and bidirectional controls reorder what is
//! shown.
//!
//! The renderers for people (terminal tables, HTML) show each such character as a visible
//! `\u{1b}`. JSON and SARIF keep the data as it came, but write those characters as `\u001b`
//! escapes, so no raw control byte reaches a terminal from them either.

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter, Serializer};

/// Whether a terminal or a bidi-aware viewer acts on `c` instead of showing it: C0 and C1
/// controls, DEL, and the bidirectional formatting characters (marks, embeddings,
/// overrides, isolates).
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every [hidden](is_hidden) character written as a visible `\u{..}` escape.
pub(crate) fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_visible(&mut out, c);
    }
    out
}

/// Pushes `c`, or its visible `\u{..}` escape if it is [hidden](is_hidden).
pub(crate) fn push_visible(out: &mut String, c: char) {
    if is_hidden(c) {
        out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
    } else {
        out.push(c);
    }
}

/// serde_json's pretty printer, but hidden characters in strings are `\uXXXX` escapes
/// (serde_json escapes only C0 controls itself).
struct SafeJson<'a>(PrettyFormatter<'a>);

impl Formatter for SafeJson<'_> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|(_, c)| is_hidden(*c)) {
            w.write_all(&rest.as_bytes()[..i])?;
            // every hidden character is in the Basic Multilingual Plane: one \u escape
            write!(w, "\\u{:04x}", u32::from(c))?;
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// `value` as pretty JSON (two-space indent, as `serde_json::to_string_pretty`) with hidden
/// characters escaped.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, SafeJson(PrettyFormatter::new()));
    value.serialize(&mut ser)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report;
    use crate::{judge, Failure, Observations};

    /// What a hostile site can put in the evidence: an OSC 52 clipboard write, cursor up and
    /// erase line, a C1 CSI, DEL, and bidi overrides, isolates and marks.
    const HOSTILE: &str = "x\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[1A\u{1b}[2K\u{9b}31m\u{7f}\r\n\t\
                           \u{202e}gpj.exe\u{202c}\u{2067}\u{2069}\u{200f}\u{200e}\u{61c}y";

    fn hostile_report(target: &str) -> crate::Report {
        let mut r = judge(&Observations::failed(
            target,
            vec![],
            Failure::Connect("refused".into()),
        ));
        for f in &mut r.findings {
            f.evidence = format!("evidence {HOSTILE}");
            f.fix = format!("fix {HOSTILE}");
        }
        r.final_url = Some(format!("http://final.example/{HOSTILE}"));
        r.notes.push(format!("note {HOSTILE}"));
        r
    }

    fn assert_shown(out: &str, what: &str) {
        let hidden: Vec<char> = out.chars().filter(|&c| c != '\n' && is_hidden(c)).collect();
        assert!(hidden.is_empty(), "{what}: {hidden:?}");
        assert!(out.contains("\\u{1b}]52;c;cm0gLXJmIH4=\\u{7}"), "{what}");
        assert!(out.contains("\\u{202e}gpj.exe\\u{202c}"), "{what}");
    }

    #[test]
    fn tables_and_html_show_control_and_bidi_characters() {
        let a = hostile_report(&format!("http://a.example/{HOSTILE}"));
        let b = hostile_report("http://b.example/");
        assert_shown(&report::table(&a, false), "table");
        assert_shown(&report::compare_table(&a, &b, false), "compare table");
        assert_shown(&report::html(&a), "html");
        assert_shown(&report::html_compare(&a, &b), "html compare");
        // In colour, the only ESCs are our own SGR codes (ESC [ digits/; m).
        let coloured = report::table(&a, true);
        for (i, _) in coloured.match_indices('\u{1b}') {
            let code: String = coloured[i + 1..]
                .chars()
                .take_while(|&c| c != 'm')
                .collect();
            assert!(
                code.starts_with('[') && code[1..].chars().all(|c| c.is_ascii_digit() || c == ';'),
                "{code:?}"
            );
        }
        assert_eq!(visible("plain ü → ok"), "plain ü → ok");
    }

    #[test]
    fn json_and_sarif_keep_the_data_with_every_hidden_character_escaped() {
        let r = hostile_report("http://a.example/");
        for (what, out) in [("json", report::json(&r)), ("sarif", report::sarif(&r))] {
            assert!(
                !out.chars().any(|c| c != '\n' && is_hidden(c)),
                "{what}: {out}"
            );
            assert!(
                out.contains("\\u001b]52;c;") && out.contains("\\u202e"),
                "{what}"
            );
            let v: serde_json::Value = serde_json::from_str(&out).expect(what);
            let text = if what == "json" {
                v["findings"][0]["evidence"].as_str().map(str::to_owned)
            } else {
                v["runs"][0]["results"][0]["message"]["text"]
                    .as_str()
                    .map(str::to_owned)
            };
            assert!(
                text.is_some_and(|t| t.contains(HOSTILE)),
                "{what}: data kept"
            );
        }
        let plain = serde_json::json!({"a": [1, "b\"\\"], "c": {}});
        assert_eq!(json(&plain).ok(), serde_json::to_string_pretty(&plain).ok());
    }
}

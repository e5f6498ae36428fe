//! Just enough HTML for a scanner: forms with their fields, same-site links, and the text of a
//! page for leak patterns.
//!
//! Hand-written on purpose: the scanner needs start and end tags with attributes, nothing of
//! the tree (no implied end tags, no scripting, no CSS selectors). A full HTML5 parser
//! (html5ever via `scraper`) would add a dozen crates and a long build for that, and the
//! Observatory module already reads `<meta>` and `<script>` the same way. The tokenizer never
//! panics on any input (it is fuzzed through [`forms`]) and treats the raw-text elements
//! (`script`, `style`, `textarea`, `title`) as browsers do so that markup inside a script is
//! not mistaken for a form.
//!
//! A scanned site controls every byte of its pages, so the work is linear in the page whatever
//! it holds: a character reference ends within [`MAX_REFERENCE`] bytes, a tag keeps its first
//! [`MAX_ATTRIBUTES`] attributes, a raw-text element's end is found without copying the rest of
//! the page, and [`links`] keeps the first [`MAX_LINKS`] distinct links of a page.
//!
//! # Example
//!
//! ```
//! let page = r#"<form method=post action="/t"><input type=hidden name=csrf_token value=x>
//!               <input name=title></form><a href="/next">n</a>"#;
//! let forms = buttress_audit::html::forms(page);
//! assert_eq!(forms[0].method, "post");
//! assert!(forms[0].has_token());
//! assert_eq!(buttress_audit::html::links(page), vec!["/next".to_owned()]);
//! ```

use std::collections::HashSet;

/// How many bytes after its `&` the `;` of a character reference may be (`&#1114111;` has it
/// at 9): it is looked for no further, so a page of `&&&…` decodes in linear time.
pub const MAX_REFERENCE: usize = 10;

/// Attributes kept per tag: the first ones (a repeated name is ignored, as browsers do); the
/// rest are skipped. Bounds the duplicate check of a tag with thousands of attributes.
pub const MAX_ATTRIBUTES: usize = 256;

/// Distinct links [`links`] returns for one page (the first ones in document order). The
/// scanner reads a handful of pages; a page with more links than this gains it nothing.
pub const MAX_LINKS: usize = 1000;

/// A tag as the tokenizer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Start(String, Vec<(String, String)>),
    End(String),
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes the named entities HTML uses in attributes and numeric references.
fn decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        // A reference is `&`, a name of letters, digits and `#`, then `;` within MAX_REFERENCE.
        let name_len = rest.as_bytes()[1..]
            .iter()
            .take(MAX_REFERENCE)
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'#')
            .count();
        let end = Some(name_len + 1)
            .filter(|&e| e <= MAX_REFERENCE && rest.as_bytes().get(e) == Some(&b';'));
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let ch = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                    u32::from_str_radix(&ent[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if ent.starts_with('#') => ent[1..].parse::<u32>().ok().and_then(char::from_u32),
                _ => None,
            };
            ch.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where the raw text of element `name` that starts at `from` ends: the next `</name` (any
/// case) followed by a space, `/` or `>`, as browsers end it; `html.len()` if none. Looks at
/// each `</` once and copies nothing.
fn raw_text_end(html: &str, from: usize, name: &str) -> usize {
    let b = html.as_bytes();
    let name = name.as_bytes();
    let mut k = from;
    while let Some(p) = html.get(k..).and_then(|s| s.find("</")) {
        let at = k + p;
        let tag = at + 2;
        let after = tag + name.len();
        if b.get(tag..after)
            .is_some_and(|t| t.eq_ignore_ascii_case(name))
            && b.get(after)
                .is_some_and(|&c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'/' | b'>'))
        {
            return at;
        }
        k = tag;
    }
    html.len()
}

/// Adds an attribute to a tag's unless its name is already there (the first wins, as in
/// browsers) or the tag has [`MAX_ATTRIBUTES`]. Names are looked up in `names` once a tag has
/// more than a few attributes, so the check stays cheap on tags with hundreds.
fn add_attribute(
    attrs: &mut Vec<(String, String)>,
    names: &mut HashSet<String>,
    name: String,
    value: String,
) {
    const SCAN: usize = 8;
    if attrs.len() >= MAX_ATTRIBUTES {
        return;
    }
    let repeated = if attrs.len() <= SCAN {
        attrs.iter().any(|(a, _)| *a == name)
    } else {
        names.contains(&name)
    };
    if repeated {
        return;
    }
    if attrs.len() >= SCAN {
        if names.is_empty() {
            names.extend(attrs.iter().map(|(a, _)| a.clone()));
        }
        names.insert(name.clone());
    }
    attrs.push((name, value));
}

fn tokens(html: &str) -> Vec<Token> {
    let b = html.as_bytes();
    let n = b.len();
    let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c);
    let find = |from: usize, pat: &str| -> Option<usize> {
        html.get(from..).and_then(|s| s.find(pat)).map(|p| from + p)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        if b[i..].starts_with(b"<!--") {
            i = find(i + 4, "-->").map_or(n, |p| p + 3);
            continue;
        }
        if i + 1 < n && matches!(b[i + 1], b'!' | b'?') {
            i = find(i, ">").map_or(n, |p| p + 1);
            continue;
        }
        let end_tag = i + 1 < n && b[i + 1] == b'/';
        let name_start = if end_tag { i + 2 } else { i + 1 };
        if name_start >= n || !b[name_start].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let mut j = name_start;
        while j < n && !ws(b[j]) && b[j] != b'/' && b[j] != b'>' {
            j += 1;
        }
        let name = String::from_utf8_lossy(&b[name_start..j]).to_ascii_lowercase();
        if end_tag {
            out.push(Token::End(name));
            i = find(j, ">").map_or(n, |p| p + 1);
            continue;
        }
        let mut attrs: Vec<(String, String)> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        loop {
            while j < n && (ws(b[j]) || b[j] == b'/') {
                j += 1;
            }
            if j >= n {
                break;
            }
            if b[j] == b'>' {
                j += 1;
                break;
            }
            let start = j;
            j += 1;
            while j < n && !ws(b[j]) && !matches!(b[j], b'/' | b'>' | b'=') {
                j += 1;
            }
            let aname = String::from_utf8_lossy(&b[start..j]).to_ascii_lowercase();
            let mut k = j;
            while k < n && ws(b[k]) {
                k += 1;
            }
            let mut value = String::new();
            if k < n && b[k] == b'=' {
                k += 1;
                while k < n && ws(b[k]) {
                    k += 1;
                }
                if k < n && (b[k] == b'"' || b[k] == b'\'') {
                    let q = b[k];
                    let vs = k + 1;
                    let mut ve = vs;
                    while ve < n && b[ve] != q {
                        ve += 1;
                    }
                    value = decode(&String::from_utf8_lossy(&b[vs.min(n)..ve]));
                    j = (ve + 1).min(n);
                } else {
                    let vs = k;
                    while k < n && !ws(b[k]) && b[k] != b'>' {
                        k += 1;
                    }
                    value = decode(&String::from_utf8_lossy(&b[vs..k]));
                    j = k;
                }
            }
            add_attribute(&mut attrs, &mut names, aname, value);
        }
        if matches!(
            name.as_str(),
            "script" | "style" | "textarea" | "title" | "xmp"
        ) {
            let skip_to = raw_text_end(html, j, &name);
            out.push(Token::Start(name, attrs));
            i = skip_to;
            continue;
        }
        out.push(Token::Start(name, attrs));
        i = j;
    }
    out
}

/// Every start tag of `html` as (lower-case name, attributes with decoded values), for the
/// Observatory rules (meta tags, SRI on scripts).
pub(crate) fn start_tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    tokens(html)
        .into_iter()
        .filter_map(|t| match t {
            Token::Start(name, attrs) => Some((name, attrs)),
            Token::End(_) => None,
        })
        .collect()
}

/// A field of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// `name` attribute.
    pub name: String,
    /// `type` attribute, lowercased (`text` when absent; `select`/`textarea` for those tags).
    pub kind: String,
    /// `value` attribute.
    pub value: String,
}

/// A `<form>` found in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `action` as written (empty: the page itself).
    pub action: String,
    /// Method, lowercased (`get` when absent or unknown).
    pub method: String,
    /// Named fields, in order.
    pub fields: Vec<Field>,
}

/// Field names that hold an anti-CSRF token in common frameworks.
const TOKEN_HINTS: [&str; 6] = [
    "csrf",
    "xsrf",
    "token",
    "authenticity",
    "requestverification",
    "nonce",
];

impl Form {
    /// Whether the form changes state (any method but GET).
    pub fn is_unsafe(&self) -> bool {
        self.method != "get"
    }

    /// Whether a field looks like an anti-CSRF token.
    pub fn has_token(&self) -> bool {
        self.fields.iter().any(|f| is_token_name(&f.name))
    }
}

/// Whether a field name looks like an anti-CSRF token (`csrf_token`, `authenticity_token`, …).
pub fn is_token_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    TOKEN_HINTS.iter().any(|h| l.contains(h))
}

/// Every form of a page with its named fields (fields outside any form are ignored).
pub fn forms(html: &str) -> Vec<Form> {
    let mut out: Vec<Form> = Vec::new();
    let mut open = false;
    for t in tokens(html) {
        match t {
            Token::Start(name, attrs) if name == "form" => {
                let method = attr(&attrs, "method").unwrap_or("get").to_ascii_lowercase();
                let method = match method.as_str() {
                    "post" | "dialog" => method,
                    _ => "get".to_owned(),
                };
                out.push(Form {
                    action: attr(&attrs, "action").unwrap_or("").to_owned(),
                    method,
                    fields: Vec::new(),
                });
                open = true;
            }
            Token::End(name) if name == "form" => open = false,
            Token::Start(name, attrs)
                if open && matches!(name.as_str(), "input" | "select" | "textarea" | "button") =>
            {
                let Some(field_name) = attr(&attrs, "name").filter(|n| !n.is_empty()) else {
                    continue;
                };
                let kind = match name.as_str() {
                    "input" => attr(&attrs, "type").unwrap_or("text").to_ascii_lowercase(),
                    other => other.to_owned(),
                };
                if let Some(f) = out.last_mut() {
                    f.fields.push(Field {
                        name: field_name.to_owned(),
                        kind,
                        value: attr(&attrs, "value").unwrap_or("").to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// `href`s of `<a>` elements, as written, without fragments-only and `javascript:`/`mailto:`:
/// each once, the first [`MAX_LINKS`] in document order.
pub fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for t in tokens(html) {
        if out.len() >= MAX_LINKS {
            break;
        }
        if let Token::Start(name, attrs) = t {
            if name != "a" {
                continue;
            }
            if let Some(h) = attr(&attrs, "href") {
                let l = h.trim().to_ascii_lowercase();
                if h.trim().is_empty()
                    || l.starts_with('#')
                    || l.starts_with("javascript:")
                    || l.starts_with("mailto:")
                    || l.starts_with("tel:")
                    || l.starts_with("data:")
                {
                    continue;
                }
                if seen.insert(h.trim().to_owned()) {
                    out.push(h.trim().to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_in_scripts_are_not_forms() {
        let page =
            "<script>var s = '<form method=post>';</script><FORM METHOD=POST><input name=q></FORM>";
        let f = forms(page);
        assert_eq!(f.len(), 1);
        assert!(f[0].is_unsafe() && !f[0].has_token());
    }

    #[test]
    fn truncated_markup_never_panics() {
        for s in [
            "<",
            "<form",
            "<form method='",
            "<a href=",
            "</",
            "<!--",
            "<input name=x",
            "<\u{e9}",
        ] {
            let _ = forms(s);
            let _ = links(s);
        }
    }

    /// A hostile page of each shape that once took quadratic time (tens of seconds per MiB):
    /// every one is tokenized in well under a second, even in a debug build, and still read.
    #[test]
    fn hostile_pages_are_tokenized_in_linear_time() {
        use std::fmt::Write as _;
        use std::time::{Duration, Instant};

        const MIB: usize = 1 << 20;
        let fill = |head: &str, unit: &dyn Fn(usize) -> String, tail: &str| {
            let mut page = head.to_owned();
            let mut i = 0;
            while page.len() < MIB {
                page.push_str(&unit(i));
                i += 1;
            }
            page.push_str(tail);
            page
        };
        let ampersands = format!("<a href=\"/x{}\">x</a>", "&".repeat(MIB));
        let attributes = fill("<a href=/first", &|i| format!(" a{i}"), ">");
        let wide_tags = fill(
            "",
            &|t| {
                let mut tag = format!("<a href=/{t}");
                for i in 0..MAX_ATTRIBUTES {
                    let _ = write!(tag, " a{i}");
                }
                tag.push('>');
                tag
            },
            "",
        );
        let raw_text = fill(
            "",
            &|_| "<script>x</script><TITLE></TITLE>".into(),
            "<a href=/after>",
        );
        let forms_page = fill(
            "<form method=post>",
            &|i| format!("<input name=f{i} value=\"&#{};\">", i % 128),
            "</form>",
        );
        let many_links = fill("", &|i| format!("<a href=/{i}>"), "");
        let cases: [(&str, &String); 6] = [
            ("&&&… in an attribute", &ampersands),
            ("one tag, 200k attributes", &attributes),
            ("tags of 256 attributes", &wide_tags),
            ("raw-text elements", &raw_text),
            ("100k links", &many_links),
            ("a form with 40k fields", &forms_page),
        ];
        for (name, page) in cases {
            let started = Instant::now();
            let found = links(page);
            let tags = start_tags(page);
            let took = started.elapsed();
            // Linear: well under a second in a debug build on a quiet machine. A quadratic
            // pass over these megabyte pages takes many minutes, so a generous bound tells
            // them apart without failing on a machine busy with other builds.
            assert!(took < Duration::from_secs(30), "{name}: {took:?}");
            assert!(found.len() <= MAX_LINKS, "{name}");
            assert!(
                tags.iter().all(|(_, a)| a.len() <= MAX_ATTRIBUTES),
                "{name}"
            );
        }
        assert_eq!(links(&ampersands)[0].len(), 2 + MIB);
        assert_eq!(links(&attributes), vec!["/first".to_owned()]);
        assert_eq!(start_tags(&attributes)[0].1.len(), MAX_ATTRIBUTES);
        assert_eq!(links(&raw_text), vec!["/after".to_owned()]);
        let f = forms(&forms_page);
        assert_eq!(f.len(), 1);
        assert!(f[0].fields.len() > 30_000 && f[0].fields[65].value == "A");
        let found = links(&many_links);
        assert_eq!(found.len(), MAX_LINKS);
        assert_eq!((found[0].as_str(), found[999].as_str()), ("/0", "/999"));
    }

    #[test]
    fn references_and_raw_text_read_as_before() {
        assert_eq!(decode("a&amp;b&#x41;&#66;&lt;&bogus;&"), "a&bAB<&bogus;&");
        assert_eq!(decode("&#1114111;"), "\u{10FFFF}");
        assert_eq!(
            decode("&#001114111;"),
            "&#001114111;",
            "the ; is 11 bytes away"
        );
        let page = "<script>'<a href=/in>'</scriptx><a href=/no></SCRIPT ><a href=/out>";
        assert_eq!(links(page), vec!["/out".to_owned()]);
        let page = "<xmp><a href=/in></Xmp><a href=/out>";
        assert_eq!(links(page), vec!["/out".to_owned()]);
        let page = "<a href=/a X=1 x=2 href=/b><a href=/a>";
        assert_eq!(links(page), vec!["/a".to_owned()]);
        assert_eq!(start_tags(page)[0].1[1], ("x".to_owned(), "1".to_owned()));
    }
}

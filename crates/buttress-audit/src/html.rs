//! Just enough HTML for a scanner: forms with their fields, same-site links, and the text of a
//! page for leak patterns.
//!
//! Hand-written on purpose: the scanner needs start and end tags with attributes, nothing of
//! the tree (no implied end tags, no scripting, no CSS selectors). A full HTML5 parser
//! (html5ever via `scraper`) would add a dozen crates and a long build for that, and the
//! Observatory module already reads `<meta>` and `<script>` the same way. The tokenizer is
//! linear, never panics on any input (it is fuzzed through [`forms`]) and treats the raw-text
//! elements (`script`, `style`, `textarea`, `title`) as browsers do so that markup inside a
//! script is not mistaken for a form.
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
        let end = rest.find(';').filter(|&e| e <= 10);
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
            if !attrs.iter().any(|(a, _)| *a == aname) {
                attrs.push((aname, value));
            }
        }
        if matches!(
            name.as_str(),
            "script" | "style" | "textarea" | "title" | "xmp"
        ) {
            let close = format!("</{name}");
            let lower = html.get(j..).unwrap_or("").to_ascii_lowercase();
            let skip_to = lower.find(&close).map_or(n, |p| j + p);
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

/// `href`s of `<a>` elements, as written, without fragments-only and `javascript:`/`mailto:`.
pub fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in tokens(html) {
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
                if !out.iter().any(|x: &String| x == h.trim()) {
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
}

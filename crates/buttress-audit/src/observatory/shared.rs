//! The tests both rule sets judge with one function: redirection, and subresource integrity
//! (content.py / tests/subresource-integrity.js).

use super::plumbing::{only_if_worse, Ctx, Raw};
use super::tags::{is_html_mime, scan_tags, Tag, HTML_TYPES};

pub(super) fn redirection(c: &Ctx<'_>) -> Raw {
    match c.redirect {
        None => ("redirection", "redirection-not-needed-no-http", true),
        Some(true) => ("redirection", "redirection-to-https", true),
        Some(false) => ("redirection", "redirection-missing", false),
    }
}

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

pub(super) fn sri(c: &Ctx<'_>, classic: bool) -> Raw {
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

#[cfg(test)]
mod tests {
    use crate::observatory::tests::{hardened, result_of, with, BOTH};
    use crate::observatory::{score, Input};

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
}

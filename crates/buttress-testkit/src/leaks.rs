//! Scanning a response body for leaked internals without tripping on random tokens.
//!
//! Pages carry random values: masked CSRF tokens, CSP nonces, session handles in form actions.
//! Base64url text of 86 characters contains a word such as `sqlx` now and then (case-folded, about
//! once in ten thousand pages), which made a leak check fail at random. [`leaked`] therefore drops
//! every run of 16 or more base64url characters that sits inside a quoted attribute value before
//! it looks; text content, where an error message would show, is scanned whole.
//!
//! ```
//! use buttress_testkit::leaks::leaked;
//!
//! let page = r#"<input name="csrf_token" value="aSqLxQ0123456789abcdef"><p>Sorry.</p>"#;
//! assert_eq!(leaked(page, &["sqlx"]), None);
//! assert_eq!(leaked("<p>sqlx::Error</p>", &["sqlx"]), Some("sqlx"));
//! ```

/// The first of `needles` (lower case) found in `body`, case-insensitively, after random
/// attribute values are dropped (see the module docs).
pub fn leaked<'a>(body: &str, needles: &[&'a str]) -> Option<&'a str> {
    let text = without_random_values(body).to_lowercase();
    needles.iter().copied().find(|n| text.contains(n))
}

/// `body` with every run of >= 16 base64url characters inside a `"…"` attribute value removed.
pub fn without_random_values(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut in_value = false;
    let mut prev = '\0';
    let mut run = String::new();
    for c in body.chars() {
        if in_value && (c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            run.push(c);
            continue;
        }
        flush(&mut out, &mut run);
        if c == '"' {
            in_value = if in_value { false } else { prev == '=' };
        }
        out.push(c);
        prev = c;
    }
    flush(&mut out, &mut run);
    out
}

fn flush(out: &mut String, run: &mut String) {
    if run.len() < 16 {
        out.push_str(run);
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_tokens_in_attributes_only() {
        let body = concat!(
            r#"<form action="/account/sessions/xSQLXabcdefghijklmnop/revoke">"#,
            r#"<script nonce="sqliteABCDEFGHIJKLMNOP">"#,
            r#"<p title="sqlx">sqlite said no</p>"#
        );
        let kept = without_random_values(body);
        assert!(
            kept.contains(r#"action="/account/sessions//revoke""#),
            "{kept}"
        );
        assert!(kept.contains(r#"nonce="""#), "{kept}");
        assert_eq!(leaked(body, &["postgres", "sqlite"]), Some("sqlite"));
        assert_eq!(
            leaked(body, &["sqlx"]),
            Some("sqlx"),
            "short values are kept"
        );
        assert_eq!(leaked(r#"<a href="/x">ok</a>"#, &["sqlx"]), None);
    }
}

//! The CSP violation report endpoint: accepts `application/csp-report` and
//! `application/reports+json`, logs a summary, and stays bounded under a flood.
//!
//! A report is written by whoever sends it, so its fields are logged as quoted, escaped text
//! ([`LogField`]): a newline, a carriage return, an ANSI escape sequence or a Unicode line
//! separator in a field cannot end the log line, forge another one or restyle a terminal, and a
//! quote cannot end the field and forge `key=value` pairs after it.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use http::StatusCode;

/// The largest report body read; larger ones get 413.
pub const REPORT_BODY_LIMIT: usize = 16 * 1024;

/// At most this many reports are logged per minute; the rest are counted.
const LOGS_PER_MINUTE: u64 = 60;

/// Each field is cut to this many characters before it is escaped.
const FIELD_CHARS: usize = 200;

static WINDOW: AtomicU64 = AtomicU64::new(0);
static LOGGED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Handler for CSP violation reports. Mount it on the path named in `report-uri` and exempt
/// it from CSRF checks (browsers send reports without tokens). It answers 204, logs at most
/// 60 reports a minute (each field cut to 200 characters), and counts the rest.
///
/// ```
/// use axum::{extract::DefaultBodyLimit, routing::post, Router};
/// use buttress::headers::{csp_report, REPORT_BODY_LIMIT};
/// let app: Router = Router::new()
///     .route("/csp-report", post(csp_report).layer(DefaultBodyLimit::max(REPORT_BODY_LIMIT)));
/// ```
pub async fn csp_report(body: Bytes) -> StatusCode {
    if body.len() > REPORT_BODY_LIMIT {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    // `application/csp-report`: {"csp-report": {...}}; Reporting API: [{"type": "csp-violation", "body": {...}}]
    let reports: Vec<&serde_json::Value> = match &doc {
        serde_json::Value::Array(items) => items.iter().filter_map(|i| i.get("body")).collect(),
        other => other.get("csp-report").into_iter().collect(),
    };
    if reports.is_empty() {
        return StatusCode::BAD_REQUEST;
    }
    for r in reports.into_iter().take(10) {
        if !may_log() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let field = |names: &[&str]| {
            LogField(
                names
                    .iter()
                    .find_map(|n| r.get(*n).and_then(|v| v.as_str()))
                    .unwrap_or_default(),
            )
        };
        tracing::warn!(
            target: "buttress::csp",
            document = %field(&["document-uri", "documentURL"]),
            directive = %field(&["violated-directive", "effectiveDirective"]),
            blocked = %field(&["blocked-uri", "blockedURL"]),
            dropped_since_start = DROPPED.load(Ordering::Relaxed),
            "CSP violation"
        );
    }
    StatusCode::NO_CONTENT
}

/// Text from a request as a log field: quoted, cut to 200 characters, with `"` and `\\`
/// escaped by a backslash and every character that could break or restyle a log line written
/// as a Rust escape (`\n`, `\r`, `\t`, `\u{1b}`): control characters (C0, DEL, C1, which
/// include the ANSI escape and NEL), the Unicode line and paragraph separators, and the
/// invisible bidirectional controls and zero-width marks (which can make a log line read other
/// than it is). What is left is printable and cannot end the line or the field.
///
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogField<'a>(pub(crate) &'a str);

impl fmt::Display for LogField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars().take(FIELD_CHARS) {
            match c {
                '"' | '\\' => {
                    f.write_char('\\')?;
                    f.write_char(c)?;
                }
                c if needs_escape(c) => write!(f, "{}", c.escape_debug())?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// Characters a log line must not carry raw: controls, line and paragraph separators, and the
/// invisible ones that reorder or hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{200b}'..='\u{200f}' // zero-width space, joiners, LRM, RLM
            | '\u{202a}'..='\u{202e}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{061c}' // Arabic letter mark
            | '\u{feff}' // zero-width no-break space
        )
}

fn may_log() -> bool {
    let minute = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60);
    if WINDOW.swap(minute, Ordering::Relaxed) != minute {
        LOGGED.store(0, Ordering::Relaxed);
    }
    LOGGED.fetch_add(1, Ordering::Relaxed) < LOGS_PER_MINUTE
}

/// Reports dropped (not logged) since start, for metrics.
///
/// ```
/// let _ = buttress::headers::dropped_reports();
/// ```
pub fn dropped_reports() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each kind of hostile text becomes in the log.
    #[test]
    fn log_fields_are_quoted_and_escaped() {
        let cases = [
            ("https://a/", r#""https://a/""#),
            (
                "https://a/\n2026 ERROR forged",
                r#""https://a/\n2026 ERROR forged""#,
            ),
            ("x\r\ny", r#""x\r\ny""#),
            ("\u{1b}[31mred\u{1b}[0m", r#""\u{1b}[31mred\u{1b}[0m""#),
            (r#"a" level="ERROR"#, r#""a\" level=\"ERROR""#),
            (r"back\slash", r#""back\\slash""#),
            ("tab\there\u{7f}\u{85}", r#""tab\there\u{7f}\u{85}""#),
            (
                "line\u{2028}sep\u{202e}rtl",
                r#""line\u{2028}sep\u{202e}rtl""#,
            ),
            ("caf\u{e9} \u{1f600}", "\"caf\u{e9} \u{1f600}\""),
        ];
        for (input, logged) in cases {
            assert_eq!(LogField(input).to_string(), logged, "{input:?}");
        }
        let long = "a".repeat(500);
        assert_eq!(LogField(&long).to_string().len(), FIELD_CHARS + 2);
    }

    #[tokio::test]
    async fn accepts_both_formats_and_refuses_garbage() {
        let legacy = br#"{"csp-report":{"document-uri":"https://a/","violated-directive":"script-src","blocked-uri":"inline"}}"#;
        assert_eq!(
            csp_report(Bytes::from_static(legacy)).await,
            StatusCode::NO_CONTENT
        );
        let modern = br#"[{"type":"csp-violation","body":{"documentURL":"https://a/","effectiveDirective":"script-src-elem"}}]"#;
        assert_eq!(
            csp_report(Bytes::from_static(modern)).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            csp_report(Bytes::from_static(b"not json")).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            csp_report(Bytes::from_static(b"{}")).await,
            StatusCode::BAD_REQUEST
        );
        let big = Bytes::from(vec![b' '; REPORT_BODY_LIMIT + 1]);
        assert_eq!(csp_report(big).await, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn flood_is_bounded() {
        let legacy = br#"{"csp-report":{"document-uri":"https://a/"}}"#;
        for _ in 0..500 {
            csp_report(Bytes::from_static(legacy)).await;
        }
        assert!(dropped_reports() > 0);
    }
}

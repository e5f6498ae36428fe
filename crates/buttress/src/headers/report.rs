//! The CSP violation report endpoint: [`CspReports`] accepts `report-uri`'s
//! `application/csp-report` and the Reporting API's `application/reports+json` (sent to the
//! `Reporting-Endpoints` group that the policy's `report-to` names), and stays bounded under a
//! flood: a body of at most [`REPORT_BODY_LIMIT`], at most 10 reports a body, 600 reports a
//! minute (then 429), a report seen in the last minute skipped (a small recent-set of 256),
//! 60 `csp_report` events a minute (the rest only counted).
//!
//! A report is written by whoever sends it, so its fields are logged as quoted, escaped text
//! ([`LogField`]): a newline, a carriage return, an ANSI escape sequence or a Unicode line
//! separator in a field cannot end the log line, forge another one or restyle a terminal, and a
//! quote cannot end the field and forge `key=value` pairs after it. The metric's label is the
//! directive's name from a fixed list ([`csp_directive_label`](crate::telemetry::csp_directive_label)).

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::MethodRouter;
use http::{header, HeaderMap, StatusCode};
use parking_lot::Mutex;

use crate::telemetry::{csp_directive_label, Telemetry};

/// The largest report body read; larger ones get 413.
pub const REPORT_BODY_LIMIT: usize = 16 * 1024;

/// At most this many reports are logged per minute; the rest are counted.
const LOGS_PER_MINUTE: u64 = 60;

/// At most this many reports are taken per minute; past it, 429.
const REPORTS_PER_MINUTE: u64 = 600;

/// Reports read from one body at most.
const REPORTS_PER_BODY: usize = 10;

/// A report the same as one of the last [`RECENT`] within [`RECENT_FOR`] is skipped.
const RECENT: usize = 256;
const RECENT_FOR: Duration = Duration::from_secs(60);

/// Each field is cut to this many characters before it is escaped.
const FIELD_CHARS: usize = 200;

/// The media types of CSP reports: `report-uri`'s, the Reporting API's, and plain JSON (sent
/// by some browsers for `report-uri`).
const MEDIA_TYPES: [&str; 3] = [
    "application/csp-report",
    "application/reports+json",
    "application/json",
];

/// A one-minute window of counts.
#[derive(Debug, Default)]
struct Window {
    minute: AtomicU64,
    count: AtomicU64,
}

impl Window {
    /// Counts one more; whether it is within `limit` this minute.
    fn take(&self, limit: u64) -> bool {
        let minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60);
        if self.minute.swap(minute, Ordering::Relaxed) != minute {
            self.count.store(0, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed) < limit
    }
}

#[derive(Debug, Default)]
struct State {
    taken: Window,
    logged: Window,
    dropped: AtomicU64,
    recent: Mutex<VecDeque<(u64, Instant)>>,
}

/// The CSP report endpoint (see the [`headers`](crate::headers) module): counts each report in
/// `buttress_csp_reports_total{directive}`, logs it as a `csp_report` event, answers 204.
/// Mount [`CspReports::route`] on the path of `BUTTRESS_CSP_REPORT_URI` (Buttress then sends
/// `report-uri`, `report-to csp-endpoint` and `Reporting-Endpoints: csp-endpoint="…"`) and exempt
/// it from CSRF checks (browsers send reports without tokens).
///
/// ```
/// use axum::Router;
/// use buttress::{headers::CspReports, telemetry::Telemetry};
/// let reports = CspReports::new(Telemetry::new());
/// let app: Router = Router::new().route("/csp-report", reports.route());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CspReports {
    telemetry: Telemetry,
    state: Arc<State>,
}

/// Why a report body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    TooLarge,
    Garbage,
    MediaType,
    TooMany,
}

impl Refused {
    fn status(self) -> StatusCode {
        match self {
            Refused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Garbage => StatusCode::BAD_REQUEST,
            Refused::MediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refused::TooMany => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl CspReports {
    /// An endpoint counting with `telemetry`.
    pub fn new(telemetry: Telemetry) -> Self {
        CspReports {
            telemetry,
            state: Arc::default(),
        }
    }

    /// The `POST` route, with the body limited to [`REPORT_BODY_LIMIT`].
    ///
    /// ```
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/csp-report", buttress::headers::CspReports::default().route());
    /// ```
    pub fn route<S: Clone + Send + Sync + 'static>(self) -> MethodRouter<S> {
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let reports = self.clone();
            async move { reports.receive(&headers, &body) }
        })
        .layer(DefaultBodyLimit::max(REPORT_BODY_LIMIT))
    }

    /// Takes one report body with its request headers: 204, or 413 (too large), 415 (not a
    /// report's media type), 400 (not a report), 429 (over 600 reports a minute).
    ///
    /// ```
    /// use buttress::headers::CspReports;
    /// use http::{HeaderMap, StatusCode};
    /// let reports = CspReports::default();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("content-type", "application/reports+json".parse()?);
    /// let body = br#"[{"type":"csp-violation","body":{"effectiveDirective":"img-src"}}]"#;
    /// assert_eq!(reports.receive(&headers, body), StatusCode::NO_CONTENT);
    /// assert_eq!(reports.receive(&headers, b"[1, 2"), StatusCode::BAD_REQUEST);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn receive(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if !media.is_some_and(|m| MEDIA_TYPES.contains(&m.as_str())) {
            return Refused::MediaType.status();
        }
        match self.take(body) {
            Ok(()) => StatusCode::NO_CONTENT,
            Err(refused) => refused.status(),
        }
    }

    /// The reports dropped (over the minute's budget, or not logged) since this endpoint
    /// started.
    ///
    /// ```
    /// assert_eq!(buttress::headers::CspReports::default().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }

    fn take(&self, body: &[u8]) -> Result<(), Refused> {
        if body.len() > REPORT_BODY_LIMIT {
            return Err(Refused::TooLarge);
        }
        let doc: serde_json::Value = serde_json::from_slice(body).map_err(|_| Refused::Garbage)?;
        // `application/csp-report`: {"csp-report": {...}}; Reporting API: [{"type":
        // "csp-violation", "body": {...}}, ...]
        let reports: Vec<&serde_json::Value> = match &doc {
            serde_json::Value::Array(items) => items
                .iter()
                .filter(|i| i.get("type").and_then(|t| t.as_str()) == Some("csp-violation"))
                .filter_map(|i| i.get("body"))
                .filter(|b| b.is_object())
                .collect(),
            other => other
                .get("csp-report")
                .filter(|r| r.is_object())
                .into_iter()
                .collect(),
        };
        if reports.is_empty() {
            return Err(Refused::Garbage);
        }
        if !self.state.taken.take(REPORTS_PER_MINUTE) {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::TooMany);
        }
        for r in reports.into_iter().take(REPORTS_PER_BODY) {
            self.one(r);
        }
        Ok(())
    }

    fn one(&self, r: &serde_json::Value) {
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| r.get(*n).and_then(|v| v.as_str()))
                .unwrap_or_default()
        };
        let directive = field(&[
            "effective-directive",
            "effectiveDirective",
            "violated-directive",
            "violatedDirective",
        ]);
        let label = csp_directive_label(directive);
        let blocked = field(&["blocked-uri", "blockedURL"]);
        let document = field(&["document-uri", "documentURL"]);
        let source = field(&["source-file", "sourceFile"]);
        if self.seen_recently(&[label, cut(blocked), cut(document), cut(source)]) {
            return;
        }
        self.telemetry.csp_report(directive);
        if !self.state.logged.take(LOGS_PER_MINUTE) {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tracing::warn!(
            target: "buttress::security",
            event = "csp_report",
            directive = label,
            reported = %LogField(directive),
            blocked = %LogField(blocked),
            document = %LogField(document),
            source = %LogField(source),
            dropped_since_start = self.dropped(),
            "CSP violation"
        );
    }

    /// Whether a report with these fields came in the last minute (and remembers it if not).
    fn seen_recently(&self, fields: &[&str]) -> bool {
        let key = foldhash::quality::FixedState::with_seed(0x6275_7474).hash_one(fields);
        let now = Instant::now();
        let mut recent = self.state.recent.lock();
        while recent.front().is_some_and(|(_, at)| now - *at > RECENT_FOR) {
            recent.pop_front();
        }
        if recent.iter().any(|(k, _)| *k == key) {
            return true;
        }
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back((key, now));
        false
    }
}

/// The first [`FIELD_CHARS`] characters of `s`.
fn cut(s: &str) -> &str {
    s.char_indices()
        .nth(FIELD_CHARS)
        .map_or(s, |(i, _)| &s[..i])
}

/// The process-wide endpoint behind [`csp_report`] (counting nothing).
fn shared() -> &'static CspReports {
    static SHARED: OnceLock<CspReports> = OnceLock::new();
    SHARED.get_or_init(CspReports::default)
}

/// Handler for CSP violation reports, counted by no telemetry: prefer [`CspReports`]. Mount it
/// on the path named in `report-uri` and exempt it from CSRF checks. It answers 204 (400 for
/// garbage, 413 over [`REPORT_BODY_LIMIT`]), logs at most 60 reports a minute, and counts the
/// rest.
///
/// ```
/// use axum::{extract::DefaultBodyLimit, routing::post, Router};
/// use buttress::headers::{csp_report, REPORT_BODY_LIMIT};
/// let app: Router = Router::new()
///     .route("/csp-report", post(csp_report).layer(DefaultBodyLimit::max(REPORT_BODY_LIMIT)));
/// ```
pub async fn csp_report(body: Bytes) -> StatusCode {
    match shared().take(&body) {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(refused) => refused.status(),
    }
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

/// Reports dropped (not logged) since start, for metrics.
///
/// ```
/// let _ = buttress::headers::dropped_reports();
/// ```
pub fn dropped_reports() -> u64 {
    shared().dropped()
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
        for i in 0..500 {
            let report = format!(r#"{{"csp-report":{{"document-uri":"https://a/{i}"}}}}"#);
            csp_report(Bytes::from(report)).await;
        }
        assert!(dropped_reports() > 0);
    }
}

//! The CSP violation report endpoint: accepts `application/csp-report` and
//! `application/reports+json`, logs a summary, and stays bounded under a flood.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use http::StatusCode;

/// The largest report body read; larger ones get 413.
pub const REPORT_BODY_LIMIT: usize = 16 * 1024;

/// At most this many reports are logged per minute; the rest are counted.
const LOGS_PER_MINUTE: u64 = 60;

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
            names
                .iter()
                .find_map(|n| r.get(*n).and_then(|v| v.as_str()))
                .map(|s| s.chars().take(200).collect::<String>())
                .unwrap_or_default()
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

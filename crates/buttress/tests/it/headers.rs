//! Secure headers on every kind of response; handler headers win; nonces; HSTS only on HTTPS.

use crate::support::*;

fn nonce_of(csp: &str) -> String {
    let start = csp.find("'nonce-").expect("nonce in CSP") + 7;
    csp[start..]
        .split('\'')
        .next()
        .expect("nonce end")
        .to_owned()
}

#[tokio::test]
async fn every_kind_of_response_carries_the_headers() {
    let dev = app(&settings(&[]));
    let prod = app(&production(&[]));
    let https = [("x-forwarded-proto", "https")];
    let cases: Vec<(
        &str,
        &buttress::stack::Stack,
        axum::http::Request<axum::body::Body>,
        u16,
    )> = vec![
        ("page", &dev, get_req("/", &[]), 200),
        ("404", &dev, get_req("/missing", &[]), 404),
        ("panic 500", &prod, get_req("/panic", &https), 500),
        ("handler 500", &prod, get_req("/leak", &https), 500),
        ("https redirect", &prod, get_req("/", &[]), 301),
        (
            "proxy 400",
            &prod,
            get_req("/", &[("x-forwarded-proto", "gopher")]),
            400,
        ),
        (
            "disallowed host 400",
            &prod,
            {
                let mut r = get_req("/", &https);
                r.headers_mut()
                    .insert("host", "evil.test".parse().expect("v"));
                r
            },
            400,
        ),
        (
            "413",
            &dev,
            axum::http::Request::builder()
                .method("POST")
                .uri("/upload")
                .header("host", "x")
                .header("content-length", "2000000")
                .body(axum::body::Body::from(vec![b'a'; 2_000_000]))
                .expect("req"),
            413,
        ),
        (
            "csrf 403",
            &dev,
            axum::http::Request::builder()
                .method("DELETE")
                .uri("/")
                .header("host", "x")
                .body(axum::body::Body::empty())
                .expect("req"),
            403,
        ),
    ];
    for (what, app, req, status) in cases {
        let r = send(app, "127.0.0.1:5000", req).await;
        assert_eq!(r.status.as_u16(), status, "{what}: {}", r.body);
        assert_secure_headers(&r, what);
    }
}

#[tokio::test]
async fn nonce_is_fresh_per_response_and_matches_the_page() {
    let app = app(&settings(&[]));
    let a = send(&app, "127.0.0.1:1", get_req("/", &[])).await;
    let b = send(&app, "127.0.0.1:1", get_req("/", &[])).await;
    let na = nonce_of(a.header("content-security-policy").expect("csp"));
    let nb = nonce_of(b.header("content-security-policy").expect("csp"));
    assert_ne!(na, nb);
    assert!(na.len() >= 22, "128 bits of nonce: {na}");
    assert!(
        a.body.contains(&format!("<script nonce=\"{na}\">")),
        "{}",
        a.body
    );
    assert!(a.body.contains(&format!("<style nonce=\"{na}\">")));
}

#[tokio::test]
async fn handler_headers_win_but_banners_go() {
    let r = send(
        &app(&settings(&[])),
        "127.0.0.1:1",
        get_req("/own-headers", &[]),
    )
    .await;
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert_eq!(r.header("server"), None);
    assert_eq!(r.header("x-powered-by"), None);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // A handler trying a policy out in report-only keeps the enforcing one.
    let r = send(
        &app(&settings(&[])),
        "127.0.0.1:1",
        get_req("/trying-a-policy", &[]),
    )
    .await;
    assert_eq!(
        r.header("content-security-policy-report-only"),
        Some("default-src 'none'; report-uri /csp")
    );
    assert!(
        r.header("content-security-policy")
            .is_some_and(|v| v.contains("'nonce-")),
        "the enforcing policy stays: {:?}",
        r.headers
    );
}

#[tokio::test]
async fn per_route_and_per_response_csp() {
    let app = app(&settings(&[]));
    let map = send(&app, "127.0.0.1:1", get_req("/map", &[])).await;
    assert!(map
        .header("content-security-policy")
        .expect("csp")
        .contains("img-src 'self' https:"));
    let part = send(&app, "127.0.0.1:1", get_req("/csp-part", &[])).await;
    assert!(part
        .header("content-security-policy")
        .expect("csp")
        .contains("connect-src api.example.org"));
    let plain = send(&app, "127.0.0.1:1", get_req("/", &[])).await;
    assert!(plain
        .header("content-security-policy")
        .expect("csp")
        .contains("img-src 'self';"));
}

#[tokio::test]
async fn hsts_and_upgrade_only_over_https() {
    let app = app(&production(&[]));
    let secure = send(
        &app,
        "127.0.0.1:1",
        get_req("/", &[("x-forwarded-proto", "https")]),
    )
    .await;
    assert_eq!(secure.status, 200);
    assert_eq!(
        secure.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains; preload")
    );
    assert!(secure
        .header("content-security-policy")
        .expect("csp")
        .ends_with("upgrade-insecure-requests"));
    let plain = send(&app, "127.0.0.1:1", get_req("/healthz", &[])).await;
    assert_eq!(plain.status, 200, "exempt path served over http");
    assert_eq!(plain.header("strict-transport-security"), None);
    assert!(!plain
        .header("content-security-policy")
        .expect("csp")
        .contains("upgrade-insecure-requests"));
}

#[tokio::test]
async fn spoofed_proto_from_untrusted_peer_gets_no_hsts_and_is_redirected() {
    let app = app(&production(&[]));
    let r = send(
        &app,
        "203.0.113.9:1",
        get_req("/", &[("x-forwarded-proto", "https")]),
    )
    .await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("strict-transport-security"), None);
}

#[tokio::test]
async fn report_only_mode_and_custom_policy() {
    let s = settings(&[
        (
            "BUTTRESS_CSP",
            "default-src 'none'; script-src 'self' 'nonce-x'; object-src 'none'",
        ),
        ("BUTTRESS_CSP_REPORT_ONLY", "true"),
        ("BUTTRESS_CSP_REPORT_URI", "/csp-report"),
    ]);
    let r = send(&app(&s), "127.0.0.1:1", get_req("/", &[])).await;
    assert_eq!(r.header("content-security-policy"), None);
    let ro = r
        .header("content-security-policy-report-only")
        .expect("report-only header");
    assert!(ro.contains("report-uri /csp-report"), "{ro}");
    assert!(
        !ro.contains("'nonce-x'"),
        "the nonce is fresh per response, not the configured text: {ro}"
    );
}

/// What a `tracing` formatter wrote, shared with the test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A CSP report is written by whoever posts it. Posted through the stack with newlines, a
/// carriage return, ANSI escapes, quotes and Unicode separators in its fields, it is logged (by
/// the formatter `buttress serve` uses) as one line whose fields are quoted and escaped: no
/// forged log line, no terminal control, no forged `key=value`.
#[tokio::test]
async fn csp_report_fields_cannot_forge_log_lines() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let settings = settings(&[("BUTTRESS_CSP_REPORT_URI", "/csp-report")]);
    let app = buttress::Buttress::from_settings(&settings)
        .expect("stack")
        .apply(routes().route(
            "/csp-report",
            axum::routing::post(buttress::headers::csp_report),
        ))
        .expect("stack");
    let report = serde_json::json!({ "csp-report": {
        "document-uri": "https://example.org/\n2026-01-01T00:00:00.000000Z ERROR buttress::auth: admin password reset",
        "violated-directive": "script-src\r\u{1b}[2K\u{1b}[32m INFO all clear\u{1b}[0m",
        "blocked-uri": "inline\" forged=\"yes\u{2028}next\u{85}line\u{202e}",
    }});
    let req = axum::http::Request::post("/csp-report")
        .header("host", "example.org")
        .header("content-type", "application/csp-report")
        .body(axum::body::Body::from(report.to_string()))
        .expect("request");
    let r = send(&app, "192.0.2.9:1", req).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8 log");
    let line = text
        .lines()
        .find(|l| l.contains("CSP violation"))
        .unwrap_or_else(|| panic!("no CSP line in {text:?}"));
    // One line, nothing that ends or restyles it.
    assert_eq!(text.matches("CSP violation").count(), 1, "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("2026-01-01")),
        "a forged line: {text}"
    );
    for raw in ['\r', '\u{1b}', '\u{2028}', '\u{85}', '\u{202e}'] {
        assert!(!line.contains(raw), "{raw:?} raw in {line:?}");
    }
    // Each field quoted, its hostile characters written as escapes.
    for field in [
        r#"document="https://example.org/\n2026-01-01T00:00:00.000000Z ERROR buttress::auth: admin password reset""#,
        r#"reported="script-src\r\u{1b}[2K\u{1b}[32m INFO all clear\u{1b}[0m""#,
        r#"blocked="inline\" forged=\"yes\u{2028}next\u{85}line\u{202e}""#,
    ] {
        assert!(line.contains(field), "{field} not in {line}");
    }
}

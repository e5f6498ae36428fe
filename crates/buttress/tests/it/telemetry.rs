//! Security telemetry: the refusals of a known attack, scraped by a real Prometheus and read
//! back through its HTTP API; the metrics listener's token; the JSON events.

use std::time::Duration;

use buttress::server::{MetricsServer, MetricsServerError, ServeOptions, Server};
use buttress::settings::Settings;
use buttress::stack::Stack;
use buttress::telemetry::Telemetry;
use buttress::Buttress;
use buttress_testkit::PrometheusServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::*;

const TOKEN: &str = "scrape-token-0123456789abcdef";

/// Sends raw bytes to `addr` and gives the status line's code.
async fn raw_status(addr: std::net::SocketAddr, request: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The served stack of the attack run: a 1 KiB body limit, `3 per minute` on `/login`, only
/// `localhost` and `127.0.0.1` served, metrics on a private loopback listener with a token.
async fn served() -> (Server, MetricsServer, Stack) {
    let s = settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_METRICS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_METRICS_TOKEN", TOKEN),
        ("BUTTRESS_ALLOWED_HOSTS", "localhost, 127.0.0.1"),
        ("BUTTRESS_BODY_LIMIT", "1KiB"),
        ("SECRET_KEY", STRONG_KEY),
    ]);
    let stack = Buttress::from_settings(&s)
        .expect("stack builds")
        .csrf_exempt("/upload")
        .limit_route("/login", "3 per minute")
        .expect("limit")
        .apply(routes())
        .expect("stack");
    assert!(stack.telemetry().counts());
    let mut opts = ServeOptions::from_settings(&s).expect("serve options");
    opts.telemetry = stack.telemetry().clone();
    let server = Server::bind(stack.clone(), opts)
        .await
        .expect("server binds");
    let metrics = MetricsServer::bind(
        s.metrics_bind.expect("metrics bind"),
        stack.telemetry().clone(),
        s.metrics_token.clone(),
    )
    .await
    .expect("metrics listener binds");
    (server, metrics, stack)
}

const CSRF: &str = r#"buttress_refusals_total{layer="csrf",reason="cross-site"}"#;
const LOGIN_LIMIT: &str = r#"buttress_refusals_total{layer="ratelimit",reason="/login"}"#;
const HOST: &str = r#"buttress_refusals_total{layer="proxy",reason="host"}"#;
const BODY: &str = r#"buttress_refusals_total{layer="body",reason="too-large"}"#;
const CLIENT_ERRORS: &str = r#"buttress_requests_total{status_class="4xx"}"#;
const SERIES: [&str; 5] = [CSRF, LOGIN_LIMIT, HOST, BODY, CLIENT_ERRORS];

/// 7 cross-site POSTs, a burst of 5 past a `3 per minute` route limit, a forged Host and an
/// oversized body against a served stack; Prometheus scrapes the private listener (with the
/// bearer token) every second, and its query API shows exactly those increases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_refusals_of_an_attack() {
    let (server, metrics, _stack) = served().await;
    let app = server.local_addr();
    let client = reqwest::Client::new();
    // Never on the public listener.
    let public = client
        .get(format!("http://{app}/metrics"))
        .send()
        .await
        .expect("GET /metrics on the app");
    assert_eq!(public.status(), 404);

    let target = metrics.local_addr().to_string();
    let prom = tokio::task::spawn_blocking(move || {
        let prom = PrometheusServer::start(&target, Some(TOKEN));
        prom.wait_for_scrapes(1, Duration::from_secs(30));
        prom
    })
    .await
    .expect("prometheus starts");
    let before: Vec<f64> = SERIES
        .iter()
        .map(|s| prom.value(s).unwrap_or_else(|| panic!("{s} not scraped")))
        .collect();

    for _ in 0..7 {
        let r = client
            .post(format!("http://{app}/form"))
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example")
            .send()
            .await
            .expect("cross-site POST");
        assert_eq!(r.status(), 403);
    }
    let mut limited = Vec::new();
    for _ in 0..5 {
        let r = client
            .get(format!("http://{app}/login"))
            .send()
            .await
            .expect("GET /login");
        limited.push(r.status().as_u16());
    }
    assert_eq!(limited, [405, 405, 405, 429, 429]);
    let forged = raw_status(
        app,
        "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(forged, 400);
    let big = client
        .post(format!("http://{app}/upload"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .expect("oversized POST");
    assert_eq!(big.status(), 413);

    let expected = [7.0, 2.0, 1.0, 1.0, 7.0 + 5.0 + 1.0 + 1.0];
    let after = tokio::task::spawn_blocking(move || {
        prom.wait_for_scrapes(2, Duration::from_secs(30));
        let after: Vec<f64> = SERIES
            .iter()
            .map(|s| prom.value(s).unwrap_or_else(|| panic!("{s} gone")))
            .collect();
        (after, prom)
    })
    .await
    .expect("scraped");
    let (after, prom) = after;
    for ((series, want), (b, a)) in SERIES.iter().zip(expected).zip(before.iter().zip(&after)) {
        assert_eq!(a - b, want, "{series}: {b} -> {a}");
    }
    // scripts/refusals-chart draws docs/refusals.png from this.
    if let Ok(path) = std::env::var("BUTTRESS_REFUSALS_JSON") {
        let all = tokio::task::spawn_blocking(move || prom.query("buttress_refusals_total > 0"))
            .await
            .expect("query");
        std::fs::write(path, all).expect("refusals written");
    }
    metrics.shutdown().await;
    server.shutdown().await;
}

/// `/metrics` asks for the bearer token (compared in constant time), answers nothing else, and
/// refuses to listen off loopback without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listener_needs_its_token() {
    let telemetry = Telemetry::new();
    let token = TOKEN.parse().expect("token");
    let m = MetricsServer::bind(
        "127.0.0.1:0".parse().expect("addr"),
        telemetry.clone(),
        Some(token),
    )
    .await
    .expect("binds");
    let url = format!("http://{}/metrics", m.local_addr());
    let client = reqwest::Client::new();
    for (auth, want) in [
        (None, 401),
        (Some("Bearer wrong-token-0123456789abcdef".to_owned()), 401),
        (Some(format!("Basic {TOKEN}")), 401),
        (Some(format!("Bearer {TOKEN}x")), 401),
        (Some(format!("Bearer {TOKEN}")), 200),
        (Some(format!("bearer {TOKEN}")), 200),
    ] {
        let mut req = client.get(&url);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.expect("scrape");
        assert_eq!(r.status(), want, "{auth:?}");
        if want == 401 {
            assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"metrics\"");
            assert!(!r.text().await.expect("body").contains("buttress_"));
        } else {
            assert!(r.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("application/openmetrics-text"));
            assert!(r
                .text()
                .await
                .expect("body")
                .contains("buttress_refusals_total"));
        }
    }
    let other = client
        .get(format!("http://{}/", m.local_addr()))
        .send()
        .await
        .expect("GET /");
    assert_eq!(other.status(), 404);
    m.shutdown().await;

    let open = MetricsServer::bind("0.0.0.0:0".parse().expect("addr"), telemetry, None).await;
    assert!(
        matches!(open, Err(MetricsServerError::NoToken { .. })),
        "{open:?}"
    );
    let off =
        MetricsServer::bind("127.0.0.1:0".parse().expect("addr"), Telemetry::off(), None).await;
    assert!(matches!(off, Err(MetricsServerError::Off)), "{off:?}");
}

/// Settings: a non-loopback metrics listener without a token refuses to start (even in
/// Production, where the key and the rest are fine) and is a `buttress check` error.
#[test]
fn open_metrics_listener_refuses_to_start() {
    let s = production(&[("BUTTRESS_METRICS_BIND", "0.0.0.0:9464")]);
    let err = Buttress::from_settings(&s).expect_err("refused");
    assert!(
        matches!(err, buttress::StartupError::MetricsToken { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("BUTTRESS_METRICS_TOKEN"), "{err}");
    assert!(buttress::check::run(&s).iter().any(|f| f.id == "BTR-E017"));
    let with_token = production(&[
        ("BUTTRESS_METRICS_BIND", "0.0.0.0:9464"),
        ("BUTTRESS_METRICS_TOKEN", TOKEN),
    ]);
    assert!(!buttress::check::run(&with_token)
        .iter()
        .any(|f| f.id == "BTR-E017"));
    let short = Settings::loader()
        .env_vars([("BUTTRESS_METRICS_TOKEN", "short-secret")])
        .load()
        .expect_err("a short token is refused");
    assert!(!short.to_string().contains("short-secret"), "{short}");
}

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

/// A refusal is one JSON line (the formatter `BUTTRESS_LOG_FORMAT=json` installs) with the
/// documented fields; the client is its /24 with `BUTTRESS_LOG_CLIENT_NETWORK`; the request's
/// cookie, token and path never appear, and a control character in the method is escaped.
#[tokio::test]
async fn a_refusal_is_one_json_event_without_secrets() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = settings(&[("BUTTRESS_LOG_CLIENT_NETWORK", "true")]);
    let app = Buttress::from_settings(&s)
        .expect("stack")
        .apply(routes())
        .expect("stack");
    let req = axum::http::Request::post("/form?reset=query-secret-4242")
        .header("host", "example.org")
        .header("sec-fetch-site", "cross-site")
        .header("cookie", "session=cookie-secret-9999")
        .header("x-csrf-token", "token-secret-7777")
        .header("authorization", "Bearer bearer-secret-5555")
        .body(axum::body::Body::from("password=hunter2-secret"))
        .expect("request");
    let r = send(&app, "192.0.2.77:4000", req).await;
    assert_eq!(r.status, 403);
    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8 log");
    for secret in [
        "cookie-secret",
        "token-secret",
        "bearer-secret",
        "hunter2",
        "query-secret",
        "/form",
    ] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .filter(|e: &serde_json::Value| e["event"] == "refusal")
        .collect();
    assert_eq!(events.len(), 1, "one event per refusal:\n{text}");
    let e = &events[0];
    assert_eq!(e["target"], "buttress::security");
    assert_eq!(e["level"], "WARN");
    assert_eq!(e["layer"], "csrf");
    assert_eq!(e["reason"], "cross-site");
    assert_eq!(e["status"], 403);
    assert_eq!(e["method"], "POST");
    assert_eq!(e["route"], "unmatched");
    assert_eq!(e["client"], "192.0.2.0/24");
    assert_eq!(
        Some(e["request_id"].as_str().expect("id")),
        r.header("x-request-id")
    );

    // A rate-limit refusal names the limited path as its route and reason.
    logs.0.lock().expect("logs").clear();
    let limited = Buttress::from_settings(&settings(&[]))
        .expect("stack")
        .limit_route("/login", "0 per minute")
        .expect("limit")
        .apply(routes())
        .expect("stack");
    let r = send(&limited, "192.0.2.8:1", get_req("/login", &[])).await;
    assert_eq!(r.status, 429);
    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8 log");
    let e: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "refusal")
        .unwrap_or_else(|| panic!("no refusal event in\n{text}"));
    assert_eq!(
        (e["layer"].as_str(), e["reason"].as_str()),
        (Some("ratelimit"), Some("/login"))
    );
    assert_eq!(e["route"], "/login");
    assert_eq!(e["client"], "192.0.2.8");
    assert_eq!(e["level"], "INFO");
}

/// The value of `series` in `telemetry`'s exposition.
fn sample(telemetry: &Telemetry, series: &str) -> f64 {
    let text = telemetry.render();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn report_req(
    media: &str,
    body: impl Into<axum::body::Body>,
) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post("/csp-report")
        .header("host", "example.org")
        .header("content-type", media)
        .body(body.into())
        .expect("request")
}

/// CSP reports by `report-uri` (`application/csp-report`) and by the Reporting API
/// (`Reporting-Endpoints` + `report-to`, `application/reports+json`): counted by directive,
/// a repeat skipped, and 413, 400, 415 for what is not a report.
#[tokio::test]
async fn csp_reports_both_ways_counted_once() {
    let s = settings(&[
        ("BUTTRESS_CSP_REPORT_URI", "/csp-report"),
        ("BUTTRESS_METRICS_BIND", "127.0.0.1:0"),
    ]);
    let b = Buttress::from_settings(&s).expect("stack");
    let telemetry = b.telemetry().clone();
    let reports = buttress::headers::CspReports::new(telemetry.clone());
    let app = b
        .apply(routes().route("/csp-report", reports.route()))
        .expect("stack");

    let page = send(&app, "192.0.2.9:1", get_req("/", &[])).await;
    let csp = page.header("content-security-policy").expect("csp");
    assert!(csp.contains("report-uri /csp-report"), "{csp}");
    assert!(csp.contains("report-to csp-endpoint"), "{csp}");
    assert_eq!(
        page.header("reporting-endpoints"),
        Some(r#"csp-endpoint="/csp-report""#)
    );

    let legacy = r#"{"csp-report":{"document-uri":"https://example.org/","violated-directive":"script-src 'self'","blocked-uri":"inline"}}"#;
    let modern = r#"[{"type":"csp-violation","age":2,"url":"https://example.org/","body":{"documentURL":"https://example.org/","effectiveDirective":"img-src","blockedURL":"https://evil.example/x.png"}},{"type":"deprecation","body":{}}]"#;
    for (media, body, want) in [
        ("application/csp-report", legacy.to_owned(), 204),
        ("application/reports+json", modern.to_owned(), 204),
        // The same report again: answered, not counted or logged twice.
        ("application/csp-report", legacy.to_owned(), 204),
        ("application/csp-report", "{not json".to_owned(), 400),
        (
            "application/csp-report",
            r#"{"csp-report": 7}"#.to_owned(),
            400,
        ),
        (
            "application/reports+json",
            r#"[{"type":"deprecation","body":{}}]"#.to_owned(),
            400,
        ),
        ("text/plain", legacy.to_owned(), 415),
        (
            "application/csp-report",
            format!(r#"{{"csp-report":{{"x":"{}"}}}}"#, "a".repeat(20_000)),
            413,
        ),
    ] {
        let r = send(&app, "192.0.2.9:1", report_req(media, body.clone())).await;
        assert_eq!(r.status, want, "{media} {}", &body[..body.len().min(80)]);
    }
    assert_eq!(
        sample(
            &telemetry,
            r#"buttress_csp_reports_total{directive="script-src"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &telemetry,
            r#"buttress_csp_reports_total{directive="img-src"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &telemetry,
            r#"buttress_csp_reports_total{directive="other"}"#
        ),
        0.0
    );
    // Timed by their route's pattern, never by the raw path.
    let timed = |route: &str| {
        sample(
            &telemetry,
            &format!("buttress_request_duration_seconds_count{{route=\"{route}\"}}"),
        )
    };
    assert_eq!(timed("/csp-report"), 8.0);
    assert_eq!(timed("/"), 1.0);
    let r = send(&app, "192.0.2.9:1", get_req("/no/such/page?x=1", &[])).await;
    assert_eq!(r.status, 404);
    assert_eq!(timed("unmatched"), 1.0);
    assert!(!telemetry.render().contains("/no/such"));
}

/// The portal-style login throttle counts each attempt's outcome.
#[tokio::test]
async fn login_throttle_counts_outcomes() {
    let s = settings(&[("BUTTRESS_METRICS_BIND", "127.0.0.1:0")]);
    let b = Buttress::from_settings(&s).expect("stack");
    let throttle = b.login_throttle();
    let ip = "192.0.2.50".parse().expect("ip");
    use buttress::ratelimit::LoginVerdict;
    let LoginVerdict::Allowed(ok) = throttle.check("ada", ip).await.expect("store") else {
        panic!("first attempt throttled")
    };
    throttle.succeeded(ok).await.expect("store");
    for _ in 0..5 {
        let v = throttle.check("bob", ip).await.expect("store");
        assert!(v.is_allowed());
        drop(v); // a wrong password
    }
    assert!(!throttle.check("bob", ip).await.expect("store").is_allowed());
    let t = b.telemetry();
    assert_eq!(
        sample(t, r#"buttress_login_attempts_total{outcome="success"}"#),
        1.0
    );
    assert_eq!(
        sample(t, r#"buttress_login_attempts_total{outcome="failure"}"#),
        5.0
    );
    assert_eq!(
        sample(t, r#"buttress_login_attempts_total{outcome="throttled"}"#),
        1.0
    );
}

//! Bounds: redirect chains and loops, a huge body, a slow server, a broken certificate, and the
//! request budget. Each ends within its bound with a clear message, never a panic.

use std::time::{Duration, Instant};

use buttress_audit::scan::{audit, scan, Options, ScanError};
use buttress_audit::{Failure, Probe, Verdict};

use crate::fixtures::*;

fn opts() -> Options {
    let mut o = Options::new();
    o.max_time = Duration::from_secs(10);
    o
}

#[tokio::test]
async fn redirect_chain_is_followed_and_recorded() {
    let base = serve(edge_app()).await;
    let obs = scan(&format!("{base}chain/5"), &opts())
        .await
        .expect("scan");
    assert_eq!(obs.chain.len(), 5, "{:?}", obs.chain);
    assert!(obs.chain.iter().all(|h| h.status == 307));
    let page = obs.main.as_ref().expect("page read");
    assert!(page.url.ends_with("/chain/0"));
    let r = buttress_audit::judge(&obs);
    let red = r.finding("AUD-RED-002").expect("finding");
    assert_eq!(red.verdict, Verdict::Warn, "{red:?}");
    assert!(red.evidence.contains("/chain/5 (307) →"));
}

#[tokio::test]
async fn too_long_a_chain_stops_at_the_bound() {
    let base = serve(edge_app()).await;
    let mut o = opts();
    o.max_redirects = 3;
    let obs = scan(&format!("{base}chain/50"), &o).await.expect("scan");
    assert!(
        matches!(&obs.main, Err(Failure::TooManyRedirects(m)) if m.contains("more than 3 redirects")),
        "{:?}",
        obs.main
    );
    assert_eq!(obs.requests, 4);
    assert_eq!(buttress_audit::judge(&obs).grade, "F");
}

#[tokio::test]
async fn redirect_loop_is_found_not_followed_forever() {
    let base = serve(edge_app()).await;
    let r = audit(&format!("{base}loop/a"), &opts())
        .await
        .expect("scan");
    let net = r.finding("AUD-NET-001").expect("finding");
    assert_eq!(net.verdict, Verdict::Fail);
    assert!(
        net.evidence.starts_with("redirect loop:"),
        "{}",
        net.evidence
    );
    assert_eq!(
        r.finding("AUD-RED-002").map(|f| f.verdict),
        Some(Verdict::Fail)
    );
    assert_eq!((r.grade, r.requests), ("F", 2));
}

#[tokio::test]
async fn off_host_redirect_is_recorded_not_followed() {
    let base = serve(edge_app()).await;
    let obs = scan(&format!("{base}away"), &opts()).await.expect("scan");
    assert!(
        obs.notes
            .iter()
            .any(|n| n.contains("elsewhere.invalid") && n.contains("not followed")),
        "{:?}",
        obs.notes
    );
    assert_eq!(obs.main.as_ref().map(|p| p.status).ok(), Some(307));
}

#[tokio::test]
async fn huge_body_is_read_only_up_to_the_bound() {
    let base = serve(edge_app()).await;
    let mut o = opts();
    o.max_body = 64 * 1024;
    let started = Instant::now();
    let obs = scan(&format!("{base}huge"), &o).await.expect("scan");
    let page = obs.main.as_ref().expect("page");
    assert!(page.truncated);
    assert_eq!(page.body.len(), 64 * 1024);
    assert!(
        obs.notes.iter().any(|n| n.contains("cut at 65536 bytes")),
        "{:?}",
        obs.notes
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn slow_server_hits_the_time_budget() {
    let base = serve(edge_app()).await;
    let mut o = opts();
    o.max_time = Duration::from_millis(1500);
    let started = Instant::now();
    let r = audit(&format!("{base}slow"), &o).await.expect("scan");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    let net = r.finding("AUD-NET-001").expect("finding");
    assert_eq!(net.verdict, Verdict::Fail);
    assert!(
        net.evidence.contains("within the 1.5s time budget"),
        "{}",
        net.evidence
    );
    assert_eq!(r.grade, "F");
}

#[tokio::test]
async fn request_budget_bounds_the_scan() {
    let url = serve(weak_app()).await;
    let mut o = opts();
    o.max_requests = 4;
    o.rate_limit_path = Some("/api/ping".into());
    let obs = scan(&url, &o).await.expect("scan");
    assert!(obs.requests <= 4, "{}", obs.requests);
    assert!(
        obs.notes.iter().any(|n| n.contains("request budget spent")),
        "{:?}",
        obs.notes
    );
}

#[tokio::test]
async fn self_signed_certificate_without_ca_cert_is_a_finding() {
    let h = hardened("badcert").await;
    let r = audit(&h.url, &opts()).await.expect("scan runs");
    let tls = r.finding("AUD-TLS-001").expect("finding");
    assert_eq!(tls.verdict, Verdict::Fail, "{tls:?}");
    assert!(
        tls.evidence.starts_with("certificate problem:"),
        "{}",
        tls.evidence
    );
    assert!(tls.fix.contains("--ca-cert"));
    assert_eq!(r.grade, "F");

    let mut insecure = opts();
    insecure.insecure = true;
    let r = audit(&h.url, &insecure).await.expect("scan runs");
    assert_eq!(
        r.finding("AUD-TLS-001").map(|f| f.verdict),
        Some(Verdict::Warn)
    );
    assert!(r.notes.iter().any(|n| n.contains("--insecure")));
    h.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    assert!(matches!(
        scan("ftp://x/", &opts()).await,
        Err(ScanError::BadUrl(_))
    ));
    assert!(matches!(
        scan("not a url", &opts()).await,
        Err(ScanError::BadUrl(_))
    ));
    let mut o = opts();
    o.ca_cert_pem = Some(b"not pem".to_vec());
    assert!(matches!(
        scan("https://localhost/", &o).await,
        Err(ScanError::BadCaCert(_))
    ));
}

#[tokio::test]
async fn nothing_listening_is_a_finding() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let r = audit(&format!("http://127.0.0.1:{port}/"), &opts())
        .await
        .expect("scan");
    let net = r.finding("AUD-NET-001").expect("finding");
    assert_eq!(net.verdict, Verdict::Fail);
    assert!(net.evidence.contains("cannot connect"), "{}", net.evidence);
}

#[tokio::test]
async fn a_huge_time_budget_counts_as_a_day_not_a_panic() {
    // `Instant::now() + Duration::MAX` overflows the clock.
    let url = serve(weak_app()).await;
    let mut o = Options::new();
    o.max_time = Duration::MAX;
    o.max_requests = 5;
    let obs = scan(&url, &o).await.expect("scan");
    assert_eq!(obs.main.as_ref().map(|p| p.status).ok(), Some(200));
    assert_eq!(obs.requests, 5);
}

#[tokio::test]
async fn a_huge_burst_does_not_overflow_the_reserve() {
    // The crawl keeps the burst's requests (plus three) in reserve: u32::MAX + 3 overflowed.
    let url = serve(weak_app()).await;
    let mut o = opts();
    o.max_requests = 12;
    o.rate_limit_path = Some("/api/ping".into());
    o.burst = u32::MAX;
    let obs = scan(&url, &o).await.expect("scan");
    assert!(obs.requests <= 12, "{}", obs.requests);
    assert!(
        matches!(&obs.rate, Probe::Done(r) if r.sent >= 1 && r.limited == 0),
        "{:?}",
        obs.rate
    );
}

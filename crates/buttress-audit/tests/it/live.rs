//! The hardened stack grades A+ with no fail; the weak app has every weakness found;
//! `--compare` puts them side by side.

use buttress_audit::scan::{audit, Options};
use buttress_audit::{report, Verdict};

use crate::fixtures::*;

#[tokio::test]
async fn hardened_stack_grades_a_plus_with_no_fail() {
    let h = hardened("hardened").await;
    let mut opts = h.options();
    opts.active = true;
    opts.rate_limit_path = None;
    let r = audit(&h.url, &opts).await.expect("scan runs");
    let table = report::table(&r, false);
    assert_eq!(r.grade, "A+", "{table}");
    let fails: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .collect();
    assert!(fails.is_empty(), "{fails:#?}");
    let obs = r.observatory.as_ref().expect("observatory view");
    assert_eq!(obs.grade, "A+");
    assert_eq!(
        obs.score, r.score,
        "our checks all pass, so the scores agree"
    );
    assert_eq!(
        r.finding("AUD-RED-001").map(|f| f.verdict),
        Some(Verdict::Pass),
        "the redirect listener sends plain HTTP to HTTPS on the first hop"
    );
    assert_eq!(
        r.finding("AUD-TLS-001").map(|f| f.verdict),
        Some(Verdict::Pass)
    );
    assert!(r.requests <= 60);
    h.stop().await;
}

fn verdict(r: &buttress_audit::Report, id: &str) -> Verdict {
    r.finding(id).map_or(Verdict::Info, |f| f.verdict)
}

#[tokio::test]
async fn weak_app_has_every_weakness_found() {
    let url = serve(weak_app()).await;
    let mut opts = Options::new();
    opts.active = true;
    opts.rate_limit_path = Some("/api/ping".into());
    opts.burst = 10;
    let r = audit(&url, &opts).await.expect("scan runs");
    let table = report::table(&r, false);
    assert_eq!(r.grade, "F", "{table}");
    for (id, want) in [
        ("AUD-TLS-001", Verdict::Fail),  // plain HTTP
        ("AUD-RED-001", Verdict::Fail),  // no redirect to HTTPS
        ("AUD-CSP-001", Verdict::Fail),  // no CSP
        ("AUD-HSTS-001", Verdict::Fail), // no HTTPS, no HSTS
        ("AUD-XFO-001", Verdict::Fail),  // frameable
        ("AUD-XCTO-001", Verdict::Warn), // no nosniff
        ("AUD-BAN-001", Verdict::Fail),  // Server: Apache/2.4.1
        ("AUD-COOK-001", Verdict::Fail), // session cookie without Secure
        ("AUD-COOK-002", Verdict::Fail), // ... nor HttpOnly
        ("AUD-COOK-003", Verdict::Warn), // ... nor SameSite
        ("AUD-CSRF-001", Verdict::Warn), // form without token
        ("AUD-CSRF-002", Verdict::Fail), // cross-site POST accepted
        ("AUD-CORS-001", Verdict::Fail), // any Origin reflected with credentials
        ("AUD-LEAK-001", Verdict::Fail), // Rust panic on 404
        ("AUD-LEAK-002", Verdict::Fail), // Werkzeug debugger on bad input
        ("AUD-LEAK-003", Verdict::Fail), // directory listing
        ("AUD-RATE-001", Verdict::Fail), // no 429
    ] {
        assert_eq!(verdict(&r, id), want, "{id}\n{table}");
    }
    let ev = |id| {
        r.finding(id)
            .map(|f| f.evidence.clone())
            .unwrap_or_default()
    };
    assert!(ev("AUD-BAN-001").contains("Apache/2.4.1"));
    assert!(ev("AUD-COOK-001").contains("session=…"));
    assert!(
        ev("AUD-LEAK-001").contains("panicked at"),
        "{}",
        ev("AUD-LEAK-001")
    );
    assert!(
        ev("AUD-LEAK-002").contains("Werkzeug"),
        "{}",
        ev("AUD-LEAK-002")
    );
    assert!(ev("AUD-CSRF-002").contains("/comment"));
    assert!(
        ev("AUD-RATE-001").starts_with("10 request(s)"),
        "{}",
        ev("AUD-RATE-001")
    );
    assert!(
        r.findings
            .iter()
            .all(|f| f.verdict == Verdict::Pass || f.verdict == Verdict::Info || !f.fix.is_empty()),
        "every warn and fail has a fix"
    );
}

#[tokio::test]
async fn active_probes_need_loopback_or_an_allowed_host() {
    // The weak app reached under a real-looking name (resolved to loopback by the scanner).
    let url = serve(weak_app()).await;
    let port: u16 = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let named = format!("http://weak.example:{port}/");
    let mut opts = Options::new();
    opts.resolve = vec![("weak.example".into(), ([127, 0, 0, 1], port).into())];
    opts.active = true;
    opts.rate_limit_path = Some("/api/ping".into());
    let r = audit(&named, &opts).await.expect("scan");
    for id in ["AUD-CSRF-002", "AUD-RATE-001"] {
        let f = r.finding(id).expect("finding");
        assert_eq!(f.verdict, Verdict::Info, "{f:?}");
        assert!(
            f.evidence
                .contains("weak.example is not loopback and not named by --allow-host"),
            "{f:?}"
        );
    }
    assert_eq!(
        r.finding("AUD-CSRF-001").map(|f| f.verdict),
        Some(Verdict::Warn),
        "passive checks still run"
    );

    opts.allow_hosts = vec!["WEAK.example".into()];
    let r = audit(&named, &opts).await.expect("scan");
    assert_eq!(verdict(&r, "AUD-CSRF-002"), Verdict::Fail);
    assert_eq!(verdict(&r, "AUD-RATE-001"), Verdict::Fail);
}

#[tokio::test]
async fn rate_limit_probe_sees_429_and_retry_after() {
    let url = serve(limited_app()).await;
    let mut opts = Options::new();
    opts.rate_limit_path = Some("/login".into());
    let r = audit(&url, &opts).await.expect("scan");
    let f = r.finding("AUD-RATE-001").expect("finding");
    assert_eq!(f.verdict, Verdict::Pass, "{f:?}");
    assert!(
        f.evidence.starts_with("6 request(s)")
            && f.evidence.contains("first at #6, Retry-After: 60"),
        "{}",
        f.evidence
    );

    opts.rate_limit_path = Some("/bare".into());
    let r = audit(&url, &opts).await.expect("scan");
    assert_eq!(
        verdict(&r, "AUD-RATE-001"),
        Verdict::Warn,
        "429 without Retry-After"
    );
}

#[tokio::test]
async fn compare_weak_against_hardened() {
    let h = hardened("compare").await;
    let weak = serve(weak_app()).await;
    let mut probe = Options::new();
    probe.active = true;
    probe.rate_limit_path = Some("/api/ping".into());
    probe.burst = 5;
    let a = audit(&weak, &probe).await.expect("weak scan");
    let mut hard = h.options();
    hard.active = true;
    let b = audit(&h.url, &hard).await.expect("hardened scan");
    let side = report::compare_table(&a, &b, false);
    assert!(side.contains(&format!("left:  {weak}  grade F")), "{side}");
    assert!(
        side.contains(&format!("right: {}  grade A+", h.url)),
        "{side}"
    );
    let csp = side
        .lines()
        .find(|l| l.contains("AUD-CSP-001"))
        .expect("CSP row");
    assert!(
        csp.starts_with(" ≠") && csp.contains("fail") && csp.contains("pass"),
        "{csp}"
    );
    let rows = report::compare_rows(&a, &b);
    assert!(rows.iter().filter(|r| r.differs).count() >= 10, "{side}");
    let json: serde_json::Value =
        serde_json::from_str(&report::compare_json(&a, &b)).expect("json");
    assert_eq!(json["left"]["grade"], "F");
    assert_eq!(json["right"]["grade"], "A+");
    let page = report::html_compare(&a, &b);
    // For the docs: AUDIT_REPORT_DIR=dir keeps the reports of this run.
    if let Some(dir) = std::env::var_os("AUDIT_REPORT_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::write(dir.join("compare.html"), &page).expect("write");
        std::fs::write(dir.join("weak.html"), report::html(&a)).expect("write");
        std::fs::write(dir.join("hardened.html"), report::html(&b)).expect("write");
        std::fs::write(dir.join("weak.txt"), report::table(&a, false)).expect("write");
        std::fs::write(dir.join("compare.txt"), &side).expect("write");
    }
    assert!(page.contains("<svg") && !page.contains("<script") && !page.contains("http-equiv"));
    h.stop().await;
}

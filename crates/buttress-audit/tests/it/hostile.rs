//! What the scanner must not do whatever the scanned server answers, and whatever the URL
//! holds: leak the URL's credentials, or send its active probes anywhere but the origin given.

use axum::response::{Html, Redirect};
use axum::routing::get;
use axum::Router;
use std::net::{IpAddr, UdpSocket};

use buttress_audit::scan::{audit, scan, Options, ScanError};
use buttress_audit::{report, Report, Verdict};

use crate::fixtures::*;

#[tokio::test]
async fn url_credentials_go_to_their_origin_only_and_are_never_shown() {
    let https = Seen::default();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                Html("<a href=\"/next\">next</a><form method=post><input name=q></form>")
            }),
        )
        .route("/next", get(|| async { Html("next") }));
    let h = hardened_with("credentials", recorded(app, &https)).await;
    // The plain-HTTP probe goes to a listener of ours that records what it gets.
    let http = Seen::default();
    let listener = serve(recorded(
        Router::new().fallback(|| async { Redirect::permanent("https://localhost/") }),
        &http,
    ))
    .await;
    let mut opts = h.options();
    opts.http_port = Some(port_of(&listener));
    let url = h.url.replacen("https://", "https://scanner:s3cret@", 1);
    let r = audit(&url, &opts).await.expect("scan");

    let on_https = https.lines();
    assert!(
        on_https.iter().any(|l| l.starts_with("GET /next ")),
        "crawled: {on_https:?}"
    );
    assert!(
        on_https
            .iter()
            .all(|l| l.ends_with(" Basic c2Nhbm5lcjpzM2NyZXQ=")),
        "the origin given gets them: {on_https:?}"
    );
    assert_eq!(
        http.lines(),
        vec!["GET / -".to_owned()],
        "never over plain HTTP"
    );

    assert_eq!(r.target, h.url);
    assert!(
        r.notes.iter().any(|n| n.contains("user name and password")),
        "{:?}",
        r.notes
    );
    for (format, out) in [
        ("table", report::table(&r, false)),
        ("json", report::json(&r)),
        ("sarif", report::sarif(&r)),
        ("html", report::html(&r)),
    ] {
        assert!(
            !out.contains("s3cret") && !out.contains("scanner@") && !out.contains("scanner:"),
            "{format}: {out}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_rate_limit_path_off_the_origin_is_refused_before_any_request() {
    // The guard checked the page's host, but the burst went to page.join(PATH).
    let site = Seen::default();
    let url = serve(recorded(weak_app(), &site)).await;
    let victim = Seen::default();
    let victim_port = port_of(&serve(recorded(limited_app(), &victim)).await);
    for path in [
        format!("//127.0.0.1:{victim_port}/login"),
        format!("http://127.0.0.1:{victim_port}/login"),
        "https://victim.example/login".to_owned(),
    ] {
        let mut opts = Options::new();
        opts.rate_limit_path = Some(path.clone());
        let e = scan(&url, &opts).await.expect_err(&path);
        assert!(
            matches!(&e, ScanError::BadProbePath(m) if m.contains("off the scanned origin")),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("bad --probe-rate-limit path:"),
            "{e}"
        );
    }
    assert_eq!(site.lines(), Vec::<String>::new());
    assert_eq!(victim.lines(), Vec::<String>::new());
}

fn verdict_and_evidence(r: &Report, id: &str) -> (Verdict, String) {
    r.finding(id)
        .map(|f| (f.verdict, f.evidence.clone()))
        .unwrap_or((Verdict::Info, String::new()))
}

/// The probes that change state or load the site, in what a recorded app saw.
fn probed(seen: &Seen) -> Vec<String> {
    seen.lines()
        .into_iter()
        .filter(|l| l.starts_with("POST ") || l.contains(" /api/ping "))
        .collect()
}

/// A non-loopback address of this machine, if it has one: the one a UDP socket "connected" to
/// a documentation address would send from (connecting sends nothing).
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    [
        "192.0.2.1:9",
        "198.51.100.1:9",
        "203.0.113.1:9",
        "10.255.255.1:9",
    ]
    .iter()
    .filter(|to| socket.connect(to).is_ok())
    .filter_map(|_| socket.local_addr().ok())
    .map(|a| a.ip())
    .find(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

#[tokio::test]
async fn resolve_to_a_non_loopback_address_keeps_the_probes_off() {
    // `--resolve localhost=PUBLIC` passed the guard, which checked only the name.
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no non-loopback address");
        return;
    };
    let seen = Seen::default();
    let port = port_of(&serve_on(recorded(weak_app(), &seen), ip).await);
    let url = format!("http://localhost:{port}/");
    let mut opts = Options::new();
    opts.resolve = vec![("localhost".into(), (ip, port).into())];
    opts.active = true;
    opts.rate_limit_path = Some("/api/ping".into());
    opts.burst = 5;
    let r = audit(&url, &opts).await.expect("scan");
    assert_eq!(
        verdict_and_evidence(&r, "AUD-CSRF-001").0,
        Verdict::Warn,
        "the page was read, at {ip}"
    );
    for id in ["AUD-CSRF-002", "AUD-RATE-001"] {
        let (v, e) = verdict_and_evidence(&r, id);
        assert_eq!(v, Verdict::Info, "{id}: {e}");
        assert!(
            e.contains(&format!(
                "--resolve sends localhost to {ip}, which is not loopback"
            )),
            "{id}: {e}"
        );
    }
    assert_eq!(probed(&seen), Vec::<String>::new());

    // Named by --allow-host, the host is probed wherever it is.
    opts.allow_hosts = vec!["localhost".into()];
    let r = audit(&url, &opts).await.expect("scan");
    assert_eq!(verdict_and_evidence(&r, "AUD-CSRF-002").0, Verdict::Fail);
    assert_eq!(verdict_and_evidence(&r, "AUD-RATE-001").0, Verdict::Fail);
    assert!(probed(&seen).len() >= 6, "{:?}", probed(&seen));
}

#[tokio::test]
async fn a_redirect_to_another_port_keeps_the_probes_on_the_origin_given() {
    // The guard compared hosts only: a loopback site could send the POSTs and the burst to
    // any other port of the machine by redirecting there.
    let seen = Seen::default();
    let other = serve(recorded(weak_app(), &seen)).await;
    let to = other.clone();
    let front = serve(Router::new().route(
        "/",
        get(move || {
            let to = to.clone();
            async move { Redirect::temporary(&to) }
        }),
    ))
    .await;
    let mut opts = Options::new();
    opts.active = true;
    opts.rate_limit_path = Some("/api/ping".into());
    opts.burst = 5;
    let r = audit(&front, &opts).await.expect("scan");
    assert_eq!(
        r.final_url.as_deref(),
        Some(other.as_str()),
        "the page is still read there"
    );
    for id in ["AUD-CSRF-002", "AUD-RATE-001"] {
        let (v, e) = verdict_and_evidence(&r, id);
        assert_eq!(v, Verdict::Info, "{id}: {e}");
        assert!(
            e.contains("another origin than the URL given") && e.contains(&format!("scan {other}")),
            "{id}: {e}"
        );
    }
    assert_eq!(probed(&seen), Vec::<String>::new());
}

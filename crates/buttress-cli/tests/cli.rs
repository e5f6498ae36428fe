//! The `buttress` binary end to end: keygen, check, and serve's refusals, serving and shutdown.

#![allow(missing_docs)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use support::*;

#[test]
fn keygen_prints_a_fresh_strong_key() {
    let a = run(&["keygen"], &[]);
    let b = run(&["keygen"], &[]);
    assert!(a.status.success());
    let key = text(&a.stdout).trim().to_owned();
    assert_eq!(key.len(), 43, "{key}");
    assert_ne!(key, text(&b.stdout).trim());
    buttress::secret::SecretKey::from_bytes(key.into_bytes())
        .check_strength()
        .expect("keygen output passes the strength check");
}

#[test]
fn keygen_reads_no_settings() {
    // A bad variable for another command, and a settings file that does not exist, are none of
    // keygen's business.
    let out = run(
        &["keygen"],
        &[
            ("BUTTRESS_BIND", "garbage"),
            ("BUTTRESS_ENV", "staging"),
            ("BUTTRESS_NOT_A_SETTING", "1"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim().len(), 43);
    // The same environment stops a command that reads settings, naming the variable.
    let out = run(&["check"], &[("BUTTRESS_BIND", "garbage")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("BUTTRESS_BIND"),
        "{}",
        text(&out.stderr)
    );
    // Settings flags are not offered where nothing reads them.
    let out = run(&["keygen", "--config", "/nonexistent.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn production_flag_is_offered_only_where_it_means_something() {
    for args in [
        &["audit", "--production", "http://127.0.0.1:9/"][..],
        &["--production", "audit", "http://127.0.0.1:9/"],
        &["keygen", "--production"],
    ] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error");
        let err = text(&out.stderr);
        assert!(err.contains("--production"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing was scanned");
    }
    for command in ["serve", "check"] {
        let help = text(&run(&[command, "--help"], &[]).stdout);
        assert!(
            help.contains("--production") && help.contains("--config"),
            "{command}: {help}"
        );
    }
    for command in ["audit", "keygen"] {
        let help = text(&run(&[command, "--help"], &[]).stdout);
        assert!(
            !help.contains("--production") && !help.contains("--config"),
            "{command}: {help}"
        );
    }
}

#[test]
fn check_on_defaults_fails_with_ids_and_fixes() {
    let out = run(&["check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    for id in ["BTR-E002", "BTR-E005", "BTR-W001"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {stdout}"));
        assert!(line.contains("Fix:"), "{line}");
    }
}

#[test]
fn check_wants_mail_in_production_and_never_prints_its_password() {
    let env: Vec<_> = hardened_env()
        .into_iter()
        .filter(|(k, _)| *k != "BUTTRESS_SMTP_URL" && *k != "BUTTRESS_PUBLIC_URL")
        .collect();
    let out = run(&["check"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    for id in ["PTL-E001", "PTL-E002"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {stdout}"));
        assert!(line.contains("BUTTRESS_"), "{line}");
    }
    let out = run(&["serve"], &env);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("PTL-E001"),
        "{}",
        text(&out.stderr)
    );
    // A plain-text SMTP URL to another host is a warning; the password never shows.
    let mut plain = hardened_env();
    plain.push((
        "BUTTRESS_SMTP_URL",
        "smtp://registry:hunter2pw@mail.example.org:25",
    ));
    let out = run(&["check", "--format", "json"], &plain);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("PTL-W001") && all.contains("mail.example.org"),
        "{all}"
    );
    assert!(!all.contains("hunter2pw"), "{all}");
}

#[test]
fn check_json_and_exit_codes() {
    let out = run(&["check", "--format", "json"], &hardened_env());
    assert!(out.status.success(), "{}", text(&out.stdout));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["environment"], "production");
    assert_eq!(doc["errors"], 0);

    let mut weak = hardened_env();
    weak.push(("BUTTRESS_INSTANCES", "2"));
    weak.push(("BUTTRESS_CSP", "default-src 'self' 'unsafe-inline'"));
    let out = run(&["check", "--format", "json"], &weak);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = doc["findings"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"BTR-E011") && ids.contains(&"BTR-E009"),
        "{ids:?}"
    );
    for f in doc["findings"].as_array().expect("array") {
        for field in ["id", "severity", "message", "fix"] {
            assert!(f[field].is_string(), "{f}");
        }
    }
}

#[test]
fn config_file_and_flags() {
    let tmp = tempfile::Builder::new()
        .prefix("buttress-cli-cfg-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().to_path_buf();
    let cfg = dir.join("buttress.toml");
    std::fs::write(&cfg, "behind_proxy = true\ntrusted_proxies = [\"10.0.0.0/8\"]\nallowed_hosts = [\"example.org\"]\nhsts_preload = true\nsmtp_url = \"smtps://mail.example.org:465\"\npublic_url = \"https://example.org\"\n").expect("write");
    let out = run(
        &[
            "check",
            "--production",
            "--config",
            cfg.to_str().expect("utf-8"),
        ],
        &[("SECRET_KEY", STRONG_KEY)],
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    std::fs::write(&cfg, "hsts_max_ag = 5\n").expect("write");
    let out = run(&["check", "--config", cfg.to_str().expect("utf-8")], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("did you mean hsts_max_age"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_refuses_weak_key_in_production() {
    let mut env = hardened_env();
    env.retain(|(k, _)| *k != "SECRET_KEY");
    env.push(("SECRET_KEY", "changeme-changeme-changeme-changeme-123"));
    let out = run(&["serve", "--bind", "127.0.0.1:0"], &env);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("buttress keygen"), "{err}");
    assert!(
        !err.contains("changeme-changeme"),
        "the key is never echoed: {err}"
    );

    env.retain(|(k, _)| *k != "SECRET_KEY");
    let out = run(&["serve", "--bind", "127.0.0.1:0"], &env);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("no secret key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_refuses_public_address_in_development_and_bad_values() {
    let out = run(&["serve", "--bind", "0.0.0.0:0"], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("BUTTRESS_ENV=production"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["serve"], &[("BUTTRESS_BODY_LIMIT", "lots")]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("BUTTRESS_BODY_LIMIT") && err.contains("Fix:"),
        "{err}"
    );
    let out = run(&["serve", "--bind", "nowhere"], &[]);
    assert!(
        text(&out.stderr).contains("flag --bind"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn serve_answers_through_the_stack_and_stops_on_sigterm() {
    let mut s = serve(&["serve", "--bind", "127.0.0.1:0"], &[]);
    let res = reqwest::get(format!("{}/", s.url)).await.expect("GET /");
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    let body = res.text().await.expect("body");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|n| n.split('\'').next())
        .expect("nonce");
    assert!(body.contains(&format!("nonce=\"{nonce}\"")));
    assert_eq!(
        reqwest::get(format!("{}/healthz", s.url))
            .await
            .expect("GET")
            .text()
            .await
            .expect("body"),
        "ok"
    );
    let status = sigterm(&mut s.child);
    assert!(status.success(), "{status:?} {:?}", s.lines);
}

#[tokio::test]
async fn serve_dev_tls_with_redirect_listener() {
    let tmp = tempfile::Builder::new()
        .prefix("buttress-cli-tls-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().to_path_buf();
    let data = dir.to_str().expect("utf-8").to_owned();
    let mut s = serve(
        &[
            "serve",
            "--dev-tls",
            "--bind",
            "127.0.0.1:0",
            "--http-bind",
            "127.0.0.1:0",
        ],
        &[("BUTTRESS_DATA_DIR", &data)],
    );
    assert!(s.url.starts_with("https://localhost:"), "{}", s.url);
    let pem = std::fs::read(dir.join("dev-tls/cert.pem")).expect("cert written");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = client
        .get(format!("{}/", s.url))
        .send()
        .await
        .expect("GET over TLS");
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("strict-transport-security"));
    let http_addr = s
        .lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("buttress: plain HTTP on "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("redirect listener announced")
        .to_owned();
    let plain = client
        .get(format!("http://{http_addr}/donors?q=1"))
        .send()
        .await
        .expect("plain GET");
    assert_eq!(plain.status(), 301);
    let tls_port = s.url.rsplit(':').next().expect("port");
    let http_host = http_addr.rsplit_once(':').expect("host:port").0;
    assert_eq!(
        plain.headers()["location"].to_str().expect("ascii"),
        format!("https://{http_host}:{tls_port}/donors?q=1"),
        "same host, the TLS listener's port"
    );
    let status = sigterm(&mut s.child);
    assert!(status.success());
}

#[tokio::test]
async fn serve_runs_the_portal_with_demo_donors() {
    let mut s = serve(
        &["serve", "--bind", "127.0.0.1:0", "--seed-demo", "40"],
        &[],
    );
    let home = reqwest::get(format!("{}/", s.url)).await.expect("GET /");
    assert_eq!(home.status(), 200);
    assert!(home
        .text()
        .await
        .expect("body")
        .contains("Blood donor registry"));
    let doc: serde_json::Value = reqwest::get(format!("{}/api/donors", s.url))
        .await
        .expect("GET /api/donors")
        .json()
        .await
        .expect("json");
    let total = doc["total"].as_u64().expect("total");
    assert!((20..=40).contains(&total), "available demo donors: {total}");
    assert!(
        doc["items"][0].get("phone").is_none(),
        "no phones for anonymous clients"
    );
    let login = reqwest::get(format!("{}/login", s.url))
        .await
        .expect("GET /login");
    assert!(login
        .headers()
        .get("set-cookie")
        .is_some_and(|c| c.to_str().unwrap_or("").contains("HttpOnly")));
    let status = sigterm(&mut s.child);
    assert!(status.success(), "{status:?} {:?}", s.lines);
}

#[test]
fn audit_grades_the_served_portal_a_plus() {
    let tmp = tempfile::Builder::new()
        .prefix("buttress-cli-audit-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().to_path_buf();
    let data = dir.to_str().expect("utf-8").to_owned();
    let mut s = serve(
        &[
            "serve",
            "--dev-tls",
            "--bind",
            "127.0.0.1:0",
            "--http-bind",
            "127.0.0.1:0",
        ],
        &[("BUTTRESS_DATA_DIR", &data)],
    );
    let http_port = s
        .lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("buttress: plain HTTP on "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.rsplit(':').next())
        .expect("redirect listener")
        .to_owned();
    let cert = dir.join("dev-tls/cert.pem");
    let out = run(
        &[
            "audit",
            &format!("{}/login", s.url),
            "--active",
            "--probe-rate-limit",
            "/login",
            "--ca-cert",
            cert.to_str().expect("utf-8"),
            "--http-port",
            &http_port,
            "--min-grade",
            "A+",
            "--format",
            "json",
        ],
        &[],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["grade"], "A+");
    for f in report["findings"].as_array().expect("findings") {
        assert!(
            matches!(f["verdict"].as_str(), Some("pass" | "info")),
            "{f:#}"
        );
    }
    let csrf = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["id"] == "AUD-CSRF-002")
        .expect("active CSRF probe");
    assert_eq!(
        csrf["verdict"], "pass",
        "tokenless cross-site POSTs refused"
    );
    let status = sigterm(&mut s.child);
    assert!(status.success());
}

#[tokio::test]
async fn serve_on_a_fresh_clone_keeps_sqlite_in_buttress_data() {
    let tmp = tempfile::Builder::new()
        .prefix("buttress-cli-fresh-")
        .tempdir()
        .expect("temp dir");
    let cwd = tmp.path().to_path_buf();
    let child = buttress(&["serve", "--bind", "127.0.0.1:0"], &[])
        .current_dir(&cwd)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut s = Served {
        child,
        url: String::new(),
        lines: Vec::new(),
        data: None,
    };
    let mut reader = BufReader::new(s.child.stderr.take().expect("stderr"));
    while s.url.is_empty() {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("read") > 0,
            "{:?}",
            s.lines
        );
        if let Some(rest) = line.trim().strip_prefix("buttress: listening on ") {
            s.url = rest.trim_end_matches('/').to_owned();
        }
        s.lines.push(line);
    }
    std::thread::spawn(move || for _ in reader.lines() {});
    let res = reqwest::get(format!("{}/requests", s.url))
        .await
        .expect("GET");
    assert_eq!(res.status(), 200);
    assert!(cwd.join("buttress-data/portal.sqlite3").is_file());
    assert!(sigterm(&mut s.child).success());
}

/// `buttress serve` with `BUTTRESS_METRICS_BIND` starts the private metrics listener, and with
/// `BUTTRESS_LOG_FORMAT=json` logs a refusal as one JSON line; `/metrics` is not on the site.
#[tokio::test]
async fn serve_with_metrics_and_json_logs() {
    let data = std::env::temp_dir().join(format!("buttress-cli-metrics-{}", std::process::id()));
    let mut child = buttress(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            ("RUST_LOG", "info"),
            ("BUTTRESS_LOG_FORMAT", "json"),
            ("BUTTRESS_METRICS_BIND", "127.0.0.1:0"),
            ("BUTTRESS_ALLOWED_HOSTS", "localhost, 127.0.0.1"),
            ("BUTTRESS_DATA_DIR", data.to_str().expect("utf-8")),
        ],
    )
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .expect("spawn");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
    let seen = lines.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.contains("buttress: listening on") {
                let _ = tx.send(());
            }
            seen.lock().expect("lines").push(std::mem::take(&mut line));
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no listening line: {:?}", lines.lock().expect("lines")));
    let text = lines.lock().expect("lines").join("");
    let find = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
    };
    let app = find("buttress: listening on ")
        .trim_end_matches('/')
        .to_owned();
    let metrics = find("buttress: metrics on ");
    let addr: std::net::SocketAddr = app
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1")
        .parse()
        .expect("address");

    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    std::io::Write::write_all(
        &mut s,
        b"GET / HTTP/1.1\r\nHost: evil.example\r\nCookie: session=cookie-secret-31337\r\nConnection: close\r\n\r\n",
    )
    .expect("write");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let public = reqwest::get(format!("{app}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(public.status(), 404);
    let scraped = reqwest::get(&metrics)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert!(
        scraped.contains(r#"buttress_refusals_total{layer="proxy",reason="host"} 1"#),
        "{scraped}"
    );

    let status = sigterm(&mut child);
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&data);
    let text = lines.lock().expect("lines").join("");
    assert!(!text.contains("cookie-secret"), "{text}");
    let event: serde_json::Value = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .find(|e| e["event"] == "refusal")
        .unwrap_or_else(|| panic!("no refusal event in {text}"));
    assert_eq!(event["layer"], "proxy");
    assert_eq!(event["reason"], "host");
    assert_eq!(event["status"], 400);
    assert_eq!(event["client"], "127.0.0.1");
    assert_eq!(event["target"], "buttress::security");
}

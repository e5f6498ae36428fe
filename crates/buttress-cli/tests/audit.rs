//! `buttress audit` from the command line: output formats, exit codes, no settings needed, and
//! the CI features against the real portal (`buttress serve`): `--baseline`, `--ca-cert` with
//! certificates made by the `openssl` binary, signed-in scans with `--cookie`/`--header`, and
//! the progress bar. (Live scans of other fixtures are in `crates/buttress-audit/tests`.)

#![allow(missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{serve, text, STRONG_KEY};

fn audit(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buttress"));
    c.arg("audit").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run buttress audit")
}

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}/")
}

#[test]
fn unreachable_site_is_graded_f_not_an_error() {
    let url = closed_port_url();
    let out = audit(&[&url, "--format", "json", "--max-time", "5s"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["grade"], "F");
    assert_eq!(v["findings"][0]["id"], "AUD-NET-001");
    assert_eq!(v["findings"][0]["verdict"], "fail");
}

#[test]
fn min_grade_sets_the_exit_code() {
    let url = closed_port_url();
    let out = audit(&[&url, "--min-grade", "B", "--format", "sarif"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("below --min-grade B"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sarif");
    assert_eq!(v["version"], "2.1.0");
    let out = audit(&[&url, "--min-grade", "F"], &[]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(audit(&["ftp://example.org/"], &[]).status.code(), Some(2));
    assert_eq!(
        audit(&["http://localhost/", "--min-grade", "Z"], &[])
            .status
            .code(),
        Some(2)
    );
    let out = audit(
        &["https://localhost/", "--ca-cert", "/nonexistent/ca.pem"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca-cert"));
    // A budget past a day would overflow the scan's deadline: refused, not a panic.
    let out = audit(
        &["http://localhost/", "--max-time", "9999999999999999999s"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-time") && err.contains("longer than a day"),
        "{err}"
    );
    // The burst stays on the scanned origin.
    let out = audit(
        &[
            "http://127.0.0.1:9/",
            "--probe-rate-limit",
            "//victim.example/login",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad --probe-rate-limit path") && err.contains("victim.example"),
        "{err}"
    );
}

#[test]
fn audit_needs_no_settings() {
    // Settings that would refuse to load (Production with a weak key, a bad bind address)
    // do not matter to a scan of another site.
    let url = closed_port_url();
    let out = audit(
        &[&url, "--format", "json"],
        &[
            ("BUTTRESS_ENV", "production"),
            ("SECRET_KEY", "short"),
            ("BUTTRESS_BIND", "not an address"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn html_report_is_self_contained() {
    let url = closed_port_url();
    let tmp = tempfile::Builder::new()
        .prefix("buttress-audit-cli-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().to_path_buf();
    let file = dir.join("report.html");
    let out = audit(
        &[
            &url,
            "--format",
            "html",
            "--output",
            file.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(&file).expect("written");
    assert!(page.starts_with("<!doctype html>") && page.contains("<svg"));
    for external in ["<script", "<link", "src=\"http", "url(http", "@import"] {
        assert!(!page.contains(external), "{external}");
    }
}

/// A fresh temporary directory for one test.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("buttress-audit-ci-{name}-"))
        .tempdir()
        .expect("scratch dir")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == id))
        .unwrap_or_else(|| panic!("{id} in {report:#}"))
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl binary (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
}

/// The usual one-liner: a self-signed certificate for 127.0.0.1 and localhost, which OpenSSL
/// marks `CA:TRUE`. Returns (certificate, key).
fn one_liner(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "30",
        ],
    );
    let shown = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", &cert])
        .current_dir(dir)
        .output()
        .expect("openssl x509");
    assert!(text(&shown.stdout).contains("CA:TRUE"), "the case at hand");
    (dir.join(cert), dir.join(key))
}

/// The same kind of certificate, valid in January 2020 only (`openssl ca -selfsign`).
fn expired_one(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n\
         [ext]\nbasicConstraints = critical,CA:TRUE\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ca.cnf");
    std::fs::write(dir.join("index.txt"), "").expect("index");
    std::fs::write(dir.join("serial"), "01\n").expect("serial");
    openssl(dir, &["genrsa", "-out", "old.key", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "old.key",
            "-subj",
            "/CN=127.0.0.1",
            "-out",
            "old.csr",
        ],
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "old.key",
            "-in",
            "old.csr",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-extensions",
            "ext",
            "-out",
            "old.pem",
        ],
    );
    (dir.join("old.pem"), dir.join("old.key"))
}

/// The portal in Production, serving HTTPS with `cert` and `key` on a free loopback port.
fn production_tls(cert: &Path, key: &Path) -> support::Served {
    serve(
        &[
            "serve",
            "--production",
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            path(cert),
            "--tls-key",
            path(key),
        ],
        &[
            ("SECRET_KEY", STRONG_KEY),
            ROOMY_LIMIT,
            PRODUCTION_MAIL.0,
            PRODUCTION_MAIL.1,
        ],
    )
}

/// Production needs a mail server and the origin of mailed links (`PTL-E001`, `PTL-E002`);
/// nothing is sent in these tests, so a closed loopback port does.
const PRODUCTION_MAIL: ((&str, &str), (&str, &str)) = (
    ("BUTTRESS_SMTP_URL", "smtp://127.0.0.1:1"),
    ("BUTTRESS_PUBLIC_URL", "https://localhost"),
);

/// A global limit that several scans from one address stay under (the default allows 50 an
/// hour).
const ROOMY_LIMIT: (&str, &str) = ("BUTTRESS_RATELIMIT_DEFAULT", "10000 per hour");

fn port(url: &str) -> String {
    url.rsplit(':')
        .next()
        .expect("port")
        .trim_end_matches('/')
        .to_owned()
}

#[test]
fn ca_cert_trusts_the_openssl_one_liner_and_nothing_more() {
    let tmp = scratch("pinned");
    let dir = tmp.path();
    let (cert, key) = one_liner(dir, "site");
    let (other, _) = one_liner(dir, "other");
    let site = production_tls(&cert, &key);
    let port = port(&site.url);

    // The portal in Production with the pinned certificate: verified, graded, not F.
    for url in [
        format!("https://127.0.0.1:{port}/"),
        format!("https://localhost:{port}/"),
    ] {
        let out = audit(
            &[
                &url,
                "--ca-cert",
                path(&cert),
                "--format",
                "json",
                "--min-grade",
                "A",
            ],
            &[],
        );
        let r = json(&out);
        assert_eq!(out.status.code(), Some(0), "{url}: {r:#}");
        assert_eq!(finding(&r, "AUD-TLS-001")["verdict"], "pass", "{url}");
        assert_eq!(finding(&r, "AUD-NET-001")["verdict"], "pass", "{url}");
    }

    // Another self-signed CA:TRUE certificate, not pinned: refused.
    let url = format!("https://127.0.0.1:{port}/");
    let r = json(&audit(
        &[&url, "--ca-cert", path(&other), "--format", "json"],
        &[],
    ));
    let tls = finding(&r, "AUD-TLS-001");
    assert_eq!(
        (tls["verdict"].as_str(), r["grade"].as_str()),
        (Some("fail"), Some("F")),
        "{r:#}"
    );
    assert!(
        tls["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("CaUsedAsEndEntity")),
        "{tls:#}"
    );

    // The pinned certificate, reached by a name it does not carry: refused.
    let wrong = format!("https://wrong.example:{port}/");
    let r = json(&audit(
        &[
            &wrong,
            "--ca-cert",
            path(&cert),
            "--resolve",
            "wrong.example=127.0.0.1",
            "--format",
            "json",
        ],
        &[],
    ));
    let tls = finding(&r, "AUD-TLS-001");
    assert_eq!(tls["verdict"], "fail", "{r:#}");
    assert!(
        tls["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("not valid for name \"wrong.example\"")),
        "{tls:#}"
    );

    // Without --ca-cert it is what it always was: unknown issuer, F.
    let r = json(&audit(&[&url, "--format", "json"], &[]));
    assert_eq!(finding(&r, "AUD-TLS-001")["verdict"], "fail");
    drop(site);
}

#[test]
fn ca_cert_refuses_an_expired_pinned_certificate() {
    let tmp = scratch("expired");
    let dir = tmp.path();
    let (cert, key) = expired_one(dir);
    let site = production_tls(&cert, &key);
    let url = format!("https://127.0.0.1:{}/", port(&site.url));
    let r = json(&audit(
        &[&url, "--ca-cert", path(&cert), "--format", "json"],
        &[],
    ));
    let tls = finding(&r, "AUD-TLS-001");
    assert_eq!(
        (tls["verdict"].as_str(), r["grade"].as_str()),
        (Some("fail"), Some("F")),
        "{r:#}"
    );
    assert!(
        tls["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("certificate expired")),
        "{tls:#}"
    );
    drop(site);
}

/// Signs up and in on the portal at `base` as a browser would; returns the session cookie.
async fn sign_in(base: &str) -> (String, String) {
    use buttress_testkit::form::{form_body, remember};
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (mut jar, mut token) = (None::<String>, None::<String>);
    let name = "session";
    let email = "auditor@example.org";
    let password = "correct horse battery staple 42";
    for (page, action) in [("/signup", "/signup"), ("/login", "/login")] {
        let mut req = client.get(format!("{base}{page}"));
        if let Some(c) = &jar {
            req = req.header("cookie", format!("{name}={c}"));
        }
        let res = req.send().await.expect("GET form");
        let cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let body = res.text().await.expect("page");
        remember(
            &mut jar,
            &mut token,
            name,
            cookies.iter().map(String::as_str),
            &body,
        );
        let body = form_body(&[
            ("csrf_token", token.as_deref().unwrap_or("")),
            ("email", email),
            ("password", password),
        ]);
        let res = client
            .post(format!("{base}{action}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", base)
            .header("cookie", format!("{name}={}", jar.as_deref().unwrap_or("")))
            .body(body)
            .send()
            .await
            .expect("POST form");
        assert_eq!(res.status(), 303, "{action}");
        let cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        remember(
            &mut jar,
            &mut token,
            name,
            cookies.iter().map(String::as_str),
            "",
        );
    }
    (name.to_owned(), jar.expect("a session cookie"))
}

#[tokio::test]
async fn a_signed_in_scan_sees_the_account_and_shows_no_secret() {
    let site = serve(&["serve", "--bind", "127.0.0.1:0"], &[ROOMY_LIMIT]);
    let base = site.url.clone();
    let (name, value) = sign_in(&base).await;
    let header_secret = "hdr-s3cret-value-4242";
    let profile = format!("{base}/profile");

    // Signed out, /profile sends the scanner to /login.
    let r = json(&audit(&[&profile, "--format", "json"], &[]));
    assert!(
        r["final_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/login")),
        "{r:#}"
    );

    // Signed in, it is the page judged, with no redirect.
    let tmp = scratch("signed-in");
    let dir = tmp.path();
    let cookie = format!("{name}={value}");
    let header = format!("X-Audit-Token: {header_secret}");
    let signed = |extra: &[&str]| {
        let mut a = vec![profile.as_str(), "--cookie", &cookie, "--header", &header];
        a.extend_from_slice(extra);
        audit(&a, &[("RUST_LOG", "trace")])
    };
    let out = signed(&["--format", "json"]);
    let r = json(&out);
    assert_eq!(r["final_url"], profile.as_str(), "{r:#}");
    assert_eq!(r["redirects"], serde_json::json!([]), "{r:#}");
    assert!(
        r["notes"].as_array().is_some_and(|n| n.iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.contains("signed in: X-Audit-Token, cookie session")))),
        "{r:#}"
    );
    let mut outputs = vec![("json".to_owned(), text(&out.stdout) + &text(&out.stderr))];
    for format in ["table", "sarif", "html"] {
        let file = dir.join(format!("report.{format}"));
        let out = signed(&[
            "--format",
            format,
            "--output",
            path(&file),
            "--json",
            path(&dir.join("also.json")),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        outputs.push((
            format!("{format} stdout+stderr"),
            text(&out.stdout) + &text(&out.stderr),
        ));
        outputs.push((
            format.to_owned(),
            std::fs::read_to_string(&file).expect("report"),
        ));
        outputs.push((
            "--json".to_owned(),
            std::fs::read_to_string(dir.join("also.json")).expect("json"),
        ));
    }
    for (what, out) in &outputs {
        assert!(!out.is_empty(), "{what}");
        for secret in [value.as_str(), header_secret] {
            assert!(!out.contains(secret), "{what} shows a secret: {out}");
        }
    }
    // The bad value is refused without being repeated.
    let out = audit(
        &[&profile, "--cookie", &format!("{name}={value}; x=1")],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains(&value), "{}", text(&out.stderr));
    drop(site);
}

#[test]
fn progress_bar_only_on_a_terminal_and_never_with_quiet() {
    let site = serve(
        &["serve", "--bind", "127.0.0.1:0", "--seed-demo", "3"],
        &[ROOMY_LIMIT],
    );
    let url = format!("{}/", site.url);
    let tmp = scratch("progress");
    let dir = tmp.path();
    let report = dir.join("report.txt");
    let bin = env!("CARGO_BIN_EXE_buttress");
    // stderr a pipe: no bar, nothing but the grade line.
    let out = audit(&[&url, "--output", path(&report)], &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains('\r') && !err.contains("\u{1b}[") && !err.contains("requests"),
        "{err:?}"
    );
    assert!(err.contains("graded"), "{err}");
    let out = audit(&[&url, "--output", path(&report), "--quiet"], &[]);
    assert_eq!(text(&out.stderr), "", "--quiet");
    // stderr a terminal (util-linux `script` runs the command on a pseudo-terminal): a bar,
    // unless --quiet.
    let on_tty = |quiet: &str| {
        let cmd = format!("{bin} audit {url} --output {} {quiet}", path(&report));
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("TERM", "xterm")
            .output()
            .expect("script (util-linux)");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let tty = on_tty("");
    assert!(
        tty.contains("/60 requests") && tty.contains('\r'),
        "{tty:?}"
    );
    let tty = on_tty("--quiet");
    assert!(!tty.contains("requests") && !tty.contains('\r'), "{tty:?}");
    drop(site);
}

#[test]
fn baseline_gates_a_regression_with_exit_codes() {
    let tmp = scratch("baseline");
    let dir = tmp.path();
    let before = serve(&["serve", "--bind", "127.0.0.1:0"], &[ROOMY_LIMIT]);
    let port = port(&before.url);
    let url = format!("http://127.0.0.1:{port}/");
    let base = dir.join("baseline.json");
    let sarif = dir.join("audit.sarif");
    // One scan writes SARIF for code scanning and the JSON for the next baseline.
    let out = audit(
        &[
            &url,
            "--format",
            "sarif",
            "-o",
            path(&sarif),
            "--json",
            path(&base),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&base).expect("json")).expect("json");
    assert_eq!(saved["report_format"], 1);
    assert!(std::fs::read_to_string(&sarif)
        .expect("sarif")
        .contains("\"2.1.0\""));

    // The same site again: nothing regressed.
    let out = audit(&[&url, "--baseline", path(&base), "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no regression against the baseline"));
    let out = audit(
        &[
            &url,
            "--baseline",
            path(&base),
            "--quiet",
            "-o",
            path(&dir.join("x")),
        ],
        &[],
    );
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(0), String::new())
    );

    // The same URL, redeployed with a weak CSP: exit 1 and each check that got worse.
    drop(before);
    let bind = format!("127.0.0.1:{port}");
    let _after = serve(
        &["serve", "--bind", &bind],
        &[
            ROOMY_LIMIT,
            (
                "BUTTRESS_CSP",
                "default-src 'self' 'unsafe-inline' 'unsafe-eval'",
            ),
        ],
    );
    let out = audit(
        &[
            &url,
            "--baseline",
            path(&base),
            "--format",
            "json",
            "--quiet",
        ],
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for line in [
        "REGRESSED  AUD-CSP-002   pass +0 → fail +0",
        "REGRESSED  AUD-CSP-003   pass +0 → fail +0",
        "REGRESSED  score",
    ] {
        assert!(err.contains(line), "{line} in {err}");
    }
    assert!(err.contains("regression(s) against the baseline"), "{err}");
    // --min-grade on the same run is reported too.
    let out = audit(
        &[&url, "--baseline", path(&base), "--min-grade", "A+", "-q"],
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("below --min-grade A+") && err.contains("REGRESSED"),
        "{err}"
    );

    // Baselines that cannot be used: 4, with the reason; never a silent pass.
    let other = format!("http://localhost:{port}/elsewhere");
    std::fs::write(
        dir.join("compare.json"),
        r#"{"left":{},"right":{},"checks":[]}"#,
    )
    .expect("write");
    std::fs::write(
        dir.join("future.json"),
        r#"{"report_format":9,"target":"x","grade":"A","score":1,"findings":[]}"#,
    )
    .expect("write");
    for (target, file, why) in [
        (url.as_str(), dir.join("missing.json"), "cannot read it"),
        (url.as_str(), sarif.clone(), "SARIF"),
        (url.as_str(), dir.join("compare.json"), "--compare report"),
        (
            url.as_str(),
            dir.join("future.json"),
            "newer than this buttress reads",
        ),
        (other.as_str(), base.clone(), "is a report of"),
    ] {
        let out = audit(&[target, "--baseline", path(&file)], &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{why}: {err}");
        assert!(err.contains(why) && err.contains("Fix:"), "{why}: {err}");
        assert!(
            out.stdout.is_empty(),
            "no scan before the baseline is known to be usable"
        );
    }
    // One site's baseline and two sites: a bad command line.
    let out = audit(&[&url, "--baseline", path(&base), "--compare", &url], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_the_exit_codes_and_bad_sign_in_fields_exit_2() {
    let help = text(&audit(&["--help"], &[]).stdout);
    for line in [
        "1  below --min-grade, or a regression against --baseline",
        "4  --baseline cannot be used",
        "CA:TRUE",
        "--cookie <NAME=VALUE>",
        "--header <NAME:VALUE>",
        "--quiet",
    ] {
        assert!(help.contains(line), "{line} in {help}");
    }
    for (flag, value) in [
        ("--header", "X-Token: s3cret-one\r\nHost: evil.example"),
        ("--header", "Host: s3cret-one"),
        ("--header", "s3cret-one"),
        ("--cookie", "sid=s3cret-one; other=1"),
        ("--cookie", "s3cret-one"),
    ] {
        let out = audit(&["http://127.0.0.1:9/", flag, value], &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value:?}: {err}");
        assert!(
            !err.contains("s3cret-one"),
            "the value is never repeated: {err}"
        );
        assert!(out.stdout.is_empty(), "refused before any request");
    }
}

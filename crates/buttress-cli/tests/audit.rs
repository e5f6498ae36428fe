//! `buttress audit` from the command line: output formats, exit codes, and no settings needed.
//! (Live scans of real fixtures are in `crates/buttress-audit/tests`.)

#![allow(missing_docs)]

use std::process::{Command, Output};

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
    let dir = std::env::temp_dir().join(format!("buttress-audit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
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
    std::fs::remove_dir_all(dir).ok();
}

//! Golden files: the CSP judge, and the JSON and SARIF reports of fixed observations.
//! `UPDATE_GOLDEN=1 cargo test -p buttress-audit golden` rewrites them; review the diff.

use std::fmt::Write as _;
use std::path::PathBuf;

use buttress_audit::csp::{judge, Policy};
use buttress_audit::{report, CsrfAttempt, Failure, Hop, Observations, Page, Probe, RateProbe};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} missing: run UPDATE_GOLDEN=1 cargo test -p buttress-audit golden",
            path.display()
        )
    });
    if want != actual {
        let line = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(want.lines().count().min(actual.lines().count()), |p| p);
        panic!(
            "{name} differs from the golden file at line {}:\n  want: {:?}\n  got:  {:?}\n(UPDATE_GOLDEN=1 to accept)",
            line + 1,
            want.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

const POLICIES: &[&str] = &[
    "default-src 'none'; script-src 'self' 'nonce-R4nd0m'; style-src 'self' 'nonce-R4nd0m'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "default-src 'self'",
    "default-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "script-src * data:; object-src *",
    "script-src https: 'nonce-abc' 'strict-dynamic'; base-uri 'self'",
    "script-src 'self' *.cdn.example; form-action *; frame-ancestors https:",
    "SCRIPT-SRC 'SELF'; script-src *; Base-Uri 'None';;; ; bogus^ x",
    "script-src 'sha256-AAAA' 'unsafe-inline' blob:",
    "",
];

#[test]
fn golden_csp_judge() {
    let mut out = String::new();
    for p in POLICIES {
        let policies = Policy::parse_list(p);
        let _ = writeln!(out, "policy: {p}");
        for pol in &policies {
            if !pol.duplicates.is_empty() {
                let _ = writeln!(out, "  duplicates ignored: {}", pol.duplicates.join(", "));
            }
        }
        for j in judge(&policies, &[]) {
            let _ = writeln!(out, "  {} {:<4} {}", j.id, j.verdict.as_str(), j.evidence);
        }
    }
    let _ = writeln!(out, "policy: (report-only) default-src 'none'");
    for j in judge(&[], &Policy::parse_list("default-src 'none'")) {
        let _ = writeln!(out, "  {} {:<4} {}", j.id, j.verdict.as_str(), j.evidence);
    }
    golden("csp.txt", &out);
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn page(url: &str, status: u16, headers: &[(&str, &str)], body: &str) -> Page {
    Page {
        url: url.into(),
        status,
        headers: h(headers),
        body: body.into(),
        truncated: false,
    }
}

/// What a scan of the weak fixture sees, fixed (no ports, no time).
pub fn weak_observations() -> Observations {
    let base = "http://weak.test/";
    let common = [("server", "Apache/2.4.1"), ("x-powered-by", "PHP/5.3.3")];
    let mut main_h = common.to_vec();
    main_h.push(("set-cookie", "session=4f9c2a1b7e; Path=/"));
    main_h.push(("content-type", "text/html; charset=utf-8"));
    let mut cors_h = common.to_vec();
    cors_h.push((
        "access-control-allow-origin",
        buttress_audit::observatory::CORS_PROBE_ORIGIN,
    ));
    cors_h.push(("access-control-allow-credentials", "true"));
    let mut obs = Observations::failed(base, vec![], Failure::Other(String::new()));
    obs.main = Ok(page(
        base,
        200,
        &main_h,
        "<form method=post action=/comment><input name=title><textarea name=body></textarea></form><a href=\"/item?id=1\">1</a>",
    ));
    obs.plain_http = Some(Ok(Hop {
        url: base.into(),
        status: 200,
        location: None,
    }));
    obs.cors = Some(page(base, 200, &cors_h, ""));
    obs.not_found = Some(page(
        "http://weak.test/buttress-audit-0000-missing",
        404,
        &common,
        "thread 'tokio-runtime-worker' panicked at src/routes.rs:42:9:\ncalled `Option::unwrap()` on a `None` value",
    ));
    obs.malformed = vec![page(
        "http://weak.test/item?id=%27%22",
        500,
        &common,
        "<title>ValueError // Werkzeug Debugger</title><h3>Traceback (most recent call last)</h3>",
    )];
    obs.listings = vec![page(
        "http://weak.test/static/",
        200,
        &common,
        "<title>Index of /static</title>",
    )];
    obs.pages = vec![page(
        "http://weak.test/item?id=1",
        200,
        &common,
        "<p>item 1</p>",
    )];
    obs.csrf = Probe::Done(vec![CsrfAttempt {
        page: base.into(),
        action: "http://weak.test/comment".into(),
        status: 200,
        accepted: true,
    }]);
    obs.rate = Probe::Done(RateProbe {
        url: "http://weak.test/api/ping".into(),
        sent: 30,
        limited: 0,
        first_limited_at: None,
        retry_after: None,
    });
    obs.requests = 41;
    obs
}

/// What a scan of the hardened stack sees, fixed.
pub fn hardened_observations() -> Observations {
    let url = "https://hardened.test/";
    let csp = "default-src 'none'; script-src 'self' 'nonce-R4nd0m'; style-src 'self' 'nonce-R4nd0m'; img-src 'self'; font-src 'self'; connect-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; upgrade-insecure-requests";
    let headers = [
        ("content-type", "text/html; charset=utf-8"),
        ("content-security-policy", csp),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "set-cookie",
            "__Host-session=opaque; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=43200",
        ),
    ];
    let mut obs = Observations::failed(url, vec![], Failure::Other(String::new()));
    obs.main = Ok(page(
        url,
        200,
        &headers,
        "<form method=post action=/login><input type=hidden name=csrf_token value=x><input name=user></form><script nonce=R4nd0m>1</script>",
    ));
    obs.verified = true;
    obs.plain_http = Some(Ok(Hop {
        url: "http://hardened.test/".into(),
        status: 301,
        location: Some(url.into()),
    }));
    obs.cors = Some(page(url, 200, &headers[..9], ""));
    obs.not_found = Some(page(
        "https://hardened.test/buttress-audit-0000-missing",
        404,
        &headers[..9],
        "<h1>Not Found</h1><p>request id 1</p>",
    ));
    obs.malformed = vec![page(
        "https://hardened.test/?id=%27",
        200,
        &headers[..9],
        "<p>ok</p>",
    )];
    obs.listings = vec![page(
        "https://hardened.test/static/",
        404,
        &headers[..9],
        "<h1>Not Found</h1>",
    )];
    obs.csrf = Probe::Done(vec![CsrfAttempt {
        page: url.into(),
        action: "https://hardened.test/login".into(),
        status: 403,
        accepted: false,
    }]);
    obs.rate = Probe::Done(RateProbe {
        url: "https://hardened.test/login".into(),
        sent: 6,
        limited: 1,
        first_limited_at: Some(6),
        retry_after: Some("60".into()),
    });
    obs.requests = 14;
    obs
}

#[test]
fn golden_json_and_sarif() {
    let weak = buttress_audit::judge(&weak_observations());
    let hard = buttress_audit::judge(&hardened_observations());
    assert_eq!(weak.grade, "F");
    assert_eq!(hard.grade, "A+");
    golden("weak.json", &(report::json(&weak) + "\n"));
    golden("hardened.json", &(report::json(&hard) + "\n"));
    golden("weak.sarif.json", &(report::sarif(&weak) + "\n"));
    golden("compare.txt", &report::compare_table(&weak, &hard, false));
    golden("hardened.txt", &report::table(&hard, false));

    let sarif: serde_json::Value = serde_json::from_str(&report::sarif(&weak)).expect("json");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert!(results
        .iter()
        .all(|r| r["level"] == "error" || r["level"] == "warning"));
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    assert_eq!(rules.len(), buttress_audit::CHECKS.len());
    for r in results {
        let i = r["ruleIndex"].as_u64().expect("index") as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
    }
    let json: serde_json::Value = serde_json::from_str(&report::json(&weak)).expect("json");
    for f in json["findings"].as_array().expect("findings") {
        for key in ["id", "verdict", "evidence", "fix", "modifier", "source"] {
            assert!(f.get(key).is_some(), "{key} in {f}");
        }
    }
}

//! `buttress-bench peer` (and `stack`) end to end, on both servers: the page with the security
//! headers set by tower-http, tower_governor's rate-limit headers, tower-http's request id and
//! tower-sessions' cookie, so that the peer of pair (f) keeps measuring the stack it claims to.

#![allow(missing_docs)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

/// The headers the peer must send on every answer, with their exact values.
const EXPECTED: &[(&str, &str)] = &[
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; \
         connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'",
    ),
    ("x-ratelimit-limit", "500000000"),
];

/// One `buttress-bench` process, killed on drop (also when an assertion fails).
struct Bench {
    child: Child,
    url: String,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Bench {
    let mut child = Command::new(env!("CARGO_BIN_EXE_buttress-bench-peer"))
        .args(args)
        .args(["--bind", "127.0.0.1:0"])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn buttress-bench-peer");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    let bench = Bench {
        child,
        url: line.trim().trim_end_matches('/').to_owned(),
    };
    assert!(
        matches!(read, Ok(n) if n > 0) && bench.url.starts_with("http://127.0.0.1:"),
        "buttress-bench {args:?} did not announce its address: {read:?} {line:?}"
    );
    bench
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", res.headers()))
        .to_str()
        .expect("ascii header")
}

fn assert_peer_headers(res: &reqwest::Response) {
    for (name, value) in EXPECTED {
        assert_eq!(header(res, name), *value, "{name}");
    }
    let policy = header(res, "permissions-policy");
    for feature in ["camera=()", "geolocation=()", "microphone=()", "payment=()"] {
        assert!(policy.contains(feature), "{feature} in {policy}");
    }
    let remaining: u64 = header(res, "x-ratelimit-remaining")
        .parse()
        .expect("x-ratelimit-remaining is a number");
    assert!(remaining < 500_000_000, "{remaining}");
}

/// A UUID v4 as tower-http's `MakeRequestUuid` writes it.
fn is_uuid_v4(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && groups[2].starts_with('4')
}

#[tokio::test]
async fn peer_answers_the_page_with_security_and_rate_limit_headers_on_both_servers() {
    for server in ["buttress", "axum"] {
        let bench = start(&["peer", "--server", server]);
        let res = reqwest::get(format!("{}/", bench.url))
            .await
            .expect("GET /");
        assert_eq!(res.status(), 200, "{server}");
        assert_peer_headers(&res);
        assert!(is_uuid_v4(header(&res, "x-request-id")), "{server}");
        assert!(
            res.headers().get("set-cookie").is_none(),
            "{server}: / does not touch its session, so no cookie"
        );
        let body = res.text().await.expect("body");
        assert_eq!(
            body.len(),
            1032,
            "{server}: the same page as bare and stack"
        );
        assert!(body.contains("<title>Blood donor registry</title>"));

        // Refusals pass through the same layers: axum's 404 carries the headers too.
        let missing = reqwest::get(format!("{}/nowhere", bench.url))
            .await
            .expect("GET /nowhere");
        assert_eq!(missing.status(), 404, "{server}");
        assert_peer_headers(&missing);
    }
}

#[tokio::test]
async fn peer_propagates_the_clients_request_id_as_tower_http_does() {
    let bench = start(&["peer"]);
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/", bench.url))
        .header("x-request-id", "from-the-client-1")
        .send()
        .await
        .expect("GET /");
    assert_eq!(res.status(), 200);
    // SetRequestIdLayer keeps an id the request already has (the stack replaces it).
    assert_eq!(header(&res, "x-request-id"), "from-the-client-1");
}

#[tokio::test]
async fn peer_session_sets_a_tower_sessions_cookie_and_keeps_its_data() {
    let bench = start(&["peer", "--server", "axum"]);
    let client = reqwest::Client::new();
    let first = client
        .get(format!("{}/session", bench.url))
        .send()
        .await
        .expect("GET /session");
    assert_eq!(first.status(), 200);
    assert_peer_headers(&first);
    let cookie = header(&first, "set-cookie").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=1800"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let id = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("id="))
        .expect("tower-sessions' `id` cookie");
    assert_eq!(first.text().await.expect("body"), "visits: 1");

    let second = client
        .get(format!("{}/session", bench.url))
        .header("cookie", format!("id={id}"))
        .send()
        .await
        .expect("GET /session again");
    assert_eq!(second.text().await.expect("body"), "visits: 2");

    // An unknown session id starts afresh rather than failing.
    let forged = client
        .get(format!("{}/session", bench.url))
        .header("cookie", "id=AAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await
        .expect("GET /session with a forged id");
    assert_eq!(forged.status(), 200);
    assert_eq!(forged.text().await.expect("body"), "visits: 1");
}

#[tokio::test]
async fn stack_answers_the_page_on_both_servers() {
    // The other side of pair (f): on `axum::serve` too it gets the peer address it needs (it
    // answers 500 without one), so `--server axum` measures the page, not an error page.
    for server in ["buttress", "axum"] {
        let bench = start(&["stack", "--server", server]);
        let res = reqwest::get(format!("{}/", bench.url))
            .await
            .expect("GET /");
        assert_eq!(res.status(), 200, "{server}");
        assert_eq!(header(&res, "x-frame-options"), "DENY", "{server}");
        assert!(
            header(&res, "ratelimit-policy").contains("w=3600"),
            "{server}"
        );
        assert_eq!(res.text().await.expect("body").len(), 1032, "{server}");
    }
}

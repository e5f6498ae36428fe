//! The stack as a real server on a free loopback port: TLS, redirect listener, slow and
//! oversized clients, graceful shutdown, and the Observatory grade.

use std::time::{Duration, Instant};

use buttress::server::{ServeOptions, Server};
use buttress::settings::Settings;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::observatory::{score, Input, Ruleset};
use crate::support::*;

async fn start(settings: &Settings) -> Server {
    let opts = ServeOptions::from_settings(settings).expect("serve options");
    Server::bind(app(settings), opts)
        .await
        .expect("server binds")
}

/// Development with its own TLS (self-signed for localhost) and a plain redirect listener.
fn tls_settings(dir: &std::path::Path) -> Settings {
    settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_HTTP_BIND", "127.0.0.1:0"),
        ("BUTTRESS_DEV_TLS", "true"),
        ("BUTTRESS_DATA_DIR", dir.to_str().expect("utf-8 path")),
        ("SECRET_KEY", STRONG_KEY),
    ])
}

fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("buttress-it-{name}-"))
        .tempdir()
        .expect("temp dir")
}

fn client_trusting(cert: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(cert).expect("dev cert written");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn tls_server_redirect_listener_and_observatory_a_plus() {
    let tmp = temp_dir("tls");
    let dir = tmp.path();
    let s = tls_settings(dir);
    let server = start(&s).await;
    let client = client_trusting(&dir.join("dev-tls/cert.pem"));
    let port = server.local_addr().port();

    let page = client
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
        .expect("https GET");
    assert_eq!(page.status(), 200);
    let headers: Vec<(String, String)> = page
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = page.text().await.expect("body");
    assert!(headers
        .iter()
        .any(|(k, v)| k == "strict-transport-security" && v.starts_with("max-age=31536000")));

    let http_port = server.http_addr().expect("redirect listener").port();
    let plain = client
        .get(format!("http://localhost:{http_port}/a?b=c"))
        .send()
        .await
        .expect("http GET");
    assert_eq!(plain.status(), 301);
    assert_eq!(
        plain.headers()["location"].to_str().expect("ascii"),
        format!("https://localhost:{port}/a?b=c"),
        "first hop goes to HTTPS on the same host"
    );
    assert!(
        plain.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );

    for rules in [Ruleset::Classic, Ruleset::MdnV2] {
        let graded = score(
            rules,
            &Input {
                headers: &headers,
                https: true,
                http_redirects_to_https: Some(true),
                html: Some(&body),
            },
        );
        assert_eq!(graded.grade, "A+", "{rules:?}: {graded}");
        assert!(graded.score >= 100, "{rules:?}: {graded}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn observatory_grade_of_error_pages_and_redirects_too() {
    let tmp = temp_dir("grade");
    let dir = tmp.path();
    let server = start(&tls_settings(dir)).await;
    let client = client_trusting(&dir.join("dev-tls/cert.pem"));
    let port = server.local_addr().port();
    for path in ["/missing", "/panic", "/leak"] {
        let res = client
            .get(format!("https://localhost:{port}{path}"))
            .send()
            .await
            .expect("GET");
        let headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = res.text().await.expect("body");
        let graded = score(
            Ruleset::MdnV2,
            &Input {
                headers: &headers,
                https: true,
                http_redirects_to_https: Some(true),
                html: Some(&body),
            },
        );
        assert_eq!(graded.grade, "A+", "{path}: {graded}");
    }
    server.shutdown().await;
}

/// Serves with `trusted_proxies` and asks `/whoami` with this `X-Forwarded-For`.
async fn whoami_over_the_wire(trusted_proxies: &str, forwarded_for: &str) -> (String, u16) {
    let s = settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_TRUSTED_PROXIES", trusted_proxies),
    ]);
    let server = start(&s).await;
    let port = server.local_addr().port();
    let body = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/whoami"))
        .header("x-forwarded-for", forwarded_for)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    server.shutdown().await;
    (body, port)
}

#[tokio::test]
async fn spoofed_xff_over_the_wire_changes_nothing() {
    let (body, port) = whoami_over_the_wire("10.0.0.0/8", "1.2.3.4").await;
    assert_eq!(body, format!("127.0.0.1 http://127.0.0.1:{port}"));
    let (body, _) = whoami_over_the_wire("127.0.0.1", "1.2.3.4, 198.51.100.3").await;
    assert!(body.starts_with("198.51.100.3 https://"), "{body}");
}

#[tokio::test]
async fn slow_header_client_is_cut_off_while_others_are_served() {
    let s = settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_HEADER_READ_TIMEOUT", "1s"),
    ]);
    let server = start(&s).await;
    let addr = server.local_addr();
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("partial head");
    let started = Instant::now();
    let ok = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("normal client");
    assert_eq!(ok.status(), 200);
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the slow connection was closed by the server");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_head_gets_431_and_oversized_body_413_before_upload() {
    let s = settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_MAX_HEADER_BYTES", "8KiB"),
    ]);
    let server = start(&s).await;
    let addr = server.local_addr();
    let mut big = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let _ = big.write_all(head.as_bytes()).await;
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), big.read(&mut buf))
        .await
        .expect("answer")
        .unwrap_or(0);
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );

    let mut upload = TcpStream::connect(addr).await.expect("connect");
    upload
        .write_all(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 104857600\r\n\r\n")
        .await
        .expect("head");
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), upload.read(&mut buf))
        .await
        .expect("answered before any body byte")
        .expect("read");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let s = settings(&[("BUTTRESS_BIND", "127.0.0.1:0")]);
    let server = start(&s).await;
    let url = format!("http://{}/slow-ok", server.local_addr());
    let in_flight = tokio::spawn(async move {
        reqwest::get(url)
            .await
            .expect("GET")
            .text()
            .await
            .expect("body")
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = server.local_addr();
    server.shutdown().await;
    assert_eq!(in_flight.await.expect("task"), "finished");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn tls_from_pem_files_and_clear_errors_for_bad_ones() {
    let tmp = temp_dir("pem");
    let dir = tmp.path();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write key");
    let s = settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_TLS_CERT", cert.to_str().expect("utf-8")),
        ("BUTTRESS_TLS_KEY", key.to_str().expect("utf-8")),
    ]);
    let server = start(&s).await;
    let client = client_trusting(&cert);
    let res = client
        .get(format!(
            "https://localhost:{}/healthz",
            server.local_addr().port()
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 200);
    server.shutdown().await;

    std::fs::write(&key, "not a key").expect("write");
    let err = ServeOptions::from_settings(&s)
        .expect_err("a bad key is refused")
        .to_string();
    assert!(
        err.contains("no PEM private key") && err.contains("Fix:"),
        "{err}"
    );
    let missing = settings(&[
        ("BUTTRESS_TLS_CERT", "/nonexistent/c.pem"),
        ("BUTTRESS_TLS_KEY", "/nonexistent/k.pem"),
    ]);
    let err = ServeOptions::from_settings(&missing)
        .expect_err("missing files")
        .to_string();
    assert!(err.contains("cannot read /nonexistent/c.pem"), "{err}");
}

/// The client preface and an empty SETTINGS frame: an HTTP/2 client that has said hello.
const H2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Reads until the server closes the connection (EOF or reset), at most until `deadline`;
/// whether it closed.
async fn closes_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = Vec::new();
    tokio::time::timeout_at(deadline.into(), stream.read_to_end(&mut buf))
        .await
        .is_ok()
}

/// Before hyper's header-read timeout starts, hyper-util reads up to 24 bytes to tell HTTP/1
/// from HTTP/2, with no timeout; and an HTTP/2 connection that opens no stream has none either.
/// Each of these is closed once the header-read timeout passes with no request in flight, while
/// a normal client is answered meanwhile.
#[tokio::test]
async fn silent_undecided_and_streamless_connections_are_closed() {
    let s = settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_HEADER_READ_TIMEOUT", "1s"),
    ]);
    let server = start(&s).await;
    let addr = server.local_addr();
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut partial = TcpStream::connect(addr).await.expect("connect");
    partial
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .expect("partial preface");
    let mut streamless = TcpStream::connect(addr).await.expect("connect");
    streamless.write_all(H2_HELLO).await.expect("h2 preface");
    let ok = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("a normal client is answered");
    assert_eq!(ok.status(), 200);
    assert!(
        !closes_by(&mut silent, started + Duration::from_millis(700)).await,
        "not closed before the timeout"
    );
    // Each is asked to close after 1 s idle (+ slack); an HTTP/2 client that does not answer
    // the GOAWAY's ping is dropped after one more idle second.
    for (name, stream, bound) in [
        ("silent", &mut silent, 2500),
        ("partial HTTP/2 preface", &mut partial, 2500),
        ("HTTP/2 without streams", &mut streamless, 3500),
    ] {
        assert!(
            closes_by(stream, started + Duration::from_millis(bound)).await,
            "{name}: still open {bound} ms after it connected"
        );
    }
    server.shutdown().await;
}

/// One HTTP/2 request by hand (no HTTP/2 client among the dev-dependencies): HEADERS on stream
/// 1 with `GET http://localhost{path}` in HPACK (indexed `:method GET`, `:scheme http`,
/// literal `:authority` and `:path`), ending the stream.
fn h2_get(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x01, 9];
    block.extend_from_slice(b"localhost");
    block.extend_from_slice(&[0x04, u8::try_from(path.len()).expect("short path")]);
    block.extend_from_slice(path.as_bytes());
    let len = u32::try_from(block.len()).expect("short").to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], 0x01, 0x05, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    frame
}

/// Reads HTTP/2 frames until a HEADERS frame on stream 1; its first header byte (`0x88` is
/// the indexed `:status 200`).
async fn h2_response_status(stream: &mut TcpStream) -> u8 {
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await.expect("frame head");
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        stream
            .read_exact(&mut payload)
            .await
            .expect("frame payload");
        if head[3] == 0x01 && head[5..9] == [0, 0, 0, 1] {
            return payload.first().copied().unwrap_or(0);
        }
    }
}

/// The idle timeout counts only time with no request in flight: requests that take longer
/// than it (3 s against 1 s) are answered, over HTTP/1 and HTTP/2.
#[tokio::test]
async fn requests_longer_than_the_idle_timeout_are_not_cut() {
    let s = settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_HEADER_READ_TIMEOUT", "1s"),
    ]);
    let server = start(&s).await;
    let addr = server.local_addr();
    let h1 = tokio::spawn(async move {
        reqwest::get(format!("http://{addr}/sleep"))
            .await
            .expect("HTTP/1 GET")
            .text()
            .await
            .expect("body")
    });
    let mut h2 = TcpStream::connect(addr).await.expect("connect");
    h2.write_all(H2_HELLO).await.expect("h2 preface");
    h2.write_all(&h2_get("/sleep")).await.expect("h2 request");
    let status = tokio::time::timeout(Duration::from_secs(6), h2_response_status(&mut h2))
        .await
        .expect("answered");
    assert_eq!(status, 0x88, "HTTP/2 :status 200");
    assert_eq!(h1.await.expect("task"), "slept");
    // Idle again: closed like any other.
    assert!(closes_by(&mut h2, Instant::now() + Duration::from_millis(3500)).await);
    server.shutdown().await;
}

/// With `max_connections` open, the server stops accepting: a new client waits in the listen
/// backlog until one closes (here, two silent ones at the 1 s timeout), then is answered.
#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let s = settings(&[
        ("BUTTRESS_BIND", "127.0.0.1:0"),
        ("BUTTRESS_HEADER_READ_TIMEOUT", "1s"),
    ]);
    let mut opts = ServeOptions::from_settings(&s).expect("serve options");
    opts.max_connections = 2;
    let server = Server::bind(app(&s), opts).await.expect("binds");
    let addr = server.local_addr();
    let started = Instant::now();
    let _a = TcpStream::connect(addr).await.expect("connect");
    let _b = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ok = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("answered once a slot is free");
    let waited = started.elapsed();
    assert_eq!(ok.status(), 200);
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    server.shutdown().await;
}

//! `examples/minimal.rs`: the README's snippet, served; every protection on its one page.

use axum::body::Body;
use axum::http::Request;

use super::{client, reply, serve};
use crate::support::{assert_secure_headers, send, settings, STRONG_KEY};

#[path = "../../../examples/minimal.rs"]
#[allow(dead_code)] // `main`: reads the environment, serves, waits for Ctrl-C.
mod example;

const FILE: &str = include_str!("../../../examples/minimal.rs");
const README: &str = include_str!("../../../../../README.md");

#[test]
fn readme_snippet_is_the_minimal_example() {
    let open = "```rust\n//! Run with `cargo run -p buttress --example minimal`";
    let start = README
        .find(open)
        .expect("the README shows examples/minimal.rs in a ```rust block")
        + "```rust\n".len();
    let len = README[start..].find("```\n").expect("the block closes");
    assert_eq!(
        &README[start..start + len],
        FILE,
        "the README's library snippet differs from crates/buttress/examples/minimal.rs: copy the file into the block"
    );
}

#[tokio::test]
async fn minimal_serves_its_page_with_every_protection() {
    let s = settings(&[("BUTTRESS_BIND", "127.0.0.1:0"), ("SECRET_KEY", STRONG_KEY)]);
    let server = serve(example::app(&s).expect("starts in Development"), &s).await;
    let base = format!("http://{}", server.local_addr());
    let http = client();

    let page = reply(http.get(&base).send().await.expect("GET /")).await;
    assert_eq!((page.status.as_u16(), page.body.as_str()), (200, "hello"));
    assert_secure_headers(&page, "minimal /");
    assert!(page.header("x-request-id").is_some_and(|id| id.len() >= 32));
    assert!(
        page.header("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );

    // An unknown path is answered by the stack, with the same headers and a safe page.
    let missing = reply(http.get(format!("{base}/nope")).send().await.expect("GET")).await;
    assert_eq!(missing.status, 404);
    assert_secure_headers(&missing, "minimal 404");

    // A cross-site POST is refused before any routing.
    let attack = http
        .post(format!("{base}/"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .body("amount=1000")
        .send()
        .await
        .expect("POST");
    let attack = reply(attack).await;
    assert_eq!(attack.status, 403);
    assert_secure_headers(&attack, "minimal 403");
    server.shutdown().await;
}

#[test]
fn minimal_refuses_an_unsafe_production_start() {
    let unsafe_prod = settings(&[("BUTTRESS_ENV", "production")]);
    let err = example::app(&unsafe_prod).expect_err("no key, no HTTPS");
    assert!(err.to_string().contains("Fix"), "{err}");
}

#[tokio::test]
async fn minimal_answers_spoofed_forwarding_headers_with_the_peer() {
    // No proxy is trusted by default: X-Forwarded-* from anyone are the client's own words.
    let s = settings(&[("SECRET_KEY", STRONG_KEY)]);
    let app = example::app(&s).expect("starts");
    let req = Request::get("/")
        .header("host", "127.0.0.1:8000")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "10.0.0.1")
        .body(Body::empty())
        .expect("request");
    let r = send(&app, "127.0.0.1:5555", req).await;
    assert_eq!(r.status, 200);
    assert!(r.header("strict-transport-security").is_none(), "not HTTPS");
}

//! Request limits: body size (413 without reading the rest) and whole-request timeout (408).

use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use futures_util::stream;

use crate::support::*;

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = app(&settings(&[("BUTTRESS_BODY_LIMIT", "1KiB")]));
    let small = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "x")
        .body(Body::from(vec![b'a'; 1000]))
        .expect("req");
    let r = send(&app, "127.0.0.1:1", small).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "got 1000"));
    let declared = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "x")
        .header("content-length", "5000")
        .body(Body::from(vec![b'a'; 5000]))
        .expect("req");
    assert_eq!(send(&app, "127.0.0.1:1", declared).await.status, 413);
}

#[tokio::test]
async fn streamed_body_over_the_limit_is_413_before_reading_it_all() {
    let app = app(&settings(&[("BUTTRESS_BODY_LIMIT", "1KiB")]));
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = pulled.clone();
    // 1,000 chunks of 512 bytes with no Content-Length; the limit is 1 KiB.
    let chunks = stream::iter(0..1000).map(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'z'; 512]))
    });
    let req = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "x")
        .body(Body::from_stream(chunks))
        .expect("req");
    let r = send(&app, "127.0.0.1:1", req).await;
    assert_eq!(r.status, 413);
    assert!(
        pulled.load(std::sync::atomic::Ordering::SeqCst) < 10,
        "stopped reading early"
    );
}

#[tokio::test]
async fn slow_handler_times_out_with_408() {
    let app = app(&settings(&[("BUTTRESS_REQUEST_TIMEOUT", "300ms")]));
    let r = send(
        &app,
        "127.0.0.1:1",
        get_req("/sleep", &[("accept", "application/json")]),
    )
    .await;
    assert_eq!(r.status, 408);
    assert_secure_headers(&r, "408");
}

use futures_util::StreamExt as _;

//! The stack as one service: routing inside it, static assets outside the global limit, a
//! closed route, and routes that cannot be added after `apply`.

use axum::body::Body;
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use buttress::Buttress;

use crate::support::{assert_secure_headers, get_req, send, settings};

fn app(vars: &[(&str, &str)], limit: Option<(&str, &str)>) -> buttress::stack::Stack {
    let mut b = Buttress::from_settings(&settings(vars)).expect("stack");
    if let Some((path, limits)) = limit {
        b = b.limit_route(path, limits).expect("route limit");
    }
    b.apply(
        Router::new()
            .route("/", get(|| async { "home" }))
            .route("/page", get(|| async { "page" }))
            .route("/static/{*file}", get(|| async { "body{}" }))
            .route("/form", post(|| async { "posted" })),
    )
    .expect("stack")
}

/// A 404 and a 405 are answered inside the stack: the same headers and error page as any
/// other response (they used to leave with none when routes were added after `apply`).
#[tokio::test]
async fn unknown_routes_and_methods_get_every_header_and_the_error_page() {
    let app = app(&[], None);
    for (req, status) in [
        (get_req("/missing", &[]), 404),
        (
            // A safe method on a POST-only route (an unsafe one meets CSRF first: 403).
            get_req("/form", &[]),
            405,
        ),
    ] {
        let r = send(&app, "127.0.0.1:5000", req).await;
        assert_eq!(r.status.as_u16(), status);
        assert_secure_headers(&r, &format!("{status}"));
        assert!(r.header("x-request-id").is_some());
        assert!(r.body.contains(&format!("{status}")), "{}", r.body);
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/html")));
    }
}

/// As Flask-Limiter exempts Flask's static route: with a global `3 per hour`, every asset is
/// served and the fourth page is refused (the portal's visitors got about 25 pages an hour
/// under `50 per hour` when its stylesheet counted).
#[tokio::test]
async fn static_assets_are_not_counted_by_the_global_limit() {
    let app = app(&[("BUTTRESS_RATELIMIT_DEFAULT", "3 per hour")], None);
    let peer = "192.0.2.80:1";
    for i in 0..10 {
        let r = send(&app, peer, get_req(&format!("/static/a{i}.css"), &[])).await;
        assert_eq!(r.status.as_u16(), 200, "asset {i}");
        assert!(r.header("ratelimit").is_none(), "not counted, no header");
    }
    let pages: Vec<u16> = futures_pages(&app, peer, 4).await;
    assert_eq!(pages, [200, 200, 200, 429]);
    // A path that climbs out of the prefix is counted (here: refused, the limit is spent).
    let climbing = send(&app, peer, get_req("/static/../page", &[])).await;
    assert_eq!(climbing.status.as_u16(), 429);
}

async fn futures_pages(app: &buttress::stack::Stack, peer: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(send(app, peer, get_req("/page", &[])).await.status.as_u16());
    }
    out
}

/// The prefix is a setting: `none` counts assets like any page; a route limit on an asset
/// counts it whatever the prefix.
#[tokio::test]
async fn the_static_prefix_can_be_turned_off_and_a_route_limit_still_counts() {
    let counted = app(
        &[
            ("BUTTRESS_RATELIMIT_DEFAULT", "2 per hour"),
            ("BUTTRESS_RATELIMIT_STATIC_PREFIX", "none"),
        ],
        None,
    );
    let got: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let r = send(&counted, "192.0.2.81:1", get_req("/static/a.css", &[])).await;
            v.push(r.status.as_u16());
        }
        v
    };
    assert_eq!(got, [200, 200, 429]);
    let limited = app(&[], Some(("/static/big.zip", "1 per minute")));
    let peer = "192.0.2.82:1";
    let first = send(&limited, peer, get_req("/static/big.zip", &[])).await;
    let second = send(&limited, peer, get_req("/static/big.zip", &[])).await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 429));
}

/// `0 per minute`, as in `limits`: the route is closed, every request refused, no wait
/// offered; other routes are served.
#[tokio::test]
async fn a_zero_limit_closes_a_route() {
    let app = app(&[], Some(("/form", "0 per minute")));
    let peer = "192.0.2.83:1";
    for _ in 0..3 {
        let r = send(
            &app,
            peer,
            Request::post("/form")
                .header("host", "example.org")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(r.status.as_u16(), 429);
        assert!(r.header("retry-after").is_none(), "no wait helps");
        assert!(r.body.contains("closed"), "{}", r.body);
        assert_secure_headers(&r, "closed route");
    }
    assert_eq!(
        send(&app, peer, get_req("/", &[])).await.status.as_u16(),
        200
    );
    // As the global limit it closes the site but for the exempt health check.
    let closed = self::app(&[("BUTTRESS_RATELIMIT_DEFAULT", "0 per minute")], None);
    assert_eq!(
        send(&closed, peer, get_req("/", &[])).await.status.as_u16(),
        429
    );
    assert!("0 per minute"
        .parse::<buttress::ratelimit::Limits>()
        .is_ok());
}

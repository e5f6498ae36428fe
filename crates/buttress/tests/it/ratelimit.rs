//! Rate limits: one conformance suite run against the memory store (manual clock) and a real
//! Redis server (real time, short windows); failure policies with Redis stopped and restarted;
//! the whole stack against spoofed forwarding headers; login limits under concurrency.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use buttress::ratelimit::{
    LoginVerdict, ManualClock, MemoryStore, RateLimitLayer, RateLimiter, Strategy as Algo,
};
use buttress::server::App;
use buttress::stack::Stack;
use buttress::Buttress;

use crate::support::{self, send, Reply};

/// How a suite moves time: by hand (memory) or by sleeping (Redis, real server time).
#[derive(Clone)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
enum Time {
    Manual(ManualClock),
    Real,
}

impl Time {
    async fn advance(&self, d: Duration) {
        match self {
            Time::Manual(c) => c.advance(d),
            Time::Real => tokio::time::sleep(d).await,
        }
    }

    /// The slack a real clock needs around an edge; none for a manual clock.
    fn slack(&self) -> Duration {
        match self {
            Time::Manual(_) => Duration::from_micros(1),
            Time::Real => Duration::from_millis(200),
        }
    }
}

/// Builds a limiter for a limit string on the store under test.
type Make = Arc<dyn Fn(&str) -> RateLimiter + Send + Sync>;

struct Store {
    make: Make,
    time: Time,
}

fn memory_store() -> Store {
    let clock = ManualClock::new();
    let c = clock.clone();
    Store {
        make: Arc::new(move |limits| {
            RateLimiter::parse(limits)
                .expect("limits")
                .with_memory(MemoryStore::new(10_000).with_clock(c.clone()))
        }),
        time: Time::Manual(clock),
    }
}

#[cfg(feature = "redis")]
fn redis_store(url: &str) -> Store {
    let url = url.to_owned();
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    Store {
        make: Arc::new(move |limits| {
            // A fresh name per limiter: tests never see each other's counters.
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            RateLimiter::parse(limits)
                .expect("limits")
                .with_name(&format!("conf-{}-{i}", std::process::id()))
                // The conformance suite tests semantics, not latency: a budget that a loaded CI
                // machine cannot blow (the 50 ms default did, once, at load 6). Store
                // failures and their policies are tested further down.
                .with_redis(
                    buttress::ratelimit::RedisStore::open(&url)
                        .expect("url")
                        .with_budget(std::time::Duration::from_secs(2)),
                )
        }),
        time: Time::Real,
    }
}

async fn admit(l: &RateLimiter, key: &str) -> bool {
    l.check(key, 1).await.expect("store answers").allowed()
}

/// The conformance suite: the same assertions for every store.
async fn conformance(store: Store) {
    let make = &store.make;
    let time = &store.time;

    // 1. A burst admits exactly N, for both strategies.
    for algo in [Algo::MovingWindow, Algo::Gcra] {
        let l = make("3 per second").with_strategy(algo).expect("strategy");
        let mut n = 0;
        for _ in 0..6 {
            n += usize::from(admit(&l, "burst").await);
        }
        assert_eq!(n, 3, "{algo:?} burst");
    }

    // 2. Moving window edges: refused until the oldest admission leaves the window, then
    //    exactly one more.
    // Admissions 500 ms apart; the slack (200 ms on a real clock) stays below the spacing.
    let l = make("3 per 2 seconds")
        .with_strategy(Algo::MovingWindow)
        .expect("s");
    for _ in 0..3 {
        assert!(admit(&l, "edge").await);
        time.advance(Duration::from_millis(500)).await;
    }
    let refused = l.check("edge", 1).await.expect("c");
    assert!(!refused.allowed());
    let wait = refused.retry_after().expect("retry after");
    // The oldest admission leaves the window 2 s after it was made, 1.5 s ago.
    assert!(
        wait <= Duration::from_millis(500) && wait > Duration::from_millis(250),
        "{wait:?}"
    );
    time.advance(wait.saturating_sub(time.slack())).await;
    assert!(!admit(&l, "edge").await, "still inside the window");
    time.advance(time.slack() * 2).await;
    assert!(admit(&l, "edge").await, "oldest left the window");
    assert!(!admit(&l, "edge").await, "only one left");

    // 3. GCRA edges: after the burst, one more every T/N.
    let l = make("4 per 2 seconds")
        .with_strategy(Algo::Gcra)
        .expect("s");
    for _ in 0..4 {
        assert!(admit(&l, "gcra").await);
    }
    let refused = l.check("gcra", 1).await.expect("c");
    let wait = refused.retry_after().expect("retry after");
    assert!(wait <= Duration::from_millis(500), "{wait:?}");
    time.advance(wait.saturating_sub(time.slack())).await;
    assert!(!admit(&l, "gcra").await);
    time.advance(time.slack() * 2).await;
    assert!(admit(&l, "gcra").await);
    assert!(!admit(&l, "gcra").await);

    // 4. Several limits: all must pass, and a refusal counts nothing.
    let l = make("2 per second; 3 per minute");
    assert!(admit(&l, "multi").await && admit(&l, "multi").await);
    let r = l.check("multi", 1).await.expect("c");
    assert!(!r.allowed());
    assert_eq!(r.limit().to_string(), "2 per second");
    time.advance(Duration::from_millis(1000) + time.slack())
        .await;
    assert!(admit(&l, "multi").await);
    time.advance(Duration::from_millis(1000) + time.slack())
        .await;
    let r = l.check("multi", 1).await.expect("c");
    assert!(!r.allowed());
    assert_eq!(r.limit().to_string(), "3 per minute");
    assert_eq!(r.remaining(), 0);

    // 5. Cost, peek and reset.
    let l = make("5 per minute");
    let d = l.check("cost", 3).await.expect("c");
    assert!(d.allowed());
    assert_eq!(d.remaining(), 2);
    assert!(!l.check("cost", 3).await.expect("c").allowed());
    let too_big = l.check("cost", 6).await.expect("c");
    assert!(!too_big.allowed() && too_big.retry_after().is_none());
    assert!(l.peek("cost").await.expect("c").allowed());
    assert!(l.check("cost", 2).await.expect("c").allowed());
    assert!(!l.peek("cost").await.expect("c").allowed());
    l.reset("cost").await.expect("reset");
    assert_eq!(l.check("cost", 1).await.expect("c").remaining(), 4);

    // 5b. Refund: a unit counted in advance comes back; never past a full bucket; an untouched
    //     key stays untouched; the same for both strategies.
    for algo in [Algo::MovingWindow, Algo::Gcra] {
        let l = make("3 per minute").with_strategy(algo).expect("s");
        for _ in 0..3 {
            assert!(admit(&l, "refund").await);
        }
        assert!(!admit(&l, "refund").await, "{algo:?} full");
        l.refund("refund", 1).await.expect("refund");
        assert!(admit(&l, "refund").await, "{algo:?} one came back");
        assert!(!admit(&l, "refund").await, "{algo:?} only one");
        l.refund("refund", 10).await.expect("refund");
        let mut n = 0;
        for _ in 0..5 {
            n += usize::from(admit(&l, "refund").await);
        }
        assert_eq!(
            n, 3,
            "{algo:?}: a refund never gives more than a full bucket"
        );
        l.refund("never-counted", 2).await.expect("refund");
        let d = l.peek("never-counted").await.expect("peek");
        let fresh = l.peek("fresh").await.expect("peek");
        assert_eq!(d.remaining(), fresh.remaining(), "{algo:?}");
        for _ in 0..3 {
            assert!(admit(&l, "never-counted").await, "{algo:?}");
        }
        assert!(!admit(&l, "never-counted").await, "{algo:?}");
    }

    // 6. Keys are independent.
    let l = make("1 per minute");
    assert!(admit(&l, "a").await && admit(&l, "b").await);
    assert!(!admit(&l, "a").await);

    // 7. Concurrency: 64 parallel callers on one key never get more than N.
    for algo in [Algo::MovingWindow, Algo::Gcra] {
        let l = make("10 per minute").with_strategy(algo).expect("s");
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move { admit(&l, "race").await })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            n += usize::from(t.await.expect("task"));
        }
        assert_eq!(n, 10, "{algo:?} under concurrency");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_memory() {
    conformance(memory_store()).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_redis() {
    let redis = crate::servers::RedisServer::start();
    conformance(redis_store(&redis.url())).await;
}

// ---------------------------------------------------------------------------------------------
// Through the whole stack.

/// `/login` limited to 5 per minute outside CSRF, so refused requests count. `/login` is exempt
/// from CSRF here only when the handler's own status is under test (`csrf_exempt`).
fn login_app(buttress: &Buttress, handler_status: StatusCode) -> Stack {
    login_app_with(buttress, handler_status, handler_status == StatusCode::OK)
}

fn login_app_with(buttress: &Buttress, handler_status: StatusCode, csrf_exempt: bool) -> Stack {
    let mut b = buttress
        .clone()
        .limit_route("/login", "5 per minute")
        .expect("route limit");
    if csrf_exempt {
        b = b.csrf_exempt("/login");
    }
    b.apply(
        Router::new()
            .route("/", get(|| async { "home" }))
            .route("/healthz", get(|| async { "ok" }))
            .route("/login", post(move || async move { handler_status })),
    )
    .expect("stack")
}

fn post_req(path: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "example.org")
        .body(Body::empty())
        .expect("request")
}

async fn statuses(app: &Stack, peer: &'static str, path: &'static str, n: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { send(&app, peer, post_req(path)).await.status.as_u16() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// Flask-Limiter with two gunicorn workers on memory:// admitted 6 to 8 of "5 per minute";
/// here exactly 5 pass, under concurrency, and refused-by-the-handler requests count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_limit_admits_exactly_five_and_counts_refused_requests() {
    let settings = support::settings(&[]);
    let buttress = Buttress::from_settings(&settings).expect("stack");
    let app = login_app(&buttress, StatusCode::FORBIDDEN); // e.g. a CSRF failure inside
    let got = statuses(&app, "192.0.2.10:5000", "/login", 30).await;
    assert_eq!(got.iter().filter(|s| **s == 403).count(), 5, "{got:?}");
    assert_eq!(got.iter().filter(|s| **s == 429).count(), 25, "{got:?}");
    // Another client is not affected; the route limit is per route.
    let other = send(&app, "192.0.2.11:5000", post_req("/login")).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn refusal_is_a_problem_with_retry_after_and_ratelimit_headers() {
    let settings = support::settings(&[("BUTTRESS_RATELIMIT_HEADERS", "both")]);
    let buttress = Buttress::from_settings(&settings).expect("stack");
    let app = login_app(&buttress, StatusCode::OK);
    for _ in 0..5 {
        let r = send(&app, "192.0.2.20:1", post_req("/login")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r
            .header("ratelimit")
            .is_some_and(|v| v.starts_with("\"1\";r=")));
    }
    let mut req = post_req("/login");
    req.headers_mut()
        .insert("accept", "application/json".parse().expect("v"));
    let r = send(&app, "192.0.2.20:1", req).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let doc: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(doc["type"], "urn:buttress:rate-limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.header("ratelimit-policy"), Some("\"1\";q=5;w=60"));
    assert!(
        r.header("ratelimit")
            .is_some_and(|v| v.starts_with("\"1\";r=0;t=")),
        "{:?}",
        r.header("ratelimit")
    );
    assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    support::assert_secure_headers(&r, "429");
    // HTML by default.
    let r = send(&app, "192.0.2.20:1", post_req("/login")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert!(
        r.body.contains("429") && r.body.contains("Try again"),
        "{}",
        r.body
    );
}

/// Two route limits share one layer: each path counts against its own limit only, with a query
/// string too, and every other path passes untouched (no route limit headers on it).
#[tokio::test]
async fn route_limits_count_each_path_alone_and_leave_other_paths_alone() {
    let settings = support::settings(&[("BUTTRESS_RATELIMIT_DEFAULT", "none")]);
    let app = Buttress::from_settings(&settings)
        .expect("stack")
        .csrf_exempt("/login")
        .csrf_exempt("/sign-up")
        .limit_route("/login", "3 per minute")
        .expect("login limit")
        .limit_route("/sign-up", "2 per minute")
        .expect("sign-up limit")
        .apply(
            Router::new()
                .route("/", get(|| async { "home" }))
                .route("/login", post(|| async { "in" }))
                .route("/sign-up", post(|| async { "up" })),
        )
        .expect("stack");
    let peer = "192.0.2.30:1";
    let mut got = Vec::new();
    for path in [
        "/login",
        "/login?next=/",
        "/login",
        "/login",
        "/sign-up",
        "/sign-up",
    ] {
        got.push(send(&app, peer, post_req(path)).await.status.as_u16());
    }
    assert_eq!(got, [200, 200, 200, 429, 200, 200], "{got:?}");
    let third = send(&app, peer, post_req("/sign-up")).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(third
        .header("ratelimit-policy")
        .is_some_and(|p| p.contains("q=2;w=60")));
    for _ in 0..10 {
        let home = send(&app, peer, support::get_req("/", &[])).await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(home.header("ratelimit").is_none(), "{:?}", home.headers);
        assert!(home.header("ratelimit-policy").is_none());
    }
    // A path takes one limit string; a second limit for it is refused at start-up.
    let twice = Buttress::from_settings(&settings)
        .expect("stack")
        .limit_route("/login", "3 per minute")
        .expect("first")
        .limit_route("/login", "100 per day");
    assert!(
        matches!(&twice, Err(buttress::ratelimit::RateLimitError::DuplicatePath(p)) if p == "/login"),
        "{:?}",
        twice.err()
    );
}

async fn get_status<S: App>(app: &S, peer: &str, xff: Option<&str>) -> StatusCode {
    let headers: Vec<(&str, &str)> = xff.map(|v| ("x-forwarded-for", v)).into_iter().collect();
    send(app, peer, support::get_req("/", &headers))
        .await
        .status
}

/// A client that is not a trusted proxy cannot choose its key with X-Forwarded-For.
#[tokio::test]
async fn spoofed_forwarded_for_from_untrusted_peer_changes_nothing() {
    let settings = support::settings(&[("BUTTRESS_RATELIMIT_DEFAULT", "3 per minute")]);
    let app = support::app(&settings);
    for i in 0..3 {
        let spoof = format!("10.0.0.{i}");
        assert_eq!(
            get_status(&app, "192.0.2.30:4000", Some(&spoof)).await,
            StatusCode::OK
        );
    }
    for spoof in ["10.9.9.9", "198.51.100.1, 203.0.113.5", "::1"] {
        assert_eq!(
            get_status(&app, "192.0.2.30:4000", Some(spoof)).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{spoof}"
        );
    }
}

/// Behind a trusted proxy, the client is the rightmost untrusted hop: what the client wrote to
/// the left of it is ignored, and distinct real clients are counted apart.
#[tokio::test]
async fn behind_trusted_proxy_the_real_client_is_counted() {
    let settings = support::production(&[("BUTTRESS_RATELIMIT_DEFAULT", "2 per minute")]);
    let app = support::app(&settings);
    let proxy = "127.0.0.1:9000";
    let req = |xff: &str| {
        let mut r = support::get_req(
            "/",
            &[("x-forwarded-for", xff), ("x-forwarded-proto", "https")],
        );
        r.headers_mut()
            .insert("host", "example.org".parse().expect("host"));
        r
    };
    for left in ["1.1.1.1", "2.2.2.2"] {
        let r: Reply = send(&app, proxy, req(&format!("{left}, 198.51.100.7"))).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = send(&app, proxy, req("3.3.3.3, 198.51.100.7")).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "spoofed left part ignored"
    );
    let r = send(&app, proxy, req("198.51.100.8")).await;
    assert_eq!(r.status, StatusCode::OK, "another real client");
}

#[tokio::test]
async fn ipv6_clients_are_grouped_by_64() {
    let settings = support::settings(&[("BUTTRESS_RATELIMIT_DEFAULT", "2 per minute")]);
    let app = support::app(&settings);
    assert_eq!(
        get_status(&app, "[2001:db8:1:2::1]:1", None).await,
        StatusCode::OK
    );
    assert_eq!(
        get_status(&app, "[2001:db8:1:2:ffff::9]:1", None).await,
        StatusCode::OK
    );
    assert_eq!(
        get_status(&app, "[2001:db8:1:2:abcd::5]:1", None).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get_status(&app, "[2001:db8:1:3::1]:1", None).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn global_default_is_on_and_health_checks_are_exempt() {
    let settings = support::settings(&[]);
    let app = support::app(&settings);
    let r = send(&app, "192.0.2.40:1", support::get_req("/", &[])).await;
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"1\";q=200;w=86400, \"2\";q=50;w=3600")
    );
    assert_eq!(r.header("ratelimit"), Some("\"2\";r=49;t=72"));
    for _ in 0..80 {
        let r = send(&app, "192.0.2.40:1", support::get_req("/healthz", &[])).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let settings = support::settings(&[("BUTTRESS_RATELIMIT_DEFAULT", "none")]);
    let app = support::app(&settings);
    let r = send(&app, "192.0.2.40:1", support::get_req("/", &[])).await;
    assert!(r.header("ratelimit").is_none());
}

#[tokio::test]
async fn settings_typo_fails_loudly_with_position() {
    let err = buttress::settings::Settings::loader()
        .env_vars([("BUTTRESS_RATELIMIT_DEFAULT", "200 per day; 50 per huor")])
        .load()
        .expect_err("typo refused");
    let text = err.to_string();
    assert!(text.contains("BUTTRESS_RATELIMIT_DEFAULT"), "{text}");
    assert!(text.contains("position 20"), "{text}");
    assert!(text.contains("a unit"), "{text}");
    for (key, value) in [
        ("BUTTRESS_RATELIMIT_HEADERS", "sometimes"),
        ("BUTTRESS_RATELIMIT_MAX_KEYS", "10"),
        ("BUTTRESS_RATELIMIT_IPV6_PREFIX", "129"),
        ("BUTTRESS_RATELIMIT_ON_STORE_ERROR", "ignore"),
        ("BUTTRESS_RATELIMIT_REDIS_BUDGET", "0s"),
        ("BUTTRESS_RATELIMIT_REDIS_BUDGET", "11s"),
        ("BUTTRESS_RATELIMIT_REDIS_BUDGET", "soon"),
    ] {
        let err = buttress::settings::Settings::loader()
            .env_vars([(key, value)])
            .load()
            .expect_err(key);
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn redis_budget_and_instances_settings() {
    let s = buttress::settings::Settings::loader()
        .env_vars([
            ("BUTTRESS_RATELIMIT_REDIS_BUDGET", "20ms"),
            ("BUTTRESS_INSTANCES", "4"),
        ])
        .load()
        .expect("settings");
    assert_eq!(s.ratelimit_redis_budget, Duration::from_millis(20));
    assert_eq!(s.instances, 4);
    let d = buttress::settings::Settings::default();
    assert_eq!(
        d.ratelimit_redis_budget,
        buttress::ratelimit::DEFAULT_BUDGET
    );
    assert_eq!(d.instances, 1);
}

#[tokio::test]
async fn shadow_mode_only_logs() {
    let layer = RateLimitLayer::parse("1 per minute")
        .expect("l")
        .shadow(true);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer);
    for _ in 0..5 {
        let r = send(&app, "192.0.2.50:1", support::get_req("/", &[])).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header("ratelimit").is_none());
    }
}

#[tokio::test]
async fn scopes_keys_exemptions_and_cost() {
    use buttress::ratelimit::Scope;
    let per_route = RateLimitLayer::parse("2 per minute").expect("l");
    let shared = RateLimitLayer::parse("2 per minute")
        .expect("l")
        .scope(Scope::shared("auth"));
    let by_user = RateLimitLayer::parse("1 per minute")
        .expect("l")
        .key_fn(|p| {
            p.headers
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
    let costly = RateLimitLayer::parse("10 per minute")
        .expect("l")
        .cost_fn(|p| if p.uri.path() == "/export" { 6 } else { 1 })
        .exempt_paths(["/free"])
        .exempt_networks(["192.0.2.200/32".parse().expect("net")]);
    let app = Router::new()
        .route("/a", get(|| async { "a" }).route_layer(per_route.clone()))
        .route("/b", get(|| async { "b" }).route_layer(per_route))
        .route("/s1", get(|| async { "s1" }).route_layer(shared.clone()))
        .route("/s2", get(|| async { "s2" }).route_layer(shared))
        .route("/me", get(|| async { "me" }).route_layer(by_user))
        .route("/export", get(|| async { "x" }).route_layer(costly.clone()))
        .route("/free", get(|| async { "f" }).route_layer(costly));
    let peer = "192.0.2.90:1";
    let st = |path: &'static str, user: Option<&'static str>, peer: &'static str| {
        let app = app.clone();
        async move {
            let headers: Vec<(&str, &str)> = user.map(|u| ("x-user", u)).into_iter().collect();
            send(&app, peer, support::get_req(path, &headers))
                .await
                .status
                .as_u16()
        }
    };
    // Per route: /a and /b count apart.
    assert_eq!(
        [
            st("/a", None, peer).await,
            st("/a", None, peer).await,
            st("/a", None, peer).await
        ],
        [200, 200, 429]
    );
    assert_eq!(st("/b", None, peer).await, 200);
    // Shared: /s1 and /s2 count together.
    assert_eq!(
        [
            st("/s1", None, peer).await,
            st("/s2", None, peer).await,
            st("/s1", None, peer).await
        ],
        [200, 200, 429]
    );
    // Own key: two users behind one address count apart; no key falls back to the address.
    assert_eq!(
        [
            st("/me", Some("ann"), peer).await,
            st("/me", Some("bob"), peer).await,
            st("/me", Some("ann"), peer).await
        ],
        [200, 200, 429]
    );
    // Cost 6 of 10: one export passes, the second does not; exempt path and network pass.
    assert_eq!(
        [
            st("/export", None, peer).await,
            st("/export", None, peer).await
        ],
        [200, 429]
    );
    for _ in 0..20 {
        assert_eq!(st("/free", None, peer).await, 200);
        assert_eq!(st("/export", None, "192.0.2.200:1").await, 200);
    }
}

#[tokio::test]
async fn memory_flood_stays_under_cap_through_the_stack() {
    let settings = support::settings(&[
        ("BUTTRESS_RATELIMIT_DEFAULT", "2 per minute"),
        ("BUTTRESS_RATELIMIT_MAX_KEYS", "1000"),
    ]);
    let buttress = Buttress::from_settings(&settings).expect("stack");
    let global = buttress.rate_limiter().expect("global").clone();
    let app = buttress.apply(support::routes()).expect("stack");
    for _ in 0..2 {
        assert_eq!(get_status(&app, "192.0.2.60:1", None).await, StatusCode::OK);
    }
    for i in 0..3000u32 {
        let peer = format!("10.{}.{}.{}:1", i >> 16, (i >> 8) & 255, i & 255);
        let _ = get_status(&app, &peer, None).await;
    }
    let store = global.limiter().memory_store().expect("memory");
    assert!(store.len() <= 1000, "{}", store.len());
    assert_eq!(
        get_status(&app, "192.0.2.60:1", None).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the limited client did not escape"
    );
}

/// Issue 13's flood, exactly: the stack behind a trusted proxy (127.0.0.1), `10 per minute`, a
/// 1,000-key memory store; 3,000 requests whose `X-Forwarded-For` are distinct IPv6 /64s from
/// three /48s; then a client of another network (198.51.100.23) sends 10 requests and all 10
/// are admitted (0 of 10 when every newcomer shared one overflow allowance), while the
/// flooding networks are refused and memory stays within the cap.
#[tokio::test]
async fn a_flood_from_three_48s_never_locks_a_bystander_out() {
    let settings = support::settings(&[
        ("BUTTRESS_BEHIND_PROXY", "true"),
        ("BUTTRESS_TRUSTED_PROXIES", "127.0.0.1"),
        ("BUTTRESS_RATELIMIT_DEFAULT", "10 per minute"),
        ("BUTTRESS_RATELIMIT_MAX_KEYS", "1000"),
    ]);
    let buttress = Buttress::from_settings(&settings).expect("stack");
    let global = buttress.rate_limiter().expect("global").clone();
    let app = buttress.apply(support::routes()).expect("stack");
    let proxy = "127.0.0.1:9000";
    let flooder = |i: u32| format!("2001:db8:{:x}:{:x}::1", 0xa + i % 3, i / 3);
    let mut flood_admitted = 0;
    for i in 0..3000u32 {
        let status = get_status(&app, proxy, Some(&flooder(i))).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        flood_admitted += usize::from(status == StatusCode::OK);
    }
    let store = global.limiter().memory_store().expect("memory");
    assert!(store.overflowed() > 0, "the flood filled the store");
    assert!(
        store.len() + store.overflow_len() <= 1000,
        "{} tracked + {} overflow",
        store.len(),
        store.overflow_len()
    );
    let mut bystander = 0;
    for _ in 0..10 {
        bystander +=
            usize::from(get_status(&app, proxy, Some("198.51.100.23")).await == StatusCode::OK);
    }
    assert_eq!(bystander, 10, "the bystander's whole allowance");
    assert_eq!(
        get_status(&app, proxy, Some("198.51.100.23")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "and no more"
    );
    // Every flooding network is refused for a /64 it has not used yet; one not flooding is not.
    for net in ["a", "b", "c"] {
        let fresh = format!("2001:db8:{net}:ffff::1");
        assert_eq!(
            get_status(&app, proxy, Some(&fresh)).await,
            StatusCode::TOO_MANY_REQUESTS,
            "2001:db8:{net}::/48"
        );
    }
    assert_eq!(
        get_status(&app, proxy, Some("2001:db8:d:1::1")).await,
        StatusCode::OK
    );
    // The flood got the keys the store could track (one request each) and one allowance per
    // /48 for the rest: the figures for bench/RESULTS.md.
    assert!(flood_admitted <= 1000 + 3 * 10, "{flood_admitted}");
    eprintln!(
        "flood: {flood_admitted} of 3000 admitted; store: {} tracked + {} overflow entries (cap 1000), {} overflow slots, {} overflowed checks, ~{} bytes of tables",
        store.len(),
        store.overflow_len(),
        store.overflow_slots(),
        store.overflowed(),
        store.approx_bytes()
    );
}

// ---------------------------------------------------------------------------------------------
// Redis: failure policies, recovery, several instances.

#[cfg(feature = "redis")]
mod redis_store {
    use super::*;
    use crate::servers::RedisServer;
    use buttress::ratelimit::{OnStoreError, RedisStore};

    fn limiter(url: &str, policy: OnStoreError, name: &str) -> RateLimiter {
        RateLimiter::parse("2 per minute")
            .expect("l")
            .with_name(name)
            .with_redis(RedisStore::open(url).expect("url"))
            .with_on_store_error(policy)
    }

    async fn until_recovered(l: &RateLimiter, key: &str) {
        for _ in 0..100 {
            if let Ok(d) = l.peek(key).await {
                if !d.degraded() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the limiter did not recover within 10 s of Redis coming back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failure_policies_and_recovery_without_restart() {
        let mut redis = RedisServer::start();
        let url = redis.url();
        let closed = limiter(&url, OnStoreError::FailClosed, "closed");
        let open = limiter(&url, OnStoreError::FailOpen, "open");
        let memory = limiter(&url, OnStoreError::Memory, "memory");
        for l in [&closed, &open, &memory] {
            let d = l.check("k", 1).await.expect("up");
            assert!(d.allowed() && !d.degraded());
        }

        redis.stop();
        assert!(closed.check("k", 1).await.is_err(), "fail-closed refuses");
        for _ in 0..5 {
            let d = open.check("k", 1).await.expect("fail-open answers");
            assert!(d.allowed() && d.degraded());
        }
        let a = memory.check("k", 1).await.expect("fallback");
        let b = memory.check("k", 1).await.expect("fallback");
        let c = memory.check("k", 1).await.expect("fallback");
        assert!(
            a.allowed() && b.allowed() && !c.allowed(),
            "the fallback still limits"
        );
        assert!(a.degraded() && c.degraded());
        for l in [&closed, &open, &memory] {
            assert!(l.store_errors() >= 1, "{} counted", l.name());
        }

        redis.restart();
        for l in [&closed, &open, &memory] {
            until_recovered(l, "k").await;
            let d = l.check("fresh", 1).await.expect("back");
            assert!(d.allowed() && !d.degraded(), "{} recovered", l.name());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outage_through_the_stack_503_or_admit_by_policy() {
        let mut redis = RedisServer::start();
        let url = redis.url();
        let app_for = |policy: &str| {
            let settings = support::settings(&[
                ("BUTTRESS_RATELIMIT_STORAGE", url.as_str()),
                ("BUTTRESS_RATELIMIT_DEFAULT", "100 per minute"),
                ("BUTTRESS_RATELIMIT_ON_STORE_ERROR", policy),
            ]);
            support::app(&settings)
        };
        let closed = app_for("fail-closed");
        let open = app_for("fail-open");
        let memory = app_for("memory");
        for app in [&closed, &open, &memory] {
            assert_eq!(get_status(app, "192.0.2.70:1", None).await, StatusCode::OK);
        }
        redis.stop();
        let mut req = support::get_req("/", &[("accept", "application/json")]);
        req.headers_mut()
            .insert("host", "example.org".parse().expect("h"));
        let r = send(&closed, "192.0.2.70:1", req).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            r.body.contains("urn:buttress:rate-limit-unavailable"),
            "{}",
            r.body
        );
        assert!(
            !r.body.to_lowercase().contains("redis"),
            "nothing internal leaks: {}",
            r.body
        );
        assert_eq!(
            get_status(&open, "192.0.2.70:1", None).await,
            StatusCode::OK
        );
        assert_eq!(
            get_status(&memory, "192.0.2.70:1", None).await,
            StatusCode::OK
        );
        redis.restart();
        let mut ok = false;
        for _ in 0..100 {
            if get_status(&closed, "192.0.2.70:1", None).await == StatusCode::OK {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ok, "fail-closed recovered without a restart");
    }

    /// Three instances on one Redis with the `memory` policy: while Redis is down each counts
    /// alone, so each admits its share (`BUTTRESS_INSTANCES`), and together they stay within
    /// the limit. Without the share each would admit the whole limit (3 × 30 here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_fallback_admits_each_instance_its_share() {
        let mut redis = RedisServer::start();
        let url = redis.url();
        let instance = |instances: &str| {
            let settings = support::settings(&[
                ("BUTTRESS_RATELIMIT_STORAGE", url.as_str()),
                // Two limits, the minute the nearer: the headers must name it, not the day.
                ("BUTTRESS_RATELIMIT_DEFAULT", "1000 per day; 30 per minute"),
                ("BUTTRESS_RATELIMIT_ON_STORE_ERROR", "memory"),
                ("BUTTRESS_INSTANCES", instances),
            ]);
            support::app(&settings)
        };
        let shared = [instance("3"), instance("3"), instance("3")];
        let alone = instance("1");
        for app in shared.iter().chain([&alone]) {
            assert_eq!(get_status(app, "192.0.2.80:1", None).await, StatusCode::OK);
        }
        redis.stop();
        let mut admitted = Vec::new();
        for app in &shared {
            let mut n = 0;
            for _ in 0..40 {
                if get_status(app, "192.0.2.81:1", None).await == StatusCode::OK {
                    n += 1;
                }
            }
            admitted.push(n);
        }
        assert_eq!(admitted, vec![10, 10, 10], "each instance admits 30 / 3");
        // The policy header keeps the declared limit; what remains is counted in the share.
        let r = send(&shared[0], "192.0.2.82:1", support::get_req("/", &[])).await;
        assert_eq!(
            r.header("ratelimit-policy"),
            Some("\"1\";q=1000;w=86400, \"2\";q=30;w=60")
        );
        let remaining = r.header("ratelimit").unwrap_or_default();
        assert!(remaining.starts_with("\"2\";r=9;"), "{remaining}");
        let mut n = 0;
        for _ in 0..40 {
            if get_status(&alone, "192.0.2.81:1", None).await == StatusCode::OK {
                n += 1;
            }
        }
        assert_eq!(n, 30, "one declared instance keeps the whole limit");
    }

    /// The store reads the server's version before its first script: the suite's Redis (at
    /// least 5.0, which the store requires) passes; a user whose ACL denies `INFO` cannot show
    /// its version and is used all the same (an old server would fail each check by itself).
    /// The refusal of an older server is unit-tested on `INFO` replies of Redis 2.8 to 4.0
    /// (`ratelimit::redis::tests::server_versions`): no such server is packaged here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_redis_version_is_read_before_the_first_script() {
        let redis = RedisServer::start();
        let client = ::redis::Client::open(redis.url()).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let info: String = ::redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .expect("INFO");
        let major: u32 = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .and_then(|v| v.split('.').next()?.parse().ok())
            .expect("a version");
        assert!(major >= buttress::ratelimit::MIN_REDIS_VERSION.0, "{info}");
        let store = RedisStore::open(&redis.url()).expect("url");
        store
            .warm_up(Duration::from_secs(2))
            .await
            .expect("Redis >= 5 is accepted");
        let limiter = RateLimiter::parse("2 per minute")
            .expect("l")
            .with_name("version")
            .with_redis(store);
        let d = limiter.check("k", 1).await.expect("check");
        assert!(d.allowed() && !d.degraded());

        // A user that may run everything but INFO.
        let _: String = ::redis::cmd("ACL")
            .arg(
                &[
                    "SETUSER",
                    "limiter",
                    "on",
                    ">test-only-pw",
                    "~*",
                    "+@all",
                    "-info",
                ][..],
            )
            .query_async(&mut conn)
            .await
            .expect("ACL SETUSER");
        let url = redis
            .url()
            .replace("redis://", "redis://limiter:test-only-pw@");
        let store = RedisStore::open(&url).expect("url");
        store
            .warm_up(Duration::from_secs(2))
            .await
            .expect("a server that hides its version is used");
        let limiter = RateLimiter::parse("2 per minute")
            .expect("l")
            .with_name("version-hidden")
            .with_redis(store);
        for expect in [true, true, false] {
            let d = limiter.check("k", 1).await.expect("check");
            assert_eq!((d.allowed(), d.degraded()), (expect, false));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn warm_up_connects_and_loads_the_script() {
        let redis = RedisServer::start();
        let store = RedisStore::open(&redis.url()).expect("url");
        let client = ::redis::Client::open(redis.url()).expect("client");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let sha = ::redis::Script::new(buttress::ratelimit::CHECK_SCRIPT)
            .get_hash()
            .to_owned();
        let loaded = || {
            let mut conn = conn.clone();
            let sha = sha.clone();
            async move {
                let exists: Vec<i64> = ::redis::cmd("SCRIPT")
                    .arg("EXISTS")
                    .arg(&sha)
                    .query_async(&mut conn)
                    .await
                    .expect("SCRIPT EXISTS");
                exists == [1]
            }
        };
        assert!(!loaded().await, "a fresh server has no script");
        store
            .warm_up(Duration::from_secs(2))
            .await
            .expect("warm up");
        assert!(loaded().await, "loaded before the first check");
        // Nothing listens on port 1: a clear error within the timeout, not a hang.
        let down = RedisStore::open("redis://127.0.0.1:1").expect("url");
        let started = std::time::Instant::now();
        let err = down
            .warm_up(Duration::from_millis(500))
            .await
            .expect_err("nothing listens");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(err.to_string().contains("not reachable yet"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn login_throttle_on_redis() {
        let redis = RedisServer::start();
        let settings = support::settings(&[("BUTTRESS_RATELIMIT_STORAGE", redis.url().as_str())]);
        let buttress = Buttress::from_settings(&settings).expect("stack");
        let (a, b) = (buttress.login_throttle(), buttress.login_throttle());
        let ip: std::net::IpAddr = "203.0.113.50".parse().expect("ip");
        for i in 0..4 {
            // Two instances, one set of counters: four wrong passwords.
            let t = if i % 2 == 0 { &a } else { &b };
            assert!(t.check("carol", ip).await.expect("c").is_allowed());
        }
        // The fifth attempt is the right one; the success clears the counter for both.
        let LoginVerdict::Allowed(attempt) = a.check("carol", ip).await.expect("c") else {
            panic!("the fifth attempt is allowed");
        };
        a.succeeded(attempt).await.expect("s");
        for _ in 0..5 {
            assert!(b.check("carol", ip).await.expect("c").is_allowed());
        }
        assert!(!a.check("carol", ip).await.expect("c").is_allowed());
    }

    /// Parallel guesses on one account from 120 addresses through two instances: exactly the
    /// account-wide allowance (50 per hour) reaches a password check; successes are given back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn login_throttle_counts_parallel_guesses_on_redis() {
        let redis = RedisServer::start();
        // A budget a loaded CI machine cannot blow: this tests counting, not latency. Two
        // instances of one deployment share its key (and so its application id).
        let settings = support::settings(&[
            ("BUTTRESS_RATELIMIT_STORAGE", redis.url().as_str()),
            ("BUTTRESS_RATELIMIT_REDIS_BUDGET", "2s"),
            ("SECRET_KEY", support::STRONG_KEY),
        ]);
        let (sa, sb) = (
            Buttress::from_settings(&settings).expect("a"),
            Buttress::from_settings(&settings).expect("b"),
        );
        sa.warm_up().await;
        sb.warm_up().await;
        let (a, b) = (sa.login_throttle(), sb.login_throttle());
        let tasks: Vec<_> = (0..120u32)
            .map(|i| {
                let t = if i % 2 == 0 { a.clone() } else { b.clone() };
                let ip = std::net::IpAddr::from([10, 3, (i >> 8) as u8, i as u8]);
                tokio::spawn(async move { t.check("dora", ip).await.expect("c").is_allowed() })
            })
            .collect();
        let mut allowed = 0;
        for t in tasks {
            allowed += usize::from(t.await.expect("task"));
        }
        assert_eq!(allowed, 50);
        // An office behind one address: 120 sign-ins (per-address allowance 100) all pass.
        let office: std::net::IpAddr = "203.0.113.78".parse().expect("ip");
        for i in 0..120 {
            let who = format!("staff{i}");
            let t = if i % 2 == 0 { &a } else { &b };
            let LoginVerdict::Allowed(attempt) = t.check(&who, office).await.expect("c") else {
                panic!("sign-in {i} from the office refused");
            };
            t.succeeded(attempt).await.expect("s");
        }
    }

    /// Two instances sharing one Redis hold one limit: exactly 5 logins pass in all, under
    /// concurrency.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_share_one_exact_limit() {
        let redis = RedisServer::start();
        // One deployment: one key (its application id), so one set of counters.
        let settings = support::settings(&[
            ("BUTTRESS_RATELIMIT_STORAGE", redis.url().as_str()),
            ("SECRET_KEY", support::STRONG_KEY),
        ]);
        let (sa, sb) = (
            Buttress::from_settings(&settings).expect("a"),
            Buttress::from_settings(&settings).expect("b"),
        );
        // Connected before the burst, as the server does at start: a first connection on a
        // busy machine can outlast the 50 ms budget of a check, which then fails closed.
        sa.warm_up().await;
        sb.warm_up().await;
        let a = login_app(&sa, StatusCode::FORBIDDEN);
        let b = login_app(&sb, StatusCode::FORBIDDEN);
        let (x, y) = tokio::join!(
            statuses(&a, "192.0.2.80:1", "/login", 15),
            statuses(&b, "192.0.2.80:2", "/login", 15)
        );
        let passed = x.iter().chain(&y).filter(|s| **s == 403).count();
        assert_eq!(passed, 5, "{x:?} {y:?}");
    }
}

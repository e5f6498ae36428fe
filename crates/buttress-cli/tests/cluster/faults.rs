//! Faults on a running cluster: Redis or PostgreSQL stopped and restarted, SIGTERM under load,
//! slow-header connections and oversized bodies, a secret-key rotation. Each test bounds its
//! load in requests and time and stops everything it started.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{
    assert_no_internals, client, percentile, Browser, Cluster, Instance, Spec, KEY_1, KEY_2,
};

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// Background load: `workers` tasks GET `paths` round-robin over `bases` until stopped (at most
/// `limit`), counting answers per status. Connection errors are counted under status 0.
struct Load {
    stop: Arc<AtomicBool>,
    statuses: Arc<Mutex<std::collections::BTreeMap<u16, usize>>>,
    five_hundreds: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(http: &reqwest::Client, bases: Vec<String>, paths: &[&str], workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let five_hundreds = Arc::new(Mutex::new(Vec::new()));
        let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        let limit = Instant::now() + Duration::from_secs(60);
        let tasks = (0..workers)
            .map(|w| {
                let (http, bases, paths) = (http.clone(), bases.clone(), paths.clone());
                let (stop, statuses, five) =
                    (stop.clone(), statuses.clone(), five_hundreds.clone());
                tokio::spawn(async move {
                    let mut n = w;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < limit {
                        let url = format!("{}{}", bases[n % bases.len()], paths[n % paths.len()]);
                        n += 1;
                        let status = match http.get(&url).header("accept", HTML).send().await {
                            Ok(r) => {
                                let s = r.status().as_u16();
                                if s >= 500 && s != 503 {
                                    let body = r.text().await.unwrap_or_default();
                                    five.lock()
                                        .expect("lock")
                                        .push(format!("{s} {url}: {body}"));
                                } else {
                                    let _ = r.bytes().await;
                                }
                                s
                            }
                            Err(_) => 0,
                        };
                        *statuses.lock().expect("lock").entry(status).or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            statuses,
            five_hundreds,
            tasks,
        }
    }

    async fn finish(self) -> std::collections::BTreeMap<u16, usize> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load task");
        }
        let bad = self.five_hundreds.lock().expect("lock").clone();
        assert!(bad.is_empty(), "5xx other than 503 under load: {bad:#?}");
        let statuses = self.statuses.lock().expect("lock").clone();
        statuses
    }
}

async fn get_html(
    http: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
) -> (u16, String, String) {
    let mut req = http.get(url).header("accept", HTML);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("session={c}"));
    }
    let r = req.send().await.expect("answers");
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ctype, r.text().await.unwrap_or_default())
}

async fn wait_until<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis killed under load and started again (empty):
/// * the global limit follows its declared policy: `memory` (the default) keeps admitting on
///   instances 1 and 2, `fail-closed` (instance 3) answers 503 `rate-limit-unavailable` with
///   `Retry-After`;
/// * pages that need the session (Redis) answer a 503 page, signing in fails closed (503),
///   nothing internal leaks, never a 500;
/// * after Redis is back, signing in, sessions across instances and the shared limit work again,
///   without restarting any instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_under_load_follows_declared_policies_and_recovers_without_restart() {
    let mut cluster = Cluster::start(&Spec::full());
    cluster.instances[2].restart_with(&[("BUTTRESS_RATELIMIT_ON_STORE_ERROR", "fail-closed")]);
    let pids: Vec<Option<u32>> = cluster.instances.iter().map(Instance::pid).collect();
    let redis_port = cluster.redis.as_ref().map_or(0, |r| r.port());
    let pg_port = cluster.postgres.as_ref().map_or(0, |p| p.port());
    let ports = [redis_port, pg_port];
    let http = client();
    let email = "ana@example.org";
    let mut ana = Browser::new();
    ana.sign_up_and_in(cluster.at(0), cluster.at(1), email)
        .await;
    let bases: Vec<String> = cluster.instances.iter().map(|i| i.base.clone()).collect();
    let load = Load::start(&http, bases, &["/static/portal.css", "/", "/donors"], 4);
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.redis.as_mut().expect("redis").stop();
    let outage = Instant::now();
    for (i, inst) in cluster.instances.iter().enumerate() {
        // Global limit, declared policy (on a page: static assets are not counted).
        let (status, _, body) = get_html(&http, &inst.url("/"), None).await;
        if i < 2 {
            assert_eq!(status, 200, "memory policy on instance {i}: {body}");
        } else {
            assert_eq!(status, 503, "fail-closed policy on instance {i}: {body}");
            assert!(body.contains("rate-limit-unavailable"), "{body}");
            assert_no_internals(&body, &ports, "limit during the outage");
        }
        // The session store is down: a clear 503 page.
        let started = Instant::now();
        let (status, ctype, body) =
            get_html(&http, &inst.url("/account/sessions"), ana.cookie.as_deref()).await;
        assert_eq!(status, 503, "session page on instance {i}: {body}");
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a short time budget"
        );
        assert_no_internals(&body, &ports, "session page during the outage");
        // Signing in fails closed.
        let mut eve = Browser::new();
        let r = eve.get(inst, "/login").await;
        assert!(
            [429, 503].contains(&r.status.as_u16()),
            "login form: {}",
            r.status
        );
        assert_no_internals(&r.body, &ports, "login form during the outage");
        let r = ana
            .post(
                inst,
                "/login",
                &[
                    ("email", email),
                    ("password", "correct horse battery staple"),
                ],
            )
            .await;
        assert!(
            [429, 503].contains(&r.status.as_u16()),
            "sign-in during the outage must fail closed, got {}: {}",
            r.status,
            r.body
        );
        assert!(
            r.body.contains("rate-limit-unavailable"),
            "the login limit fails closed: {}",
            r.body
        );
        assert_no_internals(&r.body, &ports, "sign-in during the outage");
    }
    // Keep Redis down a little longer, under load.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let outage_len = outage.elapsed();

    cluster.redis.as_mut().expect("redis").restart();
    let back = Instant::now();
    for inst in &cluster.instances {
        let url = inst.url("/");
        let http = http.clone();
        wait_until(Duration::from_secs(15), "the limit on Redis again", || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
    }
    // Redis restarted empty (no persistence in the tests): sessions made before are gone, so
    // sign in again, on instance 3, and use the session on 1 and 2.
    let mut ana = Browser::new();
    wait_until(Duration::from_secs(15), "the login form again", || {
        let mut b = Browser::new();
        let inst = cluster.at(2);
        async move { b.get(inst, "/login").await.status == 200 }
    })
    .await;
    ana.sign_in(cluster.at(2), email).await;
    for (i, inst) in cluster.instances.iter().enumerate() {
        let mut r = ana.get(inst, "/account/sessions").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while r.status == 503 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            r = ana.get(inst, "/account/sessions").await;
        }
        eprintln!(
            "instance {i}: sessions back {:?} after Redis",
            back.elapsed()
        );
        assert!(
            r.status == 200 && r.body.contains(email),
            "instance {i} after Redis is back: {} {}\n{}",
            r.status,
            r.body,
            cluster.logs()
        );
    }
    let recovered = back.elapsed();
    let statuses = load.finish().await;
    assert!(
        !cluster.redis_keys("buttress:*:rl:*").is_empty(),
        "the global limit counts in Redis again"
    );
    let now: Vec<Option<u32>> = cluster.instances.iter().map(Instance::pid).collect();
    assert_eq!(pids, now, "no instance was restarted");
    assert!(!statuses.contains_key(&500), "{statuses:?}");
    assert!(
        !statuses.contains_key(&0),
        "every request answered: {statuses:?}"
    );
    eprintln!(
        "outage {outage_len:?}, full service {recovered:?} after restart; load: {statuses:?}"
    );
}

/// PostgreSQL stopped: every page that needs the database answers a 503 page (HTML or
/// problem+json) with nothing internal in it, within the pool's time budget, and the service
/// comes back by itself after the restart (sessions in Redis survive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_gives_a_clean_503_and_recovers_without_restart() {
    let mut cluster = Cluster::start(&Spec::full());
    let pids: Vec<Option<u32>> = cluster.instances.iter().map(Instance::pid).collect();
    let pg_port = cluster.postgres.as_ref().map_or(0, |p| p.port());
    let redis_port = cluster.redis.as_ref().map_or(0, |r| r.port());
    let ports = [pg_port, redis_port];
    let http = client();
    let email = "ana@example.org";
    let mut ana = Browser::new();
    ana.sign_up_and_in(cluster.at(0), cluster.at(1), email)
        .await;
    ana.get(cluster.at(0), "/requests/new").await;
    let fields = [
        ("blood_group", "A+"),
        ("city", "Lyon"),
        ("hospital", "Croix-Rousse"),
        ("units", "1"),
        ("urgency", "normal"),
    ];
    let r = ana.post(cluster.at(2), "/requests/new", &fields).await;
    assert_eq!(r.status, 303, "{}", r.body);

    cluster.postgres.as_mut().expect("pg").stop().expect("stop");
    // Every request waits for the pool's 3 s budget: send them all at once.
    let mut checks = Vec::new();
    for (i, inst) in cluster.instances.iter().enumerate() {
        for path in [
            "/",
            "/readyz",
            "/donors?blood_group=A%2B&city=Lyon",
            "/requests",
        ] {
            let (http, url, cookie) = (http.clone(), inst.url(path), ana.cookie.clone());
            checks.push(tokio::spawn(async move {
                let started = Instant::now();
                let (status, ctype, body) = get_html(&http, &url, cookie.as_deref()).await;
                assert_eq!(status, 503, "GET {path} on instance {i}: {body}");
                if path != "/readyz" {
                    assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
                    assert!(body.contains("database"), "a clear page: {body}");
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{path}: within the pool budget"
                );
                assert_no_internals(&body, &ports, &format!("GET {path}"));
            }));
        }
        let (http, url) = (
            http.clone(),
            inst.url("/api/donors?blood_group=A%2B&city=Lyon"),
        );
        checks.push(tokio::spawn(async move {
            let r = http
                .get(url)
                .header("accept", "application/json")
                .send()
                .await
                .expect("answers");
            assert_eq!(r.status(), 503);
            let body = r.text().await.unwrap_or_default();
            assert!(body.contains("database-unavailable"), "{body}");
            assert_no_internals(&body, &ports, "GET /api/donors");
        }));
        let mut ana = ana.clone();
        let base = inst.base.clone();
        checks.push(tokio::spawn(async move {
            let r = ana.post(&base, "/requests/new", &fields).await;
            assert_eq!(r.status, 503, "POST on instance {i}: {}", r.body);
            assert_no_internals(&r.body, &ports, "POST /requests/new");
        }));
    }
    for c in checks {
        c.await.expect("check");
    }
    let logs = cluster.logs();
    assert!(
        logs.contains("database unavailable"),
        "the cause is logged:\n{logs}"
    );

    cluster
        .postgres
        .as_mut()
        .expect("pg")
        .restart()
        .expect("restart");
    let back = Instant::now();
    for inst in &cluster.instances {
        // Liveness (`/healthz`) never touched the database; readiness tells it is back.
        let url = inst.url("/readyz");
        wait_until(Duration::from_secs(20), "readyz 200 again", || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        let r = ana.get(inst, "/requests").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("Croix-Rousse"), "data is back");
    }
    eprintln!(
        "full service {:?} after PostgreSQL restarted",
        back.elapsed()
    );
    let now: Vec<Option<u32>> = cluster.instances.iter().map(Instance::pid).collect();
    assert_eq!(pids, now, "no instance was restarted");
}

/// SIGTERM to instance 1 while 8 clients post blood requests to it through the JSON API: it
/// exits 0, and every request whose POST got 201 is in the database (counted directly), with
/// nothing stored that was not acknowledged (in-flight requests finished with their answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_every_acknowledged_blood_request() {
    let mut cluster = Cluster::start(&Spec::full());
    let http = client();
    let mut ana = Browser::new();
    ana.sign_up_and_in(cluster.at(0), cluster.at(1), "ana@example.org")
        .await;
    ana.get(cluster.at(0), "/requests/new").await;
    let token = ana.token.clone().expect("token");
    let cookie = ana.cookie.clone().expect("cookie");
    let target = cluster.at(0).base.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let odd = Arc::new(Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let (http, token, cookie, target) =
                (http.clone(), token.clone(), cookie.clone(), target.clone());
            let (stop, acked, failed, odd) =
                (stop.clone(), acked.clone(), failed.clone(), odd.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && n < 2000 {
                    n += 1;
                    let body = serde_json::json!({
                        "blood_group": "B+", "city": "Lyon",
                        "hospital": format!("Worker {w} #{n}"), "units": 1, "urgency": "urgent",
                    });
                    let res = http
                        .post(format!("{target}/api/requests"))
                        .header("origin", &target)
                        .header("cookie", format!("session={cookie}"))
                        .header("x-csrf-token", &token)
                        .header("accept", "application/json")
                        .json(&body)
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().as_u16() == 201 => {
                            match r.json::<serde_json::Value>().await {
                                Ok(doc) => {
                                    let id = doc["id"].as_i64().expect("id");
                                    acked.lock().expect("lock").push(id);
                                }
                                // Headers came, the body did not: not acknowledged.
                                Err(e) => odd.lock().expect("lock").push(format!("body: {e}")),
                            }
                        }
                        Ok(r) => {
                            let s = r.status();
                            let b = r.text().await.unwrap_or_default();
                            odd.lock().expect("lock").push(format!("{s}: {b}"));
                        }
                        Err(_) => {
                            // The instance has closed its listener: this client is done.
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = acked.lock().expect("lock").len();
    assert!(before > 0, "load is flowing: {:?}", odd.lock());
    cluster.instances[0].sigterm();
    let code = cluster.instances[0].wait_exit(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(
        code,
        Some(0),
        "graceful exit\n{}",
        cluster.instances[0].log_text()
    );
    let acked = acked.lock().expect("lock").clone();
    let odd = odd.lock().expect("lock").clone();
    assert!(odd.is_empty(), "only 201 or a refused connection: {odd:#?}");

    let url = cluster.database_url.clone().expect("pg");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM blood_requests")
        .fetch_all(&pool)
        .await
        .expect("query");
    pool.close().await;
    let stored: std::collections::HashSet<i64> = rows.into_iter().map(|r| r.0).collect();
    let missing: Vec<&i64> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    assert_eq!(
        stored.len(),
        acked.len(),
        "stored but never acknowledged: an in-flight request lost its answer"
    );
    eprintln!(
        "{} acknowledged ({before} before SIGTERM), {} clients saw the listener close",
        acked.len(),
        failed.load(Ordering::Relaxed)
    );
}

fn open_files_soft_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

async fn latencies(http: &reqwest::Client, url: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = http.get(url).send().await.expect("answers");
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
        out.push(t.elapsed());
    }
    out
}

/// 500 slow-header connections (a partial request head each, held open) do not slow a normal
/// client beyond max(5 x its baseline p95, 250 ms) at p95, and the server drops them after its
/// header read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_500_connections_do_not_starve_a_normal_client() {
    // 500 client and 500 server sockets: raise this process's soft limit (the servers inherit
    // it) up to 4096 when it is lower, as `ulimit -n 4096` would.
    if open_files_soft_limit() < 2048 {
        let _ = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg("--nofile=4096:")
            .status();
    }
    let limit = open_files_soft_limit();
    assert!(
        limit >= 2048,
        "`ulimit -n` is {limit} and could not be raised: the test needs at least 2048 (ulimit -n 4096)"
    );
    let cluster = Cluster::start(
        &Spec {
            instances: 1,
            redis: false,
            postgres: false,
            env: Vec::new(),
        }
        .set("BUTTRESS_HEADER_READ_TIMEOUT", "5s"),
    );
    let inst = cluster.at(0);
    let http = client();
    let url = inst.url("/");
    let _ = latencies(&http, &url, 10).await; // warm up
    let baseline = percentile(&latencies(&http, &url, 60).await, 95);

    let port = inst.port;
    let slow: Vec<TcpStream> = tokio::task::spawn_blocking(move || {
        (0..500)
            .map(|i| {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                let head = format!("GET /?slow={i} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
                s.write_all(head.as_bytes()).expect("partial head");
                s
            })
            .collect()
    })
    .await
    .expect("connect task");
    let opened = Instant::now();
    let under = percentile(&latencies(&http, &url, 60).await, 95);
    let measured_in = opened.elapsed();
    let bound = (baseline * 5).max(Duration::from_millis(250));
    eprintln!("p95 baseline {baseline:?}, with 500 slow connections {under:?} (bound {bound:?}, measured in {measured_in:?})");
    assert!(
        measured_in < Duration::from_secs(5),
        "measured while every slow connection was still open"
    );
    assert!(under < bound, "p95 {under:?} over {bound:?}");

    // After the header read timeout, the server has closed them.
    let closed = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_secs(6).saturating_sub(opened.elapsed()));
        slow.into_iter()
            .filter(|s| {
                let mut s = s;
                s.set_read_timeout(Some(Duration::from_secs(3))).ok();
                let mut buf = [0u8; 512];
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => true,
                    // A 408 answer before closing also ends it.
                    Ok(n) => String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
                }
            })
            .count()
    })
    .await
    .expect("check task");
    assert_eq!(
        closed, 500,
        "every slow connection is closed after the header timeout"
    );
    assert_eq!(http.get(&url).send().await.expect("answers").status(), 200);
}

/// A head announcing a body over the limit gets 413 before any of the body is sent; a chunked
/// body without a length (sent with a valid session and CSRF token, so the handler reads it)
/// gets 413 once the limit is passed, long before it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_without_being_buffered() {
    let cluster = Cluster::start(
        &Spec {
            instances: 1,
            redis: false,
            postgres: false,
            env: Vec::new(),
        }
        .set("BUTTRESS_BODY_LIMIT", "64KiB"),
    );
    let inst = cluster.at(0);
    let origin = inst.base.clone();
    for path in ["/api/requests", "/signup", "/login"] {
        let mut s = TcpStream::connect(("127.0.0.1", inst.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n",
            inst.port
        );
        let started = Instant::now();
        s.write_all(head.as_bytes()).expect("head");
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).expect("an answer before the body");
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    // Chunked, no length, through the CSRF check: the server must stop reading at the limit.
    let mut visitor = Browser::new();
    visitor.get(inst, "/signup").await;
    let cookie = visitor.cookie.clone().expect("a session for the form");
    let token = visitor.token.clone().expect("a token");
    let port = inst.port;
    let (answer, sent) =
        tokio::task::spawn_blocking(move || chunked_upload(port, &origin, &cookie, &token))
            .await
            .expect("upload");
    assert!(answer.starts_with("HTTP/1.1 413"), "chunked: {answer}");
    assert!(
        sent <= 1024 * 1024,
        "the server answered after {sent} bytes of a 64 KiB limit"
    );
}

/// Streams a chunked form body until the server answers; returns the answer and bytes sent.
fn chunked_upload(port: u16, origin: &str, cookie: &str, token: &str) -> (String, usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST /signup HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\nCookie: session={cookie}\r\nX-CSRF-Token: {token}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("head");
    s.set_read_timeout(Some(Duration::from_millis(20))).ok();
    s.set_write_timeout(Some(Duration::from_secs(2))).ok();
    let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
    let mut sent = 0usize;
    let mut answer = String::new();
    let mut buf = [0u8; 4096];
    while sent < 64 * 1024 * 1024 {
        if s.write_all(chunk.as_bytes()).is_err() {
            break;
        }
        sent += 0x4000;
        match s.read(&mut buf) {
            Ok(n) if n > 0 => {
                answer = String::from_utf8_lossy(&buf[..n]).into_owned();
                break;
            }
            _ => {}
        }
    }
    if answer.is_empty() {
        s.set_read_timeout(Some(Duration::from_secs(2))).ok();
        if let Ok(n) = s.read(&mut buf) {
            answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    (answer, sent)
}

async fn rotate_keys_one_by_one(spec: Spec) {
    let mut cluster = Cluster::start(&spec);
    let email = "ana@example.org";
    let mut ana = Browser::new();
    ana.sign_up_and_in(cluster.at(0), cluster.at(1), email)
        .await;
    ana.get(cluster.at(0), "/requests/new").await;
    let old_token = ana.token.clone().expect("token");
    let old_cookie = ana.cookie.clone();
    let fields = [
        ("blood_group", "AB-"),
        ("city", "Lyon"),
        ("hospital", "Lyon Sud"),
        ("units", "1"),
        ("urgency", "critical"),
    ];
    for r in 0..cluster.instances.len() {
        cluster.instances[r]
            .restart_with(&[("SECRET_KEY", KEY_2), ("SECRET_KEY_FALLBACKS", KEY_1)]);
        // Mixed keys now: every instance must still know Ana, and take her old token.
        for (i, inst) in cluster.instances.iter().enumerate() {
            assert!(
                ana.signed_in_on(inst, email).await,
                "signed out on instance {i} after restarting {r}\n{}",
                cluster.logs()
            );
            let res = ana
                .post_with_token(inst, "/requests/new", &fields, &old_token)
                .await;
            assert_eq!(res.status, 303, "old token on instance {i}: {}", res.body);
        }
    }
    // After the rotation: a fresh token from the new key works everywhere, and so does a new
    // sign-in.
    ana.get(cluster.at(2), "/requests/new").await;
    for inst in &cluster.instances {
        let res = ana.post(inst, "/requests/new", &fields).await;
        assert_eq!(res.status, 303, "{}", res.body);
    }
    let mut ben = Browser::new();
    ben.sign_up_and_in(cluster.at(1), cluster.at(2), "ben@example.org")
        .await;
    assert!(ben.signed_in_on(cluster.at(0), "ben@example.org").await);
    eprintln!(
        "cookie {} during the rotation",
        if ana.cookie == old_cookie {
            "unchanged"
        } else {
            "re-issued"
        }
    );
}

/// Rolling restart with `SECRET_KEY` = new, `SECRET_KEY_FALLBACKS` = old, sessions in Redis:
/// nobody is signed out at any point, old CSRF tokens keep working on old and new instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_one_instance_at_a_time_signs_nobody_out_with_redis_sessions() {
    rotate_keys_one_by_one(Spec::full()).await;
}

/// The same rotation with `BUTTRESS_SESSION_STORE=cookie` (the portal keeps its sessions in
/// its database in that case, because it lists and revokes them) and limits in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_one_instance_at_a_time_signs_nobody_out_with_cookie_setting() {
    rotate_keys_one_by_one(
        Spec {
            redis: false,
            ..Spec::full()
        }
        .set("BUTTRESS_SESSION_STORE", "cookie"),
    )
    .await;
}

/// SIGTERM as soon as the `listening on` line is out is a graceful exit (code 0): the signal
/// handlers are installed before the line is printed. The signal is sent by the thread that
/// reads the line, the moment it reads it, ten times.
#[test]
fn sigterm_right_after_the_listening_line_exits_gracefully() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let tmp = tempfile::Builder::new()
        .prefix("buttress-cluster-term-")
        .tempdir()
        .expect("temp dir");
    let data = tmp.path();
    for round in 0..10 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_buttress"))
            .arg("serve")
            .env_clear()
            .env("RUST_LOG", "warn")
            .env("SECRET_KEY", KEY_1)
            .env("BUTTRESS_BIND", "127.0.0.1:0")
            .env("BUTTRESS_DATA_DIR", data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = false;
        for line in lines.by_ref() {
            if line.expect("utf-8").contains("listening on") {
                let status = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .expect("kill");
                assert!(status.success());
                seen = true;
                break;
            }
        }
        assert!(seen, "the listening line");
        for _ in lines {}
        let status = child.wait().expect("exits");
        assert_eq!(status.code(), Some(0), "round {round}: {status}");
    }
}

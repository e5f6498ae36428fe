//! Three instances on one Redis and one PostgreSQL hold one global limit and share sessions
//! and CSRF tokens, as they would behind a load balancer.

use std::time::{Duration, Instant};

use crate::harness::{client, Browser, Cluster, Spec};

/// What a burst of requests got.
#[derive(Debug, Default)]
struct Burst {
    admitted: usize,
    refused: usize,
    unavailable: usize,
    elapsed: Duration,
}

/// `50 per minute` (GCRA) on Redis, with `policy` for store failures: 3 counted requests to warm
/// the instances' Redis connections, then 600 round-robin over three instances, 60 at once, all
/// from 127.0.0.1.
async fn burst_of_600(policy: &str) -> (Burst, Cluster) {
    let cluster = Cluster::start(
        &Spec {
            postgres: false,
            ..Spec::full()
        }
        .set("BUTTRESS_RATELIMIT_DEFAULT", "50 per minute")
        .set("BUTTRESS_RATELIMIT_ON_STORE_ERROR", policy)
        // Exact counting across instances is what this measures: a budget a busy machine
        // cannot exceed keeps the store-failure policy out of it (the outage tests in
        // `faults` exercise the 50 ms budget and the policies).
        .set("BUTTRESS_RATELIMIT_REDIS_BUDGET", "2s"),
    );
    let http = client();
    // Open the HTTP connections first, without spending the limit (/healthz is exempt).
    for inst in &cluster.instances {
        for _ in 0..4 {
            let r = http.get(inst.url("/healthz")).send().await.expect("up");
            assert_eq!(r.status(), 200);
        }
    }
    let bases: Vec<String> = cluster.instances.iter().map(|i| i.base.clone()).collect();
    let mut out = Burst::default();
    // One counted request per instance, one at a time: each opens its Redis connection and
    // loads the script outside the burst.
    for base in &bases {
        let r = http.get(format!("{base}/")).send().await.expect("up");
        assert_eq!(r.status(), 200);
        out.admitted += 1;
    }
    let started = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(60));
    let mut tasks = Vec::new();
    for n in 0..600usize {
        // The landing page: counted by the global limit (static assets are not).
        let url = format!("{}/", bases[n % bases.len()]);
        let http = http.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.expect("semaphore");
            let r = http.get(url).send().await.expect("answer");
            let retry = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry)
        }));
    }
    for t in tasks {
        match t.await.expect("task") {
            (200, _) => out.admitted += 1,
            (429, true) => out.refused += 1,
            (503, true) => out.unavailable += 1,
            other => panic!("unexpected answer {other:?}\n{}", cluster.logs()),
        }
    }
    out.elapsed = started.elapsed();
    assert_eq!(out.admitted + out.refused + out.unavailable, 603);
    eprintln!("policy {policy}: {out:?}");
    // The counter lives in Redis, not in any instance.
    assert!(
        !cluster.redis_keys("buttress:*:rl:*").is_empty(),
        "rate-limit state in Redis"
    );
    (out, cluster)
}

/// GCRA admits a burst of N, then one per τ = 60 s / 50 = 1.2 s: exactly 50 when the burst
/// takes less than τ (it does on loopback), else at most the documented GCRA bound.
fn gcra_bound(elapsed: Duration) -> usize {
    let tau = Duration::from_millis(1200);
    50 + (elapsed.as_micros() / tau.as_micros()) as usize
}

/// The statement: 600 requests spread over three instances admit exactly 50, with the
/// global limit's default store-failure policy (`memory`).
///
/// With the default 50 ms budget a Redis check on a heavily loaded machine can time out; the
/// `memory` policy then counts in each instance's memory for the 250 ms pause and the three
/// instances admit more than 50 in all (docs/scale.md, "Findings"; seen here while other
/// builds ran: 98 admitted). The burst runs with a 2 s budget so that only the counting is
/// measured; the failure message still says when a timeout was the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn global_limit_on_redis_admits_exactly_50_of_600_across_three_instances() {
    let (b, cluster) = burst_of_600("memory").await;
    assert_eq!(b.unavailable, 0);
    let logs = cluster.logs();
    let hint = if logs.contains("budget") {
        "a Redis check exceeded the 50 ms budget and the memory policy counted per instance (docs/scale.md, Findings)"
    } else {
        ""
    };
    if b.elapsed < Duration::from_millis(1200) {
        assert_eq!(b.admitted, 50, "{hint} {b:?}\n{logs}");
    } else {
        assert!((50..=gcra_bound(b.elapsed)).contains(&b.admitted), "{b:?}");
    }
}

/// The global limit on Redis never admits more than 50 of 600 requests spread over three
/// instances when it fails closed: any check past the store's budget is a 503 with
/// `Retry-After`, never a local count; with no such failure it admits exactly 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn global_limit_on_redis_never_admits_more_than_50_of_600_when_failing_closed() {
    let (b, cluster) = burst_of_600("fail-closed").await;
    assert!(
        b.admitted <= gcra_bound(b.elapsed),
        "{b:?}\n{}",
        cluster.logs()
    );
    if b.unavailable == 0 && b.elapsed < Duration::from_millis(1200) {
        assert_eq!(b.admitted, 50, "{b:?}");
    }
}

/// The portal's `5 per minute` on `/login` (moving window, failing closed) on Redis: 30 requests
/// to the sign-in form from one address, round-robin over three instances, all at once, get
/// exactly 5 forms and 25 refusals (a check past the store's budget would be a 503, never an
/// extra form).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_limit_on_redis_admits_exactly_5_of_30_across_three_instances() {
    let cluster = Cluster::start(&Spec {
        postgres: false,
        ..Spec::full()
    });
    let browser = Browser::new();
    let mut tasks = Vec::new();
    for n in 0..30usize {
        let mut b = browser.clone();
        let base = cluster.at(n).base.clone();
        tasks.push(tokio::spawn(async move {
            b.get(&base, "/login").await.status.as_u16()
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        *statuses.entry(t.await.expect("task")).or_default() += 1;
    }
    let forms = statuses.get(&200).copied().unwrap_or(0);
    let refused = statuses.get(&429).copied().unwrap_or(0);
    let unavailable = statuses.get(&503).copied().unwrap_or(0);
    assert_eq!(forms + refused + unavailable, 30, "{statuses:?}");
    assert!(forms <= 5, "{statuses:?}");
    if unavailable == 0 {
        assert_eq!(forms, 5, "{statuses:?}");
    }
    eprintln!("/login x30 over 3 instances: {statuses:?}");
}

/// A session made on instance 1 works on 2 and 3, lives in Redis, and "sign out everywhere"
/// on instance 3 ends it on 1 (and ends the device that asked, too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_made_on_one_instance_works_on_the_others_and_sign_out_everywhere_ends_it() {
    let cluster = Cluster::start(&Spec::full());
    let (i1, i2, i3) = (cluster.at(0), cluster.at(1), cluster.at(2));
    let email = "ana@example.org";
    let mut laptop = Browser::new();
    laptop.sign_up_and_in(i1, i1, email).await;
    assert!(
        !cluster.redis_keys("buttress:{sess}:*").is_empty(),
        "BUTTRESS_SESSION_STORE=redis keeps sessions in Redis\n{}",
        cluster.logs()
    );
    for inst in [i1, i2, i3] {
        assert!(laptop.signed_in_on(inst, email).await);
    }
    // A second device signs in on instance 2; both sessions are listed everywhere.
    let mut phone = Browser::new();
    phone.sign_in(i2, email).await;
    let page = phone.get(i3, "/account/sessions").await;
    assert_eq!(page.status, 200);
    assert!(laptop.cookie != phone.cookie);

    // Sign out everywhere, from the phone, on instance 3.
    let r = phone.post(i3, "/account/sessions/revoke-all", &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    for inst in [i1, i2, i3] {
        let r = laptop.get(inst, "/account/sessions").await;
        assert_eq!(r.status, 303, "the laptop is signed out on {}", inst.base);
        assert_eq!(r.location(), "/login");
    }
    assert!(!phone.signed_in_on(i1, email).await);
}

/// A CSRF token issued by one instance is accepted by another for the same session, and refused
/// with another session's cookie (or without a token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_token_from_one_instance_is_accepted_by_another_for_the_same_session_only() {
    let cluster = Cluster::start(&Spec::full());
    let (i1, i2, i3) = (cluster.at(0), cluster.at(1), cluster.at(2));
    let mut ana = Browser::new();
    ana.sign_up_and_in(i1, i2, "ana@example.org").await;
    let mut ben = Browser::new();
    ben.sign_up_and_in(i2, i3, "ben@example.org").await;

    // Ana's token, issued on instance 1.
    ana.get(i1, "/requests/new").await;
    let ana_token = ana.token.clone().expect("a token on the form");
    let fields = [
        ("blood_group", "O-"),
        ("city", "Lyon"),
        ("hospital", "Edouard Herriot"),
        ("units", "2"),
        ("urgency", "urgent"),
    ];
    // Accepted on instance 2 and 3 for Ana's session.
    for inst in [i2, i3] {
        let r = ana
            .post_with_token(inst, "/requests/new", &fields, &ana_token)
            .await;
        assert_eq!(r.status, 303, "Ana's token on {}: {}", inst.base, r.body);
        assert!(r.location().starts_with("/requests/"));
    }
    // Refused with Ben's cookie, on any instance, and without a token.
    for inst in [i1, i2, i3] {
        let r = ben
            .post_with_token(inst, "/requests/new", &fields, &ana_token)
            .await;
        assert_eq!(r.status, 403, "Ana's token with Ben's cookie: {}", r.body);
        let r = ben
            .post_with_token(inst, "/requests/new", &fields, "")
            .await;
        assert_eq!(r.status, 403, "no token: {}", r.body);
    }
    // Ben's own token still works after the refusals.
    ben.get(i3, "/requests/new").await;
    let r = ben.post(i1, "/requests/new", &fields).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

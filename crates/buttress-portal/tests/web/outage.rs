//! PostgreSQL stopped under a running app: 503 without internals, then recovery on restart
//! without restarting the app.

use std::time::{Duration, Instant};

use crate::support::*;

#[track_caller]
fn unavailable(r: &Reply, what: &str) {
    r.assert_status(503);
    let needles = [
        "sqlx",
        "postgres",
        "connection refused",
        "pool",
        "select",
        "127.0.0.1:",
        "error returned from database",
        "io error",
    ];
    if let Some(leak) = buttress_testkit::leaks::leaked(&r.body, &needles) {
        panic!("{what} leaked {leak:?}: {}", r.body);
    }
    assert!(
        r.header("content-security-policy").is_some(),
        "{what}: headers on errors"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_is_503_then_recovers() {
    let mut pg = buttress_testkit::PostgresServer::start().expect("PostgreSQL for tests");
    let app = TestApp::open(Some(&pg.url())).await;
    let mut me = app.agent();
    me.account("ada@example.org").await;
    me.profile("Ada", "O-", "Leeds").await;
    let mut anon = app.agent();
    anon.get("/").await.assert_status(200);

    pg.stop().expect("stop PostgreSQL");
    let started = Instant::now();

    // Anonymous pages read the portal's tables: the portal's own 503.
    let r = anon.get_with("/", &[("accept", "application/json")]).await;
    unavailable(&r, "landing (json)");
    assert_eq!(r.json()["type"], "urn:buttress:database-unavailable");
    let r = anon.get("/donors?city=Leeds").await;
    unavailable(&r, "search (html)");
    assert!(r.body.contains("Try again in a minute"));
    assert!(r.body.contains("Request id"));
    let r = anon
        .get_with("/api/donors?city=Leeds", &[("accept", "application/json")])
        .await;
    unavailable(&r, "api");
    // Liveness does no I/O; readiness tells the database is gone.
    anon.get("/healthz").await.assert_status(200);
    unavailable(&anon.get("/readyz").await, "readyz");
    // A signed-in request fails on loading its session from the same database.
    let r = me
        .get_with("/profile", &[("accept", "application/json")])
        .await;
    unavailable(&r, "profile (session store)");
    let r = me.post("/profile", &[("display_name", "Changed")]).await;
    unavailable(&r, "profile post");
    assert!(
        me.cookie.is_some(),
        "the browser keeps its cookie through the outage"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "each failure is bounded by the pool's acquire timeout"
    );

    pg.restart().expect("restart PostgreSQL");
    let mut recovered = false;
    for _ in 0..50 {
        if anon.get("/readyz").await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the app recovered without a restart");
    anon.get("/").await.assert_status(200);
    assert!(me.signed_in().await, "the session outlived the outage");
    let page = me.get("/profile").await;
    assert!(
        page.body.contains("value=\"Ada\""),
        "nothing was half-written"
    );
    app.portal.db.close().await;
}

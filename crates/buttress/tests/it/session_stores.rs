//! One conformance suite for every server-side session store, and the session layer's
//! guarantees (fixation, revocation, parallel writes) run on each store.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path};
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use buttress::secret::Keyring;
use buttress::session::sql::SqlStore;
use buttress::session::{
    Cas, MemoryStore, Session, SessionData, SessionLayer, SessionStore, StoreKey,
};

fn key(n: u8) -> StoreKey {
    StoreKey(format!("{n:064x}"))
}

fn data(user: Option<&str>) -> SessionData {
    data_at(0, user)
}

fn data_at(base: i64, user: Option<&str>) -> SessionData {
    let mut d = SessionData::new(base + 100, base + 10_000);
    d.user = user.map(str::to_owned);
    d
}

/// The store contract: CAS versions, deadlines, listing by user, deletion, cleanup (`sweeps`:
/// the store's cleanup removes expired records; false for a store that expires them itself).
/// Times are `base` plus small numbers: Redis takes its TTLs from its own clock, so it runs
/// this at the real time.
pub async fn conformance(store: Arc<dyn SessionStore>, sweeps: bool, base: i64) {
    let data = |user: Option<&str>| data_at(base, user);
    let k = key(1);
    assert!(store.load(&k, base + 100).await.expect("load").is_none());
    assert_eq!(
        store
            .save(&k, None, &data(Some("alice")), base + 1_000)
            .await
            .expect("save"),
        Cas::Done
    );
    assert_eq!(
        store
            .save(&k, None, &data(None), base + 1_000)
            .await
            .expect("save"),
        Cas::Conflict,
        "insert-only when absent"
    );
    let rec = store
        .load(&k, base + 100)
        .await
        .expect("load")
        .expect("present");
    assert_eq!((rec.version, rec.deadline), (1, base + 1_000));
    assert_eq!(rec.data.user.as_deref(), Some("alice"));
    let mut changed = rec.data.clone();
    changed.values.insert("x".into(), serde_json::json!(1));
    assert_eq!(
        store
            .save(&k, Some(1), &changed, base + 2_000)
            .await
            .expect("cas"),
        Cas::Done
    );
    assert_eq!(
        store
            .save(&k, Some(1), &changed, base + 2_000)
            .await
            .expect("cas"),
        Cas::Conflict,
        "stale version"
    );
    let rec = store
        .load(&k, base + 100)
        .await
        .expect("load")
        .expect("present");
    assert_eq!(rec.version, 2);
    assert_eq!(rec.data.values["x"], 1);
    assert!(
        store.load(&k, base + 2_000).await.expect("load").is_none(),
        "past its deadline"
    );

    store
        .save(&key(2), None, &data(Some("alice")), base + 5_000)
        .await
        .expect("save");
    store
        .save(&key(3), None, &data(Some("bob")), base + 5_000)
        .await
        .expect("save");
    store
        .save(&key(4), None, &data(Some("alice")), base + 50)
        .await
        .expect("save");
    let mut alice: Vec<String> = store
        .list_user("alice", base + 100)
        .await
        .expect("list")
        .into_iter()
        .map(|(k, _)| k.0)
        .collect();
    alice.sort();
    assert_eq!(
        alice,
        vec![key(1).0, key(2).0],
        "live sessions of alice only"
    );
    assert!(
        store.delete(&key(2)).await.expect("delete"),
        "delete reports the record it removed"
    );
    assert!(store
        .load(&key(2), base + 100)
        .await
        .expect("load")
        .is_none());
    assert!(
        !store.delete(&key(2)).await.expect("delete"),
        "and that there was none the second time"
    );
    assert_eq!(
        store
            .save(&key(5), None, &data(None), i64::MAX)
            .await
            .expect("a deadline as far as it goes (huge timeouts)"),
        Cas::Done
    );
    assert!(store
        .load(&key(5), base + 100)
        .await
        .expect("load")
        .is_some());
    store.delete(&key(5)).await.expect("delete");
    let removed = store.cleanup(base + 100).await.expect("cleanup");
    assert_eq!(
        removed,
        u64::from(sweeps),
        "the expired record of alice (unless the store expires it itself)"
    );
    assert!(store
        .load(&key(3), base + 100)
        .await
        .expect("load")
        .is_some());
}

/// A SQLite session store in a fresh directory of its own, and the directory (removed when
/// dropped).
async fn sqlite_store(name: &str) -> (Arc<SqlStore>, tempfile::TempDir) {
    sqlx::any::install_default_drivers();
    let dir = tempfile::Builder::new()
        .prefix(&format!("buttress-sess-{name}-"))
        .tempdir()
        .expect("dir");
    let path = dir.path().join("sessions.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = sqlx::AnyPool::connect(&url).await.expect("sqlite opens");
    let store = SqlStore::new(pool);
    store.migrate().await.expect("migrates");
    (Arc::new(store), dir)
}

#[tokio::test]
async fn memory_store_conforms() {
    conformance(Arc::new(MemoryStore::default()), true, 0).await;
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let (store, dir) = sqlite_store("conf").await;
    conformance(store, true, 0).await;
    drop(dir);
}

fn app(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route(
            "/login/{user}",
            post(|s: Session, Path(u): Path<String>| async move {
                s.set_user(Some(&u)).await.map(|()| "in")
            }),
        )
        .route(
            "/me",
            get(|s: Session| async move { s.user().await.map(|u| u.unwrap_or_default()) }),
        )
        .route(
            "/set/{k}",
            post(|s: Session, Path(k): Path<String>| async move {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                s.insert(&k, 1).await.map(|()| "ok")
            }),
        )
        .route(
            "/count",
            get(|s: Session| async move {
                let mut n = 0;
                for i in 0..12 {
                    if s.get::<i32>(&format!("k{i}"))
                        .await
                        .ok()
                        .flatten()
                        .is_some()
                    {
                        n += 1
                    }
                }
                n.to_string()
            }),
        )
        .route(
            "/sessions",
            get(|s: Session| async move {
                s.list_user_sessions().await.map(|l| {
                    l.iter()
                        .map(|i| format!("{}{}", i.handle.0, if i.current { "*" } else { "" }))
                        .collect::<Vec<_>>()
                        .join(",")
                })
            }),
        )
        .route(
            "/revoke/{h}",
            post(|s: Session, Path(h): Path<String>| async move {
                let h = StoreKey::parse(&h).ok_or(buttress::session::SessionError::NeedsStore)?;
                s.revoke(&h).await.map(|ok| ok.to_string())
            }),
        )
        .route(
            "/revoke-others",
            post(|s: Session| async move { s.revoke_others().await.map(|n| n.to_string()) }),
        )
        .layer(SessionLayer::store(&Keyring::ephemeral(), store))
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> (String, Option<String>) {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    let mut req = b.body(Body::empty()).expect("req");
    req.extensions_mut()
        .insert(ConnectInfo::<std::net::SocketAddr>(
            "127.0.0.1:1".parse().expect("addr"),
        ));
    let r = buttress_testkit::reply::oneshot(app.clone(), req).await;
    let set = r.cookie_pair();
    (r.body, set)
}

/// Login rotation, listing, revoking one, revoking all others, replay after revocation.
pub async fn layer_guarantees(store: Arc<dyn SessionStore>) {
    let app = app(store);
    let (_, laptop) = call(&app, "POST", "/login/alice", None).await;
    let laptop = laptop.expect("laptop session");
    let (_, phone) = call(&app, "POST", "/login/alice", None).await;
    let phone = phone.expect("phone session");
    let (_, tablet) = call(&app, "POST", "/login/alice", None).await;
    let tablet = tablet.expect("tablet session");
    let (_, bob) = call(&app, "POST", "/login/bob", None).await;
    let bob = bob.expect("bob session");
    let (list, _) = call(&app, "GET", "/sessions", Some(&laptop)).await;
    let handles: Vec<&str> = list.split(',').collect();
    assert_eq!(handles.len(), 3, "alice's sessions only: {list}");
    assert_eq!(handles.iter().filter(|h| h.ends_with('*')).count(), 1);
    // Revoke the phone from the laptop (the phone's handle is not the laptop's current one).
    let (phone_list, _) = call(&app, "GET", "/sessions", Some(&phone)).await;
    let phone_handle = phone_list
        .split(',')
        .find(|h| h.ends_with('*'))
        .expect("current")
        .trim_end_matches('*')
        .to_owned();
    assert_eq!(
        call(
            &app,
            "POST",
            &format!("/revoke/{phone_handle}"),
            Some(&laptop)
        )
        .await
        .0,
        "true"
    );
    assert_eq!(
        call(&app, "GET", "/me", Some(&phone)).await.0,
        "",
        "revoked phone is signed out"
    );
    // Bob cannot revoke alice's sessions.
    let (laptop_list, _) = call(&app, "GET", "/sessions", Some(&laptop)).await;
    let laptop_handle = laptop_list
        .split(',')
        .find(|h| h.ends_with('*'))
        .expect("current")
        .trim_end_matches('*')
        .to_owned();
    assert_eq!(
        call(
            &app,
            "POST",
            &format!("/revoke/{laptop_handle}"),
            Some(&bob)
        )
        .await
        .0,
        "false"
    );
    assert_eq!(call(&app, "GET", "/me", Some(&laptop)).await.0, "alice");
    // Sign out everywhere else, from the laptop, which stays signed in under a new id.
    let (n, rotated) = call(&app, "POST", "/revoke-others", Some(&laptop)).await;
    assert_eq!(n, "1");
    assert_eq!(
        call(&app, "GET", "/me", Some(&laptop)).await.0,
        "",
        "the old id is gone"
    );
    let laptop = rotated.expect("a new id carrying the new epoch");
    assert_eq!(call(&app, "GET", "/me", Some(&tablet)).await.0, "");
    assert_eq!(call(&app, "GET", "/me", Some(&laptop)).await.0, "alice");
    assert_eq!(call(&app, "GET", "/me", Some(&bob)).await.0, "bob");
    // Parallel writes of different keys to one session: none lost.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let app = app.clone();
        let c = laptop.clone();
        tasks.push(tokio::spawn(async move {
            call(&app, "POST", &format!("/set/k{i}"), Some(&c)).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), "ok");
    }
    assert_eq!(call(&app, "GET", "/count", Some(&laptop)).await.0, "12");
}

#[tokio::test]
async fn memory_store_layer_guarantees() {
    layer_guarantees(Arc::new(MemoryStore::default())).await;
}

#[tokio::test]
async fn sqlite_store_layer_guarantees() {
    let (store, dir) = sqlite_store("layer").await;
    layer_guarantees(store).await;
    drop(dir);
}

async fn postgres_store(pg: &buttress_testkit::PostgresServer, db: &str) -> Arc<SqlStore> {
    sqlx::any::install_default_drivers();
    pg.create_database(db).expect("database");
    let pool = sqlx::AnyPool::connect(&pg.url_for(db))
        .await
        .expect("postgres connects");
    let store = SqlStore::new(pool);
    store.migrate().await.expect("migrates");
    Arc::new(store)
}

/// Real PostgreSQL (Debian's server on a free loopback port): the same suites.
#[tokio::test]
async fn postgres_store_conforms_and_keeps_the_guarantees() {
    let pg = buttress_testkit::PostgresServer::start().expect("postgres starts");
    conformance(postgres_store(&pg, "sess_conf").await, true, 0).await;
    layer_guarantees(postgres_store(&pg, "sess_layer").await).await;
}

/// Redis removes sessions by itself: each record and each user index carries a TTL, and the
/// store's cleanup sends nothing to Redis (no SCAN of the keyspace from every instance).
async fn redis_expires_its_own_records(url: &str) {
    use buttress::session::redis::RedisSessionStore;
    let store = RedisSessionStore::open(url).expect("url");
    let k = key(7);
    let mut d = data(Some("dora"));
    // The TTL runs from Redis's own clock (TIME) to the deadline: an instance whose clock,
    // or whose last_seen, is an hour behind does not keep the record an hour longer.
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits");
    d.last_seen = now - 3600;
    assert_eq!(
        store.save(&k, None, &d, now + 600).await.expect("save"),
        Cas::Done
    );
    let mut conn = redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    for name in [
        format!("buttress:{{sess}}:{}", k.0),
        "buttress:{sess}:user:dora".to_owned(),
    ] {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .expect("ttl");
        assert!(
            (590..=600).contains(&ttl),
            "{name} expires at the deadline: {ttl}"
        );
    }
    let scans_before = scan_calls(&mut conn).await;
    assert_eq!(store.cleanup(i64::MAX).await.expect("cleanup"), 0);
    assert_eq!(scan_calls(&mut conn).await, scans_before, "no SCAN");
    assert!(
        store.load(&k, now).await.expect("load").is_some(),
        "cleanup left the live record to its TTL"
    );
    store.delete(&k).await.expect("delete");
}

/// How many SCAN commands the Redis server has run.
async fn scan_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_scan:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Real Redis: the same suites, then an outage (503, never an empty session) and recovery.
#[tokio::test]
async fn redis_store_conforms_keeps_the_guarantees_and_recovers() {
    use buttress::session::redis::RedisSessionStore;
    let mut redis = buttress_testkit::RedisServer::start();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits");
    conformance(
        Arc::new(RedisSessionStore::open(&redis.url()).expect("url")),
        false,
        now - 100,
    )
    .await;
    redis_expires_its_own_records(&redis.url()).await;
    redis.restart();
    let store = Arc::new(RedisSessionStore::open(&redis.url()).expect("url"));
    layer_guarantees(store.clone()).await;

    let app = app(store);
    let (_, cookie) = call(&app, "POST", "/login/carol", None).await;
    let cookie = cookie.expect("session");
    redis.stop();
    let res = {
        let mut req = Request::get("/me")
            .header("cookie", &cookie)
            .body(Body::empty())
            .expect("req");
        req.extensions_mut()
            .insert(ConnectInfo::<std::net::SocketAddr>(
                "127.0.0.1:1".parse().expect("addr"),
            ));
        buttress_testkit::reply::oneshot(app.clone(), req).await
    };
    assert_eq!(res.status, 503, "store down: 503, not a silent logout");
    let body = res.body;
    assert!(
        !body.contains("127.0.0.1") && !body.to_ascii_lowercase().contains("connection refused"),
        "{body}"
    );
    redis.restart();
    // Redis restarted empty (no persistence): the session is gone, but service is back.
    let mut back = String::new();
    for _ in 0..50 {
        back = call(&app, "GET", "/me", Some(&cookie)).await.0;
        if !back.contains("503") && !back.contains("unavailable") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(back, "", "recovered without a restart of the app");
}

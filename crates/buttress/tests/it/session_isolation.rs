//! Deployments that share a Redis or a database are isolated: two stacks of the library with
//! different keys (or one key and different `BUTTRESS_APP_ID`s), on one real Redis and on one
//! real PostgreSQL, each signing in user "1": neither sees, lists nor revokes the other's
//! sessions, their login throttles count apart, and a cookie from one is anonymous on the
//! other. Rows written before application ids are nobody's.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use buttress::ratelimit::LoginVerdict;
use buttress::secret::{AppId, Keyring, SecretKey};
use buttress::session::sql::SqlStore;
use buttress::session::{Session, SessionError, StoreKey};
use buttress::Buttress;

use crate::support::{self, get_req, send};

const KEY_A: &str = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";
const KEY_B: &str = "Vd8Kp2LmQ7wZr4Tn9YbX1cHs6GfJ3aUe5oRiMkN0tPq";

fn routes() -> Router {
    Router::new()
        .route(
            "/login/{user}",
            get(|s: Session, Path(u): Path<String>| async move {
                s.set_user(Some(&u)).await.map(|()| "in")
            }),
        )
        .route(
            "/me",
            get(|s: Session| async move { s.user().await.map(|u| u.unwrap_or_default()) }),
        )
        .route(
            "/sessions",
            get(|s: Session| async move {
                s.list_user_sessions().await.map(|l| {
                    l.iter()
                        .map(|i| i.handle.0.clone())
                        .collect::<Vec<_>>()
                        .join(",")
                })
            }),
        )
        .route(
            "/revoke/{h}",
            get(|s: Session, Path(h): Path<String>| async move {
                let h = StoreKey::parse(&h).ok_or(SessionError::NeedsStore)?;
                s.revoke(&h).await.map(|ok| ok.to_string())
            }),
        )
        .route(
            "/everywhere",
            get(|s: Session| async move { s.revoke_others().await.map(|n| n.to_string()) }),
        )
}

/// One deployment: its stack (for the login throttle) and its protected app.
struct Deployment {
    stack: Buttress,
    app: buttress::stack::Stack,
    app_id: AppId,
}

fn deployment(vars: &[(&str, &str)], store: Option<Arc<SqlStore>>) -> Deployment {
    let mut all = vec![("BUTTRESS_RATELIMIT_DEFAULT", "none")];
    all.extend_from_slice(vars);
    let settings = support::settings(&all);
    let stack = Buttress::from_settings(&settings).expect("stack");
    let app_id = stack.keyring().app_id(settings.app_id.as_ref());
    let protected = match store {
        Some(s) => stack.clone().with_session_store(s),
        None => stack.clone(),
    };
    Deployment {
        app: protected.apply(routes()).expect("stack"),
        stack,
        app_id,
    }
}

async fn visit(d: &Deployment, path: &str, cookie: Option<&str>) -> (String, Option<String>) {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    let r = send(&d.app, "127.0.0.1:1", get_req(path, &headers)).await;
    assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
    let set = r
        .header("set-cookie")
        .map(|v| v.split(';').next().expect("pair").to_owned());
    (r.body, set)
}

async fn sign_in(d: &Deployment, user: &str) -> String {
    visit(d, &format!("/login/{user}"), None)
        .await
        .1
        .expect("a session cookie")
}

/// Both deployments sign in user "1" (twice each); then every way across is tried.
async fn isolated(a: &Deployment, b: &Deployment, what: &str) {
    let a1 = sign_in(a, "1").await;
    let a2 = sign_in(a, "1").await;
    let b1 = sign_in(b, "1").await;
    assert_eq!(visit(a, "/me", Some(&a1)).await.0, "1", "{what}");
    assert_eq!(visit(b, "/me", Some(&b1)).await.0, "1", "{what}");
    // A cookie from one is anonymous on the other, both ways.
    assert_eq!(
        visit(b, "/me", Some(&a1)).await.0,
        "",
        "{what}: A's cookie on B"
    );
    assert_eq!(
        visit(a, "/me", Some(&b1)).await.0,
        "",
        "{what}: B's cookie on A"
    );
    // Neither lists the other's sessions.
    let a_list = visit(a, "/sessions", Some(&a1)).await.0;
    let b_list = visit(b, "/sessions", Some(&b1)).await.0;
    assert_eq!(
        a_list.split(',').count(),
        2,
        "{what}: A sees its two: {a_list}"
    );
    assert_eq!(
        b_list.split(',').count(),
        1,
        "{what}: B sees its one: {b_list}"
    );
    // Nor revokes them: by handle, or by signing out everywhere.
    for handle in a_list.split(',') {
        assert_eq!(
            visit(b, &format!("/revoke/{handle}"), Some(&b1)).await.0,
            "false",
            "{what}"
        );
    }
    let (_, b1_now) = visit(b, "/everywhere", Some(&b1)).await;
    let b1 = b1_now.expect("B's session goes on under a new id");
    for cookie in [&a1, &a2] {
        assert_eq!(
            visit(a, "/me", Some(cookie)).await.0,
            "1",
            "{what}: A untouched"
        );
    }
    assert_eq!(visit(b, "/me", Some(&b1)).await.0, "1", "{what}");
    // And A's "sign out everywhere" leaves B alone.
    let (_, a1_now) = visit(a, "/everywhere", Some(&a1)).await;
    assert_eq!(
        visit(a, "/me", Some(&a2)).await.0,
        "",
        "{what}: A's other one ends"
    );
    assert_eq!(visit(a, "/me", Some(&a1_now.expect("new id"))).await.0, "1");
    assert_eq!(
        visit(b, "/me", Some(&b1)).await.0,
        "1",
        "{what}: B untouched"
    );
}

/// Five failures for account "1" on A hold A back; B counts its own.
async fn throttles_count_apart(a: &Deployment, b: &Deployment, what: &str) {
    let ip: IpAddr = "198.51.100.7".parse().expect("ip");
    let (ta, tb) = (a.stack.login_throttle(), b.stack.login_throttle());
    for _ in 0..5 {
        assert!(
            ta.check("1", ip).await.expect("check").is_allowed(),
            "{what}"
        );
    }
    assert!(
        matches!(
            ta.check("1", ip).await.expect("check"),
            LoginVerdict::Wait { .. }
        ),
        "{what}: A is throttled"
    );
    assert!(
        tb.check("1", ip).await.expect("check").is_allowed(),
        "{what}: B counts apart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_sharing_redis_are_isolated() {
    let redis = buttress_testkit::RedisServer::start();
    let url = redis.url();
    let on_redis = |key: &'static str, app: Option<&'static str>| {
        let mut vars = vec![
            ("SECRET_KEY", key),
            ("BUTTRESS_SESSION_STORE", "redis"),
            ("REDIS_URL", url.as_str()),
            ("BUTTRESS_RATELIMIT_STORAGE", url.as_str()),
        ];
        if let Some(app) = app {
            vars.push(("BUTTRESS_APP_ID", app));
        }
        deployment(&vars, None)
    };
    let (a, b) = (on_redis(KEY_A, None), on_redis(KEY_B, None));
    assert_ne!(a.app_id, b.app_id, "ids derived from different keys differ");
    isolated(&a, &b, "Redis, two keys").await;
    throttles_count_apart(&a, &b, "Redis, two keys").await;
    // Staging and production sharing one key (and one Redis): apart by their ids.
    let (staging, production) = (
        on_redis(KEY_A, Some("staging")),
        on_redis(KEY_A, Some("production")),
    );
    isolated(&staging, &production, "Redis, one key, two app ids").await;
    throttles_count_apart(&staging, &production, "Redis, one key, two app ids").await;
    // Every key Buttress wrote carries the application id of the deployment that wrote it.
    let mut conn = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("buttress:*")
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert!(keys.len() > 10, "{keys:?}");
    let ids = [&a.app_id, &b.app_id, &staging.app_id, &production.app_id];
    for key in &keys {
        assert!(
            ids.iter().any(|id| key.contains(&format!(":{id}:"))),
            "{key} carries no application id"
        );
        assert!(!key.contains(KEY_A) && !key.contains(KEY_B), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_sharing_postgres_are_isolated() {
    sqlx::any::install_default_drivers();
    let pg = buttress_testkit::PostgresServer::start().expect("postgres starts");
    let redis = buttress_testkit::RedisServer::start();
    let db = pg.create_database("shared_sessions").expect("database");
    let pool = sqlx::AnyPool::connect(&db).await.expect("connects");
    // A table from before application ids, with a live row of user "1" filed the old way
    // (the unkeyed SHA-256 of the id).
    sqlx::query(
        "CREATE TABLE buttress_sessions (store_key TEXT PRIMARY KEY, user_id TEXT NULL, data TEXT NOT NULL, version BIGINT NOT NULL, deadline BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("old table");
    let old_id = "OLDsessionOLDsessionOLDsessionOLDsession123";
    let old_key: String = {
        use sha2::{Digest as _, Sha256};
        Sha256::digest(old_id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let far = 4_000_000_000_i64;
    sqlx::query("INSERT INTO buttress_sessions VALUES ($1, '1', $2, 1, $3)")
        .bind(&old_key)
        .bind(format!(
            r#"{{"iat":{},"exp":{far},"seen":{},"u":"1"}}"#,
            far - 100,
            far - 100
        ))
        .bind(far)
        .execute(&pool)
        .await
        .expect("old row");
    let store = Arc::new(SqlStore::new(pool.clone()));
    store.migrate().await.expect("migrates an old table");
    store.migrate().await.expect("and again: idempotent");
    let url = redis.url();
    let on_pg = |key: &'static str, app: Option<&'static str>| {
        let mut vars = vec![
            ("SECRET_KEY", key),
            ("BUTTRESS_RATELIMIT_STORAGE", url.as_str()),
        ];
        if let Some(app) = app {
            vars.push(("BUTTRESS_APP_ID", app));
        }
        deployment(&vars, Some(store.clone()))
    };
    let (a, b) = (on_pg(KEY_A, None), on_pg(KEY_B, None));
    isolated(&a, &b, "PostgreSQL, two keys").await;
    throttles_count_apart(&a, &b, "PostgreSQL, two keys").await;
    let (staging, production) = (
        on_pg(KEY_A, Some("staging")),
        on_pg(KEY_A, Some("production")),
    );
    isolated(&staging, &production, "PostgreSQL, one key, two app ids").await;
    // Every row carries the id of the deployment that wrote it; the old row is nobody's.
    let rows: Vec<(String, String)> = {
        use sqlx::Row as _;
        sqlx::query("SELECT store_key, app_id FROM buttress_sessions")
            .fetch_all(&pool)
            .await
            .expect("rows")
            .iter()
            .map(|r| (r.get("store_key"), r.get("app_id")))
            .collect()
    };
    let ids = [&a.app_id, &b.app_id, &staging.app_id, &production.app_id];
    for (key, app) in &rows {
        if key == &old_key {
            assert_eq!(app, "-", "the old row belongs to no application");
        } else {
            assert!(ids.iter().any(|id| id.as_str() == app), "{key}: {app}");
        }
    }
    let cookie = format!("session={old_id}");
    for d in [&a, &b, &staging, &production] {
        assert_eq!(
            visit(d, "/me", Some(&cookie)).await.0,
            "",
            "the old cookie opens nothing"
        );
    }
    let derived = Keyring::new(SecretKey::from_bytes(KEY_B.into()), vec![]).app_id(None);
    assert_eq!(
        b.app_id, derived,
        "B's id is derived from its key, not the key itself"
    );
    assert!(!derived.as_str().contains(&KEY_B[..8]));
}

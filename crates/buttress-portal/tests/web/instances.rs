//! Several portals on one database (issue 14 §4, issue 13 §2–3): sign-outs reach every
//! instance (the credentials epoch lives in the database, not in one process), a sign-in that
//! checked the old password while the password changed ends up anonymous, and two
//! applications on one database (another `BUTTRESS_APP_ID`, the same key) neither load, list
//! nor revoke each other's sessions. Each check takes a [`Shared`] database: a SQLite file (one
//! data directory) or a PostgreSQL database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use buttress::secret::AppId;
use buttress::session::{
    Cas, Record, SessionData, SessionStore, SignOutCheck, SignOuts, StoreError, StoreKey,
};
use buttress_portal::sessions::DbSessions;
use buttress_portal::web::BuildOptions;
use buttress_portal::Db;
use futures_util::future::BoxFuture;
use sqlx::AnyPool;

use crate::flows::handles;
use crate::support::*;

/// One database for several instances.
pub struct Shared {
    pub dir: Arc<tempfile::TempDir>,
    pub url: Option<String>,
}

impl Shared {
    pub fn sqlite() -> Shared {
        Shared {
            dir: Arc::new(fresh_dir("instances")),
            url: None,
        }
    }

    /// An instance on the database, with `extra` settings.
    async fn instance(&self, extra: &[(&str, &str)]) -> TestApp {
        self.instance_with(extra, BuildOptions::default()).await
    }

    async fn instance_with(&self, extra: &[(&str, &str)], options: BuildOptions) -> TestApp {
        TestApp::open_in(self.dir.clone(), self.url.as_deref(), extra, options).await
    }
}

const ADA: &str = "ada@example.org";
const NEW_PASSWORD: &str = "a brand new long passphrase";

async fn user_id(pool: &AnyPool, email: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(pool)
        .await
        .expect("the account")
}

/// The application ids of `user`'s session rows, sorted.
async fn session_apps(pool: &AnyPool, user: i64) -> Vec<String> {
    let mut apps: Vec<String> =
        sqlx::query_scalar("SELECT app_id FROM buttress_sessions WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_all(pool)
            .await
            .expect("rows");
    apps.sort();
    apps
}

/// The application ids of `user`'s credentials epochs, sorted.
async fn epoch_apps(pool: &AnyPool, user: i64) -> Vec<String> {
    let mut apps: Vec<String> =
        sqlx::query_scalar("SELECT app_id FROM buttress_session_epochs WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_all(pool)
            .await
            .expect("rows");
    apps.sort();
    apps
}

/// An agent on `app` carrying `from`'s session cookie (a copied cookie).
fn copy_of(from: &Agent, app: &TestApp) -> Agent {
    let mut copy = app.agent();
    copy.cookie = from.cookie.clone();
    copy
}

/// "Sign out everywhere", a password change, a reset by link and an erasure on instance A: a
/// session cookie copied before, and sessions signed in on instance B, are anonymous on B at
/// their next request. The epoch bump is a row of the shared database.
pub async fn sign_outs_reach_every_instance(db: Shared) {
    let a = db.instance(&[]).await;
    let b = db.instance(&[]).await;
    let pool = a.portal.db.pool().clone();
    let mut laptop = a.agent();
    laptop.unverified_account(ADA).await;
    let ada = user_id(&pool, ADA).await;
    let mut copied = copy_of(&laptop, &b);
    assert!(
        copied.signed_in().await,
        "one application: B serves A's session"
    );
    let mut phone = b.agent();
    phone.sign_in(ADA, PASSWORD).await.assert_redirect("/");
    assert!(epoch_apps(&pool, ada).await.is_empty());
    let app_id = session_apps(&pool, ada).await[0].clone();
    assert!(!app_id.is_empty(), "rows carry the application id");

    // Sign out everywhere on A.
    laptop.get("/account/sessions").await.assert_status(200);
    laptop
        .post("/account/sessions/revoke-all", &[])
        .await
        .assert_redirect("/");
    assert!(!copied.signed_in().await, "the copied cookie, on B");
    assert!(!phone.signed_in().await, "B's own session");
    assert!(!laptop.signed_in().await);
    assert_eq!(
        epoch_apps(&pool, ada).await,
        [app_id],
        "the credentials epoch is in the shared database, under the application's id"
    );

    // A password change on A: every other session, on both instances, ends.
    laptop.sign_in(ADA, PASSWORD).await.assert_redirect("/");
    let mut copied = copy_of(&laptop, &b);
    let mut phone = b.agent();
    phone.sign_in(ADA, PASSWORD).await.assert_redirect("/");
    assert!(copied.signed_in().await && phone.signed_in().await);
    laptop.get("/account/password").await.assert_status(200);
    laptop
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await
        .assert_redirect("/account/sessions");
    assert!(laptop.signed_in().await, "the device that changed it stays");
    assert!(!copied.signed_in().await, "a copy of its old cookie, on B");
    assert!(!phone.signed_in().await, "B's own session");

    // A reset by link, asked for and used on A: B's session ends.
    let mut tablet = b.agent();
    tablet.sign_in(ADA, NEW_PASSWORD).await.assert_redirect("/");
    let mut stranger = a.agent();
    stranger.get("/password-reset").await.assert_status(200);
    stranger
        .post("/password-reset", &[("email", ADA)])
        .await
        .assert_redirect("/login");
    let link = stranger.mailed_link(ADA, "/password-reset/confirm").await;
    stranger.follow_link(&link).await.assert_status(200);
    let token = link.split("token=").nth(1).expect("token").to_owned();
    stranger
        .post(
            "/password-reset/confirm",
            &[("token", &token), ("new_password", PASSWORD)],
        )
        .await
        .assert_redirect("/login");
    assert!(!tablet.signed_in().await, "signed out on B by a reset on A");
    assert!(!laptop.signed_in().await, "and on A");

    // Erasure on A: B's session ends, and no session row of the account is left.
    let mut desk = a.agent(); // the laptop's address has used its sign-ins for the minute
    desk.sign_in(ADA, PASSWORD).await.assert_redirect("/");
    let mut tablet = b.agent();
    tablet.sign_in(ADA, PASSWORD).await.assert_redirect("/");
    desk.get("/account/delete").await.assert_status(200);
    desk.post("/account/delete", &[("password", PASSWORD)])
        .await
        .assert_status(200);
    assert!(!tablet.signed_in().await);
    assert!(
        session_apps(&pool, ada).await.is_empty(),
        "erased in the transaction"
    );
}

/// A store that runs `hook` once, the first time a credentials epoch is read after it was
/// set: between the read of the epoch and the check of the password, as a password change
/// that lands while a sign-in is in flight.
#[derive(Debug, Clone)]
struct Racing {
    inner: Arc<dyn SessionStore>,
    hook: Hook,
}

#[derive(Clone, Default)]
struct Hook(Arc<tokio::sync::Mutex<Option<BoxFuture<'static, ()>>>>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl Hook {
    async fn set(&self, hook: BoxFuture<'static, ()>) {
        *self.0.lock().await = Some(hook);
    }

    async fn take(&self) -> Option<BoxFuture<'static, ()>> {
        self.0.lock().await.take()
    }
}

#[derive(Debug)]
struct RacingSignOuts {
    inner: Arc<dyn SignOuts>,
    hook: Hook,
}

impl SessionStore for Racing {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.inner.load(key, now)
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Option<u64>,
        data: &'a SessionData,
        deadline: i64,
    ) -> BoxFuture<'a, Result<Cas, StoreError>> {
        self.inner.save(key, expected, data, deadline)
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.delete(key)
    }
    fn list_user<'a>(
        &'a self,
        user: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, SessionData)>, StoreError>> {
        self.inner.list_user(user, now)
    }
    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.cleanup(now)
    }
    fn for_app(&self, app: &AppId) -> Option<Arc<dyn SessionStore>> {
        Some(Arc::new(Racing {
            inner: self.inner.for_app(app).expect("the portal's store binds"),
            hook: self.hook.clone(),
        }))
    }
    fn sign_outs(&self) -> Option<Arc<dyn SignOuts>> {
        Some(Arc::new(RacingSignOuts {
            inner: self
                .inner
                .sign_outs()
                .expect("the portal's store keeps sign-outs"),
            hook: self.hook.clone(),
        }))
    }
}

impl SignOuts for RacingSignOuts {
    fn check<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        sid: Option<&'a str>,
        now: i64,
    ) -> BoxFuture<'a, Result<SignOutCheck, StoreError>> {
        Box::pin(async move {
            let read = self.inner.check(app, user, sid, now).await;
            let hook = self.hook.take().await;
            if let Some(hook) = hook {
                hook.await;
            }
            read
        })
    }
    fn bump<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        now: i64,
        ttl: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.bump(app, user, now, ttl)
    }
    fn revoke<'a>(
        &'a self,
        app: &'a AppId,
        sid: &'a str,
        until: i64,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.revoke(app, sid, until, now)
    }
    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.cleanup(now)
    }
}

/// The in-flight sign-in, over HTTP on two instances: on B, a sign-in with the old password
/// reads the account's credentials epoch; right then the password is changed on A; the
/// sign-in's password check (of the old hash it looked up) succeeds, and it commits with the
/// old epoch. Its session must be anonymous, on B and on A.
pub async fn sign_in_in_flight_during_a_password_change_is_anonymous(db: Shared) {
    let a = db.instance(&[]).await;
    let hook = Hook::default();
    let store_db = Db::from_config(db.url.as_deref(), db.dir.path())
        .await
        .expect("the database");
    let racing = Racing {
        inner: Arc::new(DbSessions::new(store_db)),
        hook: hook.clone(),
    };
    let b = db
        .instance_with(
            &[],
            BuildOptions {
                session_store: Some(Arc::new(racing)),
                ..BuildOptions::default()
            },
        )
        .await;
    let mut owner = a.agent();
    owner.unverified_account(ADA).await;
    owner.get("/account/password").await.assert_status(200);

    let mut thief = b.agent();
    thief.get("/login").await.assert_status(200);
    let changed = Arc::new(AtomicBool::new(false));
    let done = changed.clone();
    hook.set(Box::pin(async move {
        owner
            .post(
                "/account/password",
                &[
                    ("current_password", PASSWORD),
                    ("new_password", NEW_PASSWORD),
                ],
            )
            .await
            .assert_redirect("/account/sessions");
        done.store(true, Ordering::SeqCst);
    }))
    .await;
    let answer = thief
        .post("/login", &[("email", ADA), ("password", PASSWORD)])
        .await;
    assert!(
        changed.load(Ordering::SeqCst),
        "the password changed between the epoch read and the password check"
    );
    // The old password was right when it was checked: the answer is the usual redirect, but
    // the session it made carries the old epoch.
    answer.assert_redirect("/");
    assert!(!thief.signed_in().await, "anonymous on B");
    let mut on_a = copy_of(&thief, &a);
    assert!(!on_a.signed_in().await, "and on A");

    // The account itself is not locked out: the new password signs in, and stays.
    let mut fresh = b.agent();
    fresh.sign_in(ADA, PASSWORD).await.assert_status(422);
    fresh.sign_in(ADA, NEW_PASSWORD).await.assert_redirect("/");
    assert!(fresh.signed_in().await);
    assert!(fresh.signed_in().await, "still, at the next request");
}

/// Two applications on one database (the same key, `BUTTRESS_APP_ID` apart): each row carries
/// its application's id; a cookie of one is anonymous on the other; neither lists, revokes nor
/// signs out the other's sessions. Rows written before binding (an empty `app_id`) keep
/// nobody signed in and are swept once expired.
pub async fn apps_on_one_database_stay_apart(db: Shared) {
    let a = db.instance(&[("BUTTRESS_APP_ID", "portal-a")]).await;
    let b = db.instance(&[("BUTTRESS_APP_ID", "portal-b")]).await;
    let pool = a.portal.db.pool().clone();
    let mut on_a = a.agent();
    on_a.user_agent = "OnA/1.0".into();
    on_a.unverified_account(ADA).await;
    let ada = user_id(&pool, ADA).await;
    assert_eq!(session_apps(&pool, ada).await, ["portal-a"]);

    // Load: A's cookie on B is anonymous (B's store key for it differs, and B's load checks
    // the row's application), and B does not delete A's row.
    let mut copied = copy_of(&on_a, &b);
    assert!(!copied.signed_in().await, "A's session does not load on B");
    assert!(on_a.signed_in().await, "and is still A's");

    // List: the same account signed in on both; each lists its own session only.
    let mut on_b = b.agent();
    on_b.user_agent = "OnB/1.0".into();
    on_b.sign_in(ADA, PASSWORD).await.assert_redirect("/");
    assert_eq!(session_apps(&pool, ada).await, ["portal-a", "portal-b"]);
    let page_a = on_a.get("/account/sessions").await;
    let page_b = on_b.get("/account/sessions").await;
    assert!(page_a.body.contains("OnA/1.0") && !page_a.body.contains("OnB/1.0"));
    assert!(page_b.body.contains("OnB/1.0") && !page_b.body.contains("OnA/1.0"));
    let a_handles = handles(&page_a.body);
    assert_eq!(a_handles.len(), 1, "{a_handles:?}");

    // Revoke: B cannot revoke A's session by its handle, nor sign it out everywhere.
    on_b.post(&format!("/account/sessions/{}/revoke", a_handles[0].0), &[])
        .await
        .assert_status(404);
    assert!(on_a.signed_in().await);
    on_b.get("/account/sessions").await.assert_status(200);
    on_b.post("/account/sessions/revoke-all", &[])
        .await
        .assert_redirect("/");
    assert!(!on_b.signed_in().await);
    assert!(on_a.signed_in().await, "B's sign-out everywhere is B's");
    assert_eq!(epoch_apps(&pool, ada).await, ["portal-b"]);
    assert_eq!(session_apps(&pool, ada).await, ["portal-a"]);

    // Rows written before binding: nobody's. A's own row, made unbound, signs nobody in and
    // is listed by nobody; A's sweep deletes it once expired, not before.
    sqlx::query("UPDATE buttress_sessions SET app_id = '' WHERE user_id = $1")
        .bind(ada.to_string())
        .execute(&pool)
        .await
        .expect("update");
    assert!(
        !on_a.signed_in().await,
        "an unbound row keeps nobody signed in"
    );
    let store = DbSessions::new(a.portal.db.clone());
    let bound = store.bound_to(&AppId::new("portal-a").expect("id"));
    let now = buttress_portal::db::now_unix();
    assert!(bound
        .list_user(&ada.to_string(), now)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(session_apps(&pool, ada).await, [""]);
    bound.cleanup(now).await.expect("sweep");
    assert_eq!(session_apps(&pool, ada).await, [""], "alive: not swept yet");
    bound.cleanup(now + 2 * 86_400).await.expect("sweep");
    assert!(session_apps(&pool, ada).await.is_empty(), "expired: swept");
}

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::record::Record;
use super::*;
use crate::secret::{Keyring, SecretKey};
use futures_util::future::BoxFuture;

fn clock() -> (Arc<AtomicI64>, Clock) {
    let t = Arc::new(AtomicI64::new(1_000_000));
    let c = t.clone();
    (t, Arc::new(move || c.load(Ordering::SeqCst)))
}

async fn counter(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.insert("n", n).await?;
    Ok(n.to_string())
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(counter))
        .route(
            "/peek",
            get(
                |s: Session| async move { format!("{:?}", s.get::<u64>("n").await.ok().flatten()) },
            ),
        )
        .layer(layer)
}

/// Sends a GET with `cookie` (if any); returns (body, Set-Cookie value).
async fn call(app: &Router, path: &str, cookie: Option<&str>) -> (String, Option<String>) {
    let mut b = Request::builder().uri(path);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    let res = app
        .clone()
        .oneshot(b.body(Body::empty()).expect("req"))
        .await
        .expect("infallible");
    let set = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (String::from_utf8_lossy(&body).into_owned(), set)
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("name=value").to_owned()
}

#[tokio::test]
async fn cookie_mode_counts_and_sets_hardened_cookie() {
    let app = app(SessionLayer::cookie(&Keyring::ephemeral()));
    let (body, set) = call(&app, "/", None).await;
    assert_eq!(body, "1");
    let set = set.expect("cookie set");
    for attr in [
        "__Host-session=",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let (body, _) = call(&app, "/", Some(&pair(&set))).await;
    assert_eq!(body, "2");
}

#[tokio::test]
async fn read_only_requests_do_not_write() {
    let app = app(SessionLayer::cookie(&Keyring::ephemeral()));
    let (_, set) = call(&app, "/", None).await;
    let (body, again) = call(&app, "/peek", Some(&pair(&set.expect("set")))).await;
    assert_eq!(body, "Some(1)");
    assert!(
        again.is_none(),
        "no write for a read within the touch interval"
    );
}

/// A layer in store mode (on `memory`) or cookie mode, for tests that run in both.
fn layer_in(store: bool, ring: &Keyring, memory: &Arc<MemoryStore>) -> SessionLayer {
    if store {
        SessionLayer::store(ring, memory.clone())
    } else {
        SessionLayer::cookie(ring)
    }
}

#[tokio::test]
async fn idle_and_absolute_timeouts_are_enforced_server_side() {
    for store in [false, true] {
        let (t, c) = clock();
        let ring = Keyring::ephemeral();
        let app = app(layer_in(store, &ring, &Arc::default())
            .clock(c)
            .idle_timeout(std::time::Duration::from_secs(600))
            .absolute_timeout(std::time::Duration::from_secs(3600)));
        let (_, set) = call(&app, "/", None).await;
        let cookie = pair(&set.expect("set"));
        // Active every 5 minutes: survives idle, until the absolute timeout.
        let mut cookie = cookie;
        for step in 1..=11 {
            t.fetch_add(300, Ordering::SeqCst);
            let (body, set) = call(&app, "/", Some(&cookie)).await;
            assert_eq!(body, (step + 1).to_string(), "store={store} step {step}");
            if let Some(s) = set {
                cookie = pair(&s);
            }
        }
        t.fetch_add(300, Ordering::SeqCst); // 3600 s after creation
        let (body, set) = call(&app, "/", Some(&cookie)).await;
        assert_eq!(
            body, "1",
            "store={store}: absolute timeout starts a new session"
        );
        let fresh = pair(&set.expect("new cookie"));
        t.fetch_add(601, Ordering::SeqCst);
        let (body, _) = call(&app, "/peek", Some(&fresh)).await;
        assert_eq!(body, "None", "store={store}: idle timeout");
    }
}

#[tokio::test]
async fn forged_and_foreign_cookies_are_refused_and_cleared() {
    let ring = Keyring::ephemeral();
    let app = app(SessionLayer::cookie(&ring));
    let (_, set) = call(&app, "/", None).await;
    let good = pair(&set.expect("set"));
    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let other = app_with(Keyring::ephemeral());
    let (_, other_set) = call(&other, "/", None).await;
    for (what, cookie) in [
        ("tampered", tampered),
        ("truncated", good[..good.len() - 6].to_owned()),
        ("other key", pair(&other_set.expect("set"))),
        ("garbage", "__Host-session=%%%".to_owned()),
    ] {
        let (body, set) = call(&app, "/peek", Some(&cookie)).await;
        assert_eq!(body, "None", "{what}");
        let set = set.unwrap_or_default();
        assert!(
            set.contains("Max-Age=0"),
            "{what}: the bad cookie is cleared: {set}"
        );
    }
}

fn app_with(ring: Keyring) -> Router {
    app(SessionLayer::cookie(&ring))
}

#[tokio::test]
async fn fallback_key_cookie_opens_and_is_reissued_under_primary() {
    let old = SecretKey::generate();
    let before = app_with(Keyring::new(old.clone(), vec![]));
    let (_, set) = call(&before, "/", None).await;
    let old_cookie = pair(&set.expect("set"));
    let rotated_ring = Keyring::new(SecretKey::generate(), vec![old]);
    let rotated = app_with(rotated_ring.clone());
    let (body, set) = call(&rotated, "/peek", Some(&old_cookie)).await;
    assert_eq!(body, "Some(1)", "old cookie still opens");
    let new_cookie = pair(&set.expect("re-issued"));
    // The re-issued cookie opens with the new key alone.
    let only_new = app_with(Keyring::new(rotated_ring.primary().clone(), vec![]));
    assert_eq!(
        call(&only_new, "/peek", Some(&new_cookie)).await.0,
        "Some(1)"
    );
    assert_eq!(call(&only_new, "/peek", Some(&old_cookie)).await.0, "None");
}

#[tokio::test]
async fn store_mode_keeps_hashed_ids_and_rotates_on_login() {
    let store = Arc::new(MemoryStore::default());
    let ring = Keyring::ephemeral();
    let app = Router::new()
        .route("/", get(counter))
        .route(
            "/login",
            get(|s: Session| async move { s.set_user(Some("alice")).await.map(|()| "in") }),
        )
        .route(
            "/logout",
            get(|s: Session| async move { s.flush().await.map(|()| "out") }),
        )
        .route(
            "/peek",
            get(|s: Session| async move {
                format!(
                    "{:?} {:?}",
                    s.get::<u64>("n").await.ok().flatten(),
                    s.user().await.ok().flatten()
                )
            }),
        )
        .layer(SessionLayer::store(&ring, store.clone()));
    let (_, set) = call(&app, "/", None).await;
    let pre_login = pair(&set.expect("set"));
    let id = pre_login.split_once('=').expect("pair").1.to_owned();
    assert_eq!(id.len(), 43, "256-bit id");
    assert!(store
        .load(&SessionId::parse(&id).expect("id").store_key(), 0)
        .await
        .expect("load")
        .is_some());
    let (_, set) = call(&app, "/login", Some(&pre_login)).await;
    let logged_in = pair(&set.expect("new id on login"));
    assert_ne!(logged_in, pre_login);
    // Fixation: the pre-login id no longer works.
    assert_eq!(call(&app, "/peek", Some(&pre_login)).await.0, "None None");
    assert_eq!(
        call(&app, "/peek", Some(&logged_in)).await.0,
        "Some(1) Some(\"alice\")"
    );
    // Logout ends it; replaying the cookie gives nothing.
    let (_, set) = call(&app, "/logout", Some(&logged_in)).await;
    assert!(set.expect("cleared").contains("Max-Age=0"));
    assert_eq!(call(&app, "/peek", Some(&logged_in)).await.0, "None None");
}

#[tokio::test]
async fn parallel_writes_to_different_keys_are_all_kept() {
    let store = Arc::new(MemoryStore::default());
    let app = Router::new()
        .route("/", get(counter))
        .route(
            "/set/{k}",
            get(
                |s: Session, axum::extract::Path(k): axum::extract::Path<String>| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    s.insert(&k, true).await.map(|()| "ok")
                },
            ),
        )
        .route(
            "/keys",
            get(|s: Session| async move {
                let mut n = 0;
                for i in 0..16 {
                    if s.get::<bool>(&format!("k{i}"))
                        .await
                        .ok()
                        .flatten()
                        .is_some()
                    {
                        n += 1;
                    }
                }
                n.to_string()
            }),
        )
        .layer(SessionLayer::store(&Keyring::ephemeral(), store));
    let (_, set) = call(&app, "/", None).await;
    let cookie = pair(&set.expect("set"));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            call(&app, &format!("/set/k{i}"), Some(&cookie)).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), "ok");
    }
    assert_eq!(
        call(&app, "/keys", Some(&cookie)).await.0,
        "16",
        "no write lost"
    );
}

#[tokio::test]
async fn plain_dev_cookie_drops_prefix_and_secure() {
    let settings = crate::settings::Settings::default();
    let layer = crate::plan::sessions(&settings, &Keyring::ephemeral(), None);
    assert_eq!(layer.cookie_name(), "session");
    let (_, set) = call(&app(layer), "/", None).await;
    let set = set.expect("set");
    assert!(
        set.starts_with("session=") && !set.contains("Secure"),
        "{set}"
    );
    let prod = crate::settings::Settings::loader()
        .env_vars([("BUTTRESS_ENV", "production")])
        .load()
        .expect("loads");
    assert_eq!(
        crate::plan::sessions(&prod, &Keyring::ephemeral(), None).cookie_name(),
        "__Host-session"
    );
}

#[tokio::test]
async fn expired_records_are_swept_in_the_background() {
    let (t, c) = clock();
    let store = Arc::new(MemoryStore::default());
    let app = app(SessionLayer::store(&Keyring::ephemeral(), store.clone()).clock(c));
    for _ in 0..10 {
        call(&app, "/", None).await;
    }
    assert_eq!(store.cleanup(0).await.expect("count"), 0);
    t.fetch_add(31 * 60, Ordering::SeqCst); // past the idle timeout
    for _ in 0..1024 {
        call(&app, "/peek", None).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        store.cleanup(i64::MAX).await.expect("count"),
        0,
        "the sweeper already removed all ten"
    );
}

#[tokio::test]
async fn untouched_sessions_pass_through_and_cookie_responses_are_not_cached() {
    let app = Router::new()
        .route("/plain", get(|| async { "plain" }))
        .route(
            "/own-cookie",
            get(|| async { ([("set-cookie", "theme=dark; Path=/")], "themed") }),
        )
        .layer(SessionLayer::cookie(&Keyring::ephemeral()));
    let send = |path: &'static str, cookie: Option<&'static str>| {
        let app = app.clone();
        async move {
            let mut b = Request::builder().uri(path);
            if let Some(c) = cookie {
                b = b.header("cookie", c);
            }
            app.oneshot(b.body(Body::empty()).expect("req"))
                .await
                .expect("infallible")
        }
    };
    // A page that never touches the session: no cookie, no Cache-Control added, even when the
    // browser sends a forged session cookie (it is not even opened).
    for cookie in [None, Some("__Host-session=forged")] {
        let res = send("/plain", cookie).await;
        assert!(res.headers().get("set-cookie").is_none());
        assert!(res.headers().get("cache-control").is_none());
    }
    // The application's own cookie still makes the response uncacheable by shared caches.
    let res = send("/own-cookie", None).await;
    assert_eq!(res.headers()["set-cookie"], "theme=dark; Path=/");
    assert_eq!(res.headers()["cache-control"], "no-store");
}

/// A response to a signed-in session is nobody's to store (phone numbers on a shared computer's
/// Back button, a CDN caching by URL): `no-store`, unless the handler chose its own
/// `Cache-Control`. Anonymous responses are left alone.
#[tokio::test]
async fn signed_in_responses_are_not_stored() {
    async fn sign_in(session: Session) -> Result<&'static str, SessionError> {
        session.set_user(Some("42")).await?;
        Ok("in")
    }
    async fn private(session: Session) -> Result<String, SessionError> {
        Ok(format!("user {:?}", session.user().await?))
    }
    async fn styled(session: Session) -> Result<impl axum::response::IntoResponse, SessionError> {
        let _ = session.user().await?;
        Ok(([("cache-control", "public, max-age=3600")], "css"))
    }
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
    let app = Router::new()
        .route("/login", get(sign_in))
        .route("/private", get(private))
        .route("/styled", get(styled))
        .layer(SessionLayer::store(&Keyring::ephemeral(), store).secure(false));
    // Anonymous: the session is read, no user, no cookie: nothing added.
    let (body, _) = call(&app, "/private", None).await;
    assert_eq!(body, "user None");
    let anon = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/private")
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    assert!(anon.headers().get("cache-control").is_none());
    // Signed in: the next page, which sets no cookie, is no-store all the same.
    let (_, set) = call(&app, "/login", None).await;
    let cookie = pair(&set.expect("a session cookie"));
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/private")
                .header("cookie", &cookie)
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    assert!(res.headers().get("set-cookie").is_none());
    assert_eq!(res.headers()["cache-control"], "no-store");
    let res = app
        .oneshot(
            Request::builder()
                .uri("/styled")
                .header("cookie", &cookie)
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
}

/// A memory store rigged for tests: loads fail while `down` is set (an outage in the middle
/// of a request); sweeps are counted and, with a `gate`, wait for it (a slow database).
#[derive(Debug, Default)]
struct Rigged {
    inner: MemoryStore,
    down: std::sync::atomic::AtomicBool,
    sweeps: std::sync::atomic::AtomicUsize,
    gate: Option<tokio::sync::Semaphore>,
}

impl SessionStore for Rigged {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError("down".into())) });
        }
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
        Box::pin(async move {
            self.sweeps.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                let _pass = gate
                    .acquire()
                    .await
                    .map_err(|_| StoreError("closed".into()))?;
            }
            self.inner.cleanup(now).await
        })
    }
}

/// A load that failed is the answer for the whole request: a handler that ignores the first
/// error and then asks for a CSRF token gets the error again, and no new anonymous session
/// overwrites the signed-in cookie.
#[tokio::test]
async fn a_failed_load_is_answered_again_and_never_replaces_the_cookie() {
    let store = Arc::new(Rigged::default());
    let app = Router::new()
        .route(
            "/login",
            get(|s: Session| async move { s.set_user(Some("alice")).await.map(|()| "in") }),
        )
        .route(
            "/form",
            get(|s: Session| async move {
                let _ignored = s.user().await;
                s.csrf_secret().await.map(|_| "form")
            }),
        )
        .route(
            "/me",
            get(|s: Session| async move { format!("{:?}", s.user().await.ok().flatten()) }),
        )
        .layer(SessionLayer::store(&Keyring::ephemeral(), store.clone()));
    let (_, set) = call(&app, "/login", None).await;
    let cookie = pair(&set.expect("signed in"));
    store.down.store(true, Ordering::SeqCst);
    let (body, set) = call(&app, "/form", Some(&cookie)).await;
    assert!(body.contains("session-store-unavailable"), "{body}");
    assert_eq!(set, None, "the signed-in cookie is left alone");
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(call(&app, "/me", Some(&cookie)).await.0, "Some(\"alice\")");
    assert_eq!(
        store.inner.cleanup(i64::MAX).await.expect("count"),
        1,
        "no anonymous session was written"
    );
}

/// A request that loaded id X and writes after a parallel sign-in rotated X to Y finds X gone:
/// its write is dropped and its response leaves the browser's cookie alone (a clearing cookie
/// would delete Y and sign the user out).
#[tokio::test]
async fn a_write_to_a_session_that_vanished_meanwhile_does_not_clear_the_new_cookie() {
    let store = Arc::new(MemoryStore::default());
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let app = Router::new()
        .route("/", get(counter))
        .route(
            "/login",
            get(|s: Session| async move { s.set_user(Some("alice")).await.map(|()| "in") }),
        )
        .route(
            "/slow",
            get(move |s: Session| {
                let (e, r) = (e.clone(), r.clone());
                async move {
                    s.insert("late", true).await?;
                    e.notify_one();
                    r.notified().await;
                    Ok::<_, SessionError>("slow")
                }
            }),
        )
        .route(
            "/me",
            get(|s: Session| async move { format!("{:?}", s.user().await.ok().flatten()) }),
        )
        .layer(SessionLayer::store(&Keyring::ephemeral(), store.clone()));
    let (_, set) = call(&app, "/", None).await;
    let old = pair(&set.expect("anonymous session"));
    let slow = {
        let (app, old) = (app.clone(), old.clone());
        tokio::spawn(async move { call(&app, "/slow", Some(&old)).await })
    };
    entered.notified().await;
    let (_, set) = call(&app, "/login", Some(&old)).await;
    let new = pair(&set.expect("rotated on sign-in"));
    release.notify_one();
    let (body, set) = slow.await.expect("task");
    assert_eq!(body, "slow");
    assert_eq!(
        set, None,
        "no clearing cookie for a session that vanished meanwhile"
    );
    assert_eq!(call(&app, "/me", Some(&new)).await.0, "Some(\"alice\")");
}

/// A request that rotates a session's id (`cycle_id`, `set_user`) while another device signs
/// that session out does not resurrect it under the new id.
#[tokio::test]
async fn rotating_a_session_revoked_meanwhile_does_not_resurrect_it() {
    let store = Arc::new(MemoryStore::default());
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let app = Router::new()
        .route(
            "/login",
            get(|s: Session| async move { s.set_user(Some("alice")).await.map(|()| "in") }),
        )
        .route(
            "/rotate",
            get(move |s: Session| {
                let (e, r) = (e.clone(), r.clone());
                async move {
                    s.cycle_id().await?;
                    e.notify_one();
                    r.notified().await;
                    Ok::<_, SessionError>("rotated")
                }
            }),
        )
        .route(
            "/revoke-others",
            get(|s: Session| async move { s.revoke_others().await.map(|n| n.to_string()) }),
        )
        .layer(SessionLayer::store(&Keyring::ephemeral(), store.clone()));
    let laptop = pair(&call(&app, "/login", None).await.1.expect("laptop"));
    let phone = pair(&call(&app, "/login", None).await.1.expect("phone"));
    let rotating = {
        let app = app.clone();
        tokio::spawn(async move { call(&app, "/rotate", Some(&phone)).await })
    };
    entered.notified().await;
    assert_eq!(call(&app, "/revoke-others", Some(&laptop)).await.0, "1");
    release.notify_one();
    let (body, set) = rotating.await.expect("task");
    assert_eq!(body, "rotated");
    assert_eq!(set, None, "no new id for a revoked session");
    assert_eq!(
        store.list_user("alice", 0).await.expect("list").len(),
        1,
        "only the laptop's session is left"
    );
}

/// Setters on a clone of a layer take effect on the clone, and leave the original alone.
#[tokio::test]
async fn setters_on_a_clone_change_the_clone_only() {
    let base = SessionLayer::cookie(&Keyring::ephemeral());
    let short = base
        .clone()
        .absolute_timeout(std::time::Duration::from_secs(3600));
    let (_, set) = call(&app(short), "/", None).await;
    let set = set.expect("set");
    assert!(set.contains("Max-Age=3600"), "the clone's timeout: {set}");
    let (_, set) = call(&app(base), "/", None).await;
    let set = set.expect("set");
    assert!(set.contains("Max-Age=43200"), "the original's: {set}");
}

/// Sends a GET to `/peek` with these raw `Cookie` header lines; returns (body, Set-Cookie).
async fn peek_with_lines(app: &Router, lines: &[&[u8]]) -> (String, Option<String>) {
    let mut req = Request::builder()
        .uri("/peek")
        .body(Body::empty())
        .expect("req");
    for line in lines {
        req.headers_mut().append(
            "cookie",
            http::HeaderValue::from_bytes(line).expect("header bytes"),
        );
    }
    let res = app.clone().oneshot(req).await.expect("infallible");
    let set = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (String::from_utf8_lossy(&body).into_owned(), set)
}

/// A sibling subdomain's cookie with a byte that is not ASCII (`x=é; Domain=parent`) does not
/// hide the session cookie, on the same `Cookie` line or on another (HTTP/2 splits them); the
/// session cookie's own value is still validated strictly.
#[tokio::test]
async fn a_non_ascii_sibling_cookie_does_not_hide_the_session_cookie() {
    let app = app(SessionLayer::cookie(&Keyring::ephemeral()));
    let (_, set) = call(&app, "/", None).await;
    let session = pair(&set.expect("set"));
    let same_line = format!("x=\u{e9}; {session}; y=1");
    let quoted = session.replacen('=', "=\"", 1) + "\"";
    let bad_then_good = format!("__Host-session=\u{e9}\u{e9}; {session}");
    for (what, lines) in [
        ("same line", vec![same_line.as_bytes()]),
        (
            "another line",
            vec!["x=\u{e9}".as_bytes(), b"theme=dark", session.as_bytes()],
        ),
        (
            "raw latin-1 byte",
            vec![b"x=\xe9".as_slice(), session.as_bytes()],
        ),
        ("quoted", vec![quoted.as_bytes()]),
        ("bad value skipped", vec![bad_then_good.as_bytes()]),
    ] {
        let (body, _) = peek_with_lines(&app, &lines).await;
        assert_eq!(body, "Some(1)", "{what}");
    }
    let (body, _) = peek_with_lines(&app, &["__Host-session=\u{e9}".as_bytes()]).await;
    assert_eq!(
        body, "None",
        "a session value that is not cookie-octets is not taken"
    );
}

/// Lowering the absolute timeout (an incident) shortens sessions created under the old one,
/// in both modes: the configured limit is checked at load, not only the stored expiry.
#[tokio::test]
async fn a_lowered_absolute_timeout_ends_existing_sessions() {
    for store in [false, true] {
        let (t, c) = clock();
        let ring = Keyring::ephemeral();
        let memory = Arc::new(MemoryStore::default());
        let layer = |absolute: u64| {
            app(layer_in(store, &ring, &memory)
                .clock(c.clone())
                .idle_timeout(std::time::Duration::from_secs(7200))
                .absolute_timeout(std::time::Duration::from_secs(absolute)))
        };
        let (before, after) = (layer(12 * 3600), layer(3600));
        let (_, set) = call(&before, "/", None).await;
        let cookie = pair(&set.expect("set"));
        t.fetch_add(1800, Ordering::SeqCst);
        let (body, set) = call(&after, "/", Some(&cookie)).await;
        assert_eq!(body, "2", "store={store}: younger than the new limit");
        if store {
            let id = SessionId::parse(cookie.split_once('=').expect("pair").1).expect("id");
            let rec = memory.load(&id.store_key(), 0).await.expect("load");
            assert_eq!(
                rec.expect("kept").deadline,
                1_000_000 + 3600,
                "the record ends at the new limit"
            );
        } else {
            let set = set.expect("written");
            assert!(
                set.contains("Max-Age=1800"),
                "the cookie ends at the new limit: {set}"
            );
        }
        t.fetch_add(1800, Ordering::SeqCst);
        let (body, _) = call(&after, "/", Some(&cookie)).await;
        assert_eq!(body, "1", "store={store}: past the new limit");
    }
}

/// Huge configured timeouts do not overflow the session's times.
#[tokio::test]
async fn huge_timeouts_do_not_overflow() {
    for store in [false, true] {
        let ring = Keyring::ephemeral();
        let app = app(layer_in(store, &ring, &Arc::default())
            .idle_timeout(std::time::Duration::MAX)
            .absolute_timeout(std::time::Duration::MAX));
        let (body, set) = call(&app, "/", None).await;
        assert_eq!(body, "1", "store={store}");
        let (body, _) = call(&app, "/", Some(&pair(&set.expect("set")))).await;
        assert_eq!(body, "2", "store={store}");
    }
}

/// A sweep still running when the next one is due (a slow database) is not joined by a
/// second: sweeps never overlap, and the next turn after it ends sweeps again.
#[tokio::test]
async fn background_sweeps_never_overlap() {
    let store = Arc::new(Rigged {
        gate: Some(tokio::sync::Semaphore::new(0)),
        ..Rigged::default()
    });
    let app = app(SessionLayer::store(&Keyring::ephemeral(), store.clone()));
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(20));
    for _ in 0..1024 {
        call(&app, "/peek", None).await;
    }
    settle().await;
    assert_eq!(store.sweeps.load(Ordering::SeqCst), 1, "the first sweep");
    for _ in 0..2048 {
        call(&app, "/peek", None).await;
    }
    settle().await;
    assert_eq!(
        store.sweeps.load(Ordering::SeqCst),
        1,
        "no second sweep while the first runs"
    );
    if let Some(gate) = &store.gate {
        gate.add_permits(16);
    }
    settle().await;
    for _ in 0..1024 {
        call(&app, "/peek", None).await;
    }
    settle().await;
    assert_eq!(
        store.sweeps.load(Ordering::SeqCst),
        2,
        "the next turn sweeps"
    );
}

fn record_data(user: Option<&str>, last_seen: i64) -> SessionData {
    let mut d = SessionData::new(last_seen, last_seen + 10_000);
    d.user = user.map(str::to_owned);
    d
}

fn store_key(n: u8) -> StoreKey {
    StoreKey(format!("{n:064x}"))
}

/// A full memory store makes room for a new record with the expired ones first, then with the
/// least recently seen anonymous one; a signed-in session is never evicted.
#[tokio::test]
async fn a_full_memory_store_evicts_expired_then_oldest_anonymous_records() {
    let store = MemoryStore::default().with_max_records(3);
    let save = |n: u8, user: Option<&'static str>, seen: i64, deadline: i64| {
        let store = &store;
        async move {
            store
                .save(&store_key(n), None, &record_data(user, seen), deadline)
                .await
                .expect("saved")
        }
    };
    let present = |n: u8| {
        let store = &store;
        async move { store.load(&store_key(n), 0).await.expect("load").is_some() }
    };
    save(1, None, 100, 5_000).await;
    save(2, Some("alice"), 50, 5_000).await;
    save(3, None, 200, 250).await; // expired by t=300
    assert_eq!(save(4, None, 300, 5_000).await, Cas::Done);
    assert!(!present(3).await, "the expired record made room");
    assert!(present(1).await && present(2).await && present(4).await);
    assert_eq!(save(5, None, 400, 5_000).await, Cas::Done);
    assert!(
        !present(1).await,
        "then the least recently seen anonymous one"
    );
    assert!(present(2).await, "the signed-in session is older, and kept");
    assert!(present(4).await && present(5).await);
    // An update of a record already there needs no room.
    let mut seen = record_data(None, 500);
    seen.values.insert("x".into(), serde_json::json!(1));
    assert_eq!(
        store
            .save(&store_key(4), Some(1), &seen, 5_000)
            .await
            .expect("update"),
        Cas::Done
    );
    assert_eq!(
        store.list_user("alice", 0).await.expect("list").len(),
        1,
        "the user index follows"
    );
}

/// When everything left is signed in, a new session is refused (503), not a user evicted.
#[tokio::test]
async fn a_memory_store_full_of_signed_in_sessions_refuses_new_ones() {
    let store = Arc::new(MemoryStore::default().with_max_records(2));
    let app = Router::new()
        .route("/", get(counter))
        .route(
            "/login",
            get(|s: Session| async move { s.set_user(Some("alice")).await.map(|()| "in") }),
        )
        .route(
            "/me",
            get(|s: Session| async move { format!("{:?}", s.user().await.ok().flatten()) }),
        )
        .layer(SessionLayer::store(&Keyring::ephemeral(), store.clone()));
    let laptop = pair(&call(&app, "/login", None).await.1.expect("laptop"));
    let phone = pair(&call(&app, "/login", None).await.1.expect("phone"));
    let (body, set) = call(&app, "/", None).await;
    assert!(body.contains("session-store-unavailable"), "{body}");
    assert_eq!(set, None);
    assert!(
        store
            .save(&store_key(9), None, &record_data(None, 1), i64::MAX)
            .await
            .is_err(),
        "the store's own answer: unavailable"
    );
    for cookie in [&laptop, &phone] {
        assert_eq!(call(&app, "/me", Some(cookie)).await.0, "Some(\"alice\")");
    }
    // Signing in again rotates in place: the old record makes room for the new one.
    let (_, set) = call(&app, "/login", Some(&laptop)).await;
    let laptop = pair(&set.expect("rotated"));
    assert_eq!(call(&app, "/me", Some(&laptop)).await.0, "Some(\"alice\")");
}

/// The account page's list follows a lowered absolute timeout too: sessions that would be
/// refused at their next load are not listed.
#[tokio::test]
async fn a_lowered_absolute_timeout_also_shortens_the_list_of_sessions() {
    let (t, c) = clock();
    let ring = Keyring::ephemeral();
    let store = Arc::new(MemoryStore::default());
    let layer = |absolute: u64| {
        Router::new()
            .route(
                "/login",
                get(|s: Session| async move { s.set_user(Some("alice")).await.map(|()| "in") }),
            )
            .route(
                "/sessions",
                get(|s: Session| async move {
                    s.list_user_sessions().await.map(|l| l.len().to_string())
                }),
            )
            .layer(
                SessionLayer::store(&ring, store.clone())
                    .clock(c.clone())
                    .idle_timeout(std::time::Duration::from_secs(4 * 3600))
                    .absolute_timeout(std::time::Duration::from_secs(absolute)),
            )
    };
    let (before, after) = (layer(12 * 3600), layer(3600));
    call(&before, "/login", None).await;
    t.fetch_add(5400, Ordering::SeqCst);
    let (_, set) = call(&after, "/login", None).await;
    let cookie = pair(&set.expect("signed in"));
    assert_eq!(call(&before, "/sessions", Some(&cookie)).await.0, "2");
    assert_eq!(call(&after, "/sessions", Some(&cookie)).await.0, "1");
}

//! Sign-out means signed out, in every session mode: after `logout`, "sign out everywhere" or
//! a password change, a copy of the cookie taken before is anonymous on every instance
//! (memory, Redis), a request in flight does not set the signed-in cookie again, and a sign-in
//! that checked the old password while "sign out everywhere" ran does not survive it. Each
//! scenario runs in cookie mode and in store mode, in memory and on a real Redis shared by two
//! instances.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use buttress::secret::{Keyring, SecretKey};
use buttress::session::redis::{RedisSessionStore, RedisSignOuts};
use buttress::session::{MemoryStore, Session, SessionError, SessionLayer, SessionStore};
use tokio::sync::Notify;

/// Where a test pauses a handler: `entered` when it got there, then it waits for `release`.
#[derive(Clone, Default)]
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

impl Gate {
    async fn pass(&self) {
        self.entered.notify_one();
        self.release.notified().await;
    }
}

fn app(layer: SessionLayer, gate: Gate) -> Router {
    let slow = gate.clone();
    let login_gate = gate;
    Router::new()
        .route(
            "/login/{user}",
            post(|s: Session, Path(u): Path<String>| async move {
                s.set_user(Some(&u)).await.map(|()| "in")
            }),
        )
        // A sign-in that reads the epoch, then "checks the password" (waits at the gate).
        .route(
            "/login-slow/{user}",
            post(move |s: Session, Path(u): Path<String>| {
                let gate = login_gate.clone();
                async move {
                    let epoch = s.credentials_epoch(&u).await?;
                    gate.pass().await;
                    s.set_user_checked(&u, epoch).await.map(|()| "in")
                }
            }),
        )
        .route(
            "/me",
            get(|s: Session| async move { s.user().await.map(|u| u.unwrap_or_default()) }),
        )
        // A request in flight: signed in when it starts, writes, and ends after the gate.
        .route(
            "/slow-write",
            post(move |s: Session| {
                let gate = slow.clone();
                async move {
                    let who = s.user().await?.unwrap_or_default();
                    s.insert("seen", true).await?;
                    gate.pass().await;
                    Ok::<_, SessionError>(who)
                }
            }),
        )
        .route(
            "/logout",
            post(|s: Session| async move { s.flush().await.map(|()| "out") }),
        )
        .route(
            "/everywhere",
            post(|s: Session| async move { s.revoke_others().await.map(|n| n.to_string()) }),
        )
        .route(
            "/sessions",
            get(|s: Session| async move { s.list_user_sessions().await.map(|l| l.len().to_string()) }),
        )
        .layer(layer)
}

/// Sends a request; returns (status, body, the session cookie's `name=value` if one was set,
/// with an empty value when it was cleared).
async fn call(
    app: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    let r =
        buttress_testkit::reply::oneshot(app.clone(), b.body(Body::empty()).expect("req")).await;
    let set = r.cookie_pair();
    (r.status.as_u16(), r.body, set)
}

async fn sign_in(app: &Router, user: &str) -> String {
    let (status, _, set) = call(app, "POST", &format!("/login/{user}"), None).await;
    assert_eq!(status, 200);
    set.expect("a session cookie")
}

async fn me(app: &Router, cookie: &str) -> String {
    call(app, "GET", "/me", Some(cookie)).await.1
}

/// Two instances of one deployment (one key) and how they keep their sessions.
struct Instances {
    name: &'static str,
    one: SessionLayer,
    two: SessionLayer,
}

fn cookie_pair(
    ring: &Keyring,
    outs: Option<Arc<dyn buttress::session::SignOuts>>,
) -> (SessionLayer, SessionLayer) {
    let layer = || {
        let l = SessionLayer::cookie(ring).secure(false);
        match &outs {
            Some(o) => l.sign_outs(o.clone()),
            None => l,
        }
    };
    (layer(), layer())
}

/// Cookie and store mode, in memory (one instance: both names are the same layer) and on a
/// real Redis shared by two instances.
fn every_mode(redis: &buttress_testkit::RedisServer) -> Vec<Instances> {
    let ring = Keyring::new(SecretKey::generate(), vec![]);
    let (cookie_one, _) = cookie_pair(&ring, None);
    let memory: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
    let store_memory = SessionLayer::store(&ring, memory).secure(false);
    let outs: Arc<dyn buttress::session::SignOuts> =
        Arc::new(RedisSignOuts::open(&redis.url()).expect("url"));
    let (c1, c2) = cookie_pair(&ring, Some(outs));
    let redis_store = || {
        let store: Arc<dyn SessionStore> =
            Arc::new(RedisSessionStore::open(&redis.url()).expect("url"));
        SessionLayer::store(&ring, store).secure(false)
    };
    vec![
        Instances {
            name: "cookie, memory",
            one: cookie_one.clone(),
            two: cookie_one,
        },
        Instances {
            name: "memory store",
            one: store_memory.clone(),
            two: store_memory,
        },
        Instances {
            name: "cookie, Redis sign-outs, two instances",
            one: c1,
            two: c2,
        },
        Instances {
            name: "Redis store, two instances",
            one: redis_store(),
            two: redis_store(),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_every_copy_of_the_cookie_on_every_instance() {
    let redis = buttress_testkit::RedisServer::start();
    for mode in every_mode(&redis) {
        let (one, two) = (
            app(mode.one, Gate::default()),
            app(mode.two, Gate::default()),
        );
        let cookie = sign_in(&one, "alice").await;
        let copy = cookie.clone();
        assert_eq!(me(&two, &copy).await, "alice", "{}: shared", mode.name);
        let (_, _, cleared) = call(&one, "POST", "/logout", Some(&cookie)).await;
        assert!(
            cleared.is_some_and(|c| c.ends_with('=')),
            "{}: the browser's cookie is cleared",
            mode.name
        );
        assert_eq!(
            me(&one, &copy).await,
            "",
            "{}: the copy, same instance",
            mode.name
        );
        assert_eq!(
            me(&two, &copy).await,
            "",
            "{}: the copy, other instance",
            mode.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_during_logout_does_not_sign_back_in() {
    let redis = buttress_testkit::RedisServer::start();
    for mode in every_mode(&redis) {
        let gate = Gate::default();
        let one = app(mode.one, gate.clone());
        let two = app(mode.two, Gate::default());
        let cookie = sign_in(&one, "bob").await;
        let in_flight = {
            let (one, cookie) = (one.clone(), cookie.clone());
            tokio::spawn(async move { call(&one, "POST", "/slow-write", Some(&cookie)).await })
        };
        gate.entered.notified().await;
        call(&two, "POST", "/logout", Some(&cookie)).await;
        gate.release.notify_one();
        let (status, body, set) = in_flight.await.expect("task");
        assert_eq!(
            (status, body.as_str()),
            (200, "bob"),
            "{}: it began signed in",
            mode.name
        );
        assert_eq!(
            set, None,
            "{}: no session cookie set after the logout",
            mode.name
        );
        assert_eq!(me(&one, &cookie).await, "", "{}", mode.name);
        assert_eq!(me(&two, &cookie).await, "", "{}", mode.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere_ends_every_other_session_in_every_mode() {
    let redis = buttress_testkit::RedisServer::start();
    for mode in every_mode(&redis) {
        let (one, two) = (
            app(mode.one, Gate::default()),
            app(mode.two, Gate::default()),
        );
        let laptop = sign_in(&one, "carol").await;
        let phone = sign_in(&two, "carol").await;
        let other_user = sign_in(&two, "dave").await;
        let (status, _, set) = call(&two, "POST", "/everywhere", Some(&phone)).await;
        assert_eq!(status, 200, "{}", mode.name);
        let phone_now = set.expect("this session goes on under a new cookie");
        assert_eq!(
            me(&one, &phone_now).await,
            "carol",
            "{}: stays signed in",
            mode.name
        );
        for (what, cookie) in [("laptop", &laptop), ("phone's old cookie", &phone)] {
            assert_eq!(me(&one, cookie).await, "", "{}: {what}", mode.name);
            assert_eq!(me(&two, cookie).await, "", "{}: {what}", mode.name);
        }
        assert_eq!(
            me(&one, &other_user).await,
            "dave",
            "{}: other users untouched",
            mode.name
        );
        // A later sign-in is not affected by the earlier bump.
        let later = sign_in(&one, "carol").await;
        assert_eq!(me(&two, &later).await, "carol", "{}", mode.name);
    }
}

/// The password-change race: a sign-in reads the epoch and checks the (old) password, and
/// before it commits, the user changes the password elsewhere ("sign out everywhere"). The
/// late sign-in must not end up signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_that_checked_the_old_password_does_not_survive_sign_out_everywhere() {
    let redis = buttress_testkit::RedisServer::start();
    for mode in every_mode(&redis) {
        let gate = Gate::default();
        let one = app(mode.one, gate.clone());
        let two = app(mode.two, Gate::default());
        let owner = sign_in(&two, "erin").await;
        let attacker = {
            let one = one.clone();
            tokio::spawn(async move { call(&one, "POST", "/login-slow/erin", None).await })
        };
        gate.entered.notified().await;
        let (status, _, owner_now) = call(&two, "POST", "/everywhere", Some(&owner)).await;
        assert_eq!(status, 200, "{}", mode.name);
        gate.release.notify_one();
        let (_, _, set) = attacker.await.expect("task");
        if let Some(cookie) = set {
            assert_eq!(me(&one, &cookie).await, "", "{}: instance one", mode.name);
            assert_eq!(me(&two, &cookie).await, "", "{}: instance two", mode.name);
        }
        let owner_now = owner_now.expect("the owner's new cookie");
        assert_eq!(me(&one, &owner_now).await, "erin", "{}", mode.name);
        // Without the race, the same sign-in works.
        let (_, _, set) = {
            let one = one.clone();
            let late =
                tokio::spawn(async move { call(&one, "POST", "/login-slow/erin", None).await });
            gate.entered.notified().await;
            gate.release.notify_one();
            late.await.expect("task")
        };
        assert_eq!(
            me(&two, &set.expect("signed in")).await,
            "erin",
            "{}",
            mode.name
        );
    }
}

/// One account signing in again and again cannot fill a memory store and turn every visitor
/// away (503): beyond the per-user cap, its least recently active sessions end.
#[tokio::test]
async fn one_account_cannot_fill_a_memory_store() {
    let ring = Keyring::new(SecretKey::generate(), vec![]);
    let store = Arc::new(MemoryStore::default().with_max_records(20));
    // A clock that moves one second each time it is read, so sign-ins are ordered in time.
    let t = Arc::new(std::sync::atomic::AtomicI64::new(1_700_000_000));
    let layer = SessionLayer::store(&ring, store.clone())
        .secure(false)
        .max_sessions_per_user(5)
        .clock(Arc::new(move || {
            t.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        }));
    let app = app(layer, Gate::default());
    let first = sign_in(&app, "mallory").await;
    let mut last = first.clone();
    for _ in 0..40 {
        last = sign_in(&app, "mallory").await;
    }
    assert_eq!(call(&app, "GET", "/sessions", Some(&last)).await.1, "5");
    assert_eq!(me(&app, &first).await, "", "the oldest went first");
    assert_eq!(me(&app, &last).await, "mallory");
    for user in ["u1", "u2", "u3"] {
        let cookie = sign_in(&app, user).await;
        assert_eq!(me(&app, &cookie).await, user, "others still sign in");
    }
    // Without the cap the same flood fills the store with signed-in sessions: 503.
    let uncapped = app_with_cap(&ring, 1_000);
    let mut refused = false;
    for _ in 0..40 {
        let (status, _, _) = call(&uncapped, "POST", "/login/mallory", None).await;
        refused |= status == 503;
    }
    assert!(refused, "the attack this cap prevents");
}

fn app_with_cap(ring: &Keyring, cap: usize) -> Router {
    let store = Arc::new(MemoryStore::default().with_max_records(20));
    app(
        SessionLayer::store(ring, store)
            .secure(false)
            .max_sessions_per_user(cap),
        Gate::default(),
    )
}

/// A password reset by e-mail link (or an account deleted): a request that is not the user's
/// signs them out of every session, in every mode and on every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_signs_a_user_out_everywhere_from_someone_elses_request() {
    let redis = buttress_testkit::RedisServer::start();
    for mode in every_mode(&redis) {
        let reset = Router::new()
            .route(
                "/reset/{user}",
                post(|s: Session, Path(u): Path<String>| async move {
                    s.sign_out_everywhere(&u).await.map(|n| n.to_string())
                }),
            )
            .layer(mode.two.clone());
        let (one, two) = (
            app(mode.one, Gate::default()),
            app(mode.two, Gate::default()),
        );
        let laptop = sign_in(&one, "fay").await;
        let phone = sign_in(&two, "fay").await;
        let other = sign_in(&one, "gus").await;
        let (status, _, _) = call(&reset, "POST", "/reset/fay", None).await;
        assert_eq!(status, 200, "{}", mode.name);
        for cookie in [&laptop, &phone] {
            assert_eq!(me(&one, cookie).await, "", "{}", mode.name);
            assert_eq!(me(&two, cookie).await, "", "{}", mode.name);
        }
        assert_eq!(
            me(&two, &other).await,
            "gus",
            "{}: others untouched",
            mode.name
        );
        let again = sign_in(&two, "fay").await;
        assert_eq!(
            me(&one, &again).await,
            "fay",
            "{}: signing in again works",
            mode.name
        );
    }
}

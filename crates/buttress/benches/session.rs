//! Hot paths of sessions and CSRF: cookie encode+decode, token mask+verify, CSP nonce, and
//! the sign-out check every signed-in request makes (credentials epoch and revoked cookie
//! session), alone and as part of a whole signed-in request through the session layer.
//! Run: `cargo bench -p buttress --bench session`.

#![allow(missing_docs)]

use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use buttress::csrf::{mask_token, verify_token};
use buttress::headers::{Csp, CspNonce};
use buttress::secret::{AppId, Keyring};
use buttress::session::codec::CookieCodec;
use buttress::session::{
    MemorySignOuts, Session, SessionData, SessionLayer, SignOutCheck, SignOuts, StoreError,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use futures_util::future::{BoxFuture, FutureExt as _};
use http::Request;
use tower::ServiceExt as _;

fn typical_session() -> SessionData {
    let mut d = SessionData::new(1_700_000_000, 1_700_043_200);
    d.user = Some("42".into());
    d.csrf = Some("q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E".into());
    d.client = Some("203.0.113.7 — Mozilla/5.0 (X11; Linux x86_64)".into());
    d.values
        .insert("flash".into(), serde_json::json!("Profile saved"));
    d
}

fn cookie(c: &mut Criterion) {
    let codec = CookieCodec::new(
        Keyring::ephemeral().derive("session-cookie"),
        "__Host-session",
    );
    let data = typical_session();
    let encoded = codec.encode(&data).expect("encodes");
    c.bench_function("session cookie encode+decode", |b| {
        b.iter(|| {
            let v = codec.encode(black_box(&data)).expect("encodes");
            black_box(codec.decode(&v).expect("decodes"));
        })
    });
    c.bench_function("session cookie decode", |b| {
        b.iter(|| black_box(codec.decode(black_box(&encoded)).expect("decodes")))
    });
}

fn csrf(c: &mut Criterion) {
    let secret = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";
    c.bench_function("csrf token mask+verify", |b| {
        b.iter(|| {
            let masked = mask_token(black_box(secret)).expect("masks");
            assert!(verify_token(black_box(&masked), black_box(secret)));
        })
    });
}

fn nonce(c: &mut Criterion) {
    let csp = Csp::strict();
    c.bench_function("csp nonce + render", |b| {
        b.iter(|| {
            let n = CspNonce::generate();
            black_box(csp.render(n.as_str(), true));
        })
    });
}

/// Sign-outs that cost nothing: the floor the memory table is compared with.
#[derive(Debug)]
struct NoSignOuts;

impl SignOuts for NoSignOuts {
    fn check<'a>(
        &'a self,
        _: &'a AppId,
        _: &'a str,
        _: Option<&'a str>,
        _: i64,
    ) -> BoxFuture<'a, Result<SignOutCheck, StoreError>> {
        Box::pin(async { Ok(SignOutCheck::default()) })
    }
    fn bump<'a>(
        &'a self,
        _: &'a AppId,
        _: &'a str,
        _: i64,
        _: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async { Ok(1) })
    }
    fn revoke<'a>(
        &'a self,
        _: &'a AppId,
        _: &'a str,
        _: i64,
        _: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A sign-out table as a busy site has it: 10,000 users who signed out everywhere and 10,000
/// revoked cookie sessions.
fn busy_table() -> MemorySignOuts {
    let outs = MemorySignOuts::default();
    let app = AppId::new("bench").expect("id");
    for i in 0..10_000 {
        let _ = outs
            .bump(&app, &format!("user{i}"), 1_000, 43_200)
            .now_or_never();
        let _ = outs
            .revoke(&app, &format!("sid{i}"), 50_000, 1_000)
            .now_or_never();
    }
    outs
}

fn sign_out_check(c: &mut Criterion) {
    let outs = busy_table();
    let app = AppId::new("bench").expect("id");
    c.bench_function("sign-out check, memory (epoch + revoked id)", |b| {
        b.iter(|| {
            black_box(
                outs.check(
                    &app,
                    black_box("user77"),
                    Some(black_box("sid-not-revoked")),
                    2_000,
                )
                .now_or_never(),
            )
        })
    });
    // A whole signed-in request in cookie mode (the cookie opened, the user read), with the
    // sign-out check on the memory table against one that costs nothing.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ring = Keyring::ephemeral();
    let routes = || {
        Router::new()
            .route(
                "/login",
                get(|s: Session| async move { s.set_user(Some("user77")).await.map(|()| "in") }),
            )
            .route(
                "/me",
                get(|s: Session| async move { s.user().await.map(|u| u.unwrap_or_default()) }),
            )
    };
    let memory: Arc<dyn SignOuts> = Arc::new(busy_table());
    let none: Arc<dyn SignOuts> = Arc::new(NoSignOuts);
    for (name, outs) in [("memory sign-outs", memory), ("no sign-out check", none)] {
        let app = routes().layer(SessionLayer::cookie(&ring).secure(false).sign_outs(outs));
        let login = rt.block_on(
            app.clone()
                .oneshot(Request::get("/login").body(Body::empty()).expect("req")),
        );
        let cookie = login
            .ok()
            .and_then(|r| r.headers().get("set-cookie").cloned())
            .and_then(|v| {
                v.to_str()
                    .ok()
                    .map(|v| v.split(';').next().unwrap_or("").to_owned())
            })
            .expect("signed in");
        c.bench_function(&format!("signed-in request, cookie mode, {name}"), |b| {
            b.iter(|| {
                let req = Request::get("/me")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .expect("req");
                black_box(rt.block_on(app.clone().oneshot(req)).expect("infallible"))
            })
        });
    }
}

criterion_group!(benches, cookie, csrf, nonce, sign_out_check);
criterion_main!(benches);

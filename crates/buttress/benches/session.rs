//! Hot paths of sessions and CSRF: cookie encode+decode, token mask+verify, CSP nonce.
//! Run: `cargo bench -p buttress --bench session`.

#![allow(missing_docs)]

use buttress::csrf::{mask_token, verify_token};
use buttress::headers::{Csp, CspNonce};
use buttress::secret::Keyring;
use buttress::session::codec::CookieCodec;
use buttress::session::SessionData;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

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

criterion_group!(benches, cookie, csrf, nonce);
criterion_main!(benches);

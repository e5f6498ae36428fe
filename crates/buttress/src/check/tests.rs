//! The checklist's cases: each id raised by the setting that causes it.

use super::*;
use crate::headers::Csp;
use crate::secret::SecretKey;
use std::time::Duration;

use crate::session::SameSite;
use crate::settings::{Environment, Settings};

fn strong() -> SecretKey {
    SecretKey::from_bytes(b"q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E".to_vec())
}

fn hardened() -> Settings {
    let mut s = Settings::loader()
        .env_vars([
            ("BUTTRESS_ENV", "production"),
            ("BUTTRESS_BEHIND_PROXY", "true"),
            ("BUTTRESS_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("BUTTRESS_ALLOWED_HOSTS", "example.org"),
            ("BUTTRESS_HSTS_PRELOAD", "true"),
        ])
        .load()
        .expect("loads");
    s.secret_key = Some(strong());
    s
}

fn ids(s: &Settings) -> Vec<&'static str> {
    run(s).into_iter().map(|f| f.id).collect()
}

#[test]
fn hardened_production_is_clean() {
    assert!(run(&hardened()).is_empty(), "{:?}", run(&hardened()));
}

#[test]
fn each_weakness_is_found() {
    type Edit = fn(&mut Settings);
    let cases: &[(&str, Edit)] = &[
        ("BTR-E001", |s| s.debug = true),
        ("BTR-E002", |s| s.secret_key = None),
        ("BTR-E003", |s| {
            s.secret_key = Some(SecretKey::from_bytes(b"short".to_vec()))
        }),
        ("BTR-E004", |s| {
            s.secret_key_fallbacks = vec![SecretKey::from_bytes(b"changeme".to_vec())]
        }),
        ("BTR-E005", |s| s.behind_proxy = false),
        ("BTR-E006", |s| s.https_redirect = false),
        ("BTR-E007", |s| s.hsts_max_age = Duration::ZERO),
        ("BTR-E007", |s| s.hsts_max_age = Duration::from_secs(86_400)),
        ("BTR-W003", |s| {
            s.hsts_max_age = Duration::from_secs(20_000_000)
        }),
        ("BTR-E008", |s| s.cookie_secure = false),
        ("BTR-E008", |s| s.cookie_http_only = false),
        ("BTR-W004", |s| s.cookie_same_site = SameSite::None),
        ("BTR-E009", |s| {
            s.csp = Some(
                Csp::parse("default-src 'self'; script-src 'self' 'unsafe-inline'").expect("csp"),
            )
        }),
        ("BTR-E009", |s| {
            s.csp = Some(Csp::parse("default-src *").expect("csp"))
        }),
        ("BTR-E009", |s| {
            s.csp =
                Some(Csp::parse("script-src 'self' 'unsafe-eval'; object-src 'none'").expect("csp"))
        }),
        ("BTR-E014", |s| s.csp = Some(Csp::parse(" ").expect("csp"))),
        ("BTR-W008", |s| {
            s.csp = Some(Csp::parse("default-src 'self'").expect("csp"))
        }),
        ("BTR-W005", |s| s.csp_report_only = true),
        ("BTR-E010", |s| s.trusted_proxies.clear()),
        ("BTR-E012", |s| {
            s.trusted_proxies = vec!["0.0.0.0/0".parse().expect("cidr")]
        }),
        ("BTR-E012", |s| {
            s.trusted_proxies = vec!["::ffff:0:0/96".parse().expect("cidr")]
        }),
        ("BTR-E011", |s| s.instances = 3),
        ("BTR-E015", |s| {
            s.instances = 2;
            s.session_store = crate::session::SessionStoreKind::Memory;
        }),
        ("BTR-W011", |s| {
            s.instances = 2;
            s.ratelimit_storage = "redis://127.0.0.1:6379".parse().expect("storage");
            s.session_store = crate::session::SessionStoreKind::Cookie;
            s.redis_url = None;
        }),
        ("BTR-E016", |s| s.dev_tls = true),
        ("BTR-E017", |s| {
            s.metrics_bind = Some("0.0.0.0:9464".parse().expect("addr"));
            s.metrics_token = None;
        }),
        ("BTR-W002", |s| s.allowed_hosts.clear()),
        ("BTR-W009", |s| s.ratelimit_default = None),
        ("BTR-W009", |s| {
            s.ratelimit_storage = "redis://127.0.0.1:6379".parse().expect("storage");
            s.ratelimit_on_store_error = crate::ratelimit::OnStoreError::FailOpen;
        }),
        ("BTR-W010", |s| {
            s.instances = 4;
            s.ratelimit_storage = "redis://127.0.0.1:6379".parse().expect("storage");
            s.ratelimit_default = Some("200 per day; 3 per minute".parse().expect("limits"));
        }),
        ("BTR-W007", |s| s.body_limit = 1 << 30),
        ("BTR-I001", |s| s.hsts_preload = false),
        ("BTR-W001", |s| s.environment = Environment::Development),
    ];
    for (id, edit) in cases {
        let mut s = hardened();
        edit(&mut s);
        assert!(ids(&s).contains(id), "{id} not found in {:?}", ids(&s));
    }
}

#[test]
fn shares_that_keep_the_limit_are_not_flagged() {
    let mut s = hardened();
    s.instances = 3;
    s.ratelimit_storage = "redis://127.0.0.1:6379".parse().expect("storage");
    assert!(!ids(&s).contains(&"BTR-W010"), "{:?}", run(&s));
    s.ratelimit_default = Some("2 per second".parse().expect("limits"));
    assert!(ids(&s).contains(&"BTR-W010"));
    s.ratelimit_on_store_error = crate::ratelimit::OnStoreError::FailClosed;
    assert!(
        !ids(&s).contains(&"BTR-W010"),
        "fail-closed keeps the bound"
    );
}

#[test]
fn development_off_loopback_is_an_error() {
    let s = Settings {
        bind: "0.0.0.0:8000".parse().expect("addr"),
        ..Settings::default()
    };
    assert!(ids(&s).contains(&"BTR-E013"));
}

#[test]
fn nonce_with_unsafe_inline_fallback_is_not_flagged() {
    let mut s = hardened();
    s.csp = Some(Csp::parse("default-src 'none'; script-src 'nonce-x' 'unsafe-inline' 'strict-dynamic'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'").expect("csp"));
    assert!(!ids(&s).contains(&"BTR-E009"), "{:?}", run(&s));
}

#[test]
fn findings_never_contain_the_key() {
    let mut s = hardened();
    s.secret_key = Some(SecretKey::from_bytes(
        b"changeme-q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1G".to_vec(),
    ));
    let text = format!("{:?}", run(&s));
    assert!(!text.contains("q3Jx9"), "{text}");
}

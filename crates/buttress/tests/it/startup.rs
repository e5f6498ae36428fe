//! Start-up refusals: weak keys, non-loopback Development, unsafe Production.

use buttress::secret::KeyError;
use buttress::{Buttress, StartupError};

use crate::support::*;

#[test]
fn production_refuses_missing_and_weak_keys() {
    let weak = [
        ("", "missing"),
        ("short-key", "short"),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "low entropy",
        ),
        (
            "changeme-changeme-changeme-changeme-changeme",
            "placeholder",
        ),
        (
            "btr_example_do_not_use_8f3c1a9e7b6d5c4f2e1d0c9b8a7f6e5d",
            "our README example",
        ),
    ];
    for (key, what) in weak {
        let s = production(&[("SECRET_KEY", key)]);
        let err = Buttress::from_settings(&s).expect_err(what);
        assert!(matches!(err, StartupError::Key { .. }), "{what}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("buttress keygen"), "{what}: {msg}");
        if !key.is_empty() {
            assert!(
                !msg.contains(key),
                "{what}: the key must not be echoed: {msg}"
            );
        }
        assert_eq!(err.exit_code(), 3);
    }
    assert!(matches!(
        Buttress::from_settings(&production(&[("SECRET_KEY", "")])),
        Err(StartupError::Key {
            error: KeyError::Missing
        })
    ));
}

#[test]
fn production_refuses_unsafe_settings() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("BUTTRESS_BEHIND_PROXY", "false")], "BTR-E005"),
        (&[("BUTTRESS_HTTPS_REDIRECT", "false")], "BTR-E006"),
        (&[("BUTTRESS_HSTS_MAX_AGE", "0")], "BTR-E007"),
        (&[("BUTTRESS_COOKIE_SECURE", "false")], "BTR-E008"),
        (
            &[("BUTTRESS_CSP", "default-src * 'unsafe-inline'")],
            "BTR-E009",
        ),
        (&[("BUTTRESS_TRUSTED_PROXIES", "")], "BTR-E010"),
        (&[("BUTTRESS_INSTANCES", "3")], "BTR-E011"),
        (&[("BUTTRESS_DEBUG", "true")], "BTR-E001"),
    ];
    for (vars, id) in cases {
        let err = Buttress::from_settings(&production(vars)).expect_err(id);
        assert!(err.to_string().contains(id), "{id}: {err}");
    }
    let _ =
        Buttress::from_settings(&production(&[])).expect("the hardened production settings start");
}

#[test]
fn development_only_on_loopback() {
    for addr in ["0.0.0.0:8000", "[::]:8000", "192.0.2.10:80"] {
        let err = Buttress::from_settings(&settings(&[("BUTTRESS_BIND", addr)])).expect_err(addr);
        assert!(matches!(err, StartupError::NotLoopback { .. }), "{addr}");
        assert!(err.to_string().contains("BUTTRESS_ENV=production"), "{err}");
    }
    for addr in ["127.0.0.1:8000", "[::1]:8000", "127.0.0.2:9000"] {
        let _ = Buttress::from_settings(&settings(&[("BUTTRESS_BIND", addr)])).expect(addr);
    }
}

#[test]
fn development_without_key_is_ephemeral() {
    let a = Buttress::from_settings(&settings(&[])).expect("starts");
    let b = Buttress::from_settings(&settings(&[])).expect("starts");
    assert!(a.keyring().is_ephemeral());
    assert_ne!(
        a.keyring().derive("x").primary(),
        b.keyring().derive("x").primary()
    );
    let keyed = Buttress::from_settings(&settings(&[("SECRET_KEY", STRONG_KEY)])).expect("starts");
    assert!(!keyed.keyring().is_ephemeral());
}

/// No silent downgrade: a server-side session store that was asked for and not given refuses
/// to start (it used to fall back to cookies with a log line).
#[test]
fn a_missing_session_store_refuses_to_start() {
    let s = settings(&[("BUTTRESS_SESSION_STORE", "sql")]);
    let err = Buttress::from_settings(&s)
        .expect("settings are fine")
        .apply(routes())
        .expect_err("no SQL store was given");
    let msg = err.to_string();
    assert!(
        matches!(err, StartupError::SessionStore { .. }) && msg.contains("with_session_store"),
        "{msg}"
    );
    let given = Buttress::from_settings(&s)
        .expect("settings")
        .with_session_store(std::sync::Arc::new(
            buttress::session::MemoryStore::default(),
        ))
        .apply(routes());
    assert!(given.is_ok());
}

/// Replacing the header policy while the settings configure it would drop their CSP, report
/// mode or HSTS: refused, with `map_headers` named as the fix.
#[test]
fn replacing_configured_headers_is_refused() {
    use buttress::headers::SecureHeadersLayer;
    for vars in [
        &[("BUTTRESS_CSP", "default-src 'self'")][..],
        &[("BUTTRESS_CSP_REPORT_ONLY", "true")],
        &[("BUTTRESS_HSTS_MAX_AGE", "0")],
        &[("BUTTRESS_HSTS_PRELOAD", "true")],
    ] {
        let err = Buttress::from_settings(&settings(vars))
            .expect("settings")
            .with_headers(SecureHeadersLayer::new())
            .expect_err("refused");
        assert!(err.to_string().contains("map_headers"), "{vars:?}: {err}");
    }
    assert!(Buttress::from_settings(&settings(&[]))
        .expect("settings")
        .with_headers(SecureHeadersLayer::new())
        .is_ok());
}

/// Settings that could never match are refused when they load, with the reason.
#[test]
fn never_matching_hosts_and_origins_are_refused() {
    for (var, value, mentions) in [
        (
            "BUTTRESS_CSRF_TRUSTED_ORIGINS",
            "admin.example.org",
            "scheme",
        ),
        (
            "BUTTRESS_CSRF_TRUSTED_ORIGINS",
            "https://example.org/admin",
            "path",
        ),
        (
            "BUTTRESS_CSRF_TRUSTED_ORIGINS",
            "https://ex*mple.org",
            "wildcard",
        ),
        ("BUTTRESS_ALLOWED_HOSTS", "ex*mple.org", "wildcard"),
        ("BUTTRESS_ALLOWED_HOSTS", "https://example.org", "host name"),
        ("BUTTRESS_CANONICAL_HOST", "*.example.org", "host name"),
    ] {
        let err = buttress::settings::Settings::loader()
            .env_vars([(var, value)])
            .load()
            .expect_err(value)
            .to_string();
        assert!(
            err.contains(var) && err.contains(mentions) && err.contains("Fix:"),
            "{err}"
        );
    }
    // What the proxy docs call valid is accepted: an IPv6 literal, with or without a port.
    let s = settings(&[("BUTTRESS_ALLOWED_HOSTS", "[::1], [::1]:8000, *.example.org")]);
    assert_eq!(s.allowed_hosts.len(), 3);
}

/// A value is parsed once: what `buttress check` sees is what the stack uses. A storage
/// written with a stray space counted in memory while the checklist thought otherwise.
#[test]
fn the_checklist_and_the_stack_read_one_parsed_value() {
    let s = settings(&[
        ("BUTTRESS_RATELIMIT_STORAGE", " memory"),
        ("BUTTRESS_INSTANCES", "3"),
    ]);
    assert_eq!(
        s.ratelimit_storage,
        buttress::ratelimit::RateLimitStorage::Memory
    );
    let ids: Vec<&str> = buttress::check::run(&s).iter().map(|f| f.id).collect();
    assert!(ids.contains(&"BTR-E011"), "{ids:?}");
}

/// `Debug` of the settings and of the stack never shows a database or Redis password.
#[test]
fn debug_output_hides_url_passwords() {
    let s = settings(&[
        ("DATABASE_URL", "postgres://app:hunter2pw@db/portal"),
        ("REDIS_URL", "redis://:hunter2pw@cache:6379"),
        (
            "BUTTRESS_RATELIMIT_STORAGE",
            "redis://:hunter2pw@cache:6379",
        ),
        ("SECRET_KEY", STRONG_KEY),
    ]);
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("hunter2pw") && shown.contains("***@db"),
        "{shown}"
    );
    assert!(!shown.contains(STRONG_KEY), "{shown}");
    let stack = Buttress::from_settings(&s).expect("stack");
    let shown = format!("{stack:?}");
    assert!(
        !shown.contains("hunter2pw") && !shown.contains(STRONG_KEY),
        "{shown}"
    );
}

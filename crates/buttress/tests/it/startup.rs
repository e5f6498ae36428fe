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

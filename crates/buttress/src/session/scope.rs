//! Where a session is filed: one scope per key of the keyring (its application id and its
//! store-key sub-key), the primary key's first.
//!
//! A store key is `hex(HMAC-SHA256(k, app_id || 0x00 || session id))` with `k` the key's
//! `session-store` HKDF sub-key: a leaked store holds no usable id, and two deployments
//! sharing a store (different keys, or the same key and different `BUTTRESS_APP_ID`s) file
//! the same id under unrelated keys. A session written under a fallback key is found through
//! that key's scope and stays there (so that instances not yet given the new key still find
//! it during a rolling rotation) until its id rotates or it expires; new sessions go to the
//! primary key's scope.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use super::record::{SessionId, StoreKey};
use crate::secret::{AppId, Keyring, SubKey};

/// The purpose of the store-key sub-key.
pub(crate) const STORE_KEY_PURPOSE: &str = "session-store";

/// One key's scope: its application id and its store-key sub-key.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) app: AppId,
    mac: SubKey,
}

impl Scope {
    /// The key the store files session `id` under in this scope.
    pub(crate) fn store_key(&self, id: &SessionId) -> StoreKey {
        let mut mac = <Hmac<Sha256>>::new_from_slice(self.mac.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(self.app.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(id.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 15)]));
        }
        StoreKey(hex)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The scopes of a keyring, the primary key's first.
#[derive(Clone)]
pub(crate) struct Scopes(Vec<Scope>);

impl Scopes {
    /// One scope per key: `explicit` as every key's application id when set, else each key's
    /// derived id.
    pub(crate) fn new(keyring: &Keyring, explicit: Option<&AppId>) -> Self {
        let keys = keyring.derive(STORE_KEY_PURPOSE);
        let apps = keyring.app_ids(explicit);
        Scopes(
            keys.verification_order()
                .zip(apps)
                .map(|(mac, app)| Scope {
                    app,
                    mac: mac.clone(),
                })
                .collect(),
        )
    }

    /// The primary key's scope: where new sessions go.
    pub(crate) fn primary(&self) -> &Scope {
        // `new` makes one scope per key and a keyring always has its primary.
        &self.0[0]
    }

    /// Every scope, the primary's first.
    pub(crate) fn all(&self) -> &[Scope] {
        &self.0
    }

    /// The distinct application ids, the primary's first.
    pub(crate) fn apps(&self) -> Vec<AppId> {
        let mut apps: Vec<AppId> = Vec::with_capacity(self.0.len());
        for s in &self.0 {
            if !apps.contains(&s.app) {
                apps.push(s.app.clone());
            }
        }
        apps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    #[test]
    fn store_keys_are_keyed_by_key_and_app() {
        let key = SecretKey::generate();
        let id = SessionId::generate();
        let one = Scopes::new(&Keyring::new(key.clone(), vec![]), None);
        let again = Scopes::new(&Keyring::new(key.clone(), vec![]), None);
        assert_eq!(one.primary().store_key(&id), again.primary().store_key(&id));
        let other_key = Scopes::new(&Keyring::new(SecretKey::generate(), vec![]), None);
        assert_ne!(
            one.primary().store_key(&id),
            other_key.primary().store_key(&id)
        );
        let staging = AppId::new("staging").expect("id");
        let production = AppId::new("production").expect("id");
        let a = Scopes::new(&Keyring::new(key.clone(), vec![]), Some(&staging));
        let b = Scopes::new(&Keyring::new(key, vec![]), Some(&production));
        assert_ne!(a.primary().store_key(&id), b.primary().store_key(&id));
        let k = a.primary().store_key(&id);
        assert!(StoreKey::parse(&k.0).is_some(), "a handle: 64 hex digits");
        assert_ne!(
            k.0,
            id.legacy_digest(),
            "not the unkeyed SHA-256 of the id that older versions stored"
        );
    }

    #[test]
    fn a_rotated_keyring_keeps_the_old_scope_second() {
        let old = SecretKey::generate();
        let before = Scopes::new(&Keyring::new(old.clone(), vec![]), None);
        let after = Scopes::new(&Keyring::new(SecretKey::generate(), vec![old]), None);
        let id = SessionId::generate();
        assert_eq!(after.all().len(), 2);
        assert_eq!(
            after.all()[1].store_key(&id),
            before.primary().store_key(&id)
        );
        assert_eq!(after.apps().len(), 2);
        let named = AppId::new("shop").expect("id");
        let ring = Keyring::new(SecretKey::generate(), vec![SecretKey::generate()]);
        assert_eq!(Scopes::new(&ring, Some(&named)).apps(), vec![named]);
    }
}

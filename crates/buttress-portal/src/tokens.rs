//! Single-use account tokens: the links that verify an address and reset a password.
//!
//! | purpose | lifetime | used by |
//! | --- | --- | --- |
//! | [`Purpose::Verify`] | [`VERIFY_TTL`] (24 h) | `/verify` |
//! | [`Purpose::Reset`] | [`RESET_TTL`] (1 h) | `/password-reset/confirm` |
//!
//! A token is `ID.SECRET`: a random row id and 256 random bits (base64url). The database keeps
//! only `HMAC-SHA256(K, purpose ‖ id ‖ secret)` where `K` is the sub-key of `SECRET_KEY` for
//! [`TOKEN_KEY_PURPOSE`] (HKDF, see [`buttress::secret::Keyring::derive`]); a leaked table
//! holds no usable link, and a link made under a rotated-out key still opens while that key is
//! a fallback. The row is found by its id and the MAC compared in constant time
//! ([`subtle::ConstantTimeEq`]); a token is spent by one conditional `UPDATE … WHERE used_at IS
//! NULL`, so two clicks at once cannot both use it. Issuing a token spends the account's
//! earlier tokens of the same purpose: only the newest link works.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), buttress_portal::Error> {
//! use buttress_portal::tokens::{Purpose, TokenKeys};
//! use buttress_portal::{Accounts, Db, PasswordParams, SignUpOutcome};
//! use buttress_portal::validate::SignUpInput;
//!
//! let db = Db::in_memory().await?;
//! let accounts = Accounts::new(db.clone(), PasswordParams::insecure_fast_for_tests()).await?;
//! let input = SignUpInput { email: "ada@example.org".into(), password: "correct horse battery".into() };
//! let SignUpOutcome::Created(user) = accounts.sign_up(&input).await? else { unreachable!() };
//!
//! let keys = TokenKeys::new(&buttress::secret::Keyring::ephemeral());
//! let token = keys.issue(&db, user.id, Purpose::Verify).await?;
//! assert_eq!(keys.consume(&db, &token, Purpose::Verify).await?, Some(user.id));
//! assert_eq!(keys.consume(&db, &token, Purpose::Verify).await?, None, "single use");
//! # Ok(()) }
//! ```

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use buttress::secret::{DerivedKeys, Keyring, SubKey};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::db::{new_id, now_unix, Db};
use crate::error::{Error, Result};

/// The HKDF purpose of the tokens' MAC key (its own sub-key of `SECRET_KEY`).
pub const TOKEN_KEY_PURPOSE: &str = "portal/account-token/v1";

/// The HKDF purpose of the key that turns mail addresses into throttle keys.
pub const ADDRESS_KEY_PURPOSE: &str = "portal/mail-address/v1";

/// How long a verification link works.
pub const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a password-reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(3600);

/// What a token is for. A token of one purpose never works for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves the account's address (the sign-up link).
    Verify,
    /// Sets a new password (the reset link).
    Reset,
}

impl Purpose {
    /// `verify` or `reset`, as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Reset => "reset",
        }
    }

    /// How long a token of this purpose works.
    #[must_use]
    pub fn ttl(self) -> Duration {
        match self {
            Purpose::Verify => VERIFY_TTL,
            Purpose::Reset => RESET_TTL,
        }
    }
}

/// The keys that make and check tokens (and address keys). Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenKeys {
    tokens: DerivedKeys,
    addresses: DerivedKeys,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &SubKey, parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length: this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl TokenKeys {
    /// The sub-keys of `keyring` for [`TOKEN_KEY_PURPOSE`] and [`ADDRESS_KEY_PURPOSE`].
    #[must_use]
    pub fn new(keyring: &Keyring) -> Self {
        TokenKeys {
            tokens: keyring.derive(TOKEN_KEY_PURPOSE),
            addresses: keyring.derive(ADDRESS_KEY_PURPOSE),
        }
    }

    /// A keyed hash of a (normalised) mail address, for throttling mail to it without keeping
    /// the address of someone who has no account.
    #[must_use]
    pub fn address_key(&self, email: &str) -> String {
        hex(&mac(self.addresses.primary(), &[email.as_bytes()]))
    }

    fn token_mac(key: &SubKey, purpose: Purpose, id: i64, secret: &[u8]) -> [u8; 32] {
        mac(
            key,
            &[purpose.as_str().as_bytes(), &id.to_be_bytes(), secret],
        )
    }

    /// Issues a token for `user_id` (spending the account's earlier ones of this purpose) and
    /// returns it; only its keyed hash is stored.
    ///
    /// # Errors
    /// Database errors.
    pub async fn issue(&self, db: &Db, user_id: i64, purpose: Purpose) -> Result<String> {
        let now = now_unix();
        let mut secret = [0_u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let ttl = i64::try_from(purpose.ttl().as_secs()).unwrap_or(i64::MAX);
        let mut tx = db.pool().begin().await?;
        sqlx::query(
            "UPDATE account_tokens SET used_at = $1 \
             WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(purpose.as_str())
        .execute(&mut *tx)
        .await?;
        let id = new_id();
        let hash = hex(&Self::token_mac(
            self.tokens.primary(),
            purpose,
            id,
            &secret,
        ));
        sqlx::query(
            "INSERT INTO account_tokens (id, user_id, purpose, secret_hash, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(id)
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(hash)
        .bind(now.saturating_add(ttl))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(format!("{id}.{}", URL_SAFE_NO_PAD.encode(secret)))
    }

    /// The account a valid, unspent, unexpired `token` of `purpose` belongs to, without
    /// spending it (to show the form a reset link opens).
    ///
    /// # Errors
    /// Database errors only; every kind of bad token is `Ok(None)`.
    pub async fn check(&self, db: &Db, token: &str, purpose: Purpose) -> Result<Option<i64>> {
        Ok(self.find(db, token, purpose).await?.map(|(id, user)| {
            let _ = id;
            user
        }))
    }

    /// Spends `token`: the account it belongs to if it was valid, unspent and unexpired, and
    /// is now spent; `None` otherwise (malformed, forged, of the other purpose, expired,
    /// already used, or spent by a concurrent request a moment before).
    ///
    /// # Errors
    /// Database errors only.
    pub async fn consume(&self, db: &Db, token: &str, purpose: Purpose) -> Result<Option<i64>> {
        let Some((id, user_id)) = self.find(db, token, purpose).await? else {
            return Ok(None);
        };
        let done =
            sqlx::query("UPDATE account_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                .bind(now_unix())
                .bind(id)
                .execute(db.pool())
                .await?;
        Ok((done.rows_affected() == 1).then_some(user_id))
    }

    /// (token row id, user id) of a valid token.
    async fn find(&self, db: &Db, token: &str, purpose: Purpose) -> Result<Option<(i64, i64)>> {
        let Some((id, secret)) = parse(token) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT user_id, secret_hash, expires_at, used_at FROM account_tokens \
             WHERE id = $1 AND purpose = $2",
        )
        .bind(id)
        .bind(purpose.as_str())
        .fetch_optional(db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored: String = row.try_get("secret_hash")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        let user_id: i64 = row.try_get("user_id")?;
        let stored = stored.as_bytes();
        let mut matched = subtle::Choice::from(0);
        for key in self.tokens.verification_order() {
            let want = hex(&Self::token_mac(key, purpose, id, &secret));
            matched |= want.as_bytes().ct_eq(stored);
        }
        let valid = bool::from(matched) && used_at.is_none() && expires_at > now_unix();
        Ok(valid.then_some((id, user_id)))
    }
}

/// `ID.SECRET` → (id, 32 secret bytes), or `None` for anything else.
fn parse(token: &str) -> Option<(i64, Vec<u8>)> {
    let (id, secret) = token.trim().split_once('.')?;
    if id.len() > 20 || secret.len() != 43 {
        return None;
    }
    let id = id.parse::<i64>().ok().filter(|id| *id > 0)?;
    let secret = URL_SAFE_NO_PAD.decode(secret).ok()?;
    (secret.len() == 32).then_some((id, secret))
}

impl Db {
    /// Deletes spent and expired tokens older than a day and mail-throttle rows older than a
    /// day; returns how many rows went.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sweep_tokens(&self) -> Result<u64> {
        let day_ago = now_unix() - 86_400;
        let tokens = sqlx::query(
            "DELETE FROM account_tokens WHERE expires_at < $1 OR (used_at IS NOT NULL AND used_at < $1)",
        )
        .bind(day_ago)
        .execute(self.pool())
        .await?
        .rows_affected();
        let sends = sqlx::query("DELETE FROM mail_sends WHERE sent_at < $1")
            .bind(day_ago)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(tokens + sends)
    }

    /// Records a mail to `address_key` if fewer than `per_hour` went there in the last hour
    /// and fewer than `per_day` in the last day; `false` (nothing recorded) otherwise.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mail_allowed(
        &self,
        address_key: &str,
        per_hour: u32,
        per_day: u32,
    ) -> Result<bool> {
        let now = now_unix();
        let done = sqlx::query(
            "INSERT INTO mail_sends (address_key, sent_at) SELECT $1, $2 \
             WHERE (SELECT COUNT(*) FROM mail_sends WHERE address_key = $1 AND sent_at > $3) < $4 \
             AND (SELECT COUNT(*) FROM mail_sends WHERE address_key = $1 AND sent_at > $5) < $6",
        )
        .bind(address_key)
        .bind(now)
        .bind(now - 3600)
        .bind(i64::from(per_hour))
        .bind(now - 86_400)
        .bind(i64::from(per_day))
        .execute(self.pool())
        .await
        .map_err(Error::from)?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_takes_only_well_formed_tokens() {
        let good = format!("42.{}", URL_SAFE_NO_PAD.encode([7_u8; 32]));
        assert_eq!(parse(&good).map(|(id, s)| (id, s.len())), Some((42, 32)));
        for bad in [
            "",
            ".",
            "42",
            "42.",
            "-1.AAAA",
            &format!("0.{}", URL_SAFE_NO_PAD.encode([7_u8; 32])),
            &format!("x.{}", URL_SAFE_NO_PAD.encode([7_u8; 32])),
            &format!("42.{}", URL_SAFE_NO_PAD.encode([7_u8; 31])),
            &format!("42.{}=", URL_SAFE_NO_PAD.encode([7_u8; 32])),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = parse(&s);
        }

        #[test]
        fn macs_bind_purpose_and_id(id in 1_i64..1 << 53, other in 1_i64..1 << 53, secret in proptest::collection::vec(any::<u8>(), 32)) {
            let ring = Keyring::ephemeral();
            let keys = TokenKeys::new(&ring);
            let k = keys.tokens.primary();
            let a = TokenKeys::token_mac(k, Purpose::Verify, id, &secret);
            prop_assert_ne!(a, TokenKeys::token_mac(k, Purpose::Reset, id, &secret));
            if other != id {
                prop_assert_ne!(a, TokenKeys::token_mac(k, Purpose::Verify, other, &secret));
            }
        }
    }
}

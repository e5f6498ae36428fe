//! Accounts: sign-up, sign-in and password change, with argon2id and no user enumeration.
//!
//! # No enumeration
//!
//! Nothing the portal answers may tell a visitor whether an email address has an account:
//!
//! * **Sign-in** answers the same "email or password is not right" for an unknown email, a
//!   wrong password, a malformed email and a login-disabled account, and takes the same time:
//!   when there is no usable stored hash, [`Accounts::authenticate`] verifies the password
//!   against a dummy argon2id hash made at start-up with the same parameters, so every attempt
//!   costs exactly one argon2id verification.
//! * **Sign-up** hashes the password *before* it looks at the email, so a new and an existing
//!   address cost the same, and [`SignUpOutcome`] has one message for both cases
//!   ([`SignUpOutcome::MESSAGE`]): "if this address was not registered yet, the account is
//!   created; sign in". The HTTP layer must answer both outcomes with the same page, status
//!   and redirect, and must not sign the new account in (that alone would tell the two apart).
//!   Validation errors (weak password, malformed email) do not depend on existing accounts and
//!   are shown as usual.
//! * Sign-up, resend and reset mail: the HTTP layer answers every address the same way and
//!   sends the mail (a verification link, or "this address already has an account") from a
//!   spawned task, so neither the answer nor its timing depends on the account.
//!
//! # Hashing
//!
//! argon2id (RFC 9106) with [`PasswordParams`] (OWASP Password Storage Cheat Sheet: m = 19 MiB,
//! t = 2, p = 1), a 16-byte random salt, PHC string format. Hashing runs on
//! `tokio::task::spawn_blocking`, at most as many at once as the machine has cores (a
//! semaphore), so a flood of sign-ins cannot take all memory. A hash made with other
//! parameters is upgraded on the next successful sign-in, by an `UPDATE … WHERE password_hash
//! = <the hash that was verified>`: a password changed or reset a moment before is never
//! overwritten with a hash of the old one.
//!
//! # Equal work for every sign-in attempt
//!
//! An account whose hash still uses older parameters would answer in a different time than an
//! unknown address (verified against the dummy, at the current parameters) and give itself
//! away. So each attempt verifies exactly one hash **per parameter set in use**: the current
//! one and every older set some stored hash still has (found at start-up with one query, and
//! looked up again after each upgrade). For each set, the account's own hash if it has that
//! set, else a dummy hash made with it. An unknown address, a wrong password, an account on
//! the current parameters and one on older ones all cost the same argon2 work
//! ([`Accounts::argon2_work`] counts it per parameter set; a test compares the paths). Once
//! every old hash is upgraded an attempt is back to one verification. Only a *successful*
//! sign-in hashes once more (the upgrade), which tells the visitor nothing the success itself
//! does not.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use sqlx::Row;
use tokio::sync::Semaphore;

use crate::db::{new_id, now_unix, Db};
use crate::error::{Error, FieldError, Result};
use crate::validate::{
    normalize_email, password_problem, ChangePasswordInput, SignUpInput, PASSWORD_MAX_CHARS,
};

/// A sign-in whose address was looked up and whose password is not checked yet
/// ([`Accounts::begin_sign_in`], then [`Accounts::finish_sign_in`]). Its `Debug` shows no
/// password and no hash.
pub struct SignInAttempt {
    user: Option<User>,
    stored: Option<String>,
    password: String,
}

impl SignInAttempt {
    /// The account whose password will be checked: `None` for an unknown or malformed
    /// address, an account that cannot sign in, or a password longer than any allowed (those
    /// are checked against a dummy hash and fail).
    #[must_use]
    pub fn account(&self) -> Option<i64> {
        self.user.as_ref().map(|u| u.id)
    }
}

impl std::fmt::Debug for SignInAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInAttempt")
            .field("account", &self.account())
            .finish_non_exhaustive()
    }
}

/// argon2id cost parameters.
///
/// | field | meaning | default |
/// | --- | --- | --- |
/// | `m_cost` | memory, KiB | 19456 (19 MiB) |
/// | `t_cost` | passes | 2 |
/// | `p_cost` | lanes | 1 |
///
/// Defaults from the OWASP Password Storage Cheat Sheet. Tests lower them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism.
    pub p_cost: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams {
            m_cost: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl PasswordParams {
    /// Very low costs, for tests only (1 MiB, one pass).
    #[must_use]
    pub fn insecure_fast_for_tests() -> Self {
        PasswordParams {
            m_cost: 1024,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// The PHC prefix of hashes made with these parameters:
    /// `$argon2id$v=19$m=19456,t=2,p=1`.
    #[must_use]
    pub fn phc_prefix(self) -> String {
        format!(
            "$argon2id$v=19$m={},t={},p={}",
            self.m_cost, self.t_cost, self.p_cost
        )
    }

    fn hasher(self) -> Result<Argon2<'static>> {
        let params =
            Params::new(self.m_cost, self.t_cost, self.p_cost, None).map_err(Error::internal)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// A signed-up user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// The user's id.
    pub id: i64,
    /// Normalised (lowercased) email.
    pub email: String,
    /// Sign-up time, Unix seconds.
    pub created_at: i64,
    /// When the address was proven by a link; `None` until then (no phone numbers, no
    /// requests, erased after the retention period).
    pub verified_at: Option<i64>,
}

impl User {
    /// Whether the address is verified.
    #[must_use]
    pub fn is_verified(&self) -> bool {
        self.verified_at.is_some()
    }
}

/// What [`Accounts::sign_up`] did. Answer both the same way (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum SignUpOutcome {
    /// A new account was created.
    Created(User),
    /// The address already had an account; nothing changed.
    AlreadyRegistered,
}

impl SignUpOutcome {
    /// The one message shown after a valid sign-up, whatever happened.
    pub const MESSAGE: &'static str = "If this email address was not registered yet, your account has been created: we sent a link to confirm the address. Open it within 24 hours, then sign in.";
}

/// An older parameter set still in use: its PHC prefix and a dummy hash made with it.
type LegacySet = (String, Arc<str>);

/// Sign-up, sign-in and password changes over a [`Db`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    db: Db,
    params: PasswordParams,
    dummy_hash: Arc<str>,
    hashing: Arc<Semaphore>,
    /// Older parameter sets some stored hash still has: (PHC prefix, a dummy hash made with
    /// them). See the module docs.
    legacy: Arc<RwLock<Vec<LegacySet>>>,
    /// argon2 evaluations (hashes and verifications) per PHC prefix, since start.
    work: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Accounts {
    /// Accounts over `db`, hashing with `params`; makes the dummy hash (one argon2id hash).
    ///
    /// # Errors
    /// [`Error::Internal`] when the parameters are out of argon2's range.
    pub async fn new(db: Db, params: PasswordParams) -> Result<Accounts> {
        params.hasher()?;
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hashing = Arc::new(Semaphore::new(permits));
        let mut random = [0_u8; 32];
        rand::thread_rng().fill_bytes(&mut random);
        let dummy = format!("{random:02x?}");
        let dummy_hash = hash_blocking(&hashing, params, dummy).await?;
        let accounts = Accounts {
            db,
            params,
            dummy_hash: dummy_hash.into(),
            hashing,
            legacy: Arc::default(),
            work: Arc::default(),
        };
        accounts.refresh_legacy().await?;
        Ok(accounts)
    }

    /// Looks up which older parameter sets stored hashes still use, and makes a dummy hash
    /// for each new one (see the module docs). Runs at start and after each upgrade.
    ///
    /// # Errors
    /// Database errors; a set argon2 cannot use is skipped (its accounts cannot sign in).
    pub async fn refresh_legacy(&self) -> Result<()> {
        let pattern = format!("{}$%", self.params.phc_prefix());
        let rows = sqlx::query("SELECT password_hash FROM users WHERE password_hash NOT LIKE $1")
            .bind(pattern)
            .fetch_all(self.db.pool())
            .await?;
        let mut prefixes: Vec<String> = Vec::new();
        for row in rows {
            let hash: String = row.try_get("password_hash")?;
            if let Some(prefix) = legacy_prefix(&hash) {
                if !prefixes.contains(&prefix) {
                    prefixes.push(prefix);
                }
            }
        }
        prefixes.sort();
        let known: Vec<LegacySet> = self
            .legacy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut next = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            if let Some(found) = known.iter().find(|(p, _)| *p == prefix) {
                next.push(found.clone());
                continue;
            }
            match dummy_like(&self.hashing, &prefix).await {
                Ok(dummy) => next.push((prefix, dummy.into())),
                Err(e) => {
                    tracing::warn!(error = %e, "stored password hashes with unusable parameters")
                }
            }
        }
        *self.legacy.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }

    /// argon2 evaluations since start, per parameter set (PHC prefix such as
    /// `$argon2id$v=19$m=19456,t=2,p=1`): what each sign-in attempt costs, counted instead of
    /// timed.
    #[must_use]
    pub fn argon2_work(&self) -> BTreeMap<String, u64> {
        self.work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self, prefix: String) {
        *self
            .work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(prefix)
            .or_insert(0) += 1;
    }

    async fn hash_counted(&self, password: String) -> Result<String> {
        self.count(self.params.phc_prefix());
        hash_blocking(&self.hashing, self.params, password).await
    }

    async fn verify_counted(&self, stored: String, password: String) -> Result<(bool, bool)> {
        self.count(legacy_prefix(&stored).unwrap_or_else(|| self.params.phc_prefix()));
        verify_blocking(&self.hashing, self.params, stored, password).await
    }

    /// The database.
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Creates an account when the email is new; see the module docs for why both outcomes
    /// must look the same to the visitor.
    ///
    /// # Errors
    /// [`Error::Invalid`] (fields `email`, `password`) when the input breaks a rule;
    /// [`Error::Unavailable`] / [`Error::Internal`] from the database.
    pub async fn sign_up(&self, input: &SignUpInput) -> Result<SignUpOutcome> {
        let sign_up = input.validate()?;
        // Hash first: an existing address costs the same as a new one.
        let hash = self.hash_counted(sign_up.password).await?;
        let created_at = now_unix();
        for _ in 0..3 {
            let id = new_id();
            let result = sqlx::query(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(id)
            .bind(&sign_up.email)
            .bind(&hash)
            .bind(created_at)
            .execute(self.db.pool())
            .await
            .map_err(Error::from);
            match result {
                Ok(done) if done.rows_affected() == 0 => {
                    return Ok(SignUpOutcome::AlreadyRegistered)
                }
                Ok(_) => {
                    return Ok(SignUpOutcome::Created(User {
                        id,
                        email: sign_up.email,
                        created_at,
                        verified_at: None,
                    }))
                }
                // A random id collided (2^-53 odds): draw another.
                Err(Error::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict)
    }

    /// Checks an email and password. `Ok(None)` for every kind of failure (unknown email,
    /// wrong password, malformed input, login-disabled account), each costing one argon2id
    /// verification. [`begin_sign_in`](Self::begin_sign_in) then
    /// [`finish_sign_in`](Self::finish_sign_in), for a caller with nothing to do between.
    ///
    /// # Errors
    /// Only database and internal errors.
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<Option<User>> {
        let attempt = self.begin_sign_in(email, password).await?;
        self.finish_sign_in(attempt).await
    }

    /// The first half of a sign-in: looks the address up, checks no password yet. The
    /// attempt's [`account`](SignInAttempt::account) is the id of the account whose password
    /// [`finish_sign_in`](Self::finish_sign_in) will check, if any: the HTTP layer reads that
    /// account's credentials epoch in between, *before* the password is checked (see
    /// [`buttress::session::Session::credentials_epoch`]). Costs one database read, known
    /// address or not.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), buttress_portal::Error> {
    /// use buttress_portal::{Accounts, Db, PasswordParams, SignUpOutcome};
    /// use buttress_portal::validate::SignUpInput;
    /// let db = Db::in_memory().await?;
    /// let accounts = Accounts::new(db, PasswordParams::insecure_fast_for_tests()).await?;
    /// let input = SignUpInput { email: "ada@example.org".into(), password: "correct horse battery".into() };
    /// let SignUpOutcome::Created(ada) = accounts.sign_up(&input).await? else { unreachable!() };
    ///
    /// let attempt = accounts.begin_sign_in("ada@example.org", "correct horse battery").await?;
    /// assert_eq!(attempt.account(), Some(ada.id));
    /// // … read the account's credentials epoch here …
    /// assert_eq!(accounts.finish_sign_in(attempt).await?.map(|u| u.id), Some(ada.id));
    ///
    /// let unknown = accounts.begin_sign_in("nobody@example.org", "correct horse battery").await?;
    /// assert_eq!(unknown.account(), None);
    /// assert!(accounts.finish_sign_in(unknown).await?.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Only database errors.
    pub async fn begin_sign_in(&self, email: &str, password: &str) -> Result<SignInAttempt> {
        let found = match normalize_email(email) {
            Ok(email) => self.user_with_hash(&email).await?,
            Err(_) => None,
        };
        let too_long = password.chars().count() > PASSWORD_MAX_CHARS;
        let (user, stored) = match found {
            Some((user, hash)) if !too_long && PasswordHash::new(&hash).is_ok() => {
                (Some(user), Some(hash))
            }
            _ => (None, None),
        };
        let password = if too_long {
            String::new()
        } else {
            password.to_owned()
        };
        Ok(SignInAttempt {
            user,
            stored,
            password,
        })
    }

    /// The second half of a sign-in: checks the password of a
    /// [`begin_sign_in`](Self::begin_sign_in) attempt, with the same argon2 work whatever the
    /// account (module docs). `Ok(None)` for every kind of failure.
    ///
    /// # Errors
    /// Only database and internal errors.
    pub async fn finish_sign_in(&self, attempt: SignInAttempt) -> Result<Option<User>> {
        let SignInAttempt {
            user,
            stored,
            password,
        } = attempt;
        // One verification per parameter set in use (module docs): the account's own hash
        // for its set, a dummy for every other.
        let stored_prefix = stored.as_deref().and_then(legacy_prefix);
        let current = self.params.phc_prefix();
        let mut sets: Vec<LegacySet> = vec![(current.clone(), self.dummy_hash.clone())];
        sets.extend(
            self.legacy
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|(p, _)| *p != current)
                .cloned(),
        );
        let own_set = match &stored_prefix {
            Some(p) => sets.iter().position(|(q, _)| q == p),
            None => None,
        };
        // A hash whose set is not listed yet (it appeared after the last look): verify it in
        // the current set's place, and look again.
        let own_set = match (own_set, &stored) {
            (None, Some(_)) => {
                let accounts = self.clone();
                tokio::spawn(async move {
                    let _ = accounts.refresh_legacy().await;
                });
                Some(0)
            }
            (found, _) => found,
        };
        let mut ok = false;
        let mut needs_rehash = false;
        for (i, (_, dummy)) in sets.iter().enumerate() {
            match (&stored, own_set == Some(i)) {
                (Some(hash), true) => {
                    (ok, needs_rehash) =
                        self.verify_counted(hash.clone(), password.clone()).await?;
                }
                _ => {
                    let _ = self
                        .verify_counted(dummy.to_string(), password.clone())
                        .await?;
                }
            }
        }
        match (user, stored) {
            (Some(user), Some(old)) if ok => {
                if needs_rehash {
                    // Best effort: the sign-in succeeds even if the upgrade does not.
                    if let Ok(hash) = self.hash_counted(password).await {
                        if let Ok(true) = self.replace_hash(user.id, &old, &hash).await {
                            let _ = self.refresh_legacy().await;
                        }
                    }
                }
                Ok(Some(user))
            }
            _ => Ok(None),
        }
    }

    /// Changes a signed-in user's password after checking the current one. The session layer
    /// should then rotate this session and revoke the user's other sessions.
    ///
    /// # Errors
    /// [`Error::Invalid`] listing `current_password` (not right) and/or `new_password` (breaks
    /// the policy, or equals the current one); [`Error::NotFound`] for an unknown user.
    pub async fn change_password(&self, user_id: i64, input: &ChangePasswordInput) -> Result<()> {
        let row = sqlx::query("SELECT email, password_hash FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound)?;
        let email: String = row.try_get("email")?;
        let stored: String = row.try_get("password_hash")?;
        let stored = if PasswordHash::new(&stored).is_ok() {
            stored
        } else {
            self.dummy_hash.to_string()
        };
        let current = if input.current_password.chars().count() > PASSWORD_MAX_CHARS {
            String::new()
        } else {
            input.current_password.clone()
        };
        let (ok, _) = self.verify_counted(stored, current).await?;
        let mut errors = Vec::new();
        if !ok {
            errors.push(FieldError::new(
                "current_password",
                "Your current password is not right.",
            ));
        }
        if let Some(problem) = password_problem(&input.new_password, &email) {
            errors.push(FieldError::new("new_password", problem));
        } else if input.new_password == input.current_password {
            errors.push(FieldError::new(
                "new_password",
                "Choose a password different from the current one.",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let hash = self.hash_counted(input.new_password.clone()).await?;
        self.set_hash(user_id, &hash).await
    }

    /// Sets a new password from a reset link (the link proved the address, so the account
    /// counts as verified too). The caller signs every session of the account out.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`new_password`) when it breaks the policy; [`Error::NotFound`].
    pub async fn reset_password(&self, user_id: i64, new_password: &str) -> Result<()> {
        let user = self.user(user_id).await?.ok_or(Error::NotFound)?;
        if let Some(problem) = password_problem(new_password, &user.email) {
            return Err(Error::Invalid(vec![FieldError::new(
                "new_password",
                problem,
            )]));
        }
        let hash = self.hash_counted(new_password.to_owned()).await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, verified_at = COALESCE(verified_at, $2) WHERE id = $3",
        )
        .bind(hash)
        .bind(now_unix())
        .bind(user_id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Marks the account's address as verified (once: a later call keeps the first time).
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_verified(&self, user_id: i64) -> Result<()> {
        sqlx::query("UPDATE users SET verified_at = COALESCE(verified_at, $1) WHERE id = $2")
            .bind(now_unix())
            .bind(user_id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Checks `password` for a signed-in user (re-authentication before export or erasure).
    /// Costs one argon2 verification.
    ///
    /// # Errors
    /// Database errors.
    pub async fn check_password(&self, user_id: i64, password: &str) -> Result<bool> {
        let stored: Option<String> = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|row| row.try_get("password_hash"))
            .transpose()?;
        let (stored, real) = match stored {
            Some(h) if PasswordHash::new(&h).is_ok() => (h, true),
            _ => (self.dummy_hash.to_string(), false),
        };
        let password = if password.chars().count() > PASSWORD_MAX_CHARS {
            String::new()
        } else {
            password.to_owned()
        };
        let (ok, _) = self.verify_counted(stored, password).await?;
        Ok(ok && real)
    }

    /// The account with this (normalised or not) email, if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        Ok(self.user_with_hash(&email).await?.map(|(u, _)| u))
    }

    /// Erases accounts whose address was not verified within `retention` of signing up (with
    /// everything that belongs to them, by cascade); returns how many went.
    ///
    /// # Errors
    /// Database errors.
    pub async fn purge_unverified(&self, retention: std::time::Duration) -> Result<u64> {
        let cutoff = now_unix() - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX / 2);
        let done = sqlx::query("DELETE FROM users WHERE verified_at IS NULL AND created_at < $1")
            .bind(cutoff)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// The user with this id, if any.
    ///
    /// # Errors
    /// Only database errors.
    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let sql = "SELECT id, email, created_at, verified_at FROM users WHERE id = $1";
        self.db
            .read_one(sql, &[crate::query::Arg::Int(id)], |row| {
                Ok(User {
                    id: row.int("id")?,
                    email: row.text("email")?,
                    created_at: row.int("created_at")?,
                    verified_at: row.opt_int("verified_at")?,
                })
            })
            .await
    }

    async fn user_with_hash(&self, email: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(
            "SELECT id, email, password_hash, created_at, verified_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok((
                User {
                    id: row.try_get("id")?,
                    email: row.try_get("email")?,
                    created_at: row.try_get("created_at")?,
                    verified_at: row.try_get("verified_at")?,
                },
                row.try_get("password_hash")?,
            ))
        })
        .transpose()
    }

    /// Upgrades the hash only if it is still `old`: a password changed in the meantime wins.
    async fn replace_hash(&self, user_id: i64, old: &str, hash: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                .bind(hash)
                .bind(user_id)
                .bind(old)
                .execute(self.db.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

/// The PHC prefix (`$argon2id$v=19$m=…,t=…,p=…`) of a stored hash, or `None` when it does not
/// parse as argon2.
fn legacy_prefix(hash: &str) -> Option<String> {
    let parsed = PasswordHash::new(hash).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    Some(format!(
        "${}$v={}$m={},t={},p={}",
        parsed.algorithm.as_str(),
        parsed.version.unwrap_or(0x13),
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    ))
}

/// A hash of a random password made with the algorithm, version and parameters of `prefix`.
async fn dummy_like(limit: &Semaphore, prefix: &str) -> Result<String> {
    let mut salt = [0_u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(Error::internal)?;
    let sample = format!(
        "{prefix}${}$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        salt.as_str()
    );
    let _permit = limit.acquire().await.map_err(Error::internal)?;
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&sample).map_err(Error::internal)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(Error::internal)?;
        let version = Version::try_from(parsed.version.unwrap_or(0x13)).map_err(Error::internal)?;
        let params = Params::try_from(&parsed).map_err(Error::internal)?;
        let mut random = [0_u8; 32];
        rand::thread_rng().fill_bytes(&mut random);
        Argon2::new(algorithm, version, params)
            .hash_password(&random, &salt)
            .map(|h| h.to_string())
            .map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

/// Hashes `password` with fresh salt on the blocking pool.
pub(crate) async fn hash_blocking(
    limit: &Semaphore,
    params: PasswordParams,
    password: String,
) -> Result<String> {
    let _permit = limit.acquire().await.map_err(Error::internal)?;
    tokio::task::spawn_blocking(move || hash_password(params, &password))
        .await
        .map_err(Error::internal)?
}

/// Hashes `password` with argon2id and a random 16-byte salt, as a PHC string.
pub(crate) fn hash_password(params: PasswordParams, password: &str) -> Result<String> {
    let mut salt = [0_u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(Error::internal)?;
    params
        .hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Error::internal)
}

/// (password matches, hash was made with other parameters than `params`)
async fn verify_blocking(
    limit: &Semaphore,
    params: PasswordParams,
    stored: String,
    password: String,
) -> Result<(bool, bool)> {
    let _permit = limit.acquire().await.map_err(Error::internal)?;
    tokio::task::spawn_blocking(move || {
        let hash = PasswordHash::new(&stored).map_err(Error::internal)?;
        let ok = params
            .hasher()?
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        let current = Params::try_from(&hash).ok().map(|p| {
            hash.algorithm.as_str() == "argon2id"
                && (p.m_cost(), p.t_cost(), p.p_cost())
                    == (params.m_cost, params.t_cost, params.p_cost)
        });
        Ok((ok, current != Some(true)))
    })
    .await
    .map_err(Error::internal)?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::validate::SignUpInput;

    /// The upgrade after a sign-in writes only over the hash it verified: a password changed
    /// in between (here: by hand) is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_rehash_write_is_conditional_on_the_old_hash() {
        let db = Db::in_memory().await.unwrap();
        let accounts = Accounts::new(db.clone(), PasswordParams::insecure_fast_for_tests())
            .await
            .unwrap();
        let input = SignUpInput {
            email: "ada@example.org".into(),
            password: "correct horse battery".into(),
        };
        let SignUpOutcome::Created(user) = accounts.sign_up(&input).await.unwrap() else {
            panic!("created")
        };
        let stored = || async {
            sqlx::query("SELECT password_hash FROM users WHERE id = $1")
                .bind(user.id)
                .fetch_one(db.pool())
                .await
                .unwrap()
                .try_get::<String, _>(0)
                .unwrap()
        };
        let verified = stored().await;
        // A password change lands between the verification and the upgrade.
        accounts
            .set_hash(user.id, "changed-meanwhile")
            .await
            .unwrap();
        assert!(!accounts
            .replace_hash(user.id, &verified, "upgrade-of-the-old")
            .await
            .unwrap());
        assert_eq!(stored().await, "changed-meanwhile");
        // Without a change in between, the upgrade lands.
        assert!(accounts
            .replace_hash(user.id, "changed-meanwhile", "upgraded")
            .await
            .unwrap());
        assert_eq!(stored().await, "upgraded");
    }
}

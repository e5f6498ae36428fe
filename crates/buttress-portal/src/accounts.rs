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
//! * Residual: someone who signs up with an address that already exists learns it when their
//!   chosen password then fails to sign in. Closing that needs an emailed confirmation link,
//!   which the portal does not send; rate limits on sign-up and sign-in bound the probing.
//!
//! # Hashing
//!
//! argon2id (RFC 9106) with [`PasswordParams`] (OWASP Password Storage Cheat Sheet: m = 19 MiB,
//! t = 2, p = 1), a 16-byte random salt, PHC string format. Hashing runs on
//! `tokio::task::spawn_blocking`, at most as many at once as the machine has cores (a
//! semaphore), so a flood of sign-ins cannot take all memory. A hash made with other
//! parameters is upgraded on the next successful sign-in.

use std::sync::Arc;

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
    pub const MESSAGE: &'static str = "If this email address was not registered yet, your account has been created. Sign in to continue.";
}

/// Sign-up, sign-in and password changes over a [`Db`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    db: Db,
    params: PasswordParams,
    dummy_hash: Arc<str>,
    hashing: Arc<Semaphore>,
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
        Ok(Accounts {
            db,
            params,
            dummy_hash: dummy_hash.into(),
            hashing,
        })
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
        let hash = hash_blocking(&self.hashing, self.params, sign_up.password).await?;
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
    /// verification.
    ///
    /// # Errors
    /// Only database and internal errors.
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<Option<User>> {
        let found = match normalize_email(email) {
            Ok(email) => self.user_with_hash(&email).await?,
            Err(_) => None,
        };
        let too_long = password.chars().count() > PASSWORD_MAX_CHARS;
        let (user, stored) = match found {
            Some((user, hash)) if !too_long && PasswordHash::new(&hash).is_ok() => {
                (Some(user), hash)
            }
            _ => (None, self.dummy_hash.to_string()),
        };
        let password = if too_long {
            String::new()
        } else {
            password.to_owned()
        };
        let (ok, needs_rehash) =
            verify_blocking(&self.hashing, self.params, stored, password.clone()).await?;
        match user {
            Some(user) if ok => {
                if needs_rehash {
                    // Best effort: the sign-in succeeds even if the upgrade does not.
                    if let Ok(hash) = hash_blocking(&self.hashing, self.params, password).await {
                        let _ = self.set_hash(user.id, &hash).await;
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
        let (ok, _) = verify_blocking(&self.hashing, self.params, stored, current).await?;
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
        let hash = hash_blocking(&self.hashing, self.params, input.new_password.clone()).await?;
        self.set_hash(user_id, &hash).await
    }

    /// The user with this id, if any.
    ///
    /// # Errors
    /// Only database errors.
    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let sql = "SELECT id, email, created_at FROM users WHERE id = $1";
        self.db
            .read_one(sql, &[crate::query::Arg::Int(id)], |row| {
                Ok(User {
                    id: row.int("id")?,
                    email: row.text("email")?,
                    created_at: row.int("created_at")?,
                })
            })
            .await
    }

    async fn user_with_hash(&self, email: &str) -> Result<Option<(User, String)>> {
        let row =
            sqlx::query("SELECT id, email, password_hash, created_at FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(self.db.pool())
                .await?;
        row.map(|row| {
            Ok((
                User {
                    id: row.try_get("id")?,
                    email: row.try_get("email")?,
                    created_at: row.try_get("created_at")?,
                },
                row.try_get("password_hash")?,
            ))
        })
        .transpose()
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

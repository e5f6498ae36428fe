//! Hardened sessions: encrypted cookies or server-side stores behind one [`Session`] API.
//!
//! | property | Buttress | Flask / Django / tower-sessions (where they fall short) |
//! |---|---|---|
//! | cookie | `__Host-` prefix, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain` | Flask signs but does not encrypt, no prefix |
//! | cookie mode | XAES-256-GCM (192-bit random nonces); cookie name, purpose and times authenticated inside | Flask: readable payload, expiry only in the browser |
//! | store mode | 256-bit ids; the store keeps an HMAC of the id under a keyring sub-key and the application id, so a leaked store holds no usable id | Django stores raw keys |
//! | timeouts | idle (30 min) **and** absolute (12 h), both checked on the server against the current settings (a lowered absolute timeout shortens existing sessions) | Flask: one lifetime, enforced by the browser |
//! | key rotation | a cookie made with a fallback key opens and is re-issued under the primary; a stored session filed under a fallback key is still found | |
//! | fixation | `cycle_id()` (and `set_user`) deletes the old record and rotates the CSRF secret | tower-sessions: manual |
//! | revocation | list a user's sessions, revoke one or all ("sign out everywhere") | Flask: none |
//! | sign-out | `flush` (logout), `revoke_others` ("sign out everywhere", password change) end every copy of a session in every mode, on every instance sharing the [`SignOuts`]: revoked cookie sessions and per-user credentials epochs, checked on every signed-in request (see [`SignOuts`]) | Flask, tower-sessions' cookie store: a copied cookie lives until it expires |
//! | sign-in race | [`Session::credentials_epoch`] before the password check, [`Session::set_user_checked`] after: a "sign out everywhere" that ran meanwhile ends the new session too | |
//! | per-user cap | at most [`DEFAULT_MAX_PER_USER`] (50) signed-in sessions per user in a store; the least recently active go first | one account can fill a store |
//! | shared Redis or database | keys, rows, user indexes and login-throttle keys carry the application id ([`AppId`](crate::secret::AppId), `BUTTRESS_APP_ID`, derived from the key by default), and cookies are sealed to it | one namespace for everyone |
//! | concurrency | per-key patches merged with compare-and-swap: parallel requests do not lose each other's writes | last write wins silently |
//! | caching | a response whose request read its session is `Cache-Control: no-store` (unless the handler set its own) and `Vary: Cookie`; one that sets a cookie is `no-store` | Django: `Vary: Cookie` only; Flask: nothing |
//!
//! Sessions load lazily: a request that never touches its session costs nothing. A request that
//! does counts as activity; `last_seen` is written at most once per `touch_interval` (60 s) so
//! read-only traffic keeps a session alive without a write per request. A signed-in request
//! also asks the sign-outs whether its session still stands (one lookup in memory, about
//! 0.1 µs; one round trip to Redis or the database when they keep the sign-outs).
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use buttress::secret::Keyring;
//! use buttress::session::{Session, SessionLayer};
//!
//! async fn visits(session: Session) -> Result<String, buttress::session::SessionError> {
//!     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", n).await?;
//!     Ok(format!("visit {n}"))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionLayer::cookie(&Keyring::ephemeral()));
//! ```
//!
//! # Deployment caveat
//!
//! Cookie mode keeps the session in the browser: a sign-out is remembered on the server (see
//! [`SignOuts`]), in this process's memory unless `REDIS_URL` is set, so several instances
//! serving cookie sessions need Redis for a logout to hold on all of them (`buttress check`
//! says so: `BTR-W011`). Two parallel requests that both write may race (the later
//! response's cookie wins). Use a server-side store (memory for one instance; SQL or Redis for
//! several) where that matters. Deployments that share a Redis or a database but also a key
//! (staging and production) must each set their own `BUTTRESS_APP_ID`.

pub mod codec;
mod config;
mod error;
mod handle;
mod layer;
mod payload;
pub(crate) mod record;
#[cfg(feature = "redis")]
pub mod redis;
mod scope;
mod signout;
#[cfg(feature = "sql")]
pub mod sql;
mod store;
mod xaes;

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use http::StatusCode;

pub(crate) use config::Config;
pub use error::StoreError;
pub use handle::{Session, SessionInfo};
pub(crate) use layer::{begin_seen, finish, Finish, Seen};
pub use layer::{SessionFuture, SessionLayer, SessionService};
pub use record::{Record, SessionData, SessionId, StoreKey};
pub use signout::{
    Epoch, MemorySignOuts, SignOutCheck, SignOuts, DEFAULT_MAX_SIGN_OUTS, SIGN_OUT_MARGIN_SECS,
};
pub use store::{Cas, MemoryStore, SessionStore, DEFAULT_MAX_RECORDS};

use crate::errors::Problem;

/// The purpose string of the session cookie's sub-key.
pub const COOKIE_PURPOSE: &str = "session-cookie";

/// A clock returning Unix seconds; injectable for tests of timeouts.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// Default idle timeout: 30 minutes (the article's `PERMANENT_SESSION_LIFETIME`).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
/// Default absolute timeout: 12 hours.
pub const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
/// Default interval between idle-clock refreshes of a read-only session.
pub const DEFAULT_TOUCH: Duration = Duration::from_secs(60);
/// Default number of signed-in sessions one user may hold in a server-side store.
pub const DEFAULT_MAX_PER_USER: usize = 50;

/// The `SameSite` attribute of cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites, not on their sub-requests or POSTs.
    #[default]
    Lax,
    /// Never sent from another site.
    Strict,
    /// Always sent (requires `Secure`); weakens CSRF defence.
    None,
}

impl std::str::FromStr for SameSite {
    type Err = SessionError;
    /// `lax`, `strict` or `none`, any case.
    fn from_str(s: &str) -> Result<Self, SessionError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            other => Err(SessionError::Value(format!(
                "{other:?} is not a SameSite value"
            ))),
        }
    }
}

/// Where sessions are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionStoreKind {
    /// Encrypted cookies: no server state, no revocation.
    #[default]
    Cookie,
    /// This process's memory: one instance only.
    Memory,
    /// The SQL database (`DATABASE_URL`).
    Sql,
    /// Redis (`REDIS_URL`).
    Redis,
}

impl SessionStoreKind {
    /// `cookie`, `memory`, `sql` or `redis`.
    ///
    /// ```
    /// assert_eq!(buttress::session::SessionStoreKind::Sql.as_str(), "sql");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStoreKind::Cookie => "cookie",
            SessionStoreKind::Memory => "memory",
            SessionStoreKind::Sql => "sql",
            SessionStoreKind::Redis => "redis",
        }
    }
}

impl std::str::FromStr for SessionStoreKind {
    type Err = SessionError;
    /// `cookie`, `memory`, `sql` or `redis`, any case.
    fn from_str(s: &str) -> Result<Self, SessionError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cookie" => Ok(SessionStoreKind::Cookie),
            "memory" => Ok(SessionStoreKind::Memory),
            "sql" => Ok(SessionStoreKind::Sql),
            "redis" => Ok(SessionStoreKind::Redis),
            other => Err(SessionError::Value(format!(
                "{other:?} is not a session store"
            ))),
        }
    }
}

/// A session operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store could not be reached: answered with 503.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session would not fit in a cookie.
    #[error("the session is {size} bytes encoded, over the {limit}-byte cookie limit; keep less in the session or use a server-side store")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit (4096).
        limit: usize,
    },
    /// A value could not be serialized or deserialized as the requested type.
    #[error("a session value could not be (de)serialized: {0}")]
    Value(String),
    /// The session could not be encoded.
    #[error("the session could not be encoded")]
    Encode,
    /// Listing and revoking need a server-side store.
    #[error("this operation needs a server-side session store")]
    NeedsStore,
    /// [`SessionLayer`] is not installed.
    #[error("SessionLayer is not installed in front of this handler")]
    MissingLayer,
}

impl IntoResponse for SessionError {
    fn into_response(self) -> axum::response::Response {
        match &self {
            SessionError::Store(_) => {
                tracing::error!(error = %self, "session store failure");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .with_kind("session-store-unavailable")
                    .with_detail("Sessions are unavailable for a moment. Please try again shortly.")
                    .into_response()
            }
            _ => {
                tracing::error!(error = %self, "session error");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests;

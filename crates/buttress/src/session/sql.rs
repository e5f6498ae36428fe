//! Sessions in SQLite or PostgreSQL through sqlx's `Any` driver (feature `sql`).
//!
//! One table of sessions and two of sign-outs, created and migrated by [`SqlStore::migrate`];
//! the same SQL runs on both databases. The primary key is a keyed HMAC of the session id
//! (never the id), and every row carries the application id (`app_id`) of the store it was
//! written through ([`SessionStore::for_app`], which the session layer calls): listings,
//! deletions and sweeps touch the rows of one application only, so deployments that share a
//! database never see each other's sessions. Writes are compare-and-swap on `version`.
//! Database errors become [`StoreError`] (a 503 for the request) with the driver's message
//! kept in the logs, never in the response.
//!
//! **Migration.** A table made before application ids gets an `app_id` column whose value for
//! the old rows is `-`, which no application id can be (they start with a letter or digit), so
//! an old row is never read or listed as an application's; old rows are keyed by an unkeyed
//! SHA-256 that no current store key equals, and are swept when their deadline passes. The
//! migration is idempotent and safe to run from several instances at once.
//!
//! ```no_run
//! use buttress::session::sql::SqlStore;
//! # async fn run() -> Result<(), buttress::session::StoreError> {
//! sqlx::any::install_default_drivers();
//! let pool = sqlx::AnyPool::connect("sqlite::memory:").await.map_err(|e| buttress::session::StoreError(e.to_string()))?;
//! let store = SqlStore::new(pool);
//! store.migrate().await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{AnyPool, Row as _};

use super::error::StoreError;
use super::record::{Record, SessionData, StoreKey};
use super::signout::{next_epoch, SignOutCheck, SignOuts, SIGN_OUT_MARGIN_SECS};
use super::store::{Cas, SessionStore};
use crate::secret::AppId;

/// The `app_id` of rows written before application ids: no application's.
const LEGACY_APP: &str = "-";

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS buttress_sessions (
        store_key TEXT PRIMARY KEY,
        user_id TEXT NULL,
        data TEXT NOT NULL,
        version BIGINT NOT NULL,
        deadline BIGINT NOT NULL,
        app_id TEXT NOT NULL DEFAULT '-'
    )",
    "CREATE INDEX IF NOT EXISTS buttress_sessions_user ON buttress_sessions (user_id)",
    "CREATE INDEX IF NOT EXISTS buttress_sessions_deadline ON buttress_sessions (deadline)",
];

/// Run once `app_id` exists (added to older tables by [`SqlStore::migrate`]).
const SCHEMA_AFTER_APP_ID: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS buttress_sessions_app_user ON buttress_sessions (app_id, user_id)",
    "CREATE TABLE IF NOT EXISTS buttress_session_epochs (
        app_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        until_at BIGINT NOT NULL,
        PRIMARY KEY (app_id, user_id)
    )",
    "CREATE TABLE IF NOT EXISTS buttress_session_revoked (
        app_id TEXT NOT NULL,
        sid TEXT NOT NULL,
        until_at BIGINT NOT NULL,
        PRIMARY KEY (app_id, sid)
    )",
];

/// The statement [`SqlStore`] loads a record with: `$1` the store key, `$2` now (Unix
/// seconds); columns `data`, `version`, `deadline`, to be read with [`SqlStore::record`]. For
/// an application that reads the table another way (the portal's reads on the calling
/// thread) and wants the same record. The store key is an HMAC under the application's own
/// key and id, so it names one application's row; [`SqlStore`]'s own load also checks
/// `app_id`.
pub const LOAD_STATEMENT: &str =
    "SELECT data, version, deadline FROM buttress_sessions WHERE store_key = $1 AND deadline > $2";

/// [`LOAD_STATEMENT`] that also checks the row's application: `$3` is
/// [`SqlStore::app_id`] of a store bound with [`SqlStore::bound_to`]. What [`SqlStore`]'s own
/// load runs.
pub const LOAD_FOR_APP_STATEMENT: &str = "SELECT data, version, deadline FROM buttress_sessions WHERE store_key = $1 AND deadline > $2 AND app_id = $3";

/// The statement [`SqlSignOuts::check`](SignOuts::check) runs: `$1` the application id, `$2`
/// the user, `$3` now (Unix seconds), `$4` the cookie session's `sid` (`""` for none); one row
/// with columns `epoch` (nullable integer: the user's live credentials epoch, NULL for 0) and
/// `revoked` (how many live revocations of `$4`). For an application that reads the tables
/// another way (the portal's reads on the calling thread) and wants the same answer.
pub const SIGN_OUT_CHECK_STATEMENT: &str = "SELECT (SELECT epoch FROM buttress_session_epochs WHERE app_id = $1 AND user_id = $2 AND until_at > $3) AS epoch, \
     (SELECT COUNT(*) FROM buttress_session_revoked WHERE app_id = $1 AND sid = $4 AND until_at > $3) AS revoked";

/// A session store on an sqlx `AnyPool` (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// The application whose rows this store reads and writes ("" until bound).
    app: String,
}

fn unavailable(e: sqlx::Error) -> StoreError {
    tracing::error!(error = %e, "session database error");
    StoreError("the session database is unavailable".into())
}

fn version_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqlStore {
    /// A store on `pool`. Call [`SqlStore::migrate`] once at start-up. The session layer binds
    /// it to its application ([`SessionStore::for_app`]); until then its rows have an empty
    /// `app_id`.
    pub fn new(pool: AnyPool) -> Self {
        SqlStore {
            pool,
            app: String::new(),
        }
    }

    /// This store bound to application `app`: its rows carry `app`, and it reads, lists and
    /// sweeps only those (what [`SessionStore::for_app`] returns, as a concrete type for an
    /// application that wraps the store, as the portal does).
    ///
    /// ```no_run
    /// # async fn run(pool: sqlx::AnyPool) {
    /// use buttress::{secret::AppId, session::sql::SqlStore};
    /// let store = SqlStore::new(pool).bound_to(&AppId::new("shop").unwrap());
    /// assert_eq!(store.app_id(), "shop");
    /// # }
    /// ```
    pub fn bound_to(&self, app: &AppId) -> SqlStore {
        SqlStore {
            pool: self.pool.clone(),
            app: app.as_str().to_owned(),
        }
    }

    /// The application whose rows this store reads and writes (`""` until bound).
    pub fn app_id(&self) -> &str {
        &self.app
    }

    /// Creates the session and sign-out tables and their indexes if missing, and adds
    /// `app_id` to a session table made before it (see the module docs).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        for stmt in SCHEMA {
            sqlx::query(stmt)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        }
        if !self.has_app_id().await {
            let added = sqlx::query(
                "ALTER TABLE buttress_sessions ADD COLUMN app_id TEXT NOT NULL DEFAULT '-'",
            )
            .execute(&self.pool)
            .await;
            // Another instance may have added it first.
            if let Err(e) = added {
                if !self.has_app_id().await {
                    return Err(unavailable(e));
                }
            }
        }
        for stmt in SCHEMA_AFTER_APP_ID {
            sqlx::query(stmt)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn has_app_id(&self) -> bool {
        sqlx::query("SELECT app_id FROM buttress_sessions WHERE 1 = 0")
            .fetch_optional(&self.pool)
            .await
            .is_ok()
    }

    fn decode(text: &str) -> Result<SessionData, StoreError> {
        serde_json::from_str(text)
            .map_err(|_| StoreError("a stored session does not decode".into()))
    }

    /// The record in one row of [`LOAD_STATEMENT`] (its `data`, `version` and `deadline`).
    ///
    /// ```
    /// use buttress::session::sql::SqlStore;
    /// let record = SqlStore::record(r#"{"iat":1,"exp":90,"seen":1}"#, 3, 60).unwrap();
    /// assert_eq!((record.version, record.deadline, record.data.expires), (3, 60, 90));
    /// assert!(SqlStore::record("not a session", 3, 60).is_err());
    /// ```
    ///
    /// # Errors
    /// [`StoreError`] when `data` is not a stored session.
    pub fn record(data: &str, version: i64, deadline: i64) -> Result<Record, StoreError> {
        Ok(Record {
            data: Self::decode(data)?,
            version: u64::try_from(version).unwrap_or(0),
            deadline,
        })
    }
}

impl SessionStore for SqlStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(LOAD_FOR_APP_STATEMENT)
                .bind(&key.0)
                .bind(now)
                .bind(&self.app)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
            let Some(row) = row else { return Ok(None) };
            let data: String = row.try_get("data").map_err(unavailable)?;
            let version: i64 = row.try_get("version").map_err(unavailable)?;
            let deadline: i64 = row.try_get("deadline").map_err(unavailable)?;
            Self::record(&data, version, deadline).map(Some)
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Option<u64>,
        data: &'a SessionData,
        deadline: i64,
    ) -> BoxFuture<'a, Result<Cas, StoreError>> {
        Box::pin(async move {
            let json = serde_json::to_string(data)
                .map_err(|_| StoreError("session does not encode".into()))?;
            let result = match expected {
                None => sqlx::query(
                    "INSERT INTO buttress_sessions (store_key, user_id, data, version, deadline, app_id) VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (store_key) DO NOTHING",
                )
                .bind(&key.0)
                .bind(data.user.clone())
                .bind(json)
                .bind(deadline)
                .bind(&self.app)
                .execute(&self.pool)
                .await,
                Some(v) => sqlx::query(
                    "UPDATE buttress_sessions SET user_id = $1, data = $2, version = $3, deadline = $4 WHERE store_key = $5 AND version = $6 AND app_id = $7",
                )
                .bind(data.user.clone())
                .bind(json)
                .bind(version_i64(v + 1))
                .bind(deadline)
                .bind(&key.0)
                .bind(version_i64(v))
                .bind(&self.app)
                .execute(&self.pool)
                .await,
            };
            let done = result.map_err(unavailable)?.rows_affected() == 1;
            Ok(if done { Cas::Done } else { Cas::Conflict })
        })
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let r =
                sqlx::query("DELETE FROM buttress_sessions WHERE store_key = $1 AND app_id = $2")
                    .bind(&key.0)
                    .bind(&self.app)
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn list_user<'a>(
        &'a self,
        user: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, SessionData)>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT store_key, data FROM buttress_sessions WHERE app_id = $1 AND user_id = $2 AND deadline > $3")
                .bind(&self.app)
                .bind(user)
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(|row| {
                    let key: String = row.try_get("store_key").map_err(unavailable)?;
                    let data: String = row.try_get("data").map_err(unavailable)?;
                    Ok((StoreKey(key), Self::decode(&data)?))
                })
                .collect()
        })
    }

    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let r = sqlx::query(
                "DELETE FROM buttress_sessions WHERE deadline <= $1 AND (app_id = $2 OR app_id = $3)",
            )
            .bind(now)
            .bind(&self.app)
            .bind(LEGACY_APP)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok(r.rows_affected())
        })
    }

    fn for_app(&self, app: &AppId) -> Option<Arc<dyn SessionStore>> {
        Some(Arc::new(self.bound_to(app)))
    }

    fn sign_outs(&self) -> Option<Arc<dyn SignOuts>> {
        Some(Arc::new(SqlSignOuts::new(self.pool.clone())))
    }
}

/// Sign-outs in the session database (tables `buttress_session_epochs` and
/// `buttress_session_revoked`, made by [`SqlStore::migrate`]): every instance on the database
/// sees them. [`SqlStore::sign_outs`](SessionStore::sign_outs) gives one on the store's pool.
///
/// ```no_run
/// # async fn run(pool: sqlx::AnyPool) -> Result<(), buttress::session::StoreError> {
/// use buttress::session::{sql::SqlSignOuts, SignOuts};
/// let outs = SqlSignOuts::new(pool);
/// let app = buttress::secret::AppId::new("shop").unwrap();
/// outs.bump(&app, "42", 1_700_000_000, 43_200).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqlSignOuts {
    pool: AnyPool,
}

impl SqlSignOuts {
    /// Sign-outs on `pool` (migrated by [`SqlStore::migrate`]).
    pub fn new(pool: AnyPool) -> Self {
        SqlSignOuts { pool }
    }
}

impl SignOuts for SqlSignOuts {
    fn check<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        sid: Option<&'a str>,
        now: i64,
    ) -> BoxFuture<'a, Result<SignOutCheck, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(SIGN_OUT_CHECK_STATEMENT)
                .bind(app.as_str())
                .bind(user)
                .bind(now)
                .bind(sid.unwrap_or(""))
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?;
            let epoch: Option<i64> = row.try_get("epoch").map_err(unavailable)?;
            let revoked: i64 = row.try_get("revoked").map_err(unavailable)?;
            Ok(SignOutCheck {
                epoch: epoch.and_then(|e| u64::try_from(e).ok()).unwrap_or(0),
                revoked: sid.is_some() && revoked > 0,
            })
        })
    }

    fn bump<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        now: i64,
        ttl: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let until = now.saturating_add(ttl).saturating_add(SIGN_OUT_MARGIN_SECS);
            let fresh = version_i64(next_epoch(0, now));
            let row = sqlx::query(
                "INSERT INTO buttress_session_epochs (app_id, user_id, epoch, until_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (app_id, user_id) DO UPDATE SET \
                 epoch = CASE WHEN buttress_session_epochs.epoch + 1 > excluded.epoch THEN buttress_session_epochs.epoch + 1 ELSE excluded.epoch END, \
                 until_at = CASE WHEN buttress_session_epochs.until_at > excluded.until_at THEN buttress_session_epochs.until_at ELSE excluded.until_at END \
                 RETURNING epoch",
            )
            .bind(app.as_str())
            .bind(user)
            .bind(fresh)
            .bind(until)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
            let epoch: i64 = row.try_get("epoch").map_err(unavailable)?;
            Ok(u64::try_from(epoch).unwrap_or(0))
        })
    }

    fn revoke<'a>(
        &'a self,
        app: &'a AppId,
        sid: &'a str,
        until: i64,
        _now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO buttress_session_revoked (app_id, sid, until_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (app_id, sid) DO UPDATE SET \
                 until_at = CASE WHEN buttress_session_revoked.until_at > excluded.until_at THEN buttress_session_revoked.until_at ELSE excluded.until_at END",
            )
            .bind(app.as_str())
            .bind(sid)
            .bind(until.saturating_add(SIGN_OUT_MARGIN_SECS))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut n = 0;
            for table in ["buttress_session_epochs", "buttress_session_revoked"] {
                let r = sqlx::query(&format!("DELETE FROM {table} WHERE until_at <= $1"))
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                n += r.rows_affected();
            }
            Ok(n)
        })
    }
}

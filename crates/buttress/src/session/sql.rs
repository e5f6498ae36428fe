//! Sessions in SQLite or PostgreSQL through sqlx's `Any` driver (feature `sql`).
//!
//! One table, created by [`SqlStore::migrate`]; the same SQL runs on both databases. The
//! primary key is the SHA-256 of the session id, never the id. Writes are compare-and-swap on
//! `version`. Database errors become [`StoreError`] (a 503 for the request) with the driver's
//! message kept in the logs, never in the response.
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

use futures_util::future::BoxFuture;
use sqlx::{AnyPool, Row as _};

use super::record::{Record, SessionData, StoreKey};
use super::store::{Cas, SessionStore, StoreError};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS buttress_sessions (
        store_key TEXT PRIMARY KEY,
        user_id TEXT NULL,
        data TEXT NOT NULL,
        version BIGINT NOT NULL,
        deadline BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS buttress_sessions_user ON buttress_sessions (user_id)",
    "CREATE INDEX IF NOT EXISTS buttress_sessions_deadline ON buttress_sessions (deadline)",
];

/// The statement [`SqlStore`] loads a record with: `$1` the store key, `$2` now (Unix
/// seconds); columns `data`, `version`, `deadline`, to be read with [`SqlStore::record`]. For
/// an application that reads the table another way (the portal's reads on the calling
/// thread) and wants the same record.
pub const LOAD_STATEMENT: &str =
    "SELECT data, version, deadline FROM buttress_sessions WHERE store_key = $1 AND deadline > $2";

/// A session store on an sqlx `AnyPool` (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
}

fn unavailable(e: sqlx::Error) -> StoreError {
    tracing::error!(error = %e, "session database error");
    StoreError("the session database is unavailable".into())
}

fn version_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqlStore {
    /// A store on `pool`. Call [`SqlStore::migrate`] once at start-up.
    pub fn new(pool: AnyPool) -> Self {
        SqlStore { pool }
    }

    /// Creates the `buttress_sessions` table and its indexes if missing.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        for stmt in SCHEMA {
            sqlx::query(stmt)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
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
            let row = sqlx::query(LOAD_STATEMENT)
                .bind(&key.0)
                .bind(now)
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
                    "INSERT INTO buttress_sessions (store_key, user_id, data, version, deadline) VALUES ($1, $2, $3, 1, $4) ON CONFLICT (store_key) DO NOTHING",
                )
                .bind(&key.0)
                .bind(data.user.clone())
                .bind(json)
                .bind(deadline)
                .execute(&self.pool)
                .await,
                Some(v) => sqlx::query(
                    "UPDATE buttress_sessions SET user_id = $1, data = $2, version = $3, deadline = $4 WHERE store_key = $5 AND version = $6",
                )
                .bind(data.user.clone())
                .bind(json)
                .bind(version_i64(v + 1))
                .bind(deadline)
                .bind(&key.0)
                .bind(version_i64(v))
                .execute(&self.pool)
                .await,
            };
            let done = result.map_err(unavailable)?.rows_affected() == 1;
            Ok(if done { Cas::Done } else { Cas::Conflict })
        })
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM buttress_sessions WHERE store_key = $1")
                .bind(&key.0)
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
            let rows = sqlx::query("SELECT store_key, data FROM buttress_sessions WHERE user_id = $1 AND deadline > $2")
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
            let r = sqlx::query("DELETE FROM buttress_sessions WHERE deadline <= $1")
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
            Ok(r.rows_affected())
        })
    }
}

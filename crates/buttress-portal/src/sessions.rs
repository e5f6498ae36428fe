//! The session store on the portal's own database: Buttress's [`SqlStore`], with the load
//! every request makes going through [`Db`]'s hot reads (see the `reads` module: on a SQLite
//! file it runs on the calling thread instead of a round trip to sqlx's worker thread).
//! Writes, listings and clean-ups are [`SqlStore`]'s own.

use buttress::session::sql::{SqlStore, LOAD_STATEMENT};
use buttress::session::{Cas, SessionStore, StoreError};
use buttress::session::{Record, SessionData, StoreKey};
use futures_util::future::BoxFuture;

use crate::db::Db;
use crate::query::Arg;

/// [`SqlStore`] on the portal's pool, loading through [`Db`]'s hot reads.
///
/// ```no_run
/// # async fn run(db: buttress_portal::Db) -> Result<(), buttress::session::StoreError> {
/// use buttress_portal::sessions::DbSessions;
/// let store = DbSessions::new(db);
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DbSessions {
    sql: SqlStore,
    db: Db,
}

impl DbSessions {
    /// The store on `db` (its pool for writes, its hot reads for loads).
    #[must_use]
    pub fn new(db: Db) -> Self {
        DbSessions {
            sql: SqlStore::new(db.pool().clone()),
            db,
        }
    }

    /// Creates the session table if missing ([`SqlStore::migrate`]).
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be reached.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.sql.migrate().await
    }
}

impl SessionStore for DbSessions {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let args = [Arg::Text(&key.0), Arg::Int(now)];
            let row = self
                .db
                .read_one(LOAD_STATEMENT, &args, |row| {
                    Ok((row.text("data")?, row.int("version")?, row.int("deadline")?))
                })
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session database error");
                    StoreError("the session database is unavailable".into())
                })?;
            row.map(|(data, version, deadline)| SqlStore::record(&data, version, deadline))
                .transpose()
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Option<u64>,
        data: &'a SessionData,
        deadline: i64,
    ) -> BoxFuture<'a, Result<Cas, StoreError>> {
        self.sql.save(key, expected, data, deadline)
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.sql.delete(key)
    }

    fn list_user<'a>(
        &'a self,
        user: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, SessionData)>, StoreError>> {
        self.sql.list_user(user, now)
    }

    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.sql.cleanup(now)
    }
}

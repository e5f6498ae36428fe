//! The session store and the sign-outs on the portal's own database: Buttress's [`SqlStore`]
//! and [`SqlSignOuts`], with the two reads every signed-in request makes (its session record,
//! and its user's credentials epoch) going through [`Db`]'s hot reads (see the `reads`
//! module: on a SQLite file they run on the calling thread instead of a round trip to sqlx's
//! worker thread). Writes, listings and clean-ups are the library's own.
//!
//! | what | where | shared by |
//! | --- | --- | --- |
//! | sessions | `buttress_sessions`, each row with the application id (`app_id`) | every instance on the database, per application |
//! | credentials epochs, revoked cookie sessions | `buttress_session_epochs`, `buttress_session_revoked` ([`DbSignOuts`]) | every instance on the database, per application |
//!
//! **One application's rows.** The session layer binds the store to its application id at
//! start-up ([`SessionStore::for_app`] gives a [`DbSessions`] over [`SqlStore::bound_to`]):
//! rows are written with that id, and the hot load checks it
//! ([`LOAD_FOR_APP_STATEMENT`]), as do listings, revocations and sweeps. Two deployments on
//! one database (another key or `BUTTRESS_APP_ID`) neither load, list nor revoke each other's
//! sessions, and a "sign out everywhere" on one does not touch the other's.
//!
//! **Sign-outs on every instance.** [`SessionStore::sign_outs`] gives [`DbSignOuts`] on the
//! same database, so a password change or "sign out everywhere" on one portal instance (a
//! bump of the user's credentials epoch) is seen by every other instance on its next request:
//! a cookie copied before is anonymous there too. In-process sign-outs would hold on the
//! instance that ran the sign-out only.
//!
//! **Rows written before binding.** Portals before application ids wrote their rows with an
//! empty `app_id` (the store was never bound). They are **not migrated**: nothing in such a
//! row says which deployment wrote it (every deployment on the database wrote `""`), so
//! giving them to the first application that starts could hand one deployment another's
//! sessions to list and revoke. A bound store never reads, lists or revokes them; they only
//! expire, and [`DbSessions`]'s sweep deletes them once their deadline has passed (the
//! library's sweep covers its own application's rows and the `-` rows of its own migration,
//! not these). The cost: whoever was signed in when the portal was upgraded signs in once
//! more. Erasing an account deletes its rows whatever their application id.

use std::sync::Arc;

use buttress::secret::AppId;
use buttress::session::sql::{
    SqlSignOuts, SqlStore, LOAD_FOR_APP_STATEMENT, SIGN_OUT_CHECK_STATEMENT,
};
use buttress::session::{Cas, SessionStore, SignOutCheck, SignOuts, StoreError};
use buttress::session::{Record, SessionData, StoreKey};
use futures_util::future::BoxFuture;

use crate::db::Db;
use crate::query::Arg;

/// The `app_id` of rows written by a store that was never bound (portals before application
/// ids): nobody's (see the module docs).
pub const UNBOUND_APP: &str = "";

/// [`SqlStore`] on the portal's pool, loading through [`Db`]'s hot reads.
///
/// ```no_run
/// # async fn run(db: buttress_portal::Db) -> Result<(), buttress::session::StoreError> {
/// use buttress::secret::AppId;
/// use buttress_portal::sessions::DbSessions;
/// let store = DbSessions::new(db);
/// store.migrate().await?;
/// // What the session layer does at start-up (SessionStore::for_app):
/// let bound = store.bound_to(&AppId::new("portal").unwrap());
/// assert_eq!(bound.app_id(), "portal");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DbSessions {
    sql: SqlStore,
    db: Db,
}

fn unavailable(e: &crate::Error) -> StoreError {
    tracing::error!(error = %e, source = ?std::error::Error::source(e), "session database error");
    StoreError("the session database is unavailable".into())
}

impl DbSessions {
    /// The store on `db` (its pool for writes, its hot reads for loads), not yet bound to an
    /// application: the session layer binds it ([`SessionStore::for_app`]).
    #[must_use]
    pub fn new(db: Db) -> Self {
        DbSessions {
            sql: SqlStore::new(db.pool().clone()),
            db,
        }
    }

    /// This store bound to application `app`: its rows carry `app`, and it loads, lists,
    /// revokes and sweeps only those.
    #[must_use]
    pub fn bound_to(&self, app: &AppId) -> DbSessions {
        DbSessions {
            sql: self.sql.bound_to(app),
            db: self.db.clone(),
        }
    }

    /// The application whose rows this store reads and writes (`""` until bound).
    #[must_use]
    pub fn app_id(&self) -> &str {
        self.sql.app_id()
    }

    /// Creates the session and sign-out tables if missing ([`SqlStore::migrate`]).
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
            let args = [
                Arg::Text(&key.0),
                Arg::Int(now),
                Arg::Text(self.sql.app_id()),
            ];
            let row = self
                .db
                .read_one(LOAD_FOR_APP_STATEMENT, &args, |row| {
                    Ok((row.text("data")?, row.int("version")?, row.int("deadline")?))
                })
                .await
                .map_err(|e| unavailable(&e))?;
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

    /// The library's sweep, then the expired rows written before binding (module docs).
    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut n = self.sql.cleanup(now).await?;
            if self.app_id() != UNBOUND_APP {
                let r = sqlx::query(
                    "DELETE FROM buttress_sessions WHERE app_id = $1 AND deadline <= $2",
                )
                .bind(UNBOUND_APP)
                .bind(now)
                .execute(self.db.pool())
                .await
                .map_err(|e| unavailable(&e.into()))?;
                n += r.rows_affected();
            }
            Ok(n)
        })
    }

    fn for_app(&self, app: &AppId) -> Option<Arc<dyn SessionStore>> {
        Some(Arc::new(self.bound_to(app)))
    }

    fn sign_outs(&self) -> Option<Arc<dyn SignOuts>> {
        Some(Arc::new(DbSignOuts::new(self.db.clone())))
    }
}

/// [`SqlSignOuts`] on the portal's pool, checking through [`Db`]'s hot reads (the check runs
/// on every signed-in request). What [`DbSessions`] gives the session layer
/// ([`SessionStore::sign_outs`]).
///
/// ```no_run
/// # async fn run(db: buttress_portal::Db) -> Result<(), buttress::session::StoreError> {
/// use buttress::secret::AppId;
/// use buttress::session::SignOuts;
/// use buttress_portal::sessions::{DbSessions, DbSignOuts};
/// DbSessions::new(db.clone()).migrate().await?; // makes the sign-out tables too
/// let outs = DbSignOuts::new(db);
/// let app = AppId::new("portal").unwrap();
/// let epoch = outs.bump(&app, "42", 1_700_000_000, 43_200).await?;
/// assert_eq!(outs.check(&app, "42", None, 1_700_000_001).await?.epoch, epoch);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DbSignOuts {
    sql: SqlSignOuts,
    db: Db,
}

impl DbSignOuts {
    /// Sign-outs on `db` (tables made by [`DbSessions::migrate`]).
    #[must_use]
    pub fn new(db: Db) -> Self {
        DbSignOuts {
            sql: SqlSignOuts::new(db.pool().clone()),
            db,
        }
    }
}

impl SignOuts for DbSignOuts {
    fn check<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        sid: Option<&'a str>,
        now: i64,
    ) -> BoxFuture<'a, Result<SignOutCheck, StoreError>> {
        Box::pin(async move {
            let args = [
                Arg::Text(app.as_str()),
                Arg::Text(user),
                Arg::Int(now),
                Arg::Text(sid.unwrap_or("")),
            ];
            let row = self
                .db
                .read_one(SIGN_OUT_CHECK_STATEMENT, &args, |row| {
                    Ok((row.opt_int("epoch")?, row.int("revoked")?))
                })
                .await
                .map_err(|e| unavailable(&e))?;
            let (epoch, revoked) = row.unwrap_or((None, 0));
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
        self.sql.bump(app, user, now, ttl)
    }

    fn revoke<'a>(
        &'a self,
        app: &'a AppId,
        sid: &'a str,
        until: i64,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.sql.revoke(app, sid, until, now)
    }

    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.sql.cleanup(now)
    }
}

//! Storage: one [`Db`] over SQLite (the default, a file in a data directory) or PostgreSQL
//! (when the URL starts with `postgres://`), with the same migrations on both.
//!
//! # Design
//!
//! The pool is a [`sqlx::AnyPool`]: one code path for both backends, every query a static SQL
//! string with `$1, $2, …` placeholders (SQLite reads `$N` as positional parameters too) and
//! values bound with `.bind()`; no SQL is ever built from input. The price is that `Any` only
//! carries integers, floats, booleans, text and bytes, so the schema (see `migrations/`) keeps
//! to those: random BIGINT ids chosen by the application, Unix-second BIGINT times and
//! `YYYY-MM-DD` TEXT dates.
//!
//! | setting | SQLite | PostgreSQL |
//! | --- | --- | --- |
//! | URL | `sqlite://PATH` (created if missing) | `postgres://user@host:port/db` |
//! | per connection | `journal_mode=WAL`, `foreign_keys=ON`, `synchronous=NORMAL`, `busy_timeout=5000` | — |
//! | max connections | 8 | 8 |
//! | ping before lending a connection | no (a local file; saves a thread round trip per query) | yes (sqlx's default) |
//! | hot reads (session, user, search, request pages) | on the calling thread, read-only rusqlite connections (`crate::reads`; a file, not `:memory:`) | the pool |
//! | acquire timeout | [`ACQUIRE_TIMEOUT`] | [`ACQUIRE_TIMEOUT`] |
//!
//! A database that cannot be reached surfaces as [`Error::Unavailable`] (HTTP 503) within the
//! acquire timeout, distinct from [`Error::NotFound`] and [`Error::Conflict`]; once it is back,
//! the pool reconnects by itself.
//!
//! # Migrations and the session layer
//!
//! [`Db::open`] runs the portal's migrations (`migrations/0001_portal.sql`, `0002_…`) in sqlx's
//! `_sqlx_migrations` table, with `ignore_missing` on, so that another component may record its
//! own migrations in the same database without making this migrator refuse to start. The
//! session store owns its table (`buttress_sessions`, created by
//! `buttress::session::sql::SqlStore::migrate`) and can share this pool: [`Db::pool`].

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, Row};
use time::{Date, OffsetDateTime};

use crate::domain::format_date;
use crate::error::{Error, Result};
pub use crate::page::{Page, PAGE_SIZE};
use crate::reads::Reads;

/// How long a query waits for a connection before the database counts as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The file [`Db::open_in_dir`] keeps the SQLite database in.
pub const SQLITE_FILE: &str = "portal.sqlite3";

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file, or memory in tests).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The portal's database handle: cheap to clone (a pool inside).
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Hot reads on the calling thread, for a SQLite file (see [`crate::reads`]).
    reads: Option<Arc<Reads>>,
}

fn migrator() -> Migrator {
    let mut m = Migrator::DEFAULT;
    m.migrations = Cow::Owned(vec![
        Migration::new(
            1,
            Cow::Borrowed("portal"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../migrations/0001_portal.sql")),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("search order"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../migrations/0002_search_order.sql")),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("privacy"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../migrations/0003_privacy.sql")),
            false,
        ),
    ]);
    m.set_ignore_missing(true);
    m
}

impl Db {
    /// Opens the database at `url` and runs the migrations.
    ///
    /// `postgres://…` / `postgresql://…` open PostgreSQL; `sqlite://PATH` opens (creating if
    /// missing) a SQLite file; `sqlite::memory:` a private in-memory database (one connection).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the server cannot be reached; [`Error::Internal`] for a bad
    /// URL or a failed migration (details in the source, for logs).
    pub async fn open(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::internal(
                "unsupported database URL: use sqlite://PATH or postgres://…",
            ));
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT);
        let url = if backend == Backend::Sqlite {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            if memory {
                // Each connection would get its own empty database: keep exactly one, forever.
                options = options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            // sqlx pings a pooled connection before lending it (`test_before_acquire`) and
            // again when it comes back. For SQLite each ping is a round trip to the
            // connection's worker thread, as costly as a small query, and proves nothing: the
            // database is a local file, not a peer that can hang up. The ping on return stays
            // (sqlx always sends it); the one before lending goes. PostgreSQL keeps both: there
            // a connection can die with the server.
            options = options.test_before_acquire(false);
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    Ok(())
                })
            });
            if memory || url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            }
        } else {
            url.to_string()
        };
        let pool = options.connect(&url).await.map_err(Error::from)?;
        let mut db = Db {
            pool,
            backend,
            reads: None,
        };
        db.migrate().await?;
        if let Some(file) = sqlite_file(&url) {
            // After the pool: its first connection made the file and put it in WAL mode.
            match Reads::open(&file) {
                Ok(reads) => db.reads = Some(Arc::new(reads)),
                Err(e) => tracing::warn!(
                    error = %e,
                    source = ?std::error::Error::source(&e),
                    "SQLite: every read goes through the pool"
                ),
            }
        }
        Ok(db)
    }

    /// Opens (creating the directory and file if missing) the SQLite database
    /// [`SQLITE_FILE`] inside `data_dir`.
    ///
    /// # Errors
    /// As [`Db::open`], and [`Error::Internal`] when the directory cannot be created or its
    /// path is not UTF-8 or holds `?` or `#`.
    pub async fn open_in_dir(data_dir: &Path) -> Result<Db> {
        std::fs::create_dir_all(data_dir).map_err(Error::internal)?;
        let path = data_dir.join(SQLITE_FILE);
        let Some(path) = path.to_str().filter(|p| !p.contains(['?', '#'])) else {
            return Err(Error::internal(
                "the data directory's path must be UTF-8 without ? or #",
            ));
        };
        Db::open(&format!("sqlite://{path}")).await
    }

    /// Opens PostgreSQL when `database_url` is given (as `DATABASE_URL` would be), SQLite in
    /// `data_dir` otherwise.
    ///
    /// # Errors
    /// As [`Db::open`] and [`Db::open_in_dir`].
    pub async fn from_config(database_url: Option<&str>, data_dir: &Path) -> Result<Db> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Db::open(url).await,
            None => Db::open_in_dir(data_dir).await,
        }
    }

    /// A fresh private in-memory SQLite database, migrated (for tests and demos).
    ///
    /// # Errors
    /// As [`Db::open`].
    pub async fn in_memory() -> Result<Db> {
        Db::open("sqlite::memory:").await
    }

    async fn migrate(&self) -> Result<()> {
        migrator().run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => Error::from(e),
            other => Error::internal(other),
        })
    }

    /// The pool, for components that keep their own tables here (the session store).
    #[must_use]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The hot-read connections, for a SQLite file.
    pub(crate) fn reads(&self) -> Option<&Reads> {
        self.reads.as_deref()
    }

    /// This database with `reads` for its hot reads (tests: reads on another, locked file).
    #[cfg(test)]
    pub(crate) fn with_reads(mut self, reads: Reads) -> Db {
        self.reads = Some(Arc::new(reads));
        self
    }

    /// Whether hot reads run on the calling thread (a SQLite file; see the `reads` module).
    #[must_use]
    pub fn reads_inline(&self) -> bool {
        self.reads.is_some()
    }

    /// For a database with reads on the calling thread: how many were answered there, and
    /// how many were deferred to the pool (locked, or over their time budget), since opening.
    /// A steady stream of deferred reads means the file is contended or the reads slow.
    #[must_use]
    pub fn inline_read_counts(&self) -> Option<(u64, u64)> {
        self.reads.as_deref().map(Reads::counts)
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (for a readiness probe).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; later queries fail with [`Error::Unavailable`].
    pub async fn close(&self) {
        if let Some(reads) = &self.reads {
            reads.close();
        }
        self.pool.close().await;
    }

    /// Number of rows in one of the portal's tables (for tests and the demo seed report).
    ///
    /// # Errors
    /// As any query.
    pub async fn count_rows(&self, table: Table) -> Result<u64> {
        let sql = match table {
            Table::Users => "SELECT COUNT(*) FROM users",
            Table::Donors => "SELECT COUNT(*) FROM donors",
            Table::BloodRequests => "SELECT COUNT(*) FROM blood_requests",
        };
        let row = sqlx::query(sql).fetch_one(&self.pool).await?;
        Ok(u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0))
    }
}

/// The portal's tables, for [`Db::count_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `users`
    Users,
    /// `donors`
    Donors,
    /// `blood_requests`
    BloodRequests,
}

/// The file of a `sqlite:` URL as sqlx reads it (percent-decoded, parameters parsed), or
/// `None` for an in-memory database, or one opened through another VFS or as immutable (the
/// reads on the calling thread would not see that file the way the pool does).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("sqlite:") {
        return None;
    }
    if [":memory:", "mode=memory", "vfs=", "immutable="]
        .iter()
        .any(|p| lower.contains(p))
    {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

/// A new random id: positive and below 2^53, so it survives JSON numbers in JavaScript.
pub(crate) fn new_id() -> i64 {
    rand::thread_rng().gen_range(1..(1_i64 << 53))
}

/// Now, in Unix seconds (UTC).
#[must_use]
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Today's date in UTC.
#[must_use]
pub fn today_utc() -> Date {
    OffsetDateTime::now_utc().date()
}

/// Converts stored Unix seconds to a UTC date-time (the epoch if out of range).
#[must_use]
pub fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn date_to_sql(d: Option<Date>) -> Option<String> {
    d.map(format_date)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_lends_connections_without_a_ping() {
        let db = Db::in_memory().await.unwrap();
        assert!(!db.pool().options().get_test_before_acquire());
        db.ping().await.unwrap();
    }

    #[test]
    fn sqlite_file_is_the_file_sqlx_opens() {
        let file = |url: &str| sqlite_file(url).map(|p| p.display().to_string());
        assert_eq!(
            file("sqlite:///tmp/a%20b.db?mode=rwc").as_deref(),
            Some("/tmp/a b.db")
        );
        assert_eq!(
            file("sqlite://data/portal.sqlite3").as_deref(),
            Some("data/portal.sqlite3")
        );
        assert_eq!(
            file("sqlite:portal.sqlite3").as_deref(),
            Some("portal.sqlite3")
        );
        assert_eq!(
            file("sqlite:///srv/memory/p.db").as_deref(),
            Some("/srv/memory/p.db")
        );
        for none in [
            "sqlite::memory:",
            "sqlite://x.db?mode=memory",
            "sqlite://x.db?vfs=unix-dotfile",
            "sqlite://x.db?immutable=true",
            "sqlite://file:shared?mode=memory&cache=shared",
            "postgres://u@h/db",
        ] {
            assert_eq!(file(none), None, "{none}");
        }
    }

    #[test]
    fn ids_are_positive_and_js_safe() {
        for _ in 0..1000 {
            let id = new_id();
            assert!(id > 0 && id < (1 << 53));
        }
    }
}

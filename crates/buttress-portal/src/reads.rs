//! Hot reads on a SQLite file without a thread hop.
//!
//! sqlx runs each SQLite connection on a worker thread of its own: every query is a command
//! sent to that thread and a result sent back, and sqlx pings the connection on its worker
//! again when it returns to the pool. Under load those hand-offs, not SQLite, are the cost: a
//! profile of the signed-in donor search (three queries) showed a third of the time in the
//! kernel switching threads and under 3% in SQLite's own engine.
//!
//! [`Reads`] keeps a few read-only rusqlite connections to the same file and runs a read on
//! the calling thread, with its prepared statement cached on the connection. A read may run
//! on an async worker only if it cannot hold the worker up, and two things make sure of that:
//!
//! - **No waiting for locks.** In SQLite's WAL mode (which [`crate::db::Db`] sets) a reader
//!   never waits for a writer and the writer checkpoints; the busy timeout here is 0, so a
//!   read that meets a lock anyway (a WAL recovery, a connection in exclusive mode) fails at
//!   once with `SQLITE_BUSY`.
//! - **A time budget.** A progress handler interrupts a read that runs longer than
//!   [`BUDGET`] (a search without a city over a very large registry, a cold disk).
//!
//! Either way [`Reads::run`] answers [`Outcome::Defer`] and the caller runs the same read on
//! the sqlx pool, which waits and works on its own threads. A typical read (tens of
//! microseconds on a page-cached file) never comes near either. Writes always go through sqlx.
//!
//! What the budget does not cover: it is per statement (a page past the end runs up to three),
//! the progress handler cannot interrupt a blocking read from disk (the file is small and
//! page-cached in practice), and SQLite's WAL reader may pause briefly between retries of its
//! read lock when the WAL is being reset (ending, at worst, in `SQLITE_PROTOCOL`, which defers
//! too). These bound SQLite's own work on the worker; they are not a hard real-time bound.
//!
//! The reads that use it are the ones page views make: the session record, the signed-in
//! user, the donor search and a donor's profile, the request lists and a request
//! ([`crate::db::Db::read_one`], [`crate::db::Db::fetch_page`]). Everything else stays on sqlx,
//! on both backends; PostgreSQL and in-memory SQLite (one private database per connection)
//! have no [`Reads`].
//!
//! rusqlite shares sqlx's `libsqlite3-sys`, so both open the file through the same SQLite.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{ffi, Connection, OpenFlags, Statement};

use crate::error::{Error, Result};

/// Idle connections kept at least (at most as many reads overlap as there are threads running
/// them; more are opened when needed, and closed after).
const KEEP_AT_LEAST: usize = 8;

/// The longest a read runs on the calling thread before it is interrupted and handed to the
/// pool.
pub(crate) const BUDGET: Duration = Duration::from_millis(2);

/// SQLite virtual-machine steps between two looks at the clock (a look costs about 20 ns; a
/// thousand steps take a few microseconds).
const STEPS_PER_LOOK: i32 = 1000;

/// Prepared statements cached per connection (the portal's hot reads number a dozen).
const STATEMENT_CACHE: usize = 32;

/// A few read-only connections to one SQLite file, used on the calling thread.
#[derive(Debug)]
pub(crate) struct Reads {
    path: PathBuf,
    idle: Mutex<Vec<Conn>>,
    /// How many idle connections are kept: [`KEEP_AT_LEAST`], or the machine's parallelism.
    keep: usize,
    /// The clock the connections' deadlines count from.
    epoch: Instant,
    /// Reads answered here, and reads deferred to the pool ([`Reads::counts`]).
    served: AtomicU64,
    deferred: AtomicU64,
    /// Set by [`Reads::close`]: every read after it is [`Error::Unavailable`], as on the pool.
    closed: AtomicBool,
}

/// A connection and the deadline its progress handler checks (nanoseconds after
/// [`Reads`]'s epoch; `u64::MAX` between reads).
#[derive(Debug)]
struct Conn {
    conn: Connection,
    deadline: Arc<AtomicU64>,
}

/// What a read came to.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// It ran (to a value or to an error).
    Done(Result<T>),
    /// The database was locked, or the read ran past [`BUDGET`]: run it on the sqlx pool.
    Defer,
}

/// A value a statement binds: the portal binds only integers and text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'a str),
}

/// `$1` … `$16`: the portal's placeholders, bound by name because a statement may use them
/// out of order (a search's count subquery names `$4` before `$1`).
const NAMES: [&str; 16] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16",
];

impl Reads {
    /// Reads on the SQLite file at `path` (which must exist and be in WAL mode).
    ///
    /// # Errors
    /// [`Error::Internal`] when the file cannot be opened read-only.
    pub(crate) fn open(path: &Path) -> Result<Reads> {
        let keep = std::thread::available_parallelism()
            .map_or(KEEP_AT_LEAST, std::num::NonZeroUsize::get)
            .max(KEEP_AT_LEAST);
        let reads = Reads {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::with_capacity(keep)),
            keep,
            epoch: Instant::now(),
            served: AtomicU64::new(0),
            deferred: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        };
        let conn = reads.connect().map_err(Error::internal)?;
        let mode: String = conn
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .map_err(Error::internal)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Outside WAL a reader can wait for a writer: keep every read on the pool.
            return Err(Error::internal(format!(
                "the SQLite file is in {mode} mode, not WAL: no reads on the calling thread"
            )));
        }
        // Not kept: reads open their connections when they need them (and keep those).
        drop(conn);
        Ok(reads)
    }

    /// Reads answered on the calling thread, and reads deferred to the pool, since opening.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.served.load(Ordering::Relaxed),
            self.deferred.load(Ordering::Relaxed),
        )
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        // A panic while the lock was held cannot leave the list inconsistent (push and pop).
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connect(&self) -> rusqlite::Result<Conn> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::ZERO)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let (epoch, watched) = (self.epoch, Arc::clone(&deadline));
        conn.progress_handler(
            STEPS_PER_LOOK,
            Some(move || nanos_since(epoch) > watched.load(Ordering::Relaxed)),
        );
        Ok(Conn { conn, deadline })
    }

    fn take(&self) -> rusqlite::Result<Conn> {
        let idle = self.idle().pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    /// Closes the idle connections; reads from now on fail with [`Error::Unavailable`].
    pub(crate) fn close(&self) {
        let mut idle = self.idle();
        self.closed.store(true, Ordering::Release);
        idle.clear();
    }

    fn put_back(&self, conn: Conn) {
        // Checked under the lock, so that no connection goes back after `close` emptied it.
        let mut idle = self.idle();
        if !self.closed.load(Ordering::Acquire) && idle.len() < self.keep {
            idle.push(conn);
        }
    }

    /// Runs `read` with the statement `sql` prepared (cached) and `args` bound by name.
    pub(crate) fn run<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        read: impl FnOnce(&mut Statement<'_>) -> Result<T>,
    ) -> Outcome<T> {
        if self.closed.load(Ordering::Acquire) {
            return Outcome::Done(Err(Error::Unavailable(None)));
        }
        if args.len() > NAMES.len() {
            return Outcome::Done(Err(Error::internal("a read binds more than 16 values")));
        }
        let conn = match self.take() {
            Ok(conn) => conn,
            Err(e) => return classify(e),
        };
        let budget = u64::try_from(BUDGET.as_nanos()).unwrap_or(u64::MAX);
        let deadline = nanos_since(self.epoch).saturating_add(budget);
        conn.deadline.store(deadline, Ordering::Relaxed);
        let outcome = (|| {
            let mut stmt = conn.conn.prepare_cached(sql).map_err(Failure::Sqlite)?;
            bind(&mut stmt, args).map_err(Failure::Sqlite)?;
            read(&mut stmt).map_err(Failure::Portal)
        })();
        conn.deadline.store(u64::MAX, Ordering::Relaxed);
        // `read` steps the statement through `raw_query`, whose `Rows` resets it when dropped
        // (also after an error or an early return), so the connection is clean for the next
        // read; the cache then clears its bindings.
        self.put_back(conn);
        let outcome = match outcome {
            Ok(value) => Outcome::Done(Ok(value)),
            Err(Failure::Sqlite(e)) => classify(e),
            Err(Failure::Portal(e)) => match deferred_inside(&e) {
                true => Outcome::Defer,
                false => Outcome::Done(Err(e)),
            },
        };
        let counter = match outcome {
            Outcome::Defer => &self.deferred,
            Outcome::Done(_) => &self.served,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }
}

enum Failure {
    Sqlite(rusqlite::Error),
    Portal(Error),
}

fn bind(stmt: &mut Statement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<()> {
    if stmt.parameter_count() > args.len() {
        // SQLite would read a placeholder without a value as NULL; sqlx refuses the query.
        return Err(rusqlite::Error::InvalidParameterCount(
            stmt.parameter_count(),
            args.len(),
        ));
    }
    for (name, arg) in NAMES.iter().zip(args) {
        // A placeholder the statement does not use is skipped (sqlx does the same).
        if let Some(index) = stmt.parameter_index(name)? {
            match *arg {
                Arg::Int(v) => stmt.raw_bind_parameter(index, v)?,
                Arg::Text(v) => stmt.raw_bind_parameter(index, v)?,
            }
        }
    }
    Ok(())
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Whether the read should run on the pool instead: locked (or the WAL read lock not had after
/// SQLite's retries: `SQLITE_PROTOCOL`), or interrupted by the budget.
fn deferred(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ffi::ErrorCode::DatabaseBusy
                | ffi::ErrorCode::DatabaseLocked
                | ffi::ErrorCode::OperationInterrupted
                | ffi::ErrorCode::FileLockingProtocolFailed
        )
    )
}

/// [`deferred`] for a portal error from a step that failed inside `read`.
fn deferred_inside(e: &Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(e) = s.downcast_ref::<rusqlite::Error>() {
            return deferred(e);
        }
        source = s.source();
    }
    false
}

/// A failure to open, prepare or bind: deferred as above; the file gone or unreadable is
/// [`Error::Unavailable`] (503, as the pool answers an unreachable database); anything else
/// (a statement that does not prepare) is [`Error::Internal`], as on the pool.
fn classify<T>(e: rusqlite::Error) -> Outcome<T> {
    if deferred(&e) {
        return Outcome::Defer;
    }
    let unreachable = matches!(
        e.sqlite_error_code(),
        Some(
            ffi::ErrorCode::CannotOpen
                | ffi::ErrorCode::SystemIoFailure
                | ffi::ErrorCode::NotADatabase
                | ffi::ErrorCode::DatabaseCorrupt
                | ffi::ErrorCode::PermissionDenied
        )
    );
    let cause = Some(Box::new(e) as crate::error::Cause);
    Outcome::Done(Err(if unreachable {
        Error::Unavailable(cause)
    } else {
        Error::Internal(cause)
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A SQLite file in WAL mode with `CREATE TABLE t (x INTEGER)` holding 7, in a fresh
    /// directory (removed on drop).
    pub(crate) struct File {
        /// The file's directory, removed on drop.
        _dir: tempfile::TempDir,
        pub(crate) path: PathBuf,
    }

    impl File {
        pub(crate) fn new(what: &str) -> File {
            let dir = tempfile::Builder::new()
                .prefix(&format!("buttress-reads-{what}-"))
                .tempdir()
                .unwrap();
            let path = dir.path().join("t.sqlite3");
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")
                .unwrap();
            File { _dir: dir, path }
        }

        /// A connection holding the file's exclusive lock until it is dropped (WAL readers
        /// get `SQLITE_BUSY` meanwhile).
        pub(crate) fn lock(&self) -> Connection {
            let conn = Connection::open(&self.path).unwrap();
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                .unwrap();
            conn.execute_batch("INSERT INTO t VALUES (8)").unwrap();
            conn
        }
    }

    fn first(stmt: &mut Statement<'_>) -> Result<i64> {
        let mut rows = stmt.raw_query();
        Ok(rows.next()?.map(|r| r.get(0)).transpose()?.unwrap_or(-1))
    }

    #[test]
    fn reads_bind_by_name_and_read() {
        let file = File::new("bind");
        let reads = Reads::open(&file.path).unwrap();
        // `$2` before `$1` in the text: bound by name, not by position.
        let sql = "SELECT x + $2 - $1 FROM t WHERE x = $3";
        let args = [Arg::Int(1), Arg::Int(10), Arg::Int(7)];
        for _ in 0..3 {
            // The second and third runs take the cached statement on the same connection.
            match reads.run(sql, &args, first) {
                Outcome::Done(Ok(v)) => assert_eq!(v, 16),
                other => panic!("{other:?}"),
            }
        }
        let text = [Arg::Text("7")];
        match reads.run(
            "SELECT COUNT(*) FROM t WHERE CAST(x AS TEXT) = $1",
            &text,
            first,
        ) {
            Outcome::Done(Ok(v)) => assert_eq!(v, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_outside_wal_mode_gets_no_reads_here() {
        let file = File::new("rollback");
        let conn = Connection::open(&file.path).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        drop(conn);
        let err = Reads::open(&file.path).expect_err("not WAL");
        assert!(
            std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("not WAL")),
            "{err:?}"
        );
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error_not_null() {
        let file = File::new("unbound");
        let reads = Reads::open(&file.path).unwrap();
        match reads.run(
            "SELECT x FROM t WHERE x = $1 OR $2 IS NULL",
            &[Arg::Int(7)],
            first,
        ) {
            Outcome::Done(Err(e)) => assert_eq!(e.status_code(), 500),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_cannot_write() {
        let file = File::new("readonly");
        let reads = Reads::open(&file.path).unwrap();
        match reads.run("INSERT INTO t VALUES (9) RETURNING x", &[], first) {
            Outcome::Done(Err(e)) => assert_eq!(e.status_code(), 500),
            other => panic!("a write through the read connections: {other:?}"),
        }
    }

    #[test]
    fn a_locked_file_is_busy_not_an_error_and_reads_resume() {
        let file = File::new("busy");
        let reads = Reads::open(&file.path).unwrap();
        let locker = file.lock();
        let started = std::time::Instant::now();
        assert!(matches!(
            reads.run("SELECT x FROM t", &[], first),
            Outcome::Defer
        ));
        assert!(
            started.elapsed() < std::time::Duration::from_millis(200),
            "busy at once, without waiting on the async worker ({:?})",
            started.elapsed()
        );
        drop(locker);
        match reads.run("SELECT COUNT(*) FROM t", &[], first) {
            Outcome::Done(Ok(n)) => assert_eq!(n, 2),
            other => panic!("{other:?}"),
        }
    }

    /// A statement that runs for a good part of a second: a recursive count to five million.
    pub(crate) const SLOW: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
         WHERE i < 5000000) SELECT COUNT(*) FROM n";

    #[test]
    fn a_long_read_is_interrupted_within_its_budget_and_the_connection_reused() {
        let file = File::new("budget");
        let reads = Reads::open(&file.path).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(reads.run(SLOW, &[], first), Outcome::Defer));
        assert!(
            started.elapsed() < BUDGET * 25,
            "interrupted near the budget, not after the whole count ({:?})",
            started.elapsed()
        );
        // The same (only) connection, its deadline cleared, reads normally again.
        assert_eq!(reads.idle.lock().unwrap().len(), 1);
        match reads.run("SELECT x FROM t", &[], first) {
            Outcome::Done(Ok(v)) => assert_eq!(v, 7),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn too_many_values_and_closed_reads_are_errors() {
        let file = File::new("limits");
        let reads = Reads::open(&file.path).unwrap();
        let args = [Arg::Int(0); 17];
        match reads.run("SELECT 1", &args, first) {
            Outcome::Done(Err(e)) => assert_eq!(e.status_code(), 500),
            other => panic!("{other:?}"),
        }
        reads.close();
        match reads.run("SELECT 1", &[], first) {
            Outcome::Done(Err(e)) => assert_eq!(e.status_code(), 503),
            other => panic!("{other:?}"),
        }
    }
}

//! Hot reads on a SQLite file without a thread hop.
//!
//! sqlx runs each SQLite connection on a worker thread of its own: every query is a command
//! sent to that thread and a result sent back, and sqlx pings the connection on its worker
//! again when it returns to the pool. Under load those hand-offs, not SQLite, are the cost: a
//! profile of the signed-in donor search (three queries) showed a third of the time in the
//! kernel switching threads and under 3% in SQLite's own engine.
//!
//! [`Reads`] keeps a few read-only rusqlite connections to the same file and runs a read on
//! the calling thread, with its prepared statement cached on the connection. This is safe to
//! do on an async worker because of how SQLite's WAL mode (which [`crate::db::Db`] sets) works:
//! a reader never waits for a writer, the writer checkpoints, and the busy timeout here is 0,
//! so a read either runs at once (tens of microseconds on a page-cached file) or fails with
//! `SQLITE_BUSY` (a WAL recovery, a connection holding an exclusive lock). Then [`Reads::run`]
//! answers [`Outcome::Busy`] and the caller asks the sqlx pool instead, which waits for the
//! lock on its own thread. Writes always go through sqlx.
//!
//! Only the queries every page view makes use it: the session record, the signed-in user, the
//! donor search and the open requests on the landing page. Everything else stays on sqlx, on
//! both backends; PostgreSQL and in-memory SQLite (one private database per connection) have
//! no [`Reads`].
//!
//! rusqlite shares sqlx's `libsqlite3-sys`, so both open the file through the same SQLite.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rusqlite::{ffi, Connection, OpenFlags, Statement};

use crate::error::{Error, Result};

/// Idle connections kept (more are opened when reads overlap, and closed after).
const KEEP: usize = 8;

/// Prepared statements cached per connection (the portal's hot reads number a dozen).
const STATEMENT_CACHE: usize = 32;

/// A few read-only connections to one SQLite file, used on the calling thread.
#[derive(Debug)]
pub(crate) struct Reads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Set by [`Reads::close`]: every read after it is [`Error::Unavailable`], as on the pool.
    closed: AtomicBool,
}

/// What a read came to.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// It ran (to a value or to an error).
    Done(Result<T>),
    /// The database was locked: ask the sqlx pool, which waits.
    Busy,
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
        let reads = Reads {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::with_capacity(KEEP)),
            closed: AtomicBool::new(false),
        };
        let conn = reads.connect().map_err(Error::internal)?;
        reads.put_back(conn);
        Ok(reads)
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    /// Closes the idle connections; reads from now on fail with [`Error::Unavailable`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn put_back(&self, conn: Connection) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < KEEP {
                idle.push(conn);
            }
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
        let outcome = (|| {
            let mut stmt = conn.prepare_cached(sql).map_err(Failure::Sqlite)?;
            bind(&mut stmt, args).map_err(Failure::Sqlite)?;
            read(&mut stmt).map_err(Failure::Portal)
        })();
        // A statement left mid-step (an error, an early return) is reset by the cache when it
        // goes back, so the connection is clean for the next read.
        self.put_back(conn);
        match outcome {
            Ok(value) => Outcome::Done(Ok(value)),
            Err(Failure::Sqlite(e)) => classify(e),
            Err(Failure::Portal(e)) => match busy_inside(&e) {
                true => Outcome::Busy,
                false => Outcome::Done(Err(e)),
            },
        }
    }
}

enum Failure {
    Sqlite(rusqlite::Error),
    Portal(Error),
}

fn bind(stmt: &mut Statement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<()> {
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

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked)
    )
}

/// Whether a portal error came from a busy database (a step that failed inside `read`).
fn busy_inside(e: &Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(e) = s.downcast_ref::<rusqlite::Error>() {
            return is_busy(e);
        }
        source = s.source();
    }
    false
}

fn classify<T>(e: rusqlite::Error) -> Outcome<T> {
    if is_busy(&e) {
        Outcome::Busy
    } else {
        Outcome::Done(Err(Error::Unavailable(Some(Box::new(e)))))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Internal(Some(Box::new(e)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A SQLite file in WAL mode with `CREATE TABLE t (x INTEGER)` holding 7, in a fresh
    /// directory (removed on drop).
    pub(crate) struct File {
        pub(crate) dir: PathBuf,
        pub(crate) path: PathBuf,
    }

    impl File {
        pub(crate) fn new(what: &str) -> File {
            let dir = std::env::temp_dir().join(format!(
                "buttress-reads-{what}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("t.sqlite3");
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")
                .unwrap();
            File { dir, path }
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

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
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
        let locker = file.lock();
        let reads = Reads::open(&file.path).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            reads.run("SELECT x FROM t", &[], first),
            Outcome::Busy
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

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

    fn put_back(&self, conn: Connection) {
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

//! Reads that run on either path: the sqlx pool, or [`Reads`] on the calling thread (SQLite
//! files only; see that module for why).
//!
//! A read is a static SQL string, its [`Arg`]s in placeholder order, and a function from a
//! [`Columns`] row (either driver's) to a value. [`Db::read_one`] and [`Db::fetch_page`] try
//! [`Reads`] first when the database has them and run the read on the pool when those defer
//! (SQLite locked, or the read over its time budget), so each query and its row mapping is
//! written once for both.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row as _};

use crate::db::Db;
use crate::domain::parse_date;
use crate::error::{Error, Result};
use crate::page::{page_window, Page, PAGE_SIZE, TOTAL_COLUMN};
use crate::reads::{Outcome, Reads};

pub(crate) use crate::reads::Arg;

/// A result row of either driver, read by column name.
pub(crate) trait Columns {
    /// An integer column.
    fn int(&self, col: &str) -> Result<i64>;
    /// A nullable integer column.
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    /// A text column.
    fn text(&self, col: &str) -> Result<String>;
    /// A nullable text column.
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
}

impl Columns for AnyRow {
    fn int(&self, col: &str) -> Result<i64> {
        Ok(self.try_get(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.try_get(col)?)
    }
    fn text(&self, col: &str) -> Result<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get(col)?)
    }
}

/// A rusqlite row read by column name through its statement's names, taken once per
/// statement run. (rusqlite's own lookup by name asks SQLite for each column's name and
/// compares it case-insensitively on every read of every row: 7% of the signed-in search.)
struct Named<'a, 'r> {
    row: &'a rusqlite::Row<'r>,
    names: &'a [String],
}

impl Named<'_, '_> {
    fn index(&self, col: &str) -> Result<usize> {
        self.names
            .iter()
            .position(|name| name == col)
            .ok_or_else(|| Error::internal(format!("no column {col} in the statement")))
    }
}

/// The column names of `stmt`, for [`Named`].
fn names(stmt: &rusqlite::Statement<'_>) -> Vec<String> {
    stmt.column_names().into_iter().map(str::to_owned).collect()
}

impl Columns for Named<'_, '_> {
    fn int(&self, col: &str) -> Result<i64> {
        Ok(self.row.get(self.index(col)?)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.row.get(self.index(col)?)?)
    }
    fn text(&self, col: &str) -> Result<String> {
        Ok(self.row.get(self.index(col)?)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(self.row.get(self.index(col)?)?)
    }
}

/// A paginated statement (its rows and [`TOTAL_COLUMN`], `LIMIT` and `OFFSET` as the last two
/// placeholders) and its count twin (the same filter, `SELECT COUNT(*)`).
#[derive(Debug)]
pub(crate) struct PageSql {
    pub(crate) page: &'static str,
    pub(crate) count: &'static str,
}

/// `sql` with `args` bound, for the sqlx pool.
pub(crate) fn bound<'q>(sql: &'q str, args: &[Arg<'q>]) -> Query<'q, Any, AnyArguments<'q>> {
    args.iter().fold(sqlx::query(sql), |q, arg| match *arg {
        Arg::Int(v) => q.bind(v),
        Arg::Text(v) => q.bind(v),
    })
}

/// Why a read on one path stopped.
enum Stop {
    Failed(Error),
    /// [`Reads`] deferred (locked, or over its time budget): run the read on the pool.
    Defer,
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

type Item<'f, T> = &'f (dyn Fn(&dyn Columns) -> Result<T> + Sync);

/// Where a read runs: the sqlx pool or [`Reads`]. The paging logic is written once over it.
trait Source {
    /// Every row of `sql`, mapped, and the first row's [`TOTAL_COLUMN`].
    async fn rows<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        item: Item<'_, T>,
    ) -> Result<(Vec<T>, i64), Stop>;
    /// The single integer `sql` selects.
    async fn count(&self, sql: &str, args: &[Arg<'_>]) -> Result<i64, Stop>;
}

struct Pool<'a>(&'a sqlx::AnyPool);

impl Source for Pool<'_> {
    async fn rows<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        item: Item<'_, T>,
    ) -> Result<(Vec<T>, i64), Stop> {
        let rows = bound(sql, args)
            .fetch_all(self.0)
            .await
            .map_err(Error::from)?;
        let total = match rows.first() {
            Some(row) => row.int(TOTAL_COLUMN)?,
            None => 0,
        };
        let items = rows.iter().map(|r| item(r)).collect::<Result<_>>()?;
        Ok((items, total))
    }

    async fn count(&self, sql: &str, args: &[Arg<'_>]) -> Result<i64, Stop> {
        let row = bound(sql, args)
            .fetch_one(self.0)
            .await
            .map_err(Error::from)?;
        Ok(row.try_get::<i64, _>(0).map_err(Error::from)?)
    }
}

impl Source for Reads {
    async fn rows<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        item: Item<'_, T>,
    ) -> Result<(Vec<T>, i64), Stop> {
        settle(self.run(sql, args, |stmt| {
            let names = names(stmt);
            let mut rows = stmt.raw_query();
            let (mut items, mut total) = (Vec::new(), 0);
            while let Some(row) = rows.next()? {
                let row = Named { row, names: &names };
                if items.is_empty() {
                    total = row.int(TOTAL_COLUMN)?;
                }
                items.push(item(&row)?);
            }
            Ok((items, total))
        }))
    }

    async fn count(&self, sql: &str, args: &[Arg<'_>]) -> Result<i64, Stop> {
        settle(self.run(sql, args, |stmt| {
            let mut rows = stmt.raw_query();
            match rows.next()? {
                Some(row) => Ok(row.get(0)?),
                None => Err(Error::internal("COUNT(*) returned no row")),
            }
        }))
    }
}

fn settle<T>(outcome: Outcome<T>) -> Result<T, Stop> {
    match outcome {
        Outcome::Done(result) => result.map_err(Stop::Failed),
        Outcome::Defer => Err(Stop::Defer),
    }
}

/// One page, in one query where it can: a page past the end has no rows and so no count; only
/// then the count statement runs, and the last page is read instead, as [`page_window`] clamps.
/// Page 1 without rows is an empty list, with no second query.
async fn page_from<S: Source, T>(
    source: &S,
    requested: u32,
    sql: &PageSql,
    args: &[Arg<'_>],
    item: Item<'_, T>,
) -> Result<Page<T>, Stop> {
    let limit = i64::from(PAGE_SIZE);
    let mut offset = i64::from(requested.max(1) - 1) * limit;
    let with_window = |offset: i64| {
        let mut all = Vec::with_capacity(args.len() + 2);
        all.extend_from_slice(args);
        all.extend([Arg::Int(limit), Arg::Int(offset)]);
        all
    };
    let (mut items, mut total) = source.rows(sql.page, &with_window(offset), item).await?;
    if items.is_empty() && offset > 0 {
        total = source.count(sql.count, args).await?;
        offset = page_window(total, requested).2;
        if total > 0 {
            (items, total) = source.rows(sql.page, &with_window(offset), item).await?;
        }
    }
    let shown = u32::try_from(offset / limit + 1).unwrap_or(u32::MAX);
    let (page, total_pages, _) = page_window(total, if items.is_empty() { 1 } else { shown });
    Ok(Page {
        items,
        page,
        total_pages,
        total: u64::try_from(total).unwrap_or(0),
    })
}

impl Db {
    /// One page of a list: `sql` with `args` (then the limit and offset), each row read by
    /// `item`. See [`PageSql`].
    pub(crate) async fn fetch_page<T>(
        &self,
        requested: u32,
        sql: &PageSql,
        args: &[Arg<'_>],
        item: impl Fn(&dyn Columns) -> Result<T> + Sync,
    ) -> Result<Page<T>> {
        if let Some(reads) = self.reads() {
            match page_from(reads, requested, sql, args, &item).await {
                Ok(page) => return Ok(page),
                Err(Stop::Failed(e)) => return Err(e),
                Err(Stop::Defer) => {}
            }
        }
        match page_from(&Pool(self.pool()), requested, sql, args, &item).await {
            Ok(page) => Ok(page),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::Defer) => Err(Error::internal("the pool deferred a read")),
        }
    }

    /// The first row of `sql` with `args`, read by `item`, if there is one.
    pub(crate) async fn read_one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        item: impl Fn(&dyn Columns) -> Result<T>,
    ) -> Result<Option<T>> {
        if let Some(reads) = self.reads() {
            let outcome = reads.run(sql, args, |stmt| {
                let names = names(stmt);
                let mut rows = stmt.raw_query();
                let row = rows.next()?;
                row.map(|row| item(&Named { row, names: &names }))
                    .transpose()
            });
            if let Outcome::Done(result) = outcome {
                return result;
            }
        }
        let row = bound(sql, args).fetch_optional(self.pool()).await?;
        row.map(|row| item(&row)).transpose()
    }
}

/// A stored `YYYY-MM-DD` date of column `col` (`None` for NULL).
pub(crate) fn date_from_row(row: &dyn Columns, col: &str) -> Result<Option<time::Date>> {
    match row.opt_text(col)? {
        None => Ok(None),
        Some(t) => parse_date(&t)
            .map(Some)
            .ok_or_else(|| Error::internal("a stored date is not YYYY-MM-DD")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::reads::tests::File;

    /// A database whose hot reads point at a *locked* other file: every read there is busy,
    /// so what comes back can only have come from the pool.
    async fn busy_db() -> (Db, File, rusqlite::Connection) {
        let db = Db::in_memory().await.unwrap();
        let file = File::new("fallback");
        let db = db.with_reads(Reads::open(&file.path).unwrap());
        let locker = file.lock();
        (db, file, locker)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_read_is_asked_again_on_the_pool() {
        let (db, _file, _locker) = busy_db().await;
        sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES (5, 'a@example.org', 'x', 1)")
            .execute(db.pool())
            .await
            .unwrap();
        let email = db
            .read_one(
                "SELECT email FROM users WHERE id = $1",
                &[Arg::Int(5)],
                |row| row.text("email"),
            )
            .await
            .unwrap();
        assert_eq!(email.as_deref(), Some("a@example.org"));
        assert_eq!(
            db.inline_read_counts(),
            Some((0, 1)),
            "deferred, not failed"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_over_budget_finishes_on_the_pool() {
        let file = File::new("slow");
        let db = Db::in_memory()
            .await
            .unwrap()
            .with_reads(Reads::open(&file.path).unwrap());
        let count = db
            .read_one(crate::reads::tests::SLOW, &[], |row| row.int("COUNT(*)"))
            .await
            .unwrap();
        assert_eq!(count, Some(5_000_000), "the whole count, from the pool");
        assert_eq!(
            db.inline_read_counts(),
            Some((0, 1)),
            "interrupted, then deferred"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_page_is_asked_again_on_the_pool() {
        let (db, _file, _locker) = busy_db().await;
        let page = db.open_requests(1).await.unwrap();
        assert_eq!((page.total, page.page, page.total_pages), (0, 1, 1));
        // The locked file has no `blood_requests` table: had the read not fallen back, this
        // would be an error.
        let past_the_end = db.open_requests(9).await.unwrap();
        assert_eq!(past_the_end.page, 1);
    }
}

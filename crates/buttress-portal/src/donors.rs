//! Donor profiles and the donor search.
//!
//! The search lists *available* donors (they ticked "available"), newest profile first, 20 a
//! page, filtered by blood group (one group, or every group compatible with a recipient) and
//! city (exact match on the normalised city key), optionally only those eligible to give today.
//! Six static SQL statements serve every filter, one for each combination of "has a city" and
//! "no group filter / one group / several groups", so that each can use the `donors_search
//! (city_key, blood_group, available)` index when a city is given (a statement switching a
//! filter off with a bound value, `($9 = '' OR city_key = $9)`, cannot). Several groups are
//! bound as eight parameters (unused ones are empty text, which matches no row); one group is
//! an equality, which SQLite seeks without building a temporary index for an `IN` list.
//! Eligibility and the excluded user, which never decide the index, are switched by bound
//! values. Every value is bound and no SQL is assembled from input: the statements are
//! compile-time literals picked by a `match`. One query returns a page and the number of
//! matches (a `COUNT(*)` subquery over the same filter, see `Db::fetch_page`).

use serde::Deserialize;
use time::Date;

use crate::db::{date_to_sql, now_unix, Db, Page};
use crate::domain::{eligibility_cutoff, format_date, BloodGroup, Eligibility};
use crate::error::{Error, FieldError, Result};
use crate::page::total_rows_column;
use crate::query::{date_from_row, Arg, Columns, PageSql};
use crate::validate::{city_key, Profile};

/// A donor's profile, with eligibility worked out for the day it was read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Donor {
    /// The donor's user id.
    pub user_id: i64,
    /// Name shown to searchers.
    pub display_name: String,
    /// Blood group.
    pub blood_group: BloodGroup,
    /// City as entered (spaces collapsed).
    pub city: String,
    /// Phone, `+` and digits; show only to signed-in viewers.
    pub phone: String,
    /// Last whole-blood donation.
    pub last_donation: Option<Date>,
    /// Willing to be contacted.
    pub available: bool,
    /// Contact through the registry only: the number is never revealed.
    pub relay_only: bool,
    /// Last profile change, Unix seconds.
    pub updated_at: i64,
    /// Whether the donor may give on the day the profile was read.
    pub eligibility: Eligibility,
}

/// What anyone may see of a donor in a list (the search page and `GET /api/donors`): name,
/// group, city and whether the donor can give now. Never the phone number, the last donation
/// or the first day the donor can give (which would tell the last donation): a number is
/// revealed only to the owner of a matching open request, one at a time, within a daily
/// quota, and logged for the donor ([`crate::reveals`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DonorView {
    /// Name shown to searchers. (No id: the account's key is nobody else's business.)
    pub display_name: String,
    /// Blood group (`"AB+"`).
    pub blood_group: String,
    /// City as entered.
    pub city: String,
    /// Whether the donor can give today.
    pub eligible: bool,
}

impl Donor {
    /// What anyone may see of this donor in a list.
    #[must_use]
    pub fn view(&self) -> DonorView {
        DonorView {
            display_name: self.display_name.clone(),
            blood_group: self.blood_group.as_str().to_string(),
            city: self.city.clone(),
            eligible: self.eligibility.is_eligible(),
        }
    }
}

/// Which blood groups a search asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupFilter {
    /// Every group.
    Any,
    /// Exactly this group.
    Exact(BloodGroup),
    /// Every donor group whose red cells this recipient group can receive.
    CompatibleWith(BloodGroup),
}

impl GroupFilter {
    /// The donor groups this filter lets through.
    #[must_use]
    pub fn groups(self) -> Vec<BloodGroup> {
        match self {
            GroupFilter::Any => BloodGroup::ALL.to_vec(),
            GroupFilter::Exact(g) => vec![g],
            GroupFilter::CompatibleWith(r) => r.compatible_donors(),
        }
    }
}

/// A checked donor search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DonorSearch {
    /// Blood groups to list.
    pub groups: GroupFilter,
    /// City to match (any form: it is normalised), or `None` for every city.
    pub city: Option<String>,
    /// Only donors eligible to give today.
    pub eligible_only: bool,
}

/// The search form as submitted (query string).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchInput {
    /// Blood group, or empty for any.
    #[serde(default)]
    pub blood_group: String,
    /// `exact` (default) or `compatible` (donors who can give to a recipient of `blood_group`).
    #[serde(default)]
    pub mode: String,
    /// City, or empty for any.
    #[serde(default)]
    pub city: String,
    /// Only donors eligible today (a checkbox).
    #[serde(default)]
    pub eligible_only: Option<String>,
    /// Page number, 1-based; anything unreadable means 1.
    #[serde(default)]
    pub page: String,
}

impl SearchInput {
    /// Checks the search and reads the page number (lenient: a bad page is page 1).
    ///
    /// # Errors
    /// [`Error::Invalid`] (fields `blood_group`, `mode`, `city`).
    pub fn validate(&self) -> Result<(DonorSearch, u32)> {
        let mut errors = Vec::new();
        let group = if self.blood_group.trim().is_empty() {
            None
        } else {
            match self.blood_group.parse::<BloodGroup>() {
                Ok(g) => Some(g),
                Err(e) => {
                    errors.push(FieldError::new("blood_group", e.to_string()));
                    None
                }
            }
        };
        let compatible = match self.mode.trim() {
            "" | "exact" => false,
            "compatible" => true,
            _ => {
                errors.push(FieldError::new("mode", "Choose exact or compatible."));
                false
            }
        };
        if self.city.chars().any(char::is_control) || self.city.chars().count() > 80 {
            errors.push(FieldError::new(
                "city",
                "Enter a city name of at most 80 characters.",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let groups = match (group, compatible) {
            (None, _) => GroupFilter::Any,
            (Some(g), false) => GroupFilter::Exact(g),
            (Some(g), true) => GroupFilter::CompatibleWith(g),
        };
        let city = Some(city_key(&self.city)).filter(|c| !c.is_empty());
        let eligible_only = self
            .eligible_only
            .as_deref()
            .is_some_and(|v| matches!(v.trim(), "on" | "true" | "1" | "yes"));
        let page = self.page.trim().parse::<u32>().unwrap_or(1);
        Ok((
            DonorSearch {
                groups,
                city,
                eligible_only,
            },
            page,
        ))
    }
}

// SQL text is assembled only from these literals, at compile time (`concat!`).
// `Any` cannot read SQLite's BOOLEAN, so `available` is read back as 0/1 (portable CASE).
macro_rules! donor_columns {
    () => {
        "user_id, display_name, blood_group, city, phone, last_donation, \
         CASE WHEN available THEN 1 ELSE 0 END AS available, contact, updated_at"
    };
}

/// The WHERE clause of a search: available donors, then the filters the search has (`$filter`,
/// a literal naming its own placeholders from `$4`), then the two that never decide the index:
/// $1 eligible-only flag (0/1), $2 eligibility cutoff date, $3 user id to leave out (0 = none).
macro_rules! search_where {
    ($filter:literal) => {
        concat!(
            " WHERE available = TRUE",
            $filter,
            " AND ($1 = 0 OR last_donation IS NULL OR last_donation <= $2) AND user_id <> $3"
        )
    };
}

/// A search's page statement (rows and [`crate::page::TOTAL_COLUMN`], newest profile first; the
/// `LIMIT … OFFSET …` placeholders in `$limit`) and its count statement (for a page past the
/// end), over the same filter.
macro_rules! search_statements {
    ($filter:literal, $limit:literal) => {
        PageSql {
            page: concat!(
                "SELECT ",
                donor_columns!(),
                total_rows_column!(concat!(" FROM donors", search_where!($filter))),
                " FROM donors",
                search_where!($filter),
                " ORDER BY updated_at DESC, user_id ASC LIMIT ",
                $limit
            ),
            count: concat!("SELECT COUNT(*) FROM donors", search_where!($filter)),
        }
    };
}

/// Every group, every city.
const SEARCH_ANY: PageSql = search_statements!("", "$4 OFFSET $5");
/// One group ($4), every city.
const SEARCH_GROUP: PageSql = search_statements!(" AND blood_group = $4", "$5 OFFSET $6");
/// Some groups ($4..$11, unused ones empty text, which matches no row), every city.
const SEARCH_GROUPS: PageSql = search_statements!(
    " AND blood_group IN ($4, $5, $6, $7, $8, $9, $10, $11)",
    "$12 OFFSET $13"
);
/// One city ($4), every group: the index's first column.
const SEARCH_CITY: PageSql = search_statements!(" AND city_key = $4", "$5 OFFSET $6");
/// One city ($4) and one group ($5): the index's three columns.
const SEARCH_CITY_GROUP: PageSql =
    search_statements!(" AND city_key = $4 AND blood_group = $5", "$6 OFFSET $7");
/// One city ($4) and some groups ($5..$12): the index's three columns, once per group.
const SEARCH_CITY_GROUPS: PageSql = search_statements!(
    " AND city_key = $4 AND blood_group IN ($5, $6, $7, $8, $9, $10, $11, $12)",
    "$13 OFFSET $14"
);

/// The group part of a search's filter. One group is its own case because SQLite reads an
/// `IN` list through a temporary index, which costs more than the rest of a small search.
#[derive(Debug, Clone, Copy)]
enum Groups {
    /// No group filter.
    Any,
    /// `blood_group = $n`.
    One(&'static str),
    /// `blood_group IN ($n, …)`, eight slots, unused ones empty.
    Some([&'static str; 8]),
}

/// The statements for a search with or without a city, and with its kind of group filter.
fn search_sql(city: bool, groups: Groups) -> &'static PageSql {
    match (city, groups) {
        (false, Groups::Any) => &SEARCH_ANY,
        (false, Groups::One(_)) => &SEARCH_GROUP,
        (false, Groups::Some(_)) => &SEARCH_GROUPS,
        (true, Groups::Any) => &SEARCH_CITY,
        (true, Groups::One(_)) => &SEARCH_CITY_GROUP,
        (true, Groups::Some(_)) => &SEARCH_CITY_GROUPS,
    }
}

/// The values a search binds, in placeholder order: the three common ones, then the city and
/// the group or groups when the search has them (which is also what picks the statement).
struct SearchBinds {
    eligible_only: i64,
    cutoff: String,
    exclude_user: i64,
    city: Option<String>,
    groups: Groups,
}

impl SearchBinds {
    fn new(search: &DonorSearch, today: Date, exclude_user: i64) -> Self {
        let groups = match search.groups {
            GroupFilter::Any => Groups::Any,
            filter => match filter.groups().as_slice() {
                [one] => Groups::One(one.as_str()),
                several => {
                    let mut slots = [""; 8];
                    for (slot, group) in slots.iter_mut().zip(several) {
                        *slot = group.as_str();
                    }
                    Groups::Some(slots)
                }
            },
        };
        SearchBinds {
            eligible_only: i64::from(search.eligible_only),
            cutoff: format_date(eligibility_cutoff(today)),
            exclude_user,
            city: search
                .city
                .as_deref()
                .map(city_key)
                .filter(|c| !c.is_empty()),
            groups,
        }
    }

    fn sql(&self) -> &'static PageSql {
        search_sql(self.city.is_some(), self.groups)
    }

    /// The values in placeholder order, from `$1`.
    fn args(&self) -> Vec<Arg<'_>> {
        let mut args = Vec::with_capacity(13);
        args.extend([
            Arg::Int(self.eligible_only),
            Arg::Text(&self.cutoff),
            Arg::Int(self.exclude_user),
        ]);
        if let Some(city) = &self.city {
            args.push(Arg::Text(city));
        }
        match &self.groups {
            Groups::Any => {}
            Groups::One(group) => args.push(Arg::Text(group)),
            Groups::Some(groups) => args.extend(groups.iter().map(|g| Arg::Text(g))),
        }
        args
    }
}

fn donor_from_row(row: &dyn Columns, today: Date) -> Result<Donor> {
    let last_donation = date_from_row(row, "last_donation")?;
    Ok(Donor {
        user_id: row.int("user_id")?,
        display_name: row.text("display_name")?,
        blood_group: row
            .text("blood_group")?
            .parse()
            .map_err(|_| Error::internal("a stored blood group is not one of the eight"))?,
        city: row.text("city")?,
        phone: row.text("phone")?,
        last_donation,
        available: row.int("available")? != 0,
        relay_only: row.text("contact")? == "relay",
        updated_at: row.int("updated_at")?,
        eligibility: Eligibility::on(today, last_donation),
    })
}

impl Db {
    /// Creates or replaces the donor profile of `user_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such user; database errors.
    pub async fn upsert_donor(
        &self,
        user_id: i64,
        profile: &Profile,
        today: Date,
    ) -> Result<Donor> {
        sqlx::query(
            "INSERT INTO donors (user_id, display_name, blood_group, city, city_key, phone, \
             last_donation, available, updated_at, contact) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name, \
             blood_group = excluded.blood_group, city = excluded.city, \
             city_key = excluded.city_key, phone = excluded.phone, \
             last_donation = excluded.last_donation, available = excluded.available, \
             updated_at = excluded.updated_at, contact = excluded.contact",
        )
        .bind(user_id)
        .bind(&profile.display_name)
        .bind(profile.blood_group.as_str())
        .bind(&profile.city)
        .bind(city_key(&profile.city))
        .bind(&profile.phone)
        .bind(date_to_sql(profile.last_donation))
        .bind(profile.available)
        .bind(now_unix())
        .bind(if profile.relay_only { "relay" } else { "phone" })
        .execute(self.pool())
        .await?;
        self.donor(user_id, today).await?.ok_or(Error::NotFound)
    }

    /// The donor profile of `user_id`, if there is one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn donor(&self, user_id: i64, today: Date) -> Result<Option<Donor>> {
        let sql = concat!(
            "SELECT ",
            donor_columns!(),
            " FROM donors WHERE user_id = $1"
        );
        self.read_one(sql, &[Arg::Int(user_id)], |row| donor_from_row(row, today))
            .await
    }

    /// One page of available donors matching `search`, eligibility computed for `today`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn search_donors(
        &self,
        search: &DonorSearch,
        page: u32,
        today: Date,
    ) -> Result<Page<Donor>> {
        self.search(search, page, today, 0).await
    }

    pub(crate) async fn search(
        &self,
        search: &DonorSearch,
        page: u32,
        today: Date,
        exclude_user: i64,
    ) -> Result<Page<Donor>> {
        if search.city.as_deref().is_some_and(|c| c.contains('\0')) {
            // PostgreSQL text cannot hold NUL; such a city can match nothing.
            return Err(Error::invalid(
                "city",
                "Remove the control characters (such as NUL).",
            ));
        }
        let binds = SearchBinds::new(search, today, exclude_user);
        self.fetch_page(page, binds.sql(), &binds.args(), |row| {
            donor_from_row(row, today)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sqlx::Row as _;
    use time::macros::date;

    /// SQLite's plan for `sql` with `binds` (the `detail` column of `EXPLAIN QUERY PLAN`).
    async fn plan(db: &Db, sql: &str, binds: &SearchBinds, page: bool) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut args = binds.args();
        if page {
            args.extend([Arg::Int(20), Arg::Int(0)]);
        }
        crate::query::bound(&explain, &args)
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn search_uses_the_index_on_sqlite() {
        let db = Db::in_memory().await.unwrap();
        let today = date!(2026 - 06 - 01);
        let search = |groups, city: Option<&str>, eligible_only| DonorSearch {
            groups,
            city: city.map(Into::into),
            eligible_only,
        };
        let group = GroupFilter::Exact(BloodGroup::OPos);
        let compatible = GroupFilter::CompatibleWith(BloodGroup::AbPos);
        let only_one = GroupFilter::CompatibleWith(BloodGroup::ONeg);
        for eligible_only in [false, true] {
            for exclude in [0, 42] {
                // (search, the index columns it seeks, whether its page comes in order)
                for (s, seek, ordered) in [
                    (
                        search(group, Some("London"), eligible_only),
                        "city_key=? AND blood_group=? AND available=?",
                        true,
                    ),
                    (
                        search(compatible, Some("London"), eligible_only),
                        "city_key=? AND blood_group=? AND available=?",
                        false,
                    ),
                    (
                        search(only_one, Some("London"), eligible_only),
                        "city_key=? AND blood_group=? AND available=?",
                        true,
                    ),
                    (
                        search(GroupFilter::Any, Some("London"), eligible_only),
                        "city_key=?",
                        false,
                    ),
                ] {
                    let binds = SearchBinds::new(&s, today, exclude);
                    for (sql, page) in [(binds.sql().page, true), (binds.sql().count, false)] {
                        let plan = plan(&db, sql, &binds, page).await;
                        let seeks = |step: &String| {
                            step.starts_with("SEARCH donors USING ")
                                && step.ends_with(&format!("INDEX donors_search ({seek})"))
                        };
                        // The page statement searches twice: its rows and its count.
                        let searches = plan.iter().filter(|step| seeks(step)).count();
                        assert_eq!(searches, 1 + usize::from(page), "{s:?}: {sql}\n{plan:#?}");
                        assert!(
                            !plan.iter().any(|step| step.starts_with("SCAN donors")),
                            "{s:?}: {sql}\n{plan:#?}"
                        );
                        // City and one group: the rows come from the index in page order.
                        let sorts = plan.iter().any(|step| step.contains("TEMP B-TREE"));
                        assert_eq!(sorts, page && !ordered, "{s:?}: {sql}\n{plan:#?}");
                        // Counting reads the index alone.
                        if s.groups != GroupFilter::Any {
                            assert!(
                                plan.iter().any(|step| step.starts_with(
                                    "SEARCH donors USING COVERING INDEX donors_search"
                                )),
                                "{s:?}: {sql}\n{plan:#?}"
                            );
                        }
                    }
                }
            }
        }
        // Without a city the index (city first) cannot seek: a scan (of the table, or of the
        // index when it covers the count).
        let binds = SearchBinds::new(&search(group, None, false), today, 0);
        assert!(plan(&db, binds.sql().count, &binds, false)
            .await
            .iter()
            .any(|step| step.starts_with("SCAN donors")));
    }

    /// The placeholder numbers in `sql`, sorted, without repeats.
    fn placeholders(sql: &str) -> Vec<usize> {
        let mut found: Vec<usize> = sql
            .split('$')
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    #[test]
    fn statements_match_their_binds() {
        // PostgreSQL refuses a statement whose placeholders and binds differ in number; the
        // page statement takes LIMIT and OFFSET after the filter's values.
        let today = date!(2026 - 06 - 01);
        for groups in [
            GroupFilter::Any,
            GroupFilter::Exact(BloodGroup::ONeg),
            GroupFilter::CompatibleWith(BloodGroup::ONeg),
            GroupFilter::CompatibleWith(BloodGroup::AbNeg),
        ] {
            for city in [None, Some("Leeds".to_string())] {
                let s = DonorSearch {
                    groups,
                    city,
                    eligible_only: false,
                };
                let binds = SearchBinds::new(&s, today, 0);
                let filter = 3
                    + usize::from(binds.city.is_some())
                    + match binds.groups {
                        Groups::Any => 0,
                        Groups::One(_) => 1,
                        Groups::Some(_) => 8,
                    };
                let sql = binds.sql();
                assert_eq!(
                    placeholders(sql.count),
                    (1..=filter).collect::<Vec<_>>(),
                    "{}",
                    sql.count
                );
                assert_eq!(
                    placeholders(sql.page),
                    (1..=filter + 2).collect::<Vec<_>>(),
                    "{}",
                    sql.page
                );
            }
        }
    }
}

//! Donor profiles and the donor search.
//!
//! The search lists *available* donors (they ticked "available"), newest profile first, 20 a
//! page, filtered by blood group (one group, or every group compatible with a recipient) and
//! city (exact match on the normalised city key), optionally only those eligible to give today.
//! One static SQL statement serves every filter: the group set is always bound as eight
//! parameters (unused ones are empty text, which matches no row) and the other filters are
//! switched on and off by bound values, so no SQL is ever assembled from input.

use serde::Deserialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use time::Date;

use crate::db::{date_from_row, date_to_sql, now_unix, page_window, Db, Page, PAGE_SIZE};
use crate::domain::{eligibility_cutoff, format_date, BloodGroup, Eligibility};
use crate::error::{Error, FieldError, Result};
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
    /// Last profile change, Unix seconds.
    pub updated_at: i64,
    /// Whether the donor may give on the day the profile was read.
    pub eligibility: Eligibility,
}

/// What a viewer may see of a donor (for the JSON API; the pages use the same rule): the
/// phone number only when signed in, and whether and from when the donor can give, not the
/// date of their last donation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DonorView {
    /// The donor's user id.
    pub user_id: i64,
    /// Name shown to searchers.
    pub display_name: String,
    /// Blood group (`"AB+"`).
    pub blood_group: String,
    /// City as entered.
    pub city: String,
    /// Phone, only for signed-in viewers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Whether the donor can give today.
    pub eligible: bool,
    /// When not yet eligible, the first day they can give (`YYYY-MM-DD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligible_from: Option<String>,
}

impl Donor {
    /// What a viewer may see of this donor; `signed_in` decides whether the phone is included.
    #[must_use]
    pub fn view(&self, signed_in: bool) -> DonorView {
        DonorView {
            user_id: self.user_id,
            display_name: self.display_name.clone(),
            blood_group: self.blood_group.as_str().to_string(),
            city: self.city.clone(),
            phone: signed_in.then(|| self.phone.clone()),
            eligible: self.eligibility.is_eligible(),
            eligible_from: match self.eligibility {
                Eligibility::Eligible => None,
                Eligibility::NotYet { from } => Some(format_date(from)),
            },
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
         CASE WHEN available THEN 1 ELSE 0 END AS available, updated_at"
    };
}

/// The filter shared by the count and the page query: $1..$8 groups, $9 city key ('' = any),
/// $10 eligible-only flag (0/1), $11 eligibility cutoff date, $12 user id to leave out (0 = none).
macro_rules! search_where {
    () => {
        " WHERE available = TRUE \
         AND blood_group IN ($1, $2, $3, $4, $5, $6, $7, $8) \
         AND ($9 = '' OR city_key = $9) \
         AND ($10 = 0 OR last_donation IS NULL OR last_donation <= $11) \
         AND user_id <> $12"
    };
}

fn donor_from_row(row: &AnyRow, today: Date) -> Result<Donor> {
    let group: String = row.try_get("blood_group")?;
    let last_donation = date_from_row(row, "last_donation")?;
    Ok(Donor {
        user_id: row.try_get("user_id")?,
        display_name: row.try_get("display_name")?,
        blood_group: group
            .parse()
            .map_err(|_| Error::internal("a stored blood group is not one of the eight"))?,
        city: row.try_get("city")?,
        phone: row.try_get("phone")?,
        last_donation,
        available: row.try_get::<i64, _>("available")? != 0,
        updated_at: row.try_get("updated_at")?,
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
             last_donation, available, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name, \
             blood_group = excluded.blood_group, city = excluded.city, \
             city_key = excluded.city_key, phone = excluded.phone, \
             last_donation = excluded.last_donation, available = excluded.available, \
             updated_at = excluded.updated_at",
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
        let row = sqlx::query(sql)
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| donor_from_row(&r, today)).transpose()
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
        let groups = search.groups.groups();
        let group = |i: usize| groups.get(i).map_or("", |g| g.as_str());
        let city = search.city.as_deref().map(city_key).unwrap_or_default();
        let eligible_only = i64::from(search.eligible_only);
        let cutoff = format_date(eligibility_cutoff(today));

        macro_rules! bind_filter {
            ($q:expr) => {
                $q.bind(group(0))
                    .bind(group(1))
                    .bind(group(2))
                    .bind(group(3))
                    .bind(group(4))
                    .bind(group(5))
                    .bind(group(6))
                    .bind(group(7))
                    .bind(city.as_str())
                    .bind(eligible_only)
                    .bind(cutoff.as_str())
                    .bind(exclude_user)
            };
        }

        let count_sql = concat!("SELECT COUNT(*) FROM donors", search_where!());
        let total: i64 = bind_filter!(sqlx::query(count_sql))
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        let (page, total_pages, offset) = page_window(total, page);
        let page_sql = concat!(
            "SELECT ",
            donor_columns!(),
            " FROM donors",
            search_where!(),
            " ORDER BY updated_at DESC, user_id ASC LIMIT $13 OFFSET $14"
        );
        let rows = bind_filter!(sqlx::query(page_sql))
            .bind(i64::from(PAGE_SIZE))
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(|r| donor_from_row(r, today))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            page,
            total_pages,
            total: u64::try_from(total).unwrap_or(0),
        })
    }
}

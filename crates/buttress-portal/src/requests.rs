//! Blood requests: create, read, list open ones, close (owner only), and the eligible donors
//! who match one.
//!
//! Matching donors for a request: available, eligible today, of a group whose red cells the
//! request's group can receive ([`BloodGroup::compatible_donors`]), in the request's city
//! (same normalised key), the request's owner left out.

use time::Date;

use crate::db::{new_id, now_unix, Db, Page};
use crate::domain::{BloodGroup, RequestStatus, Urgency};
use crate::donors::{Donor, DonorSearch, GroupFilter};
use crate::error::{Error, Result};
use crate::page::total_rows_column;
use crate::query::{Arg, Columns, PageSql};
use crate::validate::{city_key, NewRequest};

/// A blood request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BloodRequest {
    /// The request's id.
    pub id: i64,
    /// The user who made it; only they may close it.
    pub owner_id: i64,
    /// The recipient's blood group.
    pub blood_group: BloodGroup,
    /// City (spaces collapsed).
    pub city: String,
    /// Hospital.
    pub hospital: String,
    /// Units needed, 1..=20.
    pub units: u8,
    /// How urgent.
    pub urgency: Urgency,
    /// Open or closed.
    pub status: RequestStatus,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Closing time, Unix seconds.
    pub closed_at: Option<i64>,
}

impl BloodRequest {
    /// Whether `user_id` owns this request (and may close it).
    #[must_use]
    pub fn is_owned_by(&self, user_id: i64) -> bool {
        self.owner_id == user_id
    }
}

macro_rules! request_columns {
    () => {
        "id, owner_id, blood_group, city, hospital, units, urgency, status, created_at, closed_at"
    };
}

fn request_from_row(row: &dyn Columns) -> Result<BloodRequest> {
    let bad = |what: &str| Error::internal(format!("a stored request has a bad {what}"));
    Ok(BloodRequest {
        id: row.int("id")?,
        owner_id: row.int("owner_id")?,
        blood_group: row
            .text("blood_group")?
            .parse()
            .map_err(|_| bad("blood group"))?,
        city: row.text("city")?,
        hospital: row.text("hospital")?,
        units: u8::try_from(row.int("units")?).map_err(|_| bad("unit count"))?,
        urgency: Urgency::parse(&row.text("urgency")?).ok_or_else(|| bad("urgency"))?,
        status: RequestStatus::parse(&row.text("status")?).ok_or_else(|| bad("status"))?,
        created_at: row.int("created_at")?,
        closed_at: row.opt_int("closed_at")?,
    })
}

impl Db {
    /// Inserts an open request inside `tx` (one attempt: a random id collides with odds of
    /// 2^-53, answered as [`Error::Conflict`]).
    pub(crate) async fn insert_request(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        owner_id: i64,
        new: &NewRequest,
    ) -> Result<BloodRequest> {
        let created_at = now_unix();
        let id = new_id();
        sqlx::query(
            "INSERT INTO blood_requests (id, owner_id, blood_group, city, city_key, hospital, \
             units, urgency, status, created_at, closed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, NULL)",
        )
        .bind(id)
        .bind(owner_id)
        .bind(new.blood_group.as_str())
        .bind(&new.city)
        .bind(city_key(&new.city))
        .bind(&new.hospital)
        .bind(i64::from(new.units))
        .bind(new.urgency.as_str())
        .bind(created_at)
        .execute(&mut **tx)
        .await?;
        Ok(BloodRequest {
            id,
            owner_id,
            blood_group: new.blood_group,
            city: new.city.clone(),
            hospital: new.hospital.clone(),
            units: new.units,
            urgency: new.urgency,
            status: RequestStatus::Open,
            created_at,
            closed_at: None,
        })
    }

    /// Creates an open request owned by `owner_id` (no cap: see
    /// [`Db::create_request_capped`], which the HTTP layer uses).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the owner does not exist; database errors.
    pub async fn create_request(&self, owner_id: i64, new: &NewRequest) -> Result<BloodRequest> {
        let created_at = now_unix();
        for _ in 0..3 {
            let id = new_id();
            let result = sqlx::query(
                "INSERT INTO blood_requests (id, owner_id, blood_group, city, city_key, hospital, \
                 units, urgency, status, created_at, closed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, NULL)",
            )
            .bind(id)
            .bind(owner_id)
            .bind(new.blood_group.as_str())
            .bind(&new.city)
            .bind(city_key(&new.city))
            .bind(&new.hospital)
            .bind(i64::from(new.units))
            .bind(new.urgency.as_str())
            .bind(created_at)
            .execute(self.pool())
            .await
            .map_err(Error::from);
            match result {
                Ok(_) => {
                    return Ok(BloodRequest {
                        id,
                        owner_id,
                        blood_group: new.blood_group,
                        city: new.city.clone(),
                        hospital: new.hospital.clone(),
                        units: new.units,
                        urgency: new.urgency,
                        status: RequestStatus::Open,
                        created_at,
                        closed_at: None,
                    })
                }
                Err(Error::Conflict) => continue, // a random id collided: draw another
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict)
    }

    /// The request with this id.
    ///
    /// # Errors
    /// [`Error::NotFound`]; database errors.
    pub async fn request(&self, id: i64) -> Result<BloodRequest> {
        let sql = concat!(
            "SELECT ",
            request_columns!(),
            " FROM blood_requests WHERE id = $1"
        );
        self.read_one(sql, &[Arg::Int(id)], request_from_row)
            .await?
            .ok_or(Error::NotFound)
    }

    /// One page of open requests, most urgent first, then newest first (one query; see
    /// `Db::fetch_page`).
    ///
    /// # Errors
    /// Database errors.
    pub async fn open_requests(&self, page: u32) -> Result<Page<BloodRequest>> {
        const SQL: PageSql = PageSql {
            page: concat!(
                "SELECT ",
                request_columns!(),
                total_rows_column!(" FROM blood_requests WHERE status = 'open'"),
                " FROM blood_requests WHERE status = 'open' ORDER BY \
                 CASE urgency WHEN 'critical' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, \
                 created_at DESC, id ASC LIMIT $1 OFFSET $2"
            ),
            count: "SELECT COUNT(*) FROM blood_requests WHERE status = 'open'",
        };
        self.fetch_page(page, &SQL, &[], request_from_row).await
    }

    /// One page of `owner_id`'s requests, open and closed, newest first (one query; see
    /// `Db::fetch_page`).
    ///
    /// # Errors
    /// Database errors.
    pub async fn requests_of(&self, owner_id: i64, page: u32) -> Result<Page<BloodRequest>> {
        const SQL: PageSql = PageSql {
            page: concat!(
                "SELECT ",
                request_columns!(),
                total_rows_column!(" FROM blood_requests WHERE owner_id = $1"),
                " FROM blood_requests WHERE owner_id = $1 \
                 ORDER BY created_at DESC, id ASC LIMIT $2 OFFSET $3"
            ),
            count: "SELECT COUNT(*) FROM blood_requests WHERE owner_id = $1",
        };
        self.fetch_page(page, &SQL, &[Arg::Int(owner_id)], request_from_row)
            .await
    }

    /// Closes request `id` on behalf of `user_id`. Closing a closed request again is a no-op.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such request; [`Error::Forbidden`] when `user_id`
    /// is not its owner; database errors.
    pub async fn close_request(&self, id: i64, user_id: i64) -> Result<BloodRequest> {
        let request = self.request(id).await?;
        if !request.is_owned_by(user_id) {
            return Err(Error::Forbidden);
        }
        if request.status == RequestStatus::Closed {
            return Ok(request);
        }
        let closed_at = now_unix();
        sqlx::query(
            "UPDATE blood_requests SET status = 'closed', closed_at = $1 \
             WHERE id = $2 AND owner_id = $3 AND status = 'open'",
        )
        .bind(closed_at)
        .bind(id)
        .bind(user_id)
        .execute(self.pool())
        .await?;
        self.request(id).await
    }

    /// One page of eligible, available donors who can give to `request` in its city, for
    /// `today`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn matching_donors(
        &self,
        request: &BloodRequest,
        page: u32,
        today: Date,
    ) -> Result<Page<Donor>> {
        let search = DonorSearch {
            groups: GroupFilter::CompatibleWith(request.blood_group),
            city: Some(request.city.clone()),
            eligible_only: true,
        };
        self.search(&search, page, today, request.owner_id).await
    }
}

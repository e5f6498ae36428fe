//! Contact data only where there is a reason: reveals, relayed messages, and the caps.
//!
//! | rule | default | setting |
//! | --- | --- | --- |
//! | who may reveal a phone number | a verified account that owns an open request the donor matches (group compatible, same city, available, eligible today, not the owner) | — |
//! | reveals (and relayed messages) per account | 10 in any 24 hours | `BUTTRESS_REVEAL_QUOTA` |
//! | open requests per account | 3 | `BUTTRESS_OPEN_REQUEST_CAP` |
//! | donors who chose "through the registry only" | their number is never shown; one relayed message per request | — |
//!
//! Every reveal and relay is a row of `reveals` (requester, donor, request, kind, time) that the
//! donor's profile lists. Showing the same donor's number again for the same request costs no
//! quota and writes no second row. The quota and the cap are counted inside a transaction that
//! first locks the account's `users` row (`UPDATE users SET id = id WHERE id = $1`: a row lock on
//! PostgreSQL, the write lock on SQLite), so parallel requests from one account cannot overshoot
//! them on either database.
//!
//! A donor who does not match, does not exist or is not visible is one answer,
//! [`Error::NotFound`], so the endpoint cannot be used to probe ids.

use time::Date;

use crate::db::{new_id, now_unix, Db};
use crate::domain::RequestStatus;
use crate::donors::Donor;
use crate::error::{Error, Result};
use crate::requests::BloodRequest;
use crate::validate::{city_key, NewRequest};
use sqlx::Row;

/// The window of the reveal quota.
pub const QUOTA_WINDOW_SECS: i64 = 86_400;

/// What a reveal or relay was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RevealKind {
    /// The phone number was shown.
    Phone,
    /// A message was relayed by mail.
    Relay,
}

impl RevealKind {
    /// `phone` or `relay`, as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RevealKind::Phone => "phone",
            RevealKind::Relay => "relay",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "relay" {
            RevealKind::Relay
        } else {
            RevealKind::Phone
        }
    }
}

/// One line of a donor's reveal log (or of a requester's own list).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevealEntry {
    /// When, Unix seconds.
    pub at: i64,
    /// Phone shown or message relayed.
    pub kind: RevealKind,
    /// The request it was for.
    pub request_id: i64,
    /// The request's blood group, city and hospital.
    pub request: String,
    /// The other party: for the donor's log, the requester's email; for the requester's list,
    /// the donor's display name.
    pub who: String,
    /// For the requester's own list, the number that was shown (none for relays).
    pub phone: Option<String>,
}

/// Whether `donor` may be contacted for `request` on `today` (see the module docs).
#[must_use]
pub fn donor_matches(request: &BloodRequest, donor: &Donor) -> bool {
    request.status == RequestStatus::Open
        && donor.available
        && donor.eligibility.is_eligible()
        && donor.user_id != request.owner_id
        && request
            .blood_group
            .compatible_donors()
            .contains(&donor.blood_group)
        && city_key(&donor.city) == city_key(&request.city)
}

impl Db {
    /// Creates a request unless `owner_id` already has `cap` open ones.
    ///
    /// # Errors
    /// [`Error::Limit`] at the cap; as [`Db::create_request`] otherwise.
    pub async fn create_request_capped(
        &self,
        owner_id: i64,
        new: &NewRequest,
        cap: u32,
    ) -> Result<BloodRequest> {
        let mut tx = self.pool().begin().await?;
        lock_account(&mut tx, owner_id).await?;
        let open: i64 = sqlx::query(
            "SELECT COUNT(*) FROM blood_requests WHERE owner_id = $1 AND status = 'open'",
        )
        .bind(owner_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if open >= i64::from(cap) {
            return Err(Error::Limit(
                "You have as many open requests as an account may have. Close one before posting another.",
            ));
        }
        let created = self.insert_request(&mut tx, owner_id, new).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Records that `requester_id` reveals `donor`'s number (or relays a message) for
    /// `request`, within `quota` per [`QUOTA_WINDOW_SECS`]. Returns whether a new row was
    /// written (`false`: already revealed for this request, no quota spent).
    ///
    /// The caller has checked the requester (verified, owner of `request`) and
    /// [`donor_matches`].
    ///
    /// # Errors
    /// [`Error::Limit`] when the quota is spent; database errors.
    pub async fn record_reveal(
        &self,
        request: &BloodRequest,
        requester_id: i64,
        donor: &Donor,
        kind: RevealKind,
        quota: u32,
    ) -> Result<bool> {
        let now = now_unix();
        let mut tx = self.pool().begin().await?;
        lock_account(&mut tx, requester_id).await?;
        let done = sqlx::query(
            "SELECT COUNT(*) FROM reveals WHERE request_id = $1 AND donor_id = $2 AND kind = $3",
        )
        .bind(request.id)
        .bind(donor.user_id)
        .bind(kind.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64, _>(0)?;
        if done > 0 {
            return Ok(false);
        }
        let used: i64 =
            sqlx::query("SELECT COUNT(*) FROM reveals WHERE requester_id = $1 AND created_at > $2")
                .bind(requester_id)
                .bind(now - QUOTA_WINDOW_SECS)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if used >= i64::from(quota) {
            return Err(Error::Limit(
                "You have used today's allowance of contact details. Try again tomorrow.",
            ));
        }
        sqlx::query(
            "INSERT INTO reveals (id, request_id, requester_id, donor_id, kind, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(request.id)
        .bind(requester_id)
        .bind(donor.user_id)
        .bind(kind.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Who saw `donor_id`'s number or sent them a message, newest first (at most 200).
    ///
    /// # Errors
    /// Database errors.
    pub async fn reveals_of_donor(&self, donor_id: i64) -> Result<Vec<RevealEntry>> {
        let rows = sqlx::query(
            "SELECT r.created_at, r.kind, r.request_id, q.blood_group, q.city, q.hospital, u.email \
             FROM reveals r JOIN blood_requests q ON q.id = r.request_id \
             JOIN users u ON u.id = r.requester_id \
             WHERE r.donor_id = $1 ORDER BY r.created_at DESC, r.id LIMIT 200",
        )
        .bind(donor_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RevealEntry {
                    at: row.try_get("created_at")?,
                    kind: RevealKind::parse(&row.try_get::<String, _>("kind")?),
                    request_id: row.try_get("request_id")?,
                    request: request_label(row)?,
                    who: row.try_get("email")?,
                    phone: None,
                })
            })
            .collect()
    }

    /// The reveals `requester_id` made, newest first (at most 200), with the numbers shown.
    ///
    /// # Errors
    /// Database errors.
    pub async fn reveals_by(&self, requester_id: i64) -> Result<Vec<RevealEntry>> {
        let rows = sqlx::query(
            "SELECT r.created_at, r.kind, r.request_id, q.blood_group, q.city, q.hospital, \
             d.display_name, d.phone, d.contact \
             FROM reveals r JOIN blood_requests q ON q.id = r.request_id \
             JOIN donors d ON d.user_id = r.donor_id \
             WHERE r.requester_id = $1 ORDER BY r.created_at DESC, r.id LIMIT 200",
        )
        .bind(requester_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let kind = RevealKind::parse(&row.try_get::<String, _>("kind")?);
                let relay_only = row.try_get::<String, _>("contact")? == "relay";
                Ok(RevealEntry {
                    at: row.try_get("created_at")?,
                    kind,
                    request_id: row.try_get("request_id")?,
                    request: request_label(row)?,
                    who: row.try_get("display_name")?,
                    phone: (kind == RevealKind::Phone && !relay_only)
                        .then(|| row.try_get("phone"))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// The donors of `request` whose number the requester revealed: (donor id, phone).
    ///
    /// # Errors
    /// Database errors.
    pub async fn revealed_for(
        &self,
        request_id: i64,
        requester_id: i64,
    ) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT d.user_id, d.phone FROM reveals r JOIN donors d ON d.user_id = r.donor_id \
             WHERE r.request_id = $1 AND r.requester_id = $2 AND r.kind = 'phone' \
             AND d.contact = 'phone'",
        )
        .bind(request_id)
        .bind(requester_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("user_id")?, row.try_get("phone")?)))
            .collect()
    }

    /// The request `id` and the donor `donor_id` as of `today`, if the donor exists.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such request; database errors.
    pub async fn request_and_donor(
        &self,
        id: i64,
        donor_id: i64,
        today: Date,
    ) -> Result<(BloodRequest, Option<Donor>)> {
        let request = self.request(id).await?;
        let donor = self.donor(donor_id, today).await?;
        Ok((request, donor))
    }
}

/// `AB+ · London · Royal London` from a row with those columns.
fn request_label(row: &sqlx::any::AnyRow) -> Result<String> {
    Ok(format!(
        "{} · {} · {}",
        row.try_get::<String, _>("blood_group")?,
        row.try_get::<String, _>("city")?,
        row.try_get::<String, _>("hospital")?
    ))
}

/// Takes the account's row lock for the rest of the transaction (see the module docs).
pub(crate) async fn lock_account(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
) -> Result<()> {
    let done = sqlx::query("UPDATE users SET id = id WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

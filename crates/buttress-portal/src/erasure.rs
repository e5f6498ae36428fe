//! Donors own their data: everything held about an account, and its erasure.
//!
//! * [`Db::export_account`] gathers the account, its donor profile, its requests and both sides
//!   of the reveal log as one JSON document (the HTTP layer adds the sessions and serves it
//!   only after the password was asked again).
//! * [`Db::erase_account`] deletes, in **one transaction**, every reveal that names the account
//!   (as donor or requester, and those of its requests), its requests, its donor profile, its
//!   tokens, its sessions when they live in this database (the rows of the portal's own
//!   application ids, and rows no application reads any more: written before application ids,
//!   see [`crate::sessions`]), and the account itself. Either all of it goes or nothing does;
//!   afterwards the address can sign up again as a stranger. The HTTP layer then signs the
//!   account out everywhere through the session layer (its credentials epoch), which reaches
//!   sessions kept elsewhere and every instance.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), buttress_portal::Error> {
//! use buttress_portal::{Accounts, Db, PasswordParams, SignUpOutcome};
//! use buttress_portal::validate::SignUpInput;
//! let db = Db::in_memory().await?;
//! let accounts = Accounts::new(db.clone(), PasswordParams::insecure_fast_for_tests()).await?;
//! let input = SignUpInput { email: "ada@example.org".into(), password: "correct horse battery".into() };
//! let SignUpOutcome::Created(user) = accounts.sign_up(&input).await? else { unreachable!() };
//! let doc = db.export_account(user.id, buttress_portal::db::today_utc()).await?;
//! assert_eq!(doc["account"]["email"], "ada@example.org");
//! assert!(db.erase_account(user.id, &[]).await?);
//! assert!(accounts.user(user.id).await?.is_none());
//! # Ok(()) }
//! ```

use serde_json::{json, Value};
use sqlx::Row;
use time::Date;

use crate::db::Db;
use crate::domain::format_date;
use crate::error::{Error, Result};

/// The `app_id` the library's migration gives session rows made before application ids.
const LEGACY_APP: &str = "-";

impl Db {
    /// Everything the portal holds about `user_id` (without sessions, which the session layer
    /// holds), as JSON.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such account; database errors.
    pub async fn export_account(&self, user_id: i64, today: Date) -> Result<Value> {
        let row = sqlx::query("SELECT email, created_at, verified_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(Error::NotFound)?;
        let account = json!({
            "email": row.try_get::<String, _>("email")?,
            "created_at": row.try_get::<i64, _>("created_at")?,
            "verified_at": row.try_get::<Option<i64>, _>("verified_at")?,
        });
        let profile = self.donor(user_id, today).await?.map(|d| {
            json!({
                "display_name": d.display_name,
                "blood_group": d.blood_group.as_str(),
                "city": d.city,
                "phone": d.phone,
                "last_donation": d.last_donation.map(format_date),
                "available": d.available,
                "contact": if d.relay_only { "registry only" } else { "phone, revealed for a matching request" },
                "updated_at": d.updated_at,
            })
        });
        let mut requests = Vec::new();
        let mut page = 1;
        loop {
            let p = self.requests_of(user_id, page).await?;
            requests.extend(p.items.iter().map(|r| {
                json!({
                    "id": r.id,
                    "blood_group": r.blood_group.as_str(),
                    "city": r.city,
                    "hospital": r.hospital,
                    "units": r.units,
                    "urgency": r.urgency.as_str(),
                    "status": r.status.as_str(),
                    "created_at": r.created_at,
                    "closed_at": r.closed_at,
                })
            }));
            if !p.has_next() {
                break;
            }
            page += 1;
        }
        Ok(json!({
            "account": account,
            "donor_profile": profile,
            "blood_requests": requests,
            "reveals_of_my_contact": self.reveals_of_donor(user_id).await?,
            "reveals_i_made": self.reveals_by(user_id).await?,
        }))
    }

    /// Erases the account `user_id` and everything that names it, in one transaction (see the
    /// module docs). `session_apps`: when sessions live in this database, the application ids
    /// of the portal's session rows (the keyring's); the account's rows of the session layer's
    /// `buttress_sessions` table with one of these ids, or with the ids of rows no application
    /// reads (`""` written before binding, `-` before application ids), are deleted too.
    /// Another application's rows on the same database are left alone. Returns whether there
    /// was such an account.
    ///
    /// # Errors
    /// Database errors (nothing is deleted then).
    pub async fn erase_account(
        &self,
        user_id: i64,
        session_apps: &[buttress::secret::AppId],
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let by_id: [&str; 5] = [
            "DELETE FROM reveals WHERE donor_id = $1 OR requester_id = $1 \
             OR request_id IN (SELECT id FROM blood_requests WHERE owner_id = $1)",
            "DELETE FROM blood_requests WHERE owner_id = $1",
            "DELETE FROM donors WHERE user_id = $1",
            "DELETE FROM account_tokens WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ];
        let mut existed = false;
        for (i, sql) in by_id.iter().enumerate() {
            let done = sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
            if i == by_id.len() - 1 {
                existed = done.rows_affected() == 1;
            }
        }
        if !session_apps.is_empty() {
            let nobody = [crate::sessions::UNBOUND_APP, LEGACY_APP];
            let apps = session_apps.iter().map(|a| a.as_str()).chain(nobody);
            for app in apps {
                sqlx::query("DELETE FROM buttress_sessions WHERE user_id = $1 AND app_id = $2")
                    .bind(user_id.to_string())
                    .bind(app)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(existed)
    }
}

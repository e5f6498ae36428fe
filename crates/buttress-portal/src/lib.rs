//! The reference portal: a blood-donor registry built only on Buttress's layers.
//!
//! This crate holds everything the portal does that needs no HTTP session: storage on SQLite
//! or PostgreSQL ([`db`]), the domain ([`domain`]), input rules ([`validate`]), accounts with
//! argon2id and no user enumeration ([`accounts`]), donor search ([`donors`]), blood requests
//! ([`requests`]), contact data only for a reason ([`reveals`]), mailed links ([`tokens`],
//! [`mail`]), export and erasure ([`erasure`]), the portal's deploy checks ([`check`]),
//! server-rendered pages ([`render`]) and demo data ([`seed`]); [`web`] is the
//! thin HTTP layer over these (routes, sessions, CSRF) and [`web::build`] wraps it in the whole
//! Buttress stack, as `buttress serve` runs it.
//!
//! # Example
//!
//! ```
//! use buttress_portal::validate::{ProfileInput, SignUpInput};
//! use buttress_portal::{Accounts, Db, DonorSearch, GroupFilter, PasswordParams, SignUpOutcome};
//! use buttress_portal::BloodGroup;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), buttress_portal::Error> {
//! let db = Db::in_memory().await?; // or Db::from_config(DATABASE_URL, data_dir)
//! let accounts = Accounts::new(db.clone(), PasswordParams::insecure_fast_for_tests()).await?;
//! let input = SignUpInput { email: "ada@example.org".into(), password: "correct horse battery".into() };
//! let SignUpOutcome::Created(user) = accounts.sign_up(&input).await? else { unreachable!() };
//!
//! let today = buttress_portal::db::today_utc();
//! let profile = ProfileInput {
//!     display_name: "Ada".into(),
//!     blood_group: "O-".into(),
//!     city: "London".into(),
//!     phone: "+44 20 7946 0958".into(),
//!     last_donation: String::new(),
//!     available: true,
//!     relay_only: false,
//! }
//! .validate(today)?;
//! db.upsert_donor(user.id, &profile, today).await?;
//!
//! let search = DonorSearch {
//!     groups: GroupFilter::CompatibleWith(BloodGroup::AbPos),
//!     city: Some("london".into()),
//!     eligible_only: true,
//! };
//! let page = db.search_donors(&search, 1, today).await?;
//! assert_eq!(page.items[0].display_name, "Ada");
//! # Ok(())
//! # }
//! ```
//!
//! The rest of this page is `docs/portal.md`.
//!
#![doc = include_str!("../../../docs/portal.md")]
#![deny(unreachable_pub, unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod check;
pub mod db;
pub mod domain;
pub mod donors;
pub mod erasure;
pub mod error;
pub mod mail;
mod page;
mod query;
mod reads;
pub mod render;
pub mod requests;
pub mod reveals;
pub mod seed;
pub mod sessions;
pub mod tokens;
pub mod validate;
pub mod web;

pub use accounts::{Accounts, PasswordParams, SignUpOutcome, User};
pub use db::{Backend, Db, Page, PAGE_SIZE};
pub use domain::{BloodGroup, Eligibility, RequestStatus, Urgency};
pub use donors::{Donor, DonorSearch, DonorView, GroupFilter, SearchInput};
pub use error::{Error, FieldError, Result};
pub use requests::BloodRequest;

/// The portal's state for the HTTP layer: the database and the accounts over it. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Portal {
    /// Storage and queries.
    pub db: Db,
    /// Sign-up, sign-in, password changes.
    pub accounts: Accounts,
}

impl Portal {
    /// Opens the database ([`Db::from_config`]: PostgreSQL when `database_url` is given,
    /// SQLite in `data_dir` otherwise), runs the migrations and prepares the accounts.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached; [`Error::Internal`] for a bad
    /// URL, an unusable data directory, a failed migration or bad password parameters.
    pub async fn open(
        database_url: Option<&str>,
        data_dir: &std::path::Path,
        params: PasswordParams,
    ) -> Result<Portal> {
        let db = Db::from_config(database_url, data_dir).await?;
        let accounts = Accounts::new(db.clone(), params).await?;
        Ok(Portal { db, accounts })
    }
}

//! The reference portal: a blood-donor registry built only on Buttress's layers.
//!
//! This crate holds everything the portal does that needs no HTTP session: storage on SQLite
//! or PostgreSQL ([`db`]), the domain ([`domain`]), input rules ([`validate`]), accounts with
//! argon2id and no user enumeration ([`accounts`]), donor search ([`donors`]), blood requests
//! ([`requests`]), server-rendered pages ([`render`]) and demo data ([`seed`]). The HTTP routes
//! (sessions, CSRF) are a thin layer over these.
//!
//! See `docs/portal.md` for the data model, the rules and how to run it on PostgreSQL.

#![deny(unreachable_pub, unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod db;
pub mod domain;
pub mod donors;
pub mod error;
pub mod render;
pub mod requests;
pub mod seed;
pub mod validate;

pub use accounts::{Accounts, PasswordParams, SignUpOutcome, User};
pub use db::{Backend, Db, Page, PAGE_SIZE};
pub use domain::{BloodGroup, Eligibility, RequestStatus, Urgency};
pub use donors::{Donor, DonorSearch, GroupFilter, SearchInput};
pub use error::{Error, FieldError, Result};
pub use requests::BloodRequest;

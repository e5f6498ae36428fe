//! `buttress audit`: a live scanner that grades any site from the outside, layer by layer
//! (DESIGN.md §5), with an Observatory-compatible score and reports for people and for CI.
//!
//! The crate is split so that every verdict can be reproduced offline:
//!
//! - [`scan`] (feature `scan`, on by default) fetches a site the way a browser and an attacker
//!   would, within a request and time budget, and records [`Observations`];
//! - [`judge()`] turns observations into a [`Report`]: one [`Finding`] per check of [`CHECKS`],
//!   a score and a grade (see [`judge`](mod@judge) for the rules);
//! - [`report`] renders reports as a terminal table, JSON, SARIF 2.1.0 or a self-contained HTML
//!   page, and two reports side by side;
//! - [`baseline`] sets a report beside a saved one and lists what got worse (a CI gate);
//! - [`sign_in`] holds the headers and cookies of a signed-in scan and masks them in reports.
//!
//! The parsers ([`csp`], [`cookie`], [`html`]) accept anything a site sends and never panic
//! (they are fuzzed). [`observatory`] re-implements Mozilla HTTP Observatory scoring.
//!
//! # Example
//!
//! ```
//! use buttress_audit::{judge, Observations, Page, Verdict};
//!
//! let mut obs = Observations::failed("http://app.example/", vec![], buttress_audit::Failure::Other(String::new()));
//! obs.main = Ok(Page {
//!     url: "http://app.example/".into(),
//!     status: 200,
//!     headers: vec![("server".into(), "Apache/2.4.1".into())],
//!     body: "<form method=post><input name=title></form>".into(),
//!     truncated: false,
//! });
//! let report = judge(&obs);
//! assert_eq!(report.grade, "F");
//! assert_eq!(report.finding("AUD-BAN-001").unwrap().verdict, Verdict::Fail);
//! assert_eq!(report.finding("AUD-CSRF-001").unwrap().verdict, Verdict::Warn);
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod baseline;
pub mod cookie;
pub mod csp;
pub mod html;
pub mod judge;
pub mod leaks;
mod model;
pub mod observatory;
mod observe;
pub mod report;
#[cfg(feature = "scan")]
pub mod scan;
pub mod sign_in;

pub use judge::{grade_rank, judge, ObservatoryView, Report, REPORT_FORMAT};
pub use model::{check, Check, Finding, Layer, Verdict, CHECKS};
pub use observe::{CsrfAttempt, Failure, Hop, Observations, Page, Probe, RateProbe};

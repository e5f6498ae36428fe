//! Integration tests of the scanner: live scans of servers started here on loopback, golden
//! files for the parsers and the reports. One test binary.
//!
//! Run with `cargo test -p buttress-audit`; rewrite the golden files with
//! `UPDATE_GOLDEN=1 cargo test -p buttress-audit golden`.

#![allow(unreachable_pub, missing_docs)]

mod edges;
mod fixtures;
mod golden;
mod hostile;
mod live;
mod signin;

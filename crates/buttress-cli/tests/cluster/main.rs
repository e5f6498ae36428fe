//! Issues 7 and 13: several `buttress serve` instances on one Redis and one PostgreSQL, as behind a load
//! balancer, under load and under faults. See `docs/scale.md` for what each test proves.
//!
//! Every test starts its own small cluster on free loopback ports (`harness::Cluster`) and
//! stops every process it started when it ends, also on failure.

#![allow(missing_docs, unreachable_pub, dead_code)]

mod cookie_rotation;
mod distributed;
mod faults;
mod harness;
mod signouts;

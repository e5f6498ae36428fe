//! Integration tests of the whole stack: in-process (`oneshot`) and as a real server on a free
//! loopback port. One test binary, as ripgrep does.

#![allow(unreachable_pub, missing_docs)]

use buttress_audit::observatory;
use buttress_testkit as servers;
mod support;

mod csrf_stack;
mod docs;
mod errors;
mod examples;
mod headers;
mod https;
mod imports;
mod limits;
mod proxy;
mod ratelimit;
mod scenarios;
mod served;
mod session_isolation;
mod session_signouts;
mod session_stores;
mod stack;
mod startup;
mod telemetry;

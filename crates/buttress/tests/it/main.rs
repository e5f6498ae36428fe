//! Integration tests of the whole stack: in-process (`oneshot`) and as a real server on a free
//! loopback port. One test binary, as ripgrep does.

#![allow(unreachable_pub, missing_docs)]

#[path = "../support/observatory.rs"]
mod observatory;
#[path = "../support/servers.rs"]
mod servers;
mod support;

mod errors;
mod headers;
mod https;
mod limits;
mod proxy;
mod ratelimit;
mod served;
mod startup;

//! `buttress-bench-peer`: `buttress-bench peer`, the same page behind the peer stack (see
//! `peer.rs`), in a package of its own. Its crates (tower-sessions turns on `tracing`'s `log`
//! feature, for one) would otherwise change how `buttress-bench stack` is built: features are
//! unified across a package's dependencies, and a span then costs the stack a `log` check on
//! every request. Built apart (`cargo build --release -p buttress-bench-peer`, not in the same
//! command as `buttress-bench`), each binary is what its users would build.

use std::process::ExitCode;

mod peer;

/// mimalloc, as for `buttress-bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peer_app(
    router: axum::Router,
    body_limit: usize,
    timeout: std::time::Duration,
) -> Result<axum::Router, String> {
    peer::app(router, body_limit, timeout).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    buttress_bench::main_with(Some(peer_app))
}

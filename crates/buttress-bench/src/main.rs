//! `buttress-bench`: the bench servers (see the library's docs for the modes).

use std::process::ExitCode;

/// mimalloc, as `buttress serve` ships: glibc's allocator costs the layered stack about a
/// tenth of its throughput in small allocations (measured with `bench/layers.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    buttress_bench::main_with(None)
}

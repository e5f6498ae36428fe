//! Checks per second against Redis through [`RateLimiter`], from many concurrent tasks.
//!
//! Run with `cargo run --release -p buttress --features redis --example ratelimit_redis_bench --
//! redis://127.0.0.1:6379 [seconds=5] [tasks=64]`, or `-- --print-script` to print the Lua
//! script (for `redis-benchmark`, see `scripts/bench-redis-ratelimit`). Each check is one
//! EVALSHA round trip on a multiplexed connection, on one of 100,000 random keys.

#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use buttress::ratelimit::{RateLimiter, RedisStore, Strategy, CHECK_SCRIPT};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--print-script") {
        print!("{CHECK_SCRIPT}");
        return Ok(());
    }
    let url = args
        .first()
        .cloned()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let tasks: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let limiter = RateLimiter::parse("1000000000 per second")?
        .with_strategy(Strategy::Gcra)?
        .with_name("bench")
        .with_redis(RedisStore::open(&url)?.with_budget(Duration::from_secs(1)));
    // Connect and load the script before timing.
    limiter.check("warm-up", 1).await?;
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (limiter, done, failed) = (limiter.clone(), done.clone(), failed.clone());
            tokio::spawn(async move {
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1);
                while Instant::now() < deadline {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = (x % 100_000).to_string();
                    match limiter.check(&key, 1).await {
                        Ok(d) if !d.degraded() => done.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for h in handles {
        h.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "buttress RateLimiter on Redis: {n} checks in {elapsed:.2} s from {tasks} tasks = {:.0} checks/s ({} failed)",
        n as f64 / elapsed,
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}

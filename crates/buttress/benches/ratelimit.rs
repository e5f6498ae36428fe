//! Rate-limit checks side by side with `governor` in one run, memory per tracked key, and a
//! check of a new key while a flood keeps the store full (the overflow path).
//!
//! Run with `cargo bench -p buttress --bench ratelimit`. Memory figures are measured in child
//! processes (this binary re-run with `RL_MEM_PHASE`), so one phase's freed pages never hide
//! another's growth; they are printed to stderr before the timings.
//!
//! For instruction counts, which a busy machine does not move: `RL_CALLS=<kind>:<n>` (kind
//! `hot`, `new`, `flood` or `flood_from`; time stands still) makes `n` checks in `run_checks`
//! and exits; `valgrind --tool=callgrind --toggle-collect='*run_checks*'` counts only those, so
//! the total over `n` is the instructions per check (`bench/callgrind-ratelimit.sh` does this).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use std::net::{IpAddr, Ipv6Addr};

use buttress::ratelimit::{ManualClock, MemoryStore, RateLimiter, Strategy};
use criterion::Criterion;
use futures_util::FutureExt as _;
use governor::{Quota, RateLimiter as Governor};

const KEYS: usize = 1_000_000;

fn ours(max_keys: usize) -> RateLimiter {
    RateLimiter::parse("1000000000 per second")
        .and_then(|l| l.with_strategy(Strategy::Gcra))
        .expect("limit")
        .with_memory(MemoryStore::new(max_keys))
}

fn check(l: &RateLimiter, key: &str) -> bool {
    l.check(key, 1)
        .now_or_never()
        .and_then(Result::ok)
        .is_some_and(|d| d.allowed())
}

fn governor_quota() -> Quota {
    Quota::per_second(NonZeroU32::MAX)
}

fn keys(n: usize, salt: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{salt}{}.{}.{}.{}",
                (i >> 24) & 255,
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect()
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// One memory phase, in a fresh process: prints `phase keys tracked rss_delta store_bytes`.
fn memory_phase(phase: &str) {
    let keys = keys(KEYS, "");
    let before = rss_bytes();
    let (tracked, store_bytes) = match phase {
        "ours" => {
            let l = ours(KEYS);
            for k in &keys {
                black_box(check(&l, k));
            }
            let m = l.memory_store().expect("memory");
            let out = (m.len(), m.approx_bytes());
            let rss = rss_bytes();
            eprintln!(
                "{phase} {KEYS} {} {} {}",
                out.0,
                rss.saturating_sub(before),
                out.1
            );
            return;
        }
        "capped" => {
            let l = ours(100_000);
            for k in &keys {
                black_box(check(&l, k));
            }
            let m = l.memory_store().expect("memory");
            (m.len(), m.approx_bytes())
        }
        "governor" => {
            let g = Governor::keyed(governor_quota());
            for k in &keys {
                black_box(g.check_key(k).is_ok());
            }
            let n = g.len();
            let rss = rss_bytes();
            eprintln!("{phase} {KEYS} {n} {} 0", rss.saturating_sub(before));
            return;
        }
        _ => (0, 0),
    };
    let rss = rss_bytes();
    eprintln!(
        "{phase} {KEYS} {tracked} {} {store_bytes}",
        rss.saturating_sub(before)
    );
}

fn memory_report() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    for phase in ["ours", "governor", "capped"] {
        let out = std::process::Command::new(&exe)
            .env("RL_MEM_PHASE", phase)
            .output();
        let Ok(out) = out else { continue };
        let text = String::from_utf8_lossy(&out.stderr);
        let Some(line) = text.lines().find(|l| l.starts_with(phase)) else {
            continue;
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, keys, tracked, rss, store] = f[..] {
            let keys: f64 = keys.parse().unwrap_or(1.0);
            let rss: f64 = rss.parse().unwrap_or(0.0);
            let store: f64 = store.parse().unwrap_or(0.0);
            eprintln!(
                "memory {phase:>8}: {keys} distinct keys, {tracked} tracked, RSS +{:.1} MiB = {:.1} B/key offered; store tables {:.1} B/key offered",
                rss / 1048576.0,
                rss / keys,
                store / keys
            );
        }
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_key");
    let l = ours(100_000);
    g.bench_function("buttress", |b| {
        b.iter(|| check(&l, black_box("203.0.113.7")))
    });
    let gov = Governor::keyed(governor_quota());
    let key = "203.0.113.7".to_owned();
    g.bench_function("governor", |b| {
        b.iter(|| gov.check_key(black_box(&key)).is_ok())
    });
    // What the layers call: the same check with the client's network (for the overflow path).
    let ip = IpAddr::from([203, 0, 113, 7]);
    g.bench_function("buttress_from", |b| {
        b.iter(|| {
            l.check_from(black_box("203.0.113.7"), black_box(ip), 1)
                .now_or_never()
                .and_then(Result::ok)
                .is_some_and(|d| d.allowed())
        })
    });
    g.finish();

    flood(c);

    let mut g = c.benchmark_group("new_key");
    g.bench_function("buttress", |b| {
        b.iter_custom(|iters| {
            let n = usize::try_from(iters).unwrap_or(usize::MAX);
            let l = ours(n.max(1));
            let keys = keys(n, "n");
            let start = Instant::now();
            for k in &keys {
                black_box(check(&l, k));
            }
            start.elapsed()
        })
    });
    g.bench_function("governor", |b| {
        b.iter_custom(|iters| {
            let n = usize::try_from(iters).unwrap_or(usize::MAX);
            let gov = Governor::keyed(governor_quota());
            let keys = keys(n, "n");
            let start = Instant::now();
            for k in &keys {
                black_box(gov.check_key(k).is_ok());
            }
            start.elapsed()
        })
    });
    g.finish();
}

/// A new key while the store is full of live keys (time stands still): the key goes to the
/// overflow slot of its network. `from_network`: distinct /64s of three /48s, as the layers
/// check them; `no_network`: `check` without a network, every newcomer on one shared allowance.
fn flood(c: &mut Criterion) {
    let full = || {
        let l = RateLimiter::parse("10 per minute")
            .and_then(|l| l.with_strategy(Strategy::Gcra))
            .expect("limit")
            .with_memory(MemoryStore::new(1_000).with_clock(ManualClock::new()));
        for k in keys(2_000, "fill-") {
            black_box(check(&l, &k));
        }
        l
    };
    let mut g = c.benchmark_group("flood");
    let l = full();
    let ips: Vec<(String, IpAddr)> = (0..65_536u32)
        .map(|i| {
            let ip = IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0xa + (i % 3) as u16,
                i as u16,
                0,
                0,
                0,
                1,
            ));
            (format!("{ip}/64"), ip)
        })
        .collect();
    let mut i = 0usize;
    g.bench_function("from_network", |b| {
        b.iter(|| {
            let (key, ip) = &ips[i % ips.len()];
            i += 1;
            l.check_from(key, *ip, 1)
                .now_or_never()
                .and_then(Result::ok)
                .is_some_and(|d| d.allowed())
        })
    });
    let l = full();
    let mut i = 0usize;
    g.bench_function("no_network", |b| {
        b.iter(|| {
            let (key, _) = &ips[i % ips.len()];
            i += 1;
            check(&l, key)
        })
    });
    g.finish();
}

/// The most checks `RL_CALLS` makes: the setup prepares this many keys whatever `n` is.
const MAX_CALLS: usize = 200_000;

/// The checks `RL_CALLS` counts, out of line so that callgrind can count this function alone
/// (`--toggle-collect='*run_checks*'`): `n` calls of `check(i)`, returning how many admitted.
#[inline(never)]
fn run_checks(n: usize, mut check: impl FnMut(usize) -> bool) -> usize {
    (0..n).filter(|&i| check(black_box(i))).count()
}

/// `RL_CALLS=<kind>:<n>`: the setup of one kind, then `n` checks of it in [`run_checks`].
fn calls(spec: &str) {
    let (kind, n) = spec.split_once(':').unwrap_or((spec, "0"));
    let n: usize = n.parse::<usize>().unwrap_or(0).min(MAX_CALLS);
    let new_keys = keys(MAX_CALLS, "n");
    let flood_keys: Vec<String> = (0..MAX_CALLS)
        .map(|i| format!("2001:db8:{:x}:{:x}::/64", 0xa + i % 3, i / 3))
        .collect();
    let mut admitted = 0;
    // Time stands still (a manual clock): no sweep falls due, so the counts are the same on
    // every run, however slowly valgrind runs the program.
    let frozen = |max_keys| {
        RateLimiter::parse("1000000000 per second")
            .and_then(|l| l.with_strategy(Strategy::Gcra))
            .expect("limit")
            .with_memory(MemoryStore::new(max_keys).with_clock(ManualClock::new()))
    };
    match kind {
        "hot" => {
            let l = frozen(100_000);
            admitted = run_checks(n, |_| check(&l, black_box("203.0.113.7")));
        }
        "new" => {
            let l = frozen(MAX_CALLS);
            admitted = run_checks(n, |i| check(&l, &new_keys[i]));
        }
        "flood" => {
            let l = RateLimiter::parse("10 per minute")
                .and_then(|l| l.with_strategy(Strategy::Gcra))
                .expect("limit")
                .with_memory(MemoryStore::new(1_000).with_clock(ManualClock::new()));
            for k in keys(2_000, "fill-") {
                black_box(check(&l, &k));
            }
            admitted = run_checks(n, |i| check(&l, &flood_keys[i]));
        }
        // The layers' way: with the client's network (not in builds before `check_from`).
        "flood_from" => {
            let l = RateLimiter::parse("10 per minute")
                .and_then(|l| l.with_strategy(Strategy::Gcra))
                .expect("limit")
                .with_memory(MemoryStore::new(1_000).with_clock(ManualClock::new()));
            for k in keys(2_000, "fill-") {
                black_box(check(&l, &k));
            }
            let ips: Vec<IpAddr> = (0..MAX_CALLS)
                .map(|i| {
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0xa + (i % 3) as u16,
                        (i / 3) as u16,
                        0,
                        0,
                        0,
                        1,
                    ))
                })
                .collect();
            admitted = run_checks(n, |i| {
                l.check_from(&flood_keys[i], ips[i], 1)
                    .now_or_never()
                    .and_then(Result::ok)
                    .is_some_and(|d| d.allowed())
            });
        }
        _ => {}
    }
    eprintln!("{kind} {n} checks, {admitted} admitted");
}

fn main() {
    if let Ok(spec) = std::env::var("RL_CALLS") {
        calls(&spec);
        return;
    }
    if let Ok(phase) = std::env::var("RL_MEM_PHASE") {
        memory_phase(&phase);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` passes no `--bench`: keep it quick.
    if args.iter().any(|a| a == "--bench") {
        memory_report();
    }
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
}

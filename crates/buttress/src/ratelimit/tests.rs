//! Unit and property tests of the grammar, the strategies and the memory store.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::Strategy;

use super::algorithm::{gcra, window, Divisor, Rule};
use super::*;

struct Case {
    input: &'static str,
    expect: Result<&'static str, (usize, &'static str)>,
}

#[test]
fn grammar_table() {
    let cases = [
        Case {
            input: "200 per day",
            expect: Ok("200 per day"),
        },
        Case {
            input: "50/hour",
            expect: Ok("50 per hour"),
        },
        Case {
            input: "10 per 2 minutes",
            expect: Ok("10 per 2 minutes"),
        },
        Case {
            input: "5/minute",
            expect: Ok("5 per minute"),
        },
        Case {
            input: "  1 / SECOND ",
            expect: Ok("1 per second"),
        },
        Case {
            input: "3per2days",
            expect: Ok("3 per 2 days"),
        },
        Case {
            input: "2 per month; 7 per year",
            expect: Ok("2 per month; 7 per year"),
        },
        Case {
            input: "200 per day; 50 per hour",
            expect: Ok("200 per day; 50 per hour"),
        },
        Case {
            input: "1/second,5/minute|100/day",
            expect: Ok("1 per second; 5 per minute; 100 per day"),
        },
        Case {
            input: "5 per 1 minute",
            expect: Ok("5 per minute"),
        },
        Case {
            input: "",
            expect: Err((0, "a number")),
        },
        Case {
            input: "per minute",
            expect: Err((0, "a number")),
        },
        Case {
            input: "5 minute",
            expect: Err((2, "\"per\" or \"/\"")),
        },
        Case {
            input: "5 per mintue",
            expect: Err((
                6,
                "a number or a unit (second, minute, hour, day, month or year)",
            )),
        },
        Case {
            input: "5 per 2",
            expect: Err((7, "a unit (second, minute, hour, day, month or year)")),
        },
        Case {
            input: "5 per 0 minutes",
            expect: Err((6, "a multiple from 1 to 1000")),
        },
        Case {
            input: "99999999999999999999 per day",
            expect: Err((0, "an amount from 0 to 1000000000")),
        },
        Case {
            input: "5 per minute;",
            expect: Err((13, "a number")),
        },
        Case {
            input: "5 per minute 6 per hour",
            expect: Err((13, "a separator (\";\", \",\" or \"|\") or the end")),
        },
        Case {
            input: "5 per minutes!",
            expect: Err((13, "a separator (\";\", \",\" or \"|\") or the end")),
        },
        Case {
            input: "5 per fortnight",
            expect: Err((
                6,
                "a number or a unit (second, minute, hour, day, month or year)",
            )),
        },
        Case {
            input: "5 per é",
            expect: Err((
                6,
                "a number or a unit (second, minute, hour, day, month or year)",
            )),
        },
    ];
    for c in cases {
        let got = c.input.parse::<Limits>();
        match (got, c.expect) {
            (Ok(l), Ok(text)) => assert_eq!(l.to_string(), text, "{:?}", c.input),
            (Err(e), Err((pos, expected))) => {
                assert_eq!(
                    (e.position(), e.expected()),
                    (pos, expected),
                    "{:?}: {e}",
                    c.input
                )
            }
            (got, want) => panic!("{:?}: got {got:?}, want {want:?}", c.input),
        }
    }
}

#[test]
fn default_login_limits_parse() {
    assert!(LoginThrottle::with_limits("100 per hour", "5 per 15 minutes", "50 per hour").is_ok());
}

fn unit_strategy() -> impl Strategy<Value = Unit> {
    prop_oneof![
        Just(Unit::Second),
        Just(Unit::Minute),
        Just(Unit::Hour),
        Just(Unit::Day),
        Just(Unit::Month),
        Just(Unit::Year)
    ]
}

fn limit_strategy() -> impl Strategy<Value = Limit> {
    (1u64..=MAX_AMOUNT, 1u64..=MAX_MULTIPLES, unit_strategy())
        .prop_map(|(a, m, u)| Limit::new(a, m, u).expect("in range"))
}

proptest! {
    #[test]
    fn rendered_limits_parse_back(limits in prop::collection::vec(limit_strategy(), 1..5)) {
        let limits = Limits::new(limits).expect("non-empty");
        let text = limits.to_string();
        prop_assert_eq!(text.parse::<Limits>().expect("round trip"), limits);
    }

    #[test]
    fn arbitrary_text_never_panics_and_errors_point_inside(text in ".{0,40}") {
        if let Err(e) = text.parse::<Limits>() {
            prop_assert!(e.position() <= text.len());
            prop_assert!(text.is_char_boundary(e.position()));
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn limit_like_text_never_panics(text in "[0-9 /perscondmihuyatPER;,|]{0,30}") {
        let _ = text.parse::<Limits>();
    }
}

/// The precomputed division GCRA uses for `remaining` equals `/` at the edges: every small
/// divisor, powers of two and their neighbours, and numerators near 0 and `u64::MAX`.
#[test]
fn divisor_matches_division_at_the_edges() {
    let mut divisors: Vec<u64> = (1..=1000).collect();
    for k in 1..64 {
        let p = 1u64 << k;
        divisors.extend([p - 1, p, p + 1]);
    }
    divisors.extend([
        u64::MAX,
        u64::MAX - 1,
        u64::MAX / 2 + 1,
        0x9E37_79B9_7F4A_7C15,
    ]);
    // GCRA's own τ for the limits of the grammar's units.
    divisors.extend([
        1_000_000 / 3,
        60_000_000 / 7,
        86_400_000_000u64.div_ceil(200),
    ]);
    let mut numerators: Vec<u64> = (0..=300).collect();
    numerators.extend((0..=300).map(|i| u64::MAX - i));
    for k in 0..64 {
        let p = 1u64 << k;
        numerators.extend([p - 1, p, p.saturating_add(1)]);
    }
    for &d in &divisors {
        let by = Divisor::new(d);
        for &n in numerators
            .iter()
            .chain([d - 1, d, d.saturating_add(1), d.saturating_mul(2)].iter())
        {
            assert_eq!(by.divide(n), n / d, "{n} / {d}");
        }
    }
    assert_eq!(Divisor::new(0).divide(7), 7, "0 is taken as 1");
}

proptest! {
    #[test]
    fn divisor_matches_division(d in 1u64.., n in any::<u64>(), small in 1u64..100_000_000) {
        prop_assert_eq!(Divisor::new(d).divide(n), n / d);
        prop_assert_eq!(Divisor::new(small).divide(n), n / small);
        prop_assert_eq!(Divisor::new(d).divide(n % (d.saturating_mul(3))), (n % d.saturating_mul(3)) / d);
    }
}

fn rule(amount: u64, period_secs: u64, s: super::Strategy) -> Rule {
    let limit = Limit::new(amount, period_secs, Unit::Second).expect("limit");
    Rule::new(limit, s)
}

/// Runs arrivals (sorted, µs) through one rule; returns the admitted times.
fn admitted(rule: &Rule, arrivals: &[u64]) -> Vec<u64> {
    let mut tat = 0;
    let mut log = VecDeque::new();
    let mut out = Vec::new();
    for &t in arrivals {
        let ok = match rule.strategy {
            super::Strategy::Gcra => {
                let (o, new_tat) = gcra(rule, tat, t, 1);
                if o.allowed {
                    tat = new_tat;
                }
                o.allowed
            }
            super::Strategy::MovingWindow => window(rule, &mut log, t, 1, true).allowed,
        };
        if ok {
            out.push(t);
        }
    }
    out
}

/// The most admitted times in any half-open interval of length `len`.
fn max_in_window(times: &[u64], len: u64) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= len {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

fn arrivals() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0u64..40_000_000, 1..300).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

proptest! {
    /// Moving window: never more than N in any interval of length T; and it admits a request
    /// whenever fewer than N were admitted in the T before it (exact, not just bounded).
    #[test]
    fn moving_window_is_exact(amount in 1u64..12, period in 1u64..6, times in arrivals()) {
        let r = rule(amount, period, super::Strategy::MovingWindow);
        let got = admitted(&r, &times);
        prop_assert!(max_in_window(&got, r.period) as u64 <= amount);
        for &t in &times {
            if !got.contains(&t) {
                let recent = got.iter().filter(|&&a| a <= t && a + r.period > t).count() as u64;
                prop_assert_eq!(recent, amount, "refused at {} with {} in window", t, recent);
            }
        }
    }

    /// GCRA: at most N at one instant, at most 2N-1 in any interval of length T, and at most
    /// N + floor(L/tau) in any closed interval of length L.
    #[test]
    fn gcra_bound(amount in 1u64..12, period in 1u64..6, times in arrivals(), l in 0u64..10_000_000) {
        let r = rule(amount, period, super::Strategy::Gcra);
        let got = admitted(&r, &times);
        prop_assert!(max_in_window(&got, 1) as u64 <= amount);
        prop_assert!((max_in_window(&got, r.period) as u64) < 2 * amount);
        prop_assert!(max_in_window(&got, l + 1) as u64 <= amount + l / r.tau);
    }

    /// A burst at one instant admits exactly N with both strategies.
    #[test]
    fn burst_admits_exactly_n(amount in 1u64..50, at in 0u64..1_000_000_000) {
        for s in [super::Strategy::Gcra, super::Strategy::MovingWindow] {
            let r = rule(amount, 60, s);
            let times = vec![at; amount as usize + 10];
            prop_assert_eq!(admitted(&r, &times).len() as u64, amount);
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn memory_cap_holds_and_limited_client_cannot_escape() {
    block_on(async {
        let clock = ManualClock::new();
        let store = MemoryStore::new(1_000).with_clock(clock.clone());
        let limiter = RateLimiter::parse("3 per minute")
            .expect("limit")
            .with_memory(store);
        // The victim-of-its-own-limit: a client that used up its allowance.
        for _ in 0..3 {
            assert!(limiter.check("limited", 1).await.expect("check").allowed());
        }
        assert!(!limiter.check("limited", 1).await.expect("check").allowed());
        // A flood of distinct keys, far past the cap.
        for i in 0..20_000 {
            let _ = limiter
                .check(&format!("flood-{i}"), 1)
                .await
                .expect("check");
        }
        let store = limiter.memory_store().expect("memory");
        assert!(store.len() <= 1_000, "{} entries", store.len());
        assert!(store.overflowed() > 0);
        // The limited client is still limited: its entry was never evicted.
        assert!(!limiter.check("limited", 1).await.expect("check").allowed());
        // New keys during the flood share the overflow allowance, which the flood used up.
        assert!(!limiter.check("newcomer", 1).await.expect("check").allowed());
        // A period later everything expired: the sweep frees room and newcomers are tracked.
        clock.advance(Duration::from_secs(61));
        assert!(limiter.check("newcomer", 1).await.expect("check").allowed());
        assert!(limiter.check("limited", 1).await.expect("check").allowed());
        assert!(store.len() <= 1_000);
    });
}

#[test]
fn all_limits_must_pass_and_nothing_is_counted_on_refusal() {
    block_on(async {
        let clock = ManualClock::new();
        let limiter = RateLimiter::parse("2 per second; 3 per minute")
            .expect("limit")
            .with_memory(MemoryStore::new(1_000).with_clock(clock.clone()));
        assert!(limiter.check("k", 1).await.expect("c").allowed());
        assert!(limiter.check("k", 1).await.expect("c").allowed());
        let refused = limiter.check("k", 1).await.expect("c");
        assert!(!refused.allowed());
        assert_eq!(refused.limit().to_string(), "2 per second");
        clock.advance(Duration::from_secs(1));
        assert!(limiter.check("k", 1).await.expect("c").allowed());
        clock.advance(Duration::from_secs(1));
        let refused = limiter.check("k", 1).await.expect("c");
        assert_eq!(refused.limit().to_string(), "3 per minute");
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(58)));
    });
}

#[test]
fn ipv6_grouped_by_64_and_v4_mapped_as_v4() {
    let g = IpGrouping::default();
    let a = g.key("2001:db8::1".parse().expect("ip"));
    let b = g.key("2001:db8::ffff:1234:1".parse().expect("ip"));
    let c = g.key("2001:db8:0:1::1".parse().expect("ip"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(
        g.key("::ffff:192.0.2.1".parse().expect("ip")),
        "192.0.2.1/32"
    );
}

/// The attempt of an allowed check (the test fails on a refusal).
fn allowed(v: LoginVerdict) -> LoginAttempt {
    match v {
        LoginVerdict::Allowed(a) => a,
        LoginVerdict::Wait { retry_after } => panic!("refused, wait {retry_after:?}"),
    }
}

fn wait_of(v: LoginVerdict) -> Duration {
    match v {
        LoginVerdict::Allowed(_) => Duration::ZERO,
        LoginVerdict::Wait { retry_after } => retry_after,
    }
}

#[test]
fn login_backoff_is_capped_and_reset_by_success() {
    block_on(async {
        let clock = ManualClock::new();
        let t = LoginThrottle::new().with_memory_clock(clock.clone(), 10_000);
        let ip: std::net::IpAddr = "203.0.113.9".parse().expect("ip");
        for _ in 0..5 {
            // Allowed, then a wrong password: counted by the check itself.
            assert!(t.check("Alice", ip).await.expect("c").is_allowed());
        }
        // Case and spaces do not make a new account.
        let wait = wait_of(t.check(" alice ", ip).await.expect("c"));
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(180),
            "{wait:?}"
        );
        // However many failures pile up, the next attempt is never more than T/N away.
        for _ in 0..20 {
            clock.advance(Duration::from_secs(180));
            assert!(t.check("alice", ip).await.expect("c").is_allowed());
            let wait = wait_of(t.check("alice", ip).await.expect("c"));
            assert!(wait <= Duration::from_secs(180), "{wait:?}");
        }
        // A success clears the account-and-network counter.
        clock.advance(Duration::from_secs(180));
        let attempt = allowed(t.check("alice", ip).await.expect("c"));
        t.succeeded(attempt).await.expect("s");
        for _ in 0..5 {
            assert!(t.check("alice", ip).await.expect("c").is_allowed());
        }
        assert!(!t.check("alice", ip).await.expect("c").is_allowed());
    });
}

#[test]
fn distributed_attack_cannot_lock_the_victim_out() {
    block_on(async {
        let clock = ManualClock::new();
        let t = LoginThrottle::new().with_memory_clock(clock.clone(), 10_000);
        let home: std::net::IpAddr = "198.51.100.20".parse().expect("ip");
        // The victim's usual network.
        let attempt = allowed(t.check("victim", home).await.expect("c"));
        t.succeeded(attempt).await.expect("s");
        // 200 attacker addresses, 2 failures each, on the victim's account.
        for i in 0..200u32 {
            let ip = std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
            for _ in 0..2 {
                t.failed("victim", ip).await.expect("f");
            }
        }
        // A new attacker address is throttled by the account-wide counter, briefly.
        let fresh: std::net::IpAddr = "192.0.2.99".parse().expect("ip");
        let wait = wait_of(t.check("victim", fresh).await.expect("c"));
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(72),
            "{wait:?}"
        );
        // The victim at home is not held back at all.
        assert!(t.check("victim", home).await.expect("c").is_allowed());
    });
}

/// The attack that counting after the password check let through: a burst of parallel guesses
/// on one account from many addresses, none failed yet when the next one is checked. Exactly
/// the account-wide allowance (50 per hour) is let through to a password check.
#[test]
fn parallel_guesses_from_many_addresses_get_exactly_the_account_allowance() {
    block_on(async {
        let t = LoginThrottle::new().with_memory_clock(ManualClock::new(), 10_000);
        let mut allowed = 0;
        for i in 0..200u32 {
            let ip = std::net::IpAddr::from([10, 1, (i >> 8) as u8, i as u8]);
            allowed += usize::from(t.check("victim", ip).await.expect("c").is_allowed());
        }
        assert_eq!(allowed, 50);
    });
}

/// Successes never count: an office behind one address signs in 150 people in an hour (the
/// per-address allowance is 100), and one person signs in from 60 new networks (the
/// account-wide allowance is 50).
#[test]
fn successful_sign_ins_are_given_back() {
    block_on(async {
        let t = LoginThrottle::new().with_memory_clock(ManualClock::new(), 10_000);
        let office: std::net::IpAddr = "203.0.113.77".parse().expect("ip");
        for i in 0..150 {
            let who = format!("staff{i}");
            let attempt = allowed(t.check(&who, office).await.expect("c"));
            t.succeeded(attempt).await.expect("s");
        }
        for i in 0..60u32 {
            let ip = std::net::IpAddr::from([172, 16, (i >> 8) as u8, i as u8]);
            let attempt = allowed(t.check("roamer", ip).await.expect("c"));
            t.succeeded(attempt).await.expect("s");
        }
    });
}

/// A refused attempt gives back what it counted on the way: twenty tries against an account
/// whose account-wide counter is spent leave this address's own allowance (3 per hour) whole.
#[test]
fn refused_attempts_count_nothing() {
    block_on(async {
        let t = LoginThrottle::with_limits("3 per hour", "5 per 15 minutes", "50 per hour")
            .expect("limits")
            .with_memory_clock(ManualClock::new(), 10_000);
        for i in 0..50u32 {
            t.failed("target", std::net::IpAddr::from([10, 2, 0, i as u8]))
                .await
                .expect("f");
        }
        let ip: std::net::IpAddr = "192.0.2.44".parse().expect("ip");
        for _ in 0..20 {
            assert!(!t.check("target", ip).await.expect("c").is_allowed());
        }
        for who in ["a", "b", "c"] {
            assert!(t.check(who, ip).await.expect("c").is_allowed(), "{who}");
        }
        assert!(
            !t.check("d", ip).await.expect("c").is_allowed(),
            "3 per hour"
        );
    });
}

/// A success gives back exactly what its own check counted: per address, and per account only
/// where the network was not known.
#[test]
fn a_success_gives_back_its_own_attempt_only() {
    block_on(async {
        let t = LoginThrottle::with_limits("3 per hour", "5 per 15 minutes", "50 per hour")
            .expect("limits")
            .with_memory_clock(ManualClock::new(), 10_000);
        let ip: std::net::IpAddr = "192.0.2.45".parse().expect("ip");
        // Two wrong passwords for two accounts: 2 of the address's 3 used.
        let _ = allowed(t.check("u1", ip).await.expect("c"));
        let _ = allowed(t.check("u2", ip).await.expect("c"));
        // A right one: counted, then given back.
        let ok = allowed(t.check("u3", ip).await.expect("c"));
        t.succeeded(ok).await.expect("s");
        // One left, not two: the success gave back its own unit, not the failures'.
        let _ = allowed(t.check("u4", ip).await.expect("c"));
        assert!(!t.check("u5", ip).await.expect("c").is_allowed());
    });
}

/// `RateLimiter::refund` on a moving window gives back the newest entry, not the oldest.
#[test]
fn window_refund_drops_the_newest_entry() {
    block_on(async {
        let clock = ManualClock::new();
        let l = RateLimiter::parse("3 per minute")
            .expect("limits")
            .with_strategy(super::Strategy::MovingWindow)
            .expect("window")
            .with_memory(MemoryStore::new(100).with_clock(clock.clone()));
        assert!(l.check("k", 1).await.expect("c").allowed()); // t0
        clock.advance(Duration::from_secs(30));
        assert!(l.check("k", 1).await.expect("c").allowed()); // t30
        assert!(l.check("k", 1).await.expect("c").allowed()); // t30
        l.refund("k", 1).await.expect("refund"); // one t30 entry goes
        clock.advance(Duration::from_secs(31)); // t61: the t0 entry has left the window
        assert!(l.check("k", 1).await.expect("c").allowed());
        assert!(l.check("k", 1).await.expect("c").allowed());
        assert!(
            !l.check("k", 1).await.expect("c").allowed(),
            "two admitted: dropping the oldest would have left room for one"
        );
    });
}

#[test]
fn one_address_guessing_many_accounts_is_throttled() {
    block_on(async {
        let t = LoginThrottle::new().with_memory_clock(ManualClock::new(), 10_000);
        let ip: std::net::IpAddr = "2001:db8:7::1".parse().expect("ip");
        for i in 0..100 {
            t.failed(&format!("user{i}"), ip).await.expect("f");
        }
        // Same /64, another account never tried before.
        let other: std::net::IpAddr = "2001:db8:7::ffff".parse().expect("ip");
        assert!(!t.check("user-new", other).await.expect("c").is_allowed());
    });
}

proptest! {
    /// The memory fallback's share (`RateLimiter::with_instances`): at least 1, the amount
    /// divided and rounded down, so that `instances` shares never add up to more than the limit
    /// (while the limit is at least the number of instances), the period kept.
    #[test]
    fn fallback_shares_stay_within_the_limit(
        amount in 1u64..=MAX_AMOUNT,
        minutes in 1u64..=MAX_MULTIPLES,
        instances in 1u32..=256,
    ) {
        let limit = Limit::new(amount, minutes, Unit::Minute).expect("valid");
        let limits = Limits::new(vec![limit]).expect("one");
        let l = RateLimiter::new(limits).with_instances(instances);
        let shares = l.fallback_limits();
        let share = shares.iter().next().expect("one share");
        let n = u64::from(instances);
        prop_assert!(share.amount() >= 1);
        prop_assert_eq!((share.multiples(), share.unit()), (minutes, Unit::Minute));
        if amount >= n {
            prop_assert!(share.amount() * n <= amount);
            prop_assert!((share.amount() + 1) * n > amount, "rounded down, not further");
        } else {
            prop_assert_eq!(share.amount(), 1);
        }
    }
}

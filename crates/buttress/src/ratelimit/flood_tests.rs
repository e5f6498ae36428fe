//! A flood of distinct keys against the memory store and the login throttle: memory stays
//! within the cap, limited clients stay limited, and clients of networks that are not flooding
//! keep their whole allowance.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;

use super::overflow::{aggregate, Aggregate};
use super::{
    IpGrouping, LoginThrottle, LoginVerdict, ManualClock, MemoryStore, RateLimiter,
    Strategy as Algo,
};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// An aggregate network to draw addresses from: an IPv6 /48 or an IPv4 /24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    V6([u16; 3]),
    V4([u8; 3]),
}

impl Net {
    /// The `i`-th address of the network, each in a key of its own (its own /64 or /32).
    fn host(self, i: u32) -> IpAddr {
        match self {
            // The 4th group is the /64 inside the /48; more than 65,536 wrap into the 5th.
            Net::V6([a, b, c]) => {
                IpAddr::V6(Ipv6Addr::new(a, b, c, i as u16, (i >> 16) as u16, 0, 0, 1))
            }
            Net::V4([a, b, c]) => IpAddr::V4(Ipv4Addr::new(a, b, c, i as u8)),
        }
    }
}

fn net() -> impl proptest::strategy::Strategy<Value = Net> {
    prop_oneof![v6_net(), any::<[u8; 3]>().prop_map(Net::V4)]
}

/// An IPv6 /48: 65,536 /64s to flood from (a /24 has only 256 addresses).
fn v6_net() -> impl proptest::strategy::Strategy<Value = Net> {
    any::<[u16; 3]>().prop_map(Net::V6)
}

/// What a limiter sees for a client: its key (IPv4 /32, IPv6 /64) and its network.
fn key_of(ip: IpAddr) -> String {
    IpGrouping::default().key(ip)
}

fn limiter(limits: &str, strategy: Algo, max_keys: usize, clock: &ManualClock) -> RateLimiter {
    RateLimiter::parse(limits)
        .expect("limits")
        .with_strategy(strategy)
        .expect("strategy")
        .with_memory(MemoryStore::new(max_keys).with_clock(clock.clone()))
}

async fn admitted(l: &RateLimiter, ip: IpAddr) -> bool {
    l.check_from(&key_of(ip), ip, 1)
        .await
        .expect("memory never fails")
        .allowed()
}

/// Tracked entries and overflow entries together never pass `max_keys` per limit.
fn assert_within_cap(l: &RateLimiter) -> Result<(), TestCaseError> {
    let store = l.memory_store().expect("memory");
    let limits = l.limits().len();
    prop_assert!(
        store.len() + store.overflow_len() <= store.max_keys() * limits,
        "{} tracked + {} overflow > {} × {limits}",
        store.len(),
        store.overflow_len(),
        store.max_keys()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A flood of distinct keys from fewer aggregate networks than an aggregate has slots:
    /// memory stays within the cap after every request, and while the store is full a client
    /// of any other network gets exactly its allowance (all of it, and no more), whatever the
    /// hash key, the limits, the strategy and the flood.
    #[test]
    fn a_flood_from_a_few_networks_never_takes_a_bystanders_allowance(
        max_keys in 128usize..1_500,
        flooders in proptest::collection::vec(v6_net(), 1..8),
        bystander in net(),
        per_key in 1u32..4,
        amount in 1u64..15,
        two_limits in any::<bool>(),
        gcra in any::<bool>(),
        seed in any::<u32>(),
    ) {
        prop_assume!(!flooders.contains(&bystander));
        let strategy = if gcra { Algo::Gcra } else { Algo::MovingWindow };
        let limits = if two_limits {
            format!("{amount} per minute; {} per hour", amount * 3)
        } else {
            format!("{amount} per minute")
        };
        let clock = ManualClock::new();
        let l = limiter(&limits, strategy, max_keys, &clock);
        block_on(async {
            // Twice the cap in distinct keys, each sending a few requests, the networks
            // interleaved; time stands still, so every entry stays live: the store is full.
            let keys = 2 * max_keys as u32;
            for i in 0..keys {
                let net = flooders[(i as usize + seed as usize) % flooders.len()];
                let ip = net.host(i.wrapping_add(seed));
                for _ in 0..per_key {
                    let _ = admitted(&l, ip).await;
                }
                assert_within_cap(&l)?;
            }
            let store = l.memory_store().expect("memory");
            prop_assert!(store.overflowed() > 0, "the flood filled the store");
            prop_assert_eq!(store.overflow_shared(), 0, "fewer networks than probes");
            // The bystander: its whole allowance, then the limit.
            let ip = bystander.host(seed);
            for n in 0..amount {
                prop_assert!(admitted(&l, ip).await, "request {} of {} refused", n + 1, amount);
            }
            prop_assert!(!admitted(&l, ip).await, "more than the allowance");
            // A newcomer of a flooding network shares that network's spent allowance.
            // Its /64 is not one the flood used (those are `seed + i` for `i < keys`).
            let spent = flooders[0].host(seed.wrapping_add(keys + 1));
            prop_assert!(!admitted(&l, spent).await, "the flooding network is refused");
            assert_within_cap(&l)?;
            Ok(())
        })?;
    }

    /// Memory stays within the cap whatever the traffic: many networks (more than there are
    /// slots), time moving, refunds, several limits.
    #[test]
    fn memory_never_exceeds_the_cap(
        max_keys in 2usize..400,
        ops in proptest::collection::vec((net(), 0u32..5_000, 0u64..3, 0u8..10), 1..1_500),
    ) {
        let clock = ManualClock::new();
        let l = limiter("3 per second; 10 per minute", Algo::MovingWindow, max_keys, &clock);
        block_on(async {
            for (net, host, cost, op) in ops {
                let ip = net.host(host);
                match op {
                    0 => clock.advance(Duration::from_millis(400)),
                    1 => l.refund_from(&key_of(ip), ip, cost).await.expect("refund"),
                    _ => {
                        let _ = l.check_from(&key_of(ip), ip, cost).await.expect("check");
                    }
                }
                assert_within_cap(&l)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }

    /// The aggregate the store counts a key on is the network's /48 or /24 (or the key's own
    /// network when it is wider): the same for every address inside it, different outside.
    #[test]
    fn aggregates_are_the_48_and_the_24(v6 in any::<u128>(), v4 in any::<u32>(), other in any::<u128>(), prefix in 0u8..=128) {
        let a6 = Ipv6Addr::from(v6);
        let b6 = Ipv6Addr::from(other);
        let same48 = (v6 >> 80) == (other >> 80);
        let agg = |ip: IpAddr, p: u8| Aggregate::of(ip, p);
        prop_assert_eq!(agg(a6.into(), 64) == agg(b6.into(), 64), same48);
        let a4 = Ipv4Addr::from(v4);
        let b4 = Ipv4Addr::from(v4 ^ 0xff);
        prop_assert_eq!(agg(a4.into(), 32), agg(b4.into(), 32), "one /24");
        prop_assert_ne!(agg(a4.into(), 32), agg(Ipv4Addr::from(v4 ^ 0x100).into(), 32));
        prop_assert_ne!(agg(a4.into(), 32), Aggregate::NONE);
        // The aggregate of a network is the network's aggregate, whatever its prefix.
        let p6 = prefix;
        let net = ipnet::IpNet::new(IpAddr::V6(a6), p6).expect("prefix");
        prop_assert_eq!(agg(a6.into(), p6), Aggregate::of_net(aggregate(net)));
        prop_assert_eq!(aggregate(net).prefix_len(), p6.min(48));
        let p4 = prefix.min(32);
        let net = ipnet::IpNet::new(IpAddr::V4(a4), p4).expect("prefix");
        prop_assert_eq!(agg(a4.into(), p4), Aggregate::of_net(aggregate(net)));
        // An IPv4-mapped address is its IPv4 address.
        prop_assert_eq!(agg(a4.to_ipv6_mapped().into(), 128), agg(a4.into(), 32));
    }
}

/// The store keeps its promises about what a flood cannot do: a tracked, limited client stays
/// limited, and nothing a flood does to the overflow slots resets anyone.
#[test]
fn a_flood_never_frees_a_limited_client() {
    block_on(async {
        let clock = ManualClock::new();
        let l = limiter("3 per minute", Algo::MovingWindow, 1_000, &clock);
        let victim: IpAddr = "2001:db8:9:9::1".parse().expect("ip");
        for _ in 0..3 {
            assert!(admitted(&l, victim).await);
        }
        assert!(!admitted(&l, victim).await);
        // A flood from 64 networks (more than the 32 slots): every slot is taken.
        for i in 0..20_000u32 {
            let net = Net::V6([0x2001, 0xdb8, 0x100 + (i % 64) as u16]);
            let _ = admitted(&l, net.host(i)).await;
        }
        let store = l.memory_store().expect("memory");
        assert!(
            store.overflow_shared() > 0,
            "more networks than slots share"
        );
        assert!(
            store.len() + store.overflow_len() <= 1_000,
            "{}",
            store.len()
        );
        assert!(
            !admitted(&l, victim).await,
            "the limited client did not escape"
        );
        // A minute later everything is idle: newcomers are tracked again.
        clock.advance(Duration::from_secs(61));
        assert!(admitted(&l, victim).await);
        assert!(admitted(&l, "198.51.100.23".parse().expect("ip")).await);
    });
}

/// The login throttle under a flood that fills every one of its memory stores: a sign-in from
/// another network gets its whole allowance (5 failures, then the backoff), the flooding
/// networks are refused, and nothing passes uncounted.
#[test]
fn a_flood_never_locks_login_bystanders_out() {
    block_on(async {
        // 64 keys per counter: 4 overflow slots (all probed by every network), 60 tracked.
        let t = LoginThrottle::new().with_memory_clock(ManualClock::new(), 64);
        let floods = [
            Net::V6([0x2001, 0xdb8, 0xa]),
            Net::V6([0x2001, 0xdb8, 0xb]),
            Net::V6([0x2001, 0xdb8, 0xc]),
        ];
        for i in 0..600u32 {
            let ip = floods[i as usize % 3].host(i);
            let _ = t.check(&format!("flood{i}"), ip).await.expect("check");
        }
        // Each flooding /48 spent its one allowance (5 per 15 minutes per account and network).
        for (n, net) in floods.iter().enumerate() {
            let verdict = t
                .check(&format!("new{n}"), net.host(10_000))
                .await
                .expect("c");
            assert!(!verdict.is_allowed(), "flooding network {n} refused");
        }
        // A bystander elsewhere: five wrong passwords, then the backoff.
        let ip: IpAddr = "198.51.100.23".parse().expect("ip");
        for n in 0..5 {
            let verdict = t.check("victim", ip).await.expect("c");
            assert!(verdict.is_allowed(), "attempt {} refused", n + 1);
        }
        assert!(!t.check("victim", ip).await.expect("c").is_allowed());
    });
}

/// During a flood a success gives back its own unit on the network's overflow allowance (the
/// failures before it stay: the allowance is the whole network's, not the account's).
#[test]
fn a_login_success_during_a_flood_gives_its_unit_back() {
    block_on(async {
        let t = LoginThrottle::new().with_memory_clock(ManualClock::new(), 64);
        for i in 0..600u32 {
            let ip = Net::V6([0x2001, 0xdb8, 0xa]).host(i);
            t.failed(&format!("flood{i}"), ip).await.expect("failed");
        }
        let ip: IpAddr = "198.51.100.23".parse().expect("ip");
        for _ in 0..3 {
            assert!(t.check("alice", ip).await.expect("c").is_allowed()); // wrong passwords
        }
        let LoginVerdict::Allowed(attempt) = t.check("alice", ip).await.expect("c") else {
            panic!("the fourth attempt is allowed");
        };
        t.succeeded(attempt).await.expect("succeeded");
        // 3 of 5 spent: two more, then the backoff.
        assert!(t.check("alice", ip).await.expect("c").is_allowed());
        assert!(t.check("alice", ip).await.expect("c").is_allowed());
        assert!(!t.check("alice", ip).await.expect("c").is_allowed());
    });
}

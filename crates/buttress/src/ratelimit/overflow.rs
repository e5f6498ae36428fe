//! Where the memory store counts a key it has no room to track: one overflow allowance per
//! *aggregate network* (IPv6 /48, IPv4 /24), in a bounded table the attacker cannot aim at.
//!
//! | default | value |
//! |---|---|
//! | aggregate of an IPv6 key | its /48 ([`AGGREGATE_V6_PREFIX`]), or the key's own network when wider |
//! | aggregate of an IPv4 key | its /24 ([`AGGREGATE_V4_PREFIX`]), or the key's own network when wider |
//! | overflow slots | 1/16 of the store's cap, rounded down to a power of two, 1 to [`MAX_OVERFLOW_SLOTS`] (4,096) |
//! | slots probed per aggregate | [`OVERFLOW_PROBES`] (8) |
//! | slot placement | keyed SipHash (the standard library's `RandomState`, SipHash-1-3) under a random key per store |
//!
//! # The problem
//!
//! A memory store must be bounded, and it must never evict a tracked key (eviction lets a limited
//! client escape by flooding the store with fresh keys until its own entry is pushed out). So when
//! the store is full of live entries, a *new* key cannot get an entry of its own and must be
//! counted somewhere shared. Counting every newcomer on one shared state per limit (what this
//! store did before) hands the whole site to the flooder: 3,000 requests from distinct IPv6 /64s
//! out of three /48s filled a 1,000-key store, and a visitor from another network then got 0 of
//! its 10 requests.
//!
//! # The design
//!
//! A newcomer is counted on the overflow allowance of its **aggregate network**, the network an
//! attacker cannot multiply cheaply: the /48 of an IPv6 key (a /48 is what one site is usually
//! given; the /64s inside it are free to its holder) and the /24 of an IPv4 key. A key without a
//! network ([`RateLimiter::check`](super::RateLimiter::check) with no address) counts on the
//! aggregate "no network", shared by all such keys. The allowance is the limit itself: during a
//! flood, all untracked keys of one aggregate share one client's allowance.
//!
//! The allowances live in a table of `S` slots (a power of two, taken out of the store's cap so
//! that tracked entries plus slots never exceed `max_keys` per limit). An aggregate's slots are
//! `P = 8` distinct positions `h, h + d, h + 2d, …` (mod `S`, `d` odd) from a keyed SipHash of the
//! aggregate (the standard library's `RandomState`) under a random key drawn when the store is
//! made. A newcomer takes, in order:
//!
//! 1. the slot among its `P` that its aggregate already owns;
//! 2. else the first of its `P` that is free or *idle* (every state in it is back to a full
//!    allowance, so reusing it forgets nothing), which its aggregate now owns;
//! 3. else (all `P` are held by other aggregates with live state) the first of its `P` whose
//!    allowance still admits the request, shared with its owner; when none does, it is refused.
//!
//! An aggregate owns at most one slot (step 1 looks at all `P` before step 2 claims one), and live
//! state is never taken from its owner, so neither a flood nor a fresh aggregate can reset anyone's
//! count.
//!
//! # What it guarantees, and its limits
//!
//! - **Memory:** at most `max_keys` entries per limit in all (tracked and overflow); a
//!   moving-window entry holds at most `N` timestamps. Nothing grows with the flood.
//! - **A limited client stays limited:** tracked entries are never evicted; a flood changes no
//!   tracked count.
//! - **Bystanders keep their allowance:** a flood from fewer than `P` (8) aggregate networks cannot
//!   touch another network's allowance at all, whatever the hash: the newcomer always finds one of
//!   its `P` distinct slots that no flooding aggregate holds. From more networks, a given bystander
//!   shares only when all `P` of its slots are held live by others; with `m` flooding aggregates
//!   in `S` slots that is about `(m/S)^8` for unaimed networks, and the keyed hash is what keeps the
//!   attacker from aiming: without the key they cannot tell which of their networks land on a
//!   victim's slots. Even then the bystander is admitted while any of its `P` slots has room.
//! - **The flooder pays:** the untracked keys of a flooding aggregate share one allowance, so
//!   during a flood a /48 gets what one /64 gets outside it.
//! - **Where it stops:** an attacker holding live state in more aggregates than there are slots
//!   (4,096 /24s or /48s at the default cap, held active together) fills every slot, and then
//!   newcomers share slots with the flood and may be refused early: the safe side for the limit,
//!   not for the bystander. Keys without an address share one aggregate. For floods of that size,
//!   count in Redis (no per-instance cap) or raise `BUTTRESS_RATELIMIT_MAX_KEYS`.
//! - **A per-network limit** on top (e.g. `1000 per minute` per IPv6 /48) is one more
//!   [`RateLimitLayer`](super::RateLimitLayer) with its own scope and
//!   [`IpGrouping::new(24, 48)`](super::IpGrouping::new).
//!
//! # Example
//!
//! ```
//! use std::net::IpAddr;
//! use buttress::ratelimit::{aggregate, ManualClock, MemoryStore, RateLimiter};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new(1_000).with_clock(ManualClock::new());
//! assert_eq!(store.overflow_slots(), 32);
//! let limiter = RateLimiter::parse("10 per minute")?.with_memory(store);
//! // A flood of distinct /64s from one /48 fills the store, then shares the /48's allowance.
//! for i in 0..3_000u32 {
//!     let ip = IpAddr::from([0x2001, 0xdb8, 1, i as u16, 0, 0, 0, 1]);
//!     let _ = limiter.check_from(&format!("{ip}"), ip, 1).await?;
//! }
//! let spent: IpAddr = "2001:db8:1:ffff::1".parse()?;
//! assert!(!limiter.check_from("2001:db8:1:ffff::/64", spent, 1).await?.allowed());
//! // A client from another network still gets its whole allowance.
//! let bystander: IpAddr = "198.51.100.23".parse()?;
//! for _ in 0..10 {
//!     assert!(limiter.check_from("198.51.100.23", bystander, 1).await?.allowed());
//! }
//! assert_eq!(aggregate("2001:db8:1:2::/64".parse()?).to_string(), "2001:db8:1::/48");
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::algorithm::{Outcome, Outcomes, Rule};
use super::table::{entry_id, step, Maps};

/// The aggregate of an IPv4 key: its /24.
///
/// ```
/// assert_eq!(buttress::ratelimit::AGGREGATE_V4_PREFIX, 24);
/// ```
pub const AGGREGATE_V4_PREFIX: u8 = 24;

/// The aggregate of an IPv6 key: its /48.
///
/// ```
/// assert_eq!(buttress::ratelimit::AGGREGATE_V6_PREFIX, 48);
/// ```
pub const AGGREGATE_V6_PREFIX: u8 = 48;

/// The most overflow slots a store has (at the default cap of 100,000 keys it has these).
///
/// ```
/// use buttress::ratelimit::{MemoryStore, MAX_OVERFLOW_SLOTS};
/// assert_eq!(MemoryStore::default().overflow_slots(), MAX_OVERFLOW_SLOTS);
/// ```
pub const MAX_OVERFLOW_SLOTS: usize = 4096;

/// How many distinct slots an aggregate may use (fewer when the table is smaller).
///
/// ```
/// assert_eq!(buttress::ratelimit::OVERFLOW_PROBES, 8);
/// ```
pub const OVERFLOW_PROBES: usize = 8;

/// The share of the cap given to overflow slots: one in this many.
const SLOT_SHARE: usize = 16;

/// A slot no aggregate owns (no aggregate tag has both top bits set).
const FREE: u64 = u64::MAX;
const V4_TAG: u64 = 1 << 62;
const V6_TAG: u64 = 2 << 62;

/// The aggregate network of a key's network: the /24 of IPv4, the /48 of IPv6 (an IPv4-mapped
/// IPv6 network counts as IPv4), or the network itself when it is wider.
///
/// ```
/// use buttress::ratelimit::aggregate;
/// assert_eq!(aggregate("203.0.113.7/32".parse()?).to_string(), "203.0.113.0/24");
/// assert_eq!(aggregate("2001:db8:1:2::/64".parse()?).to_string(), "2001:db8:1::/48");
/// assert_eq!(aggregate("2001:db8::/32".parse()?).to_string(), "2001:db8::/32");
/// assert_eq!(aggregate("::ffff:192.0.2.9/128".parse()?).to_string(), "192.0.2.0/24");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn aggregate(net: IpNet) -> IpNet {
    match normalise(net.addr(), net.prefix_len()) {
        (IpAddr::V4(a), p) => {
            let p = p.min(AGGREGATE_V4_PREFIX);
            Ipv4Net::new(a, p).map_or(net, |n| n.trunc().into())
        }
        (IpAddr::V6(a), p) => {
            let p = p.min(AGGREGATE_V6_PREFIX);
            Ipv6Net::new(a, p).map_or(net, |n| n.trunc().into())
        }
    }
}

/// An IPv4-mapped IPv6 network (`::ffff:0:0/96` and longer) as the IPv4 network it is.
fn normalise(addr: IpAddr, prefix: u8) -> (IpAddr, u8) {
    match addr {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix - 96),
            None => (addr, prefix),
        },
        _ => (addr, prefix),
    }
}

/// An aggregate network as 64 bits: a family tag, the prefix length and the network's bits.
/// Distinct aggregates have distinct tags; [`Aggregate::NONE`] is the aggregate of keys
/// without a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Aggregate(u64);

impl Aggregate {
    /// Keys checked without a network.
    pub(super) const NONE: Aggregate = Aggregate(0);

    /// The aggregate of the network `addr/prefix` (see [`aggregate`]).
    #[inline]
    pub(super) fn of(addr: IpAddr, prefix: u8) -> Aggregate {
        match normalise(addr, prefix) {
            (IpAddr::V4(a), p) => Aggregate::v4(a, p),
            (IpAddr::V6(a), p) => Aggregate::v6(a, p),
        }
    }

    #[inline]
    fn v4(a: Ipv4Addr, prefix: u8) -> Aggregate {
        let p = prefix.min(AGGREGATE_V4_PREFIX);
        let mask = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
        Aggregate(V4_TAG | u64::from(p) << 32 | u64::from(u32::from(a) & mask))
    }

    #[inline]
    fn v6(a: Ipv6Addr, prefix: u8) -> Aggregate {
        let p = prefix.min(AGGREGATE_V6_PREFIX);
        // The top 48 bits of the address; the shift leaves nothing above them.
        let top = u64::try_from(u128::from(a) >> 80).unwrap_or(0);
        let mask = ((1u64 << 48) - 1) & u64::MAX.checked_shl(48 - u32::from(p)).unwrap_or(0);
        Aggregate(V6_TAG | u64::from(p) << 48 | (top & mask))
    }

    /// The aggregate of a network given to [`RateLimiter::check_from`](super::RateLimiter::check_from).
    pub(super) fn of_net(net: IpNet) -> Aggregate {
        Aggregate::of(net.addr(), net.prefix_len())
    }
}

/// How many overflow slots a store with this cap gets.
pub(super) fn slots_for(max_keys: usize) -> usize {
    let share = (max_keys / SLOT_SHARE).max(1);
    // The largest power of two not above the share.
    let pow = 1usize << (usize::BITS - 1 - share.leading_zeros());
    pow.min(MAX_OVERFLOW_SLOTS)
}

/// Which slot a newcomer was counted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placed {
    /// Its aggregate's own slot (held already, or claimed now).
    Own,
    /// Another aggregate's live slot (every probed slot was held).
    Shared,
}

/// The slots an aggregate may use, in order.
#[derive(Debug, Clone, Copy)]
struct Probes {
    slots: [usize; OVERFLOW_PROBES],
    len: usize,
}

impl Probes {
    fn iter(self) -> impl Iterator<Item = usize> {
        self.slots.into_iter().take(self.len)
    }
}

/// The overflow table (see the [module docs](self)).
pub(super) struct Overflow {
    /// The aggregate owning each slot, or [`FREE`].
    owners: Box<[u64]>,
    /// The slots' states: limit `i` of slot `s` is entry `entry_id(s, i)`.
    maps: Maps,
    mask: usize,
    probes: usize,
    /// Keyed SipHash (std's `RandomState`) under a key drawn at random for this table.
    placement: std::hash::RandomState,
}

impl Overflow {
    pub(super) fn new(slots: usize) -> Overflow {
        let slots = slots.clamp(1, MAX_OVERFLOW_SLOTS).next_power_of_two();
        Overflow {
            owners: vec![FREE; slots].into_boxed_slice(),
            maps: Maps::default(),
            mask: slots - 1,
            probes: OVERFLOW_PROBES.min(slots),
            placement: std::hash::RandomState::new(),
        }
    }

    pub(super) fn slots(&self) -> usize {
        self.owners.len()
    }

    /// Entries held (one per slot in use and limit).
    pub(super) fn len(&self) -> usize {
        self.maps.len()
    }

    pub(super) fn approx_bytes(&self) -> usize {
        self.owners.len() * 8 + self.maps.approx_bytes()
    }

    /// The `P` distinct slots of `agg`, in the order they are tried.
    fn probes(&self, agg: Aggregate) -> Probes {
        let h = self.placement.hash_one(agg.0);
        // Truncation to the table's bits is the point; an odd stride visits P distinct slots.
        let start = h as usize;
        let stride = (h >> 32) as usize | 1;
        let mut probes = Probes {
            slots: [0; OVERFLOW_PROBES],
            len: self.probes,
        };
        for (i, slot) in probes.slots.iter_mut().enumerate().take(self.probes) {
            *slot = start.wrapping_add(i.wrapping_mul(stride)) & self.mask;
        }
        probes
    }

    /// Whether any limit of `slot` holds state that still matters.
    fn live(&self, slot: usize, rules: &[Rule], now: u64) -> bool {
        rules
            .iter()
            .enumerate()
            .any(|(i, r)| self.maps.live(r, entry_id(slot as u64, i), now))
    }

    /// Picks the slot a newcomer of `agg` is counted on (steps 1 to 3 of the module docs).
    /// The limits counted here are those the key has no entry for in `shard` (`ids`).
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        agg: Aggregate,
        shard: &Maps,
        ids: &[u64],
        rules: &[Rule],
        cost: u64,
        now: u64,
    ) -> (usize, Placed) {
        let probes = self.probes(agg);
        if let Some(s) = probes.iter().find(|&s| self.owners[s] == agg.0) {
            return (s, Placed::Own);
        }
        let free = probes
            .iter()
            .find(|&s| self.owners[s] == FREE || !self.live(s, rules, now));
        if let Some(s) = free {
            for (i, r) in rules.iter().enumerate() {
                self.maps.remove(r.strategy, entry_id(s as u64, i));
            }
            self.owners[s] = agg.0;
            return (s, Placed::Own);
        }
        let roomy = probes.iter().find(|&s| {
            rules.iter().zip(ids).enumerate().all(|(i, (r, id))| {
                shard.contains(r.strategy, *id)
                    || step(&mut self.maps, r, entry_id(s as u64, i), cost, false, now).allowed
            })
        });
        (roomy.unwrap_or(probes.slots[0]), Placed::Shared)
    }

    /// Checks a key that cannot be tracked: each limit on the key's own entry in `shard` when
    /// it has one, else on the slot of its aggregate; all must pass, and only then (with
    /// `commit`) is anything recorded.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn evaluate(
        &mut self,
        shard: &mut Maps,
        ids: &[u64],
        rules: &[Rule],
        agg: Aggregate,
        cost: u64,
        commit: bool,
        now: u64,
    ) -> (Outcomes, Placed) {
        let (slot, placed) = self.place(agg, shard, ids, rules, cost, now);
        let mut outcomes = Outcomes::new();
        // One limit: checked and recorded in one step. Several: all checked, then recorded.
        let passes: &[bool] = if rules.len() == 1 {
            &[true]
        } else {
            &[false, true]
        };
        for &pass in passes {
            let record = pass && commit;
            if pass && rules.len() > 1 && (!commit || !outcomes.all_allowed()) {
                break;
            }
            outcomes.clear();
            for (i, (rule, id)) in rules.iter().zip(ids).enumerate() {
                let outcome: Outcome = if shard.contains(rule.strategy, *id) {
                    step(shard, rule, *id, cost, record, now)
                } else {
                    let slot_id = entry_id(slot as u64, i);
                    step(&mut self.maps, rule, slot_id, cost, record, now)
                };
                outcomes.push(outcome);
            }
        }
        (outcomes, placed)
    }

    /// Gives back `cost` units of the limits `which` on the slot `agg` owns (none when it owns
    /// none: a unit counted on a shared slot stays counted, the safe side).
    pub(super) fn refund(
        &mut self,
        agg: Aggregate,
        rules: &[Rule],
        which: &[bool],
        cost: u64,
        now: u64,
    ) {
        let probes = self.probes(agg);
        let Some(slot) = probes.iter().find(|&s| self.owners[s] == agg.0) else {
            return;
        };
        for (i, r) in rules.iter().enumerate() {
            if which.get(i).copied().unwrap_or(false) {
                self.maps.refund(r, entry_id(slot as u64, i), cost, now);
            }
        }
    }
}

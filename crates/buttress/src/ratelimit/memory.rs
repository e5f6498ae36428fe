//! The in-process store: [`MemoryStore`] (its docs hold the cap and overflow policy).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::algorithm::{gcra, Outcome, Outcomes, Rule, Strategy};
use super::clock::{Clock, MonotonicClock, StoreClock};
use super::overflow::{slots_for, Aggregate, Overflow, Placed};
use super::table::{entry_id, evaluate, Maps};

/// The default cap on tracked keys.
///
/// ```
/// assert_eq!(buttress::ratelimit::MemoryStore::default().max_keys(), buttress::ratelimit::DEFAULT_MAX_KEYS);
/// ```
pub const DEFAULT_MAX_KEYS: usize = 100_000;
const MAX_SHARDS: usize = 64;
const SWEEP_INTERVAL_US: u64 = 10_000_000;
const FULL_SWEEP_MIN_US: u64 = 1_000_000;

/// What one check asks: its cost, whether to record it, and the aggregate network it comes
/// from (where it is counted if its key cannot be tracked).
#[derive(Debug, Clone, Copy)]
pub(super) struct Ask {
    pub(super) cost: u64,
    pub(super) commit: bool,
    pub(super) agg: Aggregate,
}

/// The in-process store: sharded, bounded, swept, and fair to bystanders under a flood.
///
/// | default | value |
/// |---|---|
/// | cap | [`DEFAULT_MAX_KEYS`] (100,000) clients × limits entries, overflow slots included |
/// | shards | up to 64, at least 256 keys each |
/// | sweep | a shard touched 10 s after its last sweep; a full shard when a new key arrives, at most once a second |
/// | a new key in a full shard | counted on its aggregate network's overflow slot (the overflow table (`docs/ratelimit.md`)) |
///
/// Keys are hashed (foldhash, quality variant, with a per-process random seed) into 64 bits; the
/// top bits pick one of up to 64 shards (each a `Mutex` around two hash maps), so all limits of one
/// client live in one shard and are checked under one lock. Each (client, limit) pair is one
/// entry: 8 bytes of key and 8 bytes of GCRA state (a moving-window entry holds its `N`
/// timestamps instead).
///
/// # Memory cap and overflow policy
///
/// A store holds at most `max_keys` × (number of limits) entries: the overflow slots (1/16 of
/// `max_keys`, at most 4,096; see the overflow table (`docs/ratelimit.md`)) and the tracked entries, split
/// evenly over the shards. Entries that no longer matter (a GCRA state in the past, a window with
/// no timestamp inside it) are swept: every shard is swept when it is touched and its last sweep
/// is older than the sweep interval (10 s), and a full shard is swept at once when a new key
/// arrives (at most once a second, so a flood cannot turn sweeping into a CPU cost per request).
///
/// When a shard is still full of live entries, a **new** key is not tracked on its own. Tracked
/// keys are never evicted: evicting (LRU, random) lets a limited client escape its limit by
/// flooding the store with fresh keys until its own entry is pushed out, which is exactly the
/// attack a limiter must survive. The new key is counted on the overflow allowance of its
/// *aggregate network* (the IPv6 /48 or IPv4 /24 given with
/// [`RateLimiter::check_from`](super::RateLimiter::check_from), as the layers and the login
/// throttle do), in a bounded table placed by a keyed hash: a flood from a few networks uses up
/// their own allowances and leaves everyone else's whole. The design, its guarantees and where
/// they stop are in the the overflow table (`docs/ratelimit.md`) module. [`MemoryStore::overflowed`] counts
/// the checks that went to overflow and [`MemoryStore::overflow_shared`] those that found every
/// slot of their network held by others; size `max_keys` for your busiest period.
///
/// ```
/// use std::time::Duration;
/// use buttress::ratelimit::{ManualClock, MemoryStore, RateLimiter};
///
/// let clock = ManualClock::new();
/// let store = MemoryStore::new(10_000).with_clock(clock.clone());
/// let limiter = RateLimiter::parse("2 per second")?.with_memory(store);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(limiter.check("a", 1).await?.allowed());
/// assert!(limiter.check("a", 1).await?.allowed());
/// assert!(!limiter.check("a", 1).await?.allowed());
/// clock.advance(Duration::from_secs(1));
/// assert!(limiter.check("a", 1).await?.allowed());
/// # Ok::<(), buttress::ratelimit::Unavailable>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MemoryStore {
    shards: Box<[Mutex<Maps>]>,
    shard_shift: u32,
    per_shard: usize,
    max_keys: usize,
    /// Boxed: used only when the store is full, it need not sit in the hot fields' cache lines.
    overflow: Box<Mutex<Overflow>>,
    overflowed: AtomicU64,
    shared: AtomicU64,
    hasher: foldhash::quality::RandomState,
    clock: StoreClock,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_keys", &self.max_keys)
            .field("shards", &self.shards.len())
            .field("overflow_slots", &self.overflow_slots())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_MAX_KEYS)
    }
}

impl MemoryStore {
    /// A store holding at most `max_keys` clients (at least 2), its overflow slots included:
    /// 1/16 of them (rounded down to a power of two, at least 1, at most
    /// [`MAX_OVERFLOW_SLOTS`](super::overflow::MAX_OVERFLOW_SLOTS)) are overflow slots, the rest
    /// tracked keys.
    ///
    /// ```
    /// let store = buttress::ratelimit::MemoryStore::new(50_000);
    /// assert_eq!(store.max_keys(), 50_000);
    /// assert_eq!(store.overflow_slots(), 2048);
    /// ```
    pub fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(2);
        let slots = slots_for(max_keys);
        let tracked = max_keys - slots;
        // Enough keys per shard that the even split loses little: at least 256 per shard.
        let mut shards = 1usize;
        while shards < MAX_SHARDS && tracked / (shards * 2) >= 256 {
            shards *= 2;
        }
        MemoryStore {
            shards: (0..shards).map(|_| Mutex::new(Maps::default())).collect(),
            shard_shift: 64 - shards.trailing_zeros(),
            per_shard: tracked / shards,
            max_keys,
            overflow: Box::new(Mutex::new(Overflow::new(slots))),
            overflowed: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            hasher: foldhash::quality::RandomState::default(),
            clock: StoreClock::Monotonic(MonotonicClock::default()),
        }
    }

    /// Uses `clock` instead of the monotonic clock (tests move time by hand).
    ///
    /// ```
    /// use buttress::ratelimit::{ManualClock, MemoryStore};
    /// let store = MemoryStore::new(10).with_clock(ManualClock::new());
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = StoreClock::Custom(Arc::new(clock));
        self
    }

    /// The cap on clients: tracked keys plus overflow slots.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).max_keys(), 7);
    /// ```
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Entries tracked now (one per client and limit), not counting the overflow slots'.
    ///
    /// ```
    /// assert!(buttress::ratelimit::MemoryStore::new(7).is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether nothing is tracked.
    ///
    /// ```
    /// assert!(buttress::ratelimit::MemoryStore::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many checks were counted on an overflow slot because the key's shard was full of
    /// live keys.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).overflowed(), 0);
    /// ```
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// How many of those found every slot of their aggregate network held live by other
    /// networks, and were counted on one of them (a flood from more networks than there are
    /// slots; see the overflow table (`docs/ratelimit.md`)).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).overflow_shared(), 0);
    /// ```
    pub fn overflow_shared(&self) -> u64 {
        self.shared.load(Ordering::Relaxed)
    }

    /// The number of overflow slots (aggregate networks that can hold an allowance of their own
    /// while the store is full).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(1_000).overflow_slots(), 32);
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).overflow_slots(), 1);
    /// ```
    pub fn overflow_slots(&self) -> usize {
        self.overflow.lock().slots()
    }

    /// Entries held in the overflow slots now (one per slot in use and limit).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).overflow_len(), 0);
    /// ```
    pub fn overflow_len(&self) -> usize {
        self.overflow.lock().len()
    }

    /// The bytes held by the maps' tables and window logs, overflow slots included (not
    /// counting allocator overhead).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).approx_bytes(), 8, "one empty slot");
    /// ```
    pub fn approx_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).approx_bytes())
            .sum::<usize>()
            + self.overflow.lock().approx_bytes()
    }

    #[inline]
    fn base_hash(&self, key: &[&[u8]]) -> u64 {
        let mut h = self.hasher.build_hasher();
        if let [only] = key {
            h.write(only);
        } else {
            for part in key {
                h.write_usize(part.len());
                h.write(part);
            }
        }
        h.finish()
    }

    #[inline]
    fn shard(&self, base: u64) -> &Mutex<Maps> {
        let idx = if self.shards.len() == 1 {
            0
        } else {
            usize::try_from(base >> self.shard_shift).unwrap_or(0)
        };
        // The index is below the shard count by construction (the top log2(shards) bits), and
        // the count is a power of two, so the mask changes nothing and proves the bound.
        &self.shards[idx & (self.shards.len() - 1)]
    }

    /// Checks (and when allowed and `ask.commit`, records) `ask.cost` for `key` against all
    /// `rules`. `then` maps the outcomes (in the order of `rules`) to the result.
    pub(super) fn check<R>(
        &self,
        key: &[&[u8]],
        rules: &[Rule],
        ask: Ask,
        then: impl FnOnce(&[Outcome]) -> R,
    ) -> R {
        if let [rule] = rules {
            return self.check_one(key, rule, ask.cost, ask.commit, ask.agg, |o| {
                then(std::slice::from_ref(o))
            });
        }
        let now = self.clock.now_us();
        let base = self.base_hash(key);
        let mut maps = lock(self.shard(base));
        let outcomes = self.check_locked(&mut maps, base, rules, ask, now);
        then(outcomes.as_slice())
    }

    /// [`check`](Self::check) for a single limit, the common case. Its fast path (a GCRA
    /// limit on a tracked key, no sweep due: one lookup and an update in place) is inlined
    /// into the caller; everything else is [`check_locked`](Self::check_locked). The ask comes
    /// as separate scalars, which stay in registers (a struct cost the fast path 9
    /// instructions).
    ///
    /// `then` runs before the shard is unlocked, on purpose: the result it writes (a
    /// [`Decision`](super::Decision), several words) is then in the cache when the caller
    /// copies it, since the unlock's atomic instruction waits for pending stores; written after
    /// the unlock, the copy would wait on each of those stores (no store-to-load forwarding
    /// into a wider load), which cost more than the lock itself.
    #[inline(always)]
    pub(super) fn check_one<R>(
        &self,
        key: &[&[u8]],
        rule: &Rule,
        cost: u64,
        commit: bool,
        agg: Aggregate,
        then: impl FnOnce(&Outcome) -> R,
    ) -> R {
        let now = self.clock.now_us();
        let base = self.base_hash(key);
        let mut maps = lock(self.shard(base));
        if rule.strategy == Strategy::Gcra
            && now.saturating_sub(maps.last_sweep) < SWEEP_INTERVAL_US
        {
            if let Some(tat) = maps.gcra.get_mut(&entry_id(base, 0)) {
                let (outcome, new_tat) = gcra(rule, *tat, now, cost);
                if commit && outcome.allowed {
                    *tat = new_tat;
                }
                return then(&outcome);
            }
        }
        let ask = Ask { cost, commit, agg };
        let outcome = self.check_one_locked(&mut maps, base, rule, ask, now);
        then(&outcome)
    }

    /// Inlined (it only reads the one outcome of the outlined [`check_locked`](Self::check_locked)),
    /// so the fast path's outcome stays in registers instead of meeting this one in memory.
    #[inline]
    fn check_one_locked(
        &self,
        maps: &mut Maps,
        base: u64,
        rule: &Rule,
        ask: Ask,
        now: u64,
    ) -> Outcome {
        let rules = std::slice::from_ref(rule);
        let outcomes = self.check_locked(maps, base, rules, ask, now);
        // One rule, one outcome.
        outcomes.as_slice().first().copied().unwrap_or_default()
    }

    /// Everything but the fast path of [`check_one`](Self::check_one): sweeping, new keys, the
    /// cap and overflow, several limits, moving windows.
    #[inline(never)]
    fn check_locked(
        &self,
        maps: &mut Maps,
        base: u64,
        rules: &[Rule],
        ask: Ask,
        now: u64,
    ) -> Outcomes {
        if now.saturating_sub(maps.last_sweep) >= SWEEP_INTERVAL_US {
            maps.sweep(rules, now);
        }
        let mut ids = [0u64; 8];
        let many;
        let ids: &[u64] = if rules.len() <= ids.len() {
            for (i, id) in ids.iter_mut().enumerate().take(rules.len()) {
                *id = entry_id(base, i);
            }
            &ids[..rules.len()]
        } else {
            many = (0..rules.len())
                .map(|i| entry_id(base, i))
                .collect::<Vec<_>>();
            &many
        };
        let missing = rules
            .iter()
            .zip(ids)
            .filter(|(r, id)| !maps.contains(r.strategy, **id))
            .count();
        let cap = self.per_shard * rules.len();
        if missing > 0 && ask.commit && maps.len() + missing > cap {
            if now.saturating_sub(maps.last_full_sweep) >= FULL_SWEEP_MIN_US {
                maps.sweep(rules, now);
                maps.last_full_sweep = now;
            }
            if maps.len() + missing > cap {
                return self.check_overflow(maps, ids, rules, ask, now);
            }
        }
        evaluate(maps, ids, rules, ask.cost, ask.commit, now)
    }

    /// A key its full shard cannot track: counted on its aggregate network's overflow slot.
    #[cold]
    fn check_overflow(
        &self,
        maps: &mut Maps,
        ids: &[u64],
        rules: &[Rule],
        ask: Ask,
        now: u64,
    ) -> Outcomes {
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        // Lock order: shard, then overflow (nothing locks them the other way round).
        let mut overflow = self.overflow.lock();
        let (outcomes, placed) =
            overflow.evaluate(maps, ids, rules, ask.agg, ask.cost, ask.commit, now);
        if placed == Placed::Shared {
            self.shared.fetch_add(1, Ordering::Relaxed);
        }
        outcomes
    }

    /// Gives back `cost` units counted for `key` under these rules: a GCRA entry moves back
    /// `cost` emission intervals (removed once that is a full bucket), a moving window drops
    /// its `cost` newest timestamps. A limit the key has no entry for was counted on the
    /// overflow slot of `agg`, if any: that slot gives the units back when `agg` owns it (a
    /// unit counted on a slot shared with another network stays counted).
    pub(super) fn refund(&self, key: &[&[u8]], rules: &[Rule], cost: u64, agg: Aggregate) {
        let now = self.clock.now_us();
        let base = self.base_hash(key);
        let mut maps = lock(self.shard(base));
        // Refunds are rare (a login that succeeded): a small allocation is fine here.
        let which: Vec<bool> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let id = entry_id(base, i);
                let own = maps.contains(r.strategy, id);
                if own {
                    maps.refund(r, id, cost, now);
                }
                !own
            })
            .collect();
        if which.iter().any(|u| *u) {
            self.overflow.lock().refund(agg, rules, &which, cost, now);
        }
    }

    /// Forgets `key` for these rules (a successful login resets its failure count). Only the
    /// key's own entries: an overflow slot is its whole network's, never reset by one key.
    pub(super) fn reset(&self, key: &[&[u8]], rules: &[Rule]) {
        let base = self.base_hash(key);
        let mut maps = lock(self.shard(base));
        for (i, r) in rules.iter().enumerate() {
            maps.remove(r.strategy, entry_id(base, i));
        }
    }
}

#[inline]
fn lock(m: &Mutex<Maps>) -> MutexGuard<'_, Maps> {
    // No poisoning: a panic while holding the lock cannot leave the maps inconsistent (each
    // update is one insert or remove).
    m.lock()
}

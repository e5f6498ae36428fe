//! The in-process store: [`MemoryStore`] (its docs hold the cap and overflow policy).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use super::algorithm::{gcra, gcra_idle, window, window_idle, Outcome, Outcomes, Rule, Strategy};

/// The default cap on tracked keys.
///
/// ```
/// assert_eq!(buttress::ratelimit::MemoryStore::default().max_keys(), buttress::ratelimit::DEFAULT_MAX_KEYS);
/// ```
pub const DEFAULT_MAX_KEYS: usize = 100_000;
const MAX_SHARDS: usize = 64;
const SWEEP_INTERVAL_US: u64 = 10_000_000;
const FULL_SWEEP_MIN_US: u64 = 1_000_000;

/// A source of time in microseconds, monotonic.
///
/// ```
/// use buttress::ratelimit::{Clock, ManualClock};
/// let c = ManualClock::new();
/// assert_eq!(c.now_us(), 0);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Microseconds since an arbitrary fixed origin; never goes backwards.
    fn now_us(&self) -> u64;
}

/// The real monotonic clock (the default): the CPU's invariant TSC where there is one (via
/// `quanta`, a few nanoseconds), else the operating system's monotonic clock.
///
/// ```
/// use buttress::ratelimit::{Clock, MonotonicClock};
/// let c = MonotonicClock::default();
/// assert!(c.now_us() <= c.now_us());
/// ```
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    clock: quanta::Clock,
    /// The raw counter reading at creation.
    origin: u64,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        MonotonicClock { clock, origin }
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_us(&self) -> u64 {
        // One counter read and one multiply-shift to nanoseconds (0 if the counter reads below
        // the origin), then a division by a constant (a multiply): no 128-bit division.
        self.clock.delta_as_nanos(self.origin, self.clock.raw()) / 1000
    }
}

/// A clock moved by hand, for tests. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use buttress::ratelimit::{Clock, ManualClock};
/// let c = ManualClock::new();
/// c.advance(Duration::from_millis(1500));
/// assert_eq!(c.now_us(), 1_500_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at time zero.
    ///
    /// ```
    /// let _ = buttress::ratelimit::ManualClock::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    ///
    /// ```
    /// use buttress::ratelimit::{Clock, ManualClock};
    /// let c = ManualClock::new();
    /// c.advance(std::time::Duration::from_micros(3));
    /// assert_eq!(c.now_us(), 3);
    /// ```
    pub fn advance(&self, by: Duration) {
        let us = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.0.fetch_add(us, Ordering::SeqCst);
    }

    /// Sets the time in microseconds (it must not go backwards for the guarantees to hold).
    ///
    /// ```
    /// use buttress::ratelimit::{Clock, ManualClock};
    /// let c = ManualClock::new();
    /// c.set_us(42);
    /// assert_eq!(c.now_us(), 42);
    /// ```
    pub fn set_us(&self, us: u64) {
        self.0.store(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The store's clock: the monotonic clock called directly (inlined on the hot path), any
/// other through the trait object.
#[derive(Debug)]
enum StoreClock {
    Monotonic(MonotonicClock),
    Custom(Arc<dyn Clock>),
}

impl StoreClock {
    #[inline]
    fn now_us(&self) -> u64 {
        match self {
            StoreClock::Monotonic(c) => c.now_us(),
            StoreClock::Custom(c) => c.now_us(),
        }
    }
}

/// Keys are already uniform random 64-bit values: hash them as themselves.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct Maps {
    gcra: IdMap<u64>,
    window: IdMap<VecDeque<u64>>,
    last_sweep: u64,
    last_full_sweep: u64,
}

impl Maps {
    fn len(&self) -> usize {
        self.gcra.len() + self.window.len()
    }

    fn sweep(&mut self, rules: &[Rule], now: u64) {
        self.gcra.retain(|_, tat| !gcra_idle(*tat, now));
        // Window entries do not know their rule; keep those whose newest stamp is within the
        // longest window period.
        let longest = rules
            .iter()
            .filter(|r| r.strategy == Strategy::MovingWindow)
            .map(|r| r.period)
            .max()
            .unwrap_or(0);
        self.window.retain(|_, log| !window_idle(longest, log, now));
        self.last_sweep = now;
    }

    fn approx_bytes(&self) -> usize {
        let ctrl = 1;
        self.gcra.capacity() * (16 + ctrl)
            + self.window.capacity() * (8 + std::mem::size_of::<VecDeque<u64>>() + ctrl)
            + self
                .window
                .values()
                .map(|l| l.capacity() * 8)
                .sum::<usize>()
    }
}

/// The in-process store: sharded, bounded, swept.
///
/// Keys are hashed (foldhash, quality variant, with a per-process random seed) into 64 bits; the top bits pick one of
/// up to 64 shards (each a `Mutex` around two hash maps), so all limits of one client live in one
/// shard and are checked under one lock. Each (client, limit) pair is one entry: 8 bytes of key
/// and 8 bytes of GCRA state (a moving-window entry holds its `N` timestamps instead).
///
/// # Memory cap and overflow policy
///
/// A store holds at most `max_keys` × (number of limits) entries, split evenly over the shards.
/// Entries that no longer matter (a GCRA state in the past, a window with no timestamp inside
/// it) are swept: every shard is swept when it is touched and its last sweep is older than the
/// sweep interval (10 s), and a full shard is swept at once when a new key arrives (at most once
/// a second, so a flood cannot turn sweeping into a CPU cost per request).
///
/// When a shard is still full of live entries, a **new** key is not tracked on its own: it is
/// counted against one shared *overflow* state per limit. Tracked keys are never evicted. This
/// is deliberate: evicting (LRU, random) lets a limited client escape its limit by flooding the
/// store with fresh keys until its own entry is pushed out, which is exactly the attack a limiter
/// must survive. With this policy a flood costs its sender, never the limit: clients already
/// tracked keep their exact state, and new clients during the flood share the overflow allowance
/// (they may be refused early, which is the safe side). [`MemoryStore::overflowed`] counts
/// the checks that went to overflow; size `max_keys` for your busiest period.
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
///
/// ```
/// use buttress::ratelimit::MemoryStore;
/// let store = MemoryStore::new(1_000);
/// assert_eq!(store.max_keys(), 1_000);
/// assert_eq!(store.len(), 0);
/// ```
pub struct MemoryStore {
    shards: Box<[Mutex<Maps>]>,
    shard_shift: u32,
    per_shard: usize,
    max_keys: usize,
    overflow: Mutex<Maps>,
    overflowed: AtomicU64,
    hasher: foldhash::quality::RandomState,
    clock: StoreClock,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_keys", &self.max_keys)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_MAX_KEYS)
    }
}

impl MemoryStore {
    /// A store tracking at most `max_keys` clients (at least 1).
    ///
    /// ```
    /// let store = buttress::ratelimit::MemoryStore::new(50_000);
    /// assert_eq!(store.max_keys(), 50_000);
    /// ```
    pub fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        // Enough keys per shard that the even split loses little: at least 256 per shard.
        let mut shards = 1usize;
        while shards < MAX_SHARDS && max_keys / (shards * 2) >= 256 {
            shards *= 2;
        }
        MemoryStore {
            shards: (0..shards).map(|_| Mutex::new(Maps::default())).collect(),
            shard_shift: 64 - shards.trailing_zeros(),
            per_shard: max_keys / shards,
            max_keys,
            overflow: Mutex::new(Maps::default()),
            overflowed: AtomicU64::new(0),
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

    /// The cap on tracked clients.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).max_keys(), 7);
    /// ```
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Entries tracked now (one per client and limit).
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

    /// How many checks were counted against the shared overflow state because the store was
    /// full of live keys.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).overflowed(), 0);
    /// ```
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// The bytes held by the maps' tables and window logs (not counting allocator overhead).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::MemoryStore::new(7).approx_bytes(), 0);
    /// ```
    pub fn approx_bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(s).approx_bytes()).sum()
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

    /// Checks (and when allowed and `commit`, records) `cost` for `key` against all `rules`.
    /// `then` maps the outcomes (in the order of `rules`) to the result.
    pub(crate) fn check<R>(
        &self,
        key: &[&[u8]],
        rules: &[Rule],
        cost: u64,
        commit: bool,
        then: impl FnOnce(&[Outcome]) -> R,
    ) -> R {
        if let [rule] = rules {
            return self.check_one(key, rule, cost, commit, |o| then(std::slice::from_ref(o)));
        }
        let now = self.clock.now_us();
        let base = self.base_hash(key);
        let mut maps = lock(self.shard(base));
        let outcomes = self.check_locked(&mut maps, base, rules, cost, commit, now);
        then(outcomes.as_slice())
    }

    /// [`check`](Self::check) for a single limit, the common case. Its fast path (a GCRA
    /// limit on a tracked key, no sweep due: one lookup and an update in place) is inlined
    /// into the caller; everything else is [`check_locked`](Self::check_locked).
    ///
    /// `then` runs before the shard is unlocked, on purpose: the result it writes (a
    /// [`Decision`](super::Decision), several words) is then in the cache when the caller
    /// copies it, since the unlock's atomic instruction waits for pending stores; written after
    /// the unlock, the copy would wait on each of those stores (no store-to-load forwarding
    /// into a wider load), which cost more than the lock itself.
    #[inline(always)]
    pub(crate) fn check_one<R>(
        &self,
        key: &[&[u8]],
        rule: &Rule,
        cost: u64,
        commit: bool,
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
        let outcome = self.check_one_locked(&mut maps, base, rule, cost, commit, now);
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
        cost: u64,
        commit: bool,
        now: u64,
    ) -> Outcome {
        let rules = std::slice::from_ref(rule);
        let outcomes = self.check_locked(maps, base, rules, cost, commit, now);
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
        cost: u64,
        commit: bool,
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
        if missing > 0 && commit && maps.len() + missing > cap {
            if now.saturating_sub(maps.last_full_sweep) >= FULL_SWEEP_MIN_US {
                maps.sweep(rules, now);
                maps.last_full_sweep = now;
            }
            if maps.len() + missing > cap {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
                // Lock order: shard, then overflow (nothing locks them the other way round).
                let mut overflow = lock(&self.overflow);
                return evaluate_overflow(maps, &mut overflow, ids, rules, cost, now);
            }
        }
        evaluate(maps, ids, rules, cost, commit, now)
    }

    /// Gives back `cost` units counted for `key` under these rules: a GCRA entry moves back
    /// `cost` emission intervals (removed once that is a full bucket), a moving window drops
    /// its `cost` newest timestamps. An untracked key is left alone.
    pub(crate) fn refund(&self, key: &[&[u8]], rules: &[Rule], cost: u64) {
        let now = self.clock.now_us();
        let base = self.base_hash(key);
        let mut maps = lock(self.shard(base));
        for (i, r) in rules.iter().enumerate() {
            let id = entry_id(base, i);
            match r.strategy {
                Strategy::Gcra => {
                    if let Some(tat) = maps.gcra.get_mut(&id) {
                        *tat = tat.saturating_sub(r.tau.saturating_mul(cost));
                        if *tat <= now {
                            maps.gcra.remove(&id);
                        }
                    }
                }
                Strategy::MovingWindow => {
                    if let Some(log) = maps.window.get_mut(&id) {
                        let keep = log
                            .len()
                            .saturating_sub(usize::try_from(cost).unwrap_or(usize::MAX));
                        log.truncate(keep);
                        if log.is_empty() {
                            maps.window.remove(&id);
                        }
                    }
                }
            }
        }
    }

    /// Forgets `key` for these rules (a successful login resets its failure count).
    pub(crate) fn reset(&self, key: &[&[u8]], rules: &[Rule]) {
        let base = self.base_hash(key);
        let mut maps = lock(self.shard(base));
        for (i, r) in rules.iter().enumerate() {
            let id = entry_id(base, i);
            match r.strategy {
                Strategy::Gcra => maps.gcra.remove(&id).map(|_| ()),
                Strategy::MovingWindow => maps.window.remove(&id).map(|_| ()),
            };
        }
    }
}

/// A key that cannot be tracked: each limit is evaluated on the key's own entry when it has
/// one, else on the shared overflow entry of that limit; committed only when all pass.
fn evaluate_overflow(
    maps: &mut Maps,
    overflow: &mut Maps,
    ids: &[u64],
    rules: &[Rule],
    cost: u64,
    now: u64,
) -> Outcomes {
    let own: Vec<bool> = rules
        .iter()
        .zip(ids)
        .map(|(r, id)| maps.contains(r.strategy, *id))
        .collect();
    let mut outcomes = Outcomes::new();
    for commit in [false, true] {
        if commit && !outcomes.all_allowed() {
            break;
        }
        outcomes.clear();
        for (i, rule) in rules.iter().enumerate() {
            let outcome = if own[i] {
                step(maps, rule, ids[i], cost, commit, now)
            } else {
                step(overflow, rule, entry_id(0, i), cost, commit, now)
            };
            outcomes.push(outcome);
        }
    }
    outcomes
}

impl Maps {
    fn contains(&self, strategy: Strategy, id: u64) -> bool {
        match strategy {
            Strategy::Gcra => self.gcra.contains_key(&id),
            Strategy::MovingWindow => self.window.contains_key(&id),
        }
    }
}

fn evaluate(
    maps: &mut Maps,
    ids: &[u64],
    rules: &[Rule],
    cost: u64,
    commit: bool,
    now: u64,
) -> Outcomes {
    let mut out = Outcomes::new();
    if rules.len() == 1 {
        out.push(step(maps, &rules[0], ids[0], cost, commit, now));
        return out;
    }
    for (r, id) in rules.iter().zip(ids) {
        out.push(step(maps, r, *id, cost, false, now));
    }
    if commit && out.all_allowed() {
        out.clear();
        for (r, id) in rules.iter().zip(ids) {
            out.push(step(maps, r, *id, cost, true, now));
        }
    }
    out
}

/// One rule on one entry. With `commit`, an allowed outcome is recorded (a fresh key is
/// inserted); without, nothing is inserted.
fn step(maps: &mut Maps, rule: &Rule, id: u64, cost: u64, commit: bool, now: u64) -> Outcome {
    match rule.strategy {
        Strategy::Gcra => {
            let tat = maps.gcra.get(&id).copied().unwrap_or(0);
            let (outcome, new_tat) = gcra(rule, tat, now, cost);
            if commit && outcome.allowed && new_tat > now {
                maps.gcra.insert(id, new_tat);
            }
            outcome
        }
        Strategy::MovingWindow => {
            if commit {
                let log = maps.window.entry(id).or_default();
                let outcome = window(rule, log, now, cost, true);
                if log.is_empty() {
                    maps.window.remove(&id);
                }
                outcome
            } else {
                match maps.window.get_mut(&id) {
                    Some(log) => window(rule, log, now, cost, false),
                    None => window(rule, &mut VecDeque::new(), now, cost, false),
                }
            }
        }
    }
}

/// A distinct, well-mixed entry id for limit `i` of a client (splitmix64 finaliser).
#[inline]
fn entry_id(base: u64, i: usize) -> u64 {
    let mut z = base ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn lock(m: &Mutex<Maps>) -> MutexGuard<'_, Maps> {
    // No poisoning: a panic while holding the lock cannot leave the maps inconsistent (each
    // update is one insert or remove).
    m.lock()
}

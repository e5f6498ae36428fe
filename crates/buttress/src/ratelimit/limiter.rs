//! [`RateLimiter`]: limits + strategy + store + failure policy, checked by key.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ipnet::IpNet;

use super::algorithm::{Outcome, Rule, Strategy};
use super::memory::{Ask, MemoryStore};
use super::overflow::Aggregate;
#[cfg(feature = "redis")]
use super::redis::RedisStore;
use super::{Limit, Limits, RateLimitError};

/// What happens to a check when the shared store (Redis) fails or exceeds its time budget.
///
/// ```
/// use buttress::ratelimit::OnStoreError;
/// assert_eq!("fail-open".parse::<OnStoreError>(), Ok(OnStoreError::FailOpen));
/// assert_eq!(OnStoreError::default(), OnStoreError::FailClosed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStoreError {
    /// Refuse the request (503, kind `rate-limit-unavailable`). The default, and the right
    /// choice for login and other security limits.
    #[default]
    FailClosed,
    /// Admit the request unlimited (availability first; logged and counted).
    FailOpen,
    /// Count in this instance's memory until the store is back (limits hold per instance).
    Memory,
}

impl OnStoreError {
    /// `fail-closed`, `fail-open` or `memory`.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::OnStoreError::Memory.as_str(), "memory");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            OnStoreError::FailClosed => "fail-closed",
            OnStoreError::FailOpen => "fail-open",
            OnStoreError::Memory => "memory",
        }
    }
}

impl std::str::FromStr for OnStoreError {
    type Err = RateLimitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fail-closed" | "closed" => Ok(OnStoreError::FailClosed),
            "fail-open" | "open" => Ok(OnStoreError::FailOpen),
            "memory" | "fallback" => Ok(OnStoreError::Memory),
            _ => Err(RateLimitError::Policy(s.to_owned())),
        }
    }
}

/// The store could not answer and the policy is [`OnStoreError::FailClosed`].
///
/// ```
/// let e = buttress::ratelimit::Unavailable;
/// assert!(e.to_string().contains("unavailable"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the rate-limit store is unavailable and the limit fails closed")]
pub struct Unavailable;

/// The verdict of one check.
///
/// ```
/// use buttress::ratelimit::RateLimiter;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let limiter = RateLimiter::parse("3 per minute")?;
/// let d = limiter.check("client", 1).await?;
/// assert!(d.allowed());
/// assert_eq!(d.remaining(), 2);
/// assert_eq!(d.limit().to_string(), "3 per minute");
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Decision {
    limit: Limit,
    remaining: u64,
    /// Microseconds (every store counts in whole microseconds).
    reset_after_us: u64,
    /// Microseconds; [`NO_RETRY`] when admitted or when no wait helps.
    retry_after_us: u64,
    /// [`ALLOWED`] and [`DEGRADED`]. One word rather than two `bool`s: a decision is written
    /// field by field and then often copied whole, and a copy that reads a word written as
    /// separate bytes stalls the CPU (no store-to-load forwarding), on every check.
    flags: u64,
}

/// `retry_after_us` of a decision without a useful wait.
const NO_RETRY: u64 = u64::MAX;
/// `flags`: the request is admitted.
const ALLOWED: u64 = 1;
/// `flags`: the verdict came from the failure policy.
const DEGRADED: u64 = 2;
/// `flags`: the bits above this hold which limit decided ([`Decision::index`]).
const INDEX_SHIFT: u32 = 8;

/// The flags word of a decision.
#[inline]
fn flags(allowed: bool, degraded: bool) -> u64 {
    (if allowed { ALLOWED } else { 0 }) | (if degraded { DEGRADED } else { 0 })
}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("allowed", &self.allowed())
            .field("limit", &self.limit)
            .field("remaining", &self.remaining)
            .field("reset_after", &self.reset_after())
            .field("retry_after", &self.retry_after())
            .field("degraded", &self.degraded())
            .finish()
    }
}

impl Decision {
    /// Whether the request is admitted.
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let d = RateLimiter::parse("1/minute")?.check("k", 1).await?;
    /// assert!(d.allowed());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn allowed(&self) -> bool {
        self.flags & ALLOWED != 0
    }

    /// The limit that decided: the refusing one, else the one with the least left.
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let d = RateLimiter::parse("200/day; 50/hour")?.check("k", 1).await?;
    /// assert_eq!(d.limit().to_string(), "50 per hour");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Units left in [`limit`](Self::limit) after this request.
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// assert_eq!(RateLimiter::parse("5/minute")?.check("k", 2).await?.remaining(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Time until [`limit`](Self::limit) is back to its full allowance.
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let d = RateLimiter::parse("5/minute")?.check("k", 1).await?;
    /// assert_eq!(d.reset_after().as_secs(), 60);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn reset_after(&self) -> Duration {
        Duration::from_micros(self.reset_after_us)
    }

    /// When refused: how long to wait before the same request would be admitted (`None` when
    /// admitted, or when the cost exceeds the limit and no wait helps).
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let l = RateLimiter::parse("1/minute")?;
    /// assert_eq!(l.check("k", 1).await?.retry_after(), None);
    /// assert!(l.check("k", 1).await?.retry_after().is_some());
    /// assert_eq!(l.check("k", 2).await?.retry_after(), None, "never fits");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after_us != NO_RETRY).then(|| Duration::from_micros(self.retry_after_us))
    }

    /// Whether the store failed and the verdict came from the failure policy (fail-open, or the
    /// in-memory fallback).
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// assert!(!RateLimiter::parse("1/minute")?.check("k", 1).await?.degraded());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn degraded(&self) -> bool {
        self.flags & DEGRADED != 0
    }

    /// Which of the limiter's limits decided, counted from 0 in the order of the limit string
    /// (the `RateLimit` header's policy number is this plus one). While the store fails under
    /// the `memory` policy, [`limit`](Self::limit) is this instance's share of that limit.
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let l = RateLimiter::parse("100 per day; 2 per minute")?;
    /// let d = l.check("k", 1).await?;
    /// assert_eq!((d.index(), d.remaining()), (1, 1), "the minute is nearer its end");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn index(&self) -> usize {
        usize::try_from(self.flags >> INDEX_SHIFT).unwrap_or(0)
    }

    #[inline]
    fn from_outcomes(rules: &[Rule], outcomes: &[Outcome], degraded: bool) -> Decision {
        if let ([rule], [o]) = (rules, outcomes) {
            return Decision::from_one(rule, o, degraded);
        }
        Decision::from_many(rules, outcomes, degraded)
    }

    fn from_many(rules: &[Rule], outcomes: &[Outcome], degraded: bool) -> Decision {
        let allowed = outcomes.iter().all(|o| o.allowed);
        let pick = if allowed {
            outcomes
                .iter()
                .enumerate()
                .min_by_key(|(_, o)| o.remaining)
                .map(|(i, _)| i)
        } else {
            outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| !o.allowed)
                .max_by_key(|(_, o)| o.retry_after)
                .map(|(i, _)| i)
        }
        .unwrap_or(0);
        let (Some(rule), Some(o)) = (rules.get(pick), outcomes.get(pick)) else {
            return Decision::open(rules);
        };
        Decision {
            limit: rule.limit,
            remaining: o.remaining,
            reset_after_us: o.reset_after,
            retry_after_us: if allowed { NO_RETRY } else { o.retry_after },
            flags: flags(allowed, degraded) | (u64::try_from(pick).unwrap_or(0) << INDEX_SHIFT),
        }
    }

    #[inline]
    fn from_one(rule: &Rule, o: &Outcome, degraded: bool) -> Decision {
        Decision {
            limit: rule.limit,
            remaining: o.remaining,
            reset_after_us: o.reset_after,
            retry_after_us: if o.allowed { NO_RETRY } else { o.retry_after },
            flags: flags(o.allowed, degraded),
        }
    }

    /// The refusal of a closed limiter: the first limit of amount 0, no wait that helps.
    fn closed(limits: &Limits) -> Option<Decision> {
        let (i, limit) = limits.iter().enumerate().find(|(_, l)| l.amount() == 0)?;
        Some(Decision {
            limit: *limit,
            remaining: 0,
            reset_after_us: limit.period_us(),
            retry_after_us: NO_RETRY,
            flags: flags(false, false) | (u64::try_from(i).unwrap_or(0) << INDEX_SHIFT),
        })
    }

    fn open(rules: &[Rule]) -> Decision {
        let limit = rules.first().map(|r| r.limit).unwrap_or(FALLBACK_LIMIT);
        Decision {
            limit,
            remaining: limit.amount(),
            reset_after_us: 0,
            retry_after_us: NO_RETRY,
            flags: ALLOWED | DEGRADED,
        }
    }
}

const FALLBACK_LIMIT: Limit = super::grammar::ONE_PER_SECOND;

#[derive(Debug)]
enum Backend {
    Memory(MemoryStore),
    #[cfg(feature = "redis")]
    Redis(RedisStore),
}

#[derive(Debug)]
struct State {
    backend: Backend,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fallback: MemoryStore,
    store_errors: AtomicU64,
    degraded: AtomicU64,
}

/// Limits checked by key in a store, with a failure policy. Clones share the store.
///
/// ```
/// use buttress::ratelimit::{OnStoreError, RateLimiter, Strategy};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let login = RateLimiter::parse("5 per minute")?
///     .with_name("login")
///     .with_on_store_error(OnStoreError::FailClosed);
/// assert_eq!(login.strategies(), vec![Strategy::MovingWindow]);
/// for _ in 0..5 {
///     assert!(login.check("203.0.113.7", 1).await?.allowed());
/// }
/// let refused = login.check("203.0.113.7", 1).await?;
/// assert!(!refused.allowed());
/// assert!(refused.retry_after().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct RateLimiter {
    limits: Limits,
    rules: Arc<[Rule]>,
    /// How many instances share the store ([`RateLimiter::with_instances`]).
    instances: u32,
    /// `rules` with each amount divided among the instances: what the memory fallback counts.
    fallback_rules: Arc<[Rule]>,
    /// The answer to every request when a limit's amount is 0 (`0 per minute`): a refusal
    /// that no store is asked for.
    closed: Option<Decision>,
    name: Arc<str>,
    on_error: OnStoreError,
    state: Arc<State>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits.to_string())
            .field("name", &self.name)
            .field("on_error", &self.on_error)
            .field("backend", &self.state.backend)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter for `limits` in a fresh [`MemoryStore`], each limit with
    /// [`Strategy::for_amount`], failing closed.
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimiter::new("50/hour".parse()?);
    /// assert_eq!(l.limits().to_string(), "50 per hour");
    /// # Ok::<(), buttress::ratelimit::GrammarError>(())
    /// ```
    pub fn new(limits: Limits) -> RateLimiter {
        let rules = rules(&limits, Strategy::for_amount);
        RateLimiter {
            closed: Decision::closed(&limits),
            limits,
            fallback_rules: rules.clone(),
            rules,
            instances: 1,
            name: Arc::from("default"),
            on_error: OnStoreError::FailClosed,
            state: Arc::new(State {
                backend: Backend::Memory(MemoryStore::default()),
                fallback: MemoryStore::default(),
                store_errors: AtomicU64::new(0),
                degraded: AtomicU64::new(0),
            }),
        }
    }

    /// Parses a limit string (see [`Limits`]) into a limiter.
    ///
    /// ```
    /// assert!(buttress::ratelimit::RateLimiter::parse("5 per mintue").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<RateLimiter, RateLimitError> {
        Ok(RateLimiter::new(text.parse()?))
    }

    /// Uses `strategy` for every limit. The moving window takes amounts up to
    /// [`MAX_WINDOW_AMOUNT`](super::MAX_WINDOW_AMOUNT).
    ///
    /// ```
    /// use buttress::ratelimit::{RateLimiter, Strategy};
    /// let l = RateLimiter::parse("5/minute")?.with_strategy(Strategy::Gcra)?;
    /// assert_eq!(l.strategies(), vec![Strategy::Gcra]);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn with_strategy(mut self, strategy: Strategy) -> Result<RateLimiter, RateLimitError> {
        if strategy == Strategy::MovingWindow {
            if let Some(l) = self
                .limits
                .iter()
                .find(|l| l.amount() > super::MAX_WINDOW_AMOUNT)
            {
                return Err(RateLimitError::WindowTooLarge(*l));
            }
        }
        self.rules = rules(&self.limits, |_| strategy);
        self.fallback_rules = share(&self.rules, self.instances);
        Ok(self)
    }

    /// Declares that `instances` instances share this limiter's store (Redis), as
    /// `BUTTRESS_INSTANCES` does. While Redis fails, [`OnStoreError::Memory`] counts in each
    /// instance's own memory; each then admits its share, every amount divided by
    /// `instances` (rounded down, at least 1), so that between them they stay within the
    /// limit (while each amount is at least `instances`). Default 1.
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// let l = RateLimiter::parse("50 per minute; 1000 per day")?.with_instances(3);
    /// assert_eq!(l.instances(), 3);
    /// assert_eq!(l.fallback_limits().to_string(), "16 per minute; 333 per day");
    /// assert_eq!(RateLimiter::parse("2 per minute")?.with_instances(3).fallback_limits().to_string(), "1 per minute");
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn with_instances(mut self, instances: u32) -> RateLimiter {
        self.instances = instances.max(1);
        self.fallback_rules = share(&self.rules, self.instances);
        self
    }

    /// How many instances share the store (see [`RateLimiter::with_instances`]).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::RateLimiter::parse("5/minute")?.instances(), 1);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn instances(&self) -> u32 {
        self.instances
    }

    /// What this instance counts in its own memory while the store fails under
    /// [`OnStoreError::Memory`]: its share of the limits (see
    /// [`RateLimiter::with_instances`]).
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimiter::parse("5/minute")?;
    /// assert_eq!(l.fallback_limits().to_string(), "5 per minute");
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn fallback_limits(&self) -> Limits {
        let limits = self.fallback_rules.iter().map(|r| r.limit).collect();
        Limits::new(limits).unwrap_or_else(|_| self.limits.clone())
    }

    /// Names the limiter; the name is part of every key, so limiters sharing a Redis store
    /// never share counters.
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimiter::parse("5/minute")?.with_name("login");
    /// assert_eq!(l.name(), "login");
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn with_name(mut self, name: &str) -> RateLimiter {
        self.name = Arc::from(name);
        self
    }

    /// Stores counters in `store` (e.g. with a different cap or a manual clock).
    ///
    /// ```
    /// use buttress::ratelimit::{MemoryStore, RateLimiter};
    /// let l = RateLimiter::parse("5/minute")?.with_memory(MemoryStore::new(1_000));
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn with_memory(self, store: MemoryStore) -> RateLimiter {
        self.with_backend(Backend::Memory(store))
    }

    /// Stores counters in Redis, shared by every instance.
    ///
    /// ```no_run
    /// use buttress::ratelimit::{OnStoreError, RateLimiter, RedisStore};
    /// let l = RateLimiter::parse("5/minute")?
    ///     .with_redis(RedisStore::open("redis://127.0.0.1:6379")?)
    ///     .with_on_store_error(OnStoreError::Memory);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn with_redis(self, store: RedisStore) -> RateLimiter {
        self.with_backend(Backend::Redis(store))
    }

    fn with_backend(mut self, backend: Backend) -> RateLimiter {
        self.state = Arc::new(State {
            backend,
            fallback: MemoryStore::default(),
            store_errors: AtomicU64::new(0),
            degraded: AtomicU64::new(0),
        });
        self
    }

    /// What to do when the store fails. Default: [`OnStoreError::FailClosed`]. A memory store
    /// never fails.
    ///
    /// ```
    /// use buttress::ratelimit::{OnStoreError, RateLimiter};
    /// let l = RateLimiter::parse("5/minute")?.with_on_store_error(OnStoreError::FailOpen);
    /// assert_eq!(l.on_store_error(), OnStoreError::FailOpen);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn with_on_store_error(mut self, policy: OnStoreError) -> RateLimiter {
        self.on_error = policy;
        self
    }

    /// The limits.
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimiter::parse("5/minute")?;
    /// assert_eq!(l.limits().len(), 1);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The strategy of each limit, in order.
    ///
    /// ```
    /// use buttress::ratelimit::{RateLimiter, Strategy};
    /// let l = RateLimiter::parse("200 per day; 5 per minute")?;
    /// assert_eq!(l.strategies(), vec![Strategy::Gcra, Strategy::MovingWindow]);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn strategies(&self) -> Vec<Strategy> {
        self.rules.iter().map(|r| r.strategy).collect()
    }

    /// The name given with [`with_name`](Self::with_name) (`"default"` otherwise).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::RateLimiter::parse("1/second")?.name(), "default");
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The failure policy.
    ///
    /// ```
    /// use buttress::ratelimit::{OnStoreError, RateLimiter};
    /// assert_eq!(RateLimiter::parse("1/second")?.on_store_error(), OnStoreError::FailClosed);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn on_store_error(&self) -> OnStoreError {
        self.on_error
    }

    /// How many store calls failed or ran out of time (each one also logged).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::RateLimiter::parse("1/second")?.store_errors(), 0);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn store_errors(&self) -> u64 {
        self.state.store_errors.load(Ordering::Relaxed)
    }

    /// How many checks were answered by the failure policy instead of the store.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::RateLimiter::parse("1/second")?.degraded_checks(), 0);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn degraded_checks(&self) -> u64 {
        self.state.degraded.load(Ordering::Relaxed)
    }

    /// The memory store, when this limiter counts in memory.
    ///
    /// ```
    /// let l = buttress::ratelimit::RateLimiter::parse("1/second")?;
    /// assert!(l.memory_store().is_some());
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    #[inline]
    pub fn memory_store(&self) -> Option<&MemoryStore> {
        match &self.state.backend {
            Backend::Memory(m) => Some(m),
            #[cfg(feature = "redis")]
            Backend::Redis(_) => None,
        }
    }

    /// Counts `cost` units for `key` when every limit has room, and says so. A cost of 0 only
    /// reports the state. Fails only when the store fails and the policy is fail-closed.
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let l = RateLimiter::parse("2 per second")?;
    /// assert!(l.check("203.0.113.1", 1).await?.allowed());
    /// assert!(l.check("203.0.113.1", 1).await?.allowed());
    /// assert!(!l.check("203.0.113.1", 1).await?.allowed());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn check<'a>(&'a self, key: &'a str, cost: u64) -> Check<'a> {
        Check::new(self, key, Aggregate::NONE, cost, true)
    }

    /// [`check`](Self::check) for a key that stands for a client on `network` (its address, or
    /// the network the key groups it by). Only a full memory store reads it: a key it has no
    /// room to track is counted on the overflow allowance of the network's aggregate (IPv6 /48,
    /// IPv4 /24), so a flood from a few networks never takes the allowance of clients
    /// elsewhere (see [`MemoryStore`](super::MemoryStore)). Without it (`check`), every such key
    /// shares one allowance. [`RateLimitLayer`](super::RateLimitLayer) and
    /// [`LoginThrottle`](super::LoginThrottle) always give it.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let l = RateLimiter::parse("2 per second")?;
    /// let ip: IpAddr = "2001:db8:1:2::7".parse()?;
    /// assert!(l.check_from("account-42", ip, 1).await?.allowed());
    /// assert!(l.check_from("account-42", "2001:db8:1:2::/64".parse::<ipnet::IpNet>()?, 1).await?.allowed());
    /// assert!(!l.check("account-42", 1).await?.allowed(), "one key, one count");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn check_from<'a>(
        &'a self,
        key: &'a str,
        network: impl Into<IpNet>,
        cost: u64,
    ) -> Check<'a> {
        Check::new(self, key, Aggregate::of_net(network.into()), cost, true)
    }

    /// [`check_from`](Self::check_from) with the aggregate already worked out.
    pub(super) fn check_in<'a>(&'a self, key: &'a str, agg: Aggregate, cost: u64) -> Check<'a> {
        Check::new(self, key, agg, cost, true)
    }

    /// Whether one more unit for `key` would be admitted, without counting it. A key that a
    /// full memory store does not track is judged on its own (empty) state: a peek never reads
    /// or claims an overflow allowance (see [`MemoryStore`](super::MemoryStore)), so that one network's
    /// shared allowance cannot make any of its keys look used (the login throttle's "known
    /// network" test relies on that).
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let l = RateLimiter::parse("1 per minute")?;
    /// assert!(l.peek("k").await?.allowed());
    /// assert!(l.peek("k").await?.allowed(), "peeking counts nothing");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn peek<'a>(&'a self, key: &'a str) -> Check<'a> {
        Check::new(self, key, Aggregate::NONE, 1, false)
    }

    /// Gives back `cost` units counted for `key`: for a request counted in advance that turned
    /// out not to need counting (a login that succeeded, where only failures should count).
    /// Counting first and refunding after keeps the limit exact under concurrency, where
    /// peeking first and counting after lets every concurrent request through the peek.
    /// A GCRA limit moves back `cost` intervals (never past a full bucket); a moving window
    /// drops its `cost` newest entries. Refund promptly, with no other count of the key in
    /// between that should stay: a refund gives back the latest units, whichever request
    /// counted them. With Redis down, the failure policy applies as for
    /// [`reset`](Self::reset) (under `memory`, the fallback that counted meanwhile is refunded).
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let l = RateLimiter::parse("1 per minute")?;
    /// assert!(l.check("k", 1).await?.allowed());
    /// assert!(!l.peek("k").await?.allowed());
    /// l.refund("k", 1).await?;
    /// assert!(l.check("k", 1).await?.allowed(), "the unit came back");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn refund(&self, key: &str, cost: u64) -> Result<(), Unavailable> {
        self.refund_in(key, Aggregate::NONE, cost).await
    }

    /// [`refund`](Self::refund) for units counted with [`check_from`](Self::check_from): a unit
    /// a full memory store counted on the network's overflow allowance goes back there.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let l = RateLimiter::parse("1 per minute")?;
    /// let ip: IpAddr = "192.0.2.7".parse()?;
    /// assert!(l.check_from("k", ip, 1).await?.allowed());
    /// l.refund_from("k", ip, 1).await?;
    /// assert!(l.check_from("k", ip, 1).await?.allowed());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn refund_from(
        &self,
        key: &str,
        network: impl Into<IpNet>,
        cost: u64,
    ) -> Result<(), Unavailable> {
        self.refund_in(key, Aggregate::of_net(network.into()), cost)
            .await
    }

    /// [`refund_from`](Self::refund_from) with the aggregate already worked out.
    pub(super) async fn refund_in(
        &self,
        key: &str,
        agg: Aggregate,
        cost: u64,
    ) -> Result<(), Unavailable> {
        match &self.state.backend {
            Backend::Memory(m) => {
                m.refund(&self.memory_key(key), &self.rules, cost, agg);
                Ok(())
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let result = r.refund(&self.full_key(key), &self.rules, cost).await;
                // Only the store that counted gives back: Redis, or the fallback while Redis is
                // down (never both, unlike an idempotent reset).
                if result.is_err() && self.on_error == OnStoreError::Memory {
                    self.state.fallback.refund(
                        &self.memory_key(key),
                        &self.fallback_rules,
                        cost,
                        agg,
                    );
                }
                self.store_result(result)
            }
        }
    }

    /// Forgets every counter of `key` (e.g. after a successful login).
    ///
    /// ```
    /// use buttress::ratelimit::RateLimiter;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let l = RateLimiter::parse("1 per minute")?;
    /// l.check("k", 1).await?;
    /// assert!(!l.peek("k").await?.allowed());
    /// l.reset("k").await?;
    /// assert!(l.peek("k").await?.allowed());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn reset(&self, key: &str) -> Result<(), Unavailable> {
        match &self.state.backend {
            Backend::Memory(m) => {
                m.reset(&self.memory_key(key), &self.rules);
                Ok(())
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                self.state
                    .fallback
                    .reset(&self.memory_key(key), &self.fallback_rules);
                let result = r.reset(&self.full_key(key), &self.rules).await;
                self.store_result(result)
            }
        }
    }

    /// The outcome of a write that answers nothing (reset, refund): a store failure is an
    /// error only when the policy is fail-closed.
    #[cfg(feature = "redis")]
    fn store_result(
        &self,
        result: Result<(), super::redis::StoreError>,
    ) -> Result<(), Unavailable> {
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                if !e.is_skipped() {
                    self.store_failed(&e);
                }
                match self.on_error {
                    OnStoreError::FailClosed => Err(Unavailable),
                    _ => Ok(()),
                }
            }
        }
    }

    /// A memory store belongs to one limiter, so the name need not be part of its keys.
    #[inline]
    fn memory_key<'a>(&'a self, key: &'a str) -> [&'a [u8]; 1] {
        [key.as_bytes()]
    }

    #[cfg(feature = "redis")]
    fn full_key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.name.len() + key.len() + 1);
        full.push_str(&self.name);
        full.push('\u{1f}');
        full.push_str(key);
        full
    }

    /// Checks and counts at once when the store answers synchronously (the memory store);
    /// `None` for a store that needs a round trip (then use [`check`](Self::check)).
    #[inline]
    pub(super) fn check_now(&self, key: &str, agg: Aggregate, cost: u64) -> Option<Decision> {
        #[allow(irrefutable_let_patterns)]
        if let Backend::Memory(m) = &self.state.backend {
            Some(self.check_memory(m, key, cost, true, agg))
        } else {
            None
        }
    }

    /// A check in the memory store: synchronous, no future state (the hot path).
    #[inline(never)]
    fn check_memory(
        &self,
        m: &MemoryStore,
        key: &str,
        cost: u64,
        commit: bool,
        agg: Aggregate,
    ) -> Decision {
        if let Some(closed) = &self.closed {
            return closed.clone();
        }
        if let [rule] = &*self.rules {
            return m.check_one(&self.memory_key(key), rule, cost, commit, agg, |o| {
                Decision::from_one(rule, o, false)
            });
        }
        self.check_memory_many(m, key, Ask { cost, commit, agg })
    }

    #[inline(never)]
    fn check_memory_many(&self, m: &MemoryStore, key: &str, ask: Ask) -> Decision {
        m.check(&self.memory_key(key), &self.rules, ask, |o| {
            Decision::from_outcomes(&self.rules, o, false)
        })
    }

    /// The Redis round trip, boxed: its large state lives on the heap, never in [`Check`].
    #[cfg(feature = "redis")]
    #[inline(never)]
    fn start_redis<'a>(
        &'a self,
        r: &'a RedisStore,
        key: &'a str,
        ask: Ask,
    ) -> Pin<Box<dyn Future<Output = Result<Decision, Unavailable>> + Send + 'a>> {
        Box::pin(async move {
            if let Some(closed) = &self.closed {
                return Ok(closed.clone());
            }
            let full = self.full_key(key);
            match r.check(&full, &self.rules, ask.cost, ask.commit).await {
                Ok(outcomes) => Ok(Decision::from_outcomes(&self.rules, &outcomes, false)),
                Err(e) => {
                    if !e.is_skipped() {
                        self.store_failed(&e);
                    }
                    self.state.degraded.fetch_add(1, Ordering::Relaxed);
                    self.on_failure(key, ask)
                }
            }
        })
    }

    #[cfg(feature = "redis")]
    fn store_failed(&self, e: &super::redis::StoreError) {
        let n = self.state.store_errors.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            limiter = %self.name,
            policy = self.on_error.as_str(),
            failures = n,
            error = %e,
            "rate-limit store failed"
        );
    }

    #[cfg(feature = "redis")]
    fn on_failure(&self, key: &str, ask: Ask) -> Result<Decision, Unavailable> {
        match self.on_error {
            OnStoreError::FailClosed => Err(Unavailable),
            OnStoreError::FailOpen => Ok(Decision::open(&self.rules)),
            OnStoreError::Memory => Ok(self.state.fallback.check(
                &self.memory_key(key),
                &self.fallback_rules,
                ask,
                |o| Decision::from_outcomes(&self.fallback_rules, o, true),
            )),
        }
    }
}

/// `rules` with each amount divided among `instances` (rounded down, at least 1), for the
/// memory fallback: `instances` instances counting alone admit at most the limit between them
/// (while the amount is at least `instances`).
/// The rules of `limits`, each with the strategy `pick` gives for its amount; none when a limit
/// is 0 (the limiter is closed and counts nothing).
fn rules(limits: &Limits, pick: impl Fn(u64) -> Strategy) -> Arc<[Rule]> {
    if limits.iter().any(|l| l.amount() == 0) {
        return Arc::new([]);
    }
    limits
        .iter()
        .map(|l| Rule::new(*l, pick(l.amount())))
        .collect()
}

fn share(rules: &[Rule], instances: u32) -> Arc<[Rule]> {
    rules
        .iter()
        .map(|r| {
            let amount = (r.amount / u64::from(instances.max(1))).max(1);
            match Limit::new(amount, r.limit.multiples(), r.limit.unit()) {
                Ok(limit) => Rule::new(limit, r.strategy),
                // Unreachable: 1 <= amount <= the rule's own amount, which was valid.
                Err(_) => *r,
            }
        })
        .collect()
}

/// The future returned by [`RateLimiter::check`] and [`RateLimiter::peek`]; resolves to the
/// [`Decision`]. Nothing is counted until it is first polled. With a memory store the check
/// completes on that first poll, synchronously, without allocating; with Redis it makes the
/// round trip (its state boxed). Like an `async fn`'s future, it panics if polled again after
/// it completed.
///
/// ```
/// use buttress::ratelimit::{Check, RateLimiter};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let l = RateLimiter::parse("1 per minute")?;
/// let pending: Check<'_> = l.check("k", 1);
/// assert!(l.peek("k").await?.allowed(), "not counted before it is polled");
/// assert!(pending.await?.allowed());
/// assert!(!l.peek("k").await?.allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Check<'a> {
    limiter: &'a RateLimiter,
    /// The limiter's memory store, looked up when the check is made (in the caller, from
    /// memory read long ago) rather than when polled.
    memory: Option<&'a MemoryStore>,
    key: &'a str,
    cost: u64,
    commit: bool,
    /// The client's aggregate network ([`RateLimiter::check_from`]).
    agg: Aggregate,
    state: CheckState<'a>,
}

enum CheckState<'a> {
    Start,
    #[cfg(feature = "redis")]
    Redis(Pin<Box<dyn Future<Output = Result<Decision, Unavailable>> + Send + 'a>>),
    /// Without a store that borrows (no `redis` feature), `'a` lives only here.
    #[cfg(not(feature = "redis"))]
    #[allow(dead_code)] // never built: it only carries the lifetime
    Unused(std::marker::PhantomData<&'a ()>, std::convert::Infallible),
    Done,
}

impl<'a> Check<'a> {
    #[inline]
    fn new(
        limiter: &'a RateLimiter,
        key: &'a str,
        agg: Aggregate,
        cost: u64,
        commit: bool,
    ) -> Self {
        Check {
            limiter,
            memory: limiter.memory_store(),
            key,
            cost,
            commit,
            agg,
            state: CheckState::Start,
        }
    }
}

impl fmt::Debug for Check<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("limiter", &self.limiter.name)
            .field("cost", &self.cost)
            .field("commit", &self.commit)
            .finish_non_exhaustive()
    }
}

impl Check<'_> {
    /// Every poll but a memory store's first (the Redis round trip, and misuse), out of line so
    /// that `poll` stays small enough to inline into its caller.
    #[inline(never)]
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    fn poll_other(&mut self, cx: &mut Context<'_>) -> Poll<Result<Decision, Unavailable>> {
        match &mut self.state {
            CheckState::Start => {}
            #[cfg(feature = "redis")]
            CheckState::Redis(fut) => {
                let out = std::task::ready!(fut.as_mut().poll(cx));
                self.state = CheckState::Done;
                return Poll::Ready(out);
            }
            #[cfg(not(feature = "redis"))]
            CheckState::Unused(_, never) => match *never {},
            CheckState::Done => panic!("rate-limit `Check` polled after completion"),
        }
        let limiter = self.limiter;
        match &limiter.state.backend {
            Backend::Memory(m) => {
                self.state = CheckState::Done;
                Poll::Ready(Ok(limiter.check_memory(
                    m,
                    self.key,
                    self.cost,
                    self.commit,
                    self.agg,
                )))
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let ask = Ask {
                    cost: self.cost,
                    commit: self.commit,
                    agg: self.agg,
                };
                let mut fut = limiter.start_redis(r, self.key, ask);
                let out = fut.as_mut().poll(cx);
                self.state = match out {
                    Poll::Ready(_) => CheckState::Done,
                    Poll::Pending => CheckState::Redis(fut),
                };
                out
            }
        }
    }
}

impl Future for Check<'_> {
    type Output = Result<Decision, Unavailable>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // The memory store's check completes on the first poll, synchronously.
        if let (CheckState::Start, Some(m)) = (&this.state, this.memory) {
            this.state = CheckState::Done;
            return Poll::Ready(Ok(this.limiter.check_memory(
                m,
                this.key,
                this.cost,
                this.commit,
                this.agg,
            )));
        }
        this.poll_other(cx)
    }
}

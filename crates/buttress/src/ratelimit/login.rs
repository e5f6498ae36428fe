//! Login throttling: [`LoginThrottle`] (its docs hold the design).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::overflow::Aggregate;
#[cfg(feature = "redis")]
use super::RedisStore;
use super::{
    Clock, IpGrouping, Limits, MemoryStore, OnStoreError, RateLimitError, RateLimiter, Strategy,
    Unavailable,
};
use crate::telemetry::{LoginOutcome, StoreKind, Telemetry};

/// The verdict before a password is checked.
///
/// ```
/// use buttress::ratelimit::LoginVerdict;
/// let v = LoginVerdict::Wait { retry_after: std::time::Duration::from_secs(72) };
/// assert!(!v.is_allowed());
/// ```
#[derive(Debug)]
#[must_use]
pub enum LoginVerdict {
    /// Go ahead and check the password. The attempt is counted as a failure already: pass it
    /// to [`LoginThrottle::succeeded`] if the password is right, drop it otherwise.
    Allowed(LoginAttempt),
    /// Too many failures: answer 429 with `Retry-After` and do not check the password.
    Wait {
        /// How long until the next attempt is allowed.
        retry_after: Duration,
    },
}

impl LoginVerdict {
    /// Whether the attempt may proceed.
    ///
    /// ```
    /// assert!(!buttress::ratelimit::LoginVerdict::Wait { retry_after: std::time::Duration::from_secs(1) }.is_allowed());
    /// ```
    pub fn is_allowed(&self) -> bool {
        matches!(self, LoginVerdict::Allowed(_))
    }
}

/// An allowed sign-in attempt, counted as a failure until [`LoginThrottle::succeeded`] takes
/// it. Only [`LoginThrottle::check`] makes one, so only what a check counted can be given
/// back, once. Its `Debug` shows no account name.
///
/// ```
/// use buttress::ratelimit::{LoginThrottle, LoginVerdict};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let t = LoginThrottle::new();
/// if let LoginVerdict::Allowed(attempt) = t.check("frank", "192.0.2.7".parse()?).await? {
///     t.succeeded(attempt).await?; // the password was right
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub struct LoginAttempt {
    net: String,
    both: String,
    account: String,
    /// The client's aggregate network, where a full memory store counted the attempt.
    agg: Aggregate,
    /// Whether `check` counted the per-address and the per-account counters (the latter not
    /// on a known network).
    per_ip: bool,
    per_account: bool,
    /// Counts this attempt as a failure when dropped, unless it `succeeded`.
    telemetry: Telemetry,
    settled: bool,
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        if !self.settled {
            self.telemetry.login_attempt(LoginOutcome::Failure);
        }
    }
}

impl fmt::Debug for LoginAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginAttempt").finish_non_exhaustive()
    }
}

/// What counting one attempt on one counter came to.
enum Count {
    Counted,
    /// Only asked (another counter refused already), and it had room.
    Room,
    Refused(Duration),
}

/// Failure counters for a login form, per address, per account and address, and per account,
/// designed so that an attacker cannot lock a victim out. Clones share the counters.
///
/// | counter | key | default | purpose |
/// |---|---|---|---|
/// | per address | client network (/32, /64) | `100 per hour` | one source guessing many accounts |
/// | per account and address | account + client network | `5 per 15 minutes` | one source guessing one account |
/// | per account | account | `50 per hour` | many sources guessing one account |
///
/// All are GCRA buckets of *failures*: a burst of `N` failed attempts, then one attempt per
/// `T/N` (3 minutes for the default per-account-and-address counter). That is the backoff, and
/// it is **capped**: no one ever waits longer than `T/N` for the next attempt, however many
/// failures came before. A successful login clears the counter of that account and network.
///
/// **Counted before the password is checked.** [`LoginThrottle::check`] counts an allowed
/// attempt as a failure in advance, on every counter that applies, and hands out a
/// [`LoginAttempt`]; [`LoginThrottle::succeeded`] takes that attempt and gives back what it
/// counted (successes never count); after a wrong password the attempt is simply dropped.
/// Peeking first and counting after the password check let a burst of parallel guesses (many
/// addresses, one account) all pass the check before the first failure was recorded. A refused
/// attempt counts nothing.
///
/// **No lockout an attacker can impose on a known network.** The attacker cannot touch the
/// victim's own account-and-network counter (it is keyed on the victim's network). The
/// account-wide counter would be such a lever, so it neither counts nor applies on networks
/// from which the account has signed in successfully in the last 30 days: the victim at home
/// or at work is never held back by a distributed attack. From a *new* network the victim
/// shares the account-wide allowance (one attempt per `T/N`, 72 s by default, once the burst is
/// spent) with the attack while it goes on: each attempt waits at most `T/N`, but an attacker
/// who asks for every freed slot first can take most of them.
///
/// **A flood never locks bystanders out, and never switches the throttle off.** With the
/// counters in memory, a flood of distinct keys can fill a store. Every counter is then checked
/// with the client's network ([`RateLimiter::check_from`]): a key the full store cannot track
/// is counted on the overflow allowance of its aggregate network (IPv6 /48, IPv4 /24; see
/// the overflow table (`docs/ratelimit.md`)). So during a flood a sign-in from another network still gets
/// its whole allowance (5 attempts per account, then the backoff), while the flooding networks'
/// new keys share one allowance per network and are refused. (This used to let an attempt on an
/// untracked key through *uncounted*, which a flood could use to guess passwords unthrottled.)
/// A success gives its units back wherever they were counted. Keep the counters in Redis
/// (shared by the instances, no such cap) where floods are expected.
/// Account names are compared trimmed and lower-cased.
///
/// ```
/// use std::net::IpAddr;
/// use buttress::ratelimit::{LoginThrottle, LoginVerdict};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let throttle = LoginThrottle::new();
/// let ip: IpAddr = "203.0.113.9".parse()?;
/// for _ in 0..5 {
///     match throttle.check("alice", ip).await? {
///         LoginVerdict::Allowed(_attempt) => {} // a wrong password: drop the attempt
///         LoginVerdict::Wait { .. } => unreachable!("five failures are allowed"),
///     }
/// }
/// assert!(matches!(throttle.check("alice", ip).await?, LoginVerdict::Wait { .. }));
/// // Another network is not held back by this one's failures; the right password there:
/// let LoginVerdict::Allowed(attempt) = throttle.check("alice", "198.51.100.1".parse()?).await? else {
///     unreachable!()
/// };
/// throttle.succeeded(attempt).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LoginThrottle {
    per_ip: RateLimiter,
    per_account_ip: RateLimiter,
    per_account: RateLimiter,
    known: RateLimiter,
    grouping: IpGrouping,
    telemetry: Telemetry,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new()
    }
}

fn gcra(text: &str, name: &str) -> Result<RateLimiter, RateLimitError> {
    Ok(RateLimiter::new(text.parse::<Limits>()?)
        .with_strategy(Strategy::Gcra)?
        .with_name(name)
        .with_on_store_error(OnStoreError::FailClosed))
}

impl LoginThrottle {
    /// The defaults in the [table above](LoginThrottle), in memory, failing closed.
    ///
    /// ```
    /// let _ = buttress::ratelimit::LoginThrottle::new();
    /// ```
    pub fn new() -> Self {
        // The default strings are constants that parse (checked by a unit test).
        Self::with_limits("100 per hour", "5 per 15 minutes", "50 per hour")
            .unwrap_or_else(|_| unreachable!("the default login limits parse"))
    }

    /// Custom limits for the three counters (per address, per account and address, per
    /// account).
    ///
    /// ```
    /// let t = buttress::ratelimit::LoginThrottle::with_limits("20/hour", "3 per 10 minutes", "30/hour")?;
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn with_limits(
        per_ip: &str,
        per_account_ip: &str,
        per_account: &str,
    ) -> Result<Self, RateLimitError> {
        Ok(LoginThrottle {
            per_ip: gcra(per_ip, "login-ip")?,
            per_account_ip: gcra(per_account_ip, "login-account-ip")?,
            per_account: gcra(per_account, "login-account")?,
            known: gcra("1 per 30 days", "login-known")?,
            grouping: IpGrouping::default(),
            telemetry: Telemetry::off(),
        })
    }

    /// Keeps the counters in Redis (shared by all instances).
    ///
    /// ```no_run
    /// use buttress::ratelimit::{LoginThrottle, RedisStore};
    /// let t = LoginThrottle::new().with_redis(RedisStore::open("redis://127.0.0.1")?);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn with_redis(self, store: RedisStore) -> Self {
        LoginThrottle {
            per_ip: self.per_ip.with_redis(store.clone()),
            per_account_ip: self.per_account_ip.with_redis(store.clone()),
            per_account: self.per_account.with_redis(store.clone()),
            known: self.known.with_redis(store),
            grouping: self.grouping,
            telemetry: self.telemetry,
        }
    }

    /// Counts in memory, each counter in a store of `max_keys` clients (the stack passes
    /// `BUTTRESS_RATELIMIT_MAX_KEYS`, so the login form is bounded like every other limit).
    ///
    /// ```
    /// let t = buttress::ratelimit::LoginThrottle::new().with_max_keys(50_000);
    /// ```
    pub fn with_max_keys(self, max_keys: usize) -> Self {
        LoginThrottle {
            per_ip: self.per_ip.with_memory(MemoryStore::new(max_keys)),
            per_account_ip: self.per_account_ip.with_memory(MemoryStore::new(max_keys)),
            per_account: self.per_account.with_memory(MemoryStore::new(max_keys)),
            known: self.known.with_memory(MemoryStore::new(max_keys)),
            grouping: self.grouping,
            telemetry: self.telemetry,
        }
    }

    /// The memory stores' cap (clients per counter), if the counters are in memory.
    ///
    /// ```
    /// let t = buttress::ratelimit::LoginThrottle::new().with_max_keys(50_000);
    /// assert_eq!(t.max_keys(), Some(50_000));
    /// ```
    pub fn max_keys(&self) -> Option<usize> {
        self.per_ip.memory_store().map(MemoryStore::max_keys)
    }

    /// Counts in memory with `clock` (tests move time by hand), each counter in a store of
    /// `max_keys` clients.
    ///
    /// ```
    /// use buttress::ratelimit::{LoginThrottle, ManualClock};
    /// let t = LoginThrottle::new().with_memory_clock(ManualClock::new(), 10_000);
    /// ```
    pub fn with_memory_clock(self, clock: impl Clock + Clone, max_keys: usize) -> Self {
        let store = || MemoryStore::new(max_keys).with_clock(clock.clone());
        LoginThrottle {
            per_ip: self.per_ip.with_memory(store()),
            per_account_ip: self.per_account_ip.with_memory(store()),
            per_account: self.per_account.with_memory(store()),
            known: self.known.with_memory(store()),
            grouping: self.grouping,
            telemetry: self.telemetry,
        }
    }

    /// How addresses are grouped into networks (default IPv4 /32, IPv6 /64).
    ///
    /// ```
    /// use buttress::ratelimit::{IpGrouping, LoginThrottle};
    /// let t = LoginThrottle::new().with_ip_grouping(IpGrouping::new(24, 56));
    /// ```
    pub fn with_ip_grouping(mut self, grouping: IpGrouping) -> Self {
        self.grouping = grouping;
        self
    }

    /// Counts each attempt in `buttress_login_attempts_total` (and logs a `login` event):
    /// `throttled` when [`check`](Self::check) refuses, `success` when
    /// [`succeeded`](Self::succeeded) takes the attempt, `failure` when the attempt is dropped
    /// without it. [`Buttress::login_throttle`](crate::Buttress::login_throttle) gives one
    /// with the stack's telemetry.
    ///
    /// ```
    /// use buttress::{ratelimit::LoginThrottle, telemetry::Telemetry};
    /// let t = LoginThrottle::new().with_telemetry(Telemetry::new());
    /// ```
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// The keys of the three counters (network, account and network, account) and the
    /// client's aggregate network.
    fn keys(&self, account: &str, ip: IpAddr) -> (String, String, String, Aggregate) {
        let account = account.trim().to_lowercase();
        let (addr, prefix) = self.grouping.network(ip);
        let net = format!("{addr}/{prefix}");
        let both = format!("{account}\u{1f}{net}");
        (net, both, account, Aggregate::of(addr, prefix))
    }

    /// Whether an attempt for `account` from `ip` may proceed. Call it before checking the
    /// password. An allowed attempt is **counted as a failure in advance** on every counter
    /// that applies and comes back as a [`LoginAttempt`]: give it to
    /// [`succeeded`](Self::succeeded) if the password is right; after a wrong password (or an
    /// unknown account: the same, so the throttle does not reveal which accounts exist) drop
    /// it. A refused attempt counts nothing.
    ///
    /// ```
    /// use buttress::ratelimit::LoginThrottle;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let t = LoginThrottle::new();
    /// let ip = "192.0.2.1".parse()?;
    /// for _ in 0..5 {
    ///     assert!(t.check("dave", ip).await?.is_allowed()); // then a wrong password
    /// }
    /// assert!(!t.check("dave", ip).await?.is_allowed());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn check(&self, account: &str, ip: IpAddr) -> Result<LoginVerdict, Unavailable> {
        let (net, both, account, agg) = self.keys(account, ip);
        let known = !self.known.peek(&both).await?.allowed();
        let mut counters = vec![(&self.per_account_ip, &both), (&self.per_ip, &net)];
        if !known {
            counters.push((&self.per_account, &account));
        }
        let mut counted = [false; 3];
        let mut wait = Duration::ZERO;
        for (i, (limiter, key)) in counters.iter().enumerate() {
            // Once one counter refuses, the rest are only asked how long to wait.
            let outcome = if wait.is_zero() {
                limiter.check_in(key, agg, 1).await.map(|d| {
                    if d.allowed() {
                        Count::Counted
                    } else {
                        Count::Refused(d.retry_after().unwrap_or(d.reset_after()))
                    }
                })
            } else {
                limiter.peek(key).await.map(|d| {
                    if d.allowed() {
                        Count::Room
                    } else {
                        Count::Refused(d.retry_after().unwrap_or(d.reset_after()))
                    }
                })
            };
            match outcome {
                Ok(Count::Counted) => counted[i] = true,
                Ok(Count::Room) => {}
                Ok(Count::Refused(w)) => wait = wait.max(w),
                Err(e) => {
                    give_back(&counters, &counted, agg).await;
                    self.telemetry.store_error(StoreKind::RateLimit);
                    return Err(e);
                }
            }
        }
        if !wait.is_zero() {
            give_back(&counters, &counted, agg).await;
            self.telemetry.login_attempt(LoginOutcome::Throttled);
            return Ok(LoginVerdict::Wait { retry_after: wait });
        }
        Ok(LoginVerdict::Allowed(LoginAttempt {
            net,
            both,
            account,
            agg,
            per_ip: counted[1],
            per_account: counted[2],
            telemetry: self.telemetry.clone(),
            settled: false,
        }))
    }

    /// Records one failure that no [`check`](Self::check) counted (a failed attempt at
    /// another door to the same account, e.g. a password confirmation). A sign-in that went
    /// through `check` is counted already. Unknown accounts count the same as known ones; the
    /// account-wide counter is left alone on a network known for the account, as in `check`.
    ///
    /// ```
    /// use buttress::ratelimit::LoginThrottle;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let t = LoginThrottle::new();
    /// let ip = "192.0.2.1".parse()?;
    /// for _ in 0..5 { t.failed("nobody", ip).await?; }
    /// assert!(!t.check("nobody", ip).await?.is_allowed());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn failed(&self, account: &str, ip: IpAddr) -> Result<(), Unavailable> {
        let (net, both, account, agg) = self.keys(account, ip);
        let known = !self.known.peek(&both).await?.allowed();
        self.per_ip.check_in(&net, agg, 1).await?;
        self.per_account_ip.check_in(&both, agg, 1).await?;
        if !known {
            self.per_account.check_in(&account, agg, 1).await?;
        }
        Ok(())
    }

    /// Records a successful sign-in: clears the account-and-network counter, remembers the
    /// network as known for the account (30 days), and gives back what `check` counted for
    /// the attempt (successes never count). The give-back is best effort: with the store down
    /// the unit stays counted, which errs on the side of the limit.
    ///
    /// ```
    /// use buttress::ratelimit::{LoginThrottle, LoginVerdict};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let t = LoginThrottle::new();
    /// let ip = "192.0.2.1".parse()?;
    /// for _ in 0..4 { let _ = t.check("erin", ip).await?; } // four wrong passwords
    /// let LoginVerdict::Allowed(attempt) = t.check("erin", ip).await? else { unreachable!() };
    /// t.succeeded(attempt).await?; // the fifth was right
    /// for _ in 0..5 { assert!(t.check("erin", ip).await?.is_allowed()); } // cleared
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn succeeded(&self, mut attempt: LoginAttempt) -> Result<(), Unavailable> {
        attempt.settled = true;
        attempt.telemetry.login_attempt(LoginOutcome::Success);
        // Give back this attempt's unit first: where the key is tracked the reset clears it
        // anyway; where a full memory store counted it on the network's overflow allowance,
        // that allowance is the whole network's and is not reset, only given the unit back.
        let _ = self
            .per_account_ip
            .refund_in(&attempt.both, attempt.agg, 1)
            .await;
        self.per_account_ip.reset(&attempt.both).await?;
        self.known.check(&attempt.both, 1).await?;
        if attempt.per_ip {
            let _ = self.per_ip.refund_in(&attempt.net, attempt.agg, 1).await;
        }
        if attempt.per_account {
            let _ = self
                .per_account
                .refund_in(&attempt.account, attempt.agg, 1)
                .await;
        }
        Ok(())
    }
}

/// Gives back one unit on each counter `check` counted for an attempt that is not going ahead.
/// Best effort: a store that is down keeps the unit, which errs on the side of the limit.
async fn give_back(counters: &[(&RateLimiter, &String)], counted: &[bool; 3], agg: Aggregate) {
    for ((limiter, key), _) in counters.iter().zip(counted).filter(|(_, c)| **c) {
        let _ = limiter.refund_in(key, agg, 1).await;
    }
}

//! Login throttling: failure counters per address, per account and address, and per account,
//! designed so that an attacker cannot lock a victim out.
//!
//! | counter | key | default | purpose |
//! |---|---|---|---|
//! | per address | client network (/32, /64) | `100 per hour` | one source guessing many accounts |
//! | per account and address | account + client network | `5 per 15 minutes` | one source guessing one account |
//! | per account | account | `50 per hour` | many sources guessing one account |
//!
//! All are GCRA buckets of *failures*: a burst of `N` failed attempts, then one attempt per
//! `T/N` (3 minutes for the default per-account-and-address counter). That is the backoff, and
//! it is **capped**: no one ever waits longer than `T/N` for the next attempt, however many
//! failures came before. A successful login resets the counter of that account and network.
//!
//! No lockout an attacker can impose: the attacker cannot touch the victim's own
//! account-and-network counter (it is keyed on the victim's network). The account-wide counter
//! would be such a lever, so it does not apply to networks from which the account has logged in
//! successfully in the last 30 days: the victim at home or at work is never held back by a
//! distributed attack; from a new network the victim waits at most `T/N` (72 s by default) per
//! attempt while an attack is going on. Counting failures only (never successes) means ordinary
//! use never meets a limit. Account names are compared trimmed and lower-cased.
//!
//! An attempt is counted **before** its password is checked ([`LoginThrottle::check`]) and given
//! back when it succeeds ([`LoginThrottle::succeeded`]): counting only after a wrong password
//! let every guess of a concurrent burst (from many addresses, against one account) pass the
//! check before the first failure was recorded.
//!
//! ```
//! use std::net::IpAddr;
//! use buttress::ratelimit::{LoginThrottle, LoginVerdict};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let throttle = LoginThrottle::new();
//! let ip: IpAddr = "203.0.113.9".parse()?;
//! for _ in 0..5 {
//!     assert_eq!(throttle.check("alice", ip).await?, LoginVerdict::Allowed);
//!     // ... a wrong password: the attempt is counted already
//! }
//! assert!(matches!(throttle.check("alice", ip).await?, LoginVerdict::Wait { .. }));
//! // Another network is not held back by this one's failures.
//! assert_eq!(throttle.check("alice", "198.51.100.1".parse()?).await?, LoginVerdict::Allowed);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::net::IpAddr;
use std::time::Duration;

#[cfg(feature = "redis")]
use super::RedisStore;
use super::{
    Clock, IpGrouping, Limits, MemoryStore, OnStoreError, RateLimitError, RateLimiter, Strategy,
    Unavailable,
};

/// The verdict before a password is checked.
///
/// ```
/// use buttress::ratelimit::LoginVerdict;
/// let v = LoginVerdict::Allowed;
/// assert!(v.is_allowed());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVerdict {
    /// Go ahead and check the password.
    Allowed,
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
        matches!(self, LoginVerdict::Allowed)
    }
}

/// Failure counters for a login form. Clones share the counters. See the
/// [module docs](self) for the design.
///
/// ```
/// let throttle = buttress::ratelimit::LoginThrottle::new();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LoginThrottle {
    per_ip: RateLimiter,
    per_account_ip: RateLimiter,
    per_account: RateLimiter,
    known: RateLimiter,
    grouping: IpGrouping,
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
    /// The defaults in the [module table](self), in memory, failing closed.
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
        }
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

    fn keys(&self, account: &str, ip: IpAddr) -> (String, String, String) {
        let account = account.trim().to_lowercase();
        let net = self.grouping.key(ip);
        let both = format!("{account}\u{1f}{net}");
        (net, both, account)
    }

    /// Whether an attempt for `account` from `ip` may proceed. Call it before checking the
    /// password. An allowed attempt is **counted as a failure in advance** on every counter
    /// that applies, so concurrent attempts cannot all pass before the first failure is
    /// recorded (peeking here and counting after the password check let a burst of parallel
    /// guesses through); [`succeeded`](Self::succeeded) takes it back. After a wrong password
    /// there is nothing more to call. A refused attempt counts nothing.
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
        let (net, both, account) = self.keys(account, ip);
        let known = !self.known.peek(&both).await?.allowed();
        let mut counters = vec![(&self.per_account_ip, &both), (&self.per_ip, &net)];
        if !known {
            counters.push((&self.per_account, &account));
        }
        let mut wait = Duration::ZERO;
        let mut counted = 0;
        for (limiter, key) in &counters {
            // Once one counter refuses, the rest are only asked how long to wait.
            let d = if wait.is_zero() {
                limiter.check(key, 1).await
            } else {
                limiter.peek(key).await
            };
            let d = match d {
                Ok(d) => d,
                Err(e) => {
                    self.refund(&counters[..counted]).await;
                    return Err(e);
                }
            };
            if d.allowed() {
                counted += usize::from(wait.is_zero());
            } else {
                wait = wait.max(d.retry_after().unwrap_or(d.reset_after()));
            }
        }
        if wait.is_zero() {
            return Ok(LoginVerdict::Allowed);
        }
        self.refund(&counters[..counted]).await;
        Ok(LoginVerdict::Wait { retry_after: wait })
    }

    /// Gives back one unit on each of `counters` (an attempt counted in advance that did not
    /// happen or did not fail). Best effort: a store that is down keeps the unit, which errs
    /// on the side of the limit.
    async fn refund(&self, counters: &[(&RateLimiter, &String)]) {
        for (limiter, key) in counters {
            let _ = limiter.refund(key, 1).await;
        }
    }

    /// Records one failure that no [`check`](Self::check) counted (a failed attempt at
    /// another door to the same account, e.g. a password confirmation). A sign-in that went
    /// through `check` is counted already: do not call this after a wrong password there.
    /// Unknown accounts count the same as known ones, so the throttle does not reveal which
    /// accounts exist.
    ///
    /// ```
    /// use buttress::ratelimit::LoginThrottle;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let t = LoginThrottle::new();
    /// t.failed("nobody", "192.0.2.1".parse()?).await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn failed(&self, account: &str, ip: IpAddr) -> Result<(), Unavailable> {
        let (net, both, account) = self.keys(account, ip);
        self.per_ip.check(&net, 1).await?;
        self.per_account_ip.check(&both, 1).await?;
        self.per_account.check(&account, 1).await?;
        Ok(())
    }

    /// Records a successful login after an allowed [`check`](Self::check): gives back the
    /// attempt it counted (successes never count), clears the account-and-network counter
    /// and remembers the network as known for the account (30 days).
    ///
    /// ```
    /// use buttress::ratelimit::LoginThrottle;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let t = LoginThrottle::new();
    /// let ip = "192.0.2.1".parse()?;
    /// for _ in 0..5 { assert!(t.check("erin", ip).await?.is_allowed()); } // five wrong passwords
    /// assert!(!t.check("erin", ip).await?.is_allowed());
    /// t.succeeded("erin", ip).await?; // e.g. after the backoff, the right one
    /// assert!(t.check("erin", ip).await?.is_allowed());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn succeeded(&self, account: &str, ip: IpAddr) -> Result<(), Unavailable> {
        let (net, both, account) = self.keys(account, ip);
        let known = !self.known.peek(&both).await?.allowed();
        self.per_ip.refund(&net, 1).await?;
        if !known {
            self.per_account.refund(&account, 1).await?;
        }
        self.per_account_ip.reset(&both).await?;
        self.known.check(&both, 1).await?;
        Ok(())
    }
}

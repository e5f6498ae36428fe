//! The memory store's clock: the CPU's monotonic counter, or a clock moved by hand in tests.
//!
//! | clock | reads | for |
//! |---|---|---|
//! | [`MonotonicClock`] (the default) | the invariant TSC via `quanta`, else the OS monotonic clock | production |
//! | [`ManualClock`] | a shared counter moved by hand | tests |
//!
//! ```
//! use std::time::Duration;
//! use buttress::ratelimit::{ManualClock, MemoryStore, RateLimiter};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::new();
//! let limiter = RateLimiter::parse("1 per minute")?.with_memory(MemoryStore::new(100).with_clock(clock.clone()));
//! assert!(limiter.check("k", 1).await?.allowed());
//! assert!(!limiter.check("k", 1).await?.allowed());
//! clock.advance(Duration::from_secs(60));
//! assert!(limiter.check("k", 1).await?.allowed());
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
pub(super) enum StoreClock {
    Monotonic(MonotonicClock),
    Custom(Arc<dyn Clock>),
}

impl StoreClock {
    #[inline]
    pub(super) fn now_us(&self) -> u64 {
        match self {
            StoreClock::Monotonic(c) => c.now_us(),
            StoreClock::Custom(c) => c.now_us(),
        }
    }
}

//! Rate limits: Flask-Limiter's limit strings, counted exactly, in memory or on Redis.
//!
//! - [`Limits`]: the `limits` grammar (`200 per day; 50/hour`, `10 per 2 minutes`), parsed at
//!   start-up; a typo is an error naming the position, never a silent default.
//! - [`Strategy`]: GCRA (O(1) per key) or the exact moving window, each with its guarantee.
//! - [`MemoryStore`]: sharded, with a hard cap on keys and an overflow policy that never frees a
//!   limited client and never lets a flood from a few networks take the allowance of clients
//!   elsewhere (see [`MemoryStore`]); `RedisStore` (feature `redis`): the same semantics in one Lua
//!   round trip.
//! - [`RateLimiter`]: limits + store + [`OnStoreError`] policy, checked by key.
//! - [`RateLimitLayer`]: keyed on [`ClientIp`](crate::proxy::ClientIp) (IPv6 by /64), scopes,
//!   exemptions, cost; 429 with `Retry-After` and `RateLimit` headers, rendered by the error
//!   pages; shadow mode.
//! - [`LoginThrottle`]: failure counters for a login form, without attacker-imposed lockout.
//!
//! | default | value |
//! |---|---|
//! | global limit ([`Buttress`](crate::Buttress)) | `200 per day; 50 per hour`, per client, all routes together |
//! | strategy | moving window up to 20 per period, GCRA above ([`Strategy::for_amount`]) |
//! | key | client address, IPv4 /32, IPv6 /64 |
//! | memory cap | 100,000 clients ([`DEFAULT_MAX_KEYS`]), overflow slots included |
//! | a new client when the memory store is full | counted on its IPv6 /48's or IPv4 /24's overflow allowance (see [`MemoryStore`]) |
//! | Redis time budget | 50 ms |
//! | store failure | fail closed ([`RateLimiter`]); the global limit falls back to memory |
//! | headers | `RateLimit` + `RateLimit-Policy` |
//!
//! # Example
//!
//! ```
//! use axum::{routing::{get, post}, Router};
//! use buttress::ratelimit::RateLimitLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "home" }))
//!     .route("/login", post(|| async { "welcome" }).route_layer(RateLimitLayer::parse("5 per minute")?));
//! # Ok::<(), buttress::ratelimit::RateLimitError>(())
//! ```
//!
//! The whole story (guarantees, overflow policy, Redis semantics, benchmarks) is in
//! `docs/ratelimit.md`.

// One public path per type: the parts are private and their types re-exported here.
mod algorithm;
mod clock;
mod grammar;
mod key;
pub(crate) mod layer;
mod limiter;
mod login;
mod memory;
pub(crate) mod overflow;
mod paths;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod response;
mod storage;
mod table;

pub use algorithm::{Strategy, AUTO_WINDOW_AMOUNT, MAX_WINDOW_AMOUNT};
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use grammar::{GrammarError, Limit, Limits, Unit, MAX_AMOUNT, MAX_MULTIPLES};
pub use key::{IpGrouping, KeyFn, Scope};
pub use layer::{RateLimit, RateLimitLayer};
pub use limiter::{Check, Decision, OnStoreError, RateLimiter, Unavailable};
pub use login::{LoginAttempt, LoginThrottle, LoginVerdict};
pub use memory::{MemoryStore, DEFAULT_MAX_KEYS};
pub use overflow::{
    aggregate, AGGREGATE_V4_PREFIX, AGGREGATE_V6_PREFIX, MAX_OVERFLOW_SLOTS, OVERFLOW_PROBES,
};
pub use paths::{PathLimits, PathLimitsLayer};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, CHECK_SCRIPT, MIN_REDIS_VERSION};
pub use response::{policy_header, HeaderStyle};
pub use storage::RateLimitStorage;

/// The default time budget of one check on Redis (`BUTTRESS_RATELIMIT_REDIS_BUDGET`); past it
/// the limiter's failure policy answers.
///
/// ```
/// assert_eq!(buttress::ratelimit::DEFAULT_BUDGET.as_millis(), 50);
/// ```
pub const DEFAULT_BUDGET: std::time::Duration = std::time::Duration::from_millis(50);

/// The path prefix whose requests the global limit does not count by default
/// (`ratelimit_static_prefix`): static assets, as Flask-Limiter exempts Flask's static route.
/// A route limit on one of them still counts it.
///
/// ```
/// assert_eq!(buttress::ratelimit::DEFAULT_STATIC_PREFIX, "/static/");
/// ```
pub const DEFAULT_STATIC_PREFIX: &str = "/static/";

/// The IPv6 prefix length clients are keyed on by default (`ratelimit_ipv6_prefix`): one
/// customer usually holds a whole /64.
///
/// ```
/// assert_eq!(buttress::ratelimit::DEFAULT_IPV6_PREFIX, 64);
/// ```
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// A rate-limit configuration that cannot be used. Found at start-up, never per request.
///
/// ```
/// use buttress::ratelimit::{RateLimitError, RateLimiter};
/// let e = RateLimiter::parse("5 per fortnight").unwrap_err();
/// assert!(matches!(e, RateLimitError::Grammar(_)));
/// assert!(e.to_string().contains("position 6"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// The limit string does not parse.
    #[error("limit string {0}")]
    Grammar(#[from] GrammarError),
    /// A moving window was asked for a limit above [`MAX_WINDOW_AMOUNT`].
    #[error("the moving window keeps one timestamp per request and takes at most {MAX_WINDOW_AMOUNT} per period; use GCRA for {0}")]
    WindowTooLarge(Limit),
    /// Not a store-failure policy.
    #[error("{0:?} is not a store-failure policy; use fail-closed, fail-open or memory")]
    Policy(String),
    /// Not a header style.
    #[error("{0:?} is not a header style; use ietf, legacy, both or none")]
    Headers(String),
    /// The Redis URL does not parse.
    #[error("the Redis URL does not parse: {0}")]
    RedisUrl(String),
    /// Not a storage: neither `memory` nor a `redis://` URL.
    #[error("not a rate-limit storage; use memory or a redis:// URL")]
    Storage,
    /// Redis storage was configured but the crate was built without the `redis` feature.
    #[error("ratelimit_storage is a redis:// URL but Buttress was built without the `redis` feature; enable it or use memory")]
    RedisDisabled,
    /// Not an exact request path ([`PathLimitsLayer::limit`]): it would never match.
    #[error("{0:?} is not a request path: give the exact path, starting with / and without a query (`/login`)")]
    Path(String),
    /// A path was given a second limit ([`PathLimitsLayer::limit`]).
    #[error("{0} already has a route limit; give all of its limits in one string (`5 per minute; 100 per day`)")]
    DuplicatePath(String),
    /// Redis could not be reached at start-up ([`RedisStore::warm_up`]). Not fatal: checks
    /// connect again by themselves, and the failure policy answers meanwhile.
    #[cfg(feature = "redis")]
    #[error("Redis for rate limits is not reachable yet ({0}); checks will retry by themselves and apply the failure policy meanwhile")]
    RedisUnavailable(String),
    /// The Redis server is older than [`MIN_REDIS_VERSION`] ([`RedisStore::warm_up`]): every
    /// check fails (and the failure policy answers) until it is upgraded. The message names the
    /// version found and the fix.
    #[cfg(feature = "redis")]
    #[error("Redis {found} is too old for rate limits: the check script reads TIME before it writes, which needs Redis 5.0 or newer; upgrade Redis or use memory storage")]
    RedisTooOld {
        /// The version the server reports (major.minor).
        found: String,
    },
}

#[cfg(test)]
mod flood_tests;
#[cfg(test)]
mod tests;

//! [`RateLimitStorage`]: where limits count, parsed once from `ratelimit_storage`.

use crate::secret::ConnectionUrl;

/// Where rate limits count: this process's memory, or a Redis server shared by every
/// instance. Parsed once from the setting (`memory`, `redis://host:6379`, `rediss://…`), so
/// the checklist and the stack can never read the same text two ways.
///
/// ```
/// use buttress::ratelimit::RateLimitStorage;
/// assert_eq!(" Memory ".parse::<RateLimitStorage>()?, RateLimitStorage::Memory);
/// let redis: RateLimitStorage = "redis://:pw@cache:6379".parse()?;
/// assert!(redis.is_shared());
/// assert!(!format!("{redis:?}").contains("pw"), "the password never shows");
/// assert!("memcached://cache".parse::<RateLimitStorage>().is_err());
/// # Ok::<(), buttress::ratelimit::RateLimitError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RateLimitStorage {
    /// This process's memory (the default): one instance, or each instance on its own.
    #[default]
    Memory,
    /// A Redis server at this URL, shared by every instance.
    Redis(ConnectionUrl),
}

impl RateLimitStorage {
    /// Whether the counts are shared between instances (Redis).
    pub fn is_shared(&self) -> bool {
        matches!(self, RateLimitStorage::Redis(_))
    }
}

impl std::str::FromStr for RateLimitStorage {
    type Err = super::RateLimitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let lower = text.to_ascii_lowercase();
        if lower == "memory" {
            Ok(RateLimitStorage::Memory)
        } else if lower.starts_with("redis://") || lower.starts_with("rediss://") {
            Ok(RateLimitStorage::Redis(ConnectionUrl::new(text)))
        } else {
            Err(super::RateLimitError::Storage)
        }
    }
}

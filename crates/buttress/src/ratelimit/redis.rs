//! The Redis store: [`RedisStore`] (its docs hold its guarantees).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::algorithm::{Outcome, Rule, Strategy};
use super::{RateLimitError, DEFAULT_BUDGET};

const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(250);

/// The prefix of every rate-limit key not bound to an application.
const KEY_PREFIX: &str = "buttress:rl:";

/// The oldest Redis the scripts run on, as (major, minor): 5.0, the first to replicate a
/// script by its effects by default, so that it may write after reading `TIME`.
///
/// ```
/// assert_eq!(buttress::ratelimit::MIN_REDIS_VERSION, (5, 0));
/// ```
pub const MIN_REDIS_VERSION: (u32, u32) = (5, 0);

/// The server's version in an `INFO server` reply (`redis_version:7.0.15`) as (major, minor);
/// `None` when there is no such line or it does not start with two numbers. Redis-compatible
/// servers (Valkey, KeyDB, Dragonfly) report the Redis version they implement there.
fn server_version(info: &str) -> Option<(u32, u32)> {
    let line = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))?;
    let mut parts = line.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    // "7.0.15", "6.2", "255.255.255", "7.4.0-rc1": the minor is the digits after the first dot.
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// Whether the server that answered `info` (the text of `INFO server`) can run the scripts:
/// `Err` with the version it reports when it is older than [`MIN_REDIS_VERSION`]; `Ok(None)` when
/// it reports none that parses (it is used; an old one would fail each check anyway).
fn check_version(info: &str) -> Result<Option<(u32, u32)>, String> {
    match server_version(info) {
        Some(v) if v < MIN_REDIS_VERSION => Err(format!("{}.{}", v.0, v.1)),
        other => Ok(other),
    }
}

/// The check script. KEYS: one per limit. ARGV: cost, commit (1/0), then per limit:
/// strategy (`g` or `w`), amount, period in microseconds. Returns 4 integers per limit:
/// allowed (1/0), remaining, reset after (µs), retry after (µs, -1 for never).
///
/// ```
/// assert!(buttress::ratelimit::CHECK_SCRIPT.contains("redis.call('TIME')"));
/// ```
pub const CHECK_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local commit = ARGV[2] == '1'
local out = {}
local writes = {}
local all = true
for i = 1, #KEYS do
  local strat = ARGV[3 * i]
  local amount = tonumber(ARGV[3 * i + 1])
  local period = tonumber(ARGV[3 * i + 2])
  local key = KEYS[i]
  if strat == 'g' then
    local tau = math.ceil(period / amount)
    local burst = tau * amount
    local tat = tonumber(redis.call('GET', key) or '0')
    local base = math.max(tat, now)
    local new_tat = base + tau * cost
    local allow_at = new_tat - burst
    if cost > amount or now < allow_at then
      local retry = -1
      if cost <= amount then retry = allow_at - now end
      all = false
      out[#out + 1] = 0
      out[#out + 1] = math.floor((now + burst - base) / tau)
      out[#out + 1] = base - now
      out[#out + 1] = retry
    else
      out[#out + 1] = 1
      out[#out + 1] = math.floor((now + burst - new_tat) / tau)
      out[#out + 1] = new_tat - now
      out[#out + 1] = 0
      if new_tat > now then
        writes[#writes + 1] = {'g', key, new_tat, new_tat - now}
      end
    end
  else
    local entries = redis.call('LRANGE', key, 0, amount - 1)
    local used = 0
    for j = 1, #entries do
      if tonumber(entries[j]) + period > now then used = used + 1 else break end
    end
    if cost > amount or used + cost > amount then
      local retry = -1
      if cost <= amount then
        retry = tonumber(entries[amount - cost + 1]) + period - now
        if retry < 1 then retry = 1 end
      end
      local reset = 0
      if used > 0 then reset = tonumber(entries[1]) + period - now end
      all = false
      out[#out + 1] = 0
      out[#out + 1] = amount - math.min(used, amount)
      out[#out + 1] = reset
      out[#out + 1] = retry
    else
      local reset = 0
      if cost > 0 then reset = period elseif used > 0 then reset = tonumber(entries[1]) + period - now end
      out[#out + 1] = 1
      out[#out + 1] = amount - used - cost
      out[#out + 1] = reset
      out[#out + 1] = 0
      if cost > 0 then writes[#writes + 1] = {'w', key, amount, period} end
    end
  end
end
if all and commit then
  local stamp = string.format('%.0f', now)
  for _, w in ipairs(writes) do
    if w[1] == 'g' then
      redis.call('SET', w[2], string.format('%.0f', w[3]), 'PX', math.ceil(w[4] / 1000) + 1)
    else
      for _ = 1, cost do redis.call('LPUSH', w[2], stamp) end
      redis.call('LTRIM', w[2], 0, w[3] - 1)
      redis.call('PEXPIRE', w[2], math.ceil(w[4] / 1000) + 1)
    end
  end
end
return out
";

/// The refund script: gives back `cost` units counted for a key ([`RateLimiter::refund`]).
/// KEYS and ARGV as for [`CHECK_SCRIPT`] (the commit flag is ignored). A GCRA entry moves back
/// `cost` emission intervals (deleted once it would be in the past: a full bucket); a moving
/// window drops its `cost` newest timestamps.
///
/// [`RateLimiter::refund`]: super::RateLimiter::refund
const REFUND_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
for i = 1, #KEYS do
  local strat = ARGV[3 * i]
  local amount = tonumber(ARGV[3 * i + 1])
  local period = tonumber(ARGV[3 * i + 2])
  local key = KEYS[i]
  if strat == 'g' then
    local tat = tonumber(redis.call('GET', key) or '0')
    local new_tat = tat - math.ceil(period / amount) * cost
    if new_tat <= now then
      redis.call('DEL', key)
    else
      redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
    end
  else
    for _ = 1, math.min(cost, amount) do redis.call('LPOP', key) end
  end
end
return 1
";

/// Why a Redis check did not complete.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// Redis answered with an error or the connection failed.
    Redis(redis::RedisError),
    /// The time budget ran out.
    Timeout(Duration),
    /// Redis is paused after a recent failure; not tried.
    Paused,
    /// The script returned something unexpected.
    Reply(usize),
    /// The server is older than [`MIN_REDIS_VERSION`] (the version it reports).
    TooOld(String),
}

impl StoreError {
    pub(crate) fn is_skipped(&self) -> bool {
        matches!(self, StoreError::Paused)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Redis(e) => write!(f, "redis: {e}"),
            StoreError::Timeout(d) => write!(f, "no answer within the {} ms budget", d.as_millis()),
            StoreError::Paused => f.write_str("paused after a recent failure"),
            StoreError::Reply(n) => write!(f, "unexpected script reply of {n} values"),
            StoreError::TooOld(v) => write!(f, "{}", too_old(v)),
        }
    }
}

/// The message for a server older than [`MIN_REDIS_VERSION`] (written once, in
/// [`RateLimitError::RedisTooOld`]).
fn too_old(version: &str) -> String {
    RateLimitError::RedisTooOld {
        found: version.to_owned(),
    }
    .to_string()
}

struct Shared {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    script: redis::Script,
    refund: redis::Script,
    budget: Duration,
    origin: Instant,
    paused_until: AtomicU64,
}

/// A Redis connection for rate limits (multiplexed, reconnecting, with a time budget): the
/// same arithmetic as memory, in one Lua script, one round trip per check. Clones share the
/// connection.
///
/// - **Atomic:** every limit of a check is read and, only if all pass, written by one script
///   (`EVALSHA`; the client loads the script with `EVAL`/`SCRIPT LOAD` on `NOSCRIPT`).
/// - **One clock:** the script reads `redis.call('TIME')`, so instances with skewed clocks share
///   one timeline.
/// - **Redis 5 or newer:** a script that reads `TIME` and then writes is refused by Redis 3.2 and
///   4 (they replicate scripts verbatim, so a non-deterministic command must not precede a
///   write). On its first connection (and in [`RedisStore::warm_up`]) the store reads the
///   server's version (`INFO server`) and refuses an older one with an error that says so
///   ([`RateLimitError::RedisTooOld`]); every check then fails and the failure policy answers,
///   until the server is upgraded (no restart needed). A server that will not tell its version
///   (`INFO` denied by an ACL) is used, with a warning: an old one would fail each check anyway.
/// - **Cluster-safe keys:** `buttress:rl:{<digest>}:<limit>`; the hash tag (a SHA-256 digest of
///   limiter name and client key, so no e-mail address or IP lands in Redis) puts all limits of a
///   client in one slot. The limit (amount, period, strategy) is part of the key, so changing a
///   limit starts it afresh.
/// - **Bounded:** every key expires when its state no longer matters (`PEXPIRE`).
/// - **Time budget:** each check has a budget (default 50 ms); past it, or on any error, the
///   limiter's [`OnStoreError`](super::OnStoreError) policy applies, the failure is logged and
///   counted, and Redis is left alone for a short pause (250 ms) before the next try, so an
///   outage does not add the budget to every request. A multiplexed connection manager
///   reconnects by itself: recovery needs no restart.
///
/// ```no_run
/// use buttress::ratelimit::{OnStoreError, RateLimiter, RedisStore};
/// use std::time::Duration;
/// let store = RedisStore::open("redis://127.0.0.1:6379")?.with_budget(Duration::from_millis(20));
/// let limiter = RateLimiter::parse("200 per day; 50 per hour")?
///     .with_redis(store)
///     .with_on_store_error(OnStoreError::Memory);
/// # Ok::<(), buttress::ratelimit::RateLimitError>(())
/// ```
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
    /// `buttress:rl:`, or `buttress:<app>:rl:` for a store bound to an application.
    prefix: Arc<str>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("budget", &self.shared.budget)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the Redis at `url` (`redis://` or `rediss://`). Nothing connects until the
    /// first check, so a start with Redis down works (and applies the failure policy).
    ///
    /// ```
    /// assert!(buttress::ratelimit::RedisStore::open("redis://127.0.0.1:6379").is_ok());
    /// ```
    pub fn open(url: &str) -> Result<RedisStore, RateLimitError> {
        let client =
            redis::Client::open(url).map_err(|e| RateLimitError::RedisUrl(e.to_string()))?;
        Ok(RedisStore {
            prefix: Arc::from(KEY_PREFIX),
            shared: Arc::new(Shared {
                client,
                conn: OnceCell::new(),
                script: redis::Script::new(CHECK_SCRIPT),
                refund: redis::Script::new(REFUND_SCRIPT),
                budget: DEFAULT_BUDGET,
                origin: Instant::now(),
                paused_until: AtomicU64::new(0),
            }),
        })
    }

    /// Sets the time budget of one check (default 50 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = buttress::ratelimit::RedisStore::open("redis://127.0.0.1")?.with_budget(Duration::from_millis(10));
    /// assert_eq!(s.budget(), Duration::from_millis(10));
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn with_budget(self, budget: Duration) -> RedisStore {
        let s = &self.shared;
        RedisStore {
            prefix: self.prefix.clone(),
            shared: Arc::new(Shared {
                client: s.client.clone(),
                conn: OnceCell::new(),
                script: redis::Script::new(CHECK_SCRIPT),
                refund: redis::Script::new(REFUND_SCRIPT),
                budget,
                origin: s.origin,
                paused_until: AtomicU64::new(0),
            }),
        }
    }

    /// The same connection with every key under `buttress:<app>:rl:` instead of
    /// `buttress:rl:`, so that applications sharing a Redis count apart (the login throttle of
    /// [`Buttress::login_throttle`](crate::Buttress::login_throttle) is bound this way).
    ///
    /// ```
    /// use buttress::{ratelimit::RedisStore, secret::AppId};
    /// let store = RedisStore::open("redis://127.0.0.1")?.for_app(&AppId::new("shop").unwrap());
    /// assert_eq!(store.key_prefix(), "buttress:shop:rl:");
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn for_app(&self, app: &crate::secret::AppId) -> RedisStore {
        RedisStore {
            shared: self.shared.clone(),
            prefix: Arc::from(format!("buttress:{app}:rl:")),
        }
    }

    /// The prefix of this store's keys.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::RedisStore::open("redis://127.0.0.1")?.key_prefix(), "buttress:rl:");
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The time budget of one check.
    ///
    /// ```
    /// let s = buttress::ratelimit::RedisStore::open("redis://127.0.0.1")?;
    /// assert_eq!(s.budget(), buttress::ratelimit::DEFAULT_BUDGET);
    /// # Ok::<(), buttress::ratelimit::RateLimitError>(())
    /// ```
    pub fn budget(&self) -> Duration {
        self.shared.budget
    }

    /// Connects and loads the check and refund scripts now, instead of in the first check (where both
    /// count against its budget, so the first requests after a start would likely meet the
    /// failure policy). Waits at most `timeout` for both; the connection attempt itself is
    /// still bounded by the check budget (a Redis slower than that to accept a connection
    /// is slower than any check may wait anyway). Call it at start-up; an error here is
    /// worth a warning, not a refusal to start: checks connect again by themselves.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let store = buttress::ratelimit::RedisStore::open("redis://127.0.0.1:6379")?;
    /// if let Err(e) = store.warm_up(Duration::from_secs(2)).await {
    ///     eprintln!("rate limits: Redis not reachable yet ({e})");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`RateLimitError::RedisTooOld`] when the server is older than [`MIN_REDIS_VERSION`] (a
    /// configuration to fix: every check fails until then); [`RateLimitError::RedisUnavailable`]
    /// when the connection or the script load failed, or took longer than `timeout`.
    pub async fn warm_up(&self, timeout: Duration) -> Result<(), RateLimitError> {
        let work = async {
            let mut conn = self.connection().await?;
            for script in [&self.shared.script, &self.shared.refund] {
                script
                    .prepare_invoke()
                    .load_async(&mut conn)
                    .await
                    .map_err(StoreError::Redis)?;
            }
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(StoreError::TooOld(found))) => Err(RateLimitError::RedisTooOld { found }),
            Ok(Err(e)) => Err(RateLimitError::RedisUnavailable(e.to_string())),
            Err(_) => Err(RateLimitError::RedisUnavailable(format!(
                "no answer within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.shared.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let s = &self.shared;
        let conn = s
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(s.budget))
                    .set_response_timeout(Some(s.budget))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(100));
                let mut conn = ConnectionManager::new_with_config(s.client.clone(), config)
                    .await
                    .map_err(StoreError::Redis)?;
                verify_version(&mut conn).await?;
                Ok::<_, StoreError>(conn)
            })
            .await?;
        Ok(conn.clone())
    }

    async fn guarded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if self.now_ms() < self.shared.paused_until.load(Ordering::Relaxed) {
            return Err(StoreError::Paused);
        }
        let result = match tokio::time::timeout(self.shared.budget, work).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(self.shared.budget)),
        };
        if result.is_err() {
            let until =
                self.now_ms() + u64::try_from(PAUSE_AFTER_FAILURE.as_millis()).unwrap_or(250);
            self.shared.paused_until.store(until, Ordering::Relaxed);
        }
        result
    }

    pub(crate) async fn check(
        &self,
        full_key: &str,
        rules: &[Rule],
        cost: u64,
        commit: bool,
    ) -> Result<Vec<Outcome>, StoreError> {
        let keys = redis_keys(&self.prefix, full_key, rules);
        self.guarded(async {
            let mut conn = self.connection().await?;
            let inv = invocation(&self.shared.script, &keys, rules, cost, commit);
            let reply: Vec<i64> = inv
                .invoke_async(&mut conn)
                .await
                .map_err(StoreError::Redis)?;
            if reply.len() != rules.len() * 4 {
                return Err(StoreError::Reply(reply.len()));
            }
            let us = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
            Ok(reply
                .chunks_exact(4)
                .map(|c| Outcome {
                    allowed: c[0] == 1,
                    remaining: u64::try_from(c[1]).unwrap_or(0),
                    reset_after: u64::try_from(c[2]).unwrap_or(0),
                    retry_after: us(c[3]),
                })
                .collect())
        })
        .await
    }

    pub(crate) async fn refund(
        &self,
        full_key: &str,
        rules: &[Rule],
        cost: u64,
    ) -> Result<(), StoreError> {
        let keys = redis_keys(&self.prefix, full_key, rules);
        self.guarded(async {
            let mut conn = self.connection().await?;
            invocation(&self.shared.refund, &keys, rules, cost, true)
                .invoke_async::<i64>(&mut conn)
                .await
                .map_err(StoreError::Redis)?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn reset(&self, full_key: &str, rules: &[Rule]) -> Result<(), StoreError> {
        let keys = redis_keys(&self.prefix, full_key, rules);
        self.guarded(async {
            let mut conn = self.connection().await?;
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(StoreError::Redis)?;
            Ok(())
        })
        .await
    }
}

/// Refuses a server older than [`MIN_REDIS_VERSION`] (on each new connection, before any
/// script runs). A server that refuses `INFO` itself (an ACL, a renamed command) is used with a
/// warning; a connection failure is an error as any other.
async fn verify_version(conn: &mut ConnectionManager) -> Result<(), StoreError> {
    let info = match redis::cmd("INFO")
        .arg("server")
        .query_async::<String>(conn)
        .await
    {
        Ok(info) => info,
        // The server answered with an error (`NOPERM`, `ERR unknown command`): it is up.
        Err(e) if e.code().is_some() => {
            tracing::warn!(error = %e, "rate limits: cannot read the Redis version; the check script needs Redis {}.{} or newer", MIN_REDIS_VERSION.0, MIN_REDIS_VERSION.1);
            return Ok(());
        }
        Err(e) => return Err(StoreError::Redis(e)),
    };
    match check_version(&info) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            tracing::warn!("rate limits: the Redis server reports no version; the check script needs Redis {}.{} or newer", MIN_REDIS_VERSION.0, MIN_REDIS_VERSION.1);
            Ok(())
        }
        Err(found) => Err(StoreError::TooOld(found)),
    }
}

/// `script` with `keys` and the arguments both scripts read: cost, commit, then strategy,
/// amount and period per rule.
fn invocation<'a>(
    script: &'a redis::Script,
    keys: &[String],
    rules: &[Rule],
    cost: u64,
    commit: bool,
) -> redis::ScriptInvocation<'a> {
    let mut inv = script.prepare_invoke();
    for k in keys {
        inv.key(k);
    }
    inv.arg(cost).arg(u8::from(commit));
    for r in rules {
        let s = match r.strategy {
            Strategy::Gcra => "g",
            Strategy::MovingWindow => "w",
        };
        inv.arg(s).arg(r.amount).arg(r.period);
    }
    inv
}

/// `<prefix>{digest}:index-amount-period-strategy` per rule (prefix `buttress:rl:`, or
/// `buttress:<app>:rl:`).
fn redis_keys(prefix: &str, full_key: &str, rules: &[Rule]) -> Vec<String> {
    let digest = Sha256::digest(full_key.as_bytes());
    let tag: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "{prefix}{{{tag}}}:{i}-{}-{}-{}",
                r.amount,
                r.period,
                match r.strategy {
                    Strategy::Gcra => "g",
                    Strategy::MovingWindow => "w",
                }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        info: &'static str,
        expect: Result<Option<(u32, u32)>, &'static str>,
    }

    /// `INFO server` replies as servers send them (CRLF lines, a `# Server` header), and what
    /// the store makes of each.
    #[test]
    fn server_versions() {
        let cases = [
            Case {
                info: "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n",
                expect: Ok(Some((7, 0))),
            },
            Case {
                info: "# Server\r\nredis_version:5.0.0\r\n",
                expect: Ok(Some((5, 0))),
            },
            Case {
                info: "# Server\r\nredis_version:4.0.14\r\n",
                expect: Err("4.0"),
            },
            Case {
                info: "# Server\r\nredis_version:3.2.12\r\nredis_mode:standalone\r\n",
                expect: Err("3.2"),
            },
            Case {
                info: "redis_version:2.8.24\n",
                expect: Err("2.8"),
            },
            Case {
                // Valkey reports the Redis version it is compatible with, and its own.
                info: "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n",
                expect: Ok(Some((7, 2))),
            },
            Case {
                info: "redis_version:7.4.0-rc1\r\n",
                expect: Ok(Some((7, 4))),
            },
            Case {
                info: "redis_version:255.255.255\r\n",
                expect: Ok(Some((255, 255))),
            },
            Case {
                info: "redis_version:6\r\n",
                expect: Ok(None),
            },
            Case {
                info: "redis_version:four.oh\r\n",
                expect: Ok(None),
            },
            Case {
                info: "# Server\r\nos:Linux\r\n",
                expect: Ok(None),
            },
            Case {
                info: "",
                expect: Ok(None),
            },
        ];
        for c in cases {
            let got = check_version(c.info);
            assert_eq!(got, c.expect.map_err(str::to_owned), "{:?}", c.info);
        }
    }

    proptest::proptest! {
        /// Any reply parses without a panic; a version line with any numbers reads as those
        /// numbers, wherever it sits among other lines, and is refused exactly when older than
        /// 5.0.
        #[test]
        fn any_info_reply_parses(
            noise in "[ -~\r\n]{0,200}",
            major in 0u32..1_000,
            minor in 0u32..1_000,
            patch in "[0-9a-z.-]{0,12}",
        ) {
            let _ = check_version(&noise);
            let info = format!("# Server\r\nos:{noise:?}\r\nredis_version:{major}.{minor}{patch}\r\n");
            let _ = check_version(&info);
            let clean = format!("# Server\r\nredis_version:{major}.{minor}.0\r\nos:Linux\r\n");
            let got = check_version(&clean);
            if (major, minor) < MIN_REDIS_VERSION {
                proptest::prop_assert_eq!(got, Err(format!("{major}.{minor}")));
            } else {
                proptest::prop_assert_eq!(got, Ok(Some((major, minor))));
            }
        }
    }

    /// The refusal names the version found, the one needed and the fix.
    #[test]
    fn too_old_says_what_to_do() {
        let msg = too_old("4.0");
        let needed = format!("{}.{} or newer", MIN_REDIS_VERSION.0, MIN_REDIS_VERSION.1);
        for part in ["Redis 4.0 is too old", &needed, "upgrade Redis"] {
            assert!(msg.contains(part), "{msg}");
        }
        assert_eq!(StoreError::TooOld("4.0".into()).to_string(), msg);
    }
}

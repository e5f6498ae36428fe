//! Sessions in Redis (feature `redis`): shared by every instance behind a load balancer.
//!
//! Each session is a hash `buttress:{sess}:<store key>` with fields `d` (JSON data), `v`
//! (version), `u` (user) and `dl` (deadline); a set `buttress:{sess}:user:<user>` indexes a
//! user's sessions for listing and "sign out everywhere". The `{sess}` hash tag keeps every key
//! in one cluster slot so the scripts stay atomic on Redis Cluster. Saves are one Lua script
//! (compare-and-swap on `v`), and Redis expires each record at its deadline; a user's index
//! expires no sooner than the last record saved into it, and loses members that expired when
//! it is listed. Nothing is left to sweep: [`SessionStore::cleanup`] does nothing here. The
//! connection is multiplexed and reconnects by itself; a failure is a [`StoreError`] (a 503
//! for the request).

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::record::{Record, SessionData, StoreKey};
use super::store::{Cas, SessionStore, StoreError};

const PREFIX: &str = "buttress:{sess}:";

/// The longest time-to-live given to a record (100 years): Redis refuses an `EXPIRE` whose
/// time overflows, which a huge configured timeout would otherwise ask for.
const MAX_TTL: i64 = 100 * 366 * 24 * 3600;

/// Compare-and-swap save. KEYS: record, user index. ARGV: expected version ('' = absent),
/// data, user ('' = none), deadline, ttl seconds.
const SAVE: &str = r"
local cur = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
local nv = 1
if ARGV[1] ~= '' then nv = tonumber(ARGV[1]) + 1 end
local old_user = redis.call('HGET', KEYS[1], 'u')
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', tostring(nv), 'u', ARGV[3], 'dl', ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
if old_user and old_user ~= '' and old_user ~= ARGV[3] then
  redis.call('SREM', ARGV[6] .. old_user, KEYS[1])
end
if ARGV[3] ~= '' then
  redis.call('SADD', KEYS[2], KEYS[1])
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < tonumber(ARGV[5]) then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5])) end
end
return 1
";

/// A session store on Redis.
///
/// ```no_run
/// use buttress::session::redis::RedisSessionStore;
/// let store = RedisSessionStore::open("redis://127.0.0.1:6379")?; // connects on first use
/// # Ok::<(), buttress::session::StoreError>(())
/// ```
pub struct RedisSessionStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    save: redis::Script,
    budget: Duration,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore").finish_non_exhaustive()
    }
}

fn failed(e: redis::RedisError) -> StoreError {
    tracing::error!(error = %e, "session Redis error");
    StoreError("the session store (Redis) is unavailable".into())
}

fn record_key(key: &StoreKey) -> String {
    format!("{PREFIX}{}", key.0)
}

fn user_key(user: &str) -> String {
    format!("{PREFIX}user:{user}")
}

impl RedisSessionStore {
    /// A store for the Redis at `url`. Nothing connects until first use.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|_| StoreError("REDIS_URL is not a Redis URL".into()))?;
        Ok(RedisSessionStore {
            client,
            conn: OnceCell::new(),
            save: redis::Script::new(SAVE),
            budget: Duration::from_millis(500),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.budget))
                    .set_response_timeout(Some(self.budget))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .map_err(failed)?;
        Ok(conn.clone())
    }

    async fn read(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
    ) -> Result<Option<(SessionData, u64, i64)>, StoreError> {
        let (d, v, dl): (Option<String>, Option<u64>, Option<i64>) = redis::cmd("HMGET")
            .arg(key)
            .arg("d")
            .arg("v")
            .arg("dl")
            .query_async(conn)
            .await
            .map_err(failed)?;
        let (Some(d), Some(v), Some(dl)) = (d, v, dl) else {
            return Ok(None);
        };
        let data = serde_json::from_str(&d)
            .map_err(|_| StoreError("a stored session does not decode".into()))?;
        Ok(Some((data, v, dl)))
    }
}

impl SessionStore for RedisSessionStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(self
                .read(&mut conn, &record_key(key))
                .await?
                .filter(|(_, _, dl)| *dl > now)
                .map(|(data, version, deadline)| Record {
                    data,
                    version,
                    deadline,
                }))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Option<u64>,
        data: &'a SessionData,
        deadline: i64,
    ) -> BoxFuture<'a, Result<Cas, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let json = serde_json::to_string(data)
                .map_err(|_| StoreError("session does not encode".into()))?;
            let user = data.user.clone().unwrap_or_default();
            let ttl = deadline.saturating_sub(data.last_seen).clamp(1, MAX_TTL);
            let done: i64 = self
                .save
                .key(record_key(key))
                .key(user_key(&user))
                .arg(expected.map(|v| v.to_string()).unwrap_or_default())
                .arg(json)
                .arg(&user)
                .arg(deadline)
                .arg(ttl)
                .arg(format!("{PREFIX}user:"))
                .invoke_async(&mut conn)
                .await
                .map_err(failed)?;
            Ok(if done == 1 { Cas::Done } else { Cas::Conflict })
        })
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let rk = record_key(key);
            let user: Option<String> = redis::cmd("HGET")
                .arg(&rk)
                .arg("u")
                .query_async(&mut conn)
                .await
                .map_err(failed)?;
            let deleted: u64 = redis::cmd("DEL")
                .arg(&rk)
                .query_async(&mut conn)
                .await
                .map_err(failed)?;
            if let Some(u) = user.filter(|u| !u.is_empty()) {
                let _: () = redis::cmd("SREM")
                    .arg(user_key(&u))
                    .arg(&rk)
                    .query_async(&mut conn)
                    .await
                    .map_err(failed)?;
            }
            Ok(deleted > 0)
        })
    }

    fn list_user<'a>(
        &'a self,
        user: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, SessionData)>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(user_key(user))
                .query_async(&mut conn)
                .await
                .map_err(failed)?;
            let mut out = Vec::new();
            for rk in members {
                match self.read(&mut conn, &rk).await? {
                    Some((data, _, dl)) if dl > now && data.user.as_deref() == Some(user) => {
                        let key = rk.strip_prefix(PREFIX).unwrap_or(&rk).to_owned();
                        out.push((StoreKey(key), data));
                    }
                    Some(_) => {}
                    None => {
                        // Expired by Redis: prune the index.
                        let _: () = redis::cmd("SREM")
                            .arg(user_key(user))
                            .arg(&rk)
                            .query_async(&mut conn)
                            .await
                            .map_err(failed)?;
                    }
                }
            }
            Ok(out)
        })
    }

    /// Does nothing and returns 0: every save gives the record a TTL ending at its deadline,
    /// and the user indexes expire with their records (see the module docs), so Redis removes
    /// expired sessions by itself. A sweep would SCAN the whole keyspace from every instance.
    fn cleanup(&self, _now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async { Ok(0) })
    }
}

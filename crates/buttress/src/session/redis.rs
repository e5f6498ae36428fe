//! Sessions in Redis (feature `redis`): shared by every instance behind a load balancer.
//!
//! Each session is a hash `buttress:{sess}:<app>:<store key>` with fields `d` (JSON data), `v`
//! (version), `u` (user) and `dl` (deadline); a set `buttress:{sess}:<app>:user:<user>`
//! indexes a user's sessions for listing and "sign out everywhere". `<app>` is the
//! application id the session layer binds the store to ([`SessionStore::for_app`]), so
//! applications sharing a Redis never list or revoke each other's sessions. The `{sess}` hash
//! tag keeps every key in one cluster slot so the scripts stay atomic on Redis Cluster.
//!
//! - **Saves** are one Lua script (compare-and-swap on `v`) that declares every key it
//!   touches (the record and its user's index) and reads the server's clock (`TIME`) for the
//!   time-to-live, so records expire at their deadline on one clock whatever the clocks of the
//!   instances that wrote them. A user's index expires no sooner than the last record saved
//!   into it.
//! - **Deletes** are one `DEL` (atomic). The index entry of a deleted or expired record is
//!   dropped when the index is listed: a session changes user only with a new id, so an
//!   index never names a live record of another user.
//! - Nothing is left to sweep: [`SessionStore::cleanup`] does nothing here.
//!
//! [`RedisSignOuts`] keeps credentials epochs and revoked cookie sessions under
//! `buttress:{sess}:<app>:epoch:<user>` and `…:revoked:<sid>`, each with a TTL. The connection
//! is multiplexed and reconnects by itself; a failure is a [`StoreError`] (a 503 for the
//! request).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::error::StoreError;
use super::record::{Record, SessionData, StoreKey};
use super::signout::{SignOutCheck, SignOuts, SIGN_OUT_MARGIN_SECS};
use super::store::{Cas, SessionStore};
use crate::secret::AppId;

const PREFIX: &str = "buttress:{sess}:";

/// The longest time-to-live given to a record (100 years): Redis refuses an `EXPIRE` whose
/// time overflows, which a huge configured timeout would otherwise ask for.
const MAX_TTL: i64 = 100 * 366 * 24 * 3600;

/// Compare-and-swap save. KEYS: record, its user's index (declared even when there is no
/// user; then untouched). ARGV: expected version ('' = absent), data, user ('' = none),
/// deadline (Unix seconds), the longest TTL. The TTL is the deadline less the server's `TIME`.
const SAVE: &str = r"
local cur = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
local nv = 1
if ARGV[1] ~= '' then nv = tonumber(ARGV[1]) + 1 end
local now = tonumber(redis.call('TIME')[1])
local ttl = tonumber(ARGV[4]) - now
if ttl < 1 then ttl = 1 end
if ttl > tonumber(ARGV[5]) then ttl = tonumber(ARGV[5]) end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', tostring(nv), 'u', ARGV[3], 'dl', ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
if ARGV[3] ~= '' then
  redis.call('SADD', KEYS[2], KEYS[1])
  if redis.call('TTL', KEYS[2]) < ttl then redis.call('EXPIRE', KEYS[2], ttl) end
end
return 1
";

/// Makes a user's epoch newer. KEYS: the epoch. ARGV: how long to keep it (seconds, at
/// least). Returns the new epoch (the server's time in milliseconds, or one more than before).
const BUMP: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local nxt = cur + 1
if now > nxt then nxt = now end
local ttl = tonumber(ARGV[1])
local left = redis.call('TTL', KEYS[1])
if left > ttl then ttl = left end
local text = string.format('%.0f', nxt)
redis.call('SET', KEYS[1], text, 'EX', ttl)
return text
";

/// Records a revoked cookie session. KEYS: the revocation. ARGV: until (Unix seconds), margin,
/// the longest TTL. The TTL runs from the server's `TIME`.
const REVOKE: &str = r"
local ttl = tonumber(ARGV[1]) + tonumber(ARGV[2]) - tonumber(redis.call('TIME')[1])
if ttl < 1 then return 0 end
if ttl > tonumber(ARGV[3]) then ttl = tonumber(ARGV[3]) end
local left = redis.call('TTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], '1', 'EX', ttl)
return 1
";

/// One multiplexed connection, made on first use and shared by the copies of a store (one
/// per application) and its sign-outs.
struct Connection {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    budget: Duration,
}

impl Connection {
    fn open(url: &str) -> Result<Arc<Self>, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|_| StoreError("REDIS_URL is not a Redis URL".into()))?;
        Ok(Arc::new(Connection {
            client,
            conn: OnceCell::new(),
            budget: Duration::from_millis(500),
        }))
    }

    async fn get(&self) -> Result<ConnectionManager, StoreError> {
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
}

/// A session store on Redis.
///
/// ```no_run
/// use buttress::session::redis::RedisSessionStore;
/// let store = RedisSessionStore::open("redis://127.0.0.1:6379")?; // connects on first use
/// # Ok::<(), buttress::session::StoreError>(())
/// ```
#[derive(Clone)]
pub struct RedisSessionStore {
    conn: Arc<Connection>,
    /// `buttress:{sess}:` and, once bound, the application id and `:`.
    prefix: String,
    save: Arc<redis::Script>,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn failed(e: redis::RedisError) -> StoreError {
    tracing::error!(error = %e, "session Redis error");
    StoreError("the session store (Redis) is unavailable".into())
}

impl RedisSessionStore {
    /// A store for the Redis at `url`. Nothing connects until first use. The session layer
    /// binds it to its application ([`SessionStore::for_app`]).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Ok(RedisSessionStore {
            conn: Connection::open(url)?,
            prefix: PREFIX.to_owned(),
            save: Arc::new(redis::Script::new(SAVE)),
        })
    }

    fn record_key(&self, key: &StoreKey) -> String {
        format!("{}{}", self.prefix, key.0)
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}user:{user}", self.prefix)
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
        decode(d, v, dl)
    }
}

fn decode(
    d: Option<String>,
    v: Option<u64>,
    dl: Option<i64>,
) -> Result<Option<(SessionData, u64, i64)>, StoreError> {
    let (Some(d), Some(v), Some(dl)) = (d, v, dl) else {
        return Ok(None);
    };
    let data = serde_json::from_str(&d)
        .map_err(|_| StoreError("a stored session does not decode".into()))?;
    Ok(Some((data, v, dl)))
}

impl SessionStore for RedisSessionStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            Ok(self
                .read(&mut conn, &self.record_key(key))
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
            let mut conn = self.conn.get().await?;
            let json = serde_json::to_string(data)
                .map_err(|_| StoreError("session does not encode".into()))?;
            let user = data.user.clone().unwrap_or_default();
            let done: i64 = self
                .save
                .key(self.record_key(key))
                .key(self.user_key(&user))
                .arg(expected.map(|v| v.to_string()).unwrap_or_default())
                .arg(json)
                .arg(&user)
                .arg(deadline)
                .arg(MAX_TTL)
                .invoke_async(&mut conn)
                .await
                .map_err(failed)?;
            Ok(if done == 1 { Cas::Done } else { Cas::Conflict })
        })
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let deleted: u64 = redis::cmd("DEL")
                .arg(self.record_key(key))
                .query_async(&mut conn)
                .await
                .map_err(failed)?;
            Ok(deleted > 0)
        })
    }

    fn list_user<'a>(
        &'a self,
        user: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, SessionData)>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let index = self.user_key(user);
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(&index)
                .query_async(&mut conn)
                .await
                .map_err(failed)?;
            if members.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for rk in &members {
                pipe.cmd("HMGET").arg(rk).arg("d").arg("v").arg("dl");
            }
            type Fields = (Option<String>, Option<u64>, Option<i64>);
            let rows: Vec<Fields> = pipe.query_async(&mut conn).await.map_err(failed)?;
            let mut out = Vec::new();
            let mut gone = Vec::new();
            for (rk, (d, v, dl)) in members.into_iter().zip(rows) {
                match decode(d, v, dl)? {
                    Some((data, _, dl)) if dl > now && data.user.as_deref() == Some(user) => {
                        let key = rk.strip_prefix(&self.prefix).unwrap_or(&rk).to_owned();
                        out.push((StoreKey(key), data));
                    }
                    Some(_) => {}
                    // Deleted, or expired by Redis: drop it from the index.
                    None => gone.push(rk),
                }
            }
            if !gone.is_empty() {
                let _: () = redis::cmd("SREM")
                    .arg(&index)
                    .arg(&gone)
                    .query_async(&mut conn)
                    .await
                    .map_err(failed)?;
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

    fn for_app(&self, app: &AppId) -> Option<Arc<dyn SessionStore>> {
        Some(Arc::new(RedisSessionStore {
            conn: self.conn.clone(),
            prefix: format!("{PREFIX}{app}:"),
            save: self.save.clone(),
        }))
    }

    fn sign_outs(&self) -> Option<Arc<dyn SignOuts>> {
        Some(Arc::new(RedisSignOuts::on(self.conn.clone())))
    }
}

/// Sign-outs in Redis: every instance on the Redis sees them; each entry expires by itself.
/// A Redis session store brings one on its own connection ([`SessionStore::sign_outs`]);
/// cookie sessions served by several instances open one on `REDIS_URL`.
///
/// ```no_run
/// use buttress::session::redis::RedisSignOuts;
/// let outs = RedisSignOuts::open("redis://127.0.0.1:6379")?; // connects on first use
/// # Ok::<(), buttress::session::StoreError>(())
/// ```
#[derive(Clone)]
pub struct RedisSignOuts {
    conn: Arc<Connection>,
    bump: Arc<redis::Script>,
    revoke: Arc<redis::Script>,
}

impl std::fmt::Debug for RedisSignOuts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSignOuts").finish_non_exhaustive()
    }
}

impl RedisSignOuts {
    /// Sign-outs on the Redis at `url`. Nothing connects until first use.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self::on(Connection::open(url)?))
    }

    fn on(conn: Arc<Connection>) -> Self {
        RedisSignOuts {
            conn,
            bump: Arc::new(redis::Script::new(BUMP)),
            revoke: Arc::new(redis::Script::new(REVOKE)),
        }
    }
}

fn epoch_key(app: &AppId, user: &str) -> String {
    format!("{PREFIX}{app}:epoch:{user}")
}

fn revoked_key(app: &AppId, sid: &str) -> String {
    format!("{PREFIX}{app}:revoked:{sid}")
}

impl SignOuts for RedisSignOuts {
    fn check<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        sid: Option<&'a str>,
        _now: i64,
    ) -> BoxFuture<'a, Result<SignOutCheck, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let mut cmd = redis::cmd("MGET");
            cmd.arg(epoch_key(app, user));
            if let Some(sid) = sid {
                cmd.arg(revoked_key(app, sid));
            }
            let values: Vec<Option<String>> = cmd.query_async(&mut conn).await.map_err(failed)?;
            let epoch = values
                .first()
                .and_then(|v| v.as_deref())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            Ok(SignOutCheck {
                epoch,
                revoked: values.get(1).is_some_and(Option::is_some),
            })
        })
    }

    fn bump<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        _now: i64,
        ttl: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            let ttl = ttl.saturating_add(SIGN_OUT_MARGIN_SECS).clamp(1, MAX_TTL);
            let text: String = self
                .bump
                .key(epoch_key(app, user))
                .arg(ttl)
                .invoke_async(&mut conn)
                .await
                .map_err(failed)?;
            text.parse()
                .map_err(|_| StoreError("Redis returned an epoch that is not a number".into()))
        })
    }

    fn revoke<'a>(
        &'a self,
        app: &'a AppId,
        sid: &'a str,
        until: i64,
        _now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.get().await?;
            // Far-future deadlines (huge timeouts) are capped by the script at MAX_TTL; keep
            // the number exact for Lua's doubles.
            let until = until.clamp(0, 1 << 52);
            let _: i64 = self
                .revoke
                .key(revoked_key(app, sid))
                .arg(until)
                .arg(SIGN_OUT_MARGIN_SECS)
                .arg(MAX_TTL)
                .invoke_async(&mut conn)
                .await
                .map_err(failed)?;
            Ok(())
        })
    }
}

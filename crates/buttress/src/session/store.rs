//! Server-side session stores: the trait, and the in-memory store.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use super::error::StoreError;
use super::record::{Record, SessionData, StoreKey};
use super::signout::SignOuts;
use crate::secret::AppId;

/// The outcome of a compare-and-swap write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cas {
    /// Written.
    Done,
    /// The record changed (or vanished) since it was read.
    Conflict,
}

/// A server-side session store. Implementations must be safe to share between instances of
/// the application (memory is the exception and says so).
///
/// Stores keep [`Record`]s under a [`StoreKey`] (a keyed HMAC of the session id, never the id
/// itself). Writes are compare-and-swap on the record's version, so the session layer can merge
/// concurrent requests' changes key by key instead of losing one of them.
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Loads a live record (expired records are treated as absent).
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;
    /// Writes `data` if the stored version is `expected` (`None`: only if absent); the new
    /// version is `expected + 1` (or 1). The record lives until `deadline` (Unix seconds: the
    /// earlier of the idle and the absolute timeout).
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Option<u64>,
        data: &'a SessionData,
        deadline: i64,
    ) -> BoxFuture<'a, Result<Cas, StoreError>>;
    /// Deletes a record; returns whether there was one to delete (expired records not yet
    /// removed count). The session layer rotates an id only if the record it loaded was still
    /// there, so a session revoked meanwhile is not carried over to a new id.
    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// The live records of a user.
    fn list_user<'a>(
        &'a self,
        user: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, SessionData)>, StoreError>>;
    /// Deletes expired records; returns how many. The session layer calls it in the background
    /// now and then, never twice at once; a store that expires records by itself (Redis) does
    /// nothing here.
    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// This store for one application, when it can be shared with other deployments: a copy
    /// whose keys, rows and per-user index carry `app`, so that two applications on one Redis
    /// or one database never list or revoke each other's sessions. The session layer binds
    /// its store this way at start-up ([`SessionLayer`](super::SessionLayer) knows the
    /// application id). The default, `None`, uses the store as it is: its store keys are still
    /// keyed per application, but its per-user listing is not.
    fn for_app(&self, _app: &AppId) -> Option<Arc<dyn SessionStore>> {
        None
    }

    /// Where sign-outs (credentials epochs, revoked cookie sessions) are kept next to these
    /// sessions, so that every instance sharing the store sees them (SQL and Redis do). The
    /// default, `None`, leaves them to the session layer's own ([`MemorySignOuts`] unless
    /// configured).
    ///
    /// [`MemorySignOuts`]: super::MemorySignOuts
    fn sign_outs(&self) -> Option<Arc<dyn SignOuts>> {
        None
    }
}

/// How many records a [`MemoryStore`] keeps at most, unless told otherwise.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

/// Sessions in this process's memory: for Development and single-instance deployments.
/// Sessions are lost on restart and not shared between instances; a store belongs to one
/// application (it needs no [`SessionStore::for_app`]).
///
/// The store is bounded ([`DEFAULT_MAX_RECORDS`], or [`MemoryStore::with_max_records`]): every
/// anonymous visit to a form page makes a record (for its CSRF secret), so a botnet could
/// otherwise grow it without end. When it is full, a new record first takes the place of
/// expired ones, then of the least recently seen anonymous one; a signed-in session is never
/// evicted: when only those are left, a new session is refused with [`StoreError`] (a 503).
/// Records are indexed by deadline, by user and by last activity, so sweeps, listings and
/// evictions do not scan the whole store under its lock.
///
/// ```
/// use buttress::session::{MemoryStore, DEFAULT_MAX_RECORDS};
/// let store = MemoryStore::default();
/// assert_eq!(store.max_records(), DEFAULT_MAX_RECORDS);
/// let small = MemoryStore::default().with_max_records(1_000);
/// assert_eq!(small.max_records(), 1_000);
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    max_records: usize,
    records: Mutex<Records>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            max_records: DEFAULT_MAX_RECORDS,
            records: Mutex::new(Records::default()),
        }
    }
}

impl MemoryStore {
    /// The same store keeping at most `max` records (at least 1).
    pub fn with_max_records(mut self, max: usize) -> Self {
        self.max_records = max.max(1);
        self
    }

    /// How many records the store keeps at most.
    pub fn max_records(&self) -> usize {
        self.max_records
    }

    fn with<T>(&self, f: impl FnOnce(&mut Records) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .records
            .lock()
            .map_err(|_| StoreError("memory store lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

/// The records and their indexes, kept in step by [`Records::insert`] and [`Records::remove`].
#[derive(Debug, Default)]
struct Records {
    map: HashMap<StoreKey, Record>,
    /// Every record by deadline: sweeps and evictions of expired records take the first ones.
    by_deadline: BTreeSet<(i64, StoreKey)>,
    /// Records without a user by last activity: the least recently seen is evicted first.
    anonymous: BTreeSet<(i64, StoreKey)>,
    /// Each user's records, for listing.
    by_user: HashMap<String, BTreeSet<StoreKey>>,
}

impl Records {
    fn insert(&mut self, key: StoreKey, record: Record) {
        self.remove(&key);
        self.by_deadline.insert((record.deadline, key.clone()));
        match &record.data.user {
            None => {
                self.anonymous.insert((record.data.last_seen, key.clone()));
            }
            Some(user) => {
                self.by_user
                    .entry(user.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        self.map.insert(key, record);
    }

    fn remove(&mut self, key: &StoreKey) -> Option<Record> {
        let record = self.map.remove(key)?;
        self.by_deadline.remove(&(record.deadline, key.clone()));
        match &record.data.user {
            None => {
                self.anonymous.remove(&(record.data.last_seen, key.clone()));
            }
            Some(user) => {
                if let Some(keys) = self.by_user.get_mut(user) {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.by_user.remove(user);
                    }
                }
            }
        }
        Some(record)
    }

    /// Removes the records whose deadline is not after `now`; returns how many.
    fn expire(&mut self, now: i64) -> u64 {
        let mut removed = 0;
        while let Some((deadline, key)) = self.by_deadline.first().cloned() {
            if deadline > now {
                break;
            }
            self.remove(&key);
            removed += 1;
        }
        removed
    }

    /// Makes room for one more record under `max`: expired records go first, then the least
    /// recently seen anonymous ones. False when only signed-in sessions are left.
    fn make_room(&mut self, max: usize, now: i64) -> bool {
        if self.map.len() < max {
            return true;
        }
        self.expire(now);
        while self.map.len() >= max {
            let Some((_, key)) = self.anonymous.first().cloned() else {
                return false;
            };
            self.remove(&key);
        }
        true
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move { self.with(|m| m.map.get(key).filter(|r| r.deadline > now).cloned()) })
    }

    /// A new record that finds the store full makes room (see [`MemoryStore`]); the store
    /// has no clock, so the new session's last activity stands for now.
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Option<u64>,
        data: &'a SessionData,
        deadline: i64,
    ) -> BoxFuture<'a, Result<Cas, StoreError>> {
        Box::pin(async move {
            self.with(|m| {
                let current = m.map.get(key).map(|r| r.version);
                if current != expected {
                    return Ok(Cas::Conflict);
                }
                if current.is_none() && !m.make_room(self.max_records, data.last_seen) {
                    tracing::warn!(
                        max = self.max_records,
                        "in-memory session store full of signed-in sessions: new session refused"
                    );
                    return Err(StoreError("the in-memory session store is full".into()));
                }
                m.insert(
                    key.clone(),
                    Record {
                        data: data.clone(),
                        version: expected.map_or(1, |v| v + 1),
                        deadline,
                    },
                );
                Ok(Cas::Done)
            })?
        })
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.with(|m| m.remove(key).is_some()) })
    }

    fn list_user<'a>(
        &'a self,
        user: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<(StoreKey, SessionData)>, StoreError>> {
        Box::pin(async move {
            self.with(|m| {
                m.by_user
                    .get(user)
                    .into_iter()
                    .flatten()
                    .filter_map(|k| m.map.get(k).map(|r| (k, r)))
                    .filter(|(_, r)| r.deadline > now)
                    .map(|(k, r)| (k.clone(), r.data.clone()))
                    .collect()
            })
        })
    }

    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move { self.with(|m| m.expire(now)) })
    }
}

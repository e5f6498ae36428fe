//! Server-side session stores: the trait, and the in-memory store.
//!
//! Stores keep [`Record`]s under a [`StoreKey`] (the SHA-256 of the session id, never the id
//! itself). Writes are compare-and-swap on the record's version, so the session layer can merge
//! concurrent requests' changes key by key instead of losing one of them.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::record::{Record, SessionData, StoreKey};

/// A store that could not answer: the request gets a 503, never a silent empty session.
#[derive(Debug, Clone, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

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
}

/// Sessions in this process's memory: for Development and single-instance deployments.
/// Sessions are lost on restart and not shared between instances.
///
/// ```
/// use buttress::session::MemoryStore;
/// let store = MemoryStore::default();
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<StoreKey, Record>>,
}

impl MemoryStore {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<StoreKey, Record>) -> T,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .map
            .lock()
            .map_err(|_| StoreError("memory store lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move { self.with(|m| m.get(key).filter(|r| r.deadline > now).cloned()) })
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Option<u64>,
        data: &'a SessionData,
        deadline: i64,
    ) -> BoxFuture<'a, Result<Cas, StoreError>> {
        Box::pin(async move {
            self.with(|m| {
                let current = m.get(key).map(|r| r.version);
                if current != expected {
                    return Cas::Conflict;
                }
                m.insert(
                    key.clone(),
                    Record {
                        data: data.clone(),
                        version: expected.map_or(1, |v| v + 1),
                        deadline,
                    },
                );
                Cas::Done
            })
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
                m.iter()
                    .filter(|(_, r)| r.data.user.as_deref() == Some(user) && r.deadline > now)
                    .map(|(k, r)| (k.clone(), r.data.clone()))
                    .collect()
            })
        })
    }

    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            self.with(|m| {
                let before = m.len();
                m.retain(|_, r| r.deadline > now);
                (before - m.len()) as u64
            })
        })
    }
}

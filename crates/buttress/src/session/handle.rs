//! The [`Session`] handle: lazy loading, typed values, id rotation, and the save on the way out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;

use super::layer::{Config, Mode};
use super::record::{random_token, SessionData, SessionId, StoreKey};
use super::store::{Cas, StoreError};
use super::SessionError;

/// How many times a conflicting write is merged and retried before giving up with 503. Each
/// round lets at least one writer through, so N parallel writers need at most N - 1 retries.
const CAS_RETRIES: usize = 64;

/// The session of the current request. Cheap to clone; all clones share state.
///
/// Values are typed (serde). Nothing is written unless something changed or the idle clock
/// needs a refresh; a request that never touches its session costs nothing.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    incoming: Option<String>,
    client: super::layer::ClientHint,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Set only once a load succeeded: a request whose load failed never commits.
    loaded: bool,
    /// The store failure of the first load, answered again to every later call of the request:
    /// a handler that ignored one error must not go on with an empty session (and overwrite the
    /// browser's cookie with a new anonymous one).
    failed: Option<StoreError>,
    /// The session's content, if there is one.
    data: Option<SessionData>,
    /// Store mode: the id and the version read.
    id: Option<SessionId>,
    version: Option<u64>,
    /// Per-key changes made by this request (`None`: removed), merged on conflict.
    changes: BTreeMap<String, Option<serde_json::Value>>,
    /// The user or CSRF secret changed, or the id rotated.
    meta_changed: bool,
    /// A new id: written as a new record.
    fresh: bool,
    /// Store keys to delete on the way out (rotated or flushed sessions).
    doomed: Vec<StoreKey>,
    /// The loaded record whose content a rotated id carries on: if it is gone by the time the
    /// commit deletes it (revoked meanwhile), the new id is not written.
    carried: Option<StoreKey>,
    /// The cookie must be re-sent (fallback key, idle refresh).
    reissue: bool,
    /// The browser's cookie must be cleared (expired, forged, flushed).
    clear_cookie: bool,
}

/// One of a user's sessions, for an account page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The handle to revoke it with (not the session id).
    pub handle: StoreKey,
    /// Created (Unix seconds).
    pub created: i64,
    /// Last activity (Unix seconds, refreshed at most once a minute).
    pub last_seen: i64,
    /// Client address and user agent at creation.
    pub client: String,
    /// Whether it is the session of this request.
    pub current: bool,
}

/// What the layer must do with the response once the handler is done.
pub(crate) enum Outcome {
    /// Leave the response alone.
    Nothing,
    /// Send this `Set-Cookie` value.
    SetCookie { value: String, max_age: i64 },
    /// Clear the browser's cookie.
    Clear,
}

impl Session {
    pub(crate) fn new(
        config: Arc<Config>,
        incoming: Option<String>,
        client: super::layer::ClientHint,
    ) -> Self {
        Session {
            inner: Arc::new(Inner {
                config,
                incoming,
                client,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The configuration of the layer that made this session.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    fn now(&self) -> i64 {
        (self.inner.config.clock)()
    }

    /// Loads the session on first use. A failed load is remembered: every later call of the
    /// same request gets the same error, and the session is never committed.
    async fn state(&self) -> Result<tokio::sync::MutexGuard<'_, State>, SessionError> {
        let mut st = self.inner.state.lock().await;
        if !st.loaded {
            if let Some(e) = &st.failed {
                return Err(SessionError::Store(e.clone()));
            }
            if let Err(e) = self.load(&mut st).await {
                st.failed = Some(e.clone());
                return Err(SessionError::Store(e));
            }
            st.loaded = true;
        }
        Ok(st)
    }

    /// Reads the incoming cookie into `st`; on a store failure `st` is left as it was.
    async fn load(&self, st: &mut State) -> Result<(), StoreError> {
        let Some(raw) = self.inner.incoming.as_deref() else {
            return Ok(());
        };
        let config = &self.inner.config;
        let now = self.now();
        let alive = |d: &SessionData| self.alive(d, now);
        match &config.mode {
            Mode::Cookie(codec) => match codec.decode(raw) {
                Ok(opened) if alive(&opened.data) => {
                    st.reissue = opened.stale_key;
                    st.data = Some(self.within_absolute(opened.data));
                }
                Ok(_) => st.clear_cookie = true,
                Err(e) => {
                    tracing::debug!(reason = %e, "session cookie refused");
                    st.clear_cookie = true;
                }
            },
            Mode::Store(store) => {
                let Some(id) = SessionId::parse(raw) else {
                    st.clear_cookie = true;
                    return Ok(());
                };
                match store.load(&id.store_key(), now).await? {
                    Some(rec) if alive(&rec.data) => {
                        st.data = Some(self.within_absolute(rec.data));
                        st.version = Some(rec.version);
                        st.id = Some(id);
                    }
                    Some(_) => {
                        st.doomed.push(id.store_key());
                        st.clear_cookie = true;
                    }
                    None => st.clear_cookie = true,
                }
            }
        }
        Ok(())
    }

    /// Whether a session is within its timeouts at `now`. The absolute one is checked against
    /// the configured timeout as well as the expiry the session was given at creation:
    /// lowering the timeout shortens existing sessions.
    fn alive(&self, d: &SessionData, now: i64) -> bool {
        let config = &self.inner.config;
        now < d.expires
            && now.saturating_sub(d.created) < config.absolute_secs()
            && now.saturating_sub(d.last_seen) < config.idle_secs()
    }

    /// `data` with its expiry no later than the configured absolute timeout allows (it may have
    /// been lowered since the session was created), so the cookie's `Max-Age` and the store's
    /// deadline follow.
    fn within_absolute(&self, mut data: SessionData) -> SessionData {
        let limit = data
            .created
            .saturating_add(self.inner.config.absolute_secs());
        data.expires = data.expires.min(limit);
        data
    }

    /// Creates an empty session if there is none.
    fn ensure<'s>(&self, st: &'s mut State) -> &'s mut SessionData {
        if st.data.is_none() {
            let now = self.now();
            let expires = now.saturating_add(self.inner.config.absolute_secs());
            let mut data = SessionData::new(now, expires);
            data.client = self.inner.client.describe();
            st.data = Some(data);
            st.fresh = true;
            st.meta_changed = true;
            if matches!(self.inner.config.mode, Mode::Store(_)) {
                st.id = Some(SessionId::generate());
                st.version = None;
            }
        }
        st.data.get_or_insert_with(|| SessionData::new(0, 0))
    }

    /// Reads a value.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let st = self.state().await?;
        let Some(value) = st.data.as_ref().and_then(|d| d.values.get(key)) else {
            return Ok(None);
        };
        serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| SessionError::Value(e.to_string()))
    }

    /// Stores a value (creating the session if needed).
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(|e| SessionError::Value(e.to_string()))?;
        let mut st = self.state().await?;
        self.ensure(&mut st)
            .values
            .insert(key.to_owned(), value.clone());
        st.changes.insert(key.to_owned(), Some(value));
        Ok(())
    }

    /// Removes a value; returns whether it was there.
    pub async fn remove(&self, key: &str) -> Result<bool, SessionError> {
        let mut st = self.state().await?;
        let had = st
            .data
            .as_mut()
            .and_then(|d| d.values.remove(key))
            .is_some();
        if st.data.is_some() {
            st.changes.insert(key.to_owned(), None);
        }
        Ok(had)
    }

    /// Gives the session a new id (and a new CSRF secret), keeping its values; the old record
    /// is deleted. Call it on login and on any privilege change, against session fixation.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        self.cycle(&mut st);
        Ok(())
    }

    fn cycle(&self, st: &mut State) {
        if let Some(old) = st.id.take() {
            if !st.fresh {
                st.carried = Some(old.store_key());
                st.doomed.push(old.store_key());
            }
        }
        let data = self.ensure(st);
        data.csrf = Some(random_token());
        if matches!(self.inner.config.mode, Mode::Store(_)) {
            st.id = Some(SessionId::generate());
            st.version = None;
        }
        st.fresh = true;
        st.meta_changed = true;
    }

    /// Ends the session: its record is deleted and the cookie cleared (logout). Values
    /// inserted afterwards start a new session.
    pub async fn flush(&self) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        if let Some(old) = st.id.take() {
            st.doomed.push(old.store_key());
        }
        st.data = None;
        st.version = None;
        st.changes.clear();
        st.carried = None;
        st.fresh = false;
        st.clear_cookie = true;
        Ok(())
    }

    /// Binds the session to a user (or unbinds it), rotating its id and CSRF secret.
    pub async fn set_user(&self, user: Option<&str>) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        self.cycle(&mut st);
        if let Some(d) = st.data.as_mut() {
            d.user = user.map(str::to_owned);
        }
        Ok(())
    }

    /// The user the session is bound to.
    pub async fn user(&self) -> Result<Option<String>, SessionError> {
        Ok(self
            .state()
            .await?
            .data
            .as_ref()
            .and_then(|d| d.user.clone()))
    }

    /// Whether this request loaded the session and found (or made) it bound to a user. Loads
    /// nothing: a request that never touched its session is not signed in as far as this goes.
    pub(crate) async fn has_user_loaded(&self) -> bool {
        let st = self.inner.state.lock().await;
        st.loaded && st.data.as_ref().is_some_and(|d| d.user.is_some())
    }

    /// The CSRF secret, created (with the session) if needed: a pre-login session carries one.
    pub(crate) async fn csrf_secret(&self) -> Result<String, SessionError> {
        let mut st = self.state().await?;
        let data = self.ensure(&mut st);
        if let Some(s) = &data.csrf {
            return Ok(s.clone());
        }
        let secret = random_token();
        data.csrf = Some(secret.clone());
        st.meta_changed = true;
        Ok(secret)
    }

    /// The CSRF secret if the session exists and has one (no session is created).
    pub(crate) async fn existing_csrf_secret(&self) -> Result<Option<String>, SessionError> {
        Ok(self
            .state()
            .await?
            .data
            .as_ref()
            .and_then(|d| d.csrf.clone()))
    }

    /// The user's live sessions (store mode only), the current one marked.
    pub async fn list_user_sessions(&self) -> Result<Vec<SessionInfo>, SessionError> {
        let Mode::Store(store) = &self.inner.config.mode else {
            return Err(SessionError::NeedsStore);
        };
        let (user, current) = {
            let st = self.state().await?;
            let user = st.data.as_ref().and_then(|d| d.user.clone());
            (user, st.id.as_ref().map(SessionId::store_key))
        };
        let Some(user) = user else {
            return Ok(Vec::new());
        };
        let now = self.now();
        let mut out: Vec<SessionInfo> = store
            .list_user(&user, now)
            .await?
            .into_iter()
            .filter(|(_, d)| self.alive(d, now))
            .map(|(handle, d)| SessionInfo {
                current: Some(&handle) == current.as_ref(),
                handle,
                created: d.created,
                last_seen: d.last_seen,
                client: d.client.unwrap_or_default(),
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        Ok(out)
    }

    /// Revokes one of the user's sessions by handle; returns whether it was the user's.
    pub async fn revoke(&self, handle: &StoreKey) -> Result<bool, SessionError> {
        let sessions = self.list_user_sessions().await?;
        let Some(target) = sessions.iter().find(|s| &s.handle == handle) else {
            return Ok(false);
        };
        if target.current {
            self.flush().await?;
        } else if let Mode::Store(store) = &self.inner.config.mode {
            store.delete(handle).await?;
        }
        Ok(true)
    }

    /// Revokes all of the user's other sessions ("sign out everywhere else"); returns how many.
    pub async fn revoke_others(&self) -> Result<usize, SessionError> {
        let Mode::Store(store) = &self.inner.config.mode else {
            return Err(SessionError::NeedsStore);
        };
        let mut n = 0;
        for s in self
            .list_user_sessions()
            .await?
            .into_iter()
            .filter(|s| !s.current)
        {
            if store.delete(&s.handle).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Whether nothing read or wrote the session during the request (the common case for
    /// static files and pages without a session), or its load failed: then there is nothing to
    /// commit.
    pub(crate) fn untouched(&self) -> bool {
        self.inner.state.try_lock().is_ok_and(|st| !st.loaded)
    }

    /// Writes what changed; called by the layer after the handler.
    pub(crate) async fn commit(&self) -> Result<Outcome, SessionError> {
        let mut st = self.inner.state.lock().await;
        if !st.loaded {
            return Ok(Outcome::Nothing);
        }
        let config = self.inner.config.clone();
        let now = self.now();
        if let Some(d) = st.data.as_mut() {
            if now.saturating_sub(d.last_seen) >= config.touch_secs() {
                d.last_seen = now;
                st.reissue = true;
            }
        }
        let dirty = st.fresh || st.meta_changed || st.reissue || !st.changes.is_empty();
        match &config.mode {
            Mode::Cookie(codec) => match (&st.data, dirty) {
                (Some(d), true) => Ok(Outcome::SetCookie {
                    value: codec.encode(d)?,
                    max_age: d.expires.saturating_sub(now),
                }),
                (Some(_), false) => Ok(Outcome::Nothing),
                (None, _) if st.clear_cookie => Ok(Outcome::Clear),
                (None, _) => Ok(Outcome::Nothing),
            },
            Mode::Store(store) => {
                let mut revoked = false;
                for key in std::mem::take(&mut st.doomed) {
                    let existed = store.delete(&key).await?;
                    revoked |= !existed && st.carried.as_ref() == Some(&key);
                }
                if revoked {
                    // The session this request rotated was revoked (or expired) meanwhile:
                    // writing its successor would resurrect it under a new id. Answered as a
                    // vanished session: nothing written, the browser's cookie left alone.
                    return Ok(Outcome::Nothing);
                }
                let (Some(data), Some(id)) = (st.data.clone(), st.id.clone()) else {
                    return Ok(if st.clear_cookie {
                        Outcome::Clear
                    } else {
                        Outcome::Nothing
                    });
                };
                if !dirty {
                    return Ok(Outcome::Nothing);
                }
                let key = id.store_key();
                let mut data = data;
                let mut expected = if st.fresh { None } else { st.version };
                for _ in 0..CAS_RETRIES {
                    let idle_end = data.last_seen.saturating_add(config.idle_secs());
                    let deadline = data.expires.min(idle_end);
                    match store.save(&key, expected, &data, deadline).await? {
                        Cas::Done => {
                            let max_age = data.expires.saturating_sub(now);
                            return Ok(if st.fresh || st.clear_cookie {
                                Outcome::SetCookie {
                                    value: id.as_str().to_owned(),
                                    max_age,
                                }
                            } else {
                                Outcome::Nothing
                            });
                        }
                        Cas::Conflict => {
                            // Another request wrote first: merge our per-key changes onto its version.
                            let Some(latest) = store.load(&key, now).await? else {
                                // Revoked, expired or rotated by a parallel request meanwhile:
                                // revocation wins, and the browser's cookie is left alone. A
                                // clearing cookie here would also delete the new id that a
                                // parallel sign-in has just set; the dead id is refused (and
                                // cleared) at its next load anyway.
                                return Ok(Outcome::Nothing);
                            };
                            let mut merged = self.within_absolute(latest.data);
                            for (k, v) in &st.changes {
                                match v {
                                    Some(v) => merged.values.insert(k.clone(), v.clone()),
                                    None => merged.values.remove(k),
                                };
                            }
                            // A fresh id never conflicts, so only a first CSRF secret can be
                            // ours here: keep the secret another request already stored.
                            if merged.csrf.is_none() {
                                merged.csrf = data.csrf.clone();
                            }
                            merged.last_seen = merged.last_seen.max(data.last_seen);
                            data = merged;
                            expected = Some(latest.version);
                            // A little jitter so the same writers do not collide again in lockstep.
                            let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..2_000u64);
                            tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                        }
                    }
                }
                Err(SessionError::Store(super::StoreError(
                    "too many concurrent writes to one session".into(),
                )))
            }
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionError;
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(SessionError::MissingLayer)
    }
}

//! The [`Session`] handle: the request's session state, loaded lazily from the cookie or the
//! store, and where it is filed. Its roles are split by file: values and the CSRF secret
//! ([`values`]), sign-in, sign-out and id rotation ([`identity`]), the user's sessions
//! ([`listing`]), and the save on the way out ([`commit`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use tokio::sync::Mutex;

use super::config::{ClientHint, Config, Mode};
use super::error::StoreError;
use super::record::{SessionData, SessionId, StoreKey};
use super::store::SessionStore;
use super::SessionError;

mod commit;
mod identity;
mod listing;
mod values;

pub(crate) use commit::Outcome;
pub use listing::SessionInfo;

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
    client: ClientHint,
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
    /// Store mode: the scope (key and application) the session is filed in: 0, the primary
    /// key's, unless it was found under a fallback key during a rotation. It stays there (an
    /// instance not yet given the new key still finds it) until its id rotates.
    scope: usize,
    version: Option<u64>,
    /// Per-key changes made by this request (`None`: removed), merged on conflict.
    changes: BTreeMap<String, Option<serde_json::Value>>,
    /// The user or CSRF secret changed, or the id rotated.
    meta_changed: bool,
    /// A new id: written as a new record.
    fresh: bool,
    /// Store keys to delete on the way out (rotated or flushed sessions), with the index of
    /// the scope (key and application) they are filed in.
    doomed: Vec<(usize, StoreKey)>,
    /// The loaded record whose content a rotated id carries on: if it is gone by the time the
    /// commit deletes it (revoked meanwhile), the new id is not written.
    carried: Option<(usize, StoreKey)>,
    /// The cookie must be re-sent (fallback key, idle refresh).
    reissue: bool,
    /// The browser's cookie must be cleared (expired, forged, flushed).
    clear_cookie: bool,
}

impl Session {
    pub(crate) fn new(config: Arc<Config>, incoming: Option<String>, client: ClientHint) -> Self {
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

    /// Reads the incoming cookie into `st`; on a store failure `st` is left as it was. A
    /// signed-in session that was signed out (revoked, or older than its user's credentials
    /// epoch) is treated as expired.
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
                    if self.signed_out(&opened.data, now).await? {
                        st.clear_cookie = true;
                        return Ok(());
                    }
                    st.reissue = opened.stale_key;
                    st.data = Some(self.within_absolute(opened.data));
                }
                Ok(_) => st.clear_cookie = true,
                Err(e) => {
                    tracing::debug!(reason = %e, "session cookie refused");
                    st.clear_cookie = true;
                }
            },
            Mode::Store(stores) => {
                let Some(id) = SessionId::parse(raw) else {
                    st.clear_cookie = true;
                    return Ok(());
                };
                // The primary key's scope first; a fallback key's only during a rotation.
                let mut found = None;
                for (i, scope) in config.scopes.all().iter().enumerate() {
                    let key = scope.store_key(&id);
                    let store = stores.bound.get(i).unwrap_or(stores.primary());
                    if let Some(rec) = store.load(&key, now).await? {
                        found = Some((i, key, rec));
                        break;
                    }
                }
                match found {
                    Some((i, key, rec)) if alive(&rec.data) => {
                        if self.signed_out(&rec.data, now).await? {
                            st.doomed.push((i, key));
                            st.clear_cookie = true;
                            return Ok(());
                        }
                        st.data = Some(self.within_absolute(rec.data));
                        st.version = Some(rec.version);
                        st.id = Some(id);
                        st.scope = i;
                    }
                    Some((i, key, _)) => {
                        st.doomed.push((i, key));
                        st.clear_cookie = true;
                    }
                    None => st.clear_cookie = true,
                }
            }
        }
        Ok(())
    }

    /// Whether a signed-in session has been signed out: its cookie session revoked, or its
    /// credentials epoch older than its user's current one (in any of the applications of the
    /// keyring's keys). Anonymous sessions cost nothing here.
    async fn signed_out(&self, data: &SessionData, now: i64) -> Result<bool, StoreError> {
        let Some(user) = data.user.as_deref() else {
            return Ok(false);
        };
        let config = &self.inner.config;
        let carried = data.epoch.unwrap_or(0);
        for app in &config.apps {
            let check = config
                .sign_outs
                .check(app, user, data.sid.as_deref(), now)
                .await?;
            if check.revoked || carried < check.epoch {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The user's current credentials epoch (the newest over the keyring's applications).
    async fn current_epoch(&self, user: &str) -> Result<u64, StoreError> {
        let config = &self.inner.config;
        let now = self.now();
        let mut epoch = 0;
        for app in &config.apps {
            epoch = epoch.max(config.sign_outs.check(app, user, None, now).await?.epoch);
        }
        Ok(epoch)
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

    /// The key of session `id` in scope `scope` (the primary's if there is no such scope).
    fn key_in(&self, scope: usize, id: &SessionId) -> StoreKey {
        let scopes = &self.inner.config.scopes;
        scopes
            .all()
            .get(scope)
            .unwrap_or(scopes.primary())
            .store_key(id)
    }

    fn store_at(&self, scope: usize) -> Option<&Arc<dyn SessionStore>> {
        match &self.inner.config.mode {
            Mode::Store(stores) => Some(stores.bound.get(scope).unwrap_or(stores.primary())),
            Mode::Cookie(_) => None,
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session")
    }
}

impl Session {
    /// The session the layer put into the request's [`RequestContext`](crate::RequestContext).
    pub(crate) fn of(extensions: &http::Extensions) -> Option<Session> {
        let slot = crate::context::RequestContext::of(extensions)?
            .session
            .clone()?;
        slot.downcast::<Inner>().ok().map(|inner| Session { inner })
    }

    /// Puts this session into the request's context (one slot, not one more extension).
    pub(crate) fn attach(&self, extensions: &mut http::Extensions) {
        crate::context::RequestContext::of_mut(extensions).session = Some(self.inner.clone());
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionError;
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Session::of(&parts.extensions).ok_or(SessionError::MissingLayer)
    }
}

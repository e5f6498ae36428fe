//! The [`Session`] handle: lazy loading, typed values, id rotation, and the save on the way out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;

use super::layer::{Config, Mode};
use super::record::{random_sid, random_token, SessionData, SessionId, StoreKey};
use super::signout::Epoch;
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
                let scope = st.scope;
                let key = self.key_in(scope, &old);
                st.carried = Some((scope, key.clone()));
                st.doomed.push((scope, key));
            }
        }
        let cookie_mode = matches!(self.inner.config.mode, Mode::Cookie(_));
        let data = self.ensure(st);
        data.csrf = Some(random_token());
        if cookie_mode && data.user.is_some() {
            data.sid = Some(random_sid());
        }
        if !cookie_mode {
            st.id = Some(SessionId::generate());
            st.version = None;
            st.scope = 0;
        }
        st.fresh = true;
        st.meta_changed = true;
    }

    /// Ends the session: its record is deleted and the cookie cleared (logout). Values
    /// inserted afterwards start a new session. In cookie mode a signed-in session is recorded
    /// as signed out ([`SignOuts::revoke`](super::SignOuts::revoke)), so that a copy of the
    /// cookie, or a request still in flight, is anonymous on every instance that shares the
    /// sign-outs; if that cannot be recorded, the user is signed out everywhere instead, and if
    /// that fails too the error is returned (a 503: the sign-out did not happen).
    pub async fn flush(&self) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        if let Some(data) = &st.data {
            if let (Mode::Cookie(_), Some(user), Some(sid)) = (
                &self.inner.config.mode,
                data.user.as_deref(),
                data.sid.as_deref(),
            ) {
                self.revoke_cookie_session(user, sid, data.expires).await?;
            }
        }
        if let Some(old) = st.id.take() {
            let scope = st.scope;
            let key = self.key_in(scope, &old);
            st.doomed.push((scope, key));
        }
        st.data = None;
        st.version = None;
        st.changes.clear();
        st.carried = None;
        st.fresh = false;
        st.clear_cookie = true;
        Ok(())
    }

    async fn revoke_cookie_session(
        &self,
        user: &str,
        sid: &str,
        until: i64,
    ) -> Result<(), SessionError> {
        let config = &self.inner.config;
        let now = self.now();
        let app = config.primary_app();
        if let Err(e) = config.sign_outs.revoke(app, sid, until, now).await {
            tracing::warn!(error = %e, "a cookie session's sign-out could not be recorded: signing its user out everywhere instead");
            config
                .sign_outs
                .bump(app, user, now, config.absolute_secs())
                .await?;
        }
        Ok(())
    }

    /// Binds the session to a user (or unbinds it), rotating its id and CSRF secret. The
    /// session carries the user's credentials epoch as it is now; a sign-in that checks a
    /// password should read it *before* the check and use
    /// [`set_user_checked`](Self::set_user_checked), so that a "sign out everywhere" that runs
    /// while the password is verified ends this session too.
    pub async fn set_user(&self, user: Option<&str>) -> Result<(), SessionError> {
        match user {
            Some(user) => {
                let epoch = self.credentials_epoch(user).await?;
                self.set_user_checked(user, epoch).await
            }
            None => {
                let mut st = self.state().await?;
                self.cycle(&mut st);
                if let Some(d) = st.data.as_mut() {
                    d.user = None;
                    d.epoch = None;
                    d.sid = None;
                }
                Ok(())
            }
        }
    }

    /// The user's credentials epoch now: read it before checking a password, and pass it to
    /// [`set_user_checked`](Self::set_user_checked) once the password is right. "Sign out
    /// everywhere" and password changes ([`revoke_others`](Self::revoke_others)) make it newer.
    ///
    /// ```
    /// use buttress::session::{Session, SessionError};
    /// async fn log_in(session: Session, user_id: &str, password_ok: impl std::future::Future<Output = bool>) -> Result<bool, SessionError> {
    ///     let epoch = session.credentials_epoch(user_id).await?; // before the check
    ///     if !password_ok.await {
    ///         return Ok(false);
    ///     }
    ///     session.set_user_checked(user_id, epoch).await?;
    ///     Ok(true)
    /// }
    /// ```
    pub async fn credentials_epoch(&self, user: &str) -> Result<Epoch, SessionError> {
        Ok(Epoch(self.current_epoch(user).await?))
    }

    /// Binds the session to `user` as of `epoch` (read with
    /// [`credentials_epoch`](Self::credentials_epoch) before the password was checked),
    /// rotating its id and CSRF secret. If the user's epoch has moved on since (a password
    /// change or "sign out everywhere" ran meanwhile), the session is not saved, and any copy
    /// that got out is anonymous at its first request.
    pub async fn set_user_checked(&self, user: &str, epoch: Epoch) -> Result<(), SessionError> {
        let mut st = self.state().await?;
        let cookie_mode = matches!(self.inner.config.mode, Mode::Cookie(_));
        self.cycle(&mut st);
        if let Some(d) = st.data.as_mut() {
            d.user = Some(user.to_owned());
            d.epoch = Some(epoch.0);
            if cookie_mode {
                d.sid = Some(random_sid());
            }
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
        Ok(self
            .list_scoped()
            .await?
            .into_iter()
            .map(|(_, info)| info)
            .collect())
    }

    /// The user's live sessions with the scope each is filed in, in every application of the
    /// keyring's keys (during a rotation, sessions not yet moved to the primary key's).
    async fn list_scoped(&self) -> Result<Vec<(usize, SessionInfo)>, SessionError> {
        let config = &self.inner.config;
        let Mode::Store(stores) = &config.mode else {
            return Err(SessionError::NeedsStore);
        };
        let (user, id) = {
            let st = self.state().await?;
            let user = st.data.as_ref().and_then(|d| d.user.clone());
            (user, st.id.clone())
        };
        let Some(user) = user else {
            return Ok(Vec::new());
        };
        let now = self.now();
        let mut out = Vec::new();
        let mut listed: Vec<&crate::secret::AppId> = Vec::new();
        for (i, scope) in config.scopes.all().iter().enumerate() {
            if listed.contains(&&scope.app) {
                continue;
            }
            listed.push(&scope.app);
            let store = stores.bound.get(i).unwrap_or(stores.primary());
            // The current session's key in this scope (if it is filed here).
            let current = id.as_ref().map(|id| scope.store_key(id));
            for (handle, d) in store.list_user(&user, now).await? {
                if !self.alive(&d, now) {
                    continue;
                }
                out.push((
                    i,
                    SessionInfo {
                        current: Some(&handle) == current.as_ref(),
                        handle,
                        created: d.created,
                        last_seen: d.last_seen,
                        client: d.client.unwrap_or_default(),
                    },
                ));
            }
        }
        out.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen));
        Ok(out)
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

    fn store_at(&self, scope: usize) -> Option<&Arc<dyn super::SessionStore>> {
        match &self.inner.config.mode {
            Mode::Store(stores) => Some(stores.bound.get(scope).unwrap_or(stores.primary())),
            Mode::Cookie(_) => None,
        }
    }

    /// Revokes one of the user's sessions by handle; returns whether it was the user's.
    pub async fn revoke(&self, handle: &StoreKey) -> Result<bool, SessionError> {
        let sessions = self.list_scoped().await?;
        let Some((scope, target)) = sessions.iter().find(|(_, s)| &s.handle == handle) else {
            return Ok(false);
        };
        if target.current {
            self.flush().await?;
        } else if let Some(store) = self.store_at(*scope) {
            store.delete(handle).await?;
        }
        Ok(true)
    }

    /// Signs `user` out of every session, in every mode, from a request that need not be
    /// theirs: a password reset by e-mail link, an account deleted, an administrator's action.
    /// Their credentials epoch is made newer (every session of theirs, cookie or stored, on
    /// every instance sharing the sign-outs, is anonymous at its next request, and a sign-in
    /// of theirs in flight does not survive), and their stored sessions are deleted; returns how
    /// many. If this request's session is theirs, it ends too (as [`flush`](Self::flush)).
    ///
    /// ```
    /// use buttress::session::{Session, SessionError};
    /// async fn reset_password(session: Session, user_id: &str) -> Result<(), SessionError> {
    ///     // … the new password hash is stored first, then:
    ///     session.sign_out_everywhere(user_id).await?;
    ///     Ok(())
    /// }
    /// ```
    pub async fn sign_out_everywhere(&self, user: &str) -> Result<usize, SessionError> {
        let config = self.inner.config.clone();
        let now = self.now();
        config
            .sign_outs
            .bump(config.primary_app(), user, now, config.absolute_secs())
            .await?;
        let mut n = 0;
        if let Mode::Store(stores) = &config.mode {
            let mut swept: Vec<&crate::secret::AppId> = Vec::new();
            for (i, scope) in config.scopes.all().iter().enumerate() {
                if swept.contains(&&scope.app) {
                    continue;
                }
                swept.push(&scope.app);
                let store = stores.bound.get(i).unwrap_or(stores.primary());
                for (handle, _) in store.list_user(user, now).await? {
                    if store.delete(&handle).await? {
                        n += 1;
                    }
                }
            }
        }
        if self.user().await?.as_deref() == Some(user) {
            self.flush().await?;
        }
        Ok(n)
    }

    /// Signs the user out everywhere else, in every mode ("sign out everywhere else", and what
    /// a password change must do); returns how many stored sessions it deleted (0 in cookie
    /// mode, where sessions cannot be counted).
    ///
    /// The user's credentials epoch is made newer first (see [`SignOuts`](super::SignOuts)),
    /// so every session signed in before, on every instance that shares the sign-outs, is
    /// anonymous at its next request: cookie sessions and their copies, stored sessions not
    /// listed (filed under a rotated key), and a sign-in that checked the old password and has
    /// not committed yet. Then the other stored sessions are deleted, and this one is given a
    /// new id and CSRF secret carrying the new epoch, so it stays signed in.
    pub async fn revoke_others(&self) -> Result<usize, SessionError> {
        let Some(user) = self.user().await? else {
            return Ok(0);
        };
        let config = self.inner.config.clone();
        let now = self.now();
        let epoch = config
            .sign_outs
            .bump(config.primary_app(), &user, now, config.absolute_secs())
            .await?;
        let mut n = 0;
        if let Mode::Store(_) = &config.mode {
            for (scope, s) in self.list_scoped().await? {
                if s.current {
                    continue;
                }
                if let Some(store) = self.store_at(scope) {
                    if store.delete(&s.handle).await? {
                        n += 1;
                    }
                }
            }
        }
        let mut st = self.state().await?;
        self.cycle(&mut st);
        // This request proved who it is: its successor is written even if a parallel request
        // (with the old, now outdated epoch) deleted the record it rotates.
        st.carried = None;
        if let Some(d) = st.data.as_mut() {
            d.epoch = Some(epoch);
            d.user = Some(user);
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
        // A signed-in session signed out while this request ran (logout, "sign out
        // everywhere", a password change) is not written again: its cookie would come back.
        let stale = match (&st.data, dirty) {
            (Some(d), true) => self.signed_out(d, now).await?,
            _ => false,
        };
        match &config.mode {
            Mode::Cookie(codec) => match (&st.data, dirty) {
                (Some(_), true) if stale => Ok(Outcome::Nothing),
                (Some(d), true) => Ok(Outcome::SetCookie {
                    value: codec.encode(d)?,
                    max_age: d.expires.saturating_sub(now),
                }),
                (Some(_), false) => Ok(Outcome::Nothing),
                (None, _) if st.clear_cookie => Ok(Outcome::Clear),
                (None, _) => Ok(Outcome::Nothing),
            },
            Mode::Store(_) => {
                self.commit_to_store(&mut st, &config, now, dirty, stale)
                    .await
            }
        }
    }

    async fn commit_to_store(
        &self,
        st: &mut State,
        config: &Config,
        now: i64,
        dirty: bool,
        stale: bool,
    ) -> Result<Outcome, SessionError> {
        let mut revoked = false;
        for (scope, key) in std::mem::take(&mut st.doomed) {
            let Some(store) = self.store_at(scope) else {
                continue;
            };
            let existed = store.delete(&key).await?;
            revoked |= !existed && st.carried.as_ref() == Some(&(scope, key));
        }
        if revoked || stale {
            // The session this request rotated was revoked (or expired) meanwhile, or it was
            // signed out: writing it would resurrect it. Answered as a vanished session:
            // nothing written, the browser's cookie left alone.
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
        let Some(store) = self.store_at(st.scope) else {
            return Ok(Outcome::Nothing);
        };
        let key = self.key_in(st.scope, &id);
        let mut data = data;
        let mut expected = if st.fresh { None } else { st.version };
        for _ in 0..CAS_RETRIES {
            let idle_end = data.last_seen.saturating_add(config.idle_secs());
            let deadline = data.expires.min(idle_end);
            match store.save(&key, expected, &data, deadline).await? {
                Cas::Done => {
                    if st.fresh {
                        if let Some(user) = data.user.as_deref() {
                            self.keep_within_cap(user, &key, now).await;
                        }
                    }
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

    /// After a sign-in wrote `current`: ends the user's least recently active sessions beyond
    /// the cap ([`SessionLayer::max_sessions_per_user`](super::SessionLayer::max_sessions_per_user)),
    /// so one account cannot fill a store. Runs after the write, so parallel sign-ins that all
    /// see room still end within the cap once each has trimmed. Best effort: a failure is
    /// logged, and the sign-in stands.
    async fn keep_within_cap(&self, user: &str, current: &StoreKey, now: i64) {
        let config = &self.inner.config;
        let Some(store) = self.store_at(0) else {
            return;
        };
        let mut sessions = match store.list_user(user, now).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "the per-user session cap could not be checked");
                return;
            }
        };
        if sessions.len() <= config.max_per_user {
            return;
        }
        sessions.sort_by_key(|(_, d)| (d.last_seen, d.created));
        let excess = sessions.len() - config.max_per_user;
        for (key, _) in sessions.iter().filter(|(k, _)| k != current).take(excess) {
            if let Err(e) = store.delete(key).await {
                tracing::warn!(error = %e, "a session beyond the per-user cap could not be ended");
                return;
            }
        }
        tracing::debug!(ended = excess, "sessions beyond the per-user cap ended");
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

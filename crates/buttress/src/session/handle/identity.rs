//! Who a [`Session`] belongs to: id rotation, sign-in against the user's credentials epoch,
//! sign-out of this session, of the user's others, or of all of a user's.

use super::{Session, State};
use crate::session::config::Mode;
use crate::session::record::{random_sid, random_token, SessionId};
use crate::session::signout::Epoch;
use crate::session::SessionError;

impl Session {
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
    /// as signed out ([`SignOuts::revoke`](crate::session::SignOuts::revoke)), so that a copy of the
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
            for (_, _, store) in stores.per_app(&config.scopes) {
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
    /// The user's credentials epoch is made newer first (see [`SignOuts`](crate::session::SignOuts)),
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
}

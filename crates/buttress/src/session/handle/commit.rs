//! Saving a [`Session`] on the way out: the cookie to send, or the store write (merged with
//! parallel requests' writes by compare-and-swap), and the per-user cap.

use super::{Session, State};
use crate::session::config::{Config, Mode};
use crate::session::record::StoreKey;
use crate::session::store::Cas;
use crate::session::SessionError;

/// How many times a conflicting write is merged and retried before giving up with 503. Each
/// round lets at least one writer through, so N parallel writers need at most N - 1 retries.
const CAS_RETRIES: usize = 64;

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
        Err(SessionError::Store(crate::session::StoreError(
            "too many concurrent writes to one session".into(),
        )))
    }

    /// After a sign-in wrote `current`: ends the user's least recently active sessions beyond
    /// the cap ([`SessionLayer::max_sessions_per_user`](crate::session::SessionLayer::max_sessions_per_user)),
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

//! The signed-in user's live sessions, for an account page, and revoking one of them.

use super::Session;
use crate::session::config::Mode;
use crate::session::record::StoreKey;
use crate::session::SessionError;

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

impl Session {
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
    pub(super) async fn list_scoped(&self) -> Result<Vec<(usize, SessionInfo)>, SessionError> {
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
        for (i, scope, store) in stores.per_app(&config.scopes) {
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
}

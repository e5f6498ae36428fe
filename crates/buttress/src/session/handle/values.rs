//! The [`Session`]'s values (typed with serde), its user and its CSRF secret.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Session;
use crate::session::record::random_token;
use crate::session::SessionError;

impl Session {
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
}

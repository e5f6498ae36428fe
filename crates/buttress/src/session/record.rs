//! What a session holds, in the cookie or in a store.

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
#[cfg(test)]
use sha2::{Digest as _, Sha256};

/// The content of one session. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionData {
    /// When the session was created (survives `cycle_id`).
    #[serde(rename = "iat")]
    pub created: i64,
    /// Absolute expiry: the session ends then, however active.
    #[serde(rename = "exp")]
    pub expires: i64,
    /// Last activity, for the idle timeout.
    #[serde(rename = "seen")]
    pub last_seen: i64,
    /// Application values.
    #[serde(rename = "v", default)]
    pub values: BTreeMap<String, serde_json::Value>,
    /// The signed-in user, for listing and revoking a user's sessions.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The CSRF secret (base64url, 256 bits), rotated with the session id.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// A short description of the client (address and user agent) at creation.
    #[serde(rename = "cl", default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// A signed-in cookie session's own random id (128 bits, base64url): what a sign-out
    /// records as revoked, since the cookie itself cannot be taken back. Unused in store mode,
    /// where deleting the record is the sign-out.
    #[serde(rename = "sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's credentials epoch when they signed in (see
    /// [`Session::credentials_epoch`](super::Session::credentials_epoch)): a session whose
    /// epoch is older than the user's current one is signed out.
    #[serde(rename = "ep", default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

impl SessionData {
    /// An empty session created at `now`, ending at `expires`.
    pub fn new(now: i64, expires: i64) -> Self {
        SessionData {
            created: now,
            expires,
            last_seen: now,
            values: BTreeMap::new(),
            user: None,
            csrf: None,
            client: None,
            sid: None,
            epoch: None,
        }
    }
}

/// A stored session and its version, for compare-and-swap updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The content.
    pub data: SessionData,
    /// Incremented by every write.
    pub version: u64,
    /// When the record expires (Unix seconds): the earlier of the idle and absolute timeouts.
    pub deadline: i64,
}

/// The session id a browser holds: 256 random bits, base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        SessionId(random_token())
    }

    /// Wraps a value read from a cookie, if it has the shape of an id.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| SessionId(text.to_owned()))
    }

    /// The id as sent in the cookie.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The unkeyed SHA-256 of the id that versions before keyed store keys filed sessions
    /// under (tests check that no store key is this any more).
    #[cfg(test)]
    pub(crate) fn legacy_digest(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// The store's key for a session: 64 hex digits of an HMAC of its id under a sub-key of the
/// keyring and the application id (see `session/scope.rs`). Also the handle shown on "your
/// sessions" pages: it reveals nothing of the id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(pub String);

impl StoreKey {
    /// Parses a handle from a form (64 lower-case hex characters).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| StoreKey(text.to_owned()))
    }
}

/// 128 random bits as base64url (22 characters): a cookie session's revocation id.
pub(crate) fn random_sid() -> String {
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// 256 random bits as base64url (43 characters).
pub(crate) fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

//! [`StoreError`]: a session store or the sign-outs could not answer (a leaf: the stores and
//! the sign-outs both answer with it).

/// A store that could not answer: the request gets a 503, never a silent empty session.
#[derive(Debug, Clone, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

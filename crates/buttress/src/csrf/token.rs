//! CSRF tokens: the session's secret, masked afresh for every response (BREACH), compared in
//! constant time.
//!
//! A masked token is `base64url(mask || mask XOR secret)`: 64 random-looking bytes that differ on
//! every page, so a compression oracle learns nothing, yet all unmask to the same secret.

use axum::extract::FromRequestParts;
use base64::Engine as _;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

use crate::session::{Session, SessionError};

const SECRET_LEN: usize = 32;

/// Masks `secret` (base64url of 32 bytes) with a fresh random mask; `None` if it is not a
/// secret. Handlers use [`CsrfToken::masked`]; this is for tests and benchmarks.
///
/// ```
/// let secret = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";
/// let token = buttress::csrf::mask_token(secret).unwrap();
/// assert!(buttress::csrf::verify_token(&token, secret));
/// ```
pub fn mask_token(secret: &str) -> Option<String> {
    let secret = decode(secret).filter(|s| s.len() == SECRET_LEN)?;
    let mut out = vec![0u8; SECRET_LEN * 2];
    rand::thread_rng().fill_bytes(&mut out[..SECRET_LEN]);
    for i in 0..SECRET_LEN {
        out[SECRET_LEN + i] = out[i] ^ secret[i];
    }
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
}

/// Whether `token` unmasks to `secret`, in constant time. Malformed tokens are simply false.
///
/// ```
/// // Tokens come from `CsrfToken::masked`; anything else fails.
/// assert!(!buttress::csrf::verify_token("not-a-token", "also-not-a-secret"));
/// ```
pub fn verify_token(token: &str, secret: &str) -> bool {
    let (Some(raw), Some(secret)) = (decode(token), decode(secret)) else {
        return false;
    };
    if raw.len() != SECRET_LEN * 2 || secret.len() != SECRET_LEN {
        return false;
    }
    let unmasked: Vec<u8> = (0..SECRET_LEN)
        .map(|i| raw[i] ^ raw[SECRET_LEN + i])
        .collect();
    unmasked.ct_eq(&secret).into()
}

fn decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > 200 {
        return None;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
}

/// The CSRF token for templates: put [`CsrfToken::masked`] in a hidden `csrf_token` field of
/// every form (or send it as `X-CSRF-Token`). Reading it creates the session if needed, so a
/// login form carries a token too (login CSRF).
///
/// ```
/// use axum::response::Html;
/// use buttress::csrf::CsrfToken;
///
/// async fn form(token: CsrfToken) -> Html<String> {
///     Html(format!(r#"<form method="post"><input type="hidden" name="csrf_token" value="{}"></form>"#, token.masked()))
/// }
/// ```
#[derive(Clone)]
pub struct CsrfToken {
    secret: String,
}

impl CsrfToken {
    /// A freshly masked token (different on every call, all valid for this session).
    pub fn masked(&self) -> String {
        mask_token(&self.secret).unwrap_or_default()
    }

    /// The token of `session`, creating its secret if needed.
    pub async fn for_session(session: &Session) -> Result<Self, SessionError> {
        Ok(CsrfToken {
            secret: session.csrf_secret().await?,
        })
    }
}

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(<redacted>)")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = SessionError;
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        CsrfToken::for_session(&session).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> String {
        crate::session::record::random_token()
    }

    #[test]
    fn masks_differ_and_verify() {
        let s = secret();
        let a = mask_token(&s).expect("mask");
        let b = mask_token(&s).expect("mask");
        assert_ne!(a, b, "masked afresh");
        assert!(verify_token(&a, &s) && verify_token(&b, &s));
        assert_eq!(a.len(), 86);
    }

    #[test]
    fn wrong_tokens_fail() {
        let s = secret();
        let other = mask_token(&secret()).expect("mask");
        assert!(!verify_token(&other, &s), "token of another session");
        let good = mask_token(&s).expect("mask");
        assert!(!verify_token(&good[..80], &s), "truncated");
        assert!(!verify_token(&s, &s), "the raw secret is not a token");
        let mut flipped = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&good)
            .expect("b64");
        flipped[40] ^= 1;
        assert!(!verify_token(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(flipped),
            &s
        ));
        assert!(!verify_token("", &s));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(t in "\\PC{0,300}") {
            let _ = verify_token(&t, &secret());
        }

        #[test]
        fn every_mask_verifies(_n in 0u8..50) {
            let s = secret();
            prop_assert!(verify_token(&mask_token(&s).expect("mask"), &s));
        }
    }
}

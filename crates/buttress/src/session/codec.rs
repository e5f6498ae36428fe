//! The encrypted session cookie: XChaCha20-Poly1305 with a per-purpose key.
//!
//! Layout of the cookie value (URL-safe base64, no padding):
//!
//! ```text
//! version (1 byte = 1) || nonce (24 random bytes) || ciphertext + tag
//! ```
//!
//! The associated data binds the cookie *name* and the *purpose*, so a valid value moved under
//! another cookie name, or made for another purpose, does not open. The plaintext carries the
//! issue time, last-seen time and absolute expiry, so the server enforces both timeouts no
//! matter what expiry the browser kept. A 192-bit random nonce makes nonce reuse negligible
//! without any counter state, which is why XChaCha20 is used rather than AES-GCM's 96 bits.

use base64::Engine as _;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;

use super::record::SessionData;
use crate::secret::DerivedKeys;

/// The most a `Set-Cookie` value may take in browsers (name + value, RFC 6265 §6.1).
pub const MAX_COOKIE_BYTES: usize = 4096;
const VERSION: u8 = 1;

fn aad_for(name: &str) -> Vec<u8> {
    let mut aad = b"buttress/session-cookie/v1|".to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// Why a cookie did not open. All variants are treated alike (no session); the distinction
/// is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not base64, too short, or an unknown version.
    #[error("malformed session cookie")]
    Malformed,
    /// No key (primary or fallback) authenticates it: forged, tampered, renamed or another purpose.
    #[error("session cookie failed authentication")]
    Forged,
    /// Authentic but its content does not decode.
    #[error("session cookie content is invalid")]
    Content,
}

/// Encodes and decodes session cookies for one cookie name.
#[derive(Clone, Debug)]
pub struct CookieCodec {
    keys: DerivedKeys,
    name: String,
    aad: Vec<u8>,
}

/// The result of [`CookieCodec::decode`].
#[derive(Debug)]
pub struct Opened {
    /// The session inside.
    pub data: SessionData,
    /// Opened with a fallback key: re-issue it under the primary key.
    pub stale_key: bool,
}

impl CookieCodec {
    /// A codec for cookies named `name` with the session-cookie sub-keys.
    pub fn new(keys: DerivedKeys, name: impl Into<String>) -> Self {
        let name = name.into();
        CookieCodec {
            aad: aad_for(&name),
            keys,
            name,
        }
    }

    /// The same keys for another cookie name.
    pub fn renamed(&self, name: impl Into<String>) -> Self {
        CookieCodec::new(self.keys.clone(), name)
    }

    /// Encrypts `data` into a cookie value.
    pub fn encode(&self, data: &SessionData) -> Result<String, super::SessionError> {
        // One buffer: version, nonce, then the plaintext encrypted in place and the tag.
        let mut buf = Vec::with_capacity(512);
        buf.push(VERSION);
        buf.extend_from_slice(&[0u8; 24]);
        rand::thread_rng().fill_bytes(&mut buf[1..25]);
        serde_json::to_writer(&mut buf, data).map_err(|_| super::SessionError::Encode)?;
        let cipher = XChaCha20Poly1305::new(self.keys.primary().as_bytes().into());
        let (head, body) = buf.split_at_mut(25);
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&head[1..]), &self.aad, body)
            .map_err(|_| super::SessionError::Encode)?;
        buf.extend_from_slice(&tag);
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&buf);
        let size = self.name.len() + 1 + value.len();
        if size > MAX_COOKIE_BYTES {
            return Err(super::SessionError::TooLarge {
                size,
                limit: MAX_COOKIE_BYTES,
            });
        }
        Ok(value)
    }

    /// Decrypts a cookie value, trying the primary key and then the fallbacks.
    pub fn decode(&self, value: &str) -> Result<Opened, DecodeError> {
        if value.len() > MAX_COOKIE_BYTES * 2 {
            return Err(DecodeError::Malformed);
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| DecodeError::Malformed)?;
        if raw.len() < 1 + 24 + 16 || raw[0] != VERSION {
            return Err(DecodeError::Malformed);
        }
        let (nonce, rest) = raw[1..].split_at(24);
        let (sealed, tag) = rest.split_at(rest.len() - 16);
        let mut plain = sealed.to_vec();
        for (i, key) in self.keys.verification_order().enumerate() {
            let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
            let opened = cipher.decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &self.aad,
                &mut plain,
                chacha20poly1305::Tag::from_slice(tag),
            );
            if opened.is_ok() {
                let data = serde_json::from_slice(&plain).map_err(|_| DecodeError::Content)?;
                return Ok(Opened {
                    data,
                    stale_key: i > 0,
                });
            }
            // A failed open leaves the buffer untouched; nothing to restore.
        }
        Err(DecodeError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{Keyring, SecretKey};
    use proptest::prelude::*;

    fn ring() -> Keyring {
        Keyring::new(SecretKey::generate(), vec![])
    }

    fn data() -> SessionData {
        let mut d = SessionData::new(1_000, 1_000 + 43_200);
        d.values.insert("user".into(), serde_json::json!("alice"));
        d
    }

    #[test]
    fn round_trip() {
        let codec = CookieCodec::new(ring().derive("session-cookie"), "__Host-session");
        let v = codec.encode(&data()).expect("encodes");
        let opened = codec.decode(&v).expect("opens");
        assert_eq!(opened.data, data());
        assert!(!opened.stale_key);
    }

    #[test]
    fn attacks_fail() {
        let ring = ring();
        let codec = CookieCodec::new(ring.derive("session-cookie"), "__Host-session");
        let v = codec.encode(&data()).expect("encodes");
        // Tampered: flip one bit in every position of the ciphertext.
        let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&v)
            .expect("b64");
        for i in 1..raw.len() {
            raw[i] ^= 1;
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
            assert!(codec.decode(&t).is_err(), "bit flip at {i} accepted");
            raw[i] ^= 1;
        }
        // Truncated.
        // (Cutting characters may leave invalid base64 or a short ciphertext: either way refused.)
        for cut in 1..8 {
            assert!(
                codec.decode(&v[..v.len() - cut]).is_err(),
                "truncated by {cut}"
            );
        }
        assert_eq!(codec.decode(&v[..10]).unwrap_err(), DecodeError::Malformed);
        // Renamed: same key, another cookie name.
        let renamed = CookieCodec::new(ring.derive("session-cookie"), "session");
        assert_eq!(renamed.decode(&v).unwrap_err(), DecodeError::Forged);
        // Another purpose: a cookie made with the CSRF sub-key.
        let other = CookieCodec::new(ring.derive("csrf-token"), "__Host-session");
        let foreign = other.encode(&data()).expect("encodes");
        assert_eq!(codec.decode(&foreign).unwrap_err(), DecodeError::Forged);
        // Re-signed with another master key.
        let attacker = CookieCodec::new(self::ring().derive("session-cookie"), "__Host-session");
        assert_eq!(
            codec
                .decode(&attacker.encode(&data()).expect("e"))
                .unwrap_err(),
            DecodeError::Forged
        );
        // Garbage.
        assert_eq!(
            codec.decode("not base64!").unwrap_err(),
            DecodeError::Malformed
        );
    }

    #[test]
    fn fallback_key_opens_and_is_marked_stale() {
        let old = SecretKey::generate();
        let before = CookieCodec::new(
            Keyring::new(old.clone(), vec![]).derive("session-cookie"),
            "s",
        );
        let v = before.encode(&data()).expect("encodes");
        let rotated = CookieCodec::new(
            Keyring::new(SecretKey::generate(), vec![old]).derive("session-cookie"),
            "s",
        );
        let opened = rotated.decode(&v).expect("fallback opens");
        assert!(opened.stale_key);
        let reissued = rotated.encode(&opened.data).expect("re-encodes");
        assert!(!rotated.decode(&reissued).expect("opens").stale_key);
    }

    #[test]
    fn size_limit_is_a_clear_error() {
        let codec = CookieCodec::new(ring().derive("session-cookie"), "s");
        let mut d = data();
        d.values
            .insert("blob".into(), serde_json::json!("x".repeat(5000)));
        let err = codec.encode(&d).unwrap_err();
        assert!(err.to_string().contains("4096"), "{err}");
    }

    proptest! {
        #[test]
        fn round_trips_any_values(entries in proptest::collection::btree_map("[a-z]{1,8}", "\\PC{0,40}", 0..8), t in 0i64..4_000_000_000) {
            let codec = CookieCodec::new(ring().derive("session-cookie"), "__Host-session");
            let mut d = SessionData::new(t, t + 10);
            for (k, v) in entries { d.values.insert(k, serde_json::Value::String(v)); }
            let opened = codec.decode(&codec.encode(&d).expect("encodes")).expect("opens");
            prop_assert_eq!(opened.data, d);
        }

        #[test]
        fn decode_never_panics(s in "\\PC{0,300}") {
            let codec = CookieCodec::new(ring().derive("session-cookie"), "s");
            let _ = codec.decode(&s);
        }
    }
}

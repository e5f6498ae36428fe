//! The encrypted session cookie: AES-256-GCM-SIV (RFC 8452) with a per-purpose key.
//!
//! Layout of the cookie value (URL-safe base64, no padding):
//!
//! ```text
//! version (1 byte = 2) || nonce (12 random bytes) || ciphertext || tag (16 bytes)
//! ```
//!
//! The plaintext is the compact binary encoding of [`SessionData`] described in
//! `session/payload.rs` (times as varints, length-prefixed UTF-8 strings, application values as a
//! tagged binary form of JSON that round-trips every `serde_json::Value` exactly). It carries
//! the issue time, last-seen time and absolute expiry, so the server enforces both timeouts no
//! matter what expiry the browser kept. The associated data binds the format version, the cookie
//! *name* and (through the HKDF sub-key) the *purpose*, so a valid value moved under another
//! cookie name, or made for another purpose, does not open. Cookies of version 1
//! (XChaCha20-Poly1305 over JSON) are refused as malformed.
//!
//! # Why AES-256-GCM-SIV
//!
//! Speed: with AES-NI and carry-less multiplication, which every current x86-64 and ARMv8 server
//! has, it seals and opens a cookie several times faster than XChaCha20-Poly1305 did.
//!
//! Nonces: they are 96 random bits with no counter state, so under one key they are expected
//! to repeat once about every 2^48 cookies, and the chance of any repeat among `q` cookies is
//! below `q² / 2^97` (2^-33 after 2^32 cookies, 2^-17 after 2^40). With plain AES-GCM a repeat
//! would expose the authentication key and allow forgeries, which is why NIST caps random
//! 96-bit nonces at 2^32 messages per key — a limit a busy site that re-issues the cookie on
//! many responses could reach. AES-GCM-SIV is nonce-misuse resistant instead: a repeated nonce
//! reveals only whether the two plaintexts were equal (and cookie plaintexts carry times to the
//! second and random CSRF secrets), nothing about the key, other cookies or how to forge. It
//! also derives a fresh encryption key and authentication key from every nonce, so each derived
//! key protects one cookie (or a handful after a repeat) and AES-GCM's per-key data limits do
//! not come into play; the master key only encrypts the six distinct key-derivation blocks
//! per nonce. The security loss therefore grows with the number of nonce *repeats*, not with
//! the number of cookies, which keeps it negligible far beyond 2^32 cookies per key. Rotating
//! `SECRET_KEY` (see [`crate::secret`]) starts a fresh count.
//!
//! The price against XChaCha20-Poly1305's 192-bit nonces, for which a repeat was negligible at
//! any volume: past roughly 2^48 cookies under one key an observer may learn that two cookies
//! carried an identical session. The cipher objects (the key-generating keys' expanded
//! schedules) are kept for the life of the codec and wiped on drop, as the sub-keys are.

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use base64::Engine as _;
use rand::RngCore as _;

use super::payload;
use super::record::SessionData;
use crate::secret::DerivedKeys;

/// The most a `Set-Cookie` value may take in browsers (name + value, RFC 6265 §6.1).
pub const MAX_COOKIE_BYTES: usize = 4096;
const VERSION: u8 = 2;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Version and nonce.
const HEADER_LEN: usize = 1 + NONCE_LEN;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn aad_for(name: &str) -> Vec<u8> {
    let mut aad = b"buttress/session-cookie/v2|".to_vec();
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
#[derive(Clone)]
pub struct CookieCodec {
    /// The primary key's cipher, then the fallbacks' (the order to try when opening).
    ciphers: Vec<Aes256GcmSiv>,
    name: String,
    aad: Vec<u8>,
}

impl std::fmt::Debug for CookieCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieCodec")
            .field("name", &self.name)
            .field("keys", &self.ciphers.len())
            .finish_non_exhaustive()
    }
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
            ciphers: keys
                .verification_order()
                .map(|key| Aes256GcmSiv::new(key.as_bytes().into()))
                .collect(),
            aad: aad_for(&name),
            name,
        }
    }

    /// The same keys for another cookie name.
    pub fn renamed(&self, name: impl Into<String>) -> Self {
        let name = name.into();
        CookieCodec {
            ciphers: self.ciphers.clone(),
            aad: aad_for(&name),
            name,
        }
    }

    /// Encrypts `data` into a cookie value.
    pub fn encode(&self, data: &SessionData) -> Result<String, super::SessionError> {
        // One buffer: version, nonce, then the plaintext encrypted in place and the tag.
        let mut buf = Vec::with_capacity(256);
        buf.push(VERSION);
        let mut nonce = Nonce::default();
        rand::thread_rng().fill_bytes(&mut nonce);
        buf.extend_from_slice(&nonce);
        payload::encode(data, &mut buf).map_err(|_| super::SessionError::Encode)?;
        let size = base64::encoded_len(buf.len() + TAG_LEN, false)
            .and_then(|n| n.checked_add(self.name.len() + 1))
            .ok_or(super::SessionError::Encode)?;
        if size > MAX_COOKIE_BYTES {
            return Err(super::SessionError::TooLarge {
                size,
                limit: MAX_COOKIE_BYTES,
            });
        }
        let primary = self.ciphers.first().ok_or(super::SessionError::Encode)?;
        let tag = primary
            .encrypt_in_place_detached(&nonce, &self.aad, &mut buf[HEADER_LEN..])
            .map_err(|_| super::SessionError::Encode)?;
        buf.extend_from_slice(&tag);
        Ok(B64.encode(&buf))
    }

    /// Decrypts a cookie value, trying the primary key and then the fallbacks.
    pub fn decode(&self, value: &str) -> Result<Opened, DecodeError> {
        if value.len() > MAX_COOKIE_BYTES * 2 {
            return Err(DecodeError::Malformed);
        }
        // Decrypted in place in the base64 output.
        let mut raw = B64.decode(value).map_err(|_| DecodeError::Malformed)?;
        if raw.len() < HEADER_LEN + TAG_LEN || raw[0] != VERSION {
            return Err(DecodeError::Malformed);
        }
        let (head, rest) = raw.split_at_mut(HEADER_LEN);
        let (sealed, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let nonce = Nonce::from_slice(&head[1..]);
        let tag = Tag::from_slice(tag);
        for (i, cipher) in self.ciphers.iter().enumerate() {
            if cipher
                .decrypt_in_place_detached(nonce, &self.aad, sealed, tag)
                .is_ok()
            {
                let data = payload::decode(sealed).map_err(|_| DecodeError::Content)?;
                return Ok(Opened {
                    data,
                    stale_key: i > 0,
                });
            }
            // A failed open re-encrypts the buffer: it holds the ciphertext again.
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

//! The encrypted session cookie: XAES-256-GCM with a per-purpose key.
//!
//! Layout of the cookie value (URL-safe base64, no padding):
//!
//! ```text
//! version (1 byte = 3) || nonce (24 random bytes) || ciphertext || tag (16 bytes)
//! ```
//!
//! The plaintext is the compact binary encoding of [`SessionData`] described in
//! `session/payload.rs`: times as varints, length-prefixed UTF-8 strings, and application values
//! in a tagged binary form of JSON that round-trips every `serde_json::Value` exactly. It
//! carries the issue time, last-seen time and absolute expiry, so the server enforces both
//! timeouts no matter what expiry the browser kept. The associated data is the version byte, the
//! application id ([`AppId`]: `BUTTRESS_APP_ID`, or derived from the key) and the cookie
//! *name*, and the key is the *purpose*'s own HKDF sub-key, so a valid value moved under
//! another cookie name, made for another purpose, or made by another application sharing the
//! key (staging and production) does not open. Version-1 cookies (XChaCha20-Poly1305 over JSON)
//! and version-2 cookies (no application id) are refused as malformed: upgrading signs cookie
//! sessions out once.
//!
//! # Why XAES-256-GCM
//!
//! [XAES-256-GCM](https://c2sp.org/XAES-256-GCM) is AES-256-GCM under a key derived from the
//! key and the first half of a 192-bit nonce (NIST SP 800-108r1 KDF with CMAC-AES-256: two AES
//! calls and one AES-256 key schedule per cookie); see `session/xaes.rs`. With AES-NI and
//! carry-less multiplication it seals and opens a cookie about five times faster than
//! XChaCha20-Poly1305 did on the same machine.
//!
//! Nonces are drawn at random with no counter state, as the cookie is re-issued on many
//! responses by many servers. Plain AES-GCM's 96-bit nonces would cap that at 2^32 cookies per
//! key (NIST SP 800-38D), and a repeated nonce there exposes the authentication key. XAES-256-GCM
//! keeps XChaCha20-Poly1305's 192-bit random nonce: a repeat needs the same derived key *and*
//! GCM nonce, and stays below 2^-32 for 2^80 cookies per key. Every derived key seals a
//! single cookie, so GCM's per-key data limits never come into play. Like XChaCha20-Poly1305
//! (and unlike AES-GCM-SIV) it is not nonce-misuse resistant, so nonces come from the thread's
//! CSPRNG, seeded by the operating system, exactly as before. AES-256-GCM-SIV was measured
//! too: about 25% slower per cookie, and with random nonces it only has 96 bits, so repeats
//! (revealing that two cookies were equal) become likely after about 2^48 cookies per key.

use base64::Engine as _;
use rand::RngCore as _;

use super::payload;
use super::record::SessionData;
use super::xaes::{Xaes256Gcm, NONCE_LEN, TAG_LEN};
use crate::secret::{AppId, DerivedKeys};

/// The most a `Set-Cookie` value may take in browsers (name + value, RFC 6265 §6.1).
pub const MAX_COOKIE_BYTES: usize = 4096;
const VERSION: u8 = 3;
/// Version and nonce.
const HEADER_LEN: usize = 1 + NONCE_LEN;
/// The most bytes a cookie value of at most [`MAX_COOKIE_BYTES`] characters decodes to.
const MAX_RAW_LEN: usize = MAX_COOKIE_BYTES / 4 * 3;
/// Cookies up to this many bytes (before base64) are decoded on the stack.
const SMALL_RAW_LEN: usize = 512;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The associated data: the version byte, the application id (length-prefixed), then the
/// cookie name. No purpose label is needed: the key is already the purpose's own HKDF sub-key.
/// (Kept short: GHASH hashes it on every seal and open, 16 bytes at a time.)
fn aad_for(app: &str, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(2 + app.len() + name.len());
    aad.push(VERSION);
    // An application id is at most 64 bytes (`MAX_APP_ID_LEN`); `new` passes "".
    aad.push(u8::try_from(app.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(app.as_bytes());
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

/// Encodes and decodes session cookies for one cookie name (and one application).
#[derive(Clone)]
pub struct CookieCodec {
    /// The primary key's cipher, then the fallbacks' (the order to try when opening).
    ciphers: Vec<Xaes256Gcm>,
    /// Each key's application id ("" for none), in the same order.
    apps: Vec<String>,
    name: String,
    /// Each key's associated data, in the same order.
    aads: Vec<Vec<u8>>,
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
    /// A codec for cookies named `name` with the session-cookie sub-keys, bound to no
    /// application id (the session layer binds one: [`CookieCodec::for_apps`]).
    ///
    /// ```
    /// use buttress::secret::Keyring;
    /// use buttress::session::{codec::CookieCodec, SessionData};
    /// let codec = CookieCodec::new(Keyring::ephemeral().derive("session-cookie"), "s");
    /// let value = codec.encode(&SessionData::new(1, 2))?;
    /// assert_eq!(codec.decode(&value).map(|o| o.data.expires), Ok(2));
    /// # Ok::<(), buttress::session::SessionError>(())
    /// ```
    pub fn new(keys: DerivedKeys, name: impl Into<String>) -> Self {
        let ciphers: Vec<Xaes256Gcm> = keys
            .verification_order()
            .map(|key| Xaes256Gcm::new(key.as_bytes()))
            .collect();
        let apps = vec![String::new(); ciphers.len()];
        Self::assemble(ciphers, apps, name.into())
    }

    fn assemble(ciphers: Vec<Xaes256Gcm>, apps: Vec<String>, name: String) -> Self {
        let aads = apps.iter().map(|app| aad_for(app, &name)).collect();
        CookieCodec {
            ciphers,
            apps,
            name,
            aads,
        }
    }

    /// The same keys bound to application ids, one per key in verification order (as
    /// [`Keyring::app_ids`](crate::secret::Keyring::app_ids) gives them): a cookie made for
    /// another application does not open, even under the same key.
    ///
    /// ```
    /// use buttress::secret::{AppId, Keyring, SecretKey};
    /// use buttress::session::{codec::CookieCodec, SessionData};
    /// let ring = Keyring::new(SecretKey::generate(), vec![]);
    /// let codec = |app: &str| {
    ///     CookieCodec::new(ring.derive("session-cookie"), "s").for_apps(&[AppId::new(app).unwrap()])
    /// };
    /// let staging = codec("staging").encode(&SessionData::new(1, 2))?;
    /// assert!(codec("staging").decode(&staging).is_ok());
    /// assert!(codec("production").decode(&staging).is_err());
    /// # Ok::<(), buttress::session::SessionError>(())
    /// ```
    pub fn for_apps(&self, apps: &[AppId]) -> Self {
        let apps = (0..self.ciphers.len())
            .map(|i| {
                apps.get(i)
                    .or(apps.last())
                    .map_or_else(String::new, |a| a.as_str().to_owned())
            })
            .collect();
        Self::assemble(self.ciphers.clone(), apps, self.name.clone())
    }

    /// The same keys for another cookie name.
    pub fn renamed(&self, name: impl Into<String>) -> Self {
        Self::assemble(self.ciphers.clone(), self.apps.clone(), name.into())
    }

    /// Encrypts `data` into a cookie value.
    pub fn encode(&self, data: &SessionData) -> Result<String, super::SessionError> {
        // One buffer: version, nonce, then the plaintext encrypted in place and the tag.
        let mut buf = Vec::with_capacity(256);
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        buf.push(VERSION);
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
        let (Some(primary), Some(aad)) = (self.ciphers.first(), self.aads.first()) else {
            return Err(super::SessionError::Encode);
        };
        let tag = primary
            .seal(&nonce, aad, &mut buf[HEADER_LEN..])
            .map_err(|_| super::SessionError::Encode)?;
        buf.extend_from_slice(&tag);
        Ok(B64.encode(&buf))
    }

    /// Decrypts a cookie value, trying the primary key and then the fallbacks.
    pub fn decode(&self, value: &str) -> Result<Opened, DecodeError> {
        // Nothing longer was ever issued (the name counts against the limit too).
        if value.len() > MAX_COOKIE_BYTES {
            return Err(DecodeError::Malformed);
        }
        // Decoded into a buffer on the stack (on the heap for the rare large cookie) and
        // decrypted there, in place.
        let mut small = [0u8; SMALL_RAW_LEN];
        let mut large = Vec::new();
        let buf: &mut [u8] = if base64::decoded_len_estimate(value.len()) <= SMALL_RAW_LEN {
            &mut small
        } else {
            large.resize(MAX_RAW_LEN, 0);
            &mut large
        };
        let len = B64
            .decode_slice(value, &mut *buf)
            .map_err(|_| DecodeError::Malformed)?;
        let raw = buf.get_mut(..len).ok_or(DecodeError::Malformed)?;
        if raw.len() < HEADER_LEN + TAG_LEN || raw[0] != VERSION {
            return Err(DecodeError::Malformed);
        }
        let (head, rest) = raw.split_at_mut(HEADER_LEN);
        let (sealed, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let nonce: &[u8; NONCE_LEN] = (&head[1..])
            .try_into()
            .map_err(|_| DecodeError::Malformed)?;
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| DecodeError::Malformed)?;
        for (i, (cipher, aad)) in self.ciphers.iter().zip(&self.aads).enumerate() {
            if cipher.open(nonce, aad, sealed, tag).is_ok() {
                let data = payload::decode(sealed).map_err(|_| DecodeError::Content)?;
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

/// Decodes a cookie's plaintext (the binary session encoding) with no cryptography. For the
/// fuzz target of that decoder only (`buttress::fuzzing`): a cookie reaches it only after it
/// authenticates.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_plaintext(bytes: &[u8]) -> Option<SessionData> {
    payload::decode(bytes).ok()
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

    #[test]
    fn authentic_but_invalid_content_is_a_content_error() {
        let codec = CookieCodec::new(ring().derive("session-cookie"), "s");
        // Sealed with the real key and name, but the plaintext is not a payload.
        for plain in [&b""[..], b"\xff", b"{\"iat\":1,\"exp\":2,\"seen\":1}"] {
            let nonce = [5u8; NONCE_LEN];
            let mut raw = vec![VERSION];
            raw.extend_from_slice(&nonce);
            let mut body = plain.to_vec();
            let tag = codec.ciphers[0]
                .seal(&nonce, &codec.aads[0], &mut body)
                .expect("seals");
            raw.extend_from_slice(&body);
            raw.extend_from_slice(&tag);
            assert_eq!(
                codec.decode(&B64.encode(&raw)).unwrap_err(),
                DecodeError::Content
            );
        }
    }

    #[test]
    fn other_versions_and_sizes_are_malformed() {
        let codec = CookieCodec::new(ring().derive("session-cookie"), "s");
        let v = codec.encode(&data()).expect("encodes");
        let mut raw = B64.decode(&v).expect("b64");
        for version in [0, 1, 2, 4, 0xff] {
            raw[0] = version;
            assert_eq!(
                codec.decode(&B64.encode(&raw)).unwrap_err(),
                DecodeError::Malformed,
                "version {version}"
            );
        }
        // Just too short to hold a header and a tag; the shortest well-formed value is forged.
        assert_eq!(
            codec
                .decode(&B64.encode([VERSION; HEADER_LEN + TAG_LEN - 1]))
                .unwrap_err(),
            DecodeError::Malformed
        );
        assert_eq!(
            codec
                .decode(&B64.encode([VERSION; HEADER_LEN + TAG_LEN]))
                .unwrap_err(),
            DecodeError::Forged
        );
        // The longest acceptable value (decoded on the heap) and one character more.
        let longest = "A".repeat(MAX_COOKIE_BYTES);
        assert_eq!(codec.decode(&longest).unwrap_err(), DecodeError::Malformed);
        let mut forged = vec![VERSION; MAX_RAW_LEN];
        forged[1..].fill(0x5a);
        let forged = B64.encode(&forged);
        assert_eq!(forged.len(), MAX_COOKIE_BYTES);
        assert_eq!(codec.decode(&forged).unwrap_err(), DecodeError::Forged);
        let too_long = format!("{forged}A");
        assert_eq!(codec.decode(&too_long).unwrap_err(), DecodeError::Malformed);
    }

    #[test]
    fn size_limit_is_exact_and_large_cookies_open() {
        let codec = CookieCodec::new(ring().derive("session-cookie"), "__Host-session");
        let mut d = data();
        let mut last_ok = None;
        for n in 2800..3200 {
            d.values
                .insert("blob".into(), serde_json::json!("x".repeat(n)));
            match codec.encode(&d) {
                Ok(v) => {
                    let size = "__Host-session".len() + 1 + v.len();
                    assert!(size <= MAX_COOKIE_BYTES, "{size}");
                    // Large cookies take the heap path when decoding.
                    assert_eq!(codec.decode(&v).expect("opens").data, d);
                    last_ok = Some(n);
                }
                Err(super::super::SessionError::TooLarge { size, limit }) => {
                    assert_eq!(limit, MAX_COOKIE_BYTES);
                    assert!((MAX_COOKIE_BYTES + 1..=MAX_COOKIE_BYTES + 2).contains(&size));
                    assert_eq!(last_ok, Some(n - 1), "the limit is not where it should be");
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("never reached the limit");
    }

    proptest! {
        #[test]
        fn round_trips_any_session(d in super::super::payload::tests::session_data()) {
            let codec = CookieCodec::new(ring().derive("session-cookie"), "__Host-session");
            match codec.encode(&d) {
                Ok(v) => prop_assert_eq!(codec.decode(&v).expect("opens").data, d),
                Err(e) => prop_assert!(matches!(e, super::super::SessionError::TooLarge { .. }), "{}", e),
            }
        }

        #[test]
        fn random_sealed_bytes_never_open(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let codec = CookieCodec::new(ring().derive("session-cookie"), "s");
            let mut raw = vec![VERSION];
            raw.extend_from_slice(&body);
            let err = codec.decode(&B64.encode(&raw)).unwrap_err();
            prop_assert!(matches!(err, DecodeError::Malformed | DecodeError::Forged));
        }

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

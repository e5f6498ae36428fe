//! Secret keys: loading, strength checks, per-purpose sub-keys and rotation.
//!
//! There is no default key anywhere in Buttress. A [`Keyring`] holds one *primary* key, which
//! signs and encrypts, and any number of *fallback* keys, which only verify and decrypt, so a key
//! can be rotated without signing every user out: put the new key in `SECRET_KEY`, move the old
//! one to `SECRET_KEY_FALLBACKS`, and remove it once the longest session lifetime has passed.
//!
//! The master key is never used directly. Every purpose (session cookies, CSRF tokens, …) gets
//! its own 256-bit sub-key through HKDF-SHA256 ([RFC 5869]) with the purpose in the `info`
//! string, so a value made for one purpose can never be accepted for another.
//!
//! # Example
//!
//! ```
//! use buttress::secret::{Keyring, SecretKey};
//!
//! let primary = SecretKey::generate();
//! let keyring = Keyring::new(primary, Vec::new());
//! let keys = keyring.derive("session-cookie");
//! assert_eq!(keys.primary().len(), 32);
//! assert_ne!(keys.primary(), keyring.derive("csrf-token").primary());
//! ```
//!
//! # Strength rules
//!
//! | rule | why |
//! |---|---|
//! | at least 32 bytes | a 256-bit key, as [`SecretKey::generate`] makes |
//! | at least 12 distinct characters and 3.5 bits of Shannon entropy per character | rejects `aaaa…` and `changeme…` |
//! | no repeating unit and at most a third of the key in runs of 4+ along the alphabet, the digits or a keyboard row | rejects `0123…f0123…f`, `qwertyuiop…` and other walks that pass the entropy count |
//! | no known published value or placeholder word (`changeme`, `secret-key`, `insecure`, …) anywhere in it | keys copied from tutorials are the first ones attackers try |
//!
//! [RFC 5869]: https://www.rfc-editor.org/rfc/rfc5869

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hkdf::Hkdf;
use rand::RngCore as _;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The least number of bytes a key must have.
pub const MIN_KEY_BYTES: usize = 32;

/// Values published in tutorials, framework docs and our own README examples. A key that equals
/// one of them, or contains one of the placeholder words, is refused in Production.
const PUBLISHED_KEYS: &[&str] = &[
    // Flask's documentation example (`app.secret_key = b'_5#y2L"F4Q8z\n\xec]/'`).
    "_5#y2L\"F4Q8z\\n\\xec]/",
    // Flask-Security / many tutorials.
    "super-secret",
    "you-will-never-guess",
    "your-secret-key-here",
    // Django's generated insecure development key prefix.
    "django-insecure-",
    // Our own README and docs examples.
    "btr_example_do_not_use_8f3c1a9e7b6d5c4f2e1d0c9b8a7f6e5d",
];

/// Words that mark a placeholder rather than a real key.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "secret-key",
    "secret_key",
    "secretkey",
    "insecure",
    "example",
    "password",
    "placeholder",
    "do-not-use",
    "notsecret",
];

/// Why a key was refused. Each message says what is wrong; the fix is always the same:
/// generate a key with `buttress keygen`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No key was configured.
    #[error("no secret key is set")]
    Missing,
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error("the secret key is {len} bytes long; at least {MIN_KEY_BYTES} are required")]
    TooShort {
        /// The key's length in bytes.
        len: usize,
    },
    /// The key has too little variety to be random.
    #[error("the secret key has too little entropy ({distinct} distinct characters, {bits_per_char:.1} bits per character); it does not look random")]
    LowEntropy {
        /// Distinct byte values in the key.
        distinct: usize,
        /// Shannon entropy per byte.
        bits_per_char: f64,
    },
    /// The key is a value published in documentation or a placeholder.
    #[error("the secret key is a published example or placeholder value")]
    Published,
    /// The key follows a pattern: a repeating unit, or runs along the alphabet, the digits or a
    /// keyboard row.
    #[error("the secret key follows a pattern (it repeats, or runs along the alphabet, digits or keyboard); it does not look random")]
    Patterned,
    /// The key file could not be read.
    #[error("cannot read the secret key file {path}: {reason}")]
    File {
        /// The file's path.
        path: PathBuf,
        /// The I/O error, without the file's content.
        reason: String,
    },
}

impl KeyError {
    /// The one-line fix a user can act on.
    pub fn fix(&self) -> &'static str {
        match self {
            KeyError::File { .. } => {
                "check the path and permissions of SECRET_KEY_FILE, or generate a key with `buttress keygen`"
            }
            _ => "generate a key with `buttress keygen` and set it as SECRET_KEY (or in a file named by SECRET_KEY_FILE)",
        }
    }
}

/// A secret key. Its bytes are wiped from memory on drop and never printed by `Debug`.
///
/// ```
/// use buttress::secret::SecretKey;
///
/// let key = SecretKey::generate();
/// assert!(key.check_strength().is_ok());
/// assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// Wraps raw key bytes. Use [`SecretKey::check_strength`] before trusting them.
    ///
    /// ```
    /// use buttress::secret::SecretKey;
    /// assert!(SecretKey::from_bytes(b"short".to_vec()).check_strength().is_err());
    /// ```
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        SecretKey(bytes)
    }

    /// Generates a fresh 256-bit key from the operating system's random source.
    ///
    /// ```
    /// use buttress::secret::SecretKey;
    /// assert_ne!(SecretKey::generate().as_bytes(), SecretKey::generate().as_bytes());
    /// ```
    pub fn generate() -> Self {
        SecretKey(generate_key_string().into_bytes())
    }

    /// Reads a key from a file, dropping one trailing newline.
    ///
    /// ```no_run
    /// use buttress::secret::SecretKey;
    /// let key = SecretKey::from_file("/run/secrets/buttress_key".as_ref())?;
    /// # Ok::<(), buttress::secret::KeyError>(())
    /// ```
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let mut bytes = std::fs::read(path).map_err(|e| KeyError::File {
            path: path.to_owned(),
            reason: e.kind().to_string(),
        })?;
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        Ok(SecretKey(bytes))
    }

    /// The key's bytes.
    ///
    /// ```
    /// use buttress::secret::SecretKey;
    /// assert_eq!(SecretKey::from_bytes(vec![1, 2]).as_bytes(), &[1, 2]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Checks the [strength rules](self#strength-rules).
    ///
    /// ```
    /// use buttress::secret::{KeyError, SecretKey};
    /// let weak = SecretKey::from_bytes(b"changeme-changeme-changeme-changeme!".to_vec());
    /// assert!(weak.check_strength().is_err());
    /// ```
    pub fn check_strength(&self) -> Result<(), KeyError> {
        let key = &self.0;
        if key.is_empty() {
            return Err(KeyError::Missing);
        }
        if is_published(key) {
            return Err(KeyError::Published);
        }
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort { len: key.len() });
        }
        let (distinct, bits_per_char) = entropy(key);
        if distinct < 12 || bits_per_char < 3.5 {
            return Err(KeyError::LowEntropy {
                distinct,
                bits_per_char,
            });
        }
        if is_patterned(key) {
            return Err(KeyError::Patterned);
        }
        Ok(())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Returns a new key as text: 32 random bytes in unpadded URL-safe base64 (43 characters).
/// This is what `buttress keygen` prints.
///
/// ```
/// let key = buttress::secret::generate_key_string();
/// assert_eq!(key.len(), 43);
/// ```
pub fn generate_key_string() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    bytes.zeroize();
    text
}

fn is_published(key: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(key).to_ascii_lowercase();
    PUBLISHED_KEYS
        .iter()
        .any(|p| lower.contains(&p.to_ascii_lowercase()))
        || PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w))
}

/// Distinct byte values and Shannon entropy in bits per byte.
/// Keyboard rows and the digit row, lower case; a run along one (either way) is a walk.
const KEYBOARD_ROWS: &[&[u8]] = &[b"1234567890", b"qwertyuiop", b"asdfghjkl", b"zxcvbnm"];

/// A repeating unit (`0123…f0123…f`), or a third of the key or more in runs of four or more
/// characters that step along the code points (`abcd`, `9876`) or a keyboard row (`qwer`).
/// A random key of 32+ characters is never flagged: a run of four has odds of about 1 in 10⁵
/// per position.
fn is_patterned(key: &[u8]) -> bool {
    let n = key.len();
    if (1..=n / 2).any(|p| key.iter().skip(p).zip(key).all(|(a, b)| a == b)) {
        return true;
    }
    let lower: Vec<u8> = key.iter().map(u8::to_ascii_lowercase).collect();
    let step = |a: u8, b: u8| {
        a.abs_diff(b) == 1
            || KEYBOARD_ROWS.iter().any(|row| {
                row.windows(2)
                    .any(|w| (w[0] == a && w[1] == b) || (w[0] == b && w[1] == a))
            })
    };
    let (mut in_runs, mut run) = (0, 1);
    for i in 1..=n {
        if i < n && step(lower[i - 1], lower[i]) {
            run += 1;
            continue;
        }
        if run >= 4 {
            in_runs += run;
        }
        run = 1;
    }
    in_runs * 3 >= n
}

fn entropy(key: &[u8]) -> (usize, f64) {
    let mut counts = [0u32; 256];
    for &b in key {
        counts[usize::from(b)] += 1;
    }
    let n = key.len() as f64;
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    let bits = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    (distinct, bits)
}

/// One primary key that signs, plus fallback keys that only verify (for rotation).
///
/// ```
/// use buttress::secret::{Keyring, SecretKey};
/// let old = SecretKey::generate();
/// let ring = Keyring::new(SecretKey::generate(), vec![old]);
/// assert_eq!(ring.derive("session-cookie").fallbacks().len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Keyring {
    primary: SecretKey,
    fallbacks: Vec<SecretKey>,
    ephemeral: bool,
}

impl Keyring {
    /// A keyring from a primary key and verify-only fallback keys.
    pub fn new(primary: SecretKey, fallbacks: Vec<SecretKey>) -> Self {
        Keyring {
            primary,
            fallbacks,
            ephemeral: false,
        }
    }

    /// A keyring with a random key that lives as long as the process: for Development only.
    /// Everything signed with it becomes invalid at the next start.
    ///
    /// ```
    /// let ring = buttress::secret::Keyring::ephemeral();
    /// assert!(ring.is_ephemeral());
    /// ```
    pub fn ephemeral() -> Self {
        Keyring {
            primary: SecretKey::generate(),
            fallbacks: Vec::new(),
            ephemeral: true,
        }
    }

    /// Whether the primary key was generated at start-up rather than configured.
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// The primary key.
    pub fn primary(&self) -> &SecretKey {
        &self.primary
    }

    /// The verify-only fallback keys, newest first.
    pub fn fallbacks(&self) -> &[SecretKey] {
        &self.fallbacks
    }

    /// Derives the 256-bit sub-keys for one purpose: HKDF-SHA256 with the info string
    /// `buttress/v1/<purpose>`. Different purposes give unrelated keys.
    ///
    /// ```
    /// let ring = buttress::secret::Keyring::ephemeral();
    /// assert_eq!(ring.derive("a").primary(), ring.derive("a").primary());
    /// assert_ne!(ring.derive("a").primary(), ring.derive("b").primary());
    /// ```
    pub fn derive(&self, purpose: &str) -> DerivedKeys {
        DerivedKeys {
            primary: derive_one(&self.primary, purpose),
            fallbacks: self
                .fallbacks
                .iter()
                .map(|k| derive_one(k, purpose))
                .collect(),
        }
    }
}

/// The longest [`AppId`].
pub const MAX_APP_ID_LEN: usize = 64;

/// The name of one application among deployments that share a Redis or a database
/// (`BUTTRESS_APP_ID`): every session key, user index and login-throttle key in Redis, and
/// every session row in SQL, carries it, and it is sealed into session cookies, so staging and
/// production sharing a key (or two apps sharing a Redis) never see each other's sessions.
///
/// Unless set, each key has its own, derived from it: `k` and 16 hex digits of its HKDF
/// sub-key for the purpose `app-id` (a one-way function of the key, never the key itself).
/// Two deployments with different keys are then apart with no setting at all; two that share a
/// key must each set their own.
///
/// ```
/// use buttress::secret::{AppId, Keyring, SecretKey};
/// let id = AppId::new("donors-staging")?;
/// assert_eq!(id.as_str(), "donors-staging");
/// assert!(AppId::new("").is_err() && AppId::new("-x").is_err() && AppId::new("a:b").is_err());
/// let key = SecretKey::generate();
/// let derived = AppId::derived(&key);
/// assert_eq!(derived.as_str().len(), 17);
/// assert!(!derived.as_str().contains(std::str::from_utf8(&key.as_bytes()[..8]).unwrap()));
/// # Ok::<(), buttress::secret::AppIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(std::sync::Arc<str>);

/// A `BUTTRESS_APP_ID` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an application id is 1 to {MAX_APP_ID_LEN} letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. donors-production)")]
pub struct AppIdError;

impl AppId {
    /// An explicit application id: 1 to [`MAX_APP_ID_LEN`] ASCII letters, digits, `.`, `_`
    /// or `-`, starting with a letter or digit (so that it can never collide with the markers
    /// Buttress uses for rows that belong to no application).
    ///
    /// ```
    /// assert!(buttress::secret::AppId::new("shop.v2_eu-1").is_ok());
    /// ```
    pub fn new(text: &str) -> Result<AppId, AppIdError> {
        let ok = (1..=MAX_APP_ID_LEN).contains(&text.len())
            && text.as_bytes()[0].is_ascii_alphanumeric()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(AppId(text.into()))
        } else {
            Err(AppIdError)
        }
    }

    /// The id derived from `key` (see [`AppId`]).
    ///
    /// ```
    /// use buttress::secret::{AppId, SecretKey};
    /// let key = SecretKey::generate();
    /// assert_eq!(AppId::derived(&key), AppId::derived(&key));
    /// assert_ne!(AppId::derived(&key), AppId::derived(&SecretKey::generate()));
    /// ```
    pub fn derived(key: &SecretKey) -> AppId {
        let sub = derive_one(key, "app-id");
        let mut text = String::with_capacity(17);
        text.push('k');
        for b in &sub.as_bytes()[..8] {
            text.push_str(&format!("{b:02x}"));
        }
        AppId(text.into())
    }

    /// The id as text.
    ///
    /// ```
    /// assert_eq!(buttress::secret::AppId::new("a1")?.as_str(), "a1");
    /// # Ok::<(), buttress::secret::AppIdError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppId({})", self.0)
    }
}

impl Keyring {
    /// The application id of each key, in verification order (the primary's first): `explicit`
    /// for every key when it is set, else each key's [derived](AppId::derived) id. Values
    /// made under a fallback key carry that key's id, so a rotation keeps them readable.
    ///
    /// ```
    /// use buttress::secret::{AppId, Keyring, SecretKey};
    /// let ring = Keyring::new(SecretKey::generate(), vec![SecretKey::generate()]);
    /// let derived = ring.app_ids(None);
    /// assert_eq!(derived.len(), 2);
    /// assert_ne!(derived[0], derived[1]);
    /// let named = AppId::new("shop")?;
    /// assert_eq!(ring.app_ids(Some(&named)), vec![named.clone(), named]);
    /// # Ok::<(), buttress::secret::AppIdError>(())
    /// ```
    pub fn app_ids(&self, explicit: Option<&AppId>) -> Vec<AppId> {
        std::iter::once(&self.primary)
            .chain(&self.fallbacks)
            .map(|k| explicit.cloned().unwrap_or_else(|| AppId::derived(k)))
            .collect()
    }

    /// The application id of the primary key: what new values are made under.
    ///
    /// ```
    /// let ring = buttress::secret::Keyring::ephemeral();
    /// assert_eq!(ring.app_id(None), ring.app_ids(None)[0]);
    /// ```
    pub fn app_id(&self, explicit: Option<&AppId>) -> AppId {
        explicit
            .cloned()
            .unwrap_or_else(|| AppId::derived(&self.primary))
    }
}

fn derive_one(key: &SecretKey, purpose: &str) -> SubKey {
    let hk = Hkdf::<Sha256>::new(Some(b"buttress-hkdf-salt-v1"), key.as_bytes());
    let mut out = [0u8; 32];
    let info = format!("buttress/v1/{purpose}");
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so this cannot fail.
    if hk.expand(info.as_bytes(), &mut out).is_err() {
        unreachable!("HKDF-SHA256 can always expand 32 bytes");
    }
    SubKey(out)
}

/// A derived 256-bit key, wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SubKey([u8; 32]);

impl SubKey {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's length in bytes (always 32).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for SubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubKey(<redacted>)")
    }
}

/// The sub-keys of one purpose: the primary signs, the fallbacks only verify.
#[derive(Clone, Debug)]
pub struct DerivedKeys {
    primary: SubKey,
    fallbacks: Vec<SubKey>,
}

impl DerivedKeys {
    /// The key to sign or encrypt with.
    pub fn primary(&self) -> &SubKey {
        &self.primary
    }

    /// Keys that may still verify or decrypt older values.
    pub fn fallbacks(&self) -> &[SubKey] {
        &self.fallbacks
    }

    /// The primary key, then the fallbacks: the order to try when verifying.
    pub fn verification_order(&self) -> impl Iterator<Item = &SubKey> {
        std::iter::once(&self.primary).chain(self.fallbacks.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        key: &'static [u8],
        ok: bool,
    }

    #[test]
    fn strength_rules() {
        let cases = [
            Case {
                name: "empty",
                key: b"",
                ok: false,
            },
            Case {
                name: "short",
                key: b"Xk3#pQ9!aZ",
                ok: false,
            },
            Case {
                name: "repeated",
                key: &[b'a'; 64],
                ok: false,
            },
            Case {
                name: "two letters",
                key: b"abababababababababababababababababababab",
                ok: false,
            },
            Case {
                name: "placeholder",
                key: b"please-changeme-before-deploying-this-app-4u",
                ok: false,
            },
            Case {
                name: "flask docs",
                key: b"_5#y2L\"F4Q8z\\n\\xec]/",
                ok: false,
            },
            Case {
                name: "django insecure",
                key: b"django-insecure-8s7d6f5g4h3j2k1l0q9w8e7r6t5y4u3i2o1p",
                ok: false,
            },
            Case {
                name: "readme example",
                key: b"btr_example_do_not_use_8f3c1a9e7b6d5c4f2e1d0c9b8a7f6e5d",
                ok: false,
            },
            Case {
                name: "keyboard walk",
                key: b"qwertyuiopasdfghjklzxcvbnm123456",
                ok: false,
            },
            Case {
                name: "repeating hex",
                key: b"0123456789abcdef0123456789abcdef",
                ok: false,
            },
            Case {
                name: "alphabet run",
                key: b"abcdefghijklmnopqrstuvwxyzABCDEF0123",
                ok: false,
            },
            Case {
                name: "published value inside",
                key: b"my-super-secret-flask-app-key-2024!",
                ok: false,
            },
            Case {
                name: "random base64",
                key: b"q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E",
                ok: true,
            },
            Case {
                name: "random hex",
                key: b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                ok: true,
            },
        ];
        for case in cases {
            let result = SecretKey::from_bytes(case.key.to_vec()).check_strength();
            assert_eq!(result.is_ok(), case.ok, "{}: {result:?}", case.name);
        }
    }

    #[test]
    fn generated_keys_are_strong_and_distinct() {
        for _ in 0..2_000 {
            let text = generate_key_string();
            SecretKey::from_bytes(text.clone().into_bytes())
                .check_strength()
                .unwrap_or_else(|e| panic!("keygen's output {text} refused: {e}"));
            let a = SecretKey::generate();
            a.check_strength().expect("a generated key is strong");
            assert_ne!(a.as_bytes(), SecretKey::generate().as_bytes());
        }
    }

    #[test]
    fn purposes_and_keys_separate() {
        let ring = Keyring::new(SecretKey::generate(), vec![SecretKey::generate()]);
        let s = ring.derive("session");
        assert_ne!(s.primary(), ring.derive("csrf").primary());
        assert_ne!(s.primary(), &s.fallbacks()[0]);
        assert_eq!(s.verification_order().count(), 2);
    }

    #[test]
    fn hkdf_is_deterministic_for_a_key() {
        let key = SecretKey::from_bytes(b"q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E".to_vec());
        let a = Keyring::new(key.clone(), vec![]).derive("p");
        let b = Keyring::new(key, vec![]).derive("p");
        assert_eq!(a.primary(), b.primary());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = SecretKey::from_bytes(b"q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E".to_vec());
        let ring = Keyring::new(key, vec![]);
        let text = format!("{ring:?} {:?}", ring.derive("x"));
        assert!(!text.contains("q3Jx9"), "{text}");
        assert!(text.contains("redacted"));
    }

    #[test]
    fn key_file_drops_trailing_newline() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("key");
        std::fs::write(&file, "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E\n").expect("write");
        let key = SecretKey::from_file(&file).expect("read");
        assert_eq!(key.as_bytes().len(), 43);
        let missing =
            SecretKey::from_file(Path::new("/nonexistent/key")).expect_err("missing file");
        assert!(matches!(missing, KeyError::File { .. }));
    }
}

/// A URL that may carry credentials (a database, Redis or SMTP URL). Its `Debug` and `Display`
/// hide the user and password, so settings printed for a diagnosis (`{:?}`) and error messages
/// never show them; [`ConnectionUrl::expose`] gives the whole URL to the client that connects.
///
/// ```
/// use buttress::secret::ConnectionUrl;
/// let url = ConnectionUrl::new("postgres://app:hunter2@db/portal");
/// assert_eq!(format!("{url:?}"), "\"postgres://***@db/portal\"");
/// assert_eq!(url.to_string(), "postgres://***@db/portal");
/// assert_eq!(url.expose(), "postgres://app:hunter2@db/portal");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// Wraps `url` (not checked here: whoever parses it checks its scheme).
    pub fn new(url: impl Into<String>) -> Self {
        ConnectionUrl(url.into())
    }

    /// The whole URL, password included: only for the client that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_userinfo(&self.0))
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_userinfo(&self.0))
    }
}

/// `value` with the user and password of a URL (`postgres://app:pw@db/x`,
/// `redis://:pw@cache`) replaced by `***`, so that an error about a database or Redis URL never
/// shows its password. Anything without `scheme://…@` comes back unchanged.
pub(crate) fn redact_userinfo(value: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = value.find("://").map(|i| i + 3) else {
        // Not a URL (a typo such as `redis//:pw@host`): whatever precedes an `@` may be a
        // password all the same.
        return match value.rfind('@') {
            Some(at) => format!("***{}", &value[at..]).into(),
            None => value.into(),
        };
    };
    let authority_end = value[start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| start + i);
    match value[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &value[..start], &value[start + at..]).into(),
        None => value.into(),
    }
}

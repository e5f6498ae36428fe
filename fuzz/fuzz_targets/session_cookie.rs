//! Session cookie decoding never panics and never opens a value it did not make.
#![no_main]

use buttress::secret::{Keyring, SecretKey};
use buttress::session::codec::CookieCodec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::from_bytes(b"q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E".to_vec());
    let codec = CookieCodec::new(Keyring::new(key, vec![]).derive("session-cookie"), "__Host-session");
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(codec.decode(text).is_err(), "a forged cookie opened");
    }
});

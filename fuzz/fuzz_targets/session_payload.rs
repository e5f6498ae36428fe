//! The session plaintext decoder (what an authentic cookie holds) never panics on any bytes, and
//! whatever it accepts survives a whole cookie round trip unchanged.
#![no_main]

use buttress::fuzzing::session_plaintext;
use buttress::secret::{Keyring, SecretKey};
use buttress::session::codec::CookieCodec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(session) = session_plaintext(data) else {
        return;
    };
    let key = SecretKey::from_bytes(b"q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E".to_vec());
    let codec = CookieCodec::new(Keyring::new(key, vec![]).derive("session-cookie"), "s");
    // Too large for a cookie is a clean error; anything else must open to the same session.
    if let Ok(value) = codec.encode(&session) {
        let opened = codec.decode(&value).expect("a cookie we made opens");
        assert_eq!(opened.data, session);
    }
});

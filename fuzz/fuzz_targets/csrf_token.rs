//! CSRF token parsing never panics and never accepts arbitrary input for a fixed secret.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secret = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";
    if let Ok(text) = std::str::from_utf8(data) {
        // A random 64-byte string unmasks to the secret with probability 2^-256.
        assert!(!buttress::csrf::verify_token(text, secret) || text.len() == 86);
        let _ = buttress::csrf::verify_token(secret, text);
    }
});

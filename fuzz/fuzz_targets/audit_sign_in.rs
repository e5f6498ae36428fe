//! `--header NAME:VALUE` and `--cookie NAME=VALUE`: whatever is accepted cannot split a request
//! (no CR, LF or control character in a value, a token for a name), and masking leaves no accepted value in any text.
#![no_main]

use buttress_audit::sign_in::{SignIn, MIN_REDACTED_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (arg, page) = text.split_once('\n').unwrap_or((&text, ""));
    for (parsed, sep) in [
        (SignIn::new().header_arg(arg), ':'),
        (SignIn::new().cookie_arg(arg), '='),
    ] {
        let value = arg.split_once(sep).map_or("", |(_, v)| v);
        match parsed {
            Ok(s) => {
                for (name, v) in s.headers() {
                    assert!(!name.is_empty());
                    assert!(v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)));
                }
                let secret = value.trim_matches([' ', '\t']);
                if secret.chars().count() >= MIN_REDACTED_LEN {
                    let mut t = format!("{page}{secret}{page}");
                    s.redact(&mut t);
                    assert!(!t.contains(secret));
                }
            }
            // Messages name the flag and the name, never the value (unit-tested).
            Err(e) => drop(e.to_string()),
        }
    }
});

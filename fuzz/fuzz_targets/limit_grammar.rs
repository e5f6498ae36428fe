//! Limit-string parsing never panics; an error points inside the text at a character boundary;
//! whatever parses renders to a string that parses back to the same limits.
#![no_main]

use buttress::ratelimit::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match text.parse::<Limits>() {
        Ok(limits) => {
            let rendered = limits.to_string();
            let again: Limits = rendered.parse().expect("rendered limits parse");
            assert_eq!(again, limits);
        }
        Err(e) => {
            assert!(e.position() <= text.len());
            assert!(text.is_char_boundary(e.position()));
        }
    }
});

//! The scanner's lenient Set-Cookie parser reads any field without panicking, and what it
//! reports is consistent with the attributes it found.
#![no_main]

use buttress_audit::cookie::SetCookie;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(c) = SetCookie::parse(&text) {
        assert!(!c.name.is_empty() || !c.value.is_empty());
        if c.prefix_problem().is_some() {
            assert!(c.has_prefix());
        }
        if c.is_deletion() {
            assert!(c.max_age.is_some_and(|a| a <= 0));
        }
        let _ = (c.summary(), c.is_session_like(), c.same_site_valid());
    }
});

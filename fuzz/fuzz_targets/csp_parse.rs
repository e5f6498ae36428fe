//! CSP parsing never panics, and whatever parses renders to a policy that parses again to the
//! same rendering.
#![no_main]

use buttress::headers::Csp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(csp) = Csp::parse(text) {
        let rendered = csp.render("NONCE", true);
        let again = Csp::parse(&rendered).expect("a rendered policy parses");
        assert_eq!(again.render("NONCE", true), rendered);
    }
});

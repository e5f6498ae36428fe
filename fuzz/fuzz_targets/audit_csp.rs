//! The scanner's judging CSP parser reads any header without panicking, and its judgement
//! covers every detail check exactly once.
#![no_main]

use buttress_audit::csp::{judge, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (enforced, report_only) = text.split_once('\n').unwrap_or((&text, ""));
    let e = Policy::parse_list(enforced);
    let r = Policy::parse_list(report_only);
    for p in &e {
        for (name, _) in &p.directives {
            assert_eq!(name, &name.to_ascii_lowercase());
            assert!(p.get(name).is_some());
        }
    }
    let j = judge(&e, &r);
    assert_eq!(j.len(), 10);
    // The evidence and the full report render without panicking either.
    let _ = judge(&r, &e);
});

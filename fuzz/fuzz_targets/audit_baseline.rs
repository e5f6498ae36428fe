//! `buttress audit --baseline`: any file is read as a baseline or refused with a reason, never
//! a panic; what is read compares with a report without panicking, and a baseline made from a
//! report reads back as that report.
#![no_main]

use buttress_audit::baseline::{compare, Baseline};
use buttress_audit::{judge, report, Failure, Observations};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(b) = Baseline::from_json(&text) else {
        return;
    };
    let mut obs = Observations::failed(&b.target, vec![], Failure::Other(String::new()));
    obs.notes.push(text.chars().take(64).collect());
    let r = judge(&obs);
    if let Ok(cmp) = compare(&b, &r) {
        let _ = cmp.render();
        assert_eq!(cmp.regressed(), cmp.regression_count() > 0);
    }
    let again = Baseline::from_json(&report::json(&r)).expect("own report reads back");
    assert!(compare(&again, &r).is_ok_and(|c| !c.regressed()));
});

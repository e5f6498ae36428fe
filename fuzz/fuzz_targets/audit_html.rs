//! The scanner's HTML tokenizer (forms, links) and leak signatures never panic on any page.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for f in buttress_audit::html::forms(&text) {
        let _ = (f.is_unsafe(), f.has_token());
    }
    // Links come each once, at most MAX_LINKS of them (the tokenizer is linear on any page).
    let links = buttress_audit::html::links(&text);
    assert!(links.len() <= buttress_audit::html::MAX_LINKS);
    let distinct: std::collections::HashSet<&String> = links.iter().collect();
    assert_eq!(distinct.len(), links.len());
    if let Some(l) = buttress_audit::leaks::find_leak(&text) {
        assert!(!l.snippet.is_empty());
    }
    let _ = buttress_audit::leaks::is_listing(&text);
});

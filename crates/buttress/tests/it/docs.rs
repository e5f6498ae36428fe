//! The README documents every setting and every checklist id.

#[test]
fn readme_lists_every_setting_and_check_id() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    for (key, _, _) in buttress::settings::KEYS {
        let var = buttress::settings::env_name(key);
        assert!(readme.contains(&format!("`{var}`")), "README misses {var}");
    }
    let check_src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/check.rs"))
        .expect("check.rs");
    let mut ids: Vec<&str> = check_src
        .match_indices("\"BTR-")
        .map(|(i, _)| &check_src[i + 1..i + 9])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert!(ids.len() > 15, "{ids:?}");
    for id in ids {
        assert!(readme.contains(&format!("`{id}`")), "README misses {id}");
    }
}

//! The README's settings table is the settings' own table ([`buttress::settings::KEYS`]),
//! rendered; its checklist table lists every id `buttress check` can report. Run with
//! `BUTTRESS_BLESS=1` to rewrite the README's tables from the code.

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");

/// The settings table as the README shows it.
fn settings_table() -> String {
    let mut out = String::from("| variable | TOML key | what | default |\n|---|---|---|---|\n");
    for key in buttress::settings::KEYS {
        let cell = |text: &str| text.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            buttress::settings::env_name(key.key),
            key.key,
            cell(key.doc),
            cell(key.default)
        ));
    }
    out
}

/// The text between `<!-- name -->` and `<!-- /name -->`, and the README with `table` there.
fn section(readme: &str, name: &str, table: &str) -> (String, String) {
    let (open, close) = (format!("<!-- {name} -->\n"), format!("<!-- /{name} -->"));
    let start = readme.find(&open).expect("opening marker") + open.len();
    let end = readme.find(&close).expect("closing marker");
    let current = readme[start..end].to_owned();
    let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
    (current, updated)
}

#[test]
fn readme_settings_table_is_the_settings_table() {
    let readme = std::fs::read_to_string(README).expect("README.md");
    let table = settings_table();
    let (current, updated) = section(&readme, "settings-table", &table);
    if std::env::var_os("BUTTRESS_BLESS").is_some() {
        std::fs::write(README, updated).expect("write README.md");
        return;
    }
    assert_eq!(
        current, table,
        "the README's settings table differs from settings::KEYS; run `BUTTRESS_BLESS=1 cargo test -p buttress --test it docs` and commit README.md"
    );
}

#[test]
fn readme_lists_every_check_id() {
    let readme = std::fs::read_to_string(README).expect("README.md");
    let catalogue = buttress::check::CATALOGUE;
    assert!(catalogue.len() > 15, "{catalogue:?}");
    for entry in catalogue {
        assert!(
            readme.contains(&format!("| `{}` | {} |", entry.id, entry.severity.as_str())),
            "README misses {} ({})",
            entry.id,
            entry.summary
        );
    }
}

//! The import graph of a crate's modules, read from its sources, and the circles in it.
//!
//! DESIGN.md: "imports point one way: concerns depend on leaves, never on each other in a
//! circle". [`module_graph`] reads every `.rs` file below a module's folder and records which
//! of that module's children (the nodes) name which others through `crate::`, `super::` or
//! `self::` paths (grouped `use` lists included), outside comments and test code (a file named
//! `tests.rs` and anything after a `#[cfg(test)]`). A path to an item the parent re-exports
//! (`super::SessionError`, `crate::RequestContext`) counts for the child that defines it, as the
//! parent's `pub use child::…` lines say; an item the parent defines itself is no node.
//! [`circles`] then lists every edge that has a way back.
//!
//! Written by hand: the crates that parse Rust (`syn`) would need every file to parse and
//! still resolve no paths; a text scan of paths is enough to keep imports pointing one way.
//!
//! ```
//! let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
//! let graph = buttress_testkit::imports::module_graph(src, &[]);
//! assert!(buttress_testkit::imports::circles(&graph).is_empty(), "{graph:#?}");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which child modules each child module names (both by file or folder name under the parent).
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// The graph among the children of module `module` (its path from the crate root, `&[]` for
/// the crate's top-level modules) of the crate whose `src` folder is `src`.
///
/// # Panics
/// When the folder or a file cannot be read (a test helper: the test fails there).
pub fn module_graph(src: &Path, module: &[&str]) -> Graph {
    let module: Vec<String> = module.iter().map(|m| (*m).to_owned()).collect();
    let dir = module.iter().fold(src.to_path_buf(), |d, m| d.join(m));
    let parent_file = if module.is_empty() {
        ["lib.rs", "main.rs"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
    } else {
        Some(dir.join("mod.rs")).filter(|p| p.is_file())
    };
    let reexports = parent_file
        .as_deref()
        .map(|p| reexports(&read(p)))
        .unwrap_or_default();
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let mut graph = Graph::new();
    for file in files {
        if Some(&file) == parent_file.as_ref() {
            continue;
        }
        let path = file_module_path(src, &file);
        let Some(node) = path.get(module.len()).cloned() else {
            continue;
        };
        graph.entry(node.clone()).or_default();
        for used in referenced_paths(&code_of(&read(&file)), &path) {
            let Some(rest) = used.strip_prefix(module.as_slice()) else {
                continue;
            };
            let Some(first) = rest.first() else { continue };
            let target = reexports.get(first).unwrap_or(first);
            if *target != node && is_child(&dir, target) {
                graph
                    .entry(node.clone())
                    .or_default()
                    .insert(target.clone());
            }
        }
    }
    graph
}

/// Every edge `from -> to` from which `to` leads back to `from`, as `"from -> to -> … -> from"`.
pub fn circles(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (from, uses) in graph {
        for to in uses {
            let mut seen = BTreeSet::new();
            let mut stack = vec![to.clone()];
            while let Some(m) = stack.pop() {
                if &m == from {
                    found.push(format!("{from} -> {to} -> … -> {from}"));
                    break;
                }
                if seen.insert(m.clone()) {
                    stack.extend(graph.get(&m).into_iter().flatten().cloned());
                }
            }
        }
    }
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn is_child(dir: &Path, name: &str) -> bool {
    dir.join(format!("{name}.rs")).is_file() || dir.join(name).join("mod.rs").is_file()
}

/// The `.rs` files below `dir` that are not test modules.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
    out.sort();
}

/// The module path of a file: `session/handle/commit.rs` -> `[session, handle, commit]`,
/// `session/mod.rs` -> `[session]`.
fn file_module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("a file under src");
    let mut path: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = path.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib" | "main") {
            path.push(stem.to_owned());
        }
    }
    path
}

/// The code of a file without test code and comment lines.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| l.split(" // ").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The absolute module paths (from the crate root) that `code` names, written in module `at`.
fn referenced_paths(code: &str, at: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(start) {
            let preceded = i > 0 && {
                let b = bytes[i - 1];
                b.is_ascii_alphanumeric() || b == b'_' || b == b':'
            };
            if preceded {
                continue;
            }
            let mut base: Vec<String> = match start {
                "crate::" => Vec::new(),
                _ => at.to_vec(),
            };
            let mut rest = &code[i..];
            // Leading `super::`/`self::`/`crate::` segments.
            loop {
                if let Some(r) = rest.strip_prefix("crate::") {
                    rest = r;
                } else if let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                } else if let Some(r) = rest.strip_prefix("self::") {
                    rest = r;
                } else {
                    break;
                }
            }
            expand(rest, &base, &mut out);
        }
    }
    out
}

/// Appends the paths that `rest` (what follows a path prefix `base`) names: one identifier,
/// or a `{…}` group whose items each name one.
fn expand(rest: &str, base: &[String], out: &mut Vec<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        for item in top_level_items(group) {
            let item = item.trim();
            let item = item.strip_prefix("self::").unwrap_or(item);
            expand(item, base, out);
        }
        return;
    }
    let ident: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if ident == "self" {
        if !base.is_empty() {
            out.push(base.to_vec());
        }
        return;
    }
    if ident.is_empty() {
        return;
    }
    let mut path = base.to_vec();
    path.push(ident);
    out.push(path);
}

/// The comma-separated items of a `{…}` group up to its closing brace.
fn top_level_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// What a parent module re-exports from its children: `pub use child::{A, B}` maps `A` and
/// `B` to `child` (any `pub(…)` visibility, grouped or not, renames by their new name).
fn reexports(parent: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let code = code_of(parent);
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub") else {
            continue;
        };
        let rest = match rest.trim_start().strip_prefix('(') {
            Some(r) => r.split_once(')').map_or("", |(_, r)| r),
            None => rest,
        };
        let Some(path) = rest.trim_start().strip_prefix("use ") else {
            continue;
        };
        let path = path.trim().strip_prefix("self::").unwrap_or(path.trim());
        let Some((child, items)) = path.split_once("::") else {
            continue;
        };
        if child.contains(['{', ' ']) {
            continue;
        }
        let items = items.trim();
        let names: Vec<&str> = match items.strip_prefix('{') {
            Some(group) => top_level_items(group),
            None => vec![items],
        };
        for name in names {
            let name = name.trim();
            let last = name.rsplit(" as ").next().unwrap_or(name);
            let last = last.rsplit("::").next().unwrap_or(last).trim();
            if !last.is_empty() && !last.starts_with('{') {
                map.insert(last.to_owned(), child.to_owned());
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_from_where_they_are_written() {
        let at: Vec<String> = ["session", "handle"].map(String::from).to_vec();
        let code = "use super::layer::{Config, Mode};\nuse super::{store::Cas, SessionError};\nlet x = crate::context::RequestContext::of(e);\nuse self::inner::X;";
        let got = referenced_paths(code, &at);
        let want: Vec<Vec<String>> = [
            vec!["session", "layer"],
            vec!["session", "store"],
            vec!["session", "SessionError"],
            vec!["context"],
            vec!["session", "handle", "inner"],
        ]
        .iter()
        .map(|p| p.iter().map(|s| (*s).to_owned()).collect())
        .collect();
        for w in &want {
            assert!(got.contains(w), "{w:?} not in {got:?}");
        }
        assert_eq!(got.len(), want.len(), "{got:?}");
    }

    #[test]
    fn reexports_map_names_to_children() {
        let map = reexports(
            "pub use handle::{Session, SessionInfo};\npub(crate) use layer::{begin_seen, Config};\npub use store::{Cas, StoreError as E};\nuse std::sync::Arc;",
        );
        assert_eq!(map.get("Session").map(String::as_str), Some("handle"));
        assert_eq!(map.get("Config").map(String::as_str), Some("layer"));
        assert_eq!(map.get("E").map(String::as_str), Some("store"));
        assert!(!map.contains_key("Arc"));
    }

    #[test]
    fn a_circle_is_found_and_a_line_is_not() {
        let mut g = Graph::new();
        g.entry("a".into()).or_default().insert("b".into());
        g.entry("b".into()).or_default().insert("c".into());
        assert!(circles(&g).is_empty());
        g.entry("c".into()).or_default().insert("a".into());
        assert_eq!(circles(&g).len(), 3);
    }
}

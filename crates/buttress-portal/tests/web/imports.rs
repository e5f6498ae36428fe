//! Imports point one way in the portal too (DESIGN.md: "never on each other in a circle"): no
//! two of its modules, nor two of the web module's, import each other, directly or through
//! others. Read from the sources by [`buttress_testkit::imports`], as the library's test does.

use std::path::Path;

use buttress_testkit::imports::{circles, module_graph};

fn src() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

#[test]
fn no_portal_module_imports_one_that_imports_it_back() {
    let graph = module_graph(src(), &[]);
    assert!(
        graph.contains_key("db") && graph.contains_key("query"),
        "{graph:?}"
    );
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "import circles: {found:#?}\ngraph: {graph:#?}"
    );
}

#[test]
fn no_web_module_imports_one_that_imports_it_back() {
    let graph = module_graph(src(), &["web"]);
    assert!(graph.len() > 3, "{graph:?}");
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "import circles in web: {found:#?}\ngraph: {graph:#?}"
    );
}

//! Imports point one way (DESIGN.md: "concerns depend on leaves, never on each other in a
//! circle"): no two top-level modules of the library import each other, directly or through
//! others, and neither do the submodules of the larger concerns. Read from the sources by
//! [`buttress_testkit::imports`].

use std::path::Path;

use buttress_testkit::imports::{circles, module_graph};

fn src() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = module_graph(src(), &[]);
    assert!(graph.len() > 10, "{graph:?}");
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "import circles: {found:#?}\ngraph: {graph:#?}"
    );
}

#[test]
fn no_session_submodule_imports_one_that_imports_it_back() {
    let graph = module_graph(src(), &["session"]);
    assert!(
        graph.contains_key("layer") && graph.contains_key("handle"),
        "{graph:?}"
    );
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "import circles in session: {found:#?}\ngraph: {graph:#?}"
    );
}

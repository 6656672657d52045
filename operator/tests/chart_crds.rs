//! The Helm chart ships exactly the CRDs the code generates (`crds/`, itself checked against
//! the Rust types by the drift test in `api::crd`). Helm installs `charts/*/crds/` before the
//! templates and never upgrades them; docs/operations.md says how to upgrade CRDs.

use std::collections::BTreeMap;
use std::path::Path;

fn yaml_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(e.path()).expect("read CRD file");
            (name, text)
        })
        .collect()
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root");
    let generated = yaml_files(&root.join("crds"));
    let chart = yaml_files(&root.join("charts/rbox-operator/crds"));
    assert!(!generated.is_empty(), "crds/ is empty");
    assert_eq!(
        generated.keys().collect::<Vec<_>>(),
        chart.keys().collect::<Vec<_>>(),
        "charts/rbox-operator/crds/ must hold the same files as crds/: run `make crds`"
    );
    for (name, text) in &generated {
        assert!(
            chart[name] == *text,
            "charts/rbox-operator/crds/{name} differs from crds/{name}: run `make crds`"
        );
    }
}

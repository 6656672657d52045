//! The CustomResourceDefinitions generated from the types, as objects and as the YAML files
//! checked in under `crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{DovecotFleet, MailCluster, MailPool};

/// The command that rewrites `crds/` and `docs/api.md` from the types (quoted in test failures).
pub const REGENERATE: &str = "cargo run -p rbox-operator -- crd --out crds/ --doc docs/api.md";

/// Every CRD of the API, in dependency order (cluster, pool, fleet).
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![MailCluster::crd(), MailPool::crd(), DovecotFleet::crd()]
}

/// The file name of a CRD under `crds/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!(
        "{}.yaml",
        crd.spec.names.plural.clone() + "." + &crd.spec.group
    )
}

/// One CRD as the YAML document written to `crds/` (a header comment says it is generated).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, yaml_serde::Error> {
    let body = yaml_serde::to_string(crd)?;
    Ok(format!(
        "# Generated from the Rust types in operator/src/api; do not edit.\n# Regenerate: {REGENERATE}\n{body}"
    ))
}

/// All CRDs as one multi-document YAML stream (what `rbox-operator crd` prints).
pub fn all_yaml() -> Result<String, yaml_serde::Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}

/// `rbox-operator crd`: print the CRDs, or write them (and the API reference) to files.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// Write one file per CRD into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Also write the field reference (Markdown) to this file.
    #[arg(long, value_name = "FILE")]
    pub doc: Option<std::path::PathBuf>,
}

/// Run `rbox-operator crd`.
pub fn run(args: &CrdArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            for crd in all() {
                let path = dir.join(file_name(&crd));
                std::fs::write(&path, to_yaml(&crd)?)
                    .with_context(|| format!("write {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
        None if args.doc.is_none() => print!("{}", all_yaml()?),
        None => {}
    }
    if let Some(path) = &args.doc {
        std::fs::write(path, super::doc::markdown(&all()))
            .with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

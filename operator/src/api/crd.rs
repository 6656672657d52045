//! The CustomResourceDefinitions generated from the types, as objects and as the YAML files
//! checked in under `crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{DovecotFleet, MailCluster, MailPool};

/// The command that rewrites `crds/`, `docs/api.md` and the chart's copy of the CRDs from the
/// types (quoted in test failures). It runs `rbox-operator crd --out crds/ --doc docs/api.md`.
pub const REGENERATE: &str = "make crds";

/// Every CRD of the API, in dependency order (cluster, pool, fleet), with tidied descriptions
/// and the rules on `metadata.name` (use these, not `Kind::crd()`).
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut fleet = DovecotFleet::crd();
    add_root_rule(
        &mut fleet,
        "self.metadata.name.size() <= 52 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "metadata.name of a DovecotFleet must be a DNS label of at most 52 characters (lower-case letters, digits and '-', starting with a letter): its StatefulSet, pods and Services are named after it",
    );
    vec![tidy(MailCluster::crd()), tidy(MailPool::crd()), tidy(fleet)]
}

/// A CEL rule on the whole object: the derive has no attribute for the root of a schema that
/// derives `JsonSchema`, and only the root sees `metadata.name`.
fn add_root_rule(crd: &mut CustomResourceDefinition, rule: &str, message: &str) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema
                .x_kubernetes_validations
                .get_or_insert_with(Vec::new)
                .push(ValidationRule {
                    rule: rule.into(),
                    message: Some(message.into()),
                    // (fieldPath cannot point into metadata; the message names the field.)
                    ..Default::default()
                });
        }
    }
}

/// Doc comments arrive with the source's line breaks; `kubectl explain` wraps text itself, so
/// single line breaks inside a paragraph become spaces (paragraphs and list items stay).
fn tidy(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    tidy_schema(&mut value);
    serde_json::from_value(value).unwrap_or(crd)
}

fn tidy_schema(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(s) if key == "description" => *s = unwrap_lines(s),
                    _ => tidy_schema(v),
                }
            }
            // schemars writes `uint32`/`uint64` for unsigned integers; the API server warns
            // about formats it does not know on every apply. `minimum: 0` says it already.
            if matches!(
                map.get("format").and_then(|f| f.as_str()),
                Some("uint32" | "uint64" | "uint16" | "uint8")
            ) {
                map.remove("format");
            }
        }
        serde_json::Value::Array(list) => list.iter_mut().for_each(tidy_schema),
        _ => {}
    }
}

/// Join lines of a paragraph with spaces; keep blank lines and lines that start a list item.
pub(crate) fn unwrap_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let lines: Vec<&str> = s.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            let prev = lines[i - 1];
            let starts_item =
                line.trim_start().starts_with("- ") || line.trim_start().starts_with("* ");
            if line.is_empty() || prev.is_empty() || starts_item {
                out.push('\n');
            } else {
                out.push(' ');
            }
        }
        out.push_str(line);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// `crds/` is what the types generate: one file per CRD, nothing else, byte for byte.
    #[test]
    fn crds_directory_matches_the_types() {
        let dir = repo().join("crds");
        let mut expected: Vec<String> = all().iter().map(file_name).collect();
        expected.sort();
        let mut present: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| {
                panic!(
                    "read {}: {e}; regenerate with `{REGENERATE}`",
                    dir.display()
                )
            })
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        present.sort();
        assert_eq!(
            present, expected,
            "crds/ holds other files than the types generate; regenerate with `{REGENERATE}`"
        );
        for crd in all() {
            let path = dir.join(file_name(&crd));
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            let generated = to_yaml(&crd).unwrap();
            assert!(
                on_disk == generated,
                "{} differs from what the Rust types generate; regenerate with `{REGENERATE}`",
                path.display()
            );
        }
    }

    /// `docs/api.md` is what the schema generates.
    #[test]
    fn api_reference_matches_the_types() {
        let path = repo().join("docs/api.md");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == super::super::doc::markdown(&all()),
            "{} differs from what the schema generates; regenerate with `{REGENERATE}`",
            path.display()
        );
    }

    #[test]
    fn descriptions_keep_paragraphs_and_list_items() {
        assert_eq!(unwrap_lines("a\nb\n\nc\n- d\n- e"), "a b\n\nc\n- d\n- e");
    }
}

//! The field reference (`docs/api.md`), generated from the CRD schemas so it cannot drift:
//! `rbox-operator crd --doc docs/api.md` writes it and a test compares.

use std::fmt::Write as _;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// Fields whose type is a Kubernetes core type: documented by name, not expanded
/// (`kubectl explain` shows them in full).
const EXTERNAL_TYPES: &[(&str, &str)] = &[
    ("spec.imagePullSecrets", "core/v1 LocalObjectReference list"),
    ("spec.resources", "core/v1 ResourceRequirements"),
    ("spec.scheduling.affinity", "core/v1 Affinity"),
    ("spec.scheduling.tolerations", "core/v1 Toleration list"),
    (
        "spec.scheduling.topologySpreadConstraints",
        "core/v1 TopologySpreadConstraint list",
    ),
    ("status.conditions", "meta/v1 Condition list"),
    ("status.lastCanary.time", "meta/v1 Time"),
];

/// One documented field.
#[derive(Debug)]
pub struct Field {
    pub path: String,
    pub type_: String,
    pub required: bool,
    pub default: Option<String>,
    pub validation: Vec<String>,
    pub description: String,
}

/// Every field of a CRD's schema below `spec` and `status`, depth first, in schema order.
pub fn fields(crd: &CustomResourceDefinition) -> Vec<Field> {
    let mut out = Vec::new();
    let Some(schema) = schema_of(crd) else {
        return out;
    };
    for top in ["spec", "status"] {
        if let Some(s) = schema.pointer(&format!("/properties/{top}")) {
            let required = schema
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|x| x == top));
            walk(top, s, required, &mut out);
        }
    }
    out
}

fn schema_of(crd: &CustomResourceDefinition) -> Option<Value> {
    let version = crd.spec.versions.first()?;
    let schema = version.schema.as_ref()?.open_api_v3_schema.as_ref()?;
    serde_json::to_value(schema).ok()
}

fn walk(path: &str, schema: &Value, required: bool, out: &mut Vec<Field>) {
    let external = EXTERNAL_TYPES.iter().find(|(p, _)| *p == path);
    let type_ = match external {
        Some((_, t)) => t.to_string(),
        None => type_name(schema),
    };
    out.push(Field {
        path: path.to_string(),
        type_,
        required,
        default: schema.get("default").map(|d| d.to_string()),
        validation: validation(schema),
        description: schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    });
    if external.is_some() {
        return;
    }
    let required_children: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(
                &format!("{path}.{name}"),
                child,
                required_children.contains(&name.as_str()),
                out,
            );
        }
    }
    if let Some(items) = schema.get("items")
        && items.get("properties").is_some()
    {
        walk(&format!("{path}[]"), items, false, out);
    }
}

fn type_name(schema: &Value) -> String {
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return "quantity (int or string)".into();
    }
    let t = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    match t {
        "array" => {
            let inner = schema.get("items").map(type_name).unwrap_or_default();
            format!("{inner} list")
        }
        "object" if schema.get("properties").is_none() => {
            match schema.get("additionalProperties") {
                Some(v) => format!("map of {}", type_name(v)),
                None => "object".into(),
            }
        }
        "string" if schema.get("enum").is_some() => "enum".into(),
        "string" if schema.get("format").and_then(Value::as_str) == Some("date-time") => {
            "timestamp".into()
        }
        other => other.to_string(),
    }
}

fn validation(schema: &Value) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = e
            .iter()
            .filter_map(Value::as_str)
            .map(|s| format!("`{s}`"))
            .collect();
        v.push(format!("one of {}", values.join(", ")));
    }
    let num = |k: &str| schema.get(k).and_then(Value::as_f64).map(|n| n.to_string());
    match (num("minimum"), num("maximum")) {
        (Some(a), Some(b)) => v.push(format!("{a} to {b}")),
        (Some(a), None) => v.push(format!("≥ {a}")),
        (None, Some(b)) => v.push(format!("≤ {b}")),
        (None, None) => {}
    }
    let int = |k: &str| schema.get(k).and_then(Value::as_u64);
    match (int("minLength"), int("maxLength")) {
        (Some(a), Some(b)) => v.push(format!("length {a} to {b}")),
        (Some(a), None) => v.push(format!("length ≥ {a}")),
        (None, Some(b)) => v.push(format!("length ≤ {b}")),
        (None, None) => {}
    }
    match (int("minItems"), int("maxItems")) {
        (Some(a), Some(b)) => v.push(format!("{a} to {b} items")),
        (Some(a), None) => v.push(format!("≥ {a} items")),
        (None, Some(b)) => v.push(format!("≤ {b} items")),
        (None, None) => {}
    }
    if let Some(n) = int("maxProperties") {
        v.push(format!("≤ {n} entries"));
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        v.push(format!("pattern `{p}`"));
    }
    if let Some(items) = schema.get("items") {
        let inner = validation(items);
        if !inner.is_empty() {
            v.push(format!("each: {}", inner.join("; ")));
        }
    }
    for rule in rules(schema) {
        if rule.rule == "self == oldSelf" {
            v.push("immutable".into());
        } else {
            v.push(format!("rule: {}", rule.message));
        }
    }
    v
}

/// A CEL rule of a schema node.
#[derive(Debug)]
pub struct Rule {
    pub rule: String,
    pub message: String,
}

/// The `x-kubernetes-validations` of one schema node.
pub fn rules(schema: &Value) -> Vec<Rule> {
    schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|r| Rule {
                    rule: r
                        .get("rule")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    message: r
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Table cells cannot hold `|` or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
        .replace("\n\n", "<br>")
        .replace('\n', " ")
}

/// The whole reference as Markdown.
pub fn markdown(crds: &[CustomResourceDefinition]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# API reference: `mail.rbox.io/v1alpha1`\n\n\
         Generated from the CRD schemas (the Rust types in `operator/src/api`) by `{}`\n\
         (`rbox-operator crd --out crds/ --doc docs/api.md`); a test fails when this file is out\n\
         of date. `kubectl explain <kind>.<field>` shows the same descriptions.\n\n\
         Columns: **Default** is applied by the API server; **Validation** is enforced by the API\n\
         server (patterns, ranges, enums and CEL rules; *immutable* fields reject any change after\n\
         creation).\n",
        super::crd::REGENERATE
    );
    for crd in crds {
        let names = &crd.spec.names;
        let short = names.short_names.clone().unwrap_or_default().join(", ");
        let _ = writeln!(md, "## {}\n", names.kind);
        let _ = writeln!(
            md,
            "`kubectl get {}` (short name: `{short}`), namespaced.\n",
            names.plural
        );
        if let Some(schema) = schema_of(crd) {
            if let Some(d) = schema.get("description").and_then(Value::as_str) {
                let _ = writeln!(md, "{d}\n");
            }
            for rule in rules(&schema) {
                let _ = writeln!(md, "Rule on the whole object: {}.\n", rule.message);
            }
        }
        if let Some(cols) = crd
            .spec
            .versions
            .first()
            .and_then(|v| v.additional_printer_columns.as_ref())
        {
            let list: Vec<String> = cols
                .iter()
                .map(|c| {
                    if c.priority.unwrap_or(0) > 0 {
                        format!("{} (`-o wide`)", c.name)
                    } else {
                        c.name.clone()
                    }
                })
                .collect();
            let _ = writeln!(md, "Columns of `kubectl get`: {}.\n", list.join(", "));
        }
        let _ = writeln!(
            md,
            "| Field | Type | Required | Default | Validation | Description |\n\
             | --- | --- | --- | --- | --- | --- |"
        );
        for f in fields(crd) {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} |",
                f.path,
                cell(&f.type_),
                if f.required { "yes" } else { "" },
                f.default
                    .as_deref()
                    .map(|d| format!("`{}`", cell(d)))
                    .unwrap_or_default(),
                cell(&f.validation.join("; ")),
                cell(&f.description),
            );
        }
        md.push('\n');
    }
    md
}

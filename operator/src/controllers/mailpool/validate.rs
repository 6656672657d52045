//! Pure checks of a MailPool spec, on top of the schema's CEL rules (a spec applied before the
//! CRD carried them, or edited through a path that skips them, still gets a clear error).

use crate::api::{MailPoolSpec, PoolSettings};
use crate::ceph::pool::RESERVED_PARAMETERS;
use crate::controllers::ceph_errors::Error;

use super::build::parse_quantity;

pub fn validate(spec: &MailPoolSpec) -> Result<(), Error> {
    if spec.data.name == spec.index.name {
        return Err(Error::Invalid(format!(
            "data.name and index.name are both {:?}: mail bodies and the omap index live in two pools",
            spec.data.name
        )));
    }
    if spec.index.erasure_coded.is_some() {
        return Err(Error::Invalid(
            "index must be replicated: omap (the mail index) does not exist on erasure-coded pools"
                .into(),
        ));
    }
    pool(&spec.data, "data")?;
    pool(&spec.index, "index")?;
    Ok(())
}

fn pool(p: &PoolSettings, field: &str) -> Result<(), Error> {
    match (&p.replicated, &p.erasure_coded) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(Error::Invalid(format!(
                "{field}: set exactly one of replicated or erasureCoded"
            )));
        }
        (Some(r), None) => {
            if r.size == 0 {
                return Err(Error::Invalid(format!(
                    "{field}.replicated.size must be at least 1"
                )));
            }
            if r.size == 1 && !r.allow_size_one {
                return Err(Error::Invalid(format!(
                    "{field}.replicated.size 1 keeps a single copy of every mail: set allowSizeOne: true to accept that"
                )));
            }
            if let Some(ms) = r.min_size
                && (ms == 0 || ms > r.size)
            {
                return Err(Error::Invalid(format!(
                    "{field}.replicated.minSize {ms} must be between 1 and size {}",
                    r.size
                )));
            }
        }
        (None, Some(ec)) => {
            if ec.k < 2 || ec.m < 1 {
                return Err(Error::Invalid(format!(
                    "{field}.erasureCoded needs k >= 2 and m >= 1 (got k={} m={})",
                    ec.k, ec.m
                )));
            }
        }
    }
    for key in p.parameters.keys() {
        if RESERVED_PARAMETERS.contains(&key.as_str()) {
            return Err(Error::Invalid(format!(
                "{field}.parameters.{key} is set by a typed field; use that field instead"
            )));
        }
    }
    if let Some(q) = &p.quota
        && let Some(b) = &q.max_bytes
    {
        parse_quantity(&b.0).map_err(|e| Error::Invalid(format!("{field}.quota.maxBytes: {e}")))?;
    }
    if let Some(r) = p.target_size_ratio
        && !(r.is_finite() && r >= 0.0)
    {
        return Err(Error::Invalid(format!(
            "{field}.targetSizeRatio must be a non-negative number"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MailPool;

    fn spec(yaml: &str) -> MailPoolSpec {
        let mp: MailPool = yaml_serde::from_str(yaml).unwrap();
        mp.spec
    }

    const BASE: &str = r#"
apiVersion: mail.rbox.io/v1alpha1
kind: MailPool
metadata: {name: mail, namespace: ns}
spec:
  clusterRef: {name: ceph}
  data: {name: mail-data, replicated: {size: 1, allowSizeOne: true}, failureDomain: osd}
  index: {name: mail-index, replicated: {size: 1, allowSizeOne: true}, failureDomain: osd}
"#;

    #[test]
    fn the_base_fixture_is_valid() {
        validate(&spec(BASE)).unwrap();
    }

    #[test]
    fn size_one_needs_the_explicit_opt_in() {
        let s = spec(&BASE.replace(
            "{size: 1, allowSizeOne: true}, failureDomain: osd}\n  index",
            "{size: 1}, failureDomain: osd}\n  index",
        ));
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("allowSizeOne"), "{e}");
    }

    #[test]
    fn erasure_coded_index_is_refused() {
        let s = spec(&BASE.replace(
            "index: {name: mail-index, replicated: {size: 1, allowSizeOne: true}",
            "index: {name: mail-index, erasureCoded: {k: 2, m: 1}",
        ));
        assert!(validate(&s).unwrap_err().to_string().contains("omap"));
    }

    #[test]
    fn same_pool_twice_and_reserved_parameters_are_refused() {
        let s = spec(&BASE.replace("name: mail-index", "name: mail-data"));
        assert!(validate(&s).unwrap_err().to_string().contains("two pools"));
        let s = spec(&BASE.replace(
            "failureDomain: osd}\n  index",
            "failureDomain: osd, parameters: {size: \"3\"}}\n  index",
        ));
        assert!(
            validate(&s)
                .unwrap_err()
                .to_string()
                .contains("parameters.size")
        );
    }

    #[test]
    fn bad_quota_is_a_clear_error() {
        let s = spec(&BASE.replace(
            "failureDomain: osd}\n  index",
            "failureDomain: osd, quota: {maxBytes: 12Qi}}\n  index",
        ));
        assert!(validate(&s).unwrap_err().to_string().contains("maxBytes"));
    }
}

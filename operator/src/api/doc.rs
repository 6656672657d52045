//! The field reference (`docs/api.md`), generated from the CRD schemas.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub fn markdown(_crds: &[CustomResourceDefinition]) -> String {
    String::new()
}

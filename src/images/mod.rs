//! Which images a workload runs, each with the JSON field path a developer can find it at.
//!
//! Start at [`extract`]: given a kind and its object, it walks the pod spec of Pod, Deployment,
//! ReplicaSet, StatefulSet, DaemonSet, Job, CronJob and ReplicationController, over
//! `containers`, `initContainers` and `ephemeralContainers`, and over the OCI image volumes
//! (`volumes[].image.reference`, GA and on by default since Kubernetes 1.35): an image a Pod
//! mounts is content it runs with, so it needs the same evidence as one it runs.

mod reference;

pub use reference::{canonical_host, Digest, DigestError, ImageRef, ParseReferenceError, DEFAULT_REGISTRY};

use serde_json::Value;

/// One image of a workload, where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadImage {
    /// JSON field path of the image, e.g. `spec.template.spec.initContainers[0].image`.
    pub path: String,
    /// The container's name, or the image volume's, when the object gives one.
    pub container: String,
    /// The reference as written in the object.
    pub image: String,
}

/// Why the images of an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The kind carries no pod template trustgate knows of.
    #[error("kind {0} is not a workload kind trustgate evaluates")]
    NotAWorkload(String),
    /// The object is a workload but its pod spec is not where the kind puts it.
    #[error("{kind} has no pod spec at {path}")]
    NoPodSpec { kind: String, path: String },
    /// A container list or image field has the wrong type.
    #[error("{path} is not {expected}")]
    Malformed { path: String, expected: &'static str },
}

/// The field path to the pod spec of each workload kind.
pub fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicationController" => {
            &["spec", "template", "spec"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// The pod spec of a workload object, if it has one where its kind puts it.
pub fn pod_spec<'a>(kind: &str, object: &'a Value) -> Option<&'a Value> {
    pod_spec_path(kind)?.iter().try_fold(object, |v, key| v.get(key))
}

const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// Every image of `object` (of kind `kind`), in the order the object lists them.
pub fn extract(kind: &str, object: &Value) -> Result<Vec<WorkloadImage>, ExtractError> {
    let path = pod_spec_path(kind).ok_or_else(|| ExtractError::NotAWorkload(kind.to_owned()))?;
    let mut spec = object;
    for key in path {
        spec = spec.get(key).ok_or_else(|| ExtractError::NoPodSpec { kind: kind.to_owned(), path: path.join(".") })?;
    }
    let prefix = path.join(".");
    let mut images = Vec::new();
    for list in CONTAINER_LISTS {
        let containers = match spec.get(list) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(containers)) => containers,
            Some(_) => return Err(ExtractError::Malformed { path: format!("{prefix}.{list}"), expected: "a list" }),
        };
        for (i, container) in containers.iter().enumerate() {
            let path = format!("{prefix}.{list}[{i}].image");
            let image = match container.get("image") {
                Some(Value::String(s)) => s.clone(),
                // The API server rejects a container without an image; an ephemeral container
                // being removed may lack one. Nothing runs from it, so nothing to check.
                None | Some(Value::Null) => continue,
                Some(_) => return Err(ExtractError::Malformed { path, expected: "a string" }),
            };
            let container = container.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            images.push(WorkloadImage { path, container, image });
        }
    }
    let volumes = match spec.get("volumes") {
        None | Some(Value::Null) => return Ok(images),
        Some(Value::Array(volumes)) => volumes,
        Some(_) => return Err(ExtractError::Malformed { path: format!("{prefix}.volumes"), expected: "a list" }),
    };
    for (i, volume) in volumes.iter().enumerate() {
        let source = match volume.get("image") {
            None | Some(Value::Null) => continue,
            Some(source @ Value::Object(_)) => source,
            Some(_) => {
                return Err(ExtractError::Malformed {
                    path: format!("{prefix}.volumes[{i}].image"),
                    expected: "an object",
                })
            }
        };
        let path = format!("{prefix}.volumes[{i}].image.reference");
        let image = match source.get("reference") {
            Some(Value::String(s)) => s.clone(),
            // The API server requires a reference; an object without one must not mount
            // something unnamed unchecked, so it is refused rather than skipped.
            None | Some(Value::Null) => return Err(ExtractError::Malformed { path, expected: "an image reference" }),
            Some(_) => return Err(ExtractError::Malformed { path, expected: "a string" }),
        };
        let name = volume.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        images.push(WorkloadImage { path, container: name, image });
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn pod_spec() -> Value {
        json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "app", "image": "registry.acme.io/app:v1"}, {"name": "side", "image": "envoy"}],
            "ephemeralContainers": [{"name": "debug", "image": "debug:1"}],
            "volumes": [
                {"name": "cache", "emptyDir": {}},
                {"name": "model", "image": {"reference": "registry.acme.io/models/llm:v3", "pullPolicy": "IfNotPresent"}}
            ]
        })
    }

    #[rstest]
    #[case("Pod", json!({"spec": pod_spec()}), "spec")]
    #[case("Deployment", json!({"spec": {"template": {"spec": pod_spec()}}}), "spec.template.spec")]
    #[case("ReplicaSet", json!({"spec": {"template": {"spec": pod_spec()}}}), "spec.template.spec")]
    #[case("StatefulSet", json!({"spec": {"template": {"spec": pod_spec()}}}), "spec.template.spec")]
    #[case("DaemonSet", json!({"spec": {"template": {"spec": pod_spec()}}}), "spec.template.spec")]
    #[case("Job", json!({"spec": {"template": {"spec": pod_spec()}}}), "spec.template.spec")]
    #[case("ReplicationController", json!({"spec": {"template": {"spec": pod_spec()}}}), "spec.template.spec")]
    #[case("CronJob", json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec()}}}}}), "spec.jobTemplate.spec.template.spec")]
    fn every_kind_and_container_list(#[case] kind: &str, #[case] object: Value, #[case] prefix: &str) {
        let images = extract(kind, &object).unwrap();
        let got: Vec<(String, &str, &str)> =
            images.iter().map(|i| (i.path.clone(), i.container.as_str(), i.image.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (format!("{prefix}.initContainers[0].image"), "init", "busybox"),
                (format!("{prefix}.containers[0].image"), "app", "registry.acme.io/app:v1"),
                (format!("{prefix}.containers[1].image"), "side", "envoy"),
                (format!("{prefix}.ephemeralContainers[0].image"), "debug", "debug:1"),
                (format!("{prefix}.volumes[1].image.reference"), "model", "registry.acme.io/models/llm:v3"),
            ]
        );
    }

    #[test]
    fn non_workloads_and_malformed_objects_are_named() {
        assert_eq!(extract("ConfigMap", &json!({"data": {}})), Err(ExtractError::NotAWorkload("ConfigMap".into())));
        assert_eq!(
            extract("Deployment", &json!({"spec": {}})),
            Err(ExtractError::NoPodSpec { kind: "Deployment".into(), path: "spec.template.spec".into() })
        );
        assert_eq!(
            extract("Pod", &json!({"spec": {"containers": "nginx"}})),
            Err(ExtractError::Malformed { path: "spec.containers".into(), expected: "a list" })
        );
        assert_eq!(
            extract("Pod", &json!({"spec": {"containers": [{"image": 5}]}})),
            Err(ExtractError::Malformed { path: "spec.containers[0].image".into(), expected: "a string" })
        );
    }

    #[test]
    fn malformed_image_volumes_are_named() {
        assert_eq!(
            extract("Pod", &json!({"spec": {"volumes": [{"name": "v", "image": {}}]}})),
            Err(ExtractError::Malformed {
                path: "spec.volumes[0].image.reference".into(),
                expected: "an image reference"
            })
        );
        assert_eq!(
            extract("Pod", &json!({"spec": {"volumes": [{"name": "v", "image": "nginx"}]}})),
            Err(ExtractError::Malformed { path: "spec.volumes[0].image".into(), expected: "an object" })
        );
        assert_eq!(
            extract("Pod", &json!({"spec": {"volumes": {"name": "v"}}})),
            Err(ExtractError::Malformed { path: "spec.volumes".into(), expected: "a list" })
        );
    }

    #[test]
    fn a_pod_without_containers_has_no_images() {
        assert_eq!(extract("Pod", &json!({"spec": {}})).unwrap(), vec![]);
    }
}

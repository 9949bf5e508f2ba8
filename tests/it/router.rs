//! Router tests: captured-format AdmissionReview v1 bodies of every workload kind through
//! `server::router` with `oneshot`, and the bad inputs the webhook must answer clearly.
//!
//! The policies here need no registry (`requireDigest` and allow-lists), so these tests pin
//! the wire handling, field paths and modes; the registry-backed cases live in
//! [`crate::registry`] and [`crate::server`].

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use rstest::rstest;
use serde_json::{json, Value};
use tower::ServiceExt;
use trustgate::evidence::RegistryConfig;
use trustgate::server::{probe_router, router, AppState, Settings};

const POLICIES: &str = r#"
apiVersion: trustgate.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: apps-by-digest}
spec:
  images: [{glob: "registry.acme.io/apps/**"}]
  requireDigest: true
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: tools-warn}
spec:
  images: [{glob: "registry.acme.io/tools/**"}]
  mode: warn
  requireDigest: true
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: legacy-audit}
spec:
  images: [{glob: "registry.acme.io/legacy/*"}]
  mode: audit
  requireDigest: true
"#;

fn state(settings: Settings) -> AppState {
    crate::common::webhook::app_state(
        POLICIES,
        RegistryConfig { timeout: Duration::from_secs(1), ..Default::default() },
        settings,
    )
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/admission/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn post(state: AppState, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
    let request = Request::post("/validate?timeout=5s").header("content-type", "application/json").body(body.into());
    let response = router(state).oneshot(request.unwrap()).await.unwrap();
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn review(value: &Value) -> Value {
    let (status, body) = post(state(Settings::default()), serde_json::to_vec(value).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], value["request"]["uid"], "the response must echo the request uid");
    answer["response"].clone()
}

/// Points a fixture's pod spec at `f`.
fn edit_pod_spec(review: &mut Value, f: impl FnOnce(&mut Value)) {
    let object = &mut review["request"]["object"];
    let spec = if object["kind"] == "Pod" {
        &mut object["spec"]
    } else if object["kind"] == "CronJob" {
        &mut object["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &mut object["spec"]["template"]["spec"]
    };
    f(spec)
}

#[rstest]
#[case("pod", "spec")]
#[case("deployment", "spec.template.spec")]
#[case("replicaset", "spec.template.spec")]
#[case("statefulset", "spec.template.spec")]
#[case("daemonset", "spec.template.spec")]
#[case("job", "spec.template.spec")]
#[case("cronjob", "spec.jobTemplate.spec.template.spec")]
#[case("replicationcontroller", "spec.template.spec")]
#[tokio::test]
async fn every_workload_kind_is_evaluated_with_field_paths(#[case] name: &str, #[case] prefix: &str) {
    // As captured: the init container's tag governed by a warn policy, the container by digest.
    let mut r = fixture(&format!("create-{name}"));
    let response = review(&r).await;
    assert_eq!(response["allowed"], true, "{response}");
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with(&format!(
            "trustgate: {prefix}.initContainers[0].image registry.acme.io/tools/migrate:v3: policy \"tools-warn\": \
             referenced by tag, but the policy requires a digest"
        )),
        "{warning}"
    );

    // The app container by tag: enforce denies, naming the container path and the fix.
    edit_pod_spec(&mut r, |spec| spec["containers"][0]["image"] = json!("registry.acme.io/apps/api:v2"));
    let response = review(&r).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    let kind = r["request"]["kind"]["kind"].as_str().unwrap();
    assert!(message.starts_with(&format!("trustgate denied {kind} shop/api:\n")), "{message}");
    assert!(
        message.contains(&format!(
            "{prefix}.containers[0].image registry.acme.io/apps/api:v2: policy \"apps-by-digest\": \
             referenced by tag, but the policy requires a digest; reference the image by digest: \
             registry.acme.io/apps/api@sha256:<digest>"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn ephemeral_containers_and_unmatched_images_are_denied() {
    let mut r = fixture("create-pod");
    edit_pod_spec(&mut r, |spec| spec["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]));
    let response = review(&r).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "spec.ephemeralContainers[0].image busybox: no ClusterImagePolicy governs docker.io/library/busybox"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn audit_mode_admits_without_warnings() {
    let mut r = fixture("create-pod");
    edit_pod_spec(&mut r, |spec| {
        spec["initContainers"] = json!([]);
        spec["containers"][0]["image"] = json!("registry.acme.io/legacy/app:1");
    });
    let response = review(&r).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("warnings").is_none_or(Value::is_null), "{response}");
}

#[tokio::test]
async fn delete_and_connect_are_admitted_without_evaluation() {
    for op in ["DELETE", "CONNECT"] {
        let mut r = fixture("create-pod");
        r["request"]["operation"] = json!(op);
        edit_pod_spec(&mut r, |spec| spec["containers"][0]["image"] = json!("unmatched.io/x"));
        assert_eq!(review(&r).await["allowed"], true, "{op}");
    }
}

#[tokio::test]
async fn update_evaluates_only_images_that_changed() {
    let mut r = fixture("create-deployment");
    edit_pod_spec(&mut r, |spec| spec["initContainers"] = json!([]));
    r["request"]["operation"] = json!("UPDATE");
    // Already running an image no policy matches: a scale or label change must not fail.
    edit_pod_spec(&mut r, |spec| spec["containers"][0]["image"] = json!("unmatched.io/old:1"));
    r["request"]["oldObject"] = r["request"]["object"].clone();
    assert_eq!(review(&r).await["allowed"], true);
    // A new image is evaluated.
    edit_pod_spec(&mut r, |spec| spec["containers"][0]["image"] = json!("unmatched.io/new:2"));
    let response = review(&r).await;
    assert_eq!(response["allowed"], false);
    assert!(response["status"]["message"].as_str().unwrap().contains("unmatched.io/new:2"));
}

#[tokio::test]
async fn a_non_workload_is_admitted_with_a_warning() {
    let mut r = fixture("create-pod");
    r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    r["request"]["object"] = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}, "data": {}});
    let response = review(&r).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(response["warnings"][0], "trustgate: ConfigMap is not a workload kind it evaluates; admitted unchecked");
}

/// Issue 9, case 3: an absurd `?timeout=` panicked the handler (an empty reply); it is now
/// answered like any other review, with the default deadline.
#[tokio::test]
async fn an_absurd_timeout_is_answered_not_a_panic() {
    for timeout in ["10000000000000000000000s", "99999999999999999999999h", "-1s", "1e9s", "%FF"] {
        let body = serde_json::to_vec(&fixture("create-pod")).unwrap();
        let request = Request::post(format!("/validate?timeout={timeout}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = router(state(Settings::default())).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{timeout}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["response"]["uid"], fixture("create-pod")["request"]["uid"], "{timeout}");
    }
}

/// `request.kind` says where the images are; an object of another kind would hide them there.
#[tokio::test]
async fn an_object_of_another_kind_than_the_request_is_denied() {
    let mut r = fixture("create-pod");
    r["request"]["object"] = fixture("create-deployment")["request"]["object"].clone();
    let response = review(&r).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        "trustgate denied Pod shop/api: the request is for a Pod, but its object is a Deployment"
    );
    r["request"]["object"].as_object_mut().unwrap().remove("kind");
    let response = review(&r).await;
    assert_eq!(response["allowed"], false);
    assert!(response["status"]["message"].as_str().unwrap().ends_with("but its object has no kind"), "{response}");
}

/// An image a Pod mounts (`volumes[].image`) is evaluated like one it runs, in every kind.
#[rstest]
#[case("create-pod", "spec")]
#[case("create-deployment", "spec.template.spec")]
#[case("create-cronjob", "spec.jobTemplate.spec.template.spec")]
#[tokio::test]
async fn image_volumes_are_evaluated_with_their_field_path(#[case] name: &str, #[case] prefix: &str) {
    let mut r = fixture(name);
    let digest = format!("sha256:{}", "0".repeat(64));
    edit_pod_spec(&mut r, |spec| {
        for c in spec["containers"].as_array_mut().unwrap() {
            c["image"] = json!(format!("registry.acme.io/apps/api@{digest}"));
        }
        spec.as_object_mut().unwrap().remove("initContainers");
        spec["volumes"] = json!([
            {"name": "scratch", "emptyDir": {}},
            {"name": "model", "image": {"reference": "registry.acme.io/apps/model:v1", "pullPolicy": "IfNotPresent"}}
        ]);
    });
    let response = review(&r).await;
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "{prefix}.volumes[1].image.reference registry.acme.io/apps/model:v1: policy \"apps-by-digest\": referenced by tag"
        )),
        "{message}"
    );
    assert!(!message.contains("containers["), "the containers are pinned: {message}");
    // Pinned too: admitted.
    edit_pod_spec(&mut r, |spec| {
        spec["volumes"][1]["image"]["reference"] = json!(format!("registry.acme.io/apps/model@{digest}"))
    });
    assert_eq!(review(&r).await["allowed"], true);
}

#[tokio::test]
async fn a_malformed_workload_is_denied_with_the_field() {
    let mut r = fixture("create-deployment");
    edit_pod_spec(&mut r, |spec| spec["containers"] = json!("nginx"));
    let response = review(&r).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        "trustgate denied Deployment shop/api: spec.template.spec.containers is not a list"
    );
}

#[tokio::test]
async fn non_json_is_a_bad_request() {
    let (status, body) = post(state(Settings::default()), "this is not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).starts_with("not an AdmissionReview"), "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn missing_uid_is_a_bad_request() {
    let mut r = fixture("create-pod");
    r["request"]["uid"] = json!("");
    let (status, body) = post(state(Settings::default()), serde_json::to_vec(&r).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(String::from_utf8_lossy(&body), "AdmissionReview request has no uid");
    r["request"].as_object_mut().unwrap().remove("uid");
    let (status, _) = post(state(Settings::default()), serde_json::to_vec(&r).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_wrong_api_version_is_answered_and_explained() {
    let mut r = fixture("create-pod");
    r["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let response = review(&r).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "trustgate speaks AdmissionReview admission.k8s.io/v1, not AdmissionReview admission.k8s.io/v1beta1"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_readable_uid_with_an_unreadable_request_is_denied_not_dropped() {
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-1", "operation": 7}});
    let (status, bytes) = post(state(Settings::default()), serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["uid"], "u-1");
    assert_eq!(answer["response"]["allowed"], false);
    assert!(answer["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .starts_with("trustgate could not read this AdmissionReview"));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_and_the_api_servers_3mib_fits() {
    let settings = Settings { max_body_bytes: 6 << 20, ..Settings::default() };
    let mut r = fixture("create-pod");
    // A 3 MiB object (the API server's own cap) must be read.
    r["request"]["object"]["metadata"]["annotations"] = json!({"big": "x".repeat(3 << 20)});
    let (status, _) = post(state(settings), serde_json::to_vec(&r).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(state(settings), vec![b' '; (6 << 20) + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn ten_thousand_containers_get_a_capped_answer() {
    let mut r = fixture("create-pod");
    let containers: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("c{i}"), "image": format!("registry.acme.io/apps/c{i}:v1")}))
        .collect();
    edit_pod_spec(&mut r, |spec| {
        spec["initContainers"] = json!([]);
        spec["containers"] = Value::Array(containers);
    });
    let started = std::time::Instant::now();
    let response = review(&r).await;
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert_eq!(message.lines().count(), 1 + 20 + 1, "a headline, 20 lines and a count");
    assert!(message.ends_with("… and 9980 more"), "{}", &message[message.len() - 100..]);
}

#[tokio::test]
async fn probes_and_metrics() {
    let s = state(Settings::default());
    s.serving.store(true, std::sync::atomic::Ordering::Release);
    s.ready.store(false, std::sync::atomic::Ordering::Release);
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let probes = probe_router(s.clone());
    assert_eq!(probes.clone().oneshot(get("/healthz")).await.unwrap().status(), StatusCode::OK);
    assert_eq!(probes.clone().oneshot(get("/readyz")).await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    s.ready.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(probes.clone().oneshot(get("/readyz")).await.unwrap().status(), StatusCode::OK);

    // Cluster mode: a stopped policy watcher makes the replica not ready at once, and says why.
    let mut cluster = s.clone();
    let health = trustgate::cluster::PolicyHealth::default();
    cluster.policy_health = Some(health.clone());
    let cluster_probes = probe_router(cluster);
    health.stopped("it panicked (a bug)".into());
    let response = cluster_probes.clone().oneshot(get("/readyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body).starts_with("not ready: the ClusterImagePolicy watcher is restarting"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(cluster_probes.clone().oneshot(get("/healthz")).await.unwrap().status(), StatusCode::OK);
    health.synced();
    assert_eq!(cluster_probes.oneshot(get("/readyz")).await.unwrap().status(), StatusCode::OK);

    let mut r = fixture("create-pod");
    edit_pod_spec(&mut r, |spec| spec["containers"][0]["image"] = json!("unmatched.io/x"));
    post(s.clone(), serde_json::to_vec(&r).unwrap()).await;
    let body = probes.oneshot(get("/metrics")).await.unwrap().into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains(r#"trustgate_admission_requests_total{decision="denied"} 1"#), "{text}");
    assert!(text.contains("trustgate_admission_duration_seconds_bucket"), "{text}");
    assert!(text.contains("trustgate_evidence_bytes_in_use 0"), "{text}");
    assert!(text.contains("trustgate_verifications_running 0"), "{text}");
}

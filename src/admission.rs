//! AdmissionReview v1 in, AdmissionReview v1 out.
//!
//! Start at [`review`]. Anything with a readable `request.uid` gets an AdmissionReview back
//! (HTTP 200); a denial is a value in it, not an error. Only a body with no uid to answer to
//! gets HTTP 400. DELETE and CONNECT are admitted; an UPDATE is evaluated only for images the
//! old object did not already run.

use std::collections::HashSet;
use std::sync::Arc;

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::DynamicObject;
use serde_json::Value;
use tokio::time::Instant;

use crate::decision::{capped, Decision};
use crate::engine::Engine;
use crate::evidence::Credentials;
use crate::images::{self, ExtractError, WorkloadImage};
use crate::policy::{Labels, NAMESPACE_NAME_LABEL};

/// The only AdmissionReview version trustgate speaks (the API server sends v1 when a webhook
/// lists it first in `admissionReviewVersions`).
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// What the HTTP layer sends back.
#[derive(Debug)]
pub enum HttpReply {
    /// HTTP 200 with this AdmissionReview; `decision` labels the metrics.
    Review { body: Vec<u8>, decision: &'static str },
    /// HTTP 400: there is no uid to answer to.
    BadRequest(String),
}

/// What the webhook knows of the cluster: namespace labels and pull secrets.
#[async_trait::async_trait]
pub trait ClusterView: Send + Sync {
    /// The labels of a namespace, for `namespaceSelector`.
    fn labels(&self, namespace: &str) -> Labels;
    /// Registry credentials of a pod spec's pull secrets (and its service account's).
    async fn pull_credentials(&self, namespace: &str, pod_spec: &Value) -> Credentials;
}

/// File mode: a namespace is known only by its name label; no pull secrets.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCluster;

#[async_trait::async_trait]
impl ClusterView for NoCluster {
    fn labels(&self, namespace: &str) -> Labels {
        Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned())])
    }
    async fn pull_credentials(&self, _: &str, _: &Value) -> Credentials {
        Credentials::default()
    }
}

/// Answers one AdmissionReview body before `deadline`.
pub async fn review(engine: &Arc<Engine>, body: &[u8], deadline: Instant, context: &dyn ClusterView) -> HttpReply {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return match salvage_uid(body) {
                Some(uid) => reject(uid, format!("trustgate could not read this AdmissionReview: {e}")),
                None => HttpReply::BadRequest(format!("not an AdmissionReview ({e})")),
            };
        }
    };
    let version_ok = review.types.api_version == API_VERSION && review.types.kind == "AdmissionReview";
    let Some(request) = review.request.as_ref() else {
        return HttpReply::BadRequest("AdmissionReview has no request".into());
    };
    if request.uid.is_empty() {
        return HttpReply::BadRequest("AdmissionReview request has no uid".into());
    }
    if !version_ok {
        let (v, k) = (&review.types.api_version, &review.types.kind);
        return reject(request.uid.clone(), format!("trustgate speaks AdmissionReview {API_VERSION}, not {k} {v}; list v1 in the webhook's admissionReviewVersions"));
    }
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        // Checked above; answered all the same if it ever were not.
        Err(_) => return HttpReply::BadRequest("AdmissionReview has no request".into()),
    };
    let started = std::time::Instant::now();
    let (response, decision) = evaluate(engine, &request, deadline, context).await;
    let review = response.into_review();
    tracing::debug!(uid = %request.uid, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "answered");
    HttpReply::Review { body: to_json(&review), decision }
}

/// An AdmissionReview's JSON. Serialising one cannot fail (string keys, no floats that are not
/// finite); should it, the answer is an error review, which the API server treats per its
/// failure policy, rather than a panic.
fn to_json(review: &AdmissionReview<DynamicObject>) -> Vec<u8> {
    serde_json::to_vec(review).unwrap_or_else(|e| {
        tracing::error!(error = %e, "an AdmissionReview did not serialise");
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec()
    })
}

/// Best effort at the uid of a body that does not deserialise as an AdmissionReview.
fn salvage_uid(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("request")?.get("uid")?.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn reject(uid: String, message: String) -> HttpReply {
    let mut response = AdmissionResponse::invalid(message);
    response.uid = uid;
    HttpReply::Review { body: to_json(&response.into_review()), decision: "error" }
}

fn subject(request: &AdmissionRequest<DynamicObject>) -> String {
    let name = if !request.name.is_empty() {
        request.name.clone()
    } else {
        request
            .object
            .as_ref()
            .and_then(|o| o.metadata.generate_name.clone())
            .map(|g| format!("{g}*"))
            .unwrap_or_default()
    };
    match &request.namespace {
        Some(ns) => format!("{} {ns}/{name}", request.kind.kind),
        None => format!("{} {name}", request.kind.kind),
    }
}

async fn evaluate(
    engine: &Arc<Engine>,
    request: &AdmissionRequest<DynamicObject>,
    deadline: Instant,
    context: &dyn ClusterView,
) -> (AdmissionResponse, &'static str) {
    let allow = AdmissionResponse::from(request);
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return (allow, "allowed");
    }
    let subject = subject(request);
    let Some(object) = &request.object else {
        return (allow.deny(format!("trustgate denied {subject}: the request carries no object to evaluate")), "error");
    };
    let kind = request.kind.kind.as_str();
    // Images are read where `request.kind` puts them; an object of another shape would hide
    // them there (defence in depth: the API server sends matching kinds).
    let object_kind = object.types.as_ref().map(|t| t.kind.as_str());
    if object_kind != Some(kind) {
        let said = object_kind.map_or_else(|| "has no kind".to_owned(), |k| format!("is a {k}"));
        return (
            allow.deny(format!("trustgate denied {subject}: the request is for a {kind}, but its object {said}")),
            "error",
        );
    }
    let mut images = match images::extract(kind, &object.data) {
        Ok(images) => images,
        Err(ExtractError::NotAWorkload(_)) => {
            let mut r = allow;
            r.warnings =
                Some(vec![format!("trustgate: {kind} is not a workload kind it evaluates; admitted unchecked")]);
            return (r, "allowed");
        }
        Err(e) => return (allow.deny(format!("trustgate denied {subject}: {e}")), "error"),
    };
    if request.operation == Operation::Update {
        if let Some(old) = &request.old_object {
            let before: HashSet<String> =
                images::extract(kind, &old.data).unwrap_or_default().into_iter().map(|i| i.image).collect();
            images.retain(|i| !before.contains(&i.image));
        }
    }
    if images.is_empty() {
        return (allow, "allowed");
    }
    let namespace = request.namespace.clone().unwrap_or_default();
    let pull = match images::pod_spec(kind, &object.data) {
        Some(spec) => context.pull_credentials(&namespace, spec).await,
        None => Credentials::default(),
    };
    let decision = engine.evaluate_with(&images, &context.labels(&namespace), Arc::new(pull), deadline).await;
    log_decision(request, &subject, &images, &decision);
    respond(allow, &subject, &decision)
}

fn respond(allow: AdmissionResponse, subject: &str, decision: &Decision) -> (AdmissionResponse, &'static str) {
    let mut response = allow;
    if !decision.warnings.is_empty() {
        response.warnings = Some(capped(&decision.warnings).into_iter().map(|w| format!("trustgate: {w}")).collect());
    }
    if decision.allowed {
        let label = if decision.warnings.is_empty() { "allowed" } else { "warned" };
        return (response, label);
    }
    let mut response = response.deny(decision.message(subject));
    response.result.code = 403;
    response.result.reason = "Forbidden".into();
    (response, "denied")
}

fn log_decision(
    request: &AdmissionRequest<DynamicObject>,
    subject: &str,
    images: &[WorkloadImage],
    decision: &Decision,
) {
    // One line per decision, of bounded size: a 10,000-image object logs 20 of them and a count.
    let mut listed: Vec<&str> = images.iter().take(crate::decision::MAX_LINES).map(|i| i.image.as_str()).collect();
    let more = images.len().saturating_sub(listed.len());
    let more_images = format!("… and {more} more");
    if more > 0 {
        listed.push(&more_images);
    }
    let images = listed;
    let outcome = if !decision.allowed {
        "denied"
    } else if !decision.warnings.is_empty() {
        "warned"
    } else {
        "allowed"
    };
    tracing::info!(
        uid = %request.uid,
        namespace = request.namespace.as_deref().unwrap_or_default(),
        object = subject,
        operation = ?request.operation,
        dry_run = request.dry_run,
        images = ?images,
        outcome,
        denials = ?capped(&decision.denials),
        warnings = ?capped(&decision.warnings),
        audits = ?capped(&decision.audits),
        "admission decision"
    );
}

//! The policy watcher: lists and watches `ClusterImagePolicy` objects, compiles them (reading
//! the Secrets behind `secretRef`s), publishes the set to the engine's [`PolicyStore`], and writes
//! each policy's `Ready` condition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::Event;
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde_json::json;

use super::{watcher, PolicyHealth};
use crate::policy::{ClusterImagePolicy, DefaultTrustRoot, Policy, PolicySet, PolicyStore, SecretKeyRef};

/// How often policies are recompiled without a change, to pick up rotated Secret keys.
pub const RESYNC: Duration = Duration::from_secs(30);

pub(super) async fn run(
    client: Client,
    policies: PolicyStore,
    trust_root: DefaultTrustRoot,
    ready: Arc<AtomicBool>,
    namespaces: Store<Namespace>,
    health: PolicyHealth,
) {
    let (store, writer) = reflector::store::<ClusterImagePolicy>();
    let mut events =
        Box::pin(watcher(Api::<ClusterImagePolicy>::all(client.clone())).default_backoff().reflect(writer));
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut listed = false;
    loop {
        let recompile = tokio::select! {
            event = events.next() => match event {
                None => return,
                Some(Ok(Event::InitDone)) => {
                    listed = true;
                    true
                }
                Some(Ok(Event::Apply(_) | Event::Delete(_))) => {
                    health.watching();
                    listed
                }
                Some(Ok(Event::Init | Event::InitApply(_))) => false,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "watching ClusterImagePolicies");
                    health.watch_failed(e.to_string());
                    false
                }
            },
            _ = resync.tick() => listed,
        };
        if !recompile {
            continue;
        }
        let set = compile(&client, &store.state(), &trust_root).await;
        let changed = {
            let current = policies.current();
            current.policies().len() != set.len()
                || current.policies().iter().zip(&set).any(|(a, b)| a.name != b.name || a.hash != b.hash)
        };
        if changed {
            for p in &set {
                if let Some(why) = &p.invalid {
                    tracing::warn!(policy = %p.name, error = %why, "invalid ClusterImagePolicy: the images it governs are denied");
                }
            }
            let invalid = set.iter().filter(|p| p.invalid.is_some()).count();
            tracing::info!(policies = set.len(), invalid, "ClusterImagePolicies in force");
        }
        let statuses: Vec<(String, Option<String>)> = set.iter().map(|p| (p.name.clone(), p.invalid.clone())).collect();
        policies.publish(PolicySet::new(set));
        health.synced();
        update_statuses(&client, &store, &statuses).await;
        if !ready.load(Ordering::Acquire) {
            let _ = namespaces.wait_until_ready().await;
            ready.store(true, Ordering::Release);
            tracing::info!("policies and namespaces synced; ready");
        }
    }
}

/// Compiles every policy, reading the Secrets behind `secretRef` keys. Sorted by name.
async fn compile(
    client: &Client,
    objects: &[Arc<ClusterImagePolicy>],
    trust_root: &DefaultTrustRoot,
) -> Vec<Arc<Policy>> {
    let mut secrets: HashMap<SecretKeyRef, Result<String, String>> = HashMap::new();
    for object in objects {
        let refs =
            object.spec.signatures.iter().flat_map(|s| &s.authorities).filter_map(|a| match (&a.key, &a.keyless) {
                (Some(k), _) => k.secret_ref.clone(),
                (_, Some(k)) => k.trust_root.as_ref().and_then(|t| t.secret_ref.as_ref()).map(SecretKeyRef::from),
                _ => None,
            });
        for r in refs {
            if let std::collections::hash_map::Entry::Vacant(slot) = secrets.entry(r) {
                let value = read_secret_key(client, slot.key()).await;
                slot.insert(value);
            }
        }
    }
    let lookup = |r: &SecretKeyRef| secrets.get(r).cloned().unwrap_or_else(|| Err("not read".into()));
    let mut out: Vec<Arc<Policy>> =
        objects.iter().map(|object| Arc::new(Policy::compile_guarded(object, &lookup, trust_root).0)).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

async fn read_secret_key(client: &Client, r: &SecretKeyRef) -> Result<String, String> {
    let api = Api::<Secret>::namespaced(client.clone(), &r.namespace);
    match api.get_opt(&r.name).await {
        Ok(Some(secret)) => {
            let data = secret.data.as_ref().and_then(|d| d.get(&r.key)).map(|b| b.0.clone());
            let data = data
                .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(&r.key)).map(|s| s.clone().into_bytes()));
            match data {
                Some(bytes) => String::from_utf8(bytes)
                    .map_err(|_| format!("Secret {}/{} key {:?} is not text", r.namespace, r.name, r.key)),
                None => Err(format!("Secret {}/{} has no key {:?}", r.namespace, r.name, r.key)),
            }
        }
        Ok(None) => Err(format!("Secret {}/{} not found", r.namespace, r.name)),
        Err(e) => Err(format!("reading Secret {}/{}: {e}", r.namespace, r.name)),
    }
}

/// Sets each policy's `Ready` condition when it differs from what the object already says.
async fn update_statuses(client: &Client, store: &Store<ClusterImagePolicy>, statuses: &[(String, Option<String>)]) {
    let api = Api::<ClusterImagePolicy>::all(client.clone());
    for (name, invalid) in statuses {
        let Some(object) = store.get(&reflector::ObjectRef::new(name)) else { continue };
        let (status, reason, message) = match invalid {
            None => ("True", "Valid", "in force".to_owned()),
            Some(why) => ("False", "Invalid", why.clone()),
        };
        let generation = object.metadata.generation;
        let current = object.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        if current.is_some_and(|c| {
            c.status == status && c.reason == reason && c.message == message && c.observed_generation == generation
        }) {
            continue;
        }
        let condition = json!({
            "type": "Ready",
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
        });
        let patch = Patch::Merge(json!({"status": {"conditions": [condition]}}));
        if let Err(e) = api.patch_status(name, &PatchParams::default(), &patch).await {
            tracing::warn!(policy = %name, error = %e, "could not update ClusterImagePolicy status");
        }
    }
}

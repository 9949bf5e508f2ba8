//! Cluster mode: `ClusterImagePolicy` objects and Namespaces from the API server, kept current
//! by kube-runtime watchers, compiled into the [`PolicySet`] the engine evaluates with.
//!
//! Start at [`start`]. Policies are recompiled whenever one changes (and every
//! [`RESYNC`], so a rotated `secretRef` key is picked up); an invalid policy is kept, marked
//! invalid (see [`Policy::compile_lenient`]), and its `Ready` status condition says why. The
//! server is ready once both watchers have listed everything and the first set is in force.
//!
//! The policy watcher is supervised: should it end or panic, it is started again (after 1 s,
//! doubling to 30 s), lists every policy afresh and puts that set in force, so a policy
//! deleted meanwhile is not enforced for long. Until then, and while watching fails for more
//! than [`READY_GRACE`], [`PolicyHealth`] makes the replica not ready (the policies in force may
//! be stale, and the logs say why); if it has not recovered within [`LIVE_GRACE`] it is reported
//! not live, so the kubelet restarts it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{ClusterImagePolicy, Labels, Policy, PolicySet, SecretKeyRef, NAMESPACE_NAME_LABEL};
use crate::engine::Engine;

/// How often policies are recompiled without a change, to pick up rotated Secret keys.
pub const RESYNC: Duration = Duration::from_secs(30);

/// How long watching may fail (the API server restarting, a network blip) before the replica
/// reports not ready.
pub const READY_GRACE: Duration = Duration::from_secs(10);

/// How long the policy source may stay unhealthy before the replica reports not live.
pub const LIVE_GRACE: Duration = Duration::from_secs(120);

/// Whether the policies in force are being kept current, for `/readyz`, `/healthz` and the logs.
#[derive(Debug, Clone, Default)]
pub struct PolicyHealth(Arc<std::sync::Mutex<Option<Problem>>>);

#[derive(Debug, Clone)]
struct Problem {
    since: std::time::Instant,
    why: String,
    /// The watcher itself stopped: nothing keeps the policies current until it is restarted.
    stopped: bool,
}

impl PolicyHealth {
    fn set(&self, f: impl FnOnce(&mut Option<Problem>)) {
        let mut state = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state);
    }

    /// Policies were listed and put in force.
    pub fn synced(&self) {
        self.set(|p| *p = None);
    }

    /// An event arrived: watching works again (a stopped watcher stays stopped until it syncs).
    fn watching(&self) {
        self.set(|p| {
            if p.as_ref().is_some_and(|p| !p.stopped) {
                *p = None;
            }
        });
    }

    /// Watching failed; the first failure's time is kept.
    pub fn watch_failed(&self, why: String) {
        self.set(|p| match p {
            Some(problem) => problem.why = why,
            None => *p = Some(Problem { since: std::time::Instant::now(), why, stopped: false }),
        });
    }

    /// The watcher stopped (ended, or panicked).
    pub fn stopped(&self, why: String) {
        self.set(|p| {
            let since = p.as_ref().map_or_else(std::time::Instant::now, |p| p.since);
            *p = Some(Problem { since, why, stopped: true });
        });
    }

    /// `Err(why)` when the policies in force may be stale: the watcher stopped, or watching has
    /// failed for longer than [`READY_GRACE`].
    pub fn ready(&self) -> Result<(), String> {
        self.check(READY_GRACE, true)
    }

    /// `Err(why)` when the policy source has been unhealthy for longer than [`LIVE_GRACE`].
    pub fn live(&self) -> Result<(), String> {
        self.check(LIVE_GRACE, false)
    }

    fn check(&self, grace: Duration, stopped_at_once: bool) -> Result<(), String> {
        let state = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*state {
            Some(p) if (p.stopped && stopped_at_once) || p.since.elapsed() > grace => Err(format!(
                "{} for {}s: {}",
                if p.stopped {
                    "the ClusterImagePolicy watcher is restarting"
                } else {
                    "watching ClusterImagePolicies fails"
                },
                p.since.elapsed().as_secs(),
                p.why
            )),
            _ => Ok(()),
        }
    }
}

/// Namespace labels as the cluster has them.
#[derive(Clone)]
pub struct Namespaces {
    store: Store<Namespace>,
}

impl std::fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespaces").field("known", &self.store.state().len()).finish()
    }
}

impl Namespaces {
    /// The labels of namespace `name`. A namespace not yet seen by the watcher (created a
    /// moment ago) has at least the name label the API server sets on every namespace.
    pub fn labels(&self, name: &str) -> Labels {
        let key = reflector::ObjectRef::new(name);
        match self.store.get(&key) {
            Some(ns) => ns.labels().clone().into_iter().collect(),
            None => BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned())]),
        }
    }
}

/// Starts watching policies and namespaces. `ready` is set once both are listed and the first
/// policy set is in force; `health` says, from then on, whether it is kept current.
pub fn start(client: Client, engine: Arc<Engine>, ready: Arc<AtomicBool>, health: PolicyHealth) -> Namespaces {
    let (ns_store, ns_writer) = reflector::store::<Namespace>();
    let ns_events = watcher(Api::<Namespace>::all(client.clone())).default_backoff().reflect(ns_writer);
    tokio::spawn(ns_events.for_each(|event| async move {
        if let Err(e) = event {
            tracing::warn!(error = %e, "watching namespaces");
        }
    }));
    let namespaces = Namespaces { store: ns_store.clone() };
    tokio::spawn(supervise(health.clone(), move || {
        run_policies(client.clone(), engine.clone(), ready.clone(), ns_store.clone(), health.clone())
    }));
    namespaces
}

/// Runs the watcher `run` makes, and whenever it ends or panics, says so and runs a new one,
/// after a delay that doubles from 1 s to 30 s (back to 1 s once one has run for a minute).
pub async fn supervise<F, Fut>(health: PolicyHealth, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut delay = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        let why = match tokio::spawn(run()).await {
            Ok(()) => "the watch ended".to_owned(),
            Err(e) if e.is_panic() => {
                format!("it panicked ({})", super::panic_message(e.into_panic().as_ref()))
            }
            Err(e) => e.to_string(),
        };
        if started.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_secs(1);
        }
        tracing::error!(error = %why, retry_in_s = delay.as_secs(), "the ClusterImagePolicy watcher stopped; not ready until it has listed the policies again");
        health.stopped(why);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

fn watcher<K>(api: Api<K>) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
}

async fn run_policies(
    client: Client,
    engine: Arc<Engine>,
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
        let set = compile(&client, &store.state()).await;
        let changed = {
            let current = engine.policies();
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
        engine.set_policies(PolicySet::new(set));
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
async fn compile(client: &Client, objects: &[Arc<ClusterImagePolicy>]) -> Vec<Arc<Policy>> {
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
        objects.iter().map(|object| Arc::new(Policy::compile_guarded(object, &lookup).0)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Issue 9, case 3: a watcher that panics is reported (not ready at once), started again,
    /// and once the new one has listed the policies the replica is ready again.
    #[tokio::test]
    async fn a_panicking_watcher_is_restarted_and_reported_meanwhile() {
        let health = PolicyHealth::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (h, r) = (health.clone(), runs.clone());
        let supervisor = tokio::spawn(supervise(health.clone(), move || {
            let (h, r) = (h.clone(), r.clone());
            async move {
                if r.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("cannot convert float seconds to Duration");
                }
                h.synced();
                std::future::pending::<()>().await;
            }
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let why = health.ready().unwrap_err();
        assert!(why.contains("the ClusterImagePolicy watcher is restarting"), "{why}");
        assert!(why.contains("it panicked (cannot convert float seconds to Duration)"), "{why}");
        assert!(health.live().is_ok(), "live until it has failed for {LIVE_GRACE:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "started again");
        assert_eq!(health.ready(), Ok(()));
        supervisor.abort();
    }

    #[test]
    fn watch_errors_make_the_replica_unready_after_a_grace_and_unlive_after_longer() {
        let health = PolicyHealth::default();
        let age = |by: Duration| {
            health.set(|p| {
                if let Some(p) = p {
                    p.since = p.since.checked_sub(by).unwrap_or(p.since);
                }
            })
        };
        health.watch_failed("connection refused".into());
        assert_eq!(health.ready(), Ok(()), "a blip is tolerated");
        age(READY_GRACE + Duration::from_secs(1));
        let why = health.ready().unwrap_err();
        assert!(why.contains("watching ClusterImagePolicies fails") && why.contains("connection refused"), "{why}");
        assert!(health.live().is_ok());
        age(LIVE_GRACE);
        assert!(health.live().is_err());
        health.watching();
        assert_eq!(health.ready(), Ok(()), "an event clears a watch failure");
        health.stopped("the watch ended".into());
        health.watching();
        assert!(health.ready().is_err(), "a stopped watcher stays unready until it has synced");
        health.synced();
        assert_eq!(health.ready(), Ok(()));
    }
}

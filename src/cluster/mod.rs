//! Cluster mode: all Kubernetes IO. `ClusterImagePolicy` objects and Namespaces from the API
//! server, kept current by kube-runtime watchers; the compiled policies are published to a
//! [`PolicyStore`] the engine reads (nothing here calls the engine). Pull secrets
//! ([`pull_secrets`]) and policy status conditions are read and written here too.
//!
//! Start at [`start`]. Policies are recompiled whenever one changes (and every
//! [`RESYNC`], so a rotated `secretRef` key is picked up); an invalid policy is kept, marked
//! invalid (see [`crate::policy::Policy::compile_lenient`]), and its `Ready` status condition says why. The
//! server is ready once both watchers have listed everything and the first set is in force.
//!
//! The policy watcher is supervised: should it end or panic, it is started again (after 1 s,
//! doubling to 30 s), lists every policy afresh and puts that set in force, so a policy
//! deleted meanwhile is not enforced for long. Until then, and while watching fails for more
//! than [`READY_GRACE`], [`PolicyHealth`] makes the replica not ready (the policies in force may
//! be stale, and the logs say why); if it has not recovered within [`LIVE_GRACE`] it is reported
//! not live, so the kubelet restarts it.

pub mod health;
mod policies;
pub mod pull_secrets;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};

pub use health::{supervise, PolicyHealth, LIVE_GRACE, READY_GRACE};
pub use policies::RESYNC;
pub use pull_secrets::PullSecrets;

use crate::policy::{DefaultTrustRoot, Labels, PolicyStore, NAMESPACE_NAME_LABEL};

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
pub fn start(
    client: Client,
    policies: PolicyStore,
    trust_root: DefaultTrustRoot,
    ready: Arc<AtomicBool>,
    health: PolicyHealth,
) -> Namespaces {
    let (ns_store, ns_writer) = reflector::store::<Namespace>();
    let ns_events = watcher(Api::<Namespace>::all(client.clone())).default_backoff().reflect(ns_writer);
    tokio::spawn(ns_events.for_each(|event| async move {
        if let Err(e) = event {
            tracing::warn!(error = %e, "watching namespaces");
        }
    }));
    let namespaces = Namespaces { store: ns_store.clone() };
    tokio::spawn(supervise(health.clone(), move || {
        policies::run(
            client.clone(),
            policies.clone(),
            trust_root.clone(),
            ready.clone(),
            ns_store.clone(),
            health.clone(),
        )
    }));
    namespaces
}

pub(crate) fn watcher<K>(api: Api<K>) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
}

//! An AdmissionReview body, as the API server (or anything that reaches the webhook) sends it,
//! through the whole answering path: parsing, image extraction from every workload kind, the
//! policies (ones that need no registry) and the response. It must always answer, never panic.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use trustgate::admission::{self, NoCluster};
use trustgate::cache::{CacheConfig, Caches};
use trustgate::decision::Unmatched;
use trustgate::engine::Engine;
use trustgate::evidence::{RegistryClient, RegistryConfig};
use trustgate::metrics::Metrics;
use trustgate::policy::{parse_documents, PolicySet};

const POLICIES: &str = r#"
apiVersion: trustgate.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: pinned}
spec:
  images: [{glob: "registry.acme.io/**"}, {glob: "nginx"}]
  requireDigest: true
---
apiVersion: trustgate.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: warned}
spec:
  images: [{glob: "**"}]
  mode: warn
  requireDigest: true
"#;

struct World {
    runtime: tokio::runtime::Runtime,
    engine: Arc<Engine>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (policies, errors) = parse_documents(POLICIES);
        assert!(errors.is_empty(), "{errors:?}");
        let metrics = Arc::new(Metrics::default());
        // No policy here needs a registry; the client is never called.
        let registry = RegistryClient::new(RegistryConfig::default(), metrics.clone()).expect("client");
        let engine = Engine::new(
            PolicySet::new(policies),
            Arc::new(registry),
            Caches::new(CacheConfig::default()),
            Unmatched::Deny,
            metrics,
        );
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        World { runtime, engine: Arc::new(engine) }
    })
}

fuzz_target!(|body: &[u8]| {
    let w = world();
    w.runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        match admission::review(&w.engine, body, deadline, &NoCluster).await {
            admission::HttpReply::Review { body, .. } => {
                let v: serde_json::Value = serde_json::from_slice(&body).expect("the answer is JSON");
                assert_eq!(v["kind"], "AdmissionReview");
            }
            admission::HttpReply::BadRequest(_) => {}
        }
    });
});

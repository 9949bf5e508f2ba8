//! The in-process path of a cached Pod review: parse the AdmissionReview, extract images,
//! match policies, hit the decision cache, render the response. Also the cost of one
//! signature verification (the CPU part of a cold check) and of policy matching alone.
//!
//! Evidence comes from an in-memory `Registry` holding a signature made in the benchmark;
//! the network side of a cold check is measured by `scripts/load.sh` against a real registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use sigstore::crypto::SigningScheme;
use trustgate::admission;
use trustgate::cache::{CacheConfig, Caches};
use trustgate::decision::Unmatched;
use trustgate::engine::Engine;
use trustgate::evidence::AttestationLayer;
use trustgate::evidence::{cosign, Fetch, Registry, RegistryError, SignatureLayer};
use trustgate::images::{Digest, ImageRef};
use trustgate::metrics::Metrics;
use trustgate::policy::{parse_documents, Labels, PolicySet};

struct InMemory {
    layer: SignatureLayer,
}

#[async_trait]
impl Registry for InMemory {
    async fn resolve(&self, _: &ImageRef, _: Fetch<'_>) -> Result<Digest, RegistryError> {
        Ok(Digest::of(b"bench"))
    }
    async fn signatures(&self, _: &ImageRef, _: &Digest, _: Fetch<'_>) -> Result<Vec<SignatureLayer>, RegistryError> {
        Ok(vec![self.layer.clone()])
    }
    async fn attestations(
        &self,
        _: &ImageRef,
        _: &Digest,
        _: Fetch<'_>,
    ) -> Result<Vec<AttestationLayer>, RegistryError> {
        Ok(vec![])
    }
}

fn setup() -> (Arc<Engine>, Vec<u8>, SignatureLayer, PolicySet) {
    let digest = Digest::of(b"bench");
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1.create_signer().unwrap();
    let public = signer.to_sigstore_keypair().unwrap().public_key_to_pem().unwrap();
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"registry.acme.io/shop/api"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes();
    let layer = SignatureLayer {
        digest: Digest::of(&payload),
        signature: base64::engine::general_purpose::STANDARD.encode(signer.sign(&payload).unwrap()),
        payload,
        material: Default::default(),
    };
    let key = public.trim().replace('\n', "\n            ");
    let yaml = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {{name: shop}}\nspec:\n  images: [{{glob: \"registry.acme.io/shop/**\"}}]\n  signatures:\n    authorities:\n      - name: release-key\n        key:\n          publicKey: |\n            {key}\n"
    );
    let (policies, errors) = parse_documents(&yaml);
    assert!(errors.is_empty(), "{errors:?}");
    let (policies2, _) = parse_documents(&yaml);
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::new(
        PolicySet::new(policies),
        Arc::new(InMemory { layer: layer.clone() }),
        Caches::new(CacheConfig::default()),
        Unmatched::Deny,
        metrics,
    );
    let review =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission/create-pod.json"))
            .unwrap()
            .replace("registry.acme.io/tools/migrate:v3", "registry.acme.io/shop/migrate:v3")
            .replace(
                &format!("registry.acme.io/apps/api@sha256:{}", "ab".repeat(32)),
                &format!("registry.acme.io/shop/api@{digest}"),
            );
    (Arc::new(engine), review.into_bytes(), layer, PolicySet::new(policies2))
}

fn labels(ns: &str) -> Labels {
    BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), ns.to_owned())])
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (engine, body, layer, policies) = setup();
    let review = |engine: Arc<Engine>, body: Vec<u8>| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(9);
        match admission::review(&engine, &body, deadline, &admission::NoCluster).await {
            admission::HttpReply::Review { body, decision } => {
                assert_eq!(decision, "allowed");
                body
            }
            admission::HttpReply::BadRequest(m) => panic!("{m}"),
        }
    };
    // Warm the cache: the first review verifies.
    runtime.block_on(review(engine.clone(), body.clone()));

    c.bench_function("cached pod review (parse, extract, match, cache hit, render)", |b| {
        b.to_async(&runtime).iter(|| review(engine.clone(), body.clone()))
    });

    let digest = Digest::of(b"bench");
    let keys = &policies.policies()[0].signatures.as_ref().unwrap().keys;
    c.bench_function("verify one cosign P-256 signature", |b| {
        b.iter(|| assert_eq!(cosign::verify(keys, &digest, std::slice::from_ref(&layer)).verified.len(), 1))
    });

    let many = (0..200)
        .map(|i| {
            format!(
                "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {{name: p{i}}}\nspec:\n  images: [{{glob: \"registry{i}.acme.io/team-*/**\"}}]\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n");
    let (many, _) = parse_documents(&many);
    let many = PolicySet::new(many);
    let l = labels("shop");
    c.bench_function("match one image against 200 policies", |b| {
        b.iter(|| many.matching("registry199.acme.io/team-x/api", &l).count())
    });
}

criterion_group!(admission_benches, benches);
criterion_main!(admission_benches);

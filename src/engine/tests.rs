use super::*;
use crate::cache::CacheConfig;
use crate::evidence::AttestationLayer;
use crate::evidence::RegistryError;
use crate::policy::parse_documents;
use crate::testing::{payload, TestKey};
use async_trait::async_trait;
use sigstore::crypto::SigningScheme;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// An in-memory registry: evidence the tests place, and call counts.
#[derive(Default)]
struct FakeRegistry {
    tags: Mutex<HashMap<String, Digest>>,
    signatures: Mutex<HashMap<Digest, Vec<SignatureLayer>>>,
    attestations: Mutex<HashMap<Digest, Vec<AttestationLayer>>>,
    bundles: Mutex<HashMap<Digest, Vec<BundleLayer>>>,
    fail: Mutex<Option<RegistryError>>,
    delay: Option<Duration>,
    signature_calls: AtomicUsize,
    /// Panics when asked for signatures (a bug somewhere below the engine).
    panics: bool,
}

#[async_trait]
impl Registry for FakeRegistry {
    async fn resolve(&self, image: &ImageRef, _: Fetch<'_>) -> Result<Digest, RegistryError> {
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        self.tags.lock().unwrap().get(&image.to_string()).cloned().ok_or(RegistryError::NotFound {
            repository: image.repository_name(),
            reference: format!("tag {}", image.tag.clone().unwrap_or_default()),
        })
    }
    async fn signatures(
        &self,
        _: &ImageRef,
        digest: &Digest,
        _: Fetch<'_>,
    ) -> Result<Vec<SignatureLayer>, RegistryError> {
        self.signature_calls.fetch_add(1, Ordering::SeqCst);
        assert!(!self.panics, "a bug below the engine");
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        Ok(self.signatures.lock().unwrap().get(digest).cloned().unwrap_or_default())
    }
    async fn attestations(
        &self,
        _: &ImageRef,
        digest: &Digest,
        _: Fetch<'_>,
    ) -> Result<Vec<AttestationLayer>, RegistryError> {
        Ok(self.attestations.lock().unwrap().get(digest).cloned().unwrap_or_default())
    }
    async fn bundles(&self, _: &ImageRef, digest: &Digest, _: Fetch<'_>) -> Result<Vec<BundleLayer>, RegistryError> {
        Ok(self.bundles.lock().unwrap().get(digest).cloned().unwrap_or_default())
    }
}

/// A cosign v3 key bundle: the DSSE envelope of `statement` signed by `key`.
fn key_bundle(key: &TestKey, statement: &serde_json::Value) -> BundleLayer {
    let envelope: serde_json::Value =
        serde_json::from_slice(&crate::testing::envelope(key, statement).envelope).unwrap();
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "not trusted"}},
        "dsseEnvelope": envelope,
    });
    let bytes = serde_json::to_vec(&bundle).unwrap();
    BundleLayer { manifest: Digest::of(&bytes), bytes, too_large: None }
}

#[tokio::test]
async fn bundle_signatures_and_attestations_count_once_verified() {
    use crate::policy::predicate::COSIGN_SIGN as COSIGN_SIGN_PREDICATE;
    use crate::testing::statement;
    let (key, other) = (TestKey::new(SigningScheme::default()), TestKey::new(SigningScheme::default()));
    let d = Digest::of(b"built");
    let r = [format!("registry.acme.io/api@{d}")];
    let refs: Vec<&str> = r.iter().map(String::as_str).collect();
    let decide = |bundles: Vec<BundleLayer>, set: PolicySet| {
        let reg = Arc::new(FakeRegistry::default());
        reg.bundles.lock().unwrap().insert(d.clone(), bundles);
        let e = engine(reg, set);
        let refs = refs.clone();
        async move { e.evaluate(&images(&refs), &Labels::new(), soon()).await }
    };
    let sign =
        |k: &TestKey, digest: &Digest| key_bundle(k, &statement(digest, COSIGN_SIGN_PREDICATE, serde_json::json!({})));

    let decision = decide(vec![sign(&key, &d)], policies(&key.public_pem, "")).await;
    assert!(decision.allowed, "{:?}", decision.denials);
    let decision = decide(vec![sign(&other, &d)], policies(&key.public_pem, "")).await;
    assert!(
        decision.denials[0].contains("1 signature found, none verified by any of [release]"),
        "{:?}",
        decision.denials
    );
    let decision = decide(vec![sign(&key, &Digest::of(b"elsewhere"))], policies(&key.public_pem, "")).await;
    assert!(decision.denials[0].contains("is for another image"), "{:?}", decision.denials);
    let mut altered = sign(&key, &d);
    altered.bytes = String::from_utf8(altered.bytes).unwrap().replace("\"sig\":\"", "\"sig\":\"AAAA").into_bytes();
    let decision = decide(vec![altered], policies(&key.public_pem, "")).await;
    assert!(decision.denials[0].contains("none verified by any of [release]"), "{:?}", decision.denials);

    // An attestation bundle is not a signature, and does answer an attestation requirement.
    let provenance = key_bundle(
        &key,
        &statement(&d, crate::policy::predicate::SLSA_V1, provenance("https://github.com/actions/runner")),
    );
    let decision = decide(vec![provenance.clone()], policies(&key.public_pem, "")).await;
    assert!(decision.denials[0].contains("no signature found"), "{:?}", decision.denials);
    let copied = key_bundle(
        &key,
        &statement(
            &Digest::of(b"elsewhere"),
            crate::policy::predicate::SLSA_V1,
            serde_json::json!({"buildDefinition": {}}),
        ),
    );
    let decision = decide(vec![copied], policies(&key.public_pem, "")).await;
    assert!(decision.denials[0].contains("no signature found"), "{:?}", decision.denials);
    let decision = decide(vec![provenance], provenance_policy(&key.public_pem)).await;
    assert!(decision.allowed, "{:?}", decision.denials);
    let oversized = BundleLayer { manifest: d.clone(), bytes: vec![], too_large: Some("over the cap".into()) };
    let decision = decide(vec![oversized], provenance_policy(&key.public_pem)).await;
    assert!(decision.denials[0].contains("over the cap"), "{:?}", decision.denials);
}

fn policies(key_pem: &str, extra: &str) -> PolicySet {
    let key = key_pem.trim().replace('\n', "\n            ");
    let yaml = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: acme\nspec:\n  images:\n    - glob: \"registry.acme.io/**\"\n{extra}  signatures:\n    authorities:\n      - name: release\n        key:\n          publicKey: |\n            {key}\n"
    );
    let (ok, errs) = parse_documents(&yaml);
    assert!(errs.is_empty(), "{errs:?}");
    PolicySet::new(ok)
}

fn engine(registry: Arc<FakeRegistry>, set: impl Into<PolicyStore>) -> Arc<Engine> {
    Arc::new(Engine::new(
        set,
        registry,
        Caches::new(CacheConfig::default()),
        Unmatched::Deny,
        Arc::new(Metrics::default()),
    ))
}

fn images(refs: &[&str]) -> Vec<WorkloadImage> {
    refs.iter()
        .enumerate()
        .map(|(i, r)| WorkloadImage {
            path: format!("spec.containers[{i}].image"),
            container: format!("c{i}"),
            image: r.to_string(),
        })
        .collect()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn signed_image_by_tag_is_admitted_and_cached() {
    let key = TestKey::new(SigningScheme::default());
    let reg = Arc::new(FakeRegistry::default());
    let d = Digest::of(b"api");
    reg.tags.lock().unwrap().insert("registry.acme.io/api:v1".into(), d.clone());
    reg.signatures.lock().unwrap().insert(d.clone(), vec![key.sign(&payload(d.as_str()))]);
    let e = engine(reg.clone(), policies(&key.public_pem, ""));
    let decision = e.evaluate(&images(&["registry.acme.io/api:v1"]), &Labels::new(), soon()).await;
    assert!(decision.allowed, "{:?}", decision.denials);
    assert_eq!(decision.images[0].digest, Some(d));
    e.evaluate(&images(&["registry.acme.io/api:v1"]), &Labels::new(), soon()).await;
    assert_eq!(reg.signature_calls.load(Ordering::SeqCst), 1, "the second review is served from the cache");
}

#[tokio::test]
async fn an_invalid_cluster_policy_denies_what_it_governs_and_spares_the_rest() {
    let yaml = "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {name: broken}\nspec:\n  images: [{glob: \"registry.acme.io/**\"}]\n  signatures:\n    authorities:\n      - name: k\n        key: {secretRef: {name: keys, namespace: sec}}\n";
    let object: crate::policy::ClusterImagePolicy = serde_yaml::from_str(yaml).unwrap();
    let missing = |r: &crate::policy::SecretKeyRef| Err(format!("Secret {}/{} not found", r.namespace, r.name));
    let (broken, errors) = Policy::compile_lenient(&object, &missing, &Default::default());
    assert_eq!(errors.len(), 1);
    let allow = "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {name: others}\nspec:\n  images: [{glob: \"quay.io/**\"}]\n";
    let (mut set, _) = parse_documents(allow);
    set.push(Arc::new(broken));
    let e = engine(Arc::new(FakeRegistry::default()), PolicySet::new(set));
    let d = e
        .evaluate(
            &images(&[
                "registry.acme.io/api@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "quay.io/x/y:1",
            ]),
            &Labels::new(),
            soon(),
        )
        .await;
    assert!(!d.allowed);
    assert_eq!(d.denials.len(), 1, "{:?}", d.denials);
    assert!(
        d.denials[0].ends_with("policy \"broken\": the policy is invalid, so nothing it governs is admitted: spec.signatures.authorities[0].key.secretRef: Secret sec/keys not found"),
        "{}",
        d.denials[0]
    );
    assert!(d.images[1].allowed(Unmatched::Deny), "the other policy still works");
}

fn provenance_policy(key_pem: &str) -> PolicySet {
    let key = key_pem.trim().replace('\n', "\n            ");
    let yaml = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {{name: built}}\nspec:\n  images: [{{glob: \"registry.acme.io/**\"}}]\n  signatures:\n    threshold: 0\n    authorities:\n      - name: release\n        key:\n          publicKey: |\n            {key}\n  attestations:\n    - name: provenance\n      predicateType: slsaprovenance1\n      authorities: [release]\n      slsa:\n        builderIds: [\"https://github.com/actions/runner\"]\n"
    );
    let (ok, errs) = parse_documents(&yaml);
    assert!(errs.is_empty(), "{errs:?}");
    PolicySet::new(ok)
}

fn provenance(builder: &str) -> serde_json::Value {
    serde_json::json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main", "path": ".github/workflows/release.yml"}},
            "resolvedDependencies": []
        },
        "runDetails": {"builder": {"id": builder}, "metadata": {}}
    })
}

#[tokio::test]
async fn attestations_are_verified_bound_to_the_digest_and_checked() {
    use crate::testing::{envelope, statement};
    let (key, other) = (TestKey::new(SigningScheme::default()), TestKey::new(SigningScheme::default()));
    let d = Digest::of(b"built");
    let r = [format!("registry.acme.io/api@{d}")];
    let refs: Vec<&str> = r.iter().map(String::as_str).collect();
    let decide = |layers: Vec<AttestationLayer>| {
        let reg = Arc::new(FakeRegistry::default());
        reg.attestations.lock().unwrap().insert(d.clone(), layers);
        let e = engine(reg, provenance_policy(&key.public_pem));
        let refs = refs.clone();
        async move { e.evaluate(&images(&refs), &Labels::new(), soon()).await }
    };
    let good = envelope(
        &key,
        &statement(&d, crate::policy::predicate::SLSA_V1, provenance("https://github.com/actions/runner")),
    );
    let decision = decide(vec![good]).await;
    assert!(decision.allowed, "{:?}", decision.denials);
    let report = &decision.to_json()["images"][0]["policies"][0]["attestations"][0];
    assert_eq!(report["accepted"], true);
    assert_eq!(report["signer"], "release");
    assert_eq!(report["predicateType"], crate::policy::predicate::SLSA_V1);

    let decision = decide(vec![]).await;
    assert!(decision.denials[0].contains("no SLSA provenance attestation signed by [release]; attest with: cosign attest --key <key> --type slsaprovenance1"), "{}", decision.denials[0]);

    let wrong =
        envelope(&key, &statement(&d, crate::policy::predicate::SLSA_V1, provenance("https://evil.example/builder")));
    let decision = decide(vec![wrong]).await;
    assert!(
        decision.denials[0]
            .contains("provenance builder https://evil.example/builder is not in [https://github.com/actions/runner]"),
        "{}",
        decision.denials[0]
    );

    let untrusted = envelope(
        &other,
        &statement(&d, crate::policy::predicate::SLSA_V1, provenance("https://github.com/actions/runner")),
    );
    let copied = envelope(
        &key,
        &statement(
            &Digest::of(b"x"),
            crate::policy::predicate::SLSA_V1,
            provenance("https://github.com/actions/runner"),
        ),
    );
    let decision = decide(vec![untrusted, copied]).await;
    assert!(!decision.allowed);
    assert!(decision.denials[0].contains("2 attestations examined and not accepted"), "{}", decision.denials[0]);
    assert!(decision.denials[0].contains("attestation for another image digest (copied?)"), "{}", decision.denials[0]);
    assert!(decision.denials[0].contains("signed by none of the allowed authorities"), "{}", decision.denials[0]);
    let reports = decision.to_json()["images"][0]["policies"][0]["attestations"].clone();
    assert_eq!(reports.as_array().unwrap().len(), 2, "{reports}");
    assert!(reports.as_array().unwrap().iter().all(|r| r["accepted"] == false));
}

#[tokio::test]
async fn a_changed_policy_never_reuses_a_cached_pass() {
    let (old, new) = (TestKey::new(SigningScheme::default()), TestKey::new(SigningScheme::default()));
    let d = Digest::of(b"img");
    let reg = Arc::new(FakeRegistry::default());
    reg.signatures.lock().unwrap().insert(d.clone(), vec![old.sign(&payload(d.as_str()))]);
    let store = PolicyStore::new(policies(&old.public_pem, ""));
    let e = engine(reg.clone(), store.clone());
    let r = [format!("registry.acme.io/api@{d}")];
    let refs: Vec<&str> = r.iter().map(String::as_str).collect();
    assert!(e.evaluate(&images(&refs), &Labels::new(), soon()).await.allowed);
    // Same policy name, new key: the cached pass must not apply.
    store.publish(policies(&new.public_pem, ""));
    let decision = e.evaluate(&images(&refs), &Labels::new(), soon()).await;
    assert!(!decision.allowed);
    assert_eq!(reg.signature_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_moved_tag_is_seen_within_the_tag_ttl() {
    let key = TestKey::new(SigningScheme::default());
    let reg = Arc::new(FakeRegistry::default());
    let (d1, d2) = (Digest::of(b"v1"), Digest::of(b"v2"));
    reg.tags.lock().unwrap().insert("registry.acme.io/api:stable".into(), d1.clone());
    reg.signatures.lock().unwrap().insert(d1.clone(), vec![key.sign(&payload(d1.as_str()))]);
    let caches = Caches::new(CacheConfig { tag_ttl: Duration::from_millis(100), ..Default::default() });
    let e = Arc::new(Engine::new(
        policies(&key.public_pem, ""),
        reg.clone(),
        caches,
        Unmatched::Deny,
        Arc::new(Metrics::default()),
    ));
    let image = images(&["registry.acme.io/api:stable"]);
    assert!(e.evaluate(&image, &Labels::new(), soon()).await.allowed);
    // The tag moves to an unsigned image.
    reg.tags.lock().unwrap().insert("registry.acme.io/api:stable".into(), d2.clone());
    let cached = e.evaluate(&image, &Labels::new(), soon()).await;
    assert_eq!(cached.images[0].digest.as_ref(), Some(&d1), "within the TTL the cached digest is used");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let moved = e.evaluate(&image, &Labels::new(), soon()).await;
    assert_eq!(moved.images[0].digest.as_ref(), Some(&d2));
    assert!(!moved.allowed, "the moved tag points at an unsigned image");
}

#[tokio::test]
async fn unsigned_unmatched_and_digest_required_each_deny() {
    let key = TestKey::new(SigningScheme::default());
    let reg = Arc::new(FakeRegistry::default());
    reg.tags.lock().unwrap().insert("registry.acme.io/api:v1".into(), Digest::of(b"api"));
    let e = engine(reg, policies(&key.public_pem, "  requireDigest: true\n"));
    let d = e.evaluate(&images(&["registry.acme.io/api:v1", "nginx"]), &Labels::new(), soon()).await;
    assert!(!d.allowed);
    let kinds: Vec<&str> = match &d.images[0].policies[0].outcome {
        Outcome::Failed(f) => f.iter().map(Finding::kind).collect(),
        o => panic!("{o:?}"),
    };
    assert_eq!(kinds, ["digest-required", "not-signed"]);
    assert_eq!(d.images[1].problem, Some(ImageProblem::Unmatched { repository: "docker.io/library/nginx".into() }));
}

#[tokio::test]
async fn registry_errors_are_not_findings() {
    let key = TestKey::new(SigningScheme::default());
    let reg = Arc::new(FakeRegistry::default());
    *reg.fail.lock().unwrap() =
        Some(RegistryError::Unauthorized { host: "registry.acme.io".into(), repository: "api".into(), status: 401 });
    let e = engine(reg, policies(&key.public_pem, ""));
    let d = e.evaluate(&images(&[&format!("registry.acme.io/api@{}", Digest::of(b"x"))]), &Labels::new(), soon()).await;
    assert!(!d.allowed);
    assert!(matches!(
        d.images[0].policies[0].outcome,
        Outcome::Error(EvalError::Registry(RegistryError::Unauthorized { .. }))
    ));
    assert!(d.denials[0].contains("refused access"), "{}", d.denials[0]);
}

#[tokio::test]
async fn the_deadline_answers_and_verification_finishes_into_the_cache() {
    let key = TestKey::new(SigningScheme::default());
    let d = Digest::of(b"slow");
    let reg = Arc::new(FakeRegistry { delay: Some(Duration::from_millis(300)), ..Default::default() });
    reg.signatures.lock().unwrap().insert(d.clone(), vec![key.sign(&payload(d.as_str()))]);
    let e = engine(reg.clone(), policies(&key.public_pem, ""));
    let refs = [format!("registry.acme.io/api@{d}")];
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let started = Instant::now();
    let decision = e.evaluate(&images(&refs), &Labels::new(), Instant::now() + Duration::from_millis(50)).await;
    assert!(started.elapsed() < Duration::from_millis(250));
    assert!(!decision.allowed);
    assert!(decision.denials[0].contains("admission deadline"), "{}", decision.denials[0]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let decision = e.evaluate(&images(&refs), &Labels::new(), Instant::now() + Duration::from_millis(50)).await;
    assert!(decision.allowed, "{:?}", decision.denials);
    assert_eq!(reg.signature_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn many_containers_of_one_image_verify_once() {
    let key = TestKey::new(SigningScheme::default());
    let d = Digest::of(b"one");
    let reg = Arc::new(FakeRegistry::default());
    reg.signatures.lock().unwrap().insert(d.clone(), vec![key.sign(&payload(d.as_str()))]);
    let e = engine(reg.clone(), policies(&key.public_pem, ""));
    let r = format!("registry.acme.io/api@{d}");
    let refs = vec![r.as_str(); 10_000];
    let decision = e.evaluate(&images(&refs), &Labels::new(), soon()).await;
    assert!(decision.allowed);
    assert_eq!(decision.images.len(), 10_000);
    assert_eq!(reg.signature_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn threshold_counts_distinct_authorities() {
    let (a, b) = (TestKey::new(SigningScheme::default()), TestKey::new(SigningScheme::default()));
    let ka = a.public_pem.trim().replace('\n', "\n            ");
    let kb = b.public_pem.trim().replace('\n', "\n            ");
    let yaml = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: two\nspec:\n  images:\n    - glob: \"registry.acme.io/**\"\n  signatures:\n    threshold: 2\n    authorities:\n      - name: a\n        key:\n          publicKey: |\n            {ka}\n      - name: b\n        key:\n          publicKey: |\n            {kb}\n"
    );
    let (ok, errs) = parse_documents(&yaml);
    assert!(errs.is_empty(), "{errs:?}");
    let d = Digest::of(b"t");
    let reg = Arc::new(FakeRegistry::default());
    reg.signatures.lock().unwrap().insert(d.clone(), vec![a.sign(&payload(d.as_str())), a.sign(&payload(d.as_str()))]);
    let e = engine(reg.clone(), PolicySet::new(ok));
    let r = [format!("registry.acme.io/api@{d}")];
    let refs: Vec<&str> = r.iter().map(String::as_str).collect();
    let decision = e.evaluate(&images(&refs), &Labels::new(), soon()).await;
    assert!(!decision.allowed);
    assert!(
        decision.denials[0].contains("verified by [a] but the policy requires 2 of [a, b]"),
        "{}",
        decision.denials[0]
    );
}

/// Issue 9, case 7: the deadline passes before any image task has run (forced: on this
/// current-thread runtime a spawned task cannot run before the engine yields, and the
/// deadline is already over). On the old engine the unmatched and unparseable images got
/// neither a policy result nor a problem, and were admitted even under `--unmatched deny`.
#[tokio::test]
async fn images_not_evaluated_by_the_deadline_are_never_admitted() {
    let key = TestKey::new(SigningScheme::default());
    let reg = Arc::new(FakeRegistry { delay: Some(Duration::from_secs(5)), ..Default::default() });
    let e = engine(reg.clone(), policies(&key.public_pem, ""));
    let d = Digest::of(b"slow");
    let refs =
        ["quay.io/unmatched/app:1".to_owned(), "Not A Reference!".to_owned(), format!("registry.acme.io/api@{d}")];
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let past = Instant::now() - Duration::from_millis(1);
    let decision = e.evaluate(&images(&refs), &Labels::new(), past).await;
    assert!(!decision.allowed);
    assert!(decision.images.iter().all(|i| !i.allowed(Unmatched::Deny)), "{:?}", decision.images);
    assert_eq!(decision.denials.len(), 3, "{:?}", decision.denials);
    assert!(
        decision.denials[0].contains("no ClusterImagePolicy governs quay.io/unmatched/app"),
        "{:?}",
        decision.denials
    );
    assert!(decision.denials[2].contains("could not evaluate within the"), "{:?}", decision.denials);

    // What the deadline path says of an image no policy is known to govern: denied, even
    // where the operator admits unmatched images.
    let eval = e.not_evaluated(
        "quay.io/unmatched/app:1",
        &e.policies(),
        &Labels::new(),
        EvalError::Deadline { budget: Duration::ZERO, started: true },
    );
    let result = ImageResult {
        path: "spec.containers[0].image".into(),
        container: "c".into(),
        image: "quay.io/unmatched/app:1".into(),
        repository: eval.repository,
        digest: eval.digest,
        problem: eval.problem,
        policies: eval.policies,
    };
    assert!(!result.allowed(Unmatched::Allow));
    let decision = decide(vec![result], Unmatched::Allow);
    assert!(!decision.allowed);
    assert!(
        decision.denials[0].contains("could not evaluate within the 0ns admission deadline"),
        "{:?}",
        decision.denials
    );
}

/// A panic while verifying one image denies that image, says so, and answers the review.
#[tokio::test]
async fn a_failed_evaluation_is_denied_not_propagated() {
    let key = TestKey::new(SigningScheme::default());
    let reg = Arc::new(FakeRegistry { panics: true, ..Default::default() });
    let e = engine(reg, policies(&key.public_pem, ""));
    let r = [format!("registry.acme.io/api@{}", Digest::of(b"x"))];
    let refs: Vec<&str> = r.iter().map(String::as_str).collect();
    let decision = e.evaluate(&images(&refs), &Labels::new(), soon()).await;
    assert!(!decision.allowed);
    assert!(decision.denials[0].contains("trustgate failed to evaluate it"), "{:?}", decision.denials);
}

/// Issue 9, case 6, in the engine: a review of many images on a hanging registry starts
/// only `images_per_review` verifications, is answered at its deadline, and a cached image
/// reviewed meanwhile is answered from the cache without waiting for a turn.
#[tokio::test]
async fn a_flood_of_images_is_bounded_and_cached_reviews_do_not_wait() {
    let key = TestKey::new(SigningScheme::default());
    let cached = Digest::of(b"cached");
    let reg = Arc::new(FakeRegistry::default());
    reg.signatures.lock().unwrap().insert(cached.clone(), vec![key.sign(&payload(cached.as_str()))]);
    let e = Arc::new(
        Engine::new(
            policies(&key.public_pem, ""),
            reg.clone(),
            Caches::new(CacheConfig::default()),
            Unmatched::Deny,
            Arc::new(Metrics::default()),
        )
        .with_bounds(Bounds { images_per_review: 2, verifications: 2 }),
    );
    let cached_ref = [format!("registry.acme.io/api@{cached}")];
    let cached_refs: Vec<&str> = cached_ref.iter().map(String::as_str).collect();
    assert!(e.evaluate(&images(&cached_refs), &Labels::new(), soon()).await.allowed);
    // From now on every registry read hangs.
    let hanging = Arc::new(FakeRegistry { delay: Some(Duration::from_secs(3600)), ..Default::default() });
    let flood = Arc::new(
        Engine::new(
            policies(&key.public_pem, ""),
            hanging.clone(),
            e.caches().clone(),
            Unmatched::Deny,
            Arc::new(Metrics::default()),
        )
        .with_bounds(Bounds { images_per_review: 2, verifications: 2 }),
    );
    let many: Vec<String> =
        (0..1000).map(|i| format!("registry.acme.io/api@{}", Digest::of(&[i as u8, (i >> 8) as u8]))).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let decision = flood.evaluate(&images(&many), &Labels::new(), Instant::now() + Duration::from_millis(100)).await;
    assert!(!decision.allowed);
    assert_eq!(hanging.signature_calls.load(Ordering::SeqCst), 2, "only two verifications were started");
    assert_eq!(flood.verifications_running(), 2, "they go on in the background, and no more");
    let not_started = decision
        .images
        .iter()
        .filter(|i| {
            i.policies.iter().any(|p| matches!(p.outcome, Outcome::Error(EvalError::Deadline { started: false, .. })))
        })
        .count();
    assert_eq!(not_started, 998);
    // The process's verifications are all taken, and a cached review is still answered.
    let decision =
        flood.evaluate(&images(&cached_refs), &Labels::new(), Instant::now() + Duration::from_millis(100)).await;
    assert!(decision.allowed, "{:?}", decision.denials);
    // An uncached one waits for a turn no longer than its deadline.
    let started = Instant::now();
    let other = [format!("registry.acme.io/api@{}", Digest::of(b"other"))];
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let decision = flood.evaluate(&images(&other), &Labels::new(), Instant::now() + Duration::from_millis(100)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(decision.denials[0].contains("not started"), "{:?}", decision.denials);
}

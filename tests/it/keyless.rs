//! Sigstore bundles (cosign v3) and keyless signatures (issue 5): the real `trustgate verify`
//! against real registries, signed by the real cosign.
//!
//! Two registries: Debian's `docker-registry` (no OCI 1.1 referrers API, so cosign writes the
//! referrers tag-schema fallback `sha256-<hex>`) and our go-containerregistry program with the
//! referrers API (`tools/referrers-registry`, optionally paging its answers). Key bundles come
//! from `cosign sign|attest --key … --new-bundle-format=true`; keyless ones from a local CA
//! standing in for Fulcio (`cosign sign --key leaf.key --certificate leaf.pem
//! --certificate-chain ca.pem`), with `--new-bundle-format` on and off. Nothing is logged
//! (`--tlog-upload=false`): there is no transparency log on this machine, so the log-verified
//! path is proved against real public-good bundles in [`crate::conformance`].

use serde_json::{json, Value};

use crate::common::bundles::bundle_statement;
use crate::common::cli::{assert_contains, Run, ADMITTED, DENIED};
use crate::common::cosign::{KeyPair, KeyType};
use crate::common::keyless::{CertSigner, LeafSpec, LocalCa, TEST_OIDC_ISSUER, WORKFLOW_IDENTITY};
use crate::common::registry::Registry;
use crate::common::workspace::{fixture, fixture_json, Workspace};

const SUBJECT_REGEXP: &str = r"https://github\.com/acme/.+@refs/heads/main";

/// Writes the workspace's only policy: everything on its registry, `authorities` (YAML list
/// items at six spaces), threshold 1, and optional attestations (YAML at two spaces).
fn policy(w: &Workspace, authorities: &str, attestations: &str) {
    let yaml = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: release\nspec:\n  images:\n    - glob: \"{}/**\"\n  signatures:\n    authorities:\n{authorities}{attestations}",
        w.addr()
    );
    w.policy("release", &yaml);
}

/// A keyless authority `ci`: one identity (`issuer`/`issuerRegExp` and `subject`/`subjectRegExp`
/// lines at twelve spaces), the CA's trust root inline (unless `root` is None), `log`.
fn keyless_authority(identity: &str, root: Option<&LocalCa>, log: &str) -> String {
    let mut yaml =
        format!("      - name: ci\n        keyless:\n          identities:\n            - {}\n", identity.trim_start());
    if let Some(ca) = root {
        yaml.push_str("          trustRoot:\n            trustedRootJson: |\n");
        for line in ca.trusted_root_json().lines() {
            yaml.push_str(&format!("              {line}\n"));
        }
    }
    yaml.push_str(&format!("          transparencyLog: {log}\n"));
    yaml
}

fn exact_identity(subject: &str, issuer: &str) -> String {
    format!("issuer: \"{issuer}\"\n              subject: \"{subject}\"")
}

fn regexp_identity(subject_regexp: &str) -> String {
    format!("issuerRegExp: 'https://issuer\\.example'\n              subjectRegExp: '{subject_regexp}'")
}

/// The only finding of the only policy of the only image.
#[track_caller]
fn only_finding(run: &Run) -> Value {
    let decision = run.json();
    let findings = decision["images"][0]["policies"][0]["findings"].as_array().cloned().unwrap_or_default();
    assert_eq!(findings.len(), 1, "{decision:#}");
    findings[0].clone()
}

fn registries() -> [(&'static str, Registry); 2] {
    [("referrers API", Registry::start_referrers()), ("fallback tag", Registry::start())]
}

#[test]
fn key_signed_bundles_are_found_through_the_referrers_api_and_the_fallback_tag() {
    let release = KeyPair::generate(KeyType::P256);
    let other = KeyPair::generate(KeyType::P256);
    for (kind, registry) in registries() {
        eprintln!("{kind}");
        let w = Workspace::with(registry);
        let registry = w.registry();
        policy(&w, &release.authority_yaml("release"), "");
        let signed = registry.push_image("apps/signed", "v1");
        release.sign_bundle_on(registry, &signed.digest_ref);
        w.verify(&signed.digest_ref, &[]).expect_exit(ADMITTED);

        let unsigned = registry.push_image("apps/unsigned", "v1");
        let run = w.verify(&unsigned.digest_ref, &[]);
        run.expect_exit(DENIED);
        assert_eq!(only_finding(&run)["kind"], "not-signed", "{kind}");

        let wrong = registry.push_image("apps/wrong", "v1");
        other.sign_bundle_on(registry, &wrong.digest_ref);
        let run = w.verify(&wrong.digest_ref, &[]);
        run.expect_exit(DENIED);
        assert_eq!(only_finding(&run)["kind"], "untrusted-signature", "{kind}");
    }
}

#[test]
fn every_page_of_referrers_is_read() {
    // One descriptor per page, in push order (the test registry's ordering): two other keys'
    // bundles first, so the release key's is on the third page.
    let w = Workspace::with(Registry::start_referrers_paged(1));
    let registry = w.registry();
    let release = KeyPair::generate(KeyType::P256);
    let image = registry.push_image("apps/paged", "v1");
    for _ in 0..2 {
        KeyPair::generate(KeyType::P256).sign_bundle_on(registry, &image.digest_ref);
    }
    release.sign_bundle_on(registry, &image.digest_ref);
    let pages = registry.referrers_all(&image.repo, &image.digest);
    assert_eq!(pages.len(), 3, "three bundles, one per page: {pages:?}");
    let last = pages[2]["digest"].as_str().unwrap();
    let release_hint = &registry.bundle(&image.repo, last)["verificationMaterial"]["publicKey"]["hint"];
    for other in &pages[..2] {
        let hint = &registry.bundle(&image.repo, other["digest"].as_str().unwrap())["verificationMaterial"]
            ["publicKey"]["hint"];
        assert_ne!(hint, release_hint, "the release bundle is on the last page only");
    }
    let response = registry.referrers_response(&image.repo, &image.digest);
    assert!(response.header("link").is_some(), "the registry pages its answer");
    policy(&w, &release.authority_yaml("release"), "");
    w.verify(&image.digest_ref, &[]).expect_exit(ADMITTED);
}

#[test]
fn bundle_attestations_get_the_provenance_checks() {
    let release = KeyPair::generate(KeyType::P256);
    let provenance = fixture_json("slsa/provenance-v1.json");
    let attestations = "  attestations:\n    - name: provenance\n      predicateType: slsaprovenance1\n      authorities: [release]\n      slsa:\n        builderIds: [\"https://github.com/actions/runner\"]\n        sourceRepositories: [\"https://github.com/acme/*\"]\n";
    for (kind, registry) in registries() {
        eprintln!("{kind}");
        let w = Workspace::with(registry);
        let registry = w.registry();
        policy(&w, &release.authority_yaml("release"), attestations);
        let good = registry.push_image("apps/good", "v1");
        release.sign_bundle_on(registry, &good.digest_ref);
        let predicate = w.file("good.json", provenance.to_string());
        release.attest_bundle_on(registry, &good.digest_ref, "slsaprovenance1", &predicate);
        w.verify(&good.digest_ref, &[]).expect_exit(ADMITTED);

        let mut evil = provenance.clone();
        evil["runDetails"]["builder"]["id"] = json!("https://evil.example/builder");
        let predicate = w.file("evil.json", evil.to_string());
        let bad = registry.push_image("apps/bad", "v1");
        release.sign_bundle_on(registry, &bad.digest_ref);
        release.attest_bundle_on(registry, &bad.digest_ref, "slsaprovenance1", &predicate);
        let run = w.verify(&bad.digest_ref, &[]);
        run.expect_exit(DENIED);
        let finding = only_finding(&run);
        assert_eq!(finding["kind"], "attestation-failed", "{kind}");
        assert_contains(&finding["message"].to_string(), &["https://evil.example/builder"]);

        // Signed, with no attestation: the attestation is missing, the signature bundle is not one.
        let bare = registry.push_image("apps/bare", "v1");
        release.sign_bundle_on(registry, &bare.digest_ref);
        let run = w.verify(&bare.digest_ref, &[]);
        run.expect_exit(DENIED);
        assert_eq!(only_finding(&run)["kind"], "attestation-missing", "{kind}");
    }
}

/// A referrer is a claim, not evidence: a genuine bundle listed for another image (its
/// manifest's subject says which) and an altered bundle are never trusted.
#[test]
fn copied_and_altered_referrers_are_not_trusted() {
    let w = Workspace::with(Registry::start());
    let registry = w.registry();
    let release = KeyPair::generate(KeyType::P256);
    policy(&w, &release.authority_yaml("release"), "");
    let signed = registry.push_image("apps/a", "v1");
    release.sign_bundle_on(registry, &signed.digest_ref);
    let index = registry.fallback_index(&signed).expect("cosign wrote the fallback tag");

    // The same index (pointing at the genuine bundle for `signed`) under another image's tag.
    let target = registry.push_image("apps/a", "v2");
    registry.put_manifest(&target.repo, &target.fallback_tag(), &index);
    let run = w.verify(&target.digest_ref, &[]);
    run.expect_exit(DENIED);
    assert_eq!(only_finding(&run)["kind"], "not-signed");

    // The genuine bundle with its statement edited to name the target, under a manifest whose
    // subject is the target: found, but its signature no longer verifies.
    let descriptor = &index["manifests"][0];
    let manifest = registry.manifest(&signed.repo, descriptor["digest"].as_str().unwrap()).unwrap();
    let mut bundle = registry.bundle(&signed.repo, descriptor["digest"].as_str().unwrap());
    let statement = bundle_statement(&bundle);
    let mut edited = statement.clone();
    edited["subject"][0]["digest"]["sha256"] = json!(target.digest.trim_start_matches("sha256:"));
    use base64::Engine as _;
    bundle["dsseEnvelope"]["payload"] =
        json!(base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&edited).unwrap()));
    let bytes = serde_json::to_vec(&bundle).unwrap();
    let blob = registry.put_blob(&target.repo, &bytes);
    let mut forged = manifest.clone();
    forged["layers"][0]["digest"] = json!(blob);
    forged["layers"][0]["size"] = json!(bytes.len());
    forged["subject"]["digest"] = json!(target.digest);
    let forged_digest = registry.put_manifest(&target.repo, &format!("forged-{}", &blob[7..19]), &forged);
    let mut forged_index = index.clone();
    forged_index["manifests"][0]["digest"] = json!(forged_digest);
    forged_index["manifests"][0]["size"] = json!(serde_json::to_vec(&forged).unwrap().len());
    registry.put_manifest(&target.repo, &target.fallback_tag(), &forged_index);
    let run = w.verify(&target.digest_ref, &[]);
    run.expect_exit(DENIED);
    assert_eq!(only_finding(&run)["kind"], "untrusted-signature");
}

/// Keyless signing with a local CA standing in for Fulcio: the right identity is admitted in
/// both formats on both registries; every way of being the wrong signer is refused, saying why.
#[test]
fn keyless_signatures_from_a_private_ca() {
    let ca = LocalCa::generate("trustgate test fulcio");
    let signer = ca.issue(&LeafSpec::uri(WORKFLOW_IDENTITY));
    let identity = exact_identity(WORKFLOW_IDENTITY, TEST_OIDC_ISSUER);
    for (kind, registry) in registries() {
        let w = Workspace::with(registry);
        let registry = w.registry();
        for new_bundle in [true, false] {
            eprintln!("{kind}, new bundle format {new_bundle}");
            let image = registry.push_image("apps/keyless", &format!("v{}", u8::from(new_bundle)));
            signer.sign_on(registry, &image.digest_ref, new_bundle);

            policy(&w, &keyless_authority(&identity, Some(&ca), "skip"), "");
            w.verify(&image.digest_ref, &[]).expect_exit(ADMITTED);
            policy(&w, &keyless_authority(&regexp_identity(SUBJECT_REGEXP), Some(&ca), "skip"), "");
            w.verify(&image.digest_ref, &[]).expect_exit(ADMITTED);

            let refused = |authority: String, words: &[&str]| {
                policy(&w, &authority, "");
                let run = w.verify(&image.digest_ref, &[]);
                run.expect_exit(DENIED);
                let finding = only_finding(&run);
                assert_eq!(finding["kind"], "untrusted-signature", "{kind} {new_bundle}: {finding:#}");
                assert_contains(&finding["message"].to_string(), words);
                let hint = format!(
                    "sign keylessly, as an identity the policy names (e.g. from CI): cosign sign {}",
                    image.digest_ref
                );
                assert_eq!(finding["hint"], hint.as_str());
            };
            let wrong_subject = exact_identity(
                "https://github.com/acme/other/.github/workflows/x.yml@refs/heads/main",
                TEST_OIDC_ISSUER,
            );
            refused(
                keyless_authority(&wrong_subject, Some(&ca), "skip"),
                &["none of the authority's identities", WORKFLOW_IDENTITY],
            );
            let wrong_issuer = exact_identity(WORKFLOW_IDENTITY, "https://token.actions.githubusercontent.com");
            refused(keyless_authority(&wrong_issuer, Some(&ca), "skip"), &["none of the authority's identities"]);
            // A regular expression matches the whole subject, not a part of it.
            refused(
                keyless_authority(&regexp_identity(r"https://github\.com/acme/app"), Some(&ca), "skip"),
                &["none of the authority's identities"],
            );
            let other_ca = LocalCa::generate("another ca");
            refused(keyless_authority(&identity, Some(&other_ca), "skip"), &["not issued by a certificate authority"]);
            refused(
                keyless_authority(&identity, Some(&ca), "require"),
                &["no transparency-log entry", "transparencyLog: require"],
            );
        }
    }
}

#[test]
fn expired_certificates_and_key_signatures_are_not_keyless_evidence() {
    let w = Workspace::with(Registry::start());
    let registry = w.registry();
    let ca = LocalCa::generate("trustgate test fulcio");
    let identity = exact_identity(WORKFLOW_IDENTITY, TEST_OIDC_ISSUER);
    policy(&w, &keyless_authority(&identity, Some(&ca), "skip"), "");

    let expired: CertSigner = ca.issue(&LeafSpec::uri(WORKFLOW_IDENTITY).expired());
    let image = registry.push_image("apps/expired", "v1");
    expired.sign_on(registry, &image.digest_ref, false);
    let run = w.verify(&image.digest_ref, &[]);
    run.expect_exit(DENIED);
    assert_contains(&only_finding(&run)["message"].to_string(), &["has expired"]);

    let key = KeyPair::generate(KeyType::P256);
    let image = registry.push_image("apps/key-signed", "v1");
    key.sign_bundle_on(registry, &image.digest_ref);
    let run = w.verify(&image.digest_ref, &[]);
    run.expect_exit(DENIED);
    assert_eq!(only_finding(&run)["kind"], "untrusted-signature");
}

/// `--trust-root FILE` is the trust root of keyless authorities that name none; without it the
/// public-good root applies, which did not issue the local CA's certificates.
#[test]
fn the_trust_root_flag_and_keyless_attestations() {
    let w = Workspace::with(Registry::start_referrers());
    let registry = w.registry();
    let ca = LocalCa::generate("trustgate test fulcio");
    let signer = ca.issue(&LeafSpec::uri(WORKFLOW_IDENTITY));
    let root = w.file("trusted_root.json", ca.trusted_root_json());
    let attestations = "  attestations:\n    - name: provenance\n      predicateType: https://slsa.dev/provenance/v1\n      authorities: [ci]\n      slsa:\n        builderIds: [\"https://github.com/actions/runner\"]\n";
    policy(&w, &keyless_authority(&exact_identity(WORKFLOW_IDENTITY, TEST_OIDC_ISSUER), None, "skip"), attestations);
    let image = registry.push_image("apps/attested", "v1");
    signer.sign_on(registry, &image.digest_ref, true);
    let predicate = fixture("slsa/provenance-v1.json");
    signer.attest_on(registry, &image.digest_ref, "slsaprovenance1", &predicate, true);

    w.verify(&image.digest_ref, &["--trust-root", &root.display().to_string()]).expect_exit(ADMITTED);
    let run = w.verify(&image.digest_ref, &[]);
    run.expect_exit(DENIED);
    assert_contains(&run.stdout, &["the Sigstore public-good root"]);

    // The classic format: a `.sig` and an `.att` carrying the certificate in annotations.
    let classic = registry.push_image("apps/attested-classic", "v1");
    signer.sign_on(registry, &classic.digest_ref, false);
    signer.attest_on(registry, &classic.digest_ref, "slsaprovenance1", &predicate, false);
    w.verify(&classic.digest_ref, &["--trust-root", &root.display().to_string()]).expect_exit(ADMITTED);
    // Signed but not attested by the identity: the attestation is missing.
    let unattested = registry.push_image("apps/unattested", "v1");
    signer.sign_on(registry, &unattested.digest_ref, false);
    let run = w.verify(&unattested.digest_ref, &["--trust-root", &root.display().to_string()]);
    run.expect_exit(DENIED);
    assert_eq!(only_finding(&run)["kind"], "attestation-missing");
}

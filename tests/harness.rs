//! Smoke test of the real-component harness in `tests/common`: a real registry, real images,
//! real cosign signatures in the classic format, checked by hand with `cosign verify`.

mod common;

use std::time::Instant;

use common::{
    copy_signature, tamper_signature_payload, write_policy, KeyPair, KeyType, Registry, SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
};

/// Every key type signs in the classic format; `cosign verify` accepts the right key and
/// rejects the wrong one.
#[test]
fn every_key_type_signs_in_the_classic_format() {
    let registry = Registry::start();
    let started = Instant::now();
    let keys: Vec<KeyPair> = KeyType::ALL.into_iter().map(KeyPair::generate).collect();
    eprintln!("4 key pairs generated in {:?}", started.elapsed());

    for key in &keys {
        let started = Instant::now();
        let tag = format!("{:?}", key.key_type).to_lowercase();
        let image = registry.push_image("smoke/signed", &tag);
        let pushed = started.elapsed();
        key.sign(&image.digest_ref);
        eprintln!("{:?}: push {pushed:?}, push+sign {:?}", key.key_type, started.elapsed());

        // The classic format: a `sha256-<hex>.sig` tag whose manifest has one simple-signing
        // layer carrying the signature annotation, and whose payload names the image digest.
        assert!(registry.tags(&image.repo).contains(&image.sig_tag()));
        let manifest = registry.signature_manifest(&image).expect("signature manifest");
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "{manifest}");
        assert_eq!(layers[0]["mediaType"], SIMPLE_SIGNING_MEDIA_TYPE);
        assert!(layers[0]["annotations"][SIGNATURE_ANNOTATION].is_string());
        let payload: serde_json::Value =
            serde_json::from_slice(&registry.blob(&image.repo, layers[0]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(payload["critical"]["image"]["docker-manifest-digest"], image.digest.as_str());
        assert_eq!(payload["critical"]["type"], "cosign container image signature");
        assert_eq!(payload["critical"]["identity"]["docker-reference"], image.repo_ref.as_str());

        if key.key_type.cosign_verify_works() {
            key.cosign_verify(&image.digest_ref)
                .unwrap_or_else(|e| panic!("{:?}: cosign verify failed: {e}", key.key_type));
        } else {
            // cosign v3.1.3 signs Ed25519ph but verifies pure Ed25519: when this starts to
            // pass, a newer cosign fixed it and `cosign_verify_works` should say so.
            assert!(key.cosign_verify(&image.digest_ref).is_err());
        }
        for other in keys.iter().filter(|k| k.key_type != key.key_type) {
            let err = other.cosign_verify(&image.digest_ref).expect_err("verified with the wrong key");
            assert!(err.contains("no matching signatures"), "{err}");
        }
    }

    // Unsigned image: no `.sig` tag, and cosign finds nothing.
    let unsigned = registry.push_image("smoke/signed", "unsigned");
    assert!(registry.signature_manifest(&unsigned).is_none());
    assert!(keys[0].cosign_verify(&unsigned.digest_ref).is_err());

    // A second signature on the same image is appended as a second layer.
    let twice = registry.push_image("smoke/signed", "twice");
    keys[0].sign(&twice.digest_ref);
    keys[2].sign(&twice.digest_ref);
    let manifest = registry.signature_manifest(&twice).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    keys[0].cosign_verify(&twice.digest_ref).unwrap();
    keys[2].cosign_verify(&twice.digest_ref).unwrap();
}

/// A signature copied from another image, and a tampered payload, no longer verify.
#[test]
fn copied_and_tampered_signatures_fail_cosign_verify() {
    let registry = Registry::start();
    let key = KeyPair::generate(KeyType::P256);
    let signed = registry.push_image("smoke/a", "signed");
    let other = registry.push_image("smoke/b", "other");
    let tampered = registry.push_image("smoke/a", "tampered");
    assert_ne!(signed.digest, other.digest);
    key.sign(&signed.digest_ref);
    key.sign(&tampered.digest_ref);
    key.cosign_verify(&tampered.digest_ref).unwrap();

    copy_signature(&registry, &signed, &other);
    assert_eq!(registry.signature_manifest(&other), registry.signature_manifest(&signed));
    let err = key.cosign_verify(&other.digest_ref).unwrap_err();
    assert!(err.contains("invalid or missing digest in claim"), "{err}");
    key.cosign_verify(&signed.digest_ref).unwrap();

    let before = registry.signature_manifest(&tampered).unwrap();
    let payload = tamper_signature_payload(&registry, &tampered);
    let after = registry.signature_manifest(&tampered).unwrap();
    assert_ne!(before["layers"][0]["digest"], after["layers"][0]["digest"]);
    assert_eq!(before["layers"][0]["annotations"], after["layers"][0]["annotations"]);
    let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["critical"]["image"]["docker-manifest-digest"], tampered.digest.as_str());
    let err = key.cosign_verify(&tampered.digest_ref).unwrap_err();
    assert!(err.contains("no matching signatures"), "{err}");
}

/// Registries are isolated, stop on demand, and clean up; policies are written as files.
#[test]
fn registry_lifecycle_and_policy_files() {
    let mut one = Registry::start();
    let two = Registry::start();
    assert_ne!(one.addr, two.addr);
    assert!(one.addr.starts_with("127.0.0.1:"));
    let image = one.push_image("smoke/life", "v1");
    assert_eq!(image.tag_ref, format!("{}/smoke/life:v1", one.addr));
    assert_eq!(image.digest_ref, format!("{}@{}", image.repo_ref, image.digest));
    assert!(two.tags("smoke/life").is_empty());
    // Pushing the same name twice gives two different images.
    let again = one.push_image("smoke/life", "v1");
    assert_ne!(image.digest, again.digest);

    assert!(one.is_running());
    one.stop();
    assert!(!one.is_running());
    assert!(std::net::TcpStream::connect(&one.addr).is_err());
    one.stop();

    let dir = tempfile::tempdir().unwrap();
    let path = write_policy(dir.path(), "p", "kind: ClusterImagePolicy\n");
    assert_eq!(path, dir.path().join("p.yaml"));
    assert_eq!(std::fs::read_to_string(path).unwrap(), "kind: ClusterImagePolicy\n");
}

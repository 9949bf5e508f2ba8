//! Verification of classic cosign signatures against policy keys.
//!
//! Order matters, and follows the advisories of our peers: the signature is verified over the
//! raw payload bytes first; only a verified payload is parsed, and its
//! `critical.image.docker-manifest-digest` must then equal the digest being admitted, so a
//! signature copied from another image never counts.

use serde::Deserialize;
use sigstore::crypto::Signature;

use super::SignatureLayer;
use crate::images::Digest;
use crate::policy::TrustedKey;

/// The `critical.type` of a cosign image signature payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// What the signatures of one image digest proved against one policy's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureReport {
    /// How many signatures the registry holds for the digest.
    pub examined: usize,
    /// Authorities (by name, each once, in policy order) with a valid signature over this digest.
    pub verified: Vec<String>,
    /// Digests named by payloads that verified against a policy key but were made for
    /// another image (a copied signature).
    pub other_digests: Vec<String>,
}

#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: CriticalImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct CriticalImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Checks every signature of `digest` against every key.
pub fn verify(keys: &[TrustedKey], digest: &Digest, layers: &[SignatureLayer]) -> SignatureReport {
    let mut report = SignatureReport { examined: layers.len(), ..Default::default() };
    for key in keys {
        for layer in layers {
            let signature = Signature::Base64Encoded(layer.signature.as_bytes());
            if key.key.verify_signature(signature, &layer.payload).is_err() {
                continue;
            }
            // Verified: from here on the payload is the signer's word.
            match serde_json::from_slice::<SimpleSigning>(&layer.payload) {
                Ok(p)
                    if p.critical.kind == SIMPLE_SIGNING_TYPE
                        && p.critical.image.docker_manifest_digest == digest.as_str() =>
                {
                    report.verified.push(key.name.clone());
                    break;
                }
                Ok(p) if p.critical.kind == SIMPLE_SIGNING_TYPE => {
                    let other = p.critical.image.docker_manifest_digest;
                    if !report.other_digests.contains(&other) {
                        report.other_digests.push(other);
                    }
                }
                // Signed, but not an image signature (or not one we can read): it vouches for nothing here.
                _ => {}
            }
        }
    }
    report
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sigstore::crypto::signing_key::SigStoreKeyPair;
    use sigstore::crypto::{CosignVerificationKey, SigningScheme};

    pub(crate) struct TestKey {
        signer: sigstore::crypto::SigStoreSigner,
        pub public_pem: String,
    }

    impl TestKey {
        pub(crate) fn new(scheme: SigningScheme) -> Self {
            let signer = scheme.create_signer().unwrap();
            let public_pem = signer.to_sigstore_keypair().unwrap().public_key_to_pem().unwrap();
            TestKey { signer, public_pem }
        }
        pub(crate) fn trusted(&self, name: &str) -> TrustedKey {
            TrustedKey {
                name: name.into(),
                key: CosignVerificationKey::try_from_pem(self.public_pem.as_bytes()).unwrap(),
            }
        }
        pub(crate) fn sign(&self, payload: &[u8]) -> SignatureLayer {
            use base64::Engine;
            let sig = self.signer.sign(payload).unwrap();
            SignatureLayer {
                digest: Digest::of(payload),
                payload: payload.to_vec(),
                signature: base64::engine::general_purpose::STANDARD.encode(sig),
            }
        }
    }

    pub(crate) fn payload(digest: &str) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"registry.acme.io/api"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes()
    }

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[allow(dead_code)]
    fn _keypair_type_is_used(_: SigStoreKeyPair) {}

    #[test]
    fn a_signature_by_a_policy_key_over_this_digest_verifies() {
        for scheme in
            [SigningScheme::ECDSA_P256_SHA256_ASN1, SigningScheme::ECDSA_P384_SHA384_ASN1, SigningScheme::ED25519]
        {
            let k = TestKey::new(scheme);
            let d = digest(1);
            let report = verify(&[k.trusted("release")], &d, &[k.sign(&payload(d.as_str()))]);
            assert_eq!(report.verified, vec!["release"]);
            assert_eq!(report.examined, 1);
        }
    }

    #[test]
    fn another_key_verifies_nothing() {
        let (signer, other) = (TestKey::new(SigningScheme::default()), TestKey::new(SigningScheme::default()));
        let d = digest(1);
        let report = verify(&[other.trusted("release")], &d, &[signer.sign(&payload(d.as_str()))]);
        assert!(report.verified.is_empty());
        assert!(report.other_digests.is_empty());
        assert_eq!(report.examined, 1);
    }

    #[test]
    fn a_signature_for_another_digest_is_reported_not_counted() {
        let k = TestKey::new(SigningScheme::default());
        let report = verify(&[k.trusted("release")], &digest(1), &[k.sign(&payload(digest(2).as_str()))]);
        assert!(report.verified.is_empty());
        assert_eq!(report.other_digests, vec![digest(2).to_string()]);
    }

    #[test]
    fn a_tampered_payload_fails() {
        let k = TestKey::new(SigningScheme::default());
        let d = digest(1);
        let mut layer = k.sign(&payload(digest(2).as_str()));
        layer.payload = payload(d.as_str());
        let report = verify(&[k.trusted("release")], &d, &[layer]);
        assert!(report.verified.is_empty() && report.other_digests.is_empty());
    }

    #[test]
    fn each_authority_counts_once() {
        let (a, b) = (TestKey::new(SigningScheme::default()), TestKey::new(SigningScheme::default()));
        let d = digest(1);
        let p = payload(d.as_str());
        let layers = [a.sign(&p), a.sign(&p), b.sign(&p)];
        let report = verify(&[a.trusted("a"), b.trusted("b")], &d, &layers);
        assert_eq!(report.verified, vec!["a", "b"]);
        assert_eq!(report.examined, 3);
    }
}

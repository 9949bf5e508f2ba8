//! Verification of classic cosign signatures against policy keys.
//!
//! Order matters, and follows the advisories of our peers: the signature is verified over the
//! raw payload bytes first; only a verified payload is parsed, and its
//! `critical.image.docker-manifest-digest` must then equal the digest being admitted, so a
//! signature copied from another image never counts.

use base64::Engine as _;
use serde::Deserialize;
use sigstore::crypto::{CosignVerificationKey, Signature};

use super::keyless::{classic_bundle, ClassicContent};
use super::SignatureLayer;
use crate::images::Digest;
use crate::policy::{Signer, TrustedKey};

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
    /// Why certificate-signed signatures were not accepted by keyless authorities, each once.
    pub reasons: Vec<String>,
}

impl SignatureReport {
    /// Records that `authority` verified a signature over this digest.
    pub fn verified_by(&mut self, authority: &str) {
        if !self.verified.iter().any(|v| v == authority) {
            self.verified.push(authority.to_owned());
        }
    }

    /// Records why a signature was not accepted.
    pub fn rejected(&mut self, reason: String) {
        if !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }
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
            match &key.signer {
                Signer::Key { key, .. } => {
                    if !signature_verifies(key, &layer.signature, &layer.payload) {
                        continue;
                    }
                }
                // A keyless authority needs the certificate; a key-signed layer is not its.
                Signer::Keyless(_) if layer.material.certificate.is_none() => continue,
                Signer::Keyless(keyless) => {
                    let content = ClassicContent::Message { payload: &layer.payload, signature_b64: &layer.signature };
                    let verified = classic_bundle(&layer.material, content).and_then(|bundle| {
                        keyless.verify(&bundle, sigstore_types::Artifact::from_blob(&layer.payload))
                    });
                    if let Err(why) = verified {
                        report.rejected(format!("{}: {why}", key.name));
                        continue;
                    }
                }
            }
            // Verified: from here on the payload is the signer's word.
            match serde_json::from_slice::<SimpleSigning>(&layer.payload) {
                Ok(p)
                    if p.critical.kind == SIMPLE_SIGNING_TYPE
                        && p.critical.image.docker_manifest_digest == digest.as_str() =>
                {
                    report.verified_by(&key.name);
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

/// Does `signature_b64` verify over `payload` with `key`?
///
/// cosign signs with Ed25519 keys in the pre-hashed variant (Ed25519ph, RFC 8032 §5.1), which
/// the sigstore crate does not verify; both variants are accepted for an Ed25519 key.
pub(crate) fn signature_verifies(key: &CosignVerificationKey, signature_b64: &str, payload: &[u8]) -> bool {
    if key.verify_signature(Signature::Base64Encoded(signature_b64.as_bytes()), payload).is_ok() {
        return true;
    }
    let CosignVerificationKey::ED25519(spki) = key else { return false };
    verify_ed25519ph(spki, signature_b64, payload)
}

fn verify_ed25519ph(spki: &[u8], signature_b64: &str, payload: &[u8]) -> bool {
    use ed25519_dalek::{Signature as EdSignature, VerifyingKey};
    use sha2::{Digest as _, Sha512};
    // An Ed25519 SubjectPublicKeyInfo is a fixed 12-byte header and the 32-byte key.
    let Some(raw) = spki.len().checked_sub(32).map(|start| &spki[start..]) else { return false };
    let (Ok(raw), Ok(sig)) =
        (<[u8; 32]>::try_from(raw), base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()))
    else {
        return false;
    };
    let (Ok(vk), Ok(sig)) = (VerifyingKey::from_bytes(&raw), EdSignature::from_slice(&sig)) else { return false };
    vk.verify_prehashed_strict(Sha512::new().chain_update(payload), None, &sig).is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sigstore::crypto::SigningScheme;

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
                signer: Signer::Key {
                    key: CosignVerificationKey::try_from_pem(self.public_pem.as_bytes()).unwrap(),
                    pem: self.public_pem.clone(),
                },
            }
        }
        pub(crate) fn sign(&self, payload: &[u8]) -> SignatureLayer {
            let sig = self.signer.sign(payload).unwrap();
            SignatureLayer {
                digest: Digest::of(payload),
                payload: payload.to_vec(),
                signature: base64::engine::general_purpose::STANDARD.encode(sig),
                material: Default::default(),
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
    fn ed25519ph_signatures_as_cosign_makes_them_verify() {
        use ed25519_dalek::SigningKey;
        use sha2::{Digest as _, Sha512};
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        // SPKI: SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING key }
        let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        spki.extend_from_slice(signing.verifying_key().as_bytes());
        let key = TrustedKey {
            name: "ed".into(),
            signer: Signer::Key { key: CosignVerificationKey::try_from_der(&spki).unwrap(), pem: String::new() },
        };
        let d = digest(1);
        let p = payload(d.as_str());
        let sig = signing.sign_prehashed(Sha512::new().chain_update(&p), None).unwrap();
        let layer = SignatureLayer {
            digest: Digest::of(&p),
            payload: p.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
            material: Default::default(),
        };
        assert_eq!(verify(std::slice::from_ref(&key), &d, std::slice::from_ref(&layer)).verified, vec!["ed"]);
        let mut altered = layer;
        altered.payload = payload(digest(2).as_str());
        assert!(verify(&[key], &d, &[altered]).verified.is_empty());
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

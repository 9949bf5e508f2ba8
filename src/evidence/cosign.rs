//! Verification of classic cosign signatures against policy keys.
//!
//! Order matters, and follows the advisories of our peers: the signature is verified over the
//! raw payload bytes first; only a verified payload is parsed, and its
//! `critical.image.docker-manifest-digest` must then equal the digest being admitted, so a
//! signature copied from another image never counts.

use base64::Engine as _;
use serde::Deserialize;
use sigstore::crypto::{CosignVerificationKey, Signature};

use super::keyless::{self, classic_bundle, ClassicContent};
use super::SignatureLayer;
use crate::images::Digest;
use crate::policy::{Signer, SignerId, TrustedKey};

/// The `critical.type` of a cosign image signature payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// What the signatures of one image digest proved against one policy's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureReport {
    /// How many signatures the registry holds for the digest.
    pub examined: usize,
    /// Authorities (by name, each once, in policy order) with a valid signature over this digest.
    pub verified: Vec<String>,
    /// Which signer verified for which authority (each pair once).
    pub signers: Vec<(String, SignerId)>,
    /// Digests named by payloads that verified against a policy key but were made for
    /// another image (a copied signature).
    pub other_digests: Vec<String>,
    /// Why certificate-signed signatures were not accepted by keyless authorities, each once.
    pub reasons: Vec<String>,
}

impl SignatureReport {
    /// Records that `authority` verified a signature over this digest, made by `signer`.
    pub fn verified_by(&mut self, authority: &str, signer: SignerId) {
        if !self.verified.iter().any(|v| v == authority) {
            self.verified.push(authority.to_owned());
        }
        if !self.signers.iter().any(|(a, s)| a == authority && *s == signer) {
            self.signers.push((authority.to_owned(), signer));
        }
    }

    /// How many authorities verified with a signer of their own: the largest matching of
    /// authorities to distinct signers (two authorities holding one key count once).
    pub fn distinct_signers(&self) -> usize {
        // Kuhn's augmenting paths; a policy has at most 32 authorities.
        let authorities: Vec<&str> = self.verified.iter().map(String::as_str).collect();
        let mut signers: Vec<SignerId> = self.signers.iter().map(|(_, s)| *s).collect();
        signers.sort();
        signers.dedup();
        let edges: Vec<Vec<usize>> = authorities
            .iter()
            .map(|a| {
                self.signers
                    .iter()
                    .filter(|(name, _)| name == a)
                    .filter_map(|(_, s)| signers.iter().position(|x| x == s))
                    .collect()
            })
            .collect();
        let mut owner: Vec<Option<usize>> = vec![None; signers.len()];
        fn augment(a: usize, edges: &[Vec<usize>], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
            for &s in edges.get(a).map(Vec::as_slice).unwrap_or_default() {
                if seen.get(s).copied().unwrap_or(true) {
                    continue;
                }
                if let Some(slot) = seen.get_mut(s) {
                    *slot = true;
                }
                let current = owner.get(s).copied().flatten();
                if current.is_none_or(|other| augment(other, edges, owner, seen)) {
                    if let Some(slot) = owner.get_mut(s) {
                        *slot = Some(a);
                    }
                    return true;
                }
            }
            false
        }
        (0..authorities.len()).filter(|&a| augment(a, &edges, &mut owner, &mut vec![false; signers.len()])).count()
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
            let signer = match &key.signer {
                Signer::Key { key, id, .. } => {
                    if !signature_verifies(key, &layer.signature, &layer.payload) {
                        continue;
                    }
                    *id
                }
                // A keyless authority needs the certificate; a key-signed layer is not its.
                Signer::Keyless(_) if layer.material.certificate.is_none() => continue,
                Signer::Keyless(keyless) => {
                    let content = ClassicContent::Message { payload: &layer.payload, signature_b64: &layer.signature };
                    let verified = classic_bundle(&layer.material, content).and_then(|bundle| {
                        keyless::verify(keyless, &bundle, sigstore_types::Artifact::from_blob(&layer.payload))
                    });
                    match verified {
                        Ok(certified) => SignerId::identity(&certified.issuer, &certified.subject),
                        Err(why) => {
                            report.rejected(format!("{}: {why}", key.name));
                            continue;
                        }
                    }
                }
            };
            // Verified: from here on the payload is the signer's word.
            match serde_json::from_slice::<SimpleSigning>(&layer.payload) {
                Ok(p)
                    if p.critical.kind == SIMPLE_SIGNING_TYPE
                        && p.critical.image.docker_manifest_digest == digest.as_str() =>
                {
                    report.verified_by(&key.name, signer);
                    break;
                }
                Ok(p) if p.critical.kind == SIMPLE_SIGNING_TYPE => {
                    let other = p.critical.image.docker_manifest_digest;
                    if !report.other_digests.contains(&other) {
                        report.other_digests.push(other);
                    }
                }
                // Signed by this authority, but not an image signature: it vouches for nothing
                // here, and the developer is told what it is instead.
                Ok(p) => report.rejected(format!(
                    "{}: signed a payload of type {:?}, not a cosign image signature ({SIMPLE_SIGNING_TYPE:?})",
                    key.name, p.critical.kind
                )),
                Err(e) => report.rejected(format!(
                    "{}: signed a payload that is not a cosign image signature (simple-signing JSON: {e})",
                    key.name
                )),
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
    let Some(raw) = spki.len().checked_sub(32).and_then(|start| spki.get(start..)) else { return false };
    let (Ok(raw), Ok(sig)) =
        (<[u8; 32]>::try_from(raw), base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()))
    else {
        return false;
    };
    let (Ok(vk), Ok(sig)) = (VerifyingKey::from_bytes(&raw), EdSignature::from_slice(&sig)) else { return false };
    vk.verify_prehashed_strict(Sha512::new().chain_update(payload), None, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{payload, TestKey};
    use sigstore::crypto::SigningScheme;

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
            signer: Signer::key(CosignVerificationKey::try_from_der(&spki).unwrap(), String::new()),
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

    /// The right key signed something that is not an image signature: the report says what,
    /// not "another key, or altered" (issue 9).
    #[test]
    fn a_signed_non_signature_payload_is_named() {
        let k = TestKey::new(SigningScheme::default());
        let d = digest(1);
        let other_type = payload(d.as_str()).replace_type("cosign container image attestation");
        let report = verify(&[k.trusted("release")], &d, &[k.sign(&other_type), k.sign(b"hello")]);
        assert!(report.verified.is_empty());
        assert_eq!(report.reasons.len(), 2, "{:?}", report.reasons);
        assert!(report.reasons[0].contains("release: signed a payload of type \"cosign container image attestation\", not a cosign image signature"), "{:?}", report.reasons);
        assert!(
            report.reasons[1].contains("release: signed a payload that is not a cosign image signature"),
            "{:?}",
            report.reasons
        );
    }

    trait ReplaceType {
        fn replace_type(self, kind: &str) -> Vec<u8>;
    }

    impl ReplaceType for Vec<u8> {
        fn replace_type(self, kind: &str) -> Vec<u8> {
            String::from_utf8(self).unwrap().replace("cosign container image signature", kind).into_bytes()
        }
    }

    #[test]
    fn one_key_under_two_names_is_one_signer() {
        let (a, b) = (TestKey::new(SigningScheme::default()), TestKey::new(SigningScheme::default()));
        let d = digest(1);
        let p = payload(d.as_str());
        let report = verify(&[a.trusted("a"), a.trusted("a-again")], &d, &[a.sign(&p)]);
        assert_eq!(report.verified, vec!["a", "a-again"]);
        assert_eq!(report.distinct_signers(), 1);
        let report = verify(&[a.trusted("a"), b.trusted("b")], &d, &[a.sign(&p), b.sign(&p)]);
        assert_eq!(report.distinct_signers(), 2);
        // x and y share signer 1; z has signers 2 and 3: at most 2 authorities with their own.
        let mut r = SignatureReport::default();
        let (s1, s2, s3) = (SignerId::key("1"), SignerId::key("2"), SignerId::key("3"));
        r.verified_by("x", s1);
        r.verified_by("y", s1);
        r.verified_by("z", s2);
        r.verified_by("z", s3);
        assert_eq!(r.distinct_signers(), 2);
        // An augmenting path: x first takes s1, which y needs; x moves to s2.
        let mut r = SignatureReport::default();
        r.verified_by("x", s1);
        r.verified_by("x", s2);
        r.verified_by("y", s1);
        assert_eq!(r.distinct_signers(), 2);
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

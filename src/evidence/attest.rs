//! Verification of cosign attestations: DSSE envelopes holding in-toto statements.
//!
//! Nothing inside an envelope is read before a signature over its pre-authentication encoding
//! (PAE) verifies with a key the policy allows for that attestation; then the statement must
//! name this image digest as its subject. Only then is the predicate handed to the SLSA or SBOM
//! checks.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::cosign::signature_verifies;
use super::keyless::{self, classic_bundle, ClassicContent};
use super::AttestationLayer;
use crate::images::Digest;
use crate::policy::{Signer, TrustedKey};

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    #[serde(default)]
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

/// The in-toto statement types an attestation may be (the in-toto attestation framework's
/// v0.1, which cosign v2 writes, and v1). Anything else is not an in-toto statement, however
/// its fields look.
pub const IN_TOTO_STATEMENT_TYPES: [&str; 2] = ["https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    type_: String,
    #[serde(default)]
    subject: Vec<Subject>,
    predicate_type: String,
    #[serde(default)]
    predicate: Value,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// A statement whose envelope verified with `signer` and whose subject is the image digest.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedStatement {
    /// The authority whose key verified the envelope.
    pub signer: String,
    pub predicate_type: String,
    pub predicate: Value,
}

/// Why an envelope was not accepted (for the per-attestation report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Not a DSSE envelope of an in-toto statement.
    Malformed(String),
    /// No signature verifies with any of the allowed keys.
    UntrustedSigner,
    /// A certificate-signed envelope that no allowed keyless authority accepted, and why.
    Keyless(String),
    /// Signed by an allowed key, but for another image.
    OtherSubject { predicate_type: String },
    /// Not read: over the size cap.
    TooLarge(String),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Malformed(m) => write!(f, "not a DSSE in-toto attestation: {m}"),
            Rejected::UntrustedSigner => f.write_str("signed by none of the allowed authorities (or altered)"),
            Rejected::Keyless(why) => f.write_str(why),
            Rejected::OtherSubject { predicate_type } => {
                write!(f, "{predicate_type} attestation for another image digest (copied?)")
            }
            Rejected::TooLarge(m) => write!(f, "not read: {m}"),
        }
    }
}

/// DSSE pre-authentication encoding (`DSSEv1 <len(type)> <type> <len(body)> <body>`), what a
/// DSSE signature signs: sigstore-types' (named here for the fuzz targets and test fixtures).
pub use sigstore_types::pae;

/// Verifies one envelope against `keys` and binds it to `digest`.
pub fn verify(keys: &[&TrustedKey], digest: &Digest, layer: &AttestationLayer) -> Result<VerifiedStatement, Rejected> {
    if let Some(m) = &layer.too_large {
        return Err(Rejected::TooLarge(m.clone()));
    }
    let envelope: Envelope = serde_json::from_slice(&layer.envelope).map_err(|e| Rejected::Malformed(e.to_string()))?;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Rejected::Malformed(format!("payload type {:?}", envelope.payload_type)));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope.payload.trim())
        .map_err(|e| Rejected::Malformed(format!("payload is not base64: {e}")))?;
    let message = pae(&envelope.payload_type, &payload);
    let signer = find_signer(keys, digest, layer, &envelope, &message)?;
    // Verified: from here on the statement is the signer's word.
    bound_statement(&signer.name, &payload, digest)
}

/// The first allowed authority whose key or certificate identity signed the envelope.
fn find_signer<'k>(
    keys: &[&'k TrustedKey],
    digest: &Digest,
    layer: &AttestationLayer,
    envelope: &Envelope,
    message: &[u8],
) -> Result<&'k TrustedKey, Rejected> {
    let mut keyless_reason = None;
    // Built once, when the first keyless authority needs it (an SBOM envelope can be large).
    let mut bundle = None;
    for k in keys {
        match &k.signer {
            Signer::Key { key, .. } => {
                if envelope.signatures.iter().any(|s| signature_verifies(key, &s.sig, message)) {
                    return Ok(k);
                }
            }
            Signer::Keyless(keyless) if layer.material.certificate.is_some() => {
                let built = bundle.get_or_insert_with(|| {
                    classic_bundle(&layer.material, ClassicContent::Dsse { envelope: &layer.envelope })
                });
                let verified = built
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|b| keyless::verify(keyless, b, sha256_artifact(digest)));
                match verified {
                    Ok(_) => return Ok(k),
                    Err(why) => keyless_reason = Some(format!("{}: {why}", k.name)),
                }
            }
            Signer::Keyless(_) => {}
        }
    }
    Err(keyless_reason.map_or(Rejected::UntrustedSigner, Rejected::Keyless))
}

/// The image digest as the artifact a DSSE bundle's subject must name.
pub(crate) fn sha256_artifact(digest: &Digest) -> sigstore_types::Artifact<'static> {
    sigstore_types::Artifact::from_digest(sigstore_types::Sha256Hash::new(digest.bytes()))
}

/// Parses a *verified* in-toto statement and requires it to name `digest` as a subject.
pub(crate) fn bound_statement(signer: &str, payload: &[u8], digest: &Digest) -> Result<VerifiedStatement, Rejected> {
    let statement: Statement =
        serde_json::from_slice(payload).map_err(|e| Rejected::Malformed(format!("statement: {e}")))?;
    if !IN_TOTO_STATEMENT_TYPES.contains(&statement.type_.as_str()) {
        return Err(Rejected::Malformed(format!(
            "statement _type {:?} is not an in-toto Statement (v0.1 or v1)",
            statement.type_
        )));
    }
    let ours = statement.subject.iter().any(|s| s.digest.get("sha256").is_some_and(|h| h == digest.hex()));
    if !ours {
        return Err(Rejected::OtherSubject { predicate_type: statement.predicate_type });
    }
    Ok(VerifiedStatement {
        signer: signer.to_owned(),
        predicate_type: statement.predicate_type,
        predicate: statement.predicate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{envelope, statement, TestKey};
    use serde_json::json;
    use sigstore::crypto::SigningScheme;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn a_signed_statement_for_this_digest_verifies() {
        let k = TestKey::new(SigningScheme::default());
        let d = Digest::of(b"img");
        let layer = envelope(&k, &statement(&d, "https://slsa.dev/provenance/v1", json!({"x": 1})));
        let v = verify(&[&k.trusted("release")], &d, &layer).unwrap();
        assert_eq!(v.signer, "release");
        assert_eq!(v.predicate["x"], 1);
    }

    #[test]
    fn other_keys_other_subjects_and_tampering_are_rejected() {
        let (k, other) = (TestKey::new(SigningScheme::default()), TestKey::new(SigningScheme::default()));
        let d = Digest::of(b"img");
        let layer = envelope(&k, &statement(&d, "https://slsa.dev/provenance/v1", json!({})));
        assert_eq!(verify(&[&other.trusted("o")], &d, &layer), Err(Rejected::UntrustedSigner));
        let copied = envelope(&k, &statement(&Digest::of(b"other"), "https://slsa.dev/provenance/v1", json!({})));
        assert!(matches!(verify(&[&k.trusted("k")], &d, &copied), Err(Rejected::OtherSubject { .. })));
        // Re-encode the payload with a changed predicate, keep the signature.
        let mut env: Value = serde_json::from_slice(&layer.envelope).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let forged =
            serde_json::to_vec(&statement(&d, "https://slsa.dev/provenance/v1", json!({"evil": true}))).unwrap();
        env["payload"] = json!(b64.encode(forged));
        let tampered = AttestationLayer {
            digest: Digest::of(b"t"),
            envelope: serde_json::to_vec(&env).unwrap(),
            too_large: None,
            material: Default::default(),
        };
        assert_eq!(verify(&[&k.trusted("k")], &d, &tampered), Err(Rejected::UntrustedSigner));
        let garbage = AttestationLayer {
            digest: Digest::of(b"g"),
            envelope: b"<html>".to_vec(),
            too_large: None,
            material: Default::default(),
        };
        assert!(matches!(verify(&[&k.trusted("k")], &d, &garbage), Err(Rejected::Malformed(_))));
    }

    /// Signed, bound to the digest, with a predicate type policies ask for: still not
    /// provenance unless it is an in-toto statement.
    #[test]
    fn only_in_toto_statements_are_read() {
        let k = TestKey::new(SigningScheme::default());
        let d = Digest::of(b"img");
        for (type_, accepted) in [
            (json!("https://in-toto.io/Statement/v1"), true),
            (json!("https://in-toto.io/Statement/v0.1"), true),
            (json!("https://in-toto.io/Statement/v2"), false),
            (json!("https://evil.example/Statement/v1"), false),
            (json!(null), false),
        ] {
            let mut s = statement(&d, "https://slsa.dev/provenance/v1", json!({}));
            s["_type"] = type_.clone();
            let result = verify(&[&k.trusted("k")], &d, &envelope(&k, &s));
            assert_eq!(result.is_ok(), accepted, "{type_}: {result:?}");
            if !accepted && type_.is_string() {
                assert!(
                    matches!(&result, Err(Rejected::Malformed(m)) if m.contains("is not an in-toto Statement")),
                    "{result:?}"
                );
            }
        }
        let mut untyped = statement(&d, "https://slsa.dev/provenance/v1", json!({}));
        untyped.as_object_mut().unwrap().remove("_type");
        assert!(matches!(verify(&[&k.trusted("k")], &d, &envelope(&k, &untyped)), Err(Rejected::Malformed(_))));
    }
}

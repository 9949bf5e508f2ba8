//! Test fixtures shared by the unit tests of several modules: a signing key, cosign's
//! simple-signing payload, in-toto statements and DSSE envelopes signed as cosign signs them.

use base64::Engine as _;
use serde_json::{json, Value};
use sigstore::crypto::{CosignVerificationKey, SigningScheme};

use crate::evidence::attest::{pae, IN_TOTO_PAYLOAD_TYPE};
use crate::evidence::{AttestationLayer, SignatureLayer};
use crate::images::Digest;
use crate::policy::{Signer, TrustedKey};

pub struct TestKey {
    signer: sigstore::crypto::SigStoreSigner,
    pub public_pem: String,
}

impl TestKey {
    pub fn new(scheme: SigningScheme) -> Self {
        let signer = scheme.create_signer().unwrap();
        let public_pem = signer.to_sigstore_keypair().unwrap().public_key_to_pem().unwrap();
        TestKey { signer, public_pem }
    }
    pub fn trusted(&self, name: &str) -> TrustedKey {
        TrustedKey {
            name: name.into(),
            signer: Signer::key(
                CosignVerificationKey::try_from_pem(self.public_pem.as_bytes()).unwrap(),
                self.public_pem.clone(),
            ),
        }
    }
    pub fn sign(&self, payload: &[u8]) -> SignatureLayer {
        let sig = self.signer.sign(payload).unwrap();
        SignatureLayer {
            digest: Digest::of(payload),
            payload: payload.to_vec(),
            signature: base64::engine::general_purpose::STANDARD.encode(sig),
            material: Default::default(),
        }
    }
}

pub fn payload(digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"registry.acme.io/api"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

/// A DSSE envelope over `statement`, signed by `key` as cosign does.
pub fn envelope(key: &TestKey, statement: &Value) -> AttestationLayer {
    let payload = serde_json::to_vec(statement).unwrap();
    let sig = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload)).signature;
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = serde_json::to_vec(&json!({
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": b64.encode(&payload),
        "signatures": [{"keyid": "", "sig": sig}]
    }))
    .unwrap();
    AttestationLayer { digest: Digest::of(&envelope), envelope, too_large: None, material: Default::default() }
}

pub fn statement(digest: &Digest, predicate_type: &str, predicate: Value) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": [{"name": "registry.acme.io/api", "digest": {"sha256": digest.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate
    })
}

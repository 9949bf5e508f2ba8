//! Classic cosign attestations: a DSSE envelope as a registry serves it (first half of the
//! input), and an in-toto statement signed by a trusted key (second half), so the statement
//! parser behind the signature check is reached.
#![no_main]

#[path = "common.rs"]
mod common;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use trustgate::evidence::attest::{self, IN_TOTO_PAYLOAD_TYPE};
use trustgate::evidence::AttestationLayer;
use trustgate::images::Digest;

fuzz_target!(|data: &[u8]| {
    let (envelope, statement) = data.split_at(data.len() / 2);
    let keys = [&common::key().trusted];
    let digest = common::digest();
    let layer = |envelope: Vec<u8>| AttestationLayer {
        digest: Digest::of(&envelope),
        envelope,
        too_large: None,
        material: Default::default(),
    };
    let _ = attest::verify(&keys, &digest, &layer(envelope.to_vec()));
    let signature = common::sign(&attest::pae(IN_TOTO_PAYLOAD_TYPE, statement));
    let signed = serde_json::json!({
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": base64::engine::general_purpose::STANDARD.encode(statement),
        "signatures": [{"keyid": "", "sig": signature}],
    });
    if let Ok(verified) = attest::verify(&keys, &digest, &layer(signed.to_string().into_bytes())) {
        assert_eq!(verified.signer, "release");
    }
});

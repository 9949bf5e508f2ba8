//! Sigstore bundles as OCI referrers carry them: parsed, then verified against a key
//! authority; and a DSSE bundle signed by the trusted key around a fuzzed statement, so what
//! is read after verification is reached too.
#![no_main]

#[path = "common.rs"]
mod common;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use trustgate::evidence::attest::{pae, IN_TOTO_PAYLOAD_TYPE};
use trustgate::evidence::{bundle, BundleLayer};
use trustgate::images::Digest;

fuzz_target!(|data: &[u8]| {
    let keys = [&common::key().trusted];
    let digest = common::digest();
    let layer = |bytes: Vec<u8>| BundleLayer { manifest: Digest::of(&bytes), bytes, too_large: None };
    let _ = bundle::verify_referrer(&keys, &digest, &bundle::parse(&layer(data.to_vec())));
    let b64 = base64::engine::general_purpose::STANDARD;
    let signed = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "fuzz"}},
        "dsseEnvelope": {
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "payload": b64.encode(data),
            "signatures": [{"keyid": "", "sig": common::sign(&pae(IN_TOTO_PAYLOAD_TYPE, data))}],
        },
    });
    let _ = bundle::verify_referrer(&keys, &digest, &bundle::parse(&layer(signed.to_string().into_bytes())));
});

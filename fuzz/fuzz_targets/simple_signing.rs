//! Classic cosign signature payloads (simple signing JSON), as a registry serves them: signed
//! by a trusted key, so the payload parser behind the signature check is reached, and unsigned.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use trustgate::evidence::cosign;
use trustgate::evidence::SignatureLayer;
use trustgate::images::Digest;

fuzz_target!(|payload: &[u8]| {
    let digest = common::digest();
    let signed = SignatureLayer {
        digest: Digest::of(payload),
        payload: payload.to_vec(),
        signature: common::sign(payload),
        material: Default::default(),
    };
    let forged = SignatureLayer { signature: String::from_utf8_lossy(payload).into_owned(), ..signed.clone() };
    let report = cosign::verify(std::slice::from_ref(&common::key().trusted), &digest, &[signed, forged]);
    assert!(report.verified.len() <= 1);
});

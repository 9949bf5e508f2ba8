//! What several targets share: one signing key, made once, that a policy trusts, so a target
//! can sign what the fuzzer makes and reach the code that reads only verified content.
#![allow(dead_code)]

use std::sync::OnceLock;

use base64::Engine as _;
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, SigningScheme};
use trustgate::policy::{Signer, TrustedKey};

pub struct Key {
    pub signer: SigStoreSigner,
    pub trusted: TrustedKey,
}

pub fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let signer = SigningScheme::ECDSA_P256_SHA256_ASN1.create_signer().expect("a P-256 key");
        let pem = signer.to_sigstore_keypair().expect("a key pair").public_key_to_pem().expect("a PEM");
        let key = CosignVerificationKey::try_from_pem(pem.as_bytes()).expect("our own key");
        Key { signer, trusted: TrustedKey { name: "release".into(), signer: Signer::key(key, pem) } }
    })
}

/// `message` signed by [`key`], base64 as cosign writes it.
pub fn sign(message: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key().signer.sign(message).expect("signing"))
}

/// The image digest the targets verify evidence for.
pub fn digest() -> trustgate::images::Digest {
    trustgate::images::Digest::of(b"the image")
}

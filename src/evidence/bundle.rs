//! Verification of sigstore bundles (v0.1–v0.3): a message signature or a DSSE envelope, with
//! its certificate or key, transparency-log entry and timestamps, over one artifact.
//!
//! Two entry points: [`verify_referrer`], for the bundles an image carries as OCI referrers
//! (against a policy's authorities, bound to the image digest), and [`verify_detached`], for
//! `verify-bundle` (one bundle over one artifact, against an exact identity and issuer or a
//! key), which runs the same keyless verification, so the conformance suite proves the
//! webhook's code. The cryptography is the `sigstore-verify` crate's; no network is used: the
//! public-good root is the snapshot shipped with the crate.

use std::time::SystemTime;

use std::sync::Arc;

use sigstore_types::{Bundle, DerPublicKey, Sha256Hash};
use sigstore_verify::PublicKeyVerificationPolicy;

use base64::Engine as _;
use sigstore_types::SignatureContent;

use super::attest::{bound_statement, pae, sha256_artifact, Rejected, VerifiedStatement, IN_TOTO_PAYLOAD_TYPE};
use super::cosign::signature_verifies;
use super::keyless::{self, KeylessError};
use super::BundleLayer;
use crate::images::Digest;
use crate::policy::predicate::COSIGN_SIGN;
use crate::policy::{Identity, Keyless, Matcher, Signer, SignerId, TrustRoot, TrustedKey};

/// What a verified referrer bundle vouches for.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// A signature over this image digest (a message signature, or a cosign sign statement).
    Signature,
    /// An attestation about this image digest.
    Attestation(VerifiedStatement),
}

/// A referrer bundle parsed (not verified: nothing in it is trusted yet), or why it cannot be.
pub type ParsedBundle = Result<Bundle, Rejected>;

/// Parses a referrer bundle, once, for [`verify_referrer`].
pub fn parse(layer: &BundleLayer) -> ParsedBundle {
    if let Some(m) = &layer.too_large {
        return Err(Rejected::TooLarge(m.clone()));
    }
    serde_json::from_slice(&layer.bytes).map_err(|e| Rejected::Malformed(format!("not a sigstore bundle: {e}")))
}

/// A referrer bundle that verified: which authority, which signer (key or certified
/// identity), and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Vouched {
    pub authority: String,
    pub signer: SignerId,
    pub claim: Claim,
}

/// Verifies a referrer bundle against the first of `authorities` that signed it, then binds it
/// to `digest`: the statement is read only after its signature verified.
pub fn verify_referrer(
    authorities: &[&TrustedKey],
    digest: &Digest,
    bundle: &ParsedBundle,
) -> Result<Vouched, Rejected> {
    let bundle = bundle.as_ref().map_err(Clone::clone)?;
    let mut keyless_reason = None;
    let mut signer = None;
    for authority in authorities {
        match &authority.signer {
            Signer::Key { key, pem, id } => {
                if key_signed(key, pem, bundle, digest) {
                    signer = Some((authority, *id));
                    break;
                }
            }
            Signer::Keyless(keyless) => {
                if bundle.signing_certificate().is_none() {
                    continue;
                }
                match keyless::verify(keyless, bundle, sha256_artifact(digest)) {
                    Ok(certified) => {
                        signer = Some((authority, SignerId::identity(&certified.issuer, &certified.subject)));
                        break;
                    }
                    Err(why) => keyless_reason = Some(format!("{}: {why}", authority.name)),
                }
            }
        }
    }
    let (authority, signer) =
        signer.ok_or_else(|| keyless_reason.map_or(Rejected::UntrustedSigner, Rejected::Keyless))?;
    let vouched = |claim| Ok(Vouched { authority: authority.name.clone(), signer, claim });
    // Verified: from here on the bundle's content is the signer's word.
    match &bundle.content {
        SignatureContent::MessageSignature(m) => {
            if m.message_digest.as_ref().is_some_and(|d| d.digest.as_bytes() == digest.bytes()) {
                vouched(Claim::Signature)
            } else {
                Err(Rejected::OtherSubject { predicate_type: "message signature".into() })
            }
        }
        SignatureContent::DsseEnvelope(envelope) => {
            if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
                return Err(Rejected::Malformed(format!("payload type {:?}", envelope.payload_type)));
            }
            let statement = bound_statement(&authority.name, envelope.payload.as_bytes(), digest)?;
            if statement.predicate_type == COSIGN_SIGN {
                vouched(Claim::Signature)
            } else {
                vouched(Claim::Attestation(statement))
            }
        }
        _ => Err(Rejected::Malformed("neither a message signature nor a DSSE envelope".into())),
    }
}

/// Did the policy key sign this bundle? Any log entry it carries is not needed: like a classic
/// key signature, a key bundle is trusted by its key alone (its `publicKey` hint is ignored).
fn key_signed(key: &sigstore::crypto::CosignVerificationKey, pem: &str, bundle: &Bundle, digest: &Digest) -> bool {
    match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => {
            let sig = base64::engine::general_purpose::STANDARD.encode(envelope.signature.sig.as_bytes());
            signature_verifies(key, &sig, &pae(&envelope.payload_type, envelope.payload.as_bytes()))
        }
        SignatureContent::MessageSignature(m) => {
            let digest = digest.bytes();
            if m.message_digest.as_ref().is_none_or(|d| d.digest.as_bytes() != digest.as_slice()) {
                return false;
            }
            let Ok(der) = DerPublicKey::from_pem(pem) else { return false };
            let Ok(algorithm) = sigstore_verify::crypto::KeyAlgorithm::from_spki(&der) else { return false };
            sigstore_verify::crypto::verify_signature_prehashed(
                &der,
                &digest,
                &m.signature,
                algorithm.default_signing_scheme(),
            )
            .is_ok()
        }
        _ => false,
    }
}

/// Largest bundle read; real bundles are a few KiB (a certificate chain and a log entry).
pub const MAX_BUNDLE_BYTES: usize = 4 << 20;

/// What a bundle is verified over.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    /// The artifact's bytes (for DSSE: the attestation's subject).
    Bytes(&'a [u8]),
    /// The artifact's sha256 digest, when the bytes are not at hand (an image manifest).
    Digest(&'a Digest),
}

/// Who must have signed the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// A managed key (PEM `PUBLIC KEY`); the bundle must carry no certificate.
    Key { pem: String },
    /// A Fulcio certificate whose SAN equals `identity` exactly and whose OIDC issuer extension
    /// equals `issuer` exactly.
    Identity { identity: String, issuer: String },
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The certificate's SAN (keyless bundles only).
    pub identity: Option<String>,
    /// The certificate's OIDC issuer (keyless bundles only).
    pub issuer: Option<String>,
    /// Signing time vouched for by the transparency log or a timestamp authority, if any.
    pub signed_at: Option<SystemTime>,
}

/// Why a bundle was not verified, or could not be.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the bundle is {size} bytes, over trustgate's cap of {MAX_BUNDLE_BYTES}")]
    TooLarge { size: usize },
    #[error("the bundle is not a valid sigstore bundle")]
    Parse(#[source] sigstore_types::Error),
    #[error("the public key is not a valid PEM public key")]
    Key(#[source] sigstore_types::Error),
    #[error("the artifact digest {0} is not a sha256 digest")]
    Digest(String),
    #[error("the bundle did not verify")]
    Verify(#[source] sigstore_verify::Error),
    #[error(transparent)]
    Keyless(KeylessError),
}

/// Verifies a detached bundle (`verify-bundle`, the sigstore-conformance protocol) over
/// `artifact`, signed by `authority`, against `root`. A certificate identity is checked by the
/// webhook's own keyless verification ([`keyless::verify`], exact issuer and subject, a log
/// entry required), so the conformance suite proves the code policies use. A managed key is
/// checked with its log entry and timestamps too, as the suite requires of a bundle; the webhook
/// trusts a key signature by its key alone (see [`verify_referrer`]).
pub fn verify_detached(
    root: &Arc<TrustRoot>,
    bundle: &[u8],
    artifact: Artifact<'_>,
    authority: &Authority,
) -> Result<Verified, BundleError> {
    if bundle.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge { size: bundle.len() });
    }
    let artifact: sigstore_types::Artifact<'_> = match artifact {
        Artifact::Bytes(bytes) => bytes.into(),
        Artifact::Digest(digest) => {
            Sha256Hash::from_hex(digest.hex()).map_err(|_| BundleError::Digest(digest.to_string()))?.into()
        }
    };
    // The key first: a bad key is a configuration error, whatever the bundle holds.
    enum Signer {
        Key(DerPublicKey),
        Identity(Keyless),
    }
    let signer = match authority {
        Authority::Key { pem } => Signer::Key(DerPublicKey::from_pem(pem).map_err(BundleError::Key)?),
        Authority::Identity { identity, issuer } => Signer::Identity(Keyless {
            identities: vec![Identity {
                issuer: Matcher::Exact(issuer.clone()),
                subject: Matcher::Exact(identity.clone()),
            }],
            trust_root: root.clone(),
            require_log: true,
        }),
    };
    let bundle: Bundle =
        serde_json::from_slice(bundle).map_err(|e| BundleError::Parse(sigstore_types::Error::Json(e)))?;
    match signer {
        Signer::Identity(keyless) => {
            let certified = keyless::verify(&keyless, &bundle, artifact).map_err(BundleError::Keyless)?;
            Ok(Verified {
                identity: Some(certified.subject),
                issuer: Some(certified.issuer),
                signed_at: certified.signed_at,
            })
        }
        Signer::Key(key) => {
            let result = root
                .verifier()
                .verify(artifact, &bundle, &PublicKeyVerificationPolicy::new(key))
                .map_err(BundleError::Verify)?;
            Ok(Verified {
                identity: None,
                issuer: None,
                signed_at: result.verified_timestamps().iter().min().map(|t| SystemTime::from(*t)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYI4heOTrNrZO27elFE8ynfrdPMik\nttRkbe+vJKQ50G6bfwQ3WyhLpRwwwohelDAm8xRzJ56nYsIa3VHivVvpmA==\n-----END PUBLIC KEY-----\n";

    fn public_good() -> Arc<TrustRoot> {
        Arc::new(TrustRoot::public_good().expect("the shipped public-good root loads"))
    }

    #[test]
    fn hostile_bundles_are_errors_not_panics() {
        let root = public_good();
        let key = Authority::Key { pem: KEY.to_owned() };
        for bundle in [&b""[..], b"null", b"{}", b"[]", b"{\"mediaType\": 5}", &[0xff; 64][..]] {
            let err = verify_detached(&root, bundle, Artifact::Bytes(b"x"), &key).unwrap_err();
            assert!(matches!(err, BundleError::Parse(_)), "{err:?}");
        }
        let huge = vec![b' '; MAX_BUNDLE_BYTES + 1];
        assert!(matches!(
            verify_detached(&root, &huge, Artifact::Bytes(b"x"), &key),
            Err(BundleError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_bad_trusted_root_or_key_says_which() {
        assert!(matches!(TrustRoot::from_json("{", "x".into()), Err(crate::policy::TrustRootError::Parse(_))));
        let err = verify_detached(
            &public_good(),
            b"{}",
            Artifact::Bytes(b"x"),
            &Authority::Key { pem: "not a key".to_owned() },
        )
        .unwrap_err();
        assert!(matches!(err, BundleError::Key(_)), "{err:?}");
    }
}

//! Evidence: what a registry holds about an image, and its cryptographic verification.
//!
//! IO sits behind the [`Registry`] trait (the HTTP implementation is [`RegistryClient`]); the
//! verification in [`cosign`] is pure and sees only bytes the client has already bound to
//! their content digests. Nothing read from a signature payload is trusted before its
//! signature verifies against a policy key.

pub mod attest;
mod auth;
pub mod budget;
pub mod bundle;
pub mod cosign;
pub mod keyless;
mod registry;

use std::time::Duration;

use async_trait::async_trait;

use crate::images::{Digest, ImageRef};

pub use auth::{parse_challenge, Challenge, Credentials, CredentialsError};
pub use budget::{Charge, MemoryBudget, MemoryLimits};
pub use registry::{Limits, RegistryClient, RegistryConfig, RegistryConfigError};

/// One classic cosign signature: the simple-signing payload and its base64 signature.
///
/// The payload's bytes have been checked against the layer's content digest by the client;
/// they are not trusted until [`cosign::verify`] has verified the signature over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// Digest of the payload blob, as the signature manifest names it.
    pub digest: Digest,
    pub payload: Vec<u8>,
    /// The `dev.cosignproject.cosign/signature` annotation.
    pub signature: String,
    /// The certificate material of a keyless signature (empty for a key signature).
    pub material: ClassicMaterial,
}

/// One attestation layer as the registry holds it: a DSSE envelope, its bytes bound to the
/// layer digest by the client, not yet trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationLayer {
    pub digest: Digest,
    pub envelope: Vec<u8>,
    /// Set, with the envelope left unread, when the layer is over trustgate's size cap.
    pub too_large: Option<String>,
    /// The certificate material of a keyless attestation (empty for a key attestation).
    pub material: ClassicMaterial,
}

/// The certificate material of a classic cosign layer (its annotations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassicMaterial {
    /// `dev.sigstore.cosign/certificate`: the signing certificate (PEM).
    pub certificate: Option<String>,
    /// `dev.sigstore.cosign/chain`: intermediates and root (PEM).
    pub chain: Option<String>,
    /// `dev.sigstore.cosign/bundle`: the transparency log's signed entry timestamp and entry.
    pub rekor_bundle: Option<String>,
}

/// A sigstore bundle attached to an image as an OCI referrer (through the referrers API or its
/// tag-schema fallback). The client has checked the referrer manifest's subject and the bytes'
/// digest; nothing in the bundle is trusted until it verifies (see [`bundle::verify_referrer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleLayer {
    /// Digest of the referrer (artifact) manifest.
    pub manifest: Digest,
    /// The bundle JSON.
    pub bytes: Vec<u8>,
    /// Set, with the bundle left unread, when it is over trustgate's size cap.
    pub too_large: Option<String>,
}

/// On whose behalf evidence is read: the workload's pull credentials (they win over the
/// server's own, `--registry-config`, for the hosts they name), and the image's [`Charge`],
/// which every byte read is taken from.
#[derive(Debug, Clone, Copy)]
pub struct Fetch<'a> {
    pub pull: &'a Credentials,
    pub charge: &'a Charge,
}

/// Reads evidence from registries, for one image of one review ([`Fetch`]).
#[async_trait]
pub trait Registry: Send + Sync {
    /// Resolves a tag to the digest the registry serves for it now.
    async fn resolve(&self, image: &ImageRef, fetch: Fetch<'_>) -> Result<Digest, RegistryError>;
    /// The classic cosign signatures (`sha256-<hex>.sig`) of `digest` in `image`'s repository;
    /// empty when the image has none.
    async fn signatures(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<SignatureLayer>, RegistryError>;
    /// The classic cosign attestations (`sha256-<hex>.att`) of `digest`: DSSE envelopes, not
    /// yet verified; empty when the image has none.
    async fn attestations(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<AttestationLayer>, RegistryError>;
    /// The sigstore bundles (cosign v3 signatures and attestations) that refer to `digest`;
    /// empty when there are none.
    async fn bundles(
        &self,
        _image: &ImageRef,
        _digest: &Digest,
        _fetch: Fetch<'_>,
    ) -> Result<Vec<BundleLayer>, RegistryError> {
        Ok(Vec::new())
    }
}

/// A registry could not give a trustworthy answer. Each variant has its own message, distinct
/// from "not signed": a developer must be able to tell an outage from a missing signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {host} is unreachable ({detail})")]
    Unreachable { host: String, detail: String },
    #[error("registry {host} did not answer within {timeout:?}")]
    Timeout { host: String, timeout: Duration },
    #[error("registry {host} refused access to {repository} (HTTP {status}); check the registry credentials")]
    Unauthorized { host: String, repository: String, status: u16 },
    #[error("{reference} was not found in {repository}")]
    NotFound { repository: String, reference: String },
    #[error("registry {host} answered HTTP {status} for {what}")]
    Status { host: String, what: String, status: u16 },
    #[error("registry {host} sent an invalid {what}: {detail}")]
    Invalid { host: String, what: String, detail: String },
    #[error("registry {host} sent {what} over trustgate's cap of {limit}")]
    TooLarge { host: String, what: String, limit: String },
    /// trustgate's own budget (memory for registry answers, or turns for requests to one
    /// registry) stayed taken by other work for `waited`: an overload, not a finding.
    #[error("trustgate is busy: its budget of {budget} stayed in use by other verifications for {waited:?}; retry")]
    Busy { budget: String, waited: Duration },
}

impl RegistryError {
    /// A stable, machine-readable name for the JSON output and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::Unreachable { .. } => "registry-unreachable",
            RegistryError::Timeout { .. } => "registry-timeout",
            RegistryError::Unauthorized { .. } => "registry-unauthorized",
            RegistryError::NotFound { .. } => "image-not-found",
            RegistryError::Status { .. } => "registry-error",
            RegistryError::Invalid { .. } => "registry-invalid-response",
            RegistryError::TooLarge { .. } => "registry-response-too-large",
            RegistryError::Busy { .. } => "evidence-budget-busy",
        }
    }
}

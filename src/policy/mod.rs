//! Policies, pure: what a security team writes, and what it requires of an image.
//!
//! Start at [`PolicySet::load_dir`] (file mode) and [`PolicySet::matching`]. A
//! [`ClusterImagePolicy`] ([`types`]) is validated once ([`compile`]) into a [`Policy`], which
//! keeps what evaluation needs precompiled (globs, selector, parsed keys) and a content hash
//! that keys the decision cache: editing a policy re-evaluates every image it governs.
//!
//! | module | what it holds |
//! |---|---|
//! | `types` | the CRD (`ClusterImagePolicy`), as the API server and policy files carry it |
//! | `compile`, `load` | validation with field paths; reading policy files |
//! | [`authority`] | keys, keyless identities and trust roots, as data |
//! | [`predicate`] | predicate types: one enum for policies and statements |
//! | `glob`, `selector` | which images and namespaces a policy governs |
//! | [`slsa`], [`sbom`] | the provenance and SBOM rules, checked against an already-verified predicate |
//!
//! Nothing here reads a registry or the cluster, or verifies a signature.

pub mod authority;
mod compile;
mod glob;
mod load;
pub mod predicate;
pub mod sbom;
mod selector;
pub mod slsa;
mod types;

use std::sync::Arc;

pub use glob::{star_match, Glob, GlobError};
pub use selector::{Labels, Selector, SelectorError};
pub use types::{
    AttestationSpec, Authority, ClusterImagePolicy, ClusterImagePolicySpec, ClusterImagePolicyStatus,
    Identity as IdentitySpec, ImageGlob, KeyAuthority, KeylessAuthority, Mode, SbomSpec, SecretKeyRef, Signatures,
    SlsaSpec, TransparencyLog, TrustRootSecretRef, TrustRootSource,
};

pub use authority::{
    DefaultTrustRoot, Identity, Keyless, Matcher, Signer, SignerId, TrustRoot, TrustRootError, TrustedKey,
};
pub use compile::{PolicyError, PolicyErrors};
pub use load::{parse_documents, parse_documents_with, LoadError};
pub use predicate::PredicateType;

pub use sbom::SbomRule;
pub use slsa::SlsaRule;

use crate::duration;

/// The label every namespace carries with its own name (Kubernetes ≥ 1.21). In file mode it is
/// the one label trustgate knows of a namespace, so selectors on it work there too.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The longest `sbom.maxAge` a policy may set (100 years; longer is a typo, or an attack on
/// the arithmetic).
pub const MAX_SBOM_AGE: std::time::Duration = std::time::Duration::from_secs(876_000 * 3600);

/// A validated policy, ready to evaluate.
#[derive(Debug)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    pub mode: Mode,
    pub require_digest: bool,
    globs: Vec<Glob>,
    selector: Selector,
    /// Signature requirement (threshold 0: keys that only vouch for attestations), if any.
    pub signatures: Option<SignatureRule>,
    /// Attestations required, every one.
    pub attestations: Vec<AttestationRule>,
    /// SHA-256 over the name, the canonical JSON of the spec and the resolved keys.
    pub hash: [u8; 32],
    /// Why the policy is invalid, if it is (cluster mode): the images it governs are denied
    /// (under its mode) with this.
    pub invalid: Option<String>,
}

/// `threshold` of `keys` must have signed.
#[derive(Debug)]
pub struct SignatureRule {
    pub threshold: usize,
    pub keys: Vec<TrustedKey>,
}

/// A required attestation, compiled.
#[derive(Debug)]
pub struct AttestationRule {
    pub name: String,
    pub predicate_type: PredicateType,
    /// Names of the signature authorities whose keys may sign it.
    pub authorities: Vec<String>,
    pub check: AttestationCheck,
}

/// What is checked in a verified attestation's predicate.
#[derive(Debug)]
pub enum AttestationCheck {
    /// Presence only.
    Present,
    Slsa(SlsaRule),
    Sbom(SbomRule),
}

/// What a caught panic says, for a message.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

impl Policy {
    /// Does this policy govern `repository` (normalised `host/path`) in a namespace with `labels`?
    pub fn applies_to(&self, repository: &str, labels: &Labels) -> bool {
        self.globs.iter().any(|g| g.matches(repository)) && self.selector.matches(labels)
    }

    /// Short hex of the content hash, for logs and the cache.
    pub fn hash_hex(&self) -> String {
        hex::encode(&self.hash[..6])
    }
}

/// The policies in force.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<Arc<Policy>>,
}

impl PolicySet {
    /// Builds a set from already-validated policies.
    pub fn new(mut policies: Vec<Arc<Policy>>) -> Self {
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        PolicySet { policies }
    }

    /// Every policy, by name.
    pub fn policies(&self) -> &[Arc<Policy>] {
        &self.policies
    }

    /// The policies that govern `repository` in a namespace with `labels`.
    pub fn matching<'a>(
        &'a self,
        repository: &'a str,
        labels: &'a Labels,
    ) -> impl Iterator<Item = &'a Arc<Policy>> + 'a {
        self.policies.iter().filter(move |p| p.applies_to(repository, labels))
    }
}

/// The policies in force, shared: the policy source (a file load, the cluster watcher)
/// [`publish`](Self::publish)es a new set, and the engine reads [`current`](Self::current) once
/// per review, so an evaluation in flight finishes with the set it started with.
#[derive(Debug, Clone, Default)]
pub struct PolicyStore(Arc<arc_swap::ArcSwap<PolicySet>>);

impl PolicyStore {
    pub fn new(set: PolicySet) -> Self {
        PolicyStore(Arc::new(arc_swap::ArcSwap::from_pointee(set)))
    }

    /// Puts `set` in force.
    pub fn publish(&self, set: PolicySet) {
        self.0.store(Arc::new(set));
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        self.0.load_full()
    }
}

impl From<PolicySet> for PolicyStore {
    fn from(set: PolicySet) -> Self {
        PolicyStore::new(set)
    }
}

//! Authorities: who may vouch for an image, as a policy names them. A public key
//! ([`Signer::Key`], parsed once when the policy compiles) or a keyless identity ([`Keyless`]:
//! issuer and subject matchers and the [`TrustRoot`] whose certificate authorities, logs and
//! timestamp authorities certify it).
//!
//! Data only: checking a signature against an authority is the evidence stage's
//! (`evidence::cosign`, `evidence::attest`, `evidence::bundle`, `evidence::keyless`).

use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use rustls_pki_types::{CertificateDer, TrustAnchor};
use sigstore::crypto::CosignVerificationKey;
use sigstore_trust_root::{SigstoreInstance, TrustedRoot};
use sigstore_types::TimeRange;
use sigstore_verify::Verifier;

/// A named authority from a policy: a public key or a keyless identity.
#[derive(Debug)]
pub struct TrustedKey {
    pub name: String,
    pub signer: Signer,
}

/// Who made a verified signature: a public key (by its DER bytes) or a certified identity
/// (issuer and subject). A threshold counts distinct signers, so one key or one identity
/// never stands for two authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignerId([u8; 32]);

impl SignerId {
    /// The signer behind a PEM public key.
    pub fn key(pem: &str) -> SignerId {
        use sha2::{Digest as _, Sha256};
        // The DER, so two PEM spellings of one key are one signer.
        let der = sigstore_types::DerPublicKey::from_pem(pem.trim()).map(|d| d.as_bytes().to_vec());
        let mut h = Sha256::new();
        h.update(b"key\0");
        h.update(der.as_deref().unwrap_or(pem.trim().as_bytes()));
        SignerId(h.finalize().into())
    }

    /// The signer behind a certificate identity.
    pub fn identity(issuer: &str, subject: &str) -> SignerId {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        for part in [b"identity".as_slice(), issuer.as_bytes(), subject.as_bytes()] {
            h.update(part);
            h.update([0]);
        }
        SignerId(h.finalize().into())
    }
}

/// How an authority's signatures are verified.
#[derive(Debug)]
pub enum Signer {
    /// A public key (`key`); `pem` is kept for bundle signatures verified over a digest, and
    /// `id` names the signer behind it (see [`Signer::key`]).
    Key { key: CosignVerificationKey, pem: String, id: SignerId },
    /// A certificate identity (`keyless`).
    Keyless(Keyless),
}

impl Signer {
    /// A key signer, its [`SignerId`] computed once, here.
    pub fn key(key: CosignVerificationKey, pem: String) -> Signer {
        let id = SignerId::key(&pem);
        Signer::Key { key, pem, id }
    }
}

impl TrustedKey {
    /// The key, for a key authority.
    pub fn key(&self) -> Option<&CosignVerificationKey> {
        match &self.signer {
            Signer::Key { key, .. } => Some(key),
            Signer::Keyless(_) => None,
        }
    }
}

/// The trust root of keyless authorities that name none: the operator's (`--trust-root`), or
/// else the Sigstore public-good root shipped with trustgate.
#[derive(Debug, Clone, Default)]
pub struct DefaultTrustRoot(Option<Arc<TrustRoot>>);

impl DefaultTrustRoot {
    /// The operator's root.
    pub fn new(root: TrustRoot) -> Self {
        DefaultTrustRoot(Some(Arc::new(root)))
    }

    pub(crate) fn get(&self) -> Result<Arc<TrustRoot>, String> {
        match &self.0 {
            Some(root) => Ok(root.clone()),
            None => public_good(),
        }
    }
}

/// The shipped public-good root, parsed once: it is the same data for the life of the process.
fn public_good() -> Result<Arc<TrustRoot>, String> {
    static PUBLIC_GOOD: std::sync::OnceLock<Arc<TrustRoot>> = std::sync::OnceLock::new();
    if let Some(root) = PUBLIC_GOOD.get() {
        return Ok(root.clone());
    }
    let root =
        TrustRoot::public_good().map_err(|e| format!("the shipped public-good trust root failed to load: {e}"))?;
    Ok(PUBLIC_GOOD.get_or_init(|| Arc::new(root)).clone())
}

/// Certificate authorities, transparency logs and timestamp authorities to trust, from a
/// sigstore `trusted_root.json`.
pub struct TrustRoot {
    verifier: Verifier,
    anchors: Vec<(TrustAnchor<'static>, Option<TimeRange>)>,
    ct_logs: bool,
    /// Where it came from, for messages (`the Sigstore public-good root`, a file, a Secret).
    pub label: String,
}

impl std::fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustRoot").field("label", &self.label).field("anchors", &self.anchors.len()).finish()
    }
}

/// Why a trust root cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustRootError {
    #[error("not a valid sigstore trusted_root.json: {0}")]
    Parse(String),
    #[error("cannot be used for verification: {0}")]
    Unusable(String),
    #[error("holds a certificate authority that is not a valid certificate: {0}")]
    BadAuthority(String),
    #[error("lists no certificate authority, so no keyless signature could verify")]
    NoAuthority,
}

impl TrustRoot {
    /// The Sigstore public-good instance, from the snapshot shipped with the sigstore crates
    /// (no network).
    pub fn public_good() -> Result<Self, TrustRootError> {
        let root = TrustedRoot::from_embedded(SigstoreInstance::PublicGood)
            .map_err(|e| TrustRootError::Parse(e.to_string()))?;
        Self::new(&root, "the Sigstore public-good root".into())
    }

    /// A `trusted_root.json` document; `label` says where it came from.
    pub fn from_json(json: &str, label: String) -> Result<Self, TrustRootError> {
        let root = TrustedRoot::from_json(json).map_err(|e| TrustRootError::Parse(e.to_string()))?;
        Self::new(&root, label)
    }

    fn new(root: &TrustedRoot, label: String) -> Result<Self, TrustRootError> {
        let verifier = Verifier::new(root).map_err(|e| TrustRootError::Unusable(e.to_string()))?;
        let mut anchors = Vec::new();
        for ca in &root.certificate_authorities {
            for cert in &ca.cert_chain.certificates {
                let der = CertificateDer::from(cert.raw_bytes.as_bytes());
                let anchor =
                    webpki::anchor_from_trusted_cert(&der).map_err(|e| TrustRootError::BadAuthority(e.to_string()))?;
                anchors.push((anchor.to_owned(), ca.valid_for));
            }
        }
        if anchors.is_empty() {
            return Err(TrustRootError::NoAuthority);
        }
        Ok(TrustRoot { verifier, anchors, ct_logs: !root.ctlogs.is_empty(), label })
    }

    /// The verifier of bundles with a log entry or a timestamp.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The certificate authorities valid at `at`, as webpki trust anchors (for signatures
    /// with no trusted signing time, checked against now).
    pub fn anchors_at(&self, at: jiff::Timestamp) -> Vec<TrustAnchor<'_>> {
        self.anchors
            .iter()
            .filter(|(_, window)| window.is_none_or(|w| w.contains(at)))
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Does the root list certificate-transparency logs (so certificates embed SCTs)?
    pub fn has_ct_logs(&self) -> bool {
        self.ct_logs
    }
}

/// Matches an issuer or a subject: exactly, or by a regular expression over the whole value.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    /// Anchored at both ends: `https://github\.com/acme/.+` does not match
    /// `https://evil.example/?https://github.com/acme/x`.
    Regex {
        pattern: String,
        regex: Regex,
    },
}

impl Matcher {
    /// A regular expression that must match the whole value (RE2 syntax, linear time).
    pub fn regex(pattern: &str) -> Result<Self, String> {
        let regex = RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("is not a valid regular expression: {e}"))?;
        Ok(Matcher::Regex { pattern: pattern.to_owned(), regex })
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex { regex, .. } => regex.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s}"),
            Matcher::Regex { pattern, .. } => write!(f, "/{pattern}/"),
        }
    }
}

/// One acceptable identity: both must match.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: Matcher,
    pub subject: Matcher,
}

/// A keyless authority, compiled.
#[derive(Debug, Clone)]
pub struct Keyless {
    pub identities: Vec<Identity>,
    pub trust_root: Arc<TrustRoot>,
    /// `transparencyLog: require`.
    pub require_log: bool,
}

pub(crate) fn parse_public_key(pem: &str) -> Result<CosignVerificationKey, String> {
    let trimmed = pem.trim();
    if !trimmed.starts_with("-----BEGIN PUBLIC KEY-----") {
        return Err("must be a PEM public key (-----BEGIN PUBLIC KEY-----), e.g. the contents of cosign.pub".into());
    }
    CosignVerificationKey::try_from_pem(trimmed.as_bytes())
        .map_err(|e| format!("not a supported public key (ECDSA P-256/P-384/P-521, RSA, Ed25519): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_expressions_match_the_whole_value() {
        let m = Matcher::regex(r"https://github\.com/acme/.+").unwrap();
        assert!(m.matches("https://github.com/acme/app"));
        assert!(!m.matches("https://evil.example/?https://github.com/acme/app"));
        assert!(!m.matches("https://github.com/acme/app\nhttps://evil"));
        assert!(!m.matches("https://github.com/acme/"));
        // Alternation cannot escape the anchors.
        let m = Matcher::regex("a|b").unwrap();
        assert!(m.matches("a") && m.matches("b") && !m.matches("ab") && !m.matches("xa"));
        assert!(Matcher::regex("(unclosed").unwrap_err().contains("not a valid regular expression"));
        assert!(Matcher::regex(&"a{1000}{1000}".repeat(4)).is_err(), "oversized programs are refused");
    }
}

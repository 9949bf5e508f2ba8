//! Decisions: per image and per policy, aggregated into allow / deny / warn, and the messages a
//! developer reads. Pure: no IO, no clocks.
//!
//! Start at [`decide`]. Every failing image gets one line that names its field path, the image
//! and digest, the policy, what failed, and how to fix it.

mod judge;
mod render;

pub use judge::{judge, Evidence};

use std::time::Duration;

use crate::evidence::RegistryError;
use crate::images::Digest;
use crate::policy::Mode;

pub use render::attestation_label;

/// The most lines one denial or warning list carries; the API server shows the message to a
/// person, and a 10,000-container object must not produce a megabyte of text.
pub const MAX_LINES: usize = 20;

/// What the operator chose for images that no policy governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// Deny them (zero trust).
    #[default]
    Deny,
    /// Admit them.
    Allow,
}

/// A reason an image fails a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The policy has `requireDigest` and the image is referenced by tag.
    DigestRequired,
    /// No signature exists for the digest. `keyless`: every authority is a keyless identity
    /// (the hint then says to sign keylessly, not with a key).
    NotSigned { authorities: Vec<String>, keyless: bool },
    /// Signatures exist, none verifies with a policy authority.
    /// `reasons`: why certificate-signed ones were refused by keyless authorities.
    UntrustedSignatures { found: usize, authorities: Vec<String>, reasons: Vec<String>, keyless: bool },
    /// A policy key signed another digest; the signature was copied onto this image.
    SignedForAnotherDigest { signed_for: Vec<String>, authorities: Vec<String> },
    /// Fewer distinct authorities verified than the threshold; `signers`: how many of those
    /// that verified did so with a signer (key or identity) of their own.
    ThresholdNotMet { verified: Vec<String>, signers: usize, threshold: usize, authorities: Vec<String> },
    /// No verified attestation of the required type for this digest.
    /// `rejected` envelopes were examined and not accepted, for the distinct `reasons`.
    AttestationMissing { predicate_type: String, authorities: Vec<String>, rejected: usize, reasons: Vec<String> },
    /// A verified attestation of the required type failed its checks.
    AttestationFailed { predicate_type: String, problems: Vec<String> },
}

/// Why an image could not be evaluated against a policy. These deny under `enforce` (trustgate
/// fails closed) and say so, distinct from every [`Finding`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("could not evaluate: {0}")]
    Registry(#[from] RegistryError),
    /// The deadline passed; `started`: the image's verification was running (and goes on
    /// into the cache), not still waiting for its turn.
    #[error("could not evaluate within the {budget:?} admission deadline ({})", if *started {
        "a registry is slow or unreachable; the verification goes on, so a retry may be answered from the cache"
    } else {
        "not started: trustgate was verifying the workload's other images, or other workloads'"
    })]
    Deadline { budget: Duration, started: bool },
    #[error("the policy is invalid, so nothing it governs is admitted: {0}")]
    InvalidPolicy(String),
    /// A bug in trustgate; denied, never admitted.
    #[error("trustgate failed to evaluate it: {0}")]
    Internal(String),
}

impl EvalError {
    /// Stable name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            EvalError::Registry(e) => e.kind(),
            EvalError::Deadline { .. } => "deadline-exceeded",
            EvalError::InvalidPolicy(_) => "policy-invalid",
            EvalError::Internal(_) => "internal-error",
        }
    }
}

/// The result of one policy for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every requirement is met; `verified_by` names the authorities whose signatures verified.
    Passed {
        verified_by: Vec<String>,
    },
    Failed(Vec<Finding>),
    Error(EvalError),
}

/// One attestation envelope examined for a required attestation, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExaminedAttestation {
    /// The policy's name for the required attestation.
    pub attestation: String,
    /// The statement's predicate type, once its signature verified.
    pub predicate_type: Option<String>,
    /// The authority whose key verified it.
    pub signer: Option<String>,
    pub accepted: bool,
    /// Why it was accepted or not.
    pub reason: String,
}

/// The outcome of one policy's evidence checks, with the attestations examined: what the
/// decision cache keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub outcome: Outcome,
    pub examined: Vec<ExaminedAttestation>,
}

impl From<Outcome> for Judgement {
    fn from(outcome: Outcome) -> Self {
        Judgement { outcome, examined: Vec::new() }
    }
}

/// One policy's verdict on one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResult {
    pub policy: String,
    pub mode: Mode,
    pub outcome: Outcome,
    /// Attestations examined (empty when the policy requires none).
    pub examined: Vec<ExaminedAttestation>,
}

/// A problem with the image itself, before any policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageProblem {
    /// No policy governs the image.
    Unmatched { repository: String },
    /// The reference does not parse.
    InvalidReference(String),
    /// Its evaluation did not finish, and no policy is known to govern it.
    NotEvaluated(EvalError),
}

/// Everything decided about one image of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageResult {
    /// JSON field path (`spec.containers[0].image`).
    pub path: String,
    pub container: String,
    /// The reference as written.
    pub image: String,
    /// Normalised repository (`docker.io/library/nginx`), when the reference parses.
    pub repository: Option<String>,
    /// The digest evaluated, when known.
    pub digest: Option<Digest>,
    pub problem: Option<ImageProblem>,
    pub policies: Vec<PolicyResult>,
}

impl ImageResult {
    /// Is this image admitted, given the operator's choice for unmatched images?
    pub fn allowed(&self, unmatched: Unmatched) -> bool {
        match &self.problem {
            Some(ImageProblem::Unmatched { .. }) => unmatched == Unmatched::Allow,
            Some(ImageProblem::InvalidReference(_) | ImageProblem::NotEvaluated(_)) => false,
            // Nothing decided it (no problem, and no policy): fail closed.
            None if self.policies.is_empty() => false,
            None => {
                self.policies.iter().all(|p| p.mode != Mode::Enforce || matches!(p.outcome, Outcome::Passed { .. }))
            }
        }
    }
}

/// The aggregated answer for one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// One line per failure under `enforce` (and unmatched or invalid images).
    pub denials: Vec<String>,
    /// One line per failure under `warn`; `kubectl` prints these.
    pub warnings: Vec<String>,
    /// One line per failure under `audit`; logged only.
    pub audits: Vec<String>,
    pub images: Vec<ImageResult>,
    pub unmatched: Unmatched,
}

/// Aggregates image results into a decision.
pub fn decide(images: Vec<ImageResult>, unmatched: Unmatched) -> Decision {
    let mut d =
        Decision { allowed: true, denials: vec![], warnings: vec![], audits: vec![], images: vec![], unmatched };
    for image in &images {
        d.allowed &= image.allowed(unmatched);
        match &image.problem {
            Some(ImageProblem::Unmatched { repository }) if unmatched == Unmatched::Deny => d.denials.push(format!(
                "{}: no ClusterImagePolicy governs {repository}, and unmatched images are denied; add a policy whose images glob covers it",
                image.subject()
            )),
            Some(ImageProblem::Unmatched { .. }) => {}
            Some(ImageProblem::InvalidReference(e)) => d.denials.push(format!("{}: {e}", image.subject())),
            Some(ImageProblem::NotEvaluated(e)) => d.denials.push(format!("{}: {e}", image.subject())),
            None if image.policies.is_empty() => {
                d.denials.push(format!("{}: trustgate reached no decision for it, so it is denied", image.subject()))
            }
            None => {}
        }
        for p in &image.policies {
            let lines: Vec<String> = match &p.outcome {
                Outcome::Passed { .. } => continue,
                Outcome::Failed(findings) => findings
                    .iter()
                    .map(|f| {
                        format!(
                            "{}: policy {:?}: {}; {}",
                            image.subject(),
                            p.policy,
                            f.message(),
                            f.hint(&image.pinned())
                        )
                    })
                    .collect(),
                Outcome::Error(e) => vec![format!("{}: policy {:?}: {e}", image.subject(), p.policy)],
            };
            match p.mode {
                Mode::Enforce => d.denials.extend(lines),
                Mode::Warn => d.warnings.extend(lines),
                Mode::Audit => d.audits.extend(lines),
            }
        }
    }
    d.images = images;
    d
}

/// Caps a list of lines at [`MAX_LINES`], saying how many were left out.
pub fn capped(lines: &[String]) -> Vec<String> {
    if lines.len() <= MAX_LINES {
        return lines.to_vec();
    }
    let mut out: Vec<String> = lines.iter().take(MAX_LINES).cloned().collect();
    out.push(format!("… and {} more", lines.len().saturating_sub(MAX_LINES)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::of(b"image")
    }

    fn image(policies: Vec<PolicyResult>) -> ImageResult {
        ImageResult {
            path: "spec.template.spec.containers[1].image".into(),
            container: "api".into(),
            image: "registry.acme.io/api:v1".into(),
            repository: Some("registry.acme.io/api".into()),
            digest: Some(digest()),
            problem: None,
            policies,
        }
    }

    fn result(mode: Mode, outcome: Outcome) -> PolicyResult {
        PolicyResult { policy: "acme-release".into(), mode, outcome, examined: vec![] }
    }

    fn not_signed() -> Outcome {
        Outcome::Failed(vec![Finding::NotSigned { authorities: vec!["release-key".into()], keyless: false }])
    }

    #[test]
    fn an_enforced_failure_denies_with_an_actionable_line() {
        let d = decide(vec![image(vec![result(Mode::Enforce, not_signed())])], Unmatched::Deny);
        assert!(!d.allowed);
        assert_eq!(
            d.denials,
            vec![format!(
                "spec.template.spec.containers[1].image registry.acme.io/api:v1 ({0}): policy \"acme-release\": \
                 no signature found; the policy requires one verified by [release-key]; \
                 sign with: cosign sign --key <key> registry.acme.io/api@{0}",
                digest()
            )]
        );
        assert!(d
            .message("Deployment default/api")
            .starts_with("trustgate denied Deployment default/api:\n  spec.template"));
    }

    #[test]
    fn warn_admits_with_a_warning_and_audit_admits_silently() {
        let d = decide(vec![image(vec![result(Mode::Warn, not_signed())])], Unmatched::Deny);
        assert!(d.allowed);
        assert_eq!(d.warnings.len(), 1);
        assert!(d.denials.is_empty());
        let d = decide(vec![image(vec![result(Mode::Audit, not_signed())])], Unmatched::Deny);
        assert!(d.allowed && d.warnings.is_empty() && d.denials.is_empty());
        assert_eq!(d.audits.len(), 1);
    }

    #[test]
    fn every_policy_must_pass() {
        let pass = result(Mode::Enforce, Outcome::Passed { verified_by: vec!["release-key".into()] });
        assert!(decide(vec![image(vec![pass.clone()])], Unmatched::Deny).allowed);
        assert!(!decide(vec![image(vec![pass, result(Mode::Enforce, not_signed())])], Unmatched::Deny).allowed);
    }

    #[test]
    fn unmatched_images_follow_the_operator_choice() {
        let mut i = image(vec![]);
        i.problem = Some(ImageProblem::Unmatched { repository: "registry.acme.io/api".into() });
        let d = decide(vec![i.clone()], Unmatched::Deny);
        assert!(!d.allowed);
        assert!(d.denials[0].contains("no ClusterImagePolicy governs registry.acme.io/api"), "{}", d.denials[0]);
        assert!(decide(vec![i], Unmatched::Allow).allowed);
    }

    #[test]
    fn registry_errors_deny_with_their_own_message() {
        let err = EvalError::Registry(RegistryError::Unreachable {
            host: "registry.acme.io".into(),
            detail: "Connection refused".into(),
        });
        let d = decide(vec![image(vec![result(Mode::Enforce, Outcome::Error(err))])], Unmatched::Deny);
        assert!(!d.allowed);
        assert!(
            d.denials[0].ends_with("could not evaluate: registry registry.acme.io is unreachable (Connection refused)"),
            "{}",
            d.denials[0]
        );
        assert!(!d.denials[0].contains("no signature"));
    }

    #[test]
    fn finding_messages_are_distinct() {
        let a = vec!["release-key".to_string()];
        let findings = [
            Finding::DigestRequired,
            Finding::NotSigned { authorities: a.clone(), keyless: false },
            Finding::UntrustedSignatures { found: 2, authorities: a.clone(), reasons: vec![], keyless: false },
            Finding::SignedForAnotherDigest { signed_for: vec!["sha256:00".into()], authorities: a.clone() },
            Finding::ThresholdNotMet {
                verified: a.clone(),
                signers: 1,
                threshold: 2,
                authorities: vec!["release-key".into(), "ci".into()],
            },
            Finding::ThresholdNotMet {
                verified: vec!["release-key".into(), "ci".into()],
                signers: 1,
                threshold: 2,
                authorities: vec!["release-key".into(), "ci".into()],
            },
        ];
        let messages: std::collections::HashSet<String> = findings.iter().map(Finding::message).collect();
        assert_eq!(messages.len(), findings.len());
        assert_eq!(
            findings[4].hint("r/a@sha256:1"),
            "also sign with the key of [ci]: cosign sign --key <key> r/a@sha256:1"
        );
        assert_eq!(
            findings[2].message(),
            "2 signatures found, none verified by any of [release-key] (signed with another key, or altered)"
        );
        assert_eq!(
            findings[5].message(),
            "verified by [release-key, ci] but by only 1 distinct signer, and the policy requires 2 of [release-key, ci] (one key or identity counts once)"
        );
    }

    #[test]
    fn long_lists_are_capped() {
        let lines: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        let c = capped(&lines);
        assert_eq!(c.len(), MAX_LINES + 1);
        assert_eq!(c.last().unwrap(), "… and 5 more");
    }

    #[test]
    fn json_lists_each_image_with_findings() {
        let d = decide(vec![image(vec![result(Mode::Enforce, not_signed())])], Unmatched::Deny);
        let j = d.to_json();
        assert_eq!(j["allowed"], false);
        assert_eq!(j["images"][0]["digest"], digest().as_str());
        assert_eq!(j["images"][0]["policies"][0]["result"], "fail");
        assert_eq!(j["images"][0]["policies"][0]["findings"][0]["kind"], "not-signed");
    }
}

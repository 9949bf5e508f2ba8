//! The messages a developer reads: each finding's line and fix, the denial message for the API
//! server, and the JSON of `--output json` and the audit report.

use serde_json::{json, Value};

use super::{capped, Decision, Finding, ImageProblem, ImageResult, Outcome, Unmatched};
use crate::images::Digest;
use crate::policy::PredicateType;

/// How a developer names an attestation of this predicate type.
pub fn attestation_label(predicate_type: &str) -> String {
    PredicateType::of_statement(predicate_type).label().to_owned()
}

fn cosign_type(predicate_type: &str) -> &'static str {
    PredicateType::of_statement(predicate_type).cosign_type()
}

impl Finding {
    /// Stable name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::DigestRequired => "digest-required",
            Finding::NotSigned { .. } => "not-signed",
            Finding::UntrustedSignatures { .. } => "untrusted-signature",
            Finding::SignedForAnotherDigest { .. } => "digest-mismatch",
            Finding::ThresholdNotMet { .. } => "threshold-not-met",
            Finding::AttestationMissing { .. } => "attestation-missing",
            Finding::AttestationFailed { .. } => "attestation-failed",
        }
    }

    /// What failed, in a developer's terms.
    pub fn message(&self) -> String {
        match self {
            Finding::DigestRequired => "referenced by tag, but the policy requires a digest".into(),
            Finding::NotSigned { authorities, .. } => {
                format!("no signature found; the policy requires one verified by {}", list(authorities))
            }
            Finding::UntrustedSignatures { found, authorities, reasons, .. } if reasons.is_empty() => format!(
                "{found} signature{} found, none verified by any of {} (signed with another key, or altered)",
                if *found == 1 { "" } else { "s" },
                list(authorities)
            ),
            Finding::UntrustedSignatures { found, authorities, reasons, .. } => format!(
                "{found} signature{} found, none verified by any of {}: {}",
                if *found == 1 { "" } else { "s" },
                list(authorities),
                reasons.join("; ")
            ),
            Finding::SignedForAnotherDigest { signed_for, authorities } => format!(
                "the signature by {} is for another image ({}), not this digest; a signature was copied",
                list(authorities),
                signed_for.join(", ")
            ),
            Finding::ThresholdNotMet { verified, signers, threshold, authorities } if *signers < verified.len() => {
                format!(
                    "verified by {} but by only {signers} distinct signer{}, and the policy requires {threshold} of {} (one key or identity counts once)",
                    list(verified),
                    if *signers == 1 { "" } else { "s" },
                    list(authorities)
                )
            }
            Finding::ThresholdNotMet { verified, threshold, authorities, .. } => format!(
                "verified by {} but the policy requires {threshold} of {}",
                if verified.is_empty() { "none".into() } else { list(verified) },
                list(authorities)
            ),
            Finding::AttestationMissing { predicate_type, authorities, rejected, reasons } => {
                let mut m =
                    format!("no {} attestation signed by {}", attestation_label(predicate_type), list(authorities));
                if *rejected > 0 {
                    m.push_str(&format!(
                        " ({rejected} attestation{} examined and not accepted: {})",
                        if *rejected == 1 { "" } else { "s" },
                        reasons.join("; ")
                    ));
                }
                m
            }
            Finding::AttestationFailed { problems, .. } => problems.join("; "),
        }
    }

    /// How to fix it, for `image` (repository) pinned at `digest`.
    pub fn hint(&self, pinned: &str) -> String {
        match self {
            Finding::DigestRequired => format!("reference the image by digest: {pinned}"),
            Finding::ThresholdNotMet { verified, signers, .. } if *signers < verified.len() => {
                format!("each authority must sign with its own key or identity: cosign sign --key <key> {pinned}")
            }
            Finding::ThresholdNotMet { verified, authorities, .. } => {
                let missing: Vec<String> = authorities.iter().filter(|a| !verified.contains(a)).cloned().collect();
                format!("also sign with the key of {}: cosign sign --key <key> {pinned}", list(&missing))
            }
            Finding::SignedForAnotherDigest { .. } => {
                format!("this digest needs its own signature: cosign sign --key <key> {pinned}")
            }
            Finding::NotSigned { keyless: true, .. } | Finding::UntrustedSignatures { keyless: true, .. } => {
                format!("sign keylessly, as an identity the policy names (e.g. from CI): cosign sign {pinned}")
            }
            Finding::NotSigned { .. } | Finding::UntrustedSignatures { .. } => {
                format!("sign with: cosign sign --key <key> {pinned}")
            }
            Finding::AttestationMissing { predicate_type, .. } => format!(
                "attest with: cosign attest --key <key> --type {} --predicate <file> {pinned}",
                cosign_type(predicate_type)
            ),
            Finding::AttestationFailed { predicate_type, .. } => format!(
                "fix the build or its inputs, then attest the new image: cosign attest --key <key> --type {} --predicate <file> <image>@<digest>",
                cosign_type(predicate_type)
            ),
        }
    }
}

fn list(names: &[String]) -> String {
    format!("[{}]", names.join(", "))
}

impl ImageResult {
    pub(super) fn pinned(&self) -> String {
        match (&self.repository, &self.digest) {
            (Some(r), Some(d)) => format!("{r}@{d}"),
            (Some(r), None) => format!("{r}@sha256:<digest>"),
            _ => self.image.clone(),
        }
    }

    /// `spec.containers[0].image registry.acme.io/api:v1 (sha256:…)`
    pub(super) fn subject(&self) -> String {
        match &self.digest {
            Some(d) if !self.image.contains('@') => format!("{} {} ({d})", self.path, self.image),
            _ => format!("{} {}", self.path, self.image),
        }
    }
}

impl Decision {
    /// The denial message for the API server: a headline and one line per failure.
    pub fn message(&self, subject: &str) -> String {
        let mut msg = format!("trustgate denied {subject}:");
        for line in capped(&self.denials) {
            msg.push_str("\n  ");
            msg.push_str(&line);
        }
        msg
    }

    /// The machine-readable form used by `--output json`.
    pub fn to_json(&self) -> Value {
        json!({
            "allowed": self.allowed,
            "denials": self.denials,
            "warnings": self.warnings,
            "audits": self.audits,
            "images": self.images.iter().map(|i| image_json(i, self.unmatched)).collect::<Vec<_>>(),
        })
    }
}

fn image_json(i: &ImageResult, unmatched: Unmatched) -> Value {
    let problem = i.problem.as_ref().map(|p| match p {
        ImageProblem::Unmatched { repository } => {
            json!({"kind": "no-matching-policy", "message": format!("no ClusterImagePolicy governs {repository}")})
        }
        ImageProblem::InvalidReference(m) => json!({"kind": "invalid-reference", "message": m}),
        ImageProblem::NotEvaluated(e) => json!({"kind": e.kind(), "message": e.to_string()}),
    });
    let policies: Vec<Value> = i
        .policies
        .iter()
        .map(|p| {
            let (result, verified, findings) = match &p.outcome {
                Outcome::Passed { verified_by } => ("pass", verified_by.clone(), vec![]),
                Outcome::Failed(fs) => (
                    "fail",
                    vec![],
                    fs.iter()
                        .map(|f| json!({"kind": f.kind(), "message": f.message(), "hint": f.hint(&i.pinned())}))
                        .collect(),
                ),
                Outcome::Error(e) => ("error", vec![], vec![json!({"kind": e.kind(), "message": e.to_string()})]),
            };
            let attestations: Vec<Value> = p
                .examined
                .iter()
                .map(|e| {
                    json!({
                        "attestation": e.attestation,
                        "predicateType": e.predicate_type,
                        "signer": e.signer,
                        "accepted": e.accepted,
                        "reason": e.reason,
                    })
                })
                .collect();
            json!({
                "policy": p.policy,
                "mode": p.mode.as_str(),
                "result": result,
                "verifiedBy": verified,
                "findings": findings,
                "attestations": attestations,
            })
        })
        .collect();
    json!({
        "path": i.path,
        "container": i.container,
        "image": i.image,
        "repository": i.repository,
        "digest": i.digest.as_ref().map(Digest::as_str),
        "allowed": i.allowed(unmatched),
        "problem": problem,
        "policies": policies,
    })
}

//! Judging one policy against one image's evidence.
//!
//! The evidence stage verifies each piece against the policy's authorities (a classic
//! signature, a sigstore bundle, a DSSE attestation: which authority signed it, and is it bound
//! to this digest); here the verified results are weighed: a threshold of distinct signers, each
//! required attestation of the right type from an allowed authority, and its SLSA or SBOM rule
//! (the pure checks in `policy::slsa` and `policy::sbom`). Start at [`judge`].

use std::time::SystemTime;

use super::{ExaminedAttestation, Finding, Judgement, Outcome};
use crate::evidence::attest::{self, Rejected};
use crate::evidence::bundle::{self, Claim};
use crate::evidence::AttestationLayer;
use crate::evidence::{cosign, SignatureLayer};
use crate::images::Digest;
use crate::policy::predicate::COSIGN_SIGN;
use crate::policy::{sbom, slsa, AttestationCheck, AttestationRule, Policy, SignatureRule, Signer, TrustedKey};

/// An image's evidence, as read from its registry (nothing in it trusted yet). `None`: not
/// read, because the policy needs none of that kind.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub signatures: Option<&'a [SignatureLayer]>,
    pub attestations: Option<&'a [AttestationLayer]>,
    /// Sigstore bundles (signatures and attestations alike), each parsed once.
    pub bundles: &'a [bundle::ParsedBundle],
}

/// What `policy` (whose signature rule is `rule`) says of the image `digest` with `evidence`.
pub fn judge(
    policy: &Policy,
    rule: &SignatureRule,
    digest: &Digest,
    evidence: Evidence<'_>,
    now: SystemTime,
) -> Judgement {
    let mut outcome = Outcome::Passed { verified_by: Vec::new() };
    let mut examined = Vec::new();
    if let Some(layers) = evidence.signatures {
        outcome = signatures(rule, digest, layers, evidence.bundles);
    }
    if let Some(layers) = evidence.attestations {
        let failed: Vec<Finding> = policy
            .attestations
            .iter()
            .filter_map(|a| attestation(rule, a, digest, layers, evidence.bundles, now, &mut examined))
            .collect();
        outcome = match outcome {
            _ if failed.is_empty() => outcome,
            Outcome::Failed(mut f) => {
                f.extend(failed);
                Outcome::Failed(f)
            }
            _ => Outcome::Failed(failed),
        };
    }
    Judgement { outcome, examined }
}

/// Verifies signatures (classic and in sigstore bundles) against one policy's authorities and threshold.
fn signatures(
    rule: &SignatureRule,
    digest: &Digest,
    layers: &[SignatureLayer],
    bundles: &[bundle::ParsedBundle],
) -> Outcome {
    let mut report = cosign::verify(&rule.keys, digest, layers);
    for layer in bundles {
        // Each authority on its own: the threshold counts distinct signers.
        let mut claimed = false;
        let mut signature = false;
        for key in &rule.keys {
            match bundle::verify_referrer(&[key], digest, layer) {
                Ok(bundle::Vouched { authority, signer, claim: Claim::Signature }) => {
                    report.verified_by(&authority, signer);
                    (claimed, signature) = (true, true);
                }
                Ok(bundle::Vouched { claim: Claim::Attestation(_), .. }) => claimed = true,
                // Signed by this authority for another image: a copied signature, or a copied
                // attestation (which is not a signature at all).
                Err(Rejected::OtherSubject { predicate_type })
                    if predicate_type == COSIGN_SIGN || predicate_type == "message signature" =>
                {
                    report.other_digests.push("another digest, in a sigstore bundle".into());
                    (claimed, signature) = (true, true);
                }
                Err(Rejected::OtherSubject { .. }) => claimed = true,
                Err(Rejected::Keyless(why)) => report.rejected(why),
                // Not read, or not a bundle at all: said, so "none verified" has its reason.
                Err(Rejected::TooLarge(why)) => report.rejected(format!("a sigstore bundle was not read: {why}")),
                Err(Rejected::Malformed(why)) => report.rejected(why),
                Err(Rejected::UntrustedSigner) => {}
            }
        }
        // An attestation is not a signature; a bundle no authority vouches for might be one.
        if signature || !claimed {
            report.examined += 1;
        }
    }
    report.verified.sort_by_key(|name| rule.keys.iter().position(|k| &k.name == name));
    let authorities: Vec<String> = rule.keys.iter().map(|k| k.name.clone()).collect();
    let keyless = rule.keys.iter().all(|k| matches!(k.signer, Signer::Keyless(_)));
    // A threshold counts authorities with a signer of their own: one key under two names, or
    // one identity two keyless authorities both accept, is one signature, not two.
    let signers = report.distinct_signers();
    if signers >= rule.threshold {
        return Outcome::Passed { verified_by: report.verified };
    }
    let finding = if !report.verified.is_empty() {
        Finding::ThresholdNotMet { verified: report.verified, signers, threshold: rule.threshold, authorities }
    } else if report.examined == 0 {
        Finding::NotSigned { authorities, keyless }
    } else if !report.other_digests.is_empty() {
        Finding::SignedForAnotherDigest { signed_for: report.other_digests, authorities }
    } else {
        Finding::UntrustedSignatures { found: report.examined, authorities, reasons: report.reasons, keyless }
    };
    Outcome::Failed(vec![finding])
}

/// Checks one required attestation against the image's attestations (classic layers and
/// sigstore bundles): `None` when a verified one of the right type, signed by an allowed
/// authority, passes its checks.
fn attestation(
    signatures: &SignatureRule,
    rule: &AttestationRule,
    digest: &Digest,
    layers: &[AttestationLayer],
    bundles: &[bundle::ParsedBundle],
    now: std::time::SystemTime,
    examined: &mut Vec<ExaminedAttestation>,
) -> Option<Finding> {
    let keys: Vec<&TrustedKey> = signatures.keys.iter().filter(|k| rule.authorities.contains(&k.name)).collect();
    let classic = layers.iter().map(|layer| attest::verify(&keys, digest, layer));
    let in_bundles = bundles.iter().filter_map(|layer| match bundle::verify_referrer(&keys, digest, layer) {
        Ok(bundle::Vouched { claim: Claim::Attestation(statement), .. }) => Some(Ok(statement)),
        // A signature, or a bundle none of these authorities signed (it may be another's signature).
        Ok(bundle::Vouched { claim: Claim::Signature, .. }) | Err(Rejected::UntrustedSigner) => None,
        Err(e) => Some(Err(e)),
    });
    let mut rejected = Vec::new();
    let mut problems: Option<Vec<String>> = None;
    for verified in classic.chain(in_bundles) {
        let record =
            |predicate_type: Option<&str>, signer: Option<&str>, accepted: bool, reason: String| ExaminedAttestation {
                attestation: rule.name.clone(),
                predicate_type: predicate_type.map(str::to_owned),
                signer: signer.map(str::to_owned),
                accepted,
                reason,
            };
        let statement = match verified {
            Ok(s) if rule.predicate_type.matches(&s.predicate_type) => s,
            // Verified, but of another type: it answers another requirement.
            Ok(s) => {
                let why = format!("a {} attestation, not {}", s.predicate_type, rule.predicate_type);
                examined.push(record(Some(&s.predicate_type), Some(&s.signer), false, why));
                continue;
            }
            Err(e) => {
                examined.push(record(None, None, false, e.to_string()));
                rejected.push(e.to_string());
                continue;
            }
        };
        let result: Result<(), Vec<String>> = match &rule.check {
            AttestationCheck::Present => Ok(()),
            AttestationCheck::Slsa(r) => slsa::evaluate(&statement.predicate_type, &statement.predicate, r)
                .map(|_| ())
                .map_err(|fs| fs.iter().map(ToString::to_string).collect()),
            AttestationCheck::Sbom(r) => sbom::evaluate(&statement.predicate_type, &statement.predicate, r, now)
                .map(|_| ())
                .map_err(|fs| fs.iter().map(ToString::to_string).collect()),
        };
        let (type_, signer) = (Some(statement.predicate_type.as_str()), Some(statement.signer.as_str()));
        match result {
            Ok(()) => {
                examined.push(record(type_, signer, true, "verified, bound to this digest, checks passed".into()));
                return None;
            }
            Err(p) => {
                examined.push(record(type_, signer, false, p.join("; ")));
                problems.get_or_insert(p);
            }
        }
    }
    Some(match problems {
        Some(problems) => Finding::AttestationFailed { predicate_type: rule.predicate_type.uri().to_owned(), problems },
        None => {
            // Counted one by one; each distinct reason said once.
            let count = rejected.len();
            rejected.sort();
            rejected.dedup();
            Finding::AttestationMissing {
                predicate_type: rule.predicate_type.uri().to_owned(),
                authorities: rule.authorities.clone(),
                rejected: count,
                reasons: rejected,
            }
        }
    })
}

//! Predicate types: which kind of attestation a policy requires and a statement says it is.
//!
//! The one place that names them: the cosign short names a policy may write
//! (`slsaprovenance1`, `cyclonedx`, …), the URIs in-toto statements carry, and which versions of
//! the SBOM formats trustgate reads (`https://cyclonedx.org/bom/v1.6` is CycloneDX,
//! `https://spdx.dev/Document/v3.0` is not SPDX 2). A statement satisfies a required type when
//! it reads as that type ([`PredicateType::of_statement`]), so the matcher and the SBOM and
//! provenance readers cannot disagree.

use std::fmt;

/// SLSA provenance v1 (cosign `--type slsaprovenance1`).
pub const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
/// SLSA provenance v0.2 (cosign `--type slsaprovenance02`, and `slsaprovenance`).
pub const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
/// A CycloneDX SBOM (cosign `--type cyclonedx`); versioned forms (`…/bom/v1.6`) too.
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
/// An SPDX 2 SBOM (cosign `--type spdxjson` and `spdx`); versioned forms (`…/Document/v2.3`) too.
pub const SPDX: &str = "https://spdx.dev/Document";
/// The statement of a sigstore bundle signature made by `cosign sign` (new bundle format): a
/// signature, not an attestation.
pub const COSIGN_SIGN: &str = "https://sigstore.dev/cosign/sign/v1";

/// A predicate type, as a policy requires it or a statement carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PredicateType {
    SlsaV1,
    SlsaV02,
    /// CycloneDX 1.x.
    CycloneDx,
    /// SPDX 2.x.
    Spdx,
    /// Any other URI, compared exactly (custom attestations, SBOM versions not read).
    Other(String),
}

impl PredicateType {
    /// A policy's `predicateType`: one of cosign's short names, or a URI.
    pub fn from_policy(name: &str) -> Result<Self, String> {
        Ok(match name {
            "slsaprovenance1" => PredicateType::SlsaV1,
            "slsaprovenance" | "slsaprovenance02" => PredicateType::SlsaV02,
            "cyclonedx" => PredicateType::CycloneDx,
            "spdx" | "spdxjson" => PredicateType::Spdx,
            "custom" => PredicateType::Other("https://cosign.sigstore.dev/attestation/v1".into()),
            "vuln" => PredicateType::Other("https://cosign.sigstore.dev/attestation/vuln/v1".into()),
            "link" => PredicateType::Other("https://in-toto.io/Link/v1".into()),
            uri if uri.contains("://") => PredicateType::of_statement(uri),
            other => {
                return Err(format!(
                    "{other:?} is neither a predicate type URI nor one of cosign's names \
                     (slsaprovenance1, slsaprovenance02, slsaprovenance, cyclonedx, spdx, spdxjson, custom, vuln, link)"
                ))
            }
        })
    }

    /// What a statement's `predicateType` URI is. Only full URIs: cosign's short names are for
    /// policies and the command line, and in a statement they are an unknown [`Other`](Self::Other).
    pub fn of_statement(uri: &str) -> Self {
        // `base`, or `base/v<major>` with an optional `.<digits>` minor.
        let versioned = |base: &str, major: &str| match uri.strip_prefix(base) {
            Some("") => true,
            Some(rest) => rest.strip_prefix("/v").and_then(|v| v.strip_prefix(major)).is_some_and(|v| {
                v.is_empty() || v.strip_prefix('.').is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
            }),
            None => false,
        };
        match uri {
            SLSA_V1 => PredicateType::SlsaV1,
            SLSA_V02 => PredicateType::SlsaV02,
            _ if versioned(CYCLONEDX, "1") => PredicateType::CycloneDx,
            _ if versioned(SPDX, "2") => PredicateType::Spdx,
            other => PredicateType::Other(other.to_owned()),
        }
    }

    /// Does a statement with this `predicateType` satisfy this required type?
    pub fn matches(&self, statement_type: &str) -> bool {
        match self {
            PredicateType::Other(uri) => uri == statement_type,
            known => PredicateType::of_statement(statement_type) == *known,
        }
    }

    /// The URI (for the known types, the unversioned one).
    pub fn uri(&self) -> &str {
        match self {
            PredicateType::SlsaV1 => SLSA_V1,
            PredicateType::SlsaV02 => SLSA_V02,
            PredicateType::CycloneDx => CYCLONEDX,
            PredicateType::Spdx => SPDX,
            PredicateType::Other(uri) => uri,
        }
    }

    pub fn is_slsa(&self) -> bool {
        matches!(self, PredicateType::SlsaV1 | PredicateType::SlsaV02)
    }

    pub fn is_sbom(&self) -> bool {
        matches!(self, PredicateType::CycloneDx | PredicateType::Spdx)
    }

    /// How a developer names an attestation of this type (`SLSA provenance`, `SBOM (SPDX)`).
    pub fn label(&self) -> &str {
        match self {
            PredicateType::SlsaV1 | PredicateType::SlsaV02 => "SLSA provenance",
            PredicateType::CycloneDx => "SBOM (CycloneDX)",
            PredicateType::Spdx => "SBOM (SPDX)",
            PredicateType::Other(uri) => uri,
        }
    }

    /// The `cosign attest --type` that writes it.
    pub fn cosign_type(&self) -> &'static str {
        match self {
            PredicateType::SlsaV1 => "slsaprovenance1",
            PredicateType::SlsaV02 => "slsaprovenance02",
            PredicateType::CycloneDx => "cyclonedx",
            PredicateType::Spdx => "spdxjson",
            PredicateType::Other(_) => "custom",
        }
    }
}

impl fmt::Display for PredicateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_and_uris_read_as_one_type() {
        for (name, want) in [
            ("slsaprovenance1", PredicateType::SlsaV1),
            ("slsaprovenance", PredicateType::SlsaV02),
            ("slsaprovenance02", PredicateType::SlsaV02),
            ("cyclonedx", PredicateType::CycloneDx),
            ("spdx", PredicateType::Spdx),
            ("spdxjson", PredicateType::Spdx),
            (SLSA_V1, PredicateType::SlsaV1),
            ("https://cyclonedx.org/bom/v1.5", PredicateType::CycloneDx),
        ] {
            assert_eq!(PredicateType::from_policy(name), Ok(want), "{name}");
        }
        assert!(PredicateType::from_policy("sbom").unwrap_err().contains("neither a predicate type URI"));
    }

    /// The matcher and the readers agree: a statement matches a required SBOM type exactly when
    /// it is a version of that format trustgate reads.
    #[test]
    fn a_statement_matches_only_what_it_reads_as() {
        assert!(PredicateType::CycloneDx.matches("https://cyclonedx.org/bom/v1.6"));
        assert!(PredicateType::Spdx.matches("https://spdx.dev/Document/v2.3"));
        assert!(!PredicateType::CycloneDx.matches("https://cyclonedx.org/bom/anything"));
        assert!(!PredicateType::Spdx.matches("https://spdx.dev/Document/v3.0"));
        assert!(!PredicateType::CycloneDx.matches("https://cyclonedx.org/bomb"));
        assert!(!PredicateType::SlsaV1.matches(SLSA_V02));
        assert!(PredicateType::Other(COSIGN_SIGN.into()).matches(COSIGN_SIGN));
        assert!(!PredicateType::Other(COSIGN_SIGN.into()).matches("https://sigstore.dev/cosign/sign/v2"));
    }
}

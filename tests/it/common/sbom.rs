//! SBOMs from the real syft ([`syft_sbom`]), and reading the packages and licenses it found
//! ([`sbom_packages`]).
//!
//! The images syft scans carry real package metadata: [`super::registry::Registry::push_image_with_tree`]
//! with `tests/fixtures/sbom-src` (or `sbom-src-clean`).

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use super::tools::{run, Tools};

/// An SBOM format syft writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    /// CycloneDX JSON (`-o cyclonedx-json`); attest with `--type cyclonedx`.
    CycloneDx,
    /// SPDX 2.3 JSON (`-o spdx-json`); attest with `--type spdxjson`.
    SpdxJson,
}

impl SbomFormat {
    /// syft's `-o` name.
    pub fn syft_output(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "cyclonedx-json",
            SbomFormat::SpdxJson => "spdx-json",
        }
    }

    /// cosign's `attest --type` for it.
    pub fn cosign_type(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "cyclonedx",
            SbomFormat::SpdxJson => "spdxjson",
        }
    }
}

/// Generates an SBOM with the real syft: `syft SOURCE -o FORMAT=OUT`, where `source` is
/// anything syft scans: `dir:PATH`, `oci-dir:PATH`, or `registry:127.0.0.1:PORT/REPO@sha256:…`
/// (plain HTTP is allowed, for the loopback registry). No update check, and an empty config
/// file instead of any from the working directory or home. Returns the parsed SBOM; panics with syft's output on
/// failure.
pub fn syft_sbom(source: &str, format: SbomFormat, out: &Path) -> serde_json::Value {
    let tools = Tools::get();
    let work = tempfile::Builder::new().prefix("trustgate-syft-").tempdir().expect("create syft work dir");
    let config = work.path().join("syft.yaml");
    std::fs::write(&config, "").expect("write empty syft config");
    run(Command::new(&tools.syft)
        .arg("scan")
        .arg(source)
        .arg("--quiet")
        .arg("-o")
        .arg(format!("{}={}", format.syft_output(), out.display()))
        .current_dir(work.path())
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
        .env("SYFT_CONFIG", &config));
    let text = std::fs::read_to_string(out).unwrap_or_else(|e| panic!("syft wrote no {}: {e}", out.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("syft's {} is not JSON: {e}", out.display()))
}

/// The package URLs and licenses of the packages in a syft SBOM (CycloneDX `components`, SPDX
/// `packages` with a purl, but not the scanned image or directory itself, which CycloneDX keeps
/// in `metadata.component` and SPDX lists as the package the document `DESCRIBES`), as
/// `(purl, licenses)` with licenses as syft wrote them (CycloneDX `license.id` /
/// `license.name` / `expression`; SPDX `licenseDeclared`).
pub fn sbom_packages(sbom: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if let Some(components) = sbom["components"].as_array() {
        for c in components {
            let Some(purl) = c["purl"].as_str() else { continue };
            let licenses = c["licenses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| {
                    l["license"]["id"].as_str().or(l["license"]["name"].as_str()).or(l["expression"].as_str())
                })
                .map(str::to_string)
                .collect();
            out.push((purl.to_string(), licenses));
        }
    } else if let Some(packages) = sbom["packages"].as_array() {
        let described: Vec<&str> = sbom["relationships"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["spdxElementId"] == "SPDXRef-DOCUMENT" && r["relationshipType"] == "DESCRIBES")
            .filter_map(|r| r["relatedSpdxElement"].as_str())
            .collect();
        for p in packages {
            if p["SPDXID"].as_str().is_some_and(|id| described.contains(&id)) {
                continue;
            }
            let purl = p["externalRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["referenceType"] == "purl")
                .and_then(|r| r["referenceLocator"].as_str());
            let Some(purl) = purl else { continue };
            let licenses = p["licenseDeclared"].as_str().map(|l| vec![l.to_string()]).unwrap_or_default();
            out.push((purl.to_string(), licenses));
        }
    }
    out
}

/// A time as RFC 3339 in UTC with whole seconds (`2026-11-23T13:39:45Z`), the form syft stamps
/// SBOMs with.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("a time after 1970").as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3_600, rest / 60 % 60, rest % 60)
}

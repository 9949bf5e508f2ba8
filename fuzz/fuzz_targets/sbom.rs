//! SBOM predicates (CycloneDX and SPDX), as a signed attestation carries them, against rules
//! of every kind: licenses (SPDX expressions), package URLs with version globs, and age.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use trustgate::policy::sbom::{self, SbomRule};

fn rules() -> &'static [SbomRule; 2] {
    static RULES: OnceLock<[SbomRule; 2]> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            SbomRule {
                denied_licenses: vec!["AGPL-3.0-only".into(), "GPL-3.0-or-later".into()],
                allowed_licenses: vec![],
                denied_packages: vec![
                    "pkg:npm/event-stream@3.3.6".into(),
                    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*".into(),
                ],
                max_age: Some(Duration::from_secs(30 * 86_400)),
            },
            SbomRule {
                denied_licenses: vec![],
                allowed_licenses: vec!["MIT".into(), "Apache-2.0".into(), "BSD-3-Clause".into()],
                denied_packages: vec!["pkg:pypi/*".into()],
                max_age: Some(Duration::from_secs(u64::from(u32::MAX))),
            },
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(predicate) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for rule in rules() {
        for predicate_type in
            ["https://cyclonedx.org/bom", "https://cyclonedx.org/bom/v1.6", "https://spdx.dev/Document"]
        {
            for now in [SystemTime::now(), SystemTime::UNIX_EPOCH] {
                if let Err(findings) = sbom::evaluate(predicate_type, &predicate, rule, now) {
                    for f in findings {
                        let _ = f.to_string();
                    }
                }
            }
        }
    }
});

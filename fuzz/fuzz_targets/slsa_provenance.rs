//! SLSA provenance predicates (v1 and v0.2), as a signed attestation carries them, against
//! builder, build type, source and ref globs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trustgate::policy::slsa::{self, SlsaRule};

fn rule() -> &'static SlsaRule {
    static RULE: OnceLock<SlsaRule> = OnceLock::new();
    RULE.get_or_init(|| SlsaRule {
        builder_ids: vec!["https://github.com/actions/runner".into(), "https://*.example/*".into()],
        source_repositories: vec!["https://github.com/acme/*".into()],
        build_types: vec!["https://actions.github.io/buildtypes/workflow/*".into()],
        source_refs: vec!["refs/heads/main".into(), "refs/tags/v*".into()],
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(predicate) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for predicate_type in ["https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2"] {
        if let Err(findings) = slsa::evaluate(predicate_type, &predicate, rule()) {
            for f in findings {
                let _ = f.to_string();
            }
        }
    }
});

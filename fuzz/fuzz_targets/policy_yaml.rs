//! A policy file, as a security team writes it (or a careless one): YAML through
//! deserialisation and compilation, every problem an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustgate::policy::{parse_documents, Labels, PolicySet};

fuzz_target!(|text: &str| {
    let (policies, errors) = parse_documents(text);
    for e in &errors {
        let _ = e.to_string();
    }
    let set = PolicySet::new(policies);
    let labels = Labels::from([("kubernetes.io/metadata.name".to_owned(), "shop".to_owned())]);
    let _ = set.matching("registry.acme.io/apps/api", &labels).count();
});

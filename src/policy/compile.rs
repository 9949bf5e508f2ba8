//! Compiling a `ClusterImagePolicy` into a [`Policy`]: every field validated, every problem
//! reported together with its field path, keys and trust roots parsed once, and a content hash
//! that keys the decision cache.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::authority::{parse_public_key, DefaultTrustRoot};
use super::{
    duration, panic_message, AttestationCheck, AttestationRule, ClusterImagePolicy, ClusterImagePolicySpec, Glob,
    Identity, Keyless, KeylessAuthority, Matcher, Policy, PredicateType, SbomRule, SecretKeyRef, Selector,
    SignatureRule, Signer, SlsaRule, TransparencyLog, TrustRoot, TrustRootSource, TrustedKey, MAX_SBOM_AGE,
};

/// One thing wrong with a policy; loading reports all of them together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}policy {name:?}: {field}: {message}", source_file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
pub struct PolicyError {
    /// The file it came from, in file mode.
    pub source_file: Option<PathBuf>,
    /// `metadata.name`, or `document N` when the document has none.
    pub name: String,
    /// Field path inside the object (`spec.signatures.authorities[0].key.publicKey`).
    pub field: String,
    pub message: String,
}

/// Every policy problem found in one load.
#[derive(Debug, thiserror::Error)]
#[error("{} invalid polic{}:\n  {}", .0.len(), if .0.len() == 1 { "y" } else { "ies" }, .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl Policy {
    /// Validates a policy object (file mode). Every problem is returned, each with its field path.
    /// Keyless authorities that name no trust root use `trust_root`.
    pub fn compile(policy: &ClusterImagePolicy, trust_root: &DefaultTrustRoot) -> Result<Policy, Vec<PolicyError>> {
        let no_secrets = |_: &SecretKeyRef| {
            Err("a secretRef is read from the cluster; in a policy file give the value inline (publicKey, trustedRootJson)".into())
        };
        let (policy, errors) = Policy::compile_guarded(policy, &no_secrets, trust_root);
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors)
        }
    }

    /// Validates a policy (cluster mode), with `secret_key` giving the PEM behind each
    /// `secretRef`. An invalid policy is still returned, marked [`Policy::invalid`]: it keeps
    /// governing the images its valid globs match, and denies them naming the problem, so one
    /// broken policy neither admits what it was meant to guard nor takes the others down.
    pub fn compile_lenient(
        policy: &ClusterImagePolicy,
        secret_key: &dyn Fn(&SecretKeyRef) -> Result<String, String>,
        trust_root: &DefaultTrustRoot,
    ) -> (Policy, Vec<PolicyError>) {
        let name = policy.metadata.name.clone().unwrap_or_default();
        let spec = &policy.spec;
        let mut errors = Vec::new();
        let mut err = |field: String, message: String| {
            errors.push(PolicyError { source_file: None, name: name.clone(), field, message })
        };
        if name.is_empty() {
            err("metadata.name".into(), "is required".into());
        }
        if spec.images.is_empty() {
            err("spec.images".into(), "must list at least one glob".into());
        }
        let mut globs = Vec::new();
        for (i, g) in spec.images.iter().enumerate() {
            match Glob::new(&g.glob) {
                Ok(g) => globs.push(g),
                Err(e) => err(format!("spec.images[{i}].glob"), e.to_string()),
            }
        }
        let selector = Selector::new(spec.namespace_selector.as_ref()).unwrap_or_else(|e| {
            err(format!("spec.namespaceSelector.{}", e.field), e.message);
            Selector::default()
        });
        let mut signatures = None;
        // The resolved key material is part of the content hash: rotating a Secret's key
        // re-evaluates what it vouched for.
        let mut key_material = Vec::new();
        if let Some(sigs) = &spec.signatures {
            let mut keys = Vec::new();
            if sigs.authorities.is_empty() {
                err("spec.signatures.authorities".into(), "must list at least one authority".into());
            }
            for (i, a) in sigs.authorities.iter().enumerate() {
                let field = format!("spec.signatures.authorities[{i}]");
                if a.name.is_empty() {
                    err(format!("{field}.name"), "is required".into());
                } else if sigs.authorities.iter().take(i).any(|b| b.name == a.name) {
                    err(format!("{field}.name"), format!("{:?} is used by another authority", a.name));
                }
                match (&a.key, &a.keyless) {
                    (Some(k), None) => {
                        let (pem, key_field) = match (&k.public_key, &k.secret_ref) {
                            (Some(pem), None) => (Ok(pem.clone()), "key.publicKey"),
                            (None, Some(r)) => (secret_key(r), "key.secretRef"),
                            _ => (Err("give exactly one of publicKey or secretRef".to_owned()), "key"),
                        };
                        match pem.and_then(|pem| parse_public_key(&pem).map(|k| (pem, k))) {
                            Ok((pem, key)) => {
                                // With a threshold above 1, two authorities holding one key
                                // would promise two signers and deliver one.
                                let signer = Signer::key(key, pem.clone());
                                let id = match &signer {
                                    Signer::Key { id, .. } => Some(*id),
                                    Signer::Keyless(_) => None,
                                };
                                let twin = keys.iter().find(|k: &&TrustedKey| match &k.signer {
                                    Signer::Key { id: other, .. } => Some(*other) == id,
                                    Signer::Keyless(_) => false,
                                });
                                if let (Some(twin), true) = (twin, sigs.threshold > 1) {
                                    err(
                                        format!("{field}.{key_field}"),
                                        format!(
                                            "is the same public key as authority {:?}; a threshold counts distinct signers, so give each authority its own key",
                                            twin.name
                                        ),
                                    );
                                }
                                key_material.push(pem);
                                keys.push(TrustedKey { name: a.name.clone(), signer });
                            }
                            Err(m) => err(format!("{field}.{key_field}"), m),
                        }
                    }
                    (None, Some(k)) => match compile_keyless(k, secret_key, trust_root, &mut key_material) {
                        Ok(keyless) => keys.push(TrustedKey { name: a.name.clone(), signer: Signer::Keyless(keyless) }),
                        Err(problems) => {
                            for (f, m) in problems {
                                err(format!("{field}.keyless{f}"), m);
                            }
                        }
                    },
                    _ => err(field.clone(), "give exactly one of key or keyless".into()),
                }
            }
            let threshold = sigs.threshold as usize;
            if threshold == 0 && spec.attestations.is_empty() {
                err("spec.signatures.threshold".into(), "is 0, which requires attestations".into());
            } else if threshold > sigs.authorities.len() {
                err(
                    "spec.signatures.threshold".into(),
                    format!("is {threshold}, but only {} authorities are listed", sigs.authorities.len()),
                );
            }
            signatures = Some(SignatureRule { threshold, keys });
        }
        let mut attestations = Vec::new();
        for (i, a) in spec.attestations.iter().enumerate() {
            let field = format!("spec.attestations[{i}]");
            if spec.attestations.iter().take(i).any(|b| b.name == a.name) {
                err(format!("{field}.name"), format!("{:?} is used by another attestation", a.name));
            }
            let predicate_type = match PredicateType::from_policy(&a.predicate_type) {
                Ok(t) => t,
                Err(m) => {
                    err(format!("{field}.predicateType"), m);
                    continue;
                }
            };
            if a.authorities.is_empty() {
                err(format!("{field}.authorities"), "must name at least one of signatures.authorities".into());
            }
            for (j, n) in a.authorities.iter().enumerate() {
                let known = spec.signatures.as_ref().is_some_and(|s| s.authorities.iter().any(|x| &x.name == n));
                if !known {
                    err(format!("{field}.authorities[{j}]"), format!("{n:?} is not a name in signatures.authorities"));
                }
            }
            let (is_slsa, is_sbom) = (predicate_type.is_slsa(), predicate_type.is_sbom());
            let check = match (&a.slsa, &a.sbom) {
                (Some(_), Some(_)) => {
                    err(field.clone(), "give slsa or sbom checks, not both".into());
                    continue;
                }
                (Some(_), None) if !is_slsa => {
                    err(
                        format!("{field}.slsa"),
                        format!("needs a SLSA provenance predicate type, not {predicate_type}"),
                    );
                    continue;
                }
                (None, Some(_)) if !is_sbom => {
                    err(
                        format!("{field}.sbom"),
                        format!("needs a CycloneDX or SPDX predicate type, not {predicate_type}"),
                    );
                    continue;
                }
                (Some(slsa), None) => AttestationCheck::Slsa(SlsaRule {
                    builder_ids: slsa.builder_ids.clone(),
                    source_repositories: slsa.source_repositories.clone(),
                    build_types: slsa.build_types.clone(),
                    source_refs: slsa.source_refs.clone(),
                }),
                (None, Some(sbom)) => {
                    let max_age = match sbom.max_age.as_deref().map(|a| duration::parse_at_most(a, MAX_SBOM_AGE)) {
                        None => None,
                        Some(Ok(d)) => Some(d),
                        Some(Err(e)) => {
                            err(format!("{field}.sbom.maxAge"), e.to_string());
                            continue;
                        }
                    };
                    let rule = SbomRule {
                        denied_licenses: sbom.denied_licenses.clone(),
                        allowed_licenses: sbom.allowed_licenses.clone(),
                        denied_packages: sbom.denied_packages.clone(),
                        max_age,
                    };
                    if let Err(problems) = rule.validate() {
                        for p in problems {
                            err(format!("{field}.sbom"), p.to_string());
                        }
                        continue;
                    }
                    AttestationCheck::Sbom(rule)
                }
                (None, None) => AttestationCheck::Present,
            };
            attestations.push(AttestationRule {
                name: a.name.clone(),
                predicate_type,
                authorities: a.authorities.clone(),
                check,
            });
        }
        let invalid = (!errors.is_empty())
            .then(|| errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "));
        let policy = Policy {
            hash: content_hash(&name, spec, &key_material),
            name,
            mode: spec.mode,
            require_digest: spec.require_digest,
            globs,
            selector,
            signatures: if invalid.is_some() { None } else { signatures },
            attestations: if invalid.is_some() { Vec::new() } else { attestations },
            invalid,
        };
        (policy, errors)
    }

    /// [`Policy::compile_lenient`], isolated: should compiling one policy panic (a bug in
    /// trustgate), the result is a policy that still governs the images its globs name and
    /// denies them saying so, as any invalid policy does, and the others are unaffected.
    pub fn compile_guarded(
        policy: &ClusterImagePolicy,
        secret_key: &dyn Fn(&SecretKeyRef) -> Result<String, String>,
        trust_root: &DefaultTrustRoot,
    ) -> (Policy, Vec<PolicyError>) {
        let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Policy::compile_lenient(policy, secret_key, trust_root)
        }));
        let panic = match compiled {
            Ok(result) => return result,
            Err(panic) => panic,
        };
        let detail = panic_message(panic.as_ref());
        let name = policy.metadata.name.clone().unwrap_or_default();
        tracing::error!(policy = %name, error = %detail, "compiling a ClusterImagePolicy panicked; it denies what it governs");
        let message = format!("compiling it failed, a bug in trustgate ({detail}); please report it");
        let globs: Vec<Glob> = policy.spec.images.iter().filter_map(|g| Glob::new(&g.glob).ok()).collect();
        let error =
            PolicyError { source_file: None, name: name.clone(), field: "spec".into(), message: message.clone() };
        let invalid = Policy {
            hash: content_hash(&name, &policy.spec, &[]),
            name,
            mode: policy.spec.mode,
            require_digest: policy.spec.require_digest,
            globs,
            // Every namespace: what it may have meant to govern is denied, not admitted.
            selector: Selector::default(),
            signatures: None,
            attestations: Vec::new(),
            invalid: Some(format!("spec: {message}")),
        };
        (invalid, vec![error])
    }
}

/// Compiles a keyless authority; problems come as (field suffix, message).
fn compile_keyless(
    k: &KeylessAuthority,
    secret_key: &dyn Fn(&SecretKeyRef) -> Result<String, String>,
    default_root: &DefaultTrustRoot,
    material: &mut Vec<String>,
) -> Result<Keyless, Vec<(String, String)>> {
    let mut problems = Vec::new();
    if k.identities.is_empty() {
        problems.push((".identities".to_owned(), "must list at least one identity".to_owned()));
    }
    let mut identities = Vec::new();
    for (i, id) in k.identities.iter().enumerate() {
        let mut matcher = |exact: &Option<String>, re: &Option<String>, name: &str| match (exact, re) {
            (Some(s), None) => Some(Matcher::Exact(s.clone())),
            (None, Some(r)) => match Matcher::regex(r) {
                Ok(m) => Some(m),
                Err(e) => {
                    problems.push((format!(".identities[{i}].{name}RegExp"), e));
                    None
                }
            },
            _ => {
                problems.push((format!(".identities[{i}]"), format!("give exactly one of {name} or {name}RegExp")));
                None
            }
        };
        let issuer = matcher(&id.issuer, &id.issuer_regexp, "issuer");
        let subject = matcher(&id.subject, &id.subject_regexp, "subject");
        if let (Some(issuer), Some(subject)) = (issuer, subject) {
            identities.push(Identity { issuer, subject });
        }
    }
    let trust_root = match &k.trust_root {
        None => default_root.get().map_err(|m| vec![(".trustRoot".to_owned(), m)]),
        Some(TrustRootSource { trusted_root_json: Some(json), secret_ref: None }) => {
            material.push(json.clone());
            TrustRoot::from_json(json, "the policy's trust root".into())
                .map(Arc::new)
                .map_err(|e| vec![(".trustRoot.trustedRootJson".to_owned(), e.to_string())])
        }
        Some(TrustRootSource { trusted_root_json: None, secret_ref: Some(r) }) => secret_key(&r.into())
            .and_then(|json| {
                material.push(json.clone());
                TrustRoot::from_json(&json, format!("the trust root in Secret {}/{}", r.namespace, r.name))
                    .map_err(|e| e.to_string())
            })
            .map(Arc::new)
            .map_err(|m| vec![(".trustRoot.secretRef".to_owned(), m)]),
        Some(_) => Err(vec![(".trustRoot".to_owned(), "give exactly one of trustedRootJson or secretRef".to_owned())]),
    };
    let trust_root = match trust_root {
        Ok(r) => Some(r),
        Err(p) => {
            problems.extend(p);
            None
        }
    };
    match trust_root {
        Some(trust_root) if problems.is_empty() => {
            Ok(Keyless { identities, trust_root, require_log: k.transparency_log == TransparencyLog::Require })
        }
        _ => Err(problems),
    }
}

fn content_hash(name: &str, spec: &ClusterImagePolicySpec, keys: &[String]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0]);
    // Struct fields serialise in declaration order, so this is canonical for a given build.
    // (It cannot fail to serialise; should it, its debug form is as canonical.)
    h.update(serde_json::to_vec(spec).unwrap_or_else(|_| format!("{spec:?}").into_bytes()));
    for key in keys {
        h.update([0]);
        h.update(key.as_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use crate::policy::*;

    pub(crate) const P256_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEkKPDbYxGOFyqfIt+zDbTZVoql7VW
HmhSPuBlmiGFYe70BZlGiFJ+l5r29JGkFWtbsXeZuLV+KTPZ23Xb7a+gSg==
-----END PUBLIC KEY-----";

    fn policy_yaml(name: &str, extra: &str) -> String {
        format!(
            "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: {name}\nspec:\n  images:\n    - glob: \"registry.acme.io/**\"\n{extra}"
        )
    }

    #[test]
    fn keyless_authorities_compile_and_every_problem_names_its_field() {
        let keyless = |identity: &str, extra: &str| {
            format!("  signatures:\n    authorities:\n      - name: ci\n        keyless:\n          identities:\n            - {identity}\n{extra}")
        };
        let (ok, errs) = parse_documents(&policy_yaml(
            "good",
            &keyless(
                "{issuer: https://i.example, subjectRegExp: 'https://github\\.com/acme/.+'}",
                "          transparencyLog: skip\n",
            ),
        ));
        assert!(errs.is_empty(), "{errs:?}");
        let Signer::Keyless(k) = &ok[0].signatures.as_ref().unwrap().keys[0].signer else { panic!("not keyless") };
        assert!(!k.require_log);
        assert_eq!(k.trust_root.label, "the Sigstore public-good root");

        let (_, errs) = parse_documents(&policy_yaml(
            "bad",
            &keyless(
                "{issuer: https://i.example, subjectRegExp: '(unclosed'}",
                "          trustRoot:\n            trustedRootJson: '{}'\n",
            ),
        ));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.signatures.authorities[0].keyless.identities[0].subjectRegExp",
                "spec.signatures.authorities[0].keyless.trustRoot.trustedRootJson"
            ],
            "{errs:?}"
        );
        assert!(errs[0].message.contains("not a valid regular expression"), "{errs:?}");
        assert!(errs[1].message.contains("trusted_root.json"), "{errs:?}");

        let (_, errs) = parse_documents(&policy_yaml("both", &keyless("{issuer: a, issuerRegExp: b, subject: c}", "")));
        assert_eq!(errs[0].field, "spec.signatures.authorities[0].keyless.identities[0]", "{errs:?}");
        assert!(errs[0].message.contains("give exactly one of issuer or issuerRegExp"), "{errs:?}");
        let secret = keyless(
            "{issuer: a, subject: c}",
            "          trustRoot:\n            secretRef: {name: r, namespace: n}\n",
        );
        let (_, errs) = parse_documents(&policy_yaml("secret", &secret));
        assert_eq!(errs[0].field, "spec.signatures.authorities[0].keyless.trustRoot.secretRef", "{errs:?}");
        assert!(errs[0].message.contains("give the value inline (publicKey, trustedRootJson)"), "{errs:?}");
    }

    fn sigs(threshold: u32) -> String {
        let key = P256_PUB.replace('\n', "\n            ");
        format!("  signatures:\n    threshold: {threshold}\n    authorities:\n      - name: release\n        key:\n          publicKey: |\n            {key}\n")
    }

    #[test]
    fn one_key_cannot_stand_for_two_authorities_of_a_threshold() {
        let key = P256_PUB.replace('\n', "\n            ");
        // The same key again, as its own PEM with other line breaks.
        let again = P256_PUB
            .replace('\n', "")
            .replace("-----BEGIN PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\n            ")
            .replace("-----END PUBLIC KEY-----", "\n            -----END PUBLIC KEY-----");
        let two = |threshold: u32| {
            format!("  signatures:\n    threshold: {threshold}\n    authorities:\n      - name: a\n        key:\n          publicKey: |\n            {key}\n      - name: b\n        key:\n          publicKey: |\n            {again}\n")
        };
        let (_, errs) = parse_documents(&policy_yaml("twins", &two(2)));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "spec.signatures.authorities[1].key.publicKey");
        assert!(errs[0].message.contains("is the same public key as authority \"a\""), "{errs:?}");
        let (ok, errs) = parse_documents(&policy_yaml("either", &two(1)));
        assert!(errs.is_empty(), "with threshold 1 a second name for a key is harmless: {errs:?}");
        assert_eq!(ok.len(), 1);
    }

    /// A bug that panics while one policy compiles does not take the policy watcher down: the
    /// policy denies what its globs govern, saying why (the secret lookup stands in for the bug).
    #[test]
    fn a_panic_while_compiling_a_policy_makes_that_policy_invalid() {
        let yaml = policy_yaml("buggy", "  signatures:\n    authorities:\n      - name: k\n        key: {secretRef: {name: keys, namespace: sec}}\n");
        let object: ClusterImagePolicy = serde_yaml::from_str(&yaml).unwrap();
        let buggy = |_: &SecretKeyRef| -> Result<String, String> { panic!("index out of bounds") };
        let (policy, errors) = Policy::compile_guarded(&object, &buggy, &DefaultTrustRoot::default());
        assert_eq!(errors.len(), 1);
        let why = policy.invalid.as_deref().unwrap();
        assert!(why.contains("compiling it failed, a bug in trustgate (index out of bounds)"), "{why}");
        assert!(policy.applies_to("registry.acme.io/api", &Labels::new()), "it still governs its images");
        assert!(policy.signatures.is_none());
    }

    #[test]
    fn parses_a_valid_multi_document_file() {
        let text = format!("{}---\n{}", policy_yaml("a", &sigs(1)), policy_yaml("b", "  mode: warn\n"));
        let (ok, errs) = parse_documents(&text);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].signatures.as_ref().unwrap().keys[0].name, "release");
        assert_eq!(ok[1].mode, Mode::Warn);
        assert!(ok[1].signatures.is_none());
    }

    #[test]
    fn errors_name_the_object_and_field() {
        let (_, errs) = parse_documents(&policy_yaml("bad", "  mode: strict\n"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].name, "bad");
        assert_eq!(errs[0].field, "spec.mode");
        assert!(errs[0].message.contains("unknown variant `strict`"), "{}", errs[0].message);

        let (_, errs) = parse_documents(&policy_yaml("bad", &sigs(2)));
        assert_eq!(errs[0].field, "spec.signatures.threshold");
        assert_eq!(errs[0].message, "is 2, but only 1 authorities are listed");

        let (_, errs) = parse_documents(&policy_yaml("bad", "  provenance: []\n"));
        assert_eq!(errs[0].field, "spec.provenance");
        assert!(errs[0].message.contains("unknown field `provenance`"), "{}", errs[0].message);

        let bad_key = sigs(1).replace("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE", "AAAA");
        let (_, errs) = parse_documents(&policy_yaml("bad", &bad_key));
        assert_eq!(errs[0].field, "spec.signatures.authorities[0].key.publicKey");

        let (_, errs) = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n");
        assert_eq!((errs[0].name.as_str(), errs[0].field.as_str()), ("cm", "kind"));
    }

    #[test]
    fn all_problems_of_one_policy_are_reported_together() {
        let text =
            policy_yaml("bad", "  namespaceSelector:\n    matchExpressions:\n      - {key: a, operator: Like}\n")
                .replace("registry.acme.io/**", "Registry/X");
        let (_, errs) = parse_documents(&text);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.images[0].glob", "spec.namespaceSelector.matchExpressions[0].operator"]);
    }

    #[test]
    fn a_yaml_syntax_error_is_reported_once_and_ends_the_file() {
        let (ok, errs) = parse_documents("spec: [unclosed\n---\nkind: x\n");
        assert!(ok.is_empty());
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "(yaml)");
    }

    #[test]
    fn attestation_rules_are_validated() {
        let yaml = |att: &str| format!("{}  attestations:\n{att}", policy_yaml("p", &sigs(1)));
        let (ok, errs) = parse_documents(&yaml("    - name: sbom\n      predicateType: cyclonedx\n      authorities: [release]\n      sbom:\n        deniedPackages: [\"pkg:npm/left-pad@1.*\"]\n        maxAge: 720h\n"));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(ok[0].attestations[0].predicate_type, PredicateType::CycloneDx);
        let (_, errs) = parse_documents(&yaml("    - name: sbom\n      predicateType: cyclonedx\n      authorities: [release]\n      sbom:\n        deniedPackages: [\"left-pad\"]\n"));
        assert_eq!(errs[0].field, "spec.attestations[0].sbom");
        assert!(errs[0].message.contains("is not a package URL"), "{}", errs[0].message);
        let (_, errs) = parse_documents(&yaml(
            "    - name: prov\n      predicateType: cyclonedx\n      authorities: [release]\n      slsa: {}\n",
        ));
        assert_eq!(errs[0].field, "spec.attestations[0].slsa");
        let (_, errs) =
            parse_documents(&yaml("    - name: prov\n      predicateType: slsa\n      authorities: [nobody]\n"));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.attestations[0].predicateType"]);
        let (_, errs) = parse_documents(&yaml(
            "    - name: prov\n      predicateType: slsaprovenance1\n      authorities: [nobody]\n",
        ));
        assert_eq!(errs[0].message, "\"nobody\" is not a name in signatures.authorities");
    }

    #[test]
    fn content_hash_changes_with_the_policy() {
        let (a, _) = parse_documents(&policy_yaml("a", &sigs(1)));
        let (a2, _) = parse_documents(&policy_yaml("a", &sigs(1)));
        let (b, _) = parse_documents(&policy_yaml("a", &format!("  mode: warn\n{}", sigs(1))));
        assert_eq!(a[0].hash, a2[0].hash);
        assert_ne!(a[0].hash, b[0].hash);
    }

    #[test]
    fn matching_uses_globs_and_namespace_labels() {
        let text = policy_yaml("prod-only", "  namespaceSelector:\n    matchLabels:\n      env: prod\n");
        let (ok, _) = parse_documents(&text);
        let set = PolicySet::new(ok);
        let prod: Labels = [("env".to_string(), "prod".to_string())].into();
        let dev: Labels = [("env".to_string(), "dev".to_string())].into();
        assert_eq!(set.matching("registry.acme.io/api", &prod).count(), 1);
        assert_eq!(set.matching("registry.acme.io/api", &dev).count(), 0);
        assert_eq!(set.matching("docker.io/library/nginx", &prod).count(), 0);
    }

    #[test]
    fn load_dir_reports_every_file_and_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), policy_yaml("a", "")).unwrap();
        std::fs::write(dir.path().join("b.yml"), policy_yaml("a", "")).unwrap();
        std::fs::write(dir.path().join("c.yaml"), policy_yaml("c", "  mode: nope\n")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let err = PolicySet::load_dir(dir.path(), &DefaultTrustRoot::default()).unwrap_err().to_string();
        assert!(err.contains("2 invalid policies"), "{err}");
        assert!(err.contains("c.yaml: policy \"c\": spec.mode"), "{err}");
        assert!(err.contains("policy \"a\": metadata.name: defined more than once"), "{err}");

        std::fs::remove_file(dir.path().join("b.yml")).unwrap();
        std::fs::remove_file(dir.path().join("c.yaml")).unwrap();
        assert_eq!(PolicySet::load_dir(dir.path(), &DefaultTrustRoot::default()).unwrap().policies().len(), 1);
    }
}

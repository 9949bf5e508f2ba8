//! The real `trustgate` binary against a real registry and real cosign signatures.
//!
//! Every test starts its own registry (distribution 2.8 on a loopback port, see
//! [`crate::common`]), pushes tiny images with umoci + skopeo, signs them with the real cosign CLI
//! in the classic offline format, writes `ClusterImagePolicy` files into a temporary directory,
//! and runs `trustgate verify` / `trustgate evaluate` as a developer would in CI, asserting what
//! the developer sees: the exit code (0 admitted, 1 denied, 2 could not evaluate), the JSON
//! decision, the finding kind, and the parts of the message that tell them what to do.

use std::time::Instant;

use serde_json::Value;

use crate::common::cli::{
    assert_contains, finding, lines, only_denial, only_image, trustgate, ADMITTED, COULD_NOT_EVALUATE, DENIED,
};
use crate::common::cosign::{copy_signature, tamper_signature_payload, KeyPair, KeyType};
use crate::common::registry::Registry;
use crate::common::workspace::Workspace;

/// A `ClusterImagePolicy` for `glob`, with `spec_extra` (YAML lines indented by two spaces,
/// e.g. `"  mode: warn\n"`) and, unless `authorities` is empty, a `signatures` section with one
/// key authority per `(name, key)`.
fn policy_yaml(name: &str, glob: &str, spec_extra: &str, threshold: usize, authorities: &[(&str, &KeyPair)]) -> String {
    let mut yaml = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: {name}\nspec:\n  images:\n    - glob: \"{glob}\"\n{spec_extra}"
    );
    if !authorities.is_empty() {
        yaml.push_str(&format!("  signatures:\n    threshold: {threshold}\n    authorities:\n"));
        for (authority, key) in authorities {
            yaml.push_str(&key.authority_yaml(authority));
        }
    }
    yaml
}

/// Case 1: A signed image is admitted by tag (resolved to the digest that was pushed) and by
/// digest.
#[test]
fn signed_image_is_admitted_by_tag_and_by_digest() {
    let started = Instant::now();
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let image = s.signed("apps/api", "v1", &[&key]);

    let run = s.verify(&image.tag_ref, &[]);
    let d = run.expect_exit(ADMITTED).json();
    assert_eq!(d["allowed"], true, "{d:#}");
    assert!(lines(&d, "denials").is_empty() && lines(&d, "warnings").is_empty(), "{d:#}");
    let i = only_image(&d);
    assert_eq!(i["digest"], image.digest.as_str(), "the tag resolves to the pushed digest");
    assert_eq!(i["repository"], image.repo_ref.as_str());
    assert_eq!(i["problem"], Value::Null);
    assert_eq!(i["policies"][0]["policy"], "release");
    assert_eq!(i["policies"][0]["result"], "pass");
    assert_eq!(i["policies"][0]["verifiedBy"], serde_json::json!(["release-key"]));

    let d = s.verify(&image.digest_ref, &[]).expect_exit(ADMITTED).json();
    assert_eq!(only_image(&d)["digest"], image.digest.as_str());
    assert_eq!(only_image(&d)["policies"][0]["verifiedBy"], serde_json::json!(["release-key"]));

    // The text a developer reads says which policy passed, for which digest, signed by whom.
    let run = trustgate(&[
        "verify",
        &image.tag_ref,
        "--policies",
        &s.policies(),
        "--insecure-registry",
        s.addr(),
        "--output",
        "text",
    ]);
    run.expect_exit(ADMITTED);
    assert!(run.stdout.starts_with(&format!("ADMITTED {}\n", image.tag_ref)), "{run}");
    assert_contains(
        &run.stdout,
        &[&format!("image {} ({}): policy \"release\" passed, signed by [release-key]", image.tag_ref, image.digest)],
    );
    eprintln!("signed_image_is_admitted_by_tag_and_by_digest: {:?}", started.elapsed());
}

/// Case 2: An unsigned image is denied as `not-signed`, with its digest and the cosign command
/// that fixes it.
#[test]
fn unsigned_image_is_denied_with_the_command_that_fixes_it() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let image = s.registry().push_image("apps/api", "v1");

    let d = s.verify(&image.tag_ref, &[]).expect_exit(DENIED).json();
    assert_eq!(d["allowed"], false);
    assert_eq!(only_image(&d)["allowed"], false);
    assert_eq!(only_image(&d)["digest"], image.digest.as_str());
    assert_eq!(only_image(&d)["policies"][0]["result"], "fail");
    let f = finding(&d);
    assert_eq!(f["kind"], "not-signed", "{d:#}");
    assert_eq!(f["hint"], format!("sign with: cosign sign --key <key> {}", image.digest_ref));
    assert_contains(
        only_denial(&d),
        &[
            &format!("image {} ({})", image.tag_ref, image.digest),
            "policy \"release\"",
            "no signature found; the policy requires one verified by [release-key]",
            &format!("cosign sign --key <key> {}@sha256:", image.repo_ref),
            &format!("cosign sign --key <key> {}", image.digest_ref),
        ],
    );
}

/// Case 3: A signature by a key no policy trusts is `untrusted-signature`, not `not-signed`.
#[test]
fn image_signed_with_another_key_is_untrusted() {
    let s = Workspace::start();
    let (key, other) = (KeyPair::generate(KeyType::P256), KeyPair::generate(KeyType::P256));
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let image = s.signed("apps/api", "v1", &[&other]);

    let d = s.verify(&image.tag_ref, &[]).expect_exit(DENIED).json();
    assert_eq!(d["allowed"], false);
    assert_eq!(finding(&d)["kind"], "untrusted-signature", "{d:#}");
    assert_contains(
        only_denial(&d),
        &[
            &image.digest,
            "policy \"release\"",
            "1 signature found, none verified by any of [release-key]",
            &format!("cosign sign --key <key> {}", image.digest_ref),
        ],
    );
}

/// Case 4: A genuine signature copied from another image is `digest-mismatch`, naming the digest
/// it was made for.
#[test]
fn signature_copied_from_another_image_is_a_digest_mismatch() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let signed = s.signed("apps/api", "v1", &[&key]);
    let victim = s.registry().push_image("apps/api", "v2");
    copy_signature(s.registry(), &signed, &victim);

    let d = s.verify(&victim.tag_ref, &[]).expect_exit(DENIED).json();
    assert_eq!(d["allowed"], false);
    assert_eq!(only_image(&d)["digest"], victim.digest.as_str());
    assert_eq!(finding(&d)["kind"], "digest-mismatch", "{d:#}");
    assert_contains(only_denial(&d), &[&victim.digest, "policy \"release\"", &signed.digest, "a signature was copied"]);
    assert_eq!(
        finding(&d)["hint"],
        format!("this digest needs its own signature: cosign sign --key <key> {}", victim.digest_ref)
    );
    // The image it was copied from is still admitted.
    s.verify(&signed.tag_ref, &[]).expect_exit(ADMITTED);
}

/// Case 5: A payload altered after signing (its digest still names the image) is not admitted.
#[test]
fn tampered_signature_payload_is_not_admitted() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let image = s.signed("apps/api", "v1", &[&key]);
    s.verify(&image.digest_ref, &[]).expect_exit(ADMITTED);
    tamper_signature_payload(s.registry(), &image);

    let d = s.verify(&image.digest_ref, &[]).expect_exit(DENIED).json();
    assert_eq!(d["allowed"], false);
    assert_eq!(only_image(&d)["allowed"], false);
    assert_eq!(only_image(&d)["policies"][0]["verifiedBy"], serde_json::json!([]));
    assert_eq!(finding(&d)["kind"], "untrusted-signature", "{d:#}");
    assert_contains(only_denial(&d), &["none verified by any of [release-key]", "altered"]);
}

/// Case 6: `threshold: 2` with two authorities: one signature is `threshold-not-met` naming the
/// missing authority; both signatures admit.
#[test]
fn threshold_two_needs_both_authorities() {
    let s = Workspace::start();
    let (release, ci) = (KeyPair::generate(KeyType::P256), KeyPair::generate(KeyType::P256));
    s.policy(
        "two-keys",
        &policy_yaml("two-keys", &format!("{}/**", s.addr()), "", 2, &[("release-key", &release), ("ci-key", &ci)]),
    );
    let once = s.signed("apps/api", "once", &[&release]);
    let twice = s.signed("apps/api", "twice", &[&release, &ci]);

    let d = s.verify(&once.tag_ref, &[]).expect_exit(DENIED).json();
    let f = finding(&d);
    assert_eq!(f["kind"], "threshold-not-met", "{d:#}");
    assert_eq!(f["message"], "verified by [release-key] but the policy requires 2 of [release-key, ci-key]");
    assert_eq!(f["hint"], format!("also sign with the key of [ci-key]: cosign sign --key <key> {}", once.digest_ref));
    assert_contains(only_denial(&d), &[&once.digest, "policy \"two-keys\"", "also sign with the key of [ci-key]"]);

    let d = s.verify(&twice.tag_ref, &[]).expect_exit(ADMITTED).json();
    let mut verified: Vec<&str> = only_image(&d)["policies"][0]["verifiedBy"]
        .as_array()
        .expect("verifiedBy")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect();
    verified.sort_unstable();
    assert_eq!(verified, ["ci-key", "release-key"], "{d:#}");
}

/// Case 7: `warn` admits an unsigned image with a warning; `audit` admits it with an audit line
/// and no warning.
#[test]
fn warn_and_audit_modes_admit_unsigned_images() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let (warn_glob, audit_glob) = (format!("{}/warned/**", s.addr()), format!("{}/audited/**", s.addr()));
    s.policy("warned", &policy_yaml("rollout-warn", &warn_glob, "  mode: warn\n", 1, &[("release-key", &key)]));
    s.policy("audited", &policy_yaml("rollout-audit", &audit_glob, "  mode: audit\n", 1, &[("release-key", &key)]));
    let warned = s.registry().push_image("warned/api", "v1");
    let audited = s.registry().push_image("audited/api", "v1");

    let d = s.verify(&warned.tag_ref, &[]).expect_exit(ADMITTED).json();
    assert_eq!(d["allowed"], true);
    assert!(lines(&d, "denials").is_empty(), "{d:#}");
    let warnings = lines(&d, "warnings");
    assert_eq!(warnings.len(), 1, "{d:#}");
    assert_contains(
        warnings[0],
        &[&warned.digest, "policy \"rollout-warn\"", "no signature found", "cosign sign --key <key>"],
    );
    assert_eq!(only_image(&d)["policies"][0]["mode"], "warn");
    assert_eq!(finding(&d)["kind"], "not-signed");

    let d = s.verify(&audited.tag_ref, &[]).expect_exit(ADMITTED).json();
    assert_eq!(d["allowed"], true);
    assert!(lines(&d, "denials").is_empty() && lines(&d, "warnings").is_empty(), "{d:#}");
    let audits = lines(&d, "audits");
    assert_eq!(audits.len(), 1, "{d:#}");
    assert_contains(audits[0], &[&audited.digest, "policy \"rollout-audit\"", "no signature found"]);
    assert_eq!(only_image(&d)["policies"][0]["mode"], "audit");
}

/// Case 8: An image no policy matches is denied by default (`no-matching-policy`) and admitted with
/// `--unmatched allow`; `*` does not cross a path segment. A policy without `signatures` is an
/// allow-list.
#[test]
fn unmatched_images_follow_the_unmatched_flag() {
    let s = Workspace::start();
    s.policy("apps", &policy_yaml("apps", &format!("{}/apps/*", s.addr()), "", 1, &[]));
    let unmatched = s.registry().push_image("other/api", "v1");
    let nested = s.registry().push_image("apps/team/api", "v1");
    let listed = s.registry().push_image("apps/api", "v1");

    for image_ref in [&unmatched.tag_ref, &nested.tag_ref] {
        let d = s.verify(image_ref, &[]).expect_exit(DENIED).json();
        assert_eq!(d["allowed"], false);
        let repository = image_ref.rsplit_once(':').expect("a tag").0;
        assert_eq!(only_image(&d)["problem"]["kind"], "no-matching-policy", "{d:#}");
        assert_eq!(only_image(&d)["policies"], serde_json::json!([]));
        assert_contains(
            only_denial(&d),
            &[image_ref, &format!("no ClusterImagePolicy governs {repository}"), "unmatched images are denied"],
        );
        let explicit = s.verify(image_ref, &["--unmatched", "deny"]).expect_exit(DENIED).json();
        assert_eq!(only_image(&explicit)["problem"]["kind"], "no-matching-policy");

        let d = s.verify(image_ref, &["--unmatched", "allow"]).expect_exit(ADMITTED).json();
        assert_eq!(d["allowed"], true, "{d:#}");
        assert_eq!(only_image(&d)["allowed"], true);
        assert!(lines(&d, "denials").is_empty(), "{d:#}");
    }

    // The allow-list policy admits its unsigned image, requiring nothing.
    let d = s.verify(&listed.tag_ref, &[]).expect_exit(ADMITTED).json();
    assert_eq!(only_image(&d)["problem"], Value::Null);
    assert_eq!(only_image(&d)["policies"][0]["policy"], "apps");
    assert_eq!(only_image(&d)["policies"][0]["result"], "pass");
    assert_eq!(only_image(&d)["policies"][0]["verifiedBy"], serde_json::json!([]));
}

/// Case 9: `requireDigest: true` denies a tag (`digest-required`, with the pinned reference as the
/// fix) even when signed, and admits the signed image by digest.
#[test]
fn require_digest_denies_tags_and_admits_signed_digests() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    s.policy(
        "pinned",
        &policy_yaml("pinned", &format!("{}/**", s.addr()), "  requireDigest: true\n", 1, &[("release-key", &key)]),
    );
    let image = s.signed("apps/api", "v1", &[&key]);

    let d = s.verify(&image.tag_ref, &[]).expect_exit(DENIED).json();
    assert_eq!(d["allowed"], false);
    let findings = only_image(&d)["policies"][0]["findings"].as_array().expect("findings").clone();
    assert_eq!(findings.len(), 1, "only the tag is wrong, the signature verifies: {d:#}");
    assert_eq!(findings[0]["kind"], "digest-required");
    assert_eq!(findings[0]["hint"], format!("reference the image by digest: {}", image.digest_ref));
    assert_contains(
        only_denial(&d),
        &[&image.tag_ref, "policy \"pinned\"", "requires a digest", &format!("by digest: {}", image.digest_ref)],
    );

    let d = s.verify(&image.digest_ref, &[]).expect_exit(ADMITTED).json();
    assert_eq!(only_image(&d)["policies"][0]["verifiedBy"], serde_json::json!(["release-key"]));
}

/// Case 10: A registry that went away makes `verify` exit 2 (could not evaluate) with
/// `registry-unreachable`, never "not signed".
#[test]
fn stopped_registry_is_an_error_distinct_from_unsigned() {
    let mut s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let image = s.signed("apps/api", "v1", &[&key]);
    s.verify(&image.tag_ref, &[]).expect_exit(ADMITTED);
    s.registry_mut().stop();

    for image_ref in [&image.tag_ref, &image.digest_ref] {
        let d = s.verify(image_ref, &[]).expect_exit(COULD_NOT_EVALUATE).json();
        assert_eq!(d["allowed"], false);
        let p = &only_image(&d)["policies"][0];
        assert_eq!(p["result"], "error", "{d:#}");
        assert_eq!(p["findings"][0]["kind"], "registry-unreachable", "{d:#}");
        let denial = only_denial(&d);
        assert_contains(
            denial,
            &[image_ref, "policy \"release\"", "could not evaluate", &format!("registry {} is unreachable", s.addr())],
        );
        assert!(!denial.to_lowercase().contains("no signature"), "an outage reads like a missing signature: {denial}");
        assert!(!denial.contains("cosign sign"), "an outage suggests signing: {denial}");
    }
}

/// Case 11: A registry that requires credentials (the real registry with distribution's `htpasswd`
/// auth; the bcrypt line is a constant in [`crate::common::registry`]): without credentials, or with wrong
/// ones, `verify` exits 2 with `registry-unauthorized`, not `not-signed`; with the right ones in
/// a docker config.json (`--registry-config`) the signed image is admitted.
#[test]
fn registry_requiring_credentials() {
    let s = Workspace::with(Registry::start_with_htpasswd());
    let (user, password) = s.registry().credentials().expect("an htpasswd registry has credentials");
    let key = KeyPair::generate(KeyType::P256);
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let image = s.signed("private/api", "v1", &[&key]);

    let wrong = s.docker_config("wrong.json", user, "not-the-password");
    let wrong = wrong.display().to_string();
    for extra in [&[][..], &["--registry-config", wrong.as_str()][..]] {
        for image_ref in [&image.tag_ref, &image.digest_ref] {
            let d = s.verify(image_ref, extra).expect_exit(COULD_NOT_EVALUATE).json();
            assert_eq!(d["allowed"], false);
            assert_eq!(finding(&d)["kind"], "registry-unauthorized", "{extra:?}: {d:#}");
            let denial = only_denial(&d);
            assert_contains(
                denial,
                &[
                    "could not evaluate",
                    &format!("registry {} refused access to private/api (HTTP 401)", s.addr()),
                    "check the registry credentials",
                ],
            );
            assert!(!denial.to_lowercase().contains("no signature"), "{denial}");
        }
    }

    let right = s.docker_config("config.json", user, password);
    let right = right.display().to_string();
    let d = s.verify(&image.tag_ref, &["--registry-config", &right]).expect_exit(ADMITTED).json();
    assert_eq!(only_image(&d)["digest"], image.digest.as_str());
    assert_eq!(only_image(&d)["policies"][0]["verifiedBy"], serde_json::json!(["release-key"]));
    // An unsigned image behind the same credentials is "not signed", now that it can be read.
    let unsigned = s.registry().push_image("private/api", "unsigned");
    let d = s.verify(&unsigned.tag_ref, &["--registry-config", &right]).expect_exit(DENIED).json();
    assert_eq!(finding(&d)["kind"], "not-signed", "{d:#}");
}

/// Case 12a: RSA and P-384 (ECDSA-SHA384) keys: each image is admitted by the policy holding its
/// public key, and not by the other key.
#[test]
fn rsa_and_p384_signatures_are_verified() {
    let s = Workspace::start();
    let (rsa, p384) = (KeyPair::generate(KeyType::Rsa), KeyPair::generate(KeyType::P384));
    s.policy("rsa", &policy_yaml("rsa", &format!("{}/rsa/**", s.addr()), "", 1, &[("rsa-key", &rsa)]));
    s.policy("p384", &policy_yaml("p384", &format!("{}/p384/**", s.addr()), "", 1, &[("p384-key", &p384)]));
    let by_rsa = s.signed("rsa/api", "v1", &[&rsa]);
    let by_p384 = s.signed("p384/api", "v1", &[&p384]);
    let crossed = s.signed("rsa/crossed", "v1", &[&p384]);

    for (image_ref, authority) in [(&by_rsa.tag_ref, "rsa-key"), (&by_p384.tag_ref, "p384-key")] {
        let d = s.verify(image_ref, &[]).expect_exit(ADMITTED).json();
        assert_eq!(only_image(&d)["policies"][0]["verifiedBy"], serde_json::json!([authority]), "{d:#}");
    }
    let d = s.verify(&crossed.tag_ref, &[]).expect_exit(DENIED).json();
    assert_eq!(finding(&d)["kind"], "untrusted-signature", "{d:#}");
}

/// Case 12b: Ed25519: cosign v3.1.3 signs Ed25519 keys as Ed25519ph (pre-hashed); the image is
/// admitted by a policy with the Ed25519 public key.
#[test]
fn ed25519_signatures_are_verified() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::Ed25519);
    s.policy("ed", &policy_yaml("ed", &format!("{}/**", s.addr()), "", 1, &[("ed-key", &key)]));
    let image = s.signed("apps/api", "v1", &[&key]);
    let d = s.verify(&image.tag_ref, &[]).expect_exit(ADMITTED).json();
    assert_eq!(only_image(&d)["policies"][0]["verifiedBy"], serde_json::json!(["ed-key"]), "{d:#}");
    // Another Ed25519 key does not verify it.
    let other = KeyPair::generate(KeyType::Ed25519);
    let image2 = s.signed("apps/api", "v2", &[&other]);
    let d = s.verify(&image2.tag_ref, &[]).expect_exit(DENIED).json();
    assert_eq!(finding(&d)["kind"], "untrusted-signature", "{d:#}");
}

/// Case 13: `evaluate -f` of a multi-document manifest: the Deployment is denied for its unsigned
/// initContainer (named by field path), the CronJob is admitted, the ConfigMap is skipped.
#[test]
fn evaluate_decides_each_workload_of_a_manifest() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let web = s.signed("apps/web", "v1", &[&key]);
    let migrate = s.registry().push_image("apps/migrate", "v1");
    let report = s.signed("jobs/report", "v1", &[&key]);
    let manifest = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      initContainers:
        - name: migrate
          image: {migrate}
      containers:
        - name: web
          image: {web}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  level: debug
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: batch
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: {report}
"#,
        migrate = migrate.tag_ref,
        web = web.tag_ref,
        report = report.digest_ref,
    );

    let j = s.evaluate(&manifest, &["--output", "json"]).expect_exit(DENIED).json();
    let objects = j["objects"].as_array().unwrap_or_else(|| panic!("no objects: {j:#}"));
    assert_eq!(objects.len(), 2, "the ConfigMap is not a workload: {j:#}");

    let deployment = &objects[0];
    assert_eq!(deployment["object"], "Deployment default/web");
    assert_eq!(deployment["allowed"], false);
    let denial = only_denial(deployment);
    assert_contains(
        denial,
        &[
            &format!("spec.template.spec.initContainers[0].image {} ({})", migrate.tag_ref, migrate.digest),
            "policy \"release\"",
            "no signature found",
            &format!("cosign sign --key <key> {}", migrate.digest_ref),
        ],
    );
    assert!(!denial.contains("spec.template.spec.containers[0]"), "the signed container is not blamed: {denial}");
    let images = deployment["images"].as_array().expect("images");
    assert_eq!(images.len(), 2, "{deployment:#}");
    let by_path = |path: &str| {
        images.iter().find(|i| i["path"] == path).unwrap_or_else(|| panic!("no image at {path}: {deployment:#}"))
    };
    let init = by_path("spec.template.spec.initContainers[0].image");
    assert_eq!((init["allowed"].clone(), init["container"].clone()), (false.into(), "migrate".into()));
    assert_eq!(init["policies"][0]["findings"][0]["kind"], "not-signed");
    let main = by_path("spec.template.spec.containers[0].image");
    assert_eq!((main["allowed"].clone(), main["digest"].clone()), (true.into(), web.digest.as_str().into()));

    let cronjob = &objects[1];
    assert_eq!(cronjob["object"], "CronJob batch/nightly");
    assert_eq!(cronjob["allowed"], true, "{cronjob:#}");
    assert_eq!(cronjob["images"][0]["path"], "spec.jobTemplate.spec.template.spec.containers[0].image");
    assert_eq!(cronjob["images"][0]["policies"][0]["verifiedBy"], serde_json::json!(["release-key"]));

    let run = s.evaluate(&manifest, &["--output", "text"]);
    run.expect_exit(DENIED);
    assert!(
        run.stdout.starts_with("DENIED Deployment default/web\n  spec.template.spec.initContainers[0].image "),
        "{run}"
    );
    assert_contains(
        &run.stdout,
        &["skipped ConfigMap default/settings: not a workload kind", "ADMITTED CronJob batch/nightly"],
    );
    // Text is the default output.
    let default = s.evaluate(&manifest, &[]);
    assert_eq!((default.code, default.stdout.as_str()), (run.code, run.stdout.as_str()));

    // Without the unsigned initContainer everything is admitted.
    let fixed = manifest.replace(&migrate.tag_ref, &web.digest_ref);
    let j = s.evaluate(&fixed, &["--output", "json"]).expect_exit(ADMITTED).json();
    assert!(j["objects"].as_array().expect("objects").iter().all(|o| o["allowed"] == true), "{j:#}");
}

/// Case 14: A policy with a `namespaceSelector` governs only namespaces whose labels match; in any
/// other namespace the image is unmatched. `kubernetes.io/metadata.name` is set from the
/// namespace.
#[test]
fn namespace_selector_scopes_a_policy() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let selector = "  namespaceSelector:\n    matchLabels:\n      env: prod\n";
    s.policy(
        "prod",
        &policy_yaml("prod-only", &format!("{}/apps/**", s.addr()), selector, 1, &[("release-key", &key)]),
    );
    let by_name = "  namespaceSelector:\n    matchLabels:\n      kubernetes.io/metadata.name: payments\n";
    s.policy("payments", &policy_yaml("payments", &format!("{}/pay/**", s.addr()), by_name, 1, &[]));
    let signed = s.signed("apps/api", "v1", &[&key]);
    let unsigned = s.registry().push_image("apps/batch", "v1");
    let pay = s.registry().push_image("pay/api", "v1");
    let pod = |image: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: api\nspec:\n  containers:\n    - name: api\n      image: {image}\n")
    };

    // Governed in prod: the signed image passes, the unsigned one fails the policy.
    let prod = ["--namespace", "prod", "--namespace-labels", "env=prod", "--output", "json"];
    let j = s.evaluate(&pod(&signed.tag_ref), &prod).expect_exit(ADMITTED).json();
    let object = &j["objects"][0];
    assert_eq!(object["object"], "Pod prod/api");
    assert_eq!(object["images"][0]["policies"][0]["policy"], "prod-only", "{j:#}");
    assert_eq!(object["images"][0]["policies"][0]["verifiedBy"], serde_json::json!(["release-key"]));
    let j = s.evaluate(&pod(&unsigned.tag_ref), &prod).expect_exit(DENIED).json();
    assert_eq!(j["objects"][0]["images"][0]["policies"][0]["findings"][0]["kind"], "not-signed", "{j:#}");

    // Elsewhere no policy matches: the image is unmatched, signed or not.
    for namespace in [
        &["--namespace", "dev", "--namespace-labels", "env=dev"][..],
        &["--namespace", "prod"][..], // the name alone is not the label env=prod
    ] {
        let args = [namespace, &["--output", "json"][..]].concat();
        let j = s.evaluate(&pod(&signed.tag_ref), &args).expect_exit(DENIED).json();
        let image = &j["objects"][0]["images"][0];
        assert_eq!(image["problem"]["kind"], "no-matching-policy", "{namespace:?}: {j:#}");
        assert_eq!(image["policies"], serde_json::json!([]));
        let args = [namespace, &["--output", "json", "--unmatched", "allow"][..]].concat();
        s.evaluate(&pod(&unsigned.tag_ref), &args).expect_exit(ADMITTED);
    }

    // The namespace's name is its `kubernetes.io/metadata.name` label.
    let j =
        s.evaluate(&pod(&pay.tag_ref), &["--namespace", "payments", "--output", "json"]).expect_exit(ADMITTED).json();
    assert_eq!(j["objects"][0]["images"][0]["policies"][0]["policy"], "payments", "{j:#}");
    s.evaluate(&pod(&pay.tag_ref), &["--namespace", "default", "--output", "json"]).expect_exit(DENIED);

    // `verify` takes the namespace's labels too.
    s.verify(&signed.tag_ref, &["--namespace-labels", "env=prod"]).expect_exit(ADMITTED);
    let d = s.verify(&signed.tag_ref, &[]).expect_exit(DENIED).json();
    assert_eq!(only_image(&d)["problem"]["kind"], "no-matching-policy", "{d:#}");
}

/// Case 15: An image is governed by the policy of its registry host however the host is
/// spelled: `127.0.0.1:0PORT` (a leading zero in the port) by the `127.0.0.1:PORT/**` policy,
/// `LOCALHOST:PORT` by a `localhost:PORT/**` one (to the runtime `localhost` and `127.0.0.1` are
/// two hosts), each under its canonical repository; `--insecure-registry` is compared the same
/// way. Run with `--unmatched allow`, so a spelling that slipped past its policy is admitted.
#[test]
fn registry_host_spellings_are_governed_by_the_policy_of_the_host() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let port = s.addr().rsplit_once(':').expect("HOST:PORT").1.to_owned();
    let (loopback, localhost) = (s.addr().to_owned(), format!("localhost:{port}"));
    s.policy("loopback", &policy_yaml("loopback", &format!("{loopback}/**"), "", 1, &[("release-key", &key)]));
    let unsigned = s.registry().push_image("apps/api", "v1");
    let signed = s.signed("apps/web", "v1", &[&key]);
    // `localhost` resolves to 127.0.0.1, where the registry listens over plain HTTP.
    let upper = format!("LOCALHOST:{port}");
    let allow = ["--insecure-registry", upper.as_str(), "--unmatched", "allow"];

    for host in [loopback.clone(), format!("127.0.0.1:0{port}")] {
        let image_ref = format!("{host}/apps/api:v1");
        let d = s.verify(&image_ref, &allow).expect_exit(DENIED).json();
        let i = only_image(&d);
        assert_eq!(i["repository"], format!("{loopback}/apps/api"), "{image_ref}: {d:#}");
        assert_eq!(i["digest"], unsigned.digest.as_str());
        assert_eq!(i["policies"][0]["policy"], "loopback", "{image_ref}: {d:#}");
        assert_eq!(finding(&d)["kind"], "not-signed", "{image_ref}: {d:#}");
        assert_contains(
            only_denial(&d),
            &["policy \"loopback\"", "no signature found", &format!("cosign sign --key <key> {}", unsigned.digest_ref)],
        );
    }

    // No policy names `localhost:PORT` yet: unmatched, under its canonical name.
    let d = s.verify(&format!("{upper}/apps/api:v1"), &["--insecure-registry", &upper]).expect_exit(DENIED).json();
    assert_eq!(only_image(&d)["problem"]["kind"], "no-matching-policy", "{d:#}");
    assert_contains(
        only_denial(&d),
        &[&format!("no ClusterImagePolicy governs {localhost}/apps/api"), "unmatched images are denied"],
    );

    s.policy("localhost", &policy_yaml("localhost", &format!("{localhost}/**"), "", 1, &[("release-key", &key)]));
    let d = s.verify(&format!("{upper}/apps/api:v1"), &allow).expect_exit(DENIED).json();
    let i = only_image(&d);
    assert_eq!(i["repository"], format!("{localhost}/apps/api"), "{d:#}");
    assert_eq!(i["policies"][0]["policy"], "localhost", "{d:#}");
    assert_eq!(finding(&d)["kind"], "not-signed", "{d:#}");
    assert_contains(
        only_denial(&d),
        &[
            "policy \"localhost\"",
            "no signature found",
            &format!("cosign sign --key <key> {localhost}/apps/api@{}", unsigned.digest),
        ],
    );

    // The signature made for 127.0.0.1:PORT is in the same registry, so it verifies here too.
    let d = s.verify(&format!("{upper}/apps/web:v1"), &allow).expect_exit(ADMITTED).json();
    let i = only_image(&d);
    assert_eq!(i["repository"], format!("{localhost}/apps/web"), "{d:#}");
    assert_eq!(i["digest"], signed.digest.as_str());
    assert_eq!(i["policies"][0]["policy"], "localhost", "{d:#}");
    assert_eq!(i["policies"][0]["result"], "pass");
    assert_eq!(i["policies"][0]["verifiedBy"], serde_json::json!(["release-key"]));
}

/// Case 16: `evaluate -f` of a Pod that runs a signed image but mounts an unsigned one as an
/// image volume is denied, naming the volume's field path; with a signed image volume it is
/// admitted.
#[test]
fn evaluate_denies_a_pod_mounting_an_unsigned_image_volume() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    s.policy("release", &policy_yaml("release", &format!("{}/**", s.addr()), "", 1, &[("release-key", &key)]));
    let app = s.signed("apps/server", "v1", &[&key]);
    let model = s.registry().push_image("models/llm", "v3");
    let signed_model = s.signed("models/llm", "v4", &[&key]);
    let pod = |volume: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: inference
  namespace: ml
spec:
  containers:
    - name: server
      image: {app}
      volumeMounts:
        - {{name: model, mountPath: /model, readOnly: true}}
  volumes:
    - name: model
      image:
        reference: {volume}
        pullPolicy: IfNotPresent
"#,
            app = app.digest_ref
        )
    };

    let j = s.evaluate(&pod(&model.tag_ref), &["--output", "json"]).expect_exit(DENIED).json();
    let object = &j["objects"][0];
    assert_eq!(object["object"], "Pod ml/inference");
    assert_eq!(object["allowed"], false, "{j:#}");
    assert_contains(
        only_denial(object),
        &[
            &format!("spec.volumes[0].image.reference {} ({})", model.tag_ref, model.digest),
            "policy \"release\"",
            "no signature found",
            &format!("cosign sign --key <key> {}", model.digest_ref),
        ],
    );
    let images = object["images"].as_array().expect("images");
    assert_eq!(images.len(), 2, "the container and the image volume: {object:#}");
    let volume = images
        .iter()
        .find(|i| i["path"] == "spec.volumes[0].image.reference")
        .unwrap_or_else(|| panic!("the image volume is not evaluated: {object:#}"));
    assert_eq!((volume["allowed"].clone(), volume["container"].clone()), (false.into(), "model".into()));
    assert_eq!(volume["policies"][0]["findings"][0]["kind"], "not-signed");

    let run = s.evaluate(&pod(&model.tag_ref), &[]);
    run.expect_exit(DENIED);
    assert!(run.stdout.starts_with("DENIED Pod ml/inference\n  spec.volumes[0].image.reference "), "{run}");

    let j = s.evaluate(&pod(&signed_model.tag_ref), &["--output", "json"]).expect_exit(ADMITTED).json();
    assert_eq!(j["objects"][0]["allowed"], true, "{j:#}");
}

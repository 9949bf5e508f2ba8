//! Provenance and SBOM attestations (issue 4): the real `trustgate` binary against a real
//! registry, attestations made by the real cosign, SBOMs made by the real syft.
//!
//! Every test starts its own registry (see [`crate::common`]), pushes images with umoci + skopeo,
//! attests them with `cosign attest --key … --type … --predicate …` in the classic offline
//! format (a `sha256-<hex>.att` tag of DSSE envelopes), writes `ClusterImagePolicy` files with
//! `spec.attestations`, and runs `trustgate verify IMAGE --output json` as a developer would in
//! CI, asserting the exit code (0 admitted, 1 denied, 2 could not evaluate), the finding kind
//! and the words of the message that tell the developer what is wrong.
//!
//! Provenance predicates are `tests/fixtures/slsa/*.json` (edited in the test where a case
//! needs another source or ref). SBOMs are what syft writes for an image that carries the
//! package metadata of `tests/fixtures/sbom-src` (npm `node_modules/*/package.json` with
//! `left-pad` 1.3.0 MIT, `agpl-thing` 1.0.0 AGPL-3.0-only, `event-stream` 3.3.6 MIT, and a
//! Python `requests` 2.31.0 `*.dist-info`) or of `tests/fixtures/sbom-src-clean` (no AGPL, no
//! event-stream), scanned from the registry by digest.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use rstest::rstest;
use serde_json::{json, Value};

use crate::common::cli::{assert_contains, only_denial, only_image, Run, ADMITTED, DENIED};
use crate::common::cosign::{
    copy_attestations, envelope_statement, tamper_attestation, KeyPair, KeyType, DSSE_ENVELOPE_MEDIA_TYPE,
    IN_TOTO_PAYLOAD_TYPE, PREDICATE_TYPE_ANNOTATION,
};
use crate::common::registry::PushedImage;
use crate::common::sbom::{rfc3339_utc, sbom_packages, SbomFormat};
use crate::common::workspace::{fixture, fixture_json, Workspace};

const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
const CYCLONEDX: &str = "https://cyclonedx.org/bom";
const SPDX: &str = "https://spdx.dev/Document";

/// The builder, source repositories and ref the provenance rules allow (the fixtures match).
const ALLOWED_BUILDER: &str = "https://github.com/actions/runner";
const SLSA_RULE: &str = "      slsa:
        builderIds: [\"https://github.com/actions/runner\"]
        sourceRepositories: [\"https://github.com/acme/*\"]
        sourceRefs: [\"refs/heads/main\"]
";

/// A `ClusterImagePolicy` for everything in the registry: `signatures` with `threshold` and one
/// key authority per `(name, key)`, and `attestations` (YAML list items indented by four
/// spaces, see [`rule`]).
fn policy_yaml(
    name: &str,
    addr: &str,
    threshold: usize,
    authorities: &[(&str, &KeyPair)],
    attestations: &str,
) -> String {
    let mut yaml = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: {name}\nspec:\n  images:\n    - glob: \"{addr}/**\"\n  signatures:\n    threshold: {threshold}\n    authorities:\n"
    );
    for (authority, key) in authorities {
        yaml.push_str(&key.authority_yaml(authority));
    }
    if !attestations.is_empty() {
        yaml.push_str("  attestations:\n");
        yaml.push_str(attestations);
    }
    yaml
}

/// One `spec.attestations` entry: `name`, `predicateType`, `authorities` and `checks` (YAML
/// lines indented by six spaces, e.g. [`SLSA_RULE`]).
fn rule(name: &str, predicate_type: &str, authorities: &[&str], checks: &str) -> String {
    format!(
        "    - name: {name}\n      predicateType: {predicate_type}\n      authorities: [{}]\n{checks}",
        authorities.join(", ")
    )
}

/// An `sbom:` check block with these lines (each `key: value`).
fn sbom_rule(lines: &[&str]) -> String {
    let mut yaml = "      sbom:\n".to_string();
    for line in lines {
        yaml.push_str(&format!("        {line}\n"));
    }
    yaml
}

/// The findings of the first policy of the only image.
fn findings(decision: &Value) -> &Vec<Value> {
    only_image(decision)["policies"][0]["findings"].as_array().unwrap_or_else(|| panic!("no findings: {decision:#}"))
}

/// The only finding of the first policy of the only image.
#[track_caller]
fn only_finding(decision: &Value) -> &Value {
    let f = findings(decision);
    assert_eq!(f.len(), 1, "{decision:#}");
    &f[0]
}

/// Asserts an admitted decision whose first policy passed.
#[track_caller]
fn assert_admitted(run: &Run) {
    let d = run.expect_exit(ADMITTED).json();
    assert_eq!(d["allowed"], true, "{d:#}");
    assert!(d["denials"].as_array().is_some_and(Vec::is_empty), "{d:#}");
    assert_eq!(only_image(&d)["policies"][0]["result"], "pass", "{d:#}");
}

/// Asserts a denial with one finding of `kind` whose message and denial line contain `parts`;
/// returns the finding's message.
#[track_caller]
fn assert_denied(run: &Run, kind: &str, parts: &[&str]) -> String {
    let d = run.expect_exit(DENIED).json();
    assert_eq!(d["allowed"], false, "{d:#}");
    assert_eq!(only_image(&d)["policies"][0]["result"], "fail", "{d:#}");
    let f = only_finding(&d);
    assert_eq!(f["kind"], kind, "{d:#}");
    let message = f["message"].as_str().unwrap_or_else(|| panic!("no message: {d:#}"));
    assert_contains(message, parts);
    assert_contains(only_denial(&d), parts);
    message.to_string()
}

/// Asserts that syft found each `(purl, license)` in `sbom`, so that the policy rules run on
/// what syft really writes (a syft upgrade that stops reading a license shows up here, not as
/// a puzzling admission).
#[track_caller]
fn assert_syft_found(sbom: &Value, expected: &[(&str, &str)]) {
    let packages = sbom_packages(sbom);
    for (purl, license) in expected {
        let found = packages.iter().find(|(p, _)| p == purl);
        let Some((_, licenses)) = found else { panic!("syft did not list {purl}: {packages:?}") };
        assert!(licenses.iter().any(|l| l == license), "syft did not give {purl} the license {license}: {packages:?}");
    }
}

/// Asserts that syft did not list `purl` in `sbom`.
#[track_caller]
fn assert_syft_lacks(sbom: &Value, purl: &str) {
    let packages = sbom_packages(sbom);
    assert!(packages.iter().all(|(p, _)| p != purl), "syft listed {purl}: {packages:?}");
}

/// The provenance v1 fixture with its source repository and/or ref replaced everywhere it
/// appears (`externalParameters.workflow` and the git `resolvedDependencies` URI).
fn provenance_v1_from(repository: &str, git_ref: &str) -> Value {
    let mut p = fixture_json("slsa/provenance-v1.json");
    let workflow = &mut p["buildDefinition"]["externalParameters"]["workflow"];
    workflow["repository"] = repository.into();
    workflow["ref"] = git_ref.into();
    p["buildDefinition"]["resolvedDependencies"][0]["uri"] = format!("git+{repository}@{git_ref}").into();
    p
}

/// The harness itself: `KeyPair::attest` makes cosign write a classic `.att` tag whose layers
/// are DSSE envelopes around in-toto statements naming the image digest; a second attestation
/// is appended as another layer.
#[test]
fn cosign_attest_writes_classic_dsse_attestations() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let image = s.registry().push_image("apps/api", "v1");
    let started = Instant::now();
    key.attest(&image.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1.json"));
    key.attest(&image.digest_ref, "slsaprovenance02", &fixture("slsa/provenance-v0.2.json"));
    eprintln!("two cosign attest runs: {:?}", started.elapsed());

    assert!(s.registry().tags(&image.repo).contains(&image.att_tag()), "{:?}", s.registry().tags(&image.repo));
    let manifest = s.registry().attestation_manifest(&image).expect("attestation manifest");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2, "{manifest:#}");
    for (layer, predicate_type) in layers.iter().zip([SLSA_V1, SLSA_V02]) {
        assert_eq!(layer["mediaType"], DSSE_ENVELOPE_MEDIA_TYPE, "{manifest:#}");
        assert_eq!(layer["annotations"][PREDICATE_TYPE_ANNOTATION], predicate_type, "{manifest:#}");
    }
    let envelopes = s.registry().attestation_envelopes(&image);
    for (envelope, predicate_type) in envelopes.iter().zip([SLSA_V1, SLSA_V02]) {
        assert_eq!(envelope["payloadType"], IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(envelope["signatures"].as_array().map(Vec::len), Some(1), "{envelope:#}");
        let statement = envelope_statement(envelope);
        assert_eq!(statement["predicateType"], predicate_type);
        assert_eq!(statement["subject"][0]["digest"]["sha256"], image.digest.trim_start_matches("sha256:"));
    }
    assert_eq!(
        s.registry().attestation_statements(&image)[0]["predicate"]["runDetails"]["builder"]["id"],
        ALLOWED_BUILDER
    );
}

/// SLSA provenance v1 from the allowed builder, repository and ref is admitted with
/// `signatures.threshold: 0` (the authority only vouches for the attestation); without it the
/// same policy denies, naming what is missing and how to attest.
#[test]
fn provenance_v1_from_the_allowed_builder_repo_and_ref_is_admitted() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let image = s.registry().push_image("apps/api", "v1");

    let message = assert_denied(
        &s.verify(&image.digest_ref, &[]),
        "attestation-missing",
        &["no SLSA provenance attestation signed by [release-key]"],
    );
    assert!(!message.contains("examined"), "nothing was examined: {message}");

    key.attest(&image.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1.json"));
    let run = s.verify(&image.digest_ref, &[]);
    assert_admitted(&run);
    // `verify --output json` lists the attestation examined, and why it was accepted.
    let d = run.json();
    let examined = &only_image(&d)["policies"][0]["attestations"];
    assert_eq!(examined.as_array().map(Vec::len), Some(1), "{d:#}");
    assert_eq!(examined[0]["attestation"], "provenance", "{d:#}");
    assert_eq!(examined[0]["predicateType"], SLSA_V1, "{d:#}");
    assert_eq!(examined[0]["signer"], "release-key", "{d:#}");
    assert_eq!(examined[0]["accepted"], true, "{d:#}");
}

/// SLSA provenance v0.2 (`invocation.configSource`, `materials`) is read too.
#[test]
fn provenance_v0_2_from_the_allowed_builder_repo_and_ref_is_admitted() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("provenance", "slsaprovenance02", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let image = s.registry().push_image("apps/api", "v1");
    key.attest(&image.digest_ref, "slsaprovenance02", &fixture("slsa/provenance-v0.2.json"));
    assert_admitted(&s.verify(&image.digest_ref, &[]));

    // A v1 attestation does not stand in for the v0.2 the policy asks for.
    let other = s.registry().push_image("apps/api", "v2");
    key.attest(&other.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1.json"));
    assert_denied(
        &s.verify(&other.digest_ref, &[]),
        "attestation-missing",
        &["no SLSA provenance attestation signed by [release-key]"],
    );
}

/// Provenance that the policy's SLSA rule refuses is `attestation-failed`, naming what is wrong
/// and what the rule allows. One case per rule: the provenance is attested as a file written by
/// `predicate` in the workspace.
#[rstest]
// Provenance from a builder the policy does not list is `attestation-failed`, naming the
// builder and the allowed ones.
#[case::provenance_from_the_wrong_builder_is_denied(
    |_: &Workspace| fixture("slsa/provenance-v1-wrong-builder.json"),
    &["provenance builder https://evil.example/builder is not in", ALLOWED_BUILDER],
)]
// Provenance built from a repository outside `sourceRepositories` is denied, naming it.
#[case::provenance_from_the_wrong_repository_is_denied(
    |s: &Workspace| s.json_file("evil-repo.json", &provenance_v1_from("https://github.com/evil/app", "refs/heads/main")),
    &["provenance source", "github.com/evil/app", "is not in", "https://github.com/acme/*"],
)]
// Provenance built from a branch outside `sourceRefs` is denied, naming the ref.
#[case::provenance_from_the_wrong_ref_is_denied(
    |s: &Workspace| s.json_file("feature-ref.json", &provenance_v1_from("https://github.com/acme/app", "refs/heads/feature")),
    &["provenance source ref refs/heads/feature is not in", "refs/heads/main"],
)]
fn provenance_outside_the_slsa_rule_is_denied(#[case] predicate: fn(&Workspace) -> PathBuf, #[case] parts: &[&str]) {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let image = s.registry().push_image("apps/api", "v1");
    key.attest(&image.digest_ref, "slsaprovenance1", &predicate(&s));

    assert_denied(&s.verify(&image.digest_ref, &[]), "attestation-failed", parts);
}

/// Valid provenance signed by a key the policy does not trust is ignored: the attestation is
/// missing, and the message says one was examined and why it was not accepted.
#[test]
fn provenance_signed_by_an_untrusted_key_is_missing() {
    let s = Workspace::start();
    let (key, other) = (KeyPair::generate(KeyType::P256), KeyPair::generate(KeyType::P256));
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let image = s.registry().push_image("apps/api", "v1");
    other.attest(&image.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1.json"));

    assert_denied(
        &s.verify(&image.digest_ref, &[]),
        "attestation-missing",
        &[
            "no SLSA provenance attestation signed by [release-key]",
            "1 attestation examined and not accepted",
            "signed by none of the allowed authorities",
        ],
    );
    let d = s.verify(&image.digest_ref, &[]).json();
    let examined = &only_image(&d)["policies"][0]["attestations"];
    assert_eq!(examined.as_array().map(Vec::len), Some(1), "{d:#}");
    assert_eq!(examined[0]["accepted"], false, "{d:#}");
    assert_eq!(examined[0]["signer"], Value::Null, "{d:#}");
    assert_contains(examined[0]["reason"].as_str().unwrap_or_default(), &["signed by none of the allowed authorities"]);
}

/// A genuine attestation copied from another image (its `.att` tag) names the other digest:
/// missing, "for another image digest".
#[test]
fn provenance_copied_from_another_image_is_missing() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let attested = s.registry().push_image("apps/api", "v1");
    key.attest(&attested.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1.json"));
    let victim = s.registry().push_image("apps/api", "v2");
    copy_attestations(s.registry(), &attested, &victim);
    assert_eq!(
        s.registry().attestation_statements(&victim)[0]["subject"][0]["digest"]["sha256"],
        attested.digest.trim_start_matches("sha256:"),
        "the copy names the original digest"
    );

    assert_denied(
        &s.verify(&victim.digest_ref, &[]),
        "attestation-missing",
        &["no SLSA provenance attestation signed by [release-key]", "attestation for another image digest (copied?)"],
    );
    // The image it was copied from is still admitted.
    assert_admitted(&s.verify(&attested.digest_ref, &[]));
}

/// An envelope whose payload was altered after signing (here: the wrong builder rewritten to
/// the allowed one, signature kept) is not accepted: the attestation is missing.
#[test]
fn tampered_provenance_envelope_is_missing() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let image = s.registry().push_image("apps/api", "v1");
    key.attest(&image.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1-wrong-builder.json"));
    assert_denied(
        &s.verify(&image.digest_ref, &[]),
        "attestation-failed",
        &["provenance builder https://evil.example/builder"],
    );

    let tampered = tamper_attestation(s.registry(), &image, 0, |statement| {
        statement["predicate"]["runDetails"]["builder"]["id"] = ALLOWED_BUILDER.into();
    });
    assert_eq!(tampered["subject"][0]["digest"]["sha256"], image.digest.trim_start_matches("sha256:"));

    let message = assert_denied(
        &s.verify(&image.digest_ref, &[]),
        "attestation-missing",
        &["no SLSA provenance attestation signed by [release-key]", "1 attestation examined and not accepted"],
    );
    assert!(message.contains("altered"), "the message should say the envelope may be altered: {message}");
    assert!(!message.contains("evil.example"), "nothing is read from an unverified envelope: {message}");
}

/// syft's SBOM of the fixture image lists `agpl-thing` under AGPL-3.0-only: a policy denying
/// that license denies, naming license and package, in each format syft writes and cosign
/// attests (`--type cyclonedx`, `--type spdxjson`).
#[rstest]
// syft's CycloneDX SBOM; the denial names no other package.
#[case::cyclonedx_sbom_with_a_denied_license_is_denied(
    SbomFormat::CycloneDx,
    None,
    "Apache 2.0",
    "sbom.cdx.json",
    CYCLONEDX,
    "SBOM (CycloneDX) denies license AGPL-3.0-only in pkg:npm/agpl-thing@1.0.0",
    &["left-pad", "requests"]
)]
// The same with syft's SPDX 2.3 JSON.
#[case::spdx_sbom_with_a_denied_license_is_denied(
    SbomFormat::SpdxJson,
    Some(("spdxVersion", "SPDX-2.3")),
    "LicenseRef-Apache-2.0",
    "sbom.spdx.json",
    SPDX,
    "SBOM (SPDX) denies license AGPL-3.0-only in pkg:npm/agpl-thing@1.0.0",
    &[]
)]
fn sbom_with_a_denied_license_is_denied(
    #[case] format: SbomFormat,
    #[case] version: Option<(&str, &str)>,
    #[case] requests_license: &str,
    #[case] file_name: &str,
    #[case] predicate_type: &str,
    #[case] denial: &str,
    #[case] not_named: &[&str],
) {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let checks = sbom_rule(&["deniedLicenses: [AGPL-3.0-only]"]);
    let rules = rule("sbom", format.cosign_type(), &["release-key"], &checks);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let (image, sbom) = s.image_with_sbom("apps/web", "v1", "sbom-src", format);
    if let Some((field, value)) = version {
        assert_eq!(sbom[field], value);
    }
    assert_syft_found(
        &sbom,
        &[
            ("pkg:npm/agpl-thing@1.0.0", "AGPL-3.0-only"),
            ("pkg:npm/left-pad@1.3.0", "MIT"),
            ("pkg:npm/event-stream@3.3.6", "MIT"),
            ("pkg:pypi/requests@2.31.0", requests_license),
        ],
    );
    let file = s.json_file(file_name, &sbom);
    key.attest(&image.digest_ref, format.cosign_type(), &file);
    assert_eq!(s.registry().attestation_statements(&image)[0]["predicateType"], predicate_type);

    let message = assert_denied(&s.verify(&image.digest_ref, &[]), "attestation-failed", &[denial]);
    for part in not_named {
        assert!(!message.contains(part), "{message}");
    }
}

/// One policy of [`sbom_rules_in_both_formats`]: an `sbom:` check block, and what it makes of
/// the image.
struct Step {
    /// The lines of the `sbom:` block ([`sbom_rule`]).
    rule: &'static [&'static str],
    /// `None`: admitted. `Some(message)`: denied as `attestation-failed`, the message (with
    /// `{label}` replaced by the format's name, `CycloneDX` or `SPDX`) in the finding and the
    /// denial.
    denial: Option<&'static str>,
}

const fn admits(rule: &'static [&'static str]) -> Step {
    Step { rule, denial: None }
}

const fn denies(rule: &'static [&'static str], message: &'static str) -> Step {
    Step { rule, denial: Some(message) }
}

/// The SBOM rules over one image attested in both formats: the image (`image`) is scanned by
/// syft in each format, syft's findings checked (`syft_found`), the SBOM edited (`edit`) and
/// attested; then, for each format in turn, each step's policy (a rule for that format's
/// predicate type) is written and the image verified.
#[rstest]
// A denied package URL (exact, and with `*` in the version) is found in both formats.
#[case::sbom_with_a_denied_package_is_denied_in_both_formats(
    |s: &Workspace| s.registry().push_image_with_tree("apps/web", "v1", &fixture("sbom-src"), "/app"),
    |sbom: &Value| assert_syft_found(sbom, &[("pkg:npm/event-stream@3.3.6", "MIT")]),
    |_: &mut Value, _: SbomFormat| {},
    &[
        denies(
            &["deniedPackages: [\"pkg:npm/event-stream@3.3.6\"]"],
            "SBOM ({label}) lists denied package pkg:npm/event-stream@3.3.6 (matches pkg:npm/event-stream@3.3.6)",
        ),
        denies(
            &["deniedPackages: [\"pkg:npm/event-stream@3.3.*\"]"],
            "SBOM ({label}) lists denied package pkg:npm/event-stream@3.3.6 (matches pkg:npm/event-stream@3.3.*)",
        ),
    ],
)]
// An image without the denied license and package passes the same rules, in both formats,
// within `maxAge`.
#[case::clean_sbom_is_admitted_in_both_formats(
    |s: &Workspace| s.registry().push_image_with_tree("apps/web", "v1", &fixture("sbom-src-clean"), "/app"),
    |sbom: &Value| {
        assert_syft_found(sbom, &[("pkg:npm/left-pad@1.3.0", "MIT")]);
        assert_syft_lacks(sbom, "pkg:npm/agpl-thing@1.0.0");
        assert_syft_lacks(sbom, "pkg:npm/event-stream@3.3.6");
    },
    |_: &mut Value, _: SbomFormat| {},
    &[admits(&[
        "deniedLicenses: [AGPL-3.0-only, GPL-3.0-only]",
        "deniedPackages: [\"pkg:npm/event-stream@3.3.6\"]",
        "maxAge: 720h",
    ])],
)]
// An SBOM created 45 days ago (syft's creation time rewritten before attesting) fails a 30-day
// `maxAge` (`720h`), in both formats; a 60-day limit admits it.
#[case::sbom_older_than_max_age_is_denied(
    |s: &Workspace| s.registry().push_image_with_tree("apps/web", "v1", &fixture("sbom-src-clean"), "/app"),
    |_: &Value| {},
    created_45_days_ago,
    &[denies(&["maxAge: 720h"], "SBOM is 45 days old, policy allows 30"), admits(&["maxAge: 1440h"])],
)]
// syft's SBOM of an image without packages (CycloneDX without `components`, SPDX with only the
// described image) proves nothing: "lists no packages", in both formats.
#[case::empty_sbom_is_denied_in_both_formats(
    |s: &Workspace| s.registry().push_image("apps/empty", "v1"),
    |sbom: &Value| assert!(sbom_packages(sbom).is_empty(), "syft found packages in an empty image: {sbom:#}"),
    |_: &mut Value, _: SbomFormat| {},
    &[denies(&["deniedLicenses: [AGPL-3.0-only]"], "SBOM ({label}) lists no packages")],
)]
fn sbom_rules_in_both_formats(
    #[case] image: fn(&Workspace) -> PushedImage,
    #[case] syft_found: fn(&Value),
    #[case] edit: fn(&mut Value, SbomFormat),
    #[case] steps: &[Step],
) {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let image = image(&s);
    for format in [SbomFormat::CycloneDx, SbomFormat::SpdxJson] {
        let mut sbom = s.sbom_of(&image, format);
        syft_found(&sbom);
        edit(&mut sbom, format);
        key.attest(&image.digest_ref, format.cosign_type(), &s.json_file(&format!("{format:?}.json"), &sbom));
    }
    for (format, label) in [(SbomFormat::CycloneDx, "CycloneDX"), (SbomFormat::SpdxJson, "SPDX")] {
        for step in steps {
            let rules = rule("sbom", format.cosign_type(), &["release-key"], &sbom_rule(step.rule));
            s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
            let run = s.verify(&image.digest_ref, &[]);
            match step.denial {
                None => assert_admitted(&run),
                Some(message) => {
                    assert_denied(&run, "attestation-failed", &[&message.replace("{label}", label)]);
                }
            }
        }
    }
}

/// Rewrites syft's creation time of `sbom` to a little under 45 days ago, so that the few
/// seconds until trustgate evaluates it do not round the age up to 46 days.
fn created_45_days_ago(sbom: &mut Value, format: SbomFormat) {
    let created = rfc3339_utc(SystemTime::now() - Duration::from_secs(45 * 86_400 - 3_600));
    match format {
        SbomFormat::CycloneDx => sbom["metadata"]["timestamp"] = created.into(),
        SbomFormat::SpdxJson => sbom["creationInfo"]["created"] = created.into(),
    }
}

/// A policy requiring provenance and an SBOM at once: either one alone is denied, naming the
/// one that is missing; both admit.
#[test]
fn provenance_and_sbom_required_together() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE)
        + &rule("sbom", "cyclonedx", &["release-key"], &sbom_rule(&["deniedLicenses: [AGPL-3.0-only]"]));
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));

    let (image, sbom) = s.image_with_sbom("apps/web", "v1", "sbom-src-clean", SbomFormat::CycloneDx);
    let sbom_file = s.json_file("sbom.cdx.json", &sbom);
    key.attest(&image.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1.json"));
    let message = assert_denied(
        &s.verify(&image.digest_ref, &[]),
        "attestation-missing",
        &["no SBOM (CycloneDX) attestation signed by [release-key]"],
    );
    assert!(!message.contains("provenance"), "the provenance is there: {message}");

    key.attest(&image.digest_ref, "cyclonedx", &sbom_file);
    assert_admitted(&s.verify(&image.digest_ref, &[]));

    let sbom_only = s.registry().push_image_with_tree("apps/web", "v2", &fixture("sbom-src-clean"), "/app");
    let sbom = s.sbom_of(&sbom_only, SbomFormat::CycloneDx);
    key.attest(&sbom_only.digest_ref, "cyclonedx", &s.json_file("sbom-v2.cdx.json", &sbom));
    let message = assert_denied(
        &s.verify(&sbom_only.digest_ref, &[]),
        "attestation-missing",
        &["no SLSA provenance attestation signed by [release-key]"],
    );
    assert!(!message.contains("SBOM"), "the SBOM is there: {message}");

    // Both failing: both are reported.
    let neither = s.registry().push_image("apps/web", "v3");
    let d = s.verify(&neither.digest_ref, &[]).expect_exit(DENIED).json();
    let kinds: Vec<&str> = findings(&d).iter().filter_map(|f| f["kind"].as_str()).collect();
    assert_eq!(kinds, ["attestation-missing", "attestation-missing"], "{d:#}");
    let denials = d["denials"].to_string();
    assert_contains(&denials, &["no SLSA provenance attestation", "no SBOM (CycloneDX) attestation"]);
}

/// With `threshold: 1` the attestations are not enough: the image signature is required too.
#[test]
fn threshold_one_requires_the_image_signature_as_well() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 1, &[("release-key", &key)], &rules));
    let image = s.registry().push_image("apps/api", "v1");
    key.attest(&image.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1.json"));

    assert_denied(&s.verify(&image.digest_ref, &[]), "not-signed", &["no signature found"]);

    key.sign(&image.digest_ref);
    let run = s.verify(&image.digest_ref, &[]);
    assert_admitted(&run);
    assert_eq!(only_image(&run.json())["policies"][0]["verifiedBy"], json!(["release-key"]));

    // Signed but without provenance: denied for the provenance alone.
    let signed_only = s.registry().push_image("apps/api", "v2");
    key.sign(&signed_only.digest_ref);
    assert_denied(&s.verify(&signed_only.digest_ref, &[]), "attestation-missing", &["no SLSA provenance attestation"]);
}

/// A statement whose predicate is not what its type promises is a clear failure, not an
/// admission or a crash: `{"foo": 1}` attested as SLSA provenance v1 or as CycloneDX, and a
/// CycloneDX document whose `components` is not a list.
#[test]
fn malformed_predicates_are_clear_failures() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let junk = s.json_file("junk.json", &json!({"foo": 1}));
    let bad_components =
        s.json_file("bad.cdx.json", &json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": "left-pad"}));

    let image = s.registry().push_image("apps/api", "v1");
    key.attest(&image.digest_ref, "slsaprovenance1", &junk);
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    assert_denied(
        &s.verify(&image.digest_ref, &[]),
        "attestation-failed",
        &["provenance predicate is not SLSA v1", "buildDefinition"],
    );

    let rules = rule("sbom", "cyclonedx", &["release-key"], &sbom_rule(&["deniedLicenses: [AGPL-3.0-only]"]));
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    // Without `bomFormat`, `{"foo": 1}` reads as a CycloneDX document without components.
    let junk_sbom = s.registry().push_image("apps/api", "v2");
    key.attest(&junk_sbom.digest_ref, "cyclonedx", &junk);
    let message = assert_denied(&s.verify(&junk_sbom.digest_ref, &[]), "attestation-failed", &["CycloneDX"]);
    assert!(
        message.contains("SBOM predicate is not a CycloneDX document") || message.contains("lists no packages"),
        "{message}"
    );

    let bad = s.registry().push_image("apps/api", "v3");
    key.attest(&bad.digest_ref, "cyclonedx", &bad_components);
    assert_denied(
        &s.verify(&bad.digest_ref, &[]),
        "attestation-failed",
        &["SBOM predicate is not a CycloneDX document", "components"],
    );
}

/// Makes `sbom` (syft's CycloneDX SBOM) bigger than trustgate's 32 MiB cap on an attestation
/// by adding renamed copies of its first component until it is about 33 MiB, and writes it
/// compactly to `NAME`.
fn oversized_cyclonedx(s: &Workspace, name: &str, mut sbom: Value) -> PathBuf {
    let template = sbom["components"][0].clone();
    let each = serde_json::to_vec(&template).expect("serialize component").len();
    let count = (33 << 20) / each + 1;
    let components: Vec<Value> = (0..count)
        .map(|i| {
            let mut c = template.clone();
            c["name"] = format!("pad-{i}").into();
            c["purl"] = format!("pkg:npm/pad-{i}@1.0.0").into();
            c["bom-ref"] = format!("pkg:npm/pad-{i}@1.0.0").into();
            c
        })
        .collect();
    sbom["components"] = components.into();
    let path = s.path(name);
    std::fs::write(&path, serde_json::to_vec(&sbom).expect("serialize SBOM")).expect("write SBOM");
    let size = std::fs::metadata(&path).expect("predicate size").len();
    assert!(size > 32 << 20 && size < 36 << 20, "the predicate is {size} bytes");
    path
}

/// An SBOM attestation above the 32 MiB cap trustgate reads (syft's SBOM of the fixture image
/// padded past 32 MiB; cosign attests it in a few seconds) is a clear denial naming the cap,
/// decided without downloading it.
#[test]
fn oversized_sbom_attestation_is_a_clear_denial() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("sbom", "cyclonedx", &["release-key"], &sbom_rule(&["deniedLicenses: [AGPL-3.0-only]"]));
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let (image, sbom) = s.image_with_sbom("apps/web", "v1", "sbom-src-clean", SbomFormat::CycloneDx);
    let file = oversized_cyclonedx(&s, "big.cdx.json", sbom);
    let started = Instant::now();
    key.attest(&image.digest_ref, "cyclonedx", &file);
    eprintln!("  cosign attest of a 32+ MiB predicate: {:?}", started.elapsed());

    let run = s.verify(&image.digest_ref, &[]);
    assert!(run.took < Duration::from_secs(5), "took {:?}", run.took);
    let d = run.expect_exit(DENIED).json();
    let f = only_finding(&d);
    assert!(f["kind"].as_str().is_some_and(|k| k.starts_with("attestation-")), "{d:#}");
    let message = f["message"].as_str().expect("message");
    assert_contains(message, &["attestation"]);
    assert!(message.contains("33554432") || message.contains("32 MiB"), "the message should name the cap: {message}");
}

/// An oversized attestation of another type does not stop a policy that requires only
/// provenance from admitting the image on its valid provenance: the oversized envelope is one
/// that is not accepted, like one by an unknown signer.
#[test]
fn oversized_attestation_does_not_hide_valid_provenance() {
    let s = Workspace::start();
    let key = KeyPair::generate(KeyType::P256);
    let rules = rule("provenance", "slsaprovenance1", &["release-key"], SLSA_RULE);
    s.policy("release", &policy_yaml("release", s.addr(), 0, &[("release-key", &key)], &rules));
    let (image, sbom) = s.image_with_sbom("apps/web", "v1", "sbom-src-clean", SbomFormat::CycloneDx);
    key.attest(&image.digest_ref, "slsaprovenance1", &fixture("slsa/provenance-v1.json"));
    assert_admitted(&s.verify(&image.digest_ref, &[]));

    key.attest(&image.digest_ref, "cyclonedx", &oversized_cyclonedx(&s, "big.cdx.json", sbom));
    assert_admitted(&s.verify(&image.digest_ref, &[]));
}

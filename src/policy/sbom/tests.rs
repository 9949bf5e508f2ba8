use super::*;
use rstest::rstest;
use serde_json::json;

const CDX: &str = "https://cyclonedx.org/bom";
const SPDX: &str = "https://spdx.dev/Document";
const DAY: u64 = 86_400;

/// 2026-01-31T00:00:00Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_769_817_600)
}

fn deny(licenses: &[&str]) -> SbomRule {
    SbomRule { denied_licenses: licenses.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

fn allow(licenses: &[&str]) -> SbomRule {
    SbomRule { allowed_licenses: licenses.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

fn deny_packages(patterns: &[&str]) -> SbomRule {
    SbomRule { denied_packages: patterns.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

fn cdx(components: Value) -> Value {
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": { "timestamp": "2026-01-01T00:00:00Z", "component": { "type": "container", "name": "app" } },
        "components": components,
    })
}

fn cdx_expr(purl: &str, expression: &str) -> Value {
    json!({ "type": "library", "name": "x", "purl": purl, "licenses": [{ "expression": expression }] })
}

fn spdx(packages: Value) -> Value {
    json!({
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "creationInfo": { "created": "2026-01-01T00:00:00Z", "creators": ["Tool: test"] },
        "packages": packages,
    })
}

fn spdx_pkg(purl: &str, concluded: &str, declared: &str) -> Value {
    json!({
        "SPDXID": format!("SPDXRef-{}", purl.replace([':', '/', '@'], "-")),
        "name": "x",
        "licenseConcluded": concluded,
        "licenseDeclared": declared,
        "externalRefs": [{ "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl }],
    })
}

fn messages(r: Result<SbomSummary, Vec<SbomFinding>>) -> Vec<String> {
    match r {
        Ok(_) => vec![],
        Err(f) => f.iter().map(ToString::to_string).collect(),
    }
}

/// The verdict of one SPDX license expression against a rule, as messages.
fn expression(rule: &SbomRule, e: &str) -> Vec<String> {
    let doc = spdx(json!([spdx_pkg("pkg:pypi/foo@1.0", e, "NOASSERTION")]));
    messages(evaluate(SPDX, &doc, rule, now()))
}

#[test]
fn message_denied_license_cyclonedx() {
    let doc = cdx(json!([{ "type": "library", "name": "left-pad", "version": "1.3.0",
        "purl": "pkg:npm/left-pad@1.3.0", "licenses": [{ "license": { "id": "AGPL-3.0-only" } }] }]));
    assert_eq!(
        messages(evaluate(CDX, &doc, &deny(&["AGPL-3.0-only"]), now())),
        ["SBOM (CycloneDX) denies license AGPL-3.0-only in pkg:npm/left-pad@1.3.0"]
    );
}

#[test]
fn message_license_not_allowed_spdx() {
    assert_eq!(
        expression(&allow(&["MIT", "Apache-2.0"]), "GPL-3.0-only"),
        ["SBOM (SPDX) license GPL-3.0-only of pkg:pypi/foo@1.0 is not in the allowed list [MIT, Apache-2.0]"]
    );
}

#[test]
fn message_denied_package() {
    let doc = cdx(json!([{ "type": "library", "name": "log4j-core", "version": "2.14.1",
        "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" }]));
    let rule = deny_packages(&["pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*"]);
    assert_eq!(
        messages(evaluate(CDX, &doc, &rule, now())),
        ["SBOM (CycloneDX) lists denied package pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1 \
          (matches pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*)"]
    );
}

#[rstest]
#[case::old("2025-12-17T00:00:00Z", 30, Some("SBOM is 45 days old, policy allows 30"))]
#[case::a_little_over("2025-12-31T22:00:00Z", 30, Some("SBOM is 31 days old, policy allows 30"))]
#[case::exactly_at_limit("2026-01-01T00:00:00Z", 30, None)]
#[case::fresh("2026-01-30T12:00:00.123+02:00", 1, None)]
#[case::offset_counts("2026-01-30T01:00:00+02:00", 1, Some("SBOM is 2 days old, policy allows 1"))]
#[case::future_is_new("2026-03-01T00:00:00Z", 1, None)]
fn max_age(#[case] created: &str, #[case] days: u64, #[case] want: Option<&str>) {
    let mut doc = spdx(json!([spdx_pkg("pkg:npm/a@1", "MIT", "MIT")]));
    doc["creationInfo"]["created"] = json!(created);
    let rule = SbomRule { max_age: Some(Duration::from_secs(days * DAY)), ..Default::default() };
    assert_eq!(messages(evaluate(SPDX, &doc, &rule, now())), want.into_iter().collect::<Vec<_>>());
}

#[test]
fn max_age_without_or_with_a_bad_creation_time() {
    let rule = SbomRule { max_age: Some(Duration::from_secs(30 * DAY)), ..Default::default() };
    let mut doc = cdx(json!([{ "type": "library", "name": "a" }]));
    doc["metadata"].as_object_mut().unwrap().remove("timestamp");
    assert_eq!(messages(evaluate(CDX, &doc, &rule, now())), ["SBOM has no creation time, policy allows 30 days"]);
    doc["metadata"]["timestamp"] = json!("yesterday");
    assert_eq!(
        messages(evaluate(CDX, &doc, &rule, now())),
        ["SBOM creation time \"yesterday\" is not an RFC 3339 time, policy allows 30 days"]
    );
    // Without maxAge, the creation time is not needed.
    assert!(evaluate(CDX, &doc, &SbomRule::default(), now()).is_ok());
}

#[test]
fn max_age_in_hours() {
    let rule = SbomRule { max_age: Some(Duration::from_secs(36 * 3600)), ..Default::default() };
    let doc = spdx(json!([spdx_pkg("pkg:npm/a@1", "MIT", "MIT")]));
    assert_eq!(messages(evaluate(SPDX, &doc, &rule, now())), ["SBOM is 720 hours old, policy allows 36"]);
}

#[test]
fn empty_sboms() {
    assert_eq!(
        messages(evaluate(SPDX, &spdx(json!([])), &SbomRule::default(), now())),
        ["SBOM (SPDX) lists no packages"]
    );
    let mut doc = cdx(json!([]));
    doc.as_object_mut().unwrap().remove("components");
    // The subject alone is not a package.
    assert_eq!(messages(evaluate(CDX, &doc, &SbomRule::default(), now())), ["SBOM (CycloneDX) lists no packages"]);
    // Nor are files and operating systems.
    let doc = cdx(json!([{ "type": "file", "name": "/etc/passwd" }, { "type": "operating-system", "name": "debian" }]));
    assert_eq!(messages(evaluate(CDX, &doc, &SbomRule::default(), now())), ["SBOM (CycloneDX) lists no packages"]);
}

#[rstest]
#[case::not_an_object(CDX, json!([1, 2]), "SBOM predicate is not a CycloneDX document: expected a JSON object, found an array")]
#[case::wrong_bom_format(CDX, json!({"bomFormat": "SPDX"}), "SBOM predicate is not a CycloneDX document: bomFormat is \"SPDX\", not \"CycloneDX\"")]
#[case::components_not_array(CDX, json!({"components": {"a": 1}}), "SBOM predicate is not a CycloneDX document: components: expected an array, found an object")]
#[case::bad_purl_type(CDX, json!({"components": [{"name": "a"}, {"name": "b", "components": [{"purl": 7}]}]}),
    "SBOM predicate is not a CycloneDX document: components[1].components[0].purl: invalid type: integer `7`, expected a string")]
#[case::bad_license(CDX, json!({"components": [{"licenses": [{"license": {"id": ["MIT"]}}]}]}),
    "SBOM predicate is not a CycloneDX document: components[0].licenses[0].license.id: invalid type: sequence, expected a string")]
#[case::bad_timestamp_type(CDX, json!({"metadata": {"timestamp": 5}}),
    "SBOM predicate is not a CycloneDX document: metadata.timestamp: invalid type: integer `5`, expected a string")]
#[case::spdx_not_object(SPDX, json!(true), "SBOM predicate is not an SPDX document: invalid type: boolean `true`, expected an SPDX document object")]
#[case::spdx_packages(SPDX, json!({"packages": {}}), "SBOM predicate is not an SPDX document: packages: expected an array, found an object")]
#[case::spdx_external_ref(SPDX, json!({"packages": [{"externalRefs": [{"referenceType": "purl", "referenceLocator": {}}]}]}),
    "SBOM predicate is not an SPDX document: packages[0].externalRefs[0].referenceLocator: invalid type: map, expected a string")]
#[case::spdx_relationship(SPDX, json!({"relationships": [{"relationshipType": "CONTAINS", "spdxElementId": 1}, {"relationshipType": "DESCRIBES", "relatedSpdxElement": 2}]}),
    "SBOM predicate is not an SPDX document: relationships[1].relatedSpdxElement: invalid type: integer `2`, expected a string")]
#[case::spdx_license(SPDX, json!({"packages": [{"name": "a"}, {"licenseDeclared": 1}]}),
    "SBOM predicate is not an SPDX document: packages[1].licenseDeclared: invalid type: integer `1`, expected a string")]
#[case::spdx3(SPDX, json!({"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": []}),
    "SBOM predicate is not an SPDX document: it is SPDX 3 (JSON-LD); trustgate reads SPDX 2.x JSON")]
#[case::spdx_version(SPDX, json!({"spdxVersion": "SPDX-1.2"}),
    "SBOM predicate is not an SPDX document: spdxVersion is \"SPDX-1.2\"; trustgate reads SPDX 2.x JSON")]
#[case::tag_value(SPDX, json!("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0"),
    "SBOM predicate is not an SPDX document: it is text, not JSON (tag-value SPDX and XML are not read; attest the JSON form, e.g. cosign attest --type spdxjson)")]
fn malformed(#[case] predicate_type: &str, #[case] predicate: Value, #[case] want: &str) {
    let rule = deny(&["GPL-3.0-only"]);
    assert_eq!(messages(evaluate(predicate_type, &predicate, &rule, now())), [want]);
}

#[rstest]
#[case::cyclonedx("https://cyclonedx.org/bom", Some(SbomFormat::CycloneDx))]
#[case::cyclonedx_v16("https://cyclonedx.org/bom/v1.6", Some(SbomFormat::CycloneDx))]
#[case::cyclonedx_v1("https://cyclonedx.org/bom/v1", Some(SbomFormat::CycloneDx))]
#[case::spdx("https://spdx.dev/Document", Some(SbomFormat::Spdx))]
#[case::spdx_v23("https://spdx.dev/Document/v2.3", Some(SbomFormat::Spdx))]
#[case::spdx_v3("https://spdx.dev/Document/v3.0", None)]
#[case::cosign_short_name("cyclonedx", None)]
#[case::suffix("https://cyclonedx.org/bomb", None)]
#[case::slsa("https://slsa.dev/provenance/v1", None)]
fn predicate_types(#[case] predicate_type: &str, #[case] want: Option<SbomFormat>) {
    assert_eq!(SbomFormat::from_predicate_type(predicate_type), want);
}

#[test]
fn message_unsupported_predicate_type() {
    assert_eq!(
        messages(evaluate("https://slsa.dev/provenance/v1", &json!({}), &SbomRule::default(), now())),
        ["predicate type https://slsa.dev/provenance/v1 is not an SBOM type trustgate reads \
          (https://cyclonedx.org/bom, https://spdx.dev/Document)"]
    );
}

#[rstest]
// OR: one acceptable choice is enough.
#[case::or_deny_one(deny(&["GPL-3.0-only"]), "MIT OR GPL-3.0-only", None)]
#[case::or_allow_one(allow(&["MIT"]), "MIT OR GPL-3.0-only", None)]
#[case::or_deny_both(deny(&["GPL-3.0-only", "AGPL-3.0-only"]), "AGPL-3.0-only OR GPL-3.0-only",
    Some("SBOM (SPDX) denies licenses AGPL-3.0-only, GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: AGPL-3.0-only OR GPL-3.0-only)"))]
// AND: every license counts.
#[case::and_deny(deny(&["GPL-3.0-only"]), "MIT AND GPL-3.0-only",
    Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: MIT AND GPL-3.0-only)"))]
#[case::and_allow(allow(&["MIT"]), "MIT AND GPL-3.0-only",
    Some("SBOM (SPDX) license GPL-3.0-only of pkg:pypi/foo@1.0 is not in the allowed list [MIT] (license expression: MIT AND GPL-3.0-only)"))]
#[case::and_allow_both(allow(&["MIT", "GPL-3.0-only"]), "MIT AND GPL-3.0-only", None)]
// AND binds tighter than OR.
#[case::precedence_pass(deny(&["GPL-3.0-only"]), "GPL-3.0-only AND BSD-3-Clause OR MIT", None)]
#[case::precedence_or_last(deny(&["BSD-3-Clause"]), "MIT OR GPL-3.0-only AND BSD-3-Clause", None)]
#[case::precedence_fail(deny(&["MIT"]), "MIT AND BSD-3-Clause OR MIT AND ISC",
    Some("SBOM (SPDX) denies license MIT in pkg:pypi/foo@1.0 (license expression: MIT AND BSD-3-Clause OR MIT AND ISC)"))]
#[case::precedence_allow(allow(&["MIT"]), "BSD-3-Clause AND GPL-3.0-only OR MIT", None)]
#[case::parentheses(deny(&["GPL-3.0-only"]), "(MIT OR BSD-3-Clause) AND GPL-3.0-only",
    Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: (MIT OR BSD-3-Clause) AND GPL-3.0-only)"))]
#[case::parentheses_rescue(deny(&["GPL-3.0-only"]), "MIT AND (BSD-3-Clause OR GPL-3.0-only)", None)]
#[case::nested(allow(&["MIT", "Apache-2.0"]), "((MIT AND (Apache-2.0 OR GPL-2.0-only)) OR (AGPL-3.0-only))", None)]
#[case::only_failing_side_reported(deny(&["GPL-3.0-only", "AGPL-3.0-only"]), "(MIT OR AGPL-3.0-only) AND GPL-3.0-only",
    Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: (MIT OR AGPL-3.0-only) AND GPL-3.0-only)"))]
// WITH: the license is the part before WITH.
#[case::with_deny(deny(&["GPL-2.0-only"]), "GPL-2.0-only WITH Classpath-exception-2.0",
    Some("SBOM (SPDX) denies license GPL-2.0-only in pkg:pypi/foo@1.0 (license expression: GPL-2.0-only WITH Classpath-exception-2.0)"))]
#[case::with_allow(allow(&["GPL-2.0-only"]), "GPL-2.0-only WITH Classpath-exception-2.0", None)]
#[case::with_or(deny(&["GPL-2.0-only"]), "GPL-2.0-only WITH Classpath-exception-2.0 OR MIT", None)]
// Ids: case, '+', GNU variants, LicenseRefs.
#[case::case_insensitive(deny(&["agpl-3.0-ONLY"]), "AGPL-3.0-only",
    Some("SBOM (SPDX) denies license AGPL-3.0-only in pkg:pypi/foo@1.0"))]
#[case::plus(deny(&["GPL-2.0"]), "GPL-2.0+", Some("SBOM (SPDX) denies license GPL-2.0+ in pkg:pypi/foo@1.0"))]
#[case::gnu_variants(deny(&["GPL-3.0-only"]), "GPL-3.0-or-later",
    Some("SBOM (SPDX) denies license GPL-3.0-or-later in pkg:pypi/foo@1.0"))]
#[case::deprecated_gnu(allow(&["LGPL-2.1-only"]), "LGPL-2.1", None)]
#[case::license_ref(allow(&["LicenseRef-Acme-Internal"]), "LicenseRef-acme-internal", None)]
#[case::lowercase_operators(deny(&["GPL-3.0-only"]), "(mit or gpl-3.0-only)", None)]
#[case::deny_wins_over_allow(SbomRule { denied_licenses: vec!["MIT".into()], allowed_licenses: vec!["MIT".into()], ..Default::default() },
    "MIT", Some("SBOM (SPDX) denies license MIT in pkg:pypi/foo@1.0"))]
#[case::deny_and_not_allowed(SbomRule { denied_licenses: vec!["GPL-3.0-only".into()], allowed_licenses: vec!["MIT".into()], ..Default::default() },
    "GPL-3.0-only AND MIT", Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: GPL-3.0-only AND MIT)"))]
// Not an SPDX expression: one license named by the whole text; denied words still deny.
#[case::not_spdx_allow(allow(&["MIT"]), "Apache 2.0",
    Some("SBOM (SPDX) license Apache 2.0 of pkg:pypi/foo@1.0 is not in the allowed list [MIT]"))]
#[case::not_spdx_deny(deny(&["GPL-3.0-only"]), "GPL-3.0-only / MIT",
    Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: GPL-3.0-only / MIT)"))]
#[case::unbalanced(deny(&["GPL-3.0-only"]), "(MIT OR GPL-3.0-only", Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: (MIT OR GPL-3.0-only)"))]
#[case::dangling_operator(allow(&["MIT"]), "MIT OR", Some("SBOM (SPDX) license MIT OR of pkg:pypi/foo@1.0 is not in the allowed list [MIT]"))]
fn license_expressions(#[case] rule: SbomRule, #[case] e: &str, #[case] want: Option<&str>) {
    assert_eq!(expression(&rule, e), want.into_iter().collect::<Vec<_>>(), "{e}");
}

#[test]
fn denied_and_not_allowed_in_one_expression() {
    let rule = SbomRule {
        denied_licenses: vec!["GPL-3.0-only".into()],
        allowed_licenses: vec!["MIT".into()],
        ..Default::default()
    };
    assert_eq!(
        expression(&rule, "GPL-3.0-only AND Zlib AND MIT"),
        [
            "SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: GPL-3.0-only AND Zlib AND MIT)",
            "SBOM (SPDX) license Zlib of pkg:pypi/foo@1.0 is not in the allowed list [MIT] (license expression: GPL-3.0-only AND Zlib AND MIT)",
        ]
    );
    assert_eq!(
        expression(&allow(&["MIT"]), "Zlib AND ISC"),
        ["SBOM (SPDX) licenses Zlib, ISC of pkg:pypi/foo@1.0 are not in the allowed list [MIT] (license expression: Zlib AND ISC)"]
    );
}

#[test]
fn deeply_parenthesised_expression_is_not_spdx() {
    let e = format!("{}MIT{}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(expression(&allow(&["MIT"]), &e).len(), 1);
    let e = format!("{}MIT{}", "(".repeat(20), ")".repeat(20));
    assert!(expression(&allow(&["MIT"]), &e).is_empty());
}

#[rstest]
#[case::both_noassertion("NOASSERTION", "NOASSERTION")]
#[case::none("NONE", "NOASSERTION")]
#[case::empty("", "NONE")]
fn no_license_information(#[case] concluded: &str, #[case] declared: &str) {
    let doc = spdx(json!([spdx_pkg("pkg:pypi/foo@1.0", concluded, declared)]));
    // A deny-list cannot object to what is not stated…
    assert!(evaluate(SPDX, &doc, &deny(&["GPL-3.0-only"]), now()).is_ok());
    // …an allow-list can: only the listed licenses are acceptable.
    assert_eq!(
        messages(evaluate(SPDX, &doc, &allow(&["MIT", "Apache-2.0"]), now())),
        ["SBOM (SPDX) package pkg:pypi/foo@1.0 has no license information, policy allows only [MIT, Apache-2.0]"]
    );
}

#[test]
fn spdx_prefers_concluded_then_declared() {
    let rule = deny(&["GPL-3.0-only"]);
    let doc = spdx(json!([spdx_pkg("pkg:pypi/a@1", "MIT", "GPL-3.0-only")]));
    assert!(evaluate(SPDX, &doc, &rule, now()).is_ok());
    let doc = spdx(json!([spdx_pkg("pkg:pypi/a@1", "NOASSERTION", "GPL-3.0-only")]));
    assert_eq!(
        messages(evaluate(SPDX, &doc, &rule, now())),
        ["SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/a@1"]
    );
}

#[test]
fn spdx_subject_is_matched_but_not_counted() {
    let mut root = spdx_pkg("pkg:oci/app@sha256%3Aabc", "NOASSERTION", "NOASSERTION");
    root["SPDXID"] = json!("SPDXRef-root");
    let mut doc = spdx(json!([root]));
    doc["relationships"] = json!([{ "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-root" }]);
    assert_eq!(messages(evaluate(SPDX, &doc, &allow(&["MIT"]), now())), ["SBOM (SPDX) lists no packages"]);
    assert_eq!(
        messages(evaluate(SPDX, &doc, &deny_packages(&["pkg:oci/app"]), now())),
        [
            "SBOM (SPDX) lists no packages",
            "SBOM (SPDX) lists denied package pkg:oci/app@sha256%3Aabc (matches pkg:oci/app)"
        ]
    );
    // documentDescribes (SPDX 2.2) says the same.
    doc.as_object_mut().unwrap().remove("relationships");
    doc["documentDescribes"] = json!(["SPDXRef-root"]);
    assert_eq!(messages(evaluate(SPDX, &doc, &allow(&["MIT"]), now())), ["SBOM (SPDX) lists no packages"]);
}

#[rstest]
#[case::exact("pkg:npm/event-stream@3.3.6", "pkg:npm/event-stream@3.3.6", true)]
#[case::other_version("pkg:npm/event-stream@3.3.6", "pkg:npm/event-stream@3.3.5", false)]
#[case::any_version("pkg:npm/event-stream", "pkg:npm/event-stream@4.0.0", true)]
#[case::unversioned_purl("pkg:npm/event-stream", "pkg:npm/event-stream", true)]
#[case::wildcard(
    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*",
    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    true
)]
#[case::wildcard_no_match(
    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*",
    "pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0",
    false
)]
#[case::wildcard_middle(
    "pkg:maven/org.apache.logging.log4j/log4j-core@2.*.1",
    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    true
)]
#[case::wildcard_prefix("pkg:golang/golang.org/x/net@*-2023*", "pkg:golang/golang.org/x/net@v0.0.0-20230101-abc", true)]
#[case::other_namespace(
    "pkg:maven/org.apache.logging.log4j/log4j-core",
    "pkg:maven/org.example/log4j-core@2.14.1",
    false
)]
#[case::name_is_not_a_prefix("pkg:npm/left-pad", "pkg:npm/left-pad-extra@1.0.0", false)]
#[case::qualifiers_ignored(
    "pkg:deb/debian/openssl@3.0.*",
    "pkg:deb/debian/openssl@3.0.11-1?arch=amd64&distro=debian-12",
    true
)]
#[case::subpath_ignored("pkg:golang/github.com/acme/lib@v1.2.3", "pkg:golang/github.com/acme/lib@v1.2.3#sub/pkg", true)]
#[case::names_case_sensitive("pkg:maven/org.acme/Lib", "pkg:maven/org.acme/lib@1", false)]
#[case::type_case_insensitive("pkg:npm/left-pad", "pkg:NPM/left-pad@1.3.0", true)]
#[case::pypi_normalised("pkg:pypi/pyyaml@6.*", "pkg:pypi/PyYAML@6.0.1", true)]
#[case::pypi_underscore("pkg:pypi/typing-extensions", "pkg:pypi/typing_extensions@4.0", true)]
#[case::npm_scope_encoded("pkg:npm/@babel/core@7.*", "pkg:npm/%40babel/core@7.24.0", true)]
#[case::npm_scope_plain("pkg:npm/%40babel/core", "pkg:npm/@babel/core@7.24.0", true)]
#[case::other_type("pkg:npm/requests", "pkg:pypi/requests@2.31.0", false)]
#[case::version_wildcard_needs_version("pkg:npm/a@1.*", "pkg:npm/a", false)]
#[case::not_a_purl_in_sbom("pkg:npm/a", "npm/a@1", false)]
fn denied_packages(#[case] pattern: &str, #[case] purl: &str, #[case] denied: bool) {
    let doc = cdx(json!([{ "type": "library", "name": "x", "purl": purl }]));
    let found = messages(evaluate(CDX, &doc, &deny_packages(&[pattern]), now()));
    let want = format!("SBOM (CycloneDX) lists denied package {purl} (matches {pattern})");
    assert_eq!(found, if denied { vec![want] } else { vec![] }, "{pattern} vs {purl}");
}

#[test]
fn denied_package_as_the_subject() {
    let mut doc = cdx(json!([{ "type": "library", "name": "a", "purl": "pkg:npm/a@1" }]));
    doc["metadata"]["component"]["purl"] = json!("pkg:npm/event-stream@3.3.6");
    assert_eq!(
        messages(evaluate(CDX, &doc, &deny_packages(&["pkg:npm/event-stream@3.3.6"]), now())),
        ["SBOM (CycloneDX) lists denied package pkg:npm/event-stream@3.3.6 (matches pkg:npm/event-stream@3.3.6)"]
    );
}

#[rstest]
#[case::no_scheme("npm/left-pad", "denied package \"npm/left-pad\" is not a package URL: it must start with pkg:")]
#[case::no_name("pkg:npm", "denied package \"pkg:npm\" is not a package URL: it has no type/name")]
#[case::star_in_name(
    "pkg:npm/left-*",
    "denied package \"pkg:npm/left-*\" is not a package URL: '*' is allowed only in the version"
)]
#[case::qualifiers("pkg:deb/debian/openssl@3?arch=amd64", "denied package \"pkg:deb/debian/openssl@3?arch=amd64\" is not a package URL: qualifiers (?…) and subpaths (#…) are not matched; remove them")]
fn invalid_package_patterns(#[case] pattern: &str, #[case] want: &str) {
    let rule = deny_packages(&[pattern]);
    assert_eq!(rule.validate().unwrap_err().iter().map(ToString::to_string).collect::<Vec<_>>(), [want]);
    // Evaluation fails closed, naming the problem.
    let doc = cdx(json!([{ "type": "library", "name": "a", "purl": "pkg:npm/a@1" }]));
    assert_eq!(messages(evaluate(CDX, &doc, &rule, now())), [format!("policy SBOM rule cannot be applied: {want}")]);
}

#[test]
fn valid_rule() {
    let rule = SbomRule {
        denied_licenses: vec!["AGPL-3.0-only".into()],
        allowed_licenses: vec!["MIT".into(), "LicenseRef-Acme".into()],
        denied_packages: vec!["pkg:npm/event-stream@3.3.6".into(), "pkg:maven/org.acme/lib@2.*".into()],
        max_age: Some(Duration::from_secs(DAY)),
    };
    assert_eq!(rule.validate(), Ok(()));
    assert_eq!(allow(&["Apache 2.0", "MIT License"]).validate(), Ok(()));
    assert_eq!(
        deny(&["MIT or GPL-3.0-only", "(MIT)", " "]).validate(),
        Err(vec![
            SbomRuleError::License("MIT or GPL-3.0-only".into()),
            SbomRuleError::License("(MIT)".into()),
            SbomRuleError::License(" ".into())
        ])
    );
}

#[test]
fn cyclonedx_license_forms() {
    let rule = SbomRule {
        denied_licenses: vec!["GPL-3.0-only".into()],
        allowed_licenses: vec!["MIT".into(), "Apache-2.0".into(), "GPL-3.0-only".into()],
        ..Default::default()
    };
    let doc = cdx(json!([
        { "type": "library", "name": "by-id", "purl": "pkg:npm/a@1", "licenses": [{ "license": { "id": "MIT" } }] },
        { "type": "library", "name": "by-name", "purl": "pkg:npm/b@1", "licenses": [{ "license": { "name": "Apache 2.0" } }] },
        cdx_expr("pkg:npm/c@1", "MIT OR GPL-3.0-only"),
        // Several entries all apply.
        { "type": "library", "name": "d", "purl": "pkg:npm/d@1",
          "licenses": [{ "license": { "id": "MIT" } }, { "expression": "GPL-3.0-only OR GPL-3.0-or-later" }] },
        // A concluded license wins over declared ones.
        { "type": "library", "name": "e", "purl": "pkg:npm/e@1",
          "licenses": [{ "license": { "id": "GPL-3.0-only", "acknowledgement": "declared" } },
                       { "license": { "id": "MIT", "acknowledgement": "concluded" } }] },
        { "type": "library", "name": "f", "version": "2.0", "licenses": [] },
        { "type": "library", "name": "g", "purl": "pkg:npm/g@1", "licenses": [{ "license": { "url": "https://example.com" } }] },
    ]));
    assert_eq!(
        messages(evaluate(CDX, &doc, &rule, now())),
        [
            "SBOM (CycloneDX) license Apache 2.0 of pkg:npm/b@1 is not in the allowed list [MIT, Apache-2.0, GPL-3.0-only]",
            "SBOM (CycloneDX) denies license GPL-3.0-only in pkg:npm/d@1 \
             (license expression: MIT AND (GPL-3.0-only OR GPL-3.0-or-later))",
            "SBOM (CycloneDX) package f@2.0 has no license information, policy allows only [MIT, Apache-2.0, GPL-3.0-only]",
            "SBOM (CycloneDX) package pkg:npm/g@1 has no license information, policy allows only [MIT, Apache-2.0, GPL-3.0-only]",
        ]
    );
}

#[test]
fn nested_cyclonedx_components_in_document_order() {
    let doc = cdx(json!([
        { "type": "library", "name": "a", "purl": "pkg:npm/a@1", "licenses": [{ "license": { "id": "GPL-3.0-only" } }],
          "components": [
            { "type": "library", "name": "b", "purl": "pkg:npm/b@1", "licenses": [{ "license": { "id": "GPL-3.0-only" } }],
              "components": [{ "type": "library", "name": "c", "purl": "pkg:npm/c@1",
                               "licenses": [{ "license": { "id": "GPL-3.0-only" } }] }] } ] },
        { "type": "library", "name": "d", "purl": "pkg:npm/d@1", "licenses": [{ "license": { "id": "GPL-3.0-only" } }] },
    ]));
    let found = messages(evaluate(CDX, &doc, &deny(&["GPL-3.0-only"]), now()));
    let names: Vec<_> = found.iter().map(|m| m.rsplit(' ').next().unwrap()).collect();
    assert_eq!(names, ["pkg:npm/a@1", "pkg:npm/b@1", "pkg:npm/c@1", "pkg:npm/d@1"]);
    let summary = evaluate(CDX, &doc, &SbomRule::default(), now()).unwrap();
    assert_eq!(summary.components, 4);
}

#[test]
fn deep_nesting_does_not_overflow() {
    // Built from the inside out without recursion; serde_json's parser would refuse this
    // depth, but a Value can be built by other means.
    // (json! would clone an interpolated Value recursively, so the levels are moved in.)
    let mut component = cdx_expr("pkg:npm/deep@1", "AGPL-3.0-only");
    for _ in 0..100_000 {
        let mut level = serde_json::Map::new();
        level.insert("type".into(), "library".into());
        level.insert("components".into(), Value::Array(vec![component]));
        component = Value::Object(level);
    }
    let mut doc = cdx(json!([]));
    doc["components"] = Value::Array(vec![component]);
    let found = messages(evaluate(CDX, &doc, &deny(&["AGPL-3.0-only"]), now()));
    // Dropping a Value this deep recurses in serde_json; take it apart by hand, before an
    // assertion can fail and unwind.
    let mut stack = vec![doc];
    while let Some(mut v) = stack.pop() {
        match &mut v {
            Value::Array(a) => stack.append(a),
            Value::Object(o) => stack.extend(std::mem::take(o).into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    assert_eq!(found, ["SBOM (CycloneDX) denies license AGPL-3.0-only in pkg:npm/deep@1"]);
}

#[test]
fn findings_are_capped_and_deduplicated() {
    let components: Vec<Value> = (0..50).map(|i| cdx_expr(&format!("pkg:npm/p{i}@1"), "AGPL-3.0-only")).collect();
    let mut components = components;
    // The same package twice (syft lists a package once per location) is one finding.
    components.push(cdx_expr("pkg:npm/p0@1", "AGPL-3.0-only"));
    let found = evaluate(CDX, &cdx(Value::Array(components)), &deny(&["AGPL-3.0-only"]), now()).unwrap_err();
    assert_eq!(found.len(), MAX_FINDINGS + 1);
    assert_eq!(found[0].to_string(), "SBOM (CycloneDX) denies license AGPL-3.0-only in pkg:npm/p0@1");
    assert_eq!(found[MAX_FINDINGS].to_string(), "… and 30 more");
    assert_eq!(found[MAX_FINDINGS].kind(), "sbom-more-findings");
}

#[test]
fn document_findings_come_first() {
    let rule = SbomRule {
        denied_licenses: vec!["AGPL-3.0-only".into()],
        max_age: Some(Duration::from_secs(7 * DAY)),
        ..Default::default()
    };
    let doc = cdx(json!([cdx_expr("pkg:npm/a@1", "AGPL-3.0-only")]));
    let found = evaluate(CDX, &doc, &rule, now()).unwrap_err();
    assert_eq!(found.iter().map(SbomFinding::kind).collect::<Vec<_>>(), ["sbom-too-old", "sbom-denied-license"]);
}

#[test]
fn summary_of_a_passing_sbom() {
    let doc = spdx(json!([spdx_pkg("pkg:npm/a@1", "MIT", "MIT"), spdx_pkg("pkg:npm/b@1", "ISC", "ISC")]));
    assert_eq!(
        evaluate("https://spdx.dev/Document/v2.3", &doc, &deny(&["AGPL-3.0-only"]), now()),
        Ok(SbomSummary { format: SbomFormat::Spdx, components: 2, created: Some("2026-01-01T00:00:00Z".into()) })
    );
}

#[test]
fn predicate_as_a_json_string() {
    // cosign attest --type spdx with a JSON file puts the document in a string.
    let doc = spdx(json!([spdx_pkg("pkg:npm/a@1", "AGPL-3.0-only", "NOASSERTION")]));
    let predicate = Value::String(doc.to_string());
    assert_eq!(
        messages(evaluate(SPDX, &predicate, &deny(&["AGPL-3.0-only"]), now())),
        ["SBOM (SPDX) denies license AGPL-3.0-only in pkg:npm/a@1"]
    );
}

#[rstest]
#[case("1970-01-01T00:00:00Z", Some(0))]
#[case("2026-01-31T00:00:00Z", Some(1_769_817_600))]
#[case("2024-02-29T12:30:15.5Z", Some(1_709_209_815))]
#[case("2024-02-29t12:30:15-01:30", Some(1_709_215_215))]
#[case("2023-02-29T00:00:00Z", None)]
#[case("2026-01-31T00:00:00", None)]
#[case("2026-01-31", None)]
#[case("2026-01-31T24:00:00Z", None)]
#[case("2026-01-31T00:00:00.Z", None)]
fn rfc3339(#[case] s: &str, #[case] want: Option<i64>) {
    assert_eq!(parse_rfc3339(s), want);
}

// Real syft output (tests/fixtures/sbom/README.md says how it was made).

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/sbom/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// The fixtures were made on 2026-11-23.
fn fixture_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_824_000) // 2026-11-28T00:00:00Z
}

#[rstest]
#[case::cyclonedx(CDX, "demo-app.cyclonedx.json", "CycloneDX")]
#[case::spdx(SPDX, "demo-app.spdx.json", "SPDX")]
fn syft_denied_license_and_package(#[case] predicate_type: &str, #[case] file: &str, #[case] format: &str) {
    let doc = fixture(file);
    let rule = SbomRule {
        denied_licenses: vec!["AGPL-3.0-only".into(), "GPL-3.0-only".into()],
        denied_packages: vec!["pkg:npm/event-stream@3.3.*".into()],
        max_age: Some(Duration::from_secs(30 * DAY)),
        ..Default::default()
    };
    // dual-licensed is "MIT OR GPL-3.0-only": MIT can be chosen.
    assert_eq!(
        messages(evaluate(predicate_type, &doc, &rule, fixture_now())),
        [
            format!("SBOM ({format}) denies license AGPL-3.0-only in pkg:npm/copyleft-widget@2.1.0"),
            format!(
                "SBOM ({format}) lists denied package pkg:npm/event-stream@3.3.6 (matches pkg:npm/event-stream@3.3.*)"
            ),
            format!("SBOM ({format}) denies license GPL-3.0-only in pkg:pypi/gplthing@1.0"),
        ]
    );
}

#[test]
fn syft_allow_list() {
    let rule = allow(&["MIT", "Apache-2.0", "AGPL-3.0-only", "GPL-3.0-only"]);
    // syft could not map "Apache 2.0" to an SPDX id: CycloneDX keeps the name, SPDX makes a
    // LicenseRef of it. Either must be listed as written to be allowed.
    let list = "[MIT, Apache-2.0, AGPL-3.0-only, GPL-3.0-only]";
    assert_eq!(
        messages(evaluate(CDX, &fixture("demo-app.cyclonedx.json"), &rule, fixture_now())),
        [format!("SBOM (CycloneDX) license Apache 2.0 of pkg:pypi/requests@2.31.0 is not in the allowed list {list}")]
    );
    assert_eq!(
        messages(evaluate(SPDX, &fixture("demo-app.spdx.json"), &rule, fixture_now())),
        [format!(
            "SBOM (SPDX) license LicenseRef-Apache-2.0 of pkg:pypi/requests@2.31.0 is not in the allowed list {list}"
        )]
    );
    // left-pad is "WTFPL OR MIT"; the subject directory (no license) is not a package.
    let mut rule = rule;
    rule.allowed_licenses.extend(["Apache 2.0".into(), "LicenseRef-Apache-2.0".into()]);
    for (t, f) in [(CDX, "demo-app.cyclonedx.json"), (SPDX, "demo-app.spdx.json")] {
        let summary = evaluate(t, &fixture(f), &rule, fixture_now()).expect(f);
        assert_eq!((summary.components, summary.created.as_deref()), (7, Some("2026-11-23T13:35:23Z")), "{f}");
    }
}

#[rstest]
#[case::cyclonedx(CDX, "empty.cyclonedx.json", "SBOM (CycloneDX) lists no packages")]
#[case::spdx(SPDX, "empty.spdx.json", "SBOM (SPDX) lists no packages")]
fn syft_empty(#[case] predicate_type: &str, #[case] file: &str, #[case] want: &str) {
    assert_eq!(messages(evaluate(predicate_type, &fixture(file), &SbomRule::default(), fixture_now())), [want]);
}

#[test]
fn syft_too_old() {
    let rule = SbomRule { max_age: Some(Duration::from_secs(30 * DAY)), ..Default::default() };
    let later = UNIX_EPOCH + Duration::from_secs(1_795_824_000 + 40 * DAY);
    assert_eq!(
        messages(evaluate(SPDX, &fixture("demo-app.spdx.json"), &rule, later)),
        ["SBOM is 45 days old, policy allows 30"]
    );
}

use super::*;
use rstest::rstest;
use serde_json::json;

const FIXTURE_V1: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slsa/provenance-v1.json"));
const FIXTURE_V1_WRONG_BUILDER: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slsa/provenance-v1-wrong-builder.json"));
const FIXTURE_V02: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/slsa/provenance-v0.2.json"));

const COMMIT: &str = "7f3e2a9c1b4d5e6f708192a3b4c5d6e7f8091a2b";

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// What `actions/attest-build-provenance` writes for a push to main of acme/app.
fn github_attest_v1() -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {
                    "ref": "refs/heads/main",
                    "repository": "https://github.com/acme/app",
                    "path": ".github/workflows/release.yml"
                }
            },
            "internalParameters": {
                "github": {
                    "event_name": "push",
                    "repository_id": "812345678",
                    "repository_owner_id": "91234567",
                    "runner_environment": "github-hosted"
                }
            },
            "resolvedDependencies": [{
                "uri": "git+https://github.com/acme/app@refs/heads/main",
                "digest": { "gitCommit": COMMIT }
            }]
        },
        "runDetails": {
            "builder": { "id": "https://github.com/actions/runner/github-hosted" },
            "metadata": {
                "invocationId": "https://github.com/acme/app/actions/runs/11223344556/attempts/1"
            }
        }
    })
}

/// What slsa-github-generator's container workflow (v2) writes for a tag release.
fn slsa_generator_v1() -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "externalParameters": {
                "inputs": { "image": "ghcr.io/acme/app", "digest": "sha256:0a1b" },
                "vars": {},
                "workflow": {
                    "path": ".github/workflows/release.yml",
                    "ref": "refs/tags/v1.2.3",
                    "repository": "https://github.com/acme/app"
                }
            },
            "internalParameters": {
                "GITHUB_ACTOR_ID": "1234567",
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_REF": "refs/tags/v1.2.3",
                "GITHUB_REF_TYPE": "tag"
            },
            "resolvedDependencies": [{
                "uri": "git+https://github.com/acme/app@refs/tags/v1.2.3",
                "digest": { "gitCommit": COMMIT }
            }]
        },
        "runDetails": {
            "builder": {
                "id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0"
            },
            "metadata": {
                "invocationId": "https://github.com/acme/app/actions/runs/9988776655/attempts/1"
            }
        }
    })
}

/// What slsa-github-generator's v1.x generic workflow writes (v0.2).
fn slsa_generator_v02() -> Value {
    json!({
        "builder": {
            "id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.9.0"
        },
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
        "invocation": {
            "configSource": {
                "uri": "git+https://github.com/acme/app@refs/heads/main",
                "digest": { "sha1": COMMIT },
                "entryPoint": ".github/workflows/release.yml"
            },
            "parameters": {},
            "environment": {
                "github_event_name": "push",
                "github_ref": "refs/heads/main",
                "github_ref_type": "branch"
            }
        },
        "metadata": {
            "buildInvocationID": "9988776655-1",
            "completeness": { "parameters": true, "environment": false, "materials": false },
            "reproducible": false
        },
        "materials": [{
            "uri": "git+https://github.com/acme/app@refs/heads/main",
            "digest": { "sha1": COMMIT }
        }]
    })
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rule(builders: &[&str], repos: &[&str], build_types: &[&str], refs: &[&str]) -> SlsaRule {
    SlsaRule {
        builder_ids: strings(builders),
        source_repositories: strings(repos),
        build_types: strings(build_types),
        source_refs: strings(refs),
    }
}

fn messages(result: Result<Provenance, Vec<ProvenanceFinding>>) -> Vec<String> {
    result.expect_err("expected findings").iter().map(ToString::to_string).collect()
}

#[test]
fn reads_github_attest_build_provenance() {
    let p = parse(SLSA_V1, &github_attest_v1()).unwrap();
    assert_eq!(
        p,
        Provenance {
            version: SlsaVersion::V1,
            builder_id: "https://github.com/actions/runner/github-hosted".into(),
            build_type: "https://actions.github.io/buildtypes/workflow/v1".into(),
            source_uri: Some("https://github.com/acme/app".into()),
            source_ref: Some("refs/heads/main".into()),
            source_digest: Some(COMMIT.into()),
        }
    );
}

#[test]
fn reads_slsa_github_generator_v1() {
    let p = parse(SLSA_V1, &slsa_generator_v1()).unwrap();
    assert_eq!(p.build_type, "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1");
    assert_eq!(p.source_uri.as_deref(), Some("https://github.com/acme/app"));
    assert_eq!(p.source_ref.as_deref(), Some("refs/tags/v1.2.3"));
    assert_eq!(p.source_digest.as_deref(), Some(COMMIT));
    let release = rule(
        &["https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v*"],
        &["https://github.com/acme/*"],
        &["https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"],
        &["refs/tags/v*"],
    );
    assert!(evaluate(SLSA_V1, &slsa_generator_v1(), &release).is_ok());
}

#[test]
fn reads_slsa_github_generator_v02() {
    let p = parse(SLSA_V02, &slsa_generator_v02()).unwrap();
    assert_eq!(
        p,
        Provenance {
            version: SlsaVersion::V0_2,
            builder_id: "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.9.0".into(),
            build_type: "https://github.com/slsa-framework/slsa-github-generator/generic@v1".into(),
            source_uri: Some("git+https://github.com/acme/app".into()),
            source_ref: Some("refs/heads/main".into()),
            source_digest: Some(COMMIT.into()),
        }
    );
}

/// The files the cosign integration tests attest must read as the tests expect.
#[rstest]
#[case::v1(SLSA_V1, FIXTURE_V1, "https://github.com/actions/runner", "https://github.com/acme/app")]
#[case::v1_wrong_builder(
    SLSA_V1,
    FIXTURE_V1_WRONG_BUILDER,
    "https://evil.example/builder",
    "https://github.com/acme/app"
)]
#[case::v02(SLSA_V02, FIXTURE_V02, "https://github.com/actions/runner", "git+https://github.com/acme/app")]
fn fixtures_read_as_documented(
    #[case] predicate_type: &str,
    #[case] text: &str,
    #[case] builder: &str,
    #[case] source: &str,
) {
    let p = parse(predicate_type, &fixture(text)).unwrap();
    assert_eq!(p.builder_id, builder);
    assert_eq!(p.source_uri.as_deref(), Some(source));
    assert_eq!(p.source_ref.as_deref(), Some("refs/heads/main"));
    assert!(p.source_digest.is_some());
}

#[test]
fn fixtures_pass_and_fail_the_release_rule() {
    let release =
        rule(&["https://github.com/actions/runner"], &["https://github.com/acme/*"], &[], &["refs/heads/main"]);
    assert!(evaluate(SLSA_V1, &fixture(FIXTURE_V1), &release).is_ok());
    assert!(evaluate(SLSA_V02, &fixture(FIXTURE_V02), &release).is_ok());
    assert_eq!(
        messages(evaluate(SLSA_V1, &fixture(FIXTURE_V1_WRONG_BUILDER), &release)),
        ["provenance builder https://evil.example/builder is not in [https://github.com/actions/runner]"]
    );
}

#[test]
fn an_empty_rule_admits_any_well_formed_provenance() {
    for (t, p) in [(SLSA_V1, github_attest_v1()), (SLSA_V1, slsa_generator_v1()), (SLSA_V02, slsa_generator_v02())] {
        assert!(evaluate(t, &p, &SlsaRule::default()).is_ok());
    }
}

#[rstest]
#[case::builder_glob(rule(&["https://github.com/actions/runner/*"], &[], &[], &[]))]
#[case::builder_exact(rule(&["https://x.example/b", "https://github.com/actions/runner/github-hosted"], &[], &[], &[]))]
#[case::repo_glob(rule(&[], &["https://github.com/acme/*"], &[], &[]))]
#[case::repo_exact_git_plus(rule(&[], &["git+https://github.com/acme/app"], &[], &[]))]
#[case::repo_dot_git(rule(&[], &["https://github.com/acme/app.git"], &[], &[]))]
#[case::build_type(rule(&[], &[], &["https://actions.github.io/buildtypes/workflow/v1"], &[]))]
#[case::build_type_glob(rule(&[], &[], &["https://actions.github.io/buildtypes/workflow/*"], &[]))]
#[case::ref_exact(rule(&[], &[], &[], &["refs/heads/main"]))]
#[case::ref_one_of(rule(&[], &[], &[], &["refs/tags/v*", "refs/heads/main"]))]
#[case::all(rule(
    &["https://github.com/actions/runner/github-hosted"],
    &["https://github.com/acme/app"],
    &["https://actions.github.io/buildtypes/workflow/v1"],
    &["refs/heads/*"]
))]
fn each_dimension_passes(#[case] rule: SlsaRule) {
    assert!(evaluate(SLSA_V1, &github_attest_v1(), &rule).is_ok());
    // The same facts in v0.2 form pass the same rule, builder and build type aside.
    let v02 = SlsaRule { builder_ids: vec![], build_types: vec![], ..rule };
    assert!(evaluate(SLSA_V02, &slsa_generator_v02(), &v02).is_ok());
}

#[rstest]
#[case::builder(
    rule(&["https://github.com/actions/runner"], &[], &[], &[]),
    "provenance builder https://github.com/actions/runner/github-hosted is not in [https://github.com/actions/runner]"
)]
#[case::repo(
    rule(&[], &["https://github.com/other/*"], &[], &[]),
    "provenance source https://github.com/acme/app is not in [https://github.com/other/*]"
)]
#[case::build_type(
    rule(&[], &[], &["https://x/y"], &[]),
    "provenance build type https://actions.github.io/buildtypes/workflow/v1 is not in [https://x/y]"
)]
#[case::git_ref(
    rule(&[], &[], &[], &["refs/tags/v*"]),
    "provenance source ref refs/heads/main is not in [refs/tags/v*]"
)]
fn each_dimension_fails_with_its_message(#[case] rule: SlsaRule, #[case] message: &str) {
    assert_eq!(messages(evaluate(SLSA_V1, &github_attest_v1(), &rule)), [message]);
}

#[test]
fn every_failed_check_is_reported() {
    let mut p = slsa_generator_v02();
    p["builder"]["id"] = json!("https://evil.example/builder");
    p["buildType"] = json!("https://x/y");
    p["invocation"]["configSource"]["uri"] = json!("git+https://github.com/other/repo@refs/heads/feature");
    p["materials"] = json!([]);
    let strict = rule(
        &["https://github.com/actions/runner"],
        &["https://github.com/acme/*"],
        &["https://github.com/slsa-framework/slsa-github-generator/generic@v1"],
        &["refs/heads/main", "refs/tags/v*"],
    );
    assert_eq!(
        messages(evaluate(SLSA_V02, &p, &strict)),
        [
            "provenance builder https://evil.example/builder is not in [https://github.com/actions/runner]",
            "provenance build type https://x/y is not in [https://github.com/slsa-framework/slsa-github-generator/generic@v1]",
            "provenance source git+https://github.com/other/repo is not in [https://github.com/acme/*]",
            "provenance source ref refs/heads/feature is not in [refs/heads/main, refs/tags/v*]",
        ]
    );
}

#[test]
fn a_provenance_without_a_source_fails_only_rules_that_ask_for_one() {
    let mut p = github_attest_v1();
    p["buildDefinition"]["externalParameters"] = json!({});
    p["buildDefinition"]["resolvedDependencies"] =
        json!([{ "uri": "pkg:npm/left-pad@1.3.0", "digest": {"sha512": "ab"} }]);
    let parsed = parse(SLSA_V1, &p).unwrap();
    assert_eq!((parsed.source_uri, parsed.source_ref, parsed.source_digest), (None, None, None));
    assert!(evaluate(SLSA_V1, &p, &rule(&["https://github.com/actions/*"], &[], &[], &[])).is_ok());
    assert_eq!(
        messages(evaluate(SLSA_V1, &p, &rule(&[], &["https://github.com/acme/*"], &[], &["refs/heads/main"]))),
        [
            "provenance names no source repository; the policy requires one of [https://github.com/acme/*]",
            "provenance names no source ref; the policy requires one of [refs/heads/main]",
        ]
    );
}

#[test]
fn v1_source_falls_back_to_the_first_git_dependency() {
    let mut p = github_attest_v1();
    p["buildDefinition"]["externalParameters"] = json!({ "inputs": {} });
    p["buildDefinition"]["resolvedDependencies"] = json!([
        { "uri": "pkg:docker/golang@1.23", "digest": { "sha256": "ab" } },
        { "uri": "git+https://github.com/acme/app.git@refs/tags/v2.0.0", "digest": { "gitCommit": COMMIT } },
        { "uri": "git+https://github.com/acme/lib@refs/heads/main", "digest": { "gitCommit": "00" } }
    ]);
    let parsed = parse(SLSA_V1, &p).unwrap();
    assert_eq!(parsed.source_uri.as_deref(), Some("git+https://github.com/acme/app.git"));
    assert_eq!(parsed.source_ref.as_deref(), Some("refs/tags/v2.0.0"));
    assert_eq!(parsed.source_digest.as_deref(), Some(COMMIT));
    assert!(evaluate(SLSA_V1, &p, &rule(&[], &["https://github.com/acme/app"], &[], &["refs/tags/v*"])).is_ok());
}

#[rstest]
#[case::source_object(json!({ "source": { "uri": "git+https://github.com/acme/app@refs/heads/main" } }))]
#[case::source_string(json!({ "source": "https://github.com/acme/app@refs/heads/main" }))]
#[case::repository_and_ref(json!({ "repository": "https://github.com/acme/app.git", "ref": "refs/heads/main" }))]
#[case::source_object_with_ref(json!({ "source": { "uri": "https://github.com/acme/app", "ref": "refs/heads/main" } }))]
fn v1_reads_other_builders_source_parameters(#[case] params: Value) {
    let mut p = github_attest_v1();
    p["buildDefinition"]["externalParameters"] = params;
    p["buildDefinition"]["resolvedDependencies"] = json!([]);
    let parsed = parse(SLSA_V1, &p).unwrap();
    assert_eq!(parsed.source_ref.as_deref(), Some("refs/heads/main"));
    let strict = rule(&[], &["https://github.com/acme/app"], &[], &["refs/heads/main"]);
    assert!(evaluate(SLSA_V1, &p, &strict).is_ok());
}

#[test]
fn a_dependency_on_another_repository_lends_no_commit_or_ref() {
    let mut p = github_attest_v1();
    p["buildDefinition"]["externalParameters"] = json!({ "workflow": { "repository": "https://github.com/acme/app" } });
    p["buildDefinition"]["resolvedDependencies"] =
        json!([{ "uri": "git+https://github.com/acme/lib@refs/heads/main", "digest": { "gitCommit": COMMIT } }]);
    let parsed = parse(SLSA_V1, &p).unwrap();
    assert_eq!(parsed.source_uri.as_deref(), Some("https://github.com/acme/app"));
    assert_eq!((parsed.source_ref, parsed.source_digest), (None, None));
}

#[test]
fn v02_source_falls_back_to_the_first_git_material() {
    let mut p = slsa_generator_v02();
    p["invocation"] = json!({ "configSource": {} });
    p["materials"] = json!([
        { "uri": "pkg:docker/alpine@3.20", "digest": { "sha256": "ab" } },
        { "uri": "git+https://github.com/acme/app@refs/tags/v1.0.0", "digest": { "sha1": COMMIT } }
    ]);
    let parsed = parse(SLSA_V02, &p).unwrap();
    assert_eq!(parsed.source_uri.as_deref(), Some("git+https://github.com/acme/app"));
    assert_eq!(parsed.source_ref.as_deref(), Some("refs/tags/v1.0.0"));
    assert_eq!(parsed.source_digest.as_deref(), Some(COMMIT));
}

/// cosign's Go types write `null` (or `{}`) for unset optional fields; that is not malformed.
#[test]
fn nulls_from_cosign_are_absent_fields() {
    let v1 = json!({
        "buildDefinition": { "buildType": "https://b/t", "externalParameters": null, "resolvedDependencies": null },
        "runDetails": { "builder": { "id": "https://b" }, "metadata": {} }
    });
    assert_eq!(parse(SLSA_V1, &v1).unwrap().source_uri, None);
    let v02 = json!({
        "builder": { "id": "https://b" }, "buildType": "https://b/t",
        "invocation": { "configSource": { "digest": null } }, "materials": null
    });
    assert_eq!(parse(SLSA_V02, &v02).unwrap().source_uri, None);
}

#[rstest]
#[case::plain("https://github.com/acme/app", "https://github.com/acme/app", None)]
#[case::git_plus_ref(
    "git+https://github.com/acme/app@refs/heads/main",
    "git+https://github.com/acme/app",
    Some("refs/heads/main")
)]
#[case::tag(
    "git+https://github.com/acme/app.git@refs/tags/v1.2.3",
    "git+https://github.com/acme/app.git",
    Some("refs/tags/v1.2.3")
)]
#[case::userinfo(
    "git+ssh://git@github.com/acme/app@refs/heads/main",
    "git+ssh://git@github.com/acme/app",
    Some("refs/heads/main")
)]
#[case::userinfo_no_ref("git+ssh://git@github.com/acme/app", "git+ssh://git@github.com/acme/app", None)]
#[case::ref_with_at(
    "git+https://github.com/acme/app@refs/heads/fix@2",
    "git+https://github.com/acme/app",
    Some("refs/heads/fix@2")
)]
#[case::empty_ref("git+https://github.com/acme/app@", "git+https://github.com/acme/app", None)]
#[case::host_only("https://github.com", "https://github.com", None)]
fn splits_the_ref_off_a_source_uri(#[case] uri: &str, #[case] repo: &str, #[case] git_ref: Option<&str>) {
    assert_eq!(split_ref(uri), (repo, git_ref));
}

#[rstest]
#[case("git+https://github.com/acme/app", "https://github.com/acme/app")]
#[case("https://github.com/acme/app.git", "https://github.com/acme/app")]
#[case("git+https://github.com/acme/app.git", "https://github.com/acme/app")]
#[case("https://github.com/acme/app/", "https://github.com/acme/app")]
#[case("https://github.com/acme/app", "https://github.com/acme/app")]
fn normalises_source_spellings(#[case] uri: &str, #[case] normal: &str) {
    assert_eq!(normalise_source(uri), normal);
}

#[rstest]
#[case::git_plus_in_provenance("git+https://github.com/acme/app", "https://github.com/acme/*", true)]
#[case::dot_git_in_provenance("https://github.com/acme/app.git", "https://github.com/acme/app", true)]
#[case::both_in_provenance("git+https://github.com/acme/app.git", "https://github.com/acme/app", true)]
#[case::git_plus_in_policy("https://github.com/acme/app", "git+https://github.com/acme/app.git", true)]
#[case::other_owner("git+https://github.com/other/repo", "https://github.com/acme/*", false)]
#[case::lookalike_owner("https://github.com/acme-evil/app", "https://github.com/acme/*", false)]
#[case::other_host("https://gitlab.com/acme/app", "https://github.com/acme/*", false)]
#[case::http_is_not_https("http://github.com/acme/app", "https://github.com/acme/*", false)]
fn source_matching_normalises_both_sides(#[case] uri: &str, #[case] pattern: &str, #[case] matches: bool) {
    let mut p = github_attest_v1();
    p["buildDefinition"]["externalParameters"]["workflow"]["repository"] = json!(uri);
    let result = evaluate(SLSA_V1, &p, &rule(&[], &[pattern], &[], &[]));
    assert_eq!(result.is_ok(), matches, "{uri} against {pattern}: {result:?}");
}

#[rstest]
#[case::exact("https://github.com/actions/runner", "https://github.com/actions/runner", true)]
#[case::exact_is_not_prefix(
    "https://github.com/actions/runner",
    "https://github.com/actions/runner/github-hosted",
    false
)]
#[case::exact_is_not_suffix("actions/runner", "https://github.com/actions/runner", false)]
#[case::case_sensitive("https://github.com/Acme/app", "https://github.com/acme/app", false)]
#[case::trailing_star("https://github.com/acme/*", "https://github.com/acme/app", true)]
#[case::star_crosses_slash("https://github.com/acme/*", "https://github.com/acme/app/sub", true)]
#[case::star_matches_empty("https://github.com/acme/*", "https://github.com/acme/", true)]
#[case::literal_slash_required("https://github.com/acme/*", "https://github.com/acmeevil", false)]
#[case::lookalike_owner("https://github.com/acme/*", "https://github.com/acme-evil/x", false)]
#[case::owner_without_slash("https://github.com/acme/*", "https://github.com/acme", false)]
#[case::leading_star("*/runner", "https://github.com/actions/runner", true)]
#[case::leading_star_anchors_the_end("*/runner", "https://github.com/actions/runner/x", false)]
#[case::middle_star("refs/tags/v*.*", "refs/tags/v1.2.3", true)]
#[case::middle_star_needs_its_literal("refs/tags/v*.*", "refs/tags/v1", false)]
#[case::backtracks("a*b*c", "aXbYbZc", true)]
#[case::double_star("refs/**/main", "refs/heads/main", true)]
#[case::star_alone("*", "", true)]
#[case::empty_pattern("", "", true)]
#[case::empty_pattern_only_empty("", "x", false)]
#[case::only_stars("**", "anything/at/all", true)]
#[case::question_mark_is_literal("refs/heads/ma?n", "refs/heads/main", false)]
#[case::brackets_are_literal("v[0-9]", "v1", false)]
#[case::non_ascii("https://git.example/ünïcode/*", "https://git.example/ünïcode/app", true)]
fn glob_matching(#[case] pattern: &str, #[case] value: &str, #[case] matches: bool) {
    assert_eq!(star_match(pattern, value), matches, "{pattern} against {value}");
}

#[test]
fn glob_matching_stays_fast_on_adversarial_input() {
    let value = "a".repeat(10_000);
    let pattern = format!("{}b", "*a".repeat(50));
    let started = std::time::Instant::now();
    assert!(!star_match(&pattern, &value));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[rstest]
#[case::not_an_object(SLSA_V1, json!("provenance"), "provenance predicate is not SLSA v1: invalid type: string \"provenance\", expected a JSON object")]
#[case::missing_builder(
    SLSA_V1,
    json!({ "buildDefinition": { "buildType": "https://b/t", "externalParameters": {} }, "runDetails": {} }),
    "provenance predicate is not SLSA v1: runDetails: missing field `builder`"
)]
#[case::builder_id_not_a_string(
    SLSA_V1,
    json!({ "buildDefinition": { "buildType": "https://b/t" }, "runDetails": { "builder": { "id": 7 } } }),
    "provenance predicate is not SLSA v1: runDetails.builder.id: invalid type: integer `7`, expected a string"
)]
#[case::empty_builder_id(
    SLSA_V1,
    json!({ "buildDefinition": { "buildType": "https://b/t" }, "runDetails": { "builder": { "id": "" } } }),
    "provenance predicate is not SLSA v1: runDetails.builder.id is empty"
)]
#[case::missing_build_type(
    SLSA_V1,
    json!({ "buildDefinition": {}, "runDetails": { "builder": { "id": "https://b" } } }),
    "provenance predicate is not SLSA v1: buildDefinition: missing field `buildType`"
)]
#[case::dependencies_not_a_list(
    SLSA_V1,
    json!({ "buildDefinition": { "buildType": "https://b/t", "resolvedDependencies": {} }, "runDetails": { "builder": { "id": "https://b" } } }),
    "provenance predicate is not SLSA v1: buildDefinition.resolvedDependencies: invalid type: map, expected a sequence"
)]
#[case::external_parameters_not_an_object(
    SLSA_V1,
    json!({ "buildDefinition": { "buildType": "https://b/t", "externalParameters": "x" }, "runDetails": { "builder": { "id": "https://b" } } }),
    "provenance predicate is not SLSA v1: buildDefinition.externalParameters: invalid type: string \"x\", expected a map"
)]
#[case::v02_given_for_v1(
    SLSA_V1,
    json!({ "builder": { "id": "https://b" }, "buildType": "https://b/t" }),
    "provenance predicate is not SLSA v1: missing field `buildDefinition`"
)]
#[case::v02_missing_builder(
    SLSA_V02,
    json!({ "buildType": "https://b/t" }),
    "provenance predicate is not SLSA v0.2: missing field `builder`"
)]
#[case::v02_empty_build_type(
    SLSA_V02,
    json!({ "builder": { "id": "https://b" }, "buildType": "" }),
    "provenance predicate is not SLSA v0.2: buildType is empty"
)]
#[case::v02_digest_not_strings(
    SLSA_V02,
    json!({ "builder": { "id": "https://b" }, "buildType": "https://b/t", "materials": [{ "uri": "git+https://x/y", "digest": { "sha1": 1 } }] }),
    "provenance predicate is not SLSA v0.2: materials[0].digest.sha1: invalid type: integer `1`, expected a string"
)]
#[case::v1_given_for_v02(
    SLSA_V02,
    github_attest_v1(),
    "provenance predicate is not SLSA v0.2: missing field `builder`"
)]
#[case::other_predicate_type(
    "https://cyclonedx.org/bom",
    json!({}),
    "provenance predicate type https://cyclonedx.org/bom is not SLSA provenance (https://slsa.dev/provenance/v1 or https://slsa.dev/provenance/v0.2)"
)]
#[case::cosign_short_name_is_not_a_predicate_type(
    "slsaprovenance1",
    github_attest_v1(),
    "provenance predicate type slsaprovenance1 is not SLSA provenance (https://slsa.dev/provenance/v1 or https://slsa.dev/provenance/v0.2)"
)]
fn malformed_predicates_are_denied_with_the_reason(
    #[case] predicate_type: &str,
    #[case] predicate: Value,
    #[case] message: &str,
) {
    assert_eq!(parse(predicate_type, &predicate).unwrap_err().to_string(), message);
    // A rule that allows everything still denies it.
    assert_eq!(messages(evaluate(predicate_type, &predicate, &SlsaRule::default())), [message]);
}

#[test]
fn provenance_serialises_for_json_output() {
    let p = parse(SLSA_V02, &slsa_generator_v02()).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["version"], "v0.2");
    assert_eq!(v["sourceUri"], "git+https://github.com/acme/app");
    assert_eq!(v["sourceRef"], "refs/heads/main");
    let mut bare = github_attest_v1();
    bare["buildDefinition"]["externalParameters"] = json!({});
    bare["buildDefinition"]["resolvedDependencies"] = json!([]);
    let v = serde_json::to_value(parse(SLSA_V1, &bare).unwrap()).unwrap();
    assert_eq!(v.get("sourceUri"), None);
}

#[test]
fn version_round_trips_its_predicate_type() {
    for version in [SlsaVersion::V1, SlsaVersion::V0_2] {
        assert_eq!(SlsaVersion::from_predicate_type(version.predicate_type()), Some(version));
    }
    assert_eq!(SlsaVersion::from_predicate_type("https://slsa.dev/provenance/v0.1"), None);
}

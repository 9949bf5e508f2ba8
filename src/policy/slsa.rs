//! SLSA build provenance (v1 and v0.2): reading a verified predicate and checking it against a
//! policy's rule.
//!
//! Pure: the caller has already verified the attestation's signature and bound its statement to
//! the image digest, and hands over the statement's `predicateType` and `predicate`. Start at
//! [`evaluate`]; [`parse`] and [`check`] are its two halves for callers that want the
//! [`Provenance`] even when it fails the rule.
//!
//! The two versions name the same facts in different places, and builders differ in where they
//! put the source; [`Provenance`] is the one shape the rule is checked against:
//!
//! - builder: v1 `runDetails.builder.id`, v0.2 `builder.id`;
//! - build type: v1 `buildDefinition.buildType`, v0.2 `buildType`;
//! - source: v1 `buildDefinition.externalParameters.workflow.repository` (or a `source` /
//!   `repository` parameter), else the first `git+` entry of `resolvedDependencies`; v0.2
//!   `invocation.configSource.uri`, else the first `git+` entry of `materials`;
//! - ref: v1 `externalParameters.workflow.ref`, else the `@ref` of the source URI
//!   (`git+https://github.com/acme/app@refs/heads/main`); v0.2 the `@ref` of the source URI.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::glob::star_match;
use super::predicate::{PredicateType, SLSA_V02, SLSA_V1};

/// What a policy requires of a provenance predicate. Every list is "any of"; an empty list
/// places no constraint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlsaRule {
    /// Globs over `builder.id` (see [`star_match`]).
    pub builder_ids: Vec<String>,
    /// Globs over the source repository URI, compared after [`normalise_source`] on both sides,
    /// so `https://github.com/acme/*` matches `git+https://github.com/acme/app.git`.
    pub source_repositories: Vec<String>,
    /// `buildType` URIs, exact or globs.
    pub build_types: Vec<String>,
    /// Globs over the source ref, e.g. `refs/heads/main`, `refs/tags/v*`.
    pub source_refs: Vec<String>,
}

/// Which SLSA provenance version a predicate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SlsaVersion {
    #[serde(rename = "v1")]
    V1,
    #[serde(rename = "v0.2")]
    V0_2,
}

impl SlsaVersion {
    /// The version a statement's `predicateType` names, if it is SLSA provenance we read.
    ///
    /// Only the full URIs: cosign's short names (`slsaprovenance1`, …) are for policies and the
    /// command line; an in-toto statement always carries the URI.
    pub fn from_predicate_type(predicate_type: &str) -> Option<Self> {
        match PredicateType::of_statement(predicate_type) {
            PredicateType::SlsaV1 => Some(SlsaVersion::V1),
            PredicateType::SlsaV02 => Some(SlsaVersion::V0_2),
            _ => None,
        }
    }

    /// The `predicateType` URI of this version.
    pub fn predicate_type(self) -> &'static str {
        match self {
            SlsaVersion::V1 => SLSA_V1,
            SlsaVersion::V0_2 => SLSA_V02,
        }
    }
}

impl fmt::Display for SlsaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlsaVersion::V1 => "v1",
            SlsaVersion::V0_2 => "v0.2",
        })
    }
}

/// The facts of a provenance predicate that a policy can check, in one shape for both versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub version: SlsaVersion,
    pub builder_id: String,
    pub build_type: String,
    /// The source repository as the predicate writes it (`git+` and `.git` kept, `@ref` split
    /// off into `source_ref`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<String>,
    /// The git commit of the source (digest `gitCommit` in v1, `sha1` in v0.2), when the
    /// predicate records one for that repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
}

/// Why a provenance predicate does not satisfy a rule. A value, not an error: every failed check
/// is one finding, and its `Display` is the message a developer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvenanceFinding {
    /// The statement's `predicateType` is not SLSA provenance v1 or v0.2.
    UnsupportedPredicateType {
        predicate_type: String,
    },
    /// The predicate does not have the shape its `predicateType` promises.
    Malformed {
        version: SlsaVersion,
        detail: String,
    },
    Builder {
        builder_id: String,
        allowed: Vec<String>,
    },
    BuildType {
        build_type: String,
        allowed: Vec<String>,
    },
    SourceRepository {
        source_uri: String,
        allowed: Vec<String>,
    },
    /// The rule constrains the source, and the predicate names none.
    NoSourceRepository {
        allowed: Vec<String>,
    },
    SourceRef {
        source_ref: String,
        allowed: Vec<String>,
    },
    /// The rule constrains the ref, and the predicate names none.
    NoSourceRef {
        allowed: Vec<String>,
    },
}

impl fmt::Display for ProvenanceFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProvenanceFinding::UnsupportedPredicateType { predicate_type } => {
                write!(f, "provenance predicate type {predicate_type} is not SLSA provenance ({SLSA_V1} or {SLSA_V02})")
            }
            ProvenanceFinding::Malformed { version, detail } => {
                write!(f, "provenance predicate is not SLSA {version}: {detail}")
            }
            ProvenanceFinding::Builder { builder_id, allowed } => {
                write!(f, "provenance builder {builder_id} is not in {}", list(allowed))
            }
            ProvenanceFinding::BuildType { build_type, allowed } => {
                write!(f, "provenance build type {build_type} is not in {}", list(allowed))
            }
            ProvenanceFinding::SourceRepository { source_uri, allowed } => {
                write!(f, "provenance source {source_uri} is not in {}", list(allowed))
            }
            ProvenanceFinding::NoSourceRepository { allowed } => {
                write!(f, "provenance names no source repository; the policy requires one of {}", list(allowed))
            }
            ProvenanceFinding::SourceRef { source_ref, allowed } => {
                write!(f, "provenance source ref {source_ref} is not in {}", list(allowed))
            }
            ProvenanceFinding::NoSourceRef { allowed } => {
                write!(f, "provenance names no source ref; the policy requires one of {}", list(allowed))
            }
        }
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Parses a verified predicate into a [`Provenance`] and checks it against `rule`; every failed
/// check is reported, not only the first.
pub fn evaluate(
    predicate_type: &str,
    predicate: &Value,
    rule: &SlsaRule,
) -> Result<Provenance, Vec<ProvenanceFinding>> {
    let provenance = parse(predicate_type, predicate).map_err(|finding| vec![finding])?;
    let findings = check(&provenance, rule);
    if findings.is_empty() {
        Ok(provenance)
    } else {
        Err(findings)
    }
}

/// Checks a parsed provenance against `rule`; empty when it passes.
pub fn check(provenance: &Provenance, rule: &SlsaRule) -> Vec<ProvenanceFinding> {
    let mut findings = Vec::new();
    if !any_matches(&rule.builder_ids, &provenance.builder_id) {
        findings.push(ProvenanceFinding::Builder {
            builder_id: provenance.builder_id.clone(),
            allowed: rule.builder_ids.clone(),
        });
    }
    if !any_matches(&rule.build_types, &provenance.build_type) {
        findings.push(ProvenanceFinding::BuildType {
            build_type: provenance.build_type.clone(),
            allowed: rule.build_types.clone(),
        });
    }
    if !rule.source_repositories.is_empty() {
        match &provenance.source_uri {
            None => findings.push(ProvenanceFinding::NoSourceRepository { allowed: rule.source_repositories.clone() }),
            Some(uri) => {
                let uri_n = normalise_source(uri);
                if !rule.source_repositories.iter().any(|p| star_match(normalise_source(p), uri_n)) {
                    findings.push(ProvenanceFinding::SourceRepository {
                        source_uri: uri.clone(),
                        allowed: rule.source_repositories.clone(),
                    });
                }
            }
        }
    }
    if !rule.source_refs.is_empty() {
        match &provenance.source_ref {
            None => findings.push(ProvenanceFinding::NoSourceRef { allowed: rule.source_refs.clone() }),
            Some(source_ref) if !any_matches(&rule.source_refs, source_ref) => {
                findings.push(ProvenanceFinding::SourceRef {
                    source_ref: source_ref.clone(),
                    allowed: rule.source_refs.clone(),
                });
            }
            Some(_) => {}
        }
    }
    findings
}

/// An empty list allows anything.
fn any_matches(patterns: &[String], value: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| star_match(p, value))
}

/// The form source URIs are compared in: without a leading `git+` (SPDX download-location
/// syntax, which SLSA uses for git sources), a trailing `/` and a trailing `.git`. Applied to
/// the policy's globs too, so either spelling matches either spelling.
pub fn normalise_source(uri: &str) -> &str {
    let uri = uri.strip_prefix("git+").unwrap_or(uri);
    let uri = uri.strip_suffix('/').unwrap_or(uri);
    uri.strip_suffix(".git").unwrap_or(uri)
}

/// Reads the facts of a provenance predicate. Fails with
/// [`ProvenanceFinding::UnsupportedPredicateType`] for another predicate type and
/// [`ProvenanceFinding::Malformed`] when the JSON does not have the version's required shape
/// (`builder.id` and `buildType` present, non-empty strings; known fields of the right types).
pub fn parse(predicate_type: &str, predicate: &Value) -> Result<Provenance, ProvenanceFinding> {
    let version = SlsaVersion::from_predicate_type(predicate_type)
        .ok_or_else(|| ProvenanceFinding::UnsupportedPredicateType { predicate_type: predicate_type.to_owned() })?;
    let malformed = |detail: String| ProvenanceFinding::Malformed { version, detail };
    let provenance = match version {
        SlsaVersion::V1 => {
            let p: V1Predicate = serde_path_to_error::deserialize(predicate).map_err(|e| malformed(e.to_string()))?;
            from_v1(p)
        }
        SlsaVersion::V0_2 => {
            let p: V02Predicate = serde_path_to_error::deserialize(predicate).map_err(|e| malformed(e.to_string()))?;
            from_v02(p)
        }
    };
    let (builder_path, build_type_path) = match version {
        SlsaVersion::V1 => ("runDetails.builder.id", "buildDefinition.buildType"),
        SlsaVersion::V0_2 => ("builder.id", "buildType"),
    };
    // An empty builder would pass a rule that allows any builder, as if it named one.
    if provenance.builder_id.is_empty() {
        return Err(malformed(format!("{builder_path} is empty")));
    }
    if provenance.build_type.is_empty() {
        return Err(malformed(format!("{build_type_path} is empty")));
    }
    Ok(provenance)
}

// The predicate shapes, reduced to what a policy checks. Unknown fields are ignored (both specs
// allow extensions); optional fields accept `null`, which cosign's Go types write for unset
// values. `expecting` keeps our type names out of the messages.

type DigestSet = BTreeMap<String, String>;

/// SLSA provenance v1: <https://slsa.dev/spec/v1.0/provenance>.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct V1Predicate {
    build_definition: V1BuildDefinition,
    run_details: V1RunDetails,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct V1BuildDefinition {
    build_type: String,
    /// Required by the spec, free-form per build type; missing is read as empty so that the
    /// source checks, not the parser, report what is absent.
    #[serde(default)]
    external_parameters: Option<Map<String, Value>>,
    #[serde(default)]
    resolved_dependencies: Option<Vec<ResourceDescriptor>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct V1RunDetails {
    builder: Builder,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct Builder {
    id: String,
}

/// An in-toto resource descriptor (v1 `resolvedDependencies`) or a v0.2 material: both have
/// `uri` and `digest`.
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct ResourceDescriptor {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    digest: Option<DigestSet>,
}

/// SLSA provenance v0.2: <https://slsa.dev/provenance/v0.2>.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct V02Predicate {
    builder: Builder,
    build_type: String,
    #[serde(default)]
    invocation: Option<V02Invocation>,
    #[serde(default)]
    materials: Option<Vec<ResourceDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct V02Invocation {
    #[serde(default)]
    config_source: Option<ResourceDescriptor>,
}

fn from_v1(p: V1Predicate) -> Provenance {
    let declared = p.build_definition.external_parameters.as_ref().and_then(declared_source);
    let dependencies = p.build_definition.resolved_dependencies.unwrap_or_default();
    let source = resolve_source(declared, &dependencies);
    Provenance {
        version: SlsaVersion::V1,
        builder_id: p.run_details.builder.id,
        build_type: p.build_definition.build_type,
        source_uri: source.uri,
        source_ref: source.git_ref,
        source_digest: source.commit,
    }
}

fn from_v02(p: V02Predicate) -> Provenance {
    let declared = p.invocation.and_then(|i| i.config_source).and_then(|c| {
        let (uri, git_ref) = split_ref(c.uri.as_deref().filter(|u| !u.is_empty())?);
        Some(Source {
            uri: Some(uri.to_owned()),
            git_ref: git_ref.map(str::to_owned),
            commit: commit(c.digest.as_ref()),
        })
    });
    let materials = p.materials.unwrap_or_default();
    let source = resolve_source(declared, &materials);
    Provenance {
        version: SlsaVersion::V0_2,
        builder_id: p.builder.id,
        build_type: p.build_type,
        source_uri: source.uri,
        source_ref: source.git_ref,
        source_digest: source.commit,
    }
}

#[derive(Default)]
struct Source {
    uri: Option<String>,
    git_ref: Option<String>,
    commit: Option<String>,
}

/// The source a v1 predicate's external parameters declare: GitHub's and slsa-github-generator's
/// `workflow.repository` and `workflow.ref`, else a `source` (string, or object with `uri`) or
/// `repository` string, as other builders write it. Values of other types are not a source.
fn declared_source(params: &Map<String, Value>) -> Option<Source> {
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    let workflow = params.get("workflow").and_then(Value::as_object);
    let (uri, explicit_ref) = if let Some(repo) = workflow.and_then(|w| text(w.get("repository"))) {
        (repo, workflow.and_then(|w| text(w.get("ref"))))
    } else {
        let source = params.get("source");
        let uri = match source {
            Some(Value::Object(o)) => text(o.get("uri")),
            other => text(other),
        }
        .or_else(|| text(params.get("repository")))?;
        let explicit_ref =
            source.and_then(Value::as_object).and_then(|o| text(o.get("ref"))).or(text(params.get("ref")));
        (uri, explicit_ref)
    };
    let (uri, uri_ref) = split_ref(uri);
    Some(Source { uri: Some(uri.to_owned()), git_ref: explicit_ref.or(uri_ref).map(str::to_owned), commit: None })
}

/// Completes a declared source from the `git+` dependencies (v1 `resolvedDependencies`, v0.2
/// `materials`): the entry for the same repository supplies the commit, and the ref when the
/// declaration has none. Without a declaration, the first `git+` entry is the source.
fn resolve_source(declared: Option<Source>, dependencies: &[ResourceDescriptor]) -> Source {
    let mut git_dependencies = dependencies.iter().filter_map(|d| {
        let uri = d.uri.as_deref().filter(|u| u.starts_with("git+"))?;
        let (repo, git_ref) = split_ref(uri);
        Some((repo, git_ref, d.digest.as_ref()))
    });
    let Some(mut source) = declared else {
        return git_dependencies
            .next()
            .map(|(repo, git_ref, digest)| Source {
                uri: Some(repo.to_owned()),
                git_ref: git_ref.map(str::to_owned),
                commit: commit(digest),
            })
            .unwrap_or_default();
    };
    let declared_repo = source.uri.as_deref().map(normalise_source).unwrap_or_default();
    // A dependency on another repository says nothing about this one's commit or ref.
    if let Some((_, git_ref, digest)) = git_dependencies.find(|(repo, _, _)| normalise_source(repo) == declared_repo) {
        source.git_ref = source.git_ref.or_else(|| git_ref.map(str::to_owned));
        source.commit = source.commit.or_else(|| commit(digest));
    }
    source
}

/// The git commit in a digest set: `gitCommit` (the in-toto name) or `sha1` (v0.2's).
fn commit(digest: Option<&DigestSet>) -> Option<String> {
    let digest = digest?;
    digest.get("gitCommit").or_else(|| digest.get("sha1")).filter(|c| !c.is_empty()).cloned()
}

/// Splits `git+https://github.com/acme/app@refs/heads/main` into the repository and the ref.
///
/// The ref starts at the first `@` of the path: an `@` before it is userinfo
/// (`git+ssh://git@host/…`), and a ref may itself contain `@` (GitHub's build type warns of it).
fn split_ref(uri: &str) -> (&str, Option<&str>) {
    let path_start = match uri.split_once("://") {
        Some((scheme, rest)) => rest.find('/').map_or(uri.len(), |j| scheme.len() + 3 + j),
        None => 0,
    };
    let Some((head, path)) = uri.split_at_checked(path_start) else { return (uri, None) };
    match path.split_once('@') {
        Some((before, git_ref)) => {
            let repository = uri.get(..head.len() + before.len()).unwrap_or(uri);
            (repository, Some(git_ref).filter(|r| !r.is_empty()))
        }
        None => (uri, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    const FIXTURE_V1: &str = include_str!("../../tests/fixtures/slsa/provenance-v1.json");
    const FIXTURE_V1_WRONG_BUILDER: &str = include_str!("../../tests/fixtures/slsa/provenance-v1-wrong-builder.json");
    const FIXTURE_V02: &str = include_str!("../../tests/fixtures/slsa/provenance-v0.2.json");

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
        for (t, p) in [(SLSA_V1, github_attest_v1()), (SLSA_V1, slsa_generator_v1()), (SLSA_V02, slsa_generator_v02())]
        {
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
        p["buildDefinition"]["externalParameters"] =
            json!({ "workflow": { "repository": "https://github.com/acme/app" } });
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
}

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
mod tests;

//! Loading policies from files (file mode): every `*.yaml` / `*.yml` of a directory, each a
//! multi-document stream of `ClusterImagePolicy` objects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ClusterImagePolicy, DefaultTrustRoot, Policy, PolicyError, PolicyErrors, PolicySet};

/// Loading the policy directory failed before any policy could be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading policy directory {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading policy file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] PolicyErrors),
}

impl PolicySet {
    /// Loads every `*.yaml` / `*.yml` file of `dir` (multi-document). Any invalid document
    /// fails the whole load, with every problem named by file, object and field. Keyless
    /// authorities that name no trust root use `trust_root`.
    pub fn load_dir(dir: &Path, trust_root: &DefaultTrustRoot) -> Result<Self, LoadError> {
        let read_dir = |source| LoadError::ReadDir { path: dir.to_owned(), source };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_dir)?;
        files.retain(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")));
        files.sort();
        let mut policies = Vec::new();
        let mut errors = Vec::new();
        for path in files {
            let text =
                std::fs::read_to_string(&path).map_err(|source| LoadError::ReadFile { path: path.clone(), source })?;
            let (ok, errs) = parse_documents_with(&text, trust_root);
            policies.extend(ok);
            errors.extend(errs.into_iter().map(|mut e| {
                e.source_file = Some(path.clone());
                e
            }));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &policies {
            if !seen.insert(p.name.clone()) {
                errors.push(PolicyError {
                    source_file: None,
                    name: p.name.clone(),
                    field: "metadata.name".into(),
                    message: "defined more than once".into(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(PolicyErrors(errors).into());
        }
        Ok(PolicySet::new(policies))
    }
}

/// Parses the `ClusterImagePolicy` documents of one YAML stream; keyless authorities that name
/// no trust root use the Sigstore public-good root.
pub fn parse_documents(text: &str) -> (Vec<Arc<Policy>>, Vec<PolicyError>) {
    parse_documents_with(text, &DefaultTrustRoot::default())
}

/// [`parse_documents`], with `trust_root` for keyless authorities that name none.
pub fn parse_documents_with(text: &str, trust_root: &DefaultTrustRoot) -> (Vec<Arc<Policy>>, Vec<PolicyError>) {
    use serde::Deserialize;
    let mut policies = Vec::new();
    let mut errors = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let fallback_name = format!("document {}", i + 1);
        let value = match serde_yaml::Value::deserialize(doc) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(v) => v,
            Err(e) => {
                errors.push(PolicyError {
                    source_file: None,
                    name: fallback_name,
                    field: "(yaml)".into(),
                    message: e.to_string(),
                });
                // A syntax error ends the stream: serde_yaml would yield it forever.
                break;
            }
        };
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .map_or(fallback_name, str::to_owned);
        let err = |field: &str, message: String| PolicyError {
            source_file: None,
            name: name.clone(),
            field: field.into(),
            message,
        };
        let api_version = value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default();
        let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or_default();
        if kind != "ClusterImagePolicy" {
            errors.push(err("kind", format!("is {kind:?}; a policy file holds only ClusterImagePolicy objects")));
            continue;
        }
        if api_version != "trustgate.dev/v1alpha1" {
            errors.push(err("apiVersion", format!("is {api_version:?}; this trustgate reads trustgate.dev/v1alpha1")));
            continue;
        }
        match serde_path_to_error::deserialize::<_, ClusterImagePolicy>(value) {
            Ok(p) => match Policy::compile(&p, trust_root) {
                Ok(p) => policies.push(Arc::new(p)),
                Err(es) => errors.extend(es),
            },
            Err(e) => {
                let field = e.path().to_string();
                errors.push(err(&field, e.into_inner().to_string()));
            }
        }
    }
    (policies, errors)
}

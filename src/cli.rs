//! The command line: `serve`, `verify`, `evaluate` and `crds`, each a thin front end over the
//! same [`Engine`] the webhook uses, so a developer gets the cluster's answer locally; and
//! `verify-bundle`, the sigstore-conformance entry point over [`bundle::verify_detached`].
//!
//! The flags are [`crate::config`]'s; configuration errors are reported together.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::cache::{CacheConfig, Caches};
use crate::cluster;
pub use crate::config::{
    CacheArgs, Cli, Command, ConfigError, CrdsArgs, EvaluateArgs, LocalArgs, LogFormat, Output, PolicyArgs,
    RegistryArgs, ServeArgs, ServeConfig, VerifyArgs, VerifyBundleArgs,
};
use crate::decision::{Decision, Outcome};
use crate::engine::Engine;
use crate::evidence::bundle::{self, Authority};
use crate::evidence::{Credentials, CredentialsError, Limits, RegistryClient, RegistryConfig, RegistryConfigError};
use crate::images::{self, WorkloadImage};
use crate::metrics::Metrics;
use crate::policy::{
    ClusterImagePolicy, LoadError, PolicySet, PolicyStore, TrustRoot, TrustRootError, NAMESPACE_NAME_LABEL,
};
use crate::server::{self, AppState, BoundServer, ServeError};

/// Why a command could not run (distinct from a denial, which is an exit code).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("loading policies")]
    Policies(#[from] LoadError),
    #[error(transparent)]
    Registry(#[from] RegistryConfigError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("connecting to the Kubernetes API (no --policies DIR given, so policies are read from the cluster)")]
    Kube(#[source] kube::Error),
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: document {index} is not valid YAML")]
    Manifest {
        path: PathBuf,
        index: usize,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the CRD")]
    Crd(#[source] serde_yaml::Error),
    #[error("trusted root {what}")]
    TrustRoot {
        what: String,
        #[source]
        source: TrustRootError,
    },
}

fn invalid(problems: Vec<String>) -> CliError {
    CliError::Config(ConfigError(problems))
}

/// Exit codes of `verify` and `evaluate`.
pub mod exit {
    /// Every workload admitted.
    pub const ADMITTED: u8 = 0;
    /// At least one workload denied.
    pub const DENIED: u8 = 1;
    /// Could not evaluate (registry unreachable, bad configuration or policies).
    pub const ERROR: u8 = 2;
}

/// The registry client the flags describe (checked by [`RegistryArgs::problems`]).
fn registry_client(registry: &RegistryArgs, metrics: Arc<Metrics>) -> Result<RegistryClient, CliError> {
    let credentials = match &registry.registry_config {
        Some(path) => Credentials::from_docker_config(path)?,
        None => Credentials::default(),
    };
    let config = RegistryConfig {
        insecure: registry.insecure_registries.clone(),
        ca_files: registry.registry_ca.clone(),
        credentials,
        timeout: registry.registry_timeout,
        limits: Limits::default(),
    };
    Ok(RegistryClient::new(config, metrics)?)
}

/// The engine of `verify` and `evaluate`: policies from `--policies DIR`.
fn file_engine(args: &LocalArgs) -> Result<Arc<Engine>, CliError> {
    let config = args.validate()?;
    let metrics = Arc::new(Metrics::default());
    let client = registry_client(&args.registry, metrics.clone())?;
    let policies = PolicySet::load_dir(&config.policies, &config.trust_root)?;
    let caches = Caches::new(CacheConfig::default());
    Ok(Arc::new(Engine::new(policies, Arc::new(client), caches, args.policy.unmatched, metrics)))
}

/// Runs `serve` until SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let ServeConfig { certs, trust_root, settings, cache } = args.validate()?;
    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(registry_client(&args.registry, metrics.clone())?);
    let state = match &args.policy.policies {
        Some(dir) => {
            let policies = PolicySet::load_dir(dir, &trust_root)?;
            tracing::info!(policies = policies.policies().len(), dir = %dir.display(), "policies loaded from files");
            let engine = Engine::new(policies, registry, Caches::new(cache), args.policy.unmatched, metrics.clone());
            AppState::new(Arc::new(engine), metrics, settings)
        }
        None => {
            let client = kube::Client::try_default().await.map_err(CliError::Kube)?;
            // The cluster watcher publishes the policies; the engine reads them.
            let policies = PolicyStore::default();
            let engine =
                Engine::new(policies.clone(), registry, Caches::new(cache), args.policy.unmatched, metrics.clone());
            let mut state = AppState::new(Arc::new(engine), metrics, settings);
            state.ready.store(false, std::sync::atomic::Ordering::Release);
            let health = cluster::PolicyHealth::default();
            state.policy_health = Some(health.clone());
            state.namespaces = Some(cluster::start(client.clone(), policies, trust_root, state.ready.clone(), health));
            state.pull_secrets = Some(cluster::PullSecrets::new(client));
            tracing::info!("reading ClusterImagePolicies and Namespaces from the cluster");
            state
        }
    };
    let bound = BoundServer::bind(args.listen, args.probe_listen, certs, state).await?;
    bound.run(server::shutdown_signal()).await;
    Ok(())
}

/// Runs `verify`; returns the exit code.
pub async fn verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let engine = file_engine(&args.local)?;
    let images = [WorkloadImage { path: "image".into(), container: String::new(), image: args.image.clone() }];
    let labels = args.namespace_labels.unwrap_or_default();
    let decision = engine.evaluate(&images, &labels, tokio::time::Instant::now() + args.local.timeout).await;
    match args.local.output {
        Output::Json => println!("{:#}", decision.to_json()),
        Output::Text => print_text(&args.image, &decision),
    }
    Ok(ExitCode::from(exit_code(&decision)))
}

/// Runs `evaluate`; returns the exit code.
pub async fn evaluate(args: EvaluateArgs) -> Result<ExitCode, CliError> {
    let text = if args.file == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|source| CliError::Read { path: args.file.clone(), source })?;
        s
    } else {
        std::fs::read_to_string(&args.file).map_err(|source| CliError::Read { path: args.file.clone(), source })?
    };
    let objects = manifest_objects(&text, &args.file)?;
    let engine = file_engine(&args.local)?;
    let deadline = tokio::time::Instant::now() + args.local.timeout;
    let mut worst = exit::ADMITTED;
    let mut results = Vec::new();
    for object in &objects {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(&args.namespace);
        let subject = format!("{kind} {namespace}/{name}");
        let images = match images::extract(kind, object) {
            Ok(images) => images,
            Err(images::ExtractError::NotAWorkload(_)) => {
                if args.local.output == Output::Text {
                    println!("skipped {subject}: not a workload kind");
                }
                continue;
            }
            Err(e) => {
                worst = worst.max(exit::DENIED);
                if args.local.output == Output::Text {
                    println!("DENIED {subject}\n  {e}");
                }
                results.push(serde_json::json!({"object": subject, "allowed": false, "error": e.to_string()}));
                continue;
            }
        };
        let mut labels = args.namespace_labels.clone().unwrap_or_default();
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned());
        let decision = engine.evaluate(&images, &labels, deadline).await;
        worst = worst.max(exit_code(&decision));
        match args.local.output {
            Output::Text => print_text(&subject, &decision),
            Output::Json => {
                let mut j = decision.to_json();
                if let Some(fields) = j.as_object_mut() {
                    fields.insert("object".into(), Value::String(subject));
                }
                results.push(j);
            }
        }
    }
    if args.local.output == Output::Json {
        println!("{:#}", serde_json::json!({"objects": results}));
    }
    Ok(ExitCode::from(worst))
}

/// Every object of a manifest stream, with `List` items flattened.
fn manifest_objects(text: &str, path: &Path) -> Result<Vec<Value>, CliError> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value =
            Value::deserialize(doc).map_err(|source| CliError::Manifest { path: path.into(), index: i + 1, source })?;
        match value {
            Value::Null => {}
            Value::Object(ref o) if o.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) => {
                out.extend(o.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
            }
            v => out.push(v),
        }
    }
    Ok(out)
}

/// 0 admitted; 1 denied for a reason found; 2 denied only because evaluation failed.
fn exit_code(decision: &Decision) -> u8 {
    if decision.allowed {
        return exit::ADMITTED;
    }
    let definite = decision.images.iter().any(|i| {
        !i.allowed(decision.unmatched)
            && (i.problem.is_some()
                || i.policies
                    .iter()
                    .any(|p| p.mode == crate::policy::Mode::Enforce && matches!(p.outcome, Outcome::Failed(_))))
    });
    if definite {
        exit::DENIED
    } else {
        exit::ERROR
    }
}

fn print_text(subject: &str, decision: &Decision) {
    if decision.allowed {
        println!("ADMITTED {subject}");
    } else {
        println!("DENIED {subject}");
    }
    for line in &decision.denials {
        println!("  {line}");
    }
    for line in &decision.warnings {
        println!("  warning: {line}");
    }
    for line in &decision.audits {
        println!("  audit: {line}");
    }
    for image in decision.images.iter().filter(|i| i.allowed(decision.unmatched)) {
        for p in &image.policies {
            if let Outcome::Passed { verified_by } = &p.outcome {
                let by = if verified_by.is_empty() {
                    String::new()
                } else {
                    format!(", signed by [{}]", verified_by.join(", "))
                };
                let digest = image.digest.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
                println!("  {} {}{digest}: policy {:?} passed{by}", image.path, image.image, p.policy);
            }
        }
    }
}

/// Runs `verify-bundle`: exit 0 when the bundle verifies, 1 with the reason on stderr when it
/// does not.
pub fn verify_bundle(args: VerifyBundleArgs) -> Result<ExitCode, CliError> {
    let read = |path: &Path| std::fs::read(path).map_err(|source| CliError::Read { path: path.into(), source });
    let root = match &args.trusted_root {
        Some(path) => {
            let json = String::from_utf8_lossy(&read(path)?).into_owned();
            TrustRoot::from_json(&json, format!("the trusted root {}", path.display()))
                .map_err(|source| CliError::TrustRoot { what: path.display().to_string(), source })?
        }
        None => TrustRoot::public_good().map_err(|source| CliError::TrustRoot {
            what: "of the Sigstore public-good instance".to_owned(),
            source,
        })?,
    };
    let root = Arc::new(root);
    let authority = match (&args.key, args.certificate_identity, args.certificate_oidc_issuer) {
        (Some(path), _, _) => Authority::Key { pem: String::from_utf8_lossy(&read(path)?).into_owned() },
        (None, Some(identity), Some(issuer)) => Authority::Identity { identity, issuer },
        _ => {
            return Err(invalid(vec![
                "give --key FILE, or --certificate-identity ID with --certificate-oidc-issuer URL".to_owned(),
            ]))
        }
    };
    let bundle_json = read(&args.bundle)?;
    let digest;
    let bytes;
    let artifact = if args.artifact.starts_with("sha256:") {
        digest = match images::Digest::parse(&args.artifact) {
            Ok(d) => d,
            Err(e) => return Err(invalid(vec![format!("artifact digest {:?}: {e}", args.artifact)])),
        };
        bundle::Artifact::Digest(&digest)
    } else {
        bytes = read(Path::new(&args.artifact))?;
        bundle::Artifact::Bytes(&bytes)
    };
    match bundle::verify_detached(&root, &bundle_json, artifact, &authority) {
        Ok(verified) => {
            let by = verified.identity.map(|id| format!(" by {id}")).unwrap_or_default();
            println!("VERIFIED {}{by}", args.bundle.display());
            Ok(ExitCode::from(exit::ADMITTED))
        }
        Err(e) => {
            eprintln!("NOT VERIFIED {}: {}", args.bundle.display(), error_chain(&e));
            Ok(ExitCode::from(exit::DENIED))
        }
    }
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // Many sigstore errors already print their source; say it once.
        let message = s.to_string();
        if !line.ends_with(&message) {
            line.push_str(": ");
            line.push_str(&message);
        }
        source = s.source();
    }
    line
}

/// The CRD YAML generated from the Rust types.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    Ok(format!("# Generated by `trustgate crds`; do not edit.\n{}", serde_yaml::to_string(&ClusterImagePolicy::crd())?))
}

/// Runs `crds`.
pub fn crds(args: CrdsArgs) -> Result<(), CliError> {
    let yaml = crd_yaml().map_err(CliError::Crd)?;
    match args.out_dir {
        None => print!("{yaml}"),
        Some(dir) => {
            let path = dir.join("clusterimagepolicies.yaml");
            std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(&path, yaml))
                .map_err(|source| CliError::Write { path, source })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_crds_match_the_code() {
        for dir in ["manifests/crds", "charts/trustgate/crds"] {
            let path = format!("{}/{dir}/clusterimagepolicies.yaml", env!("CARGO_MANIFEST_DIR"));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == crd_yaml().unwrap(),
                "{dir}/clusterimagepolicies.yaml is stale: run `cargo run -- crds --out-dir manifests/crds` \
                 and scripts/render-manifests.sh"
            );
        }
    }

    #[test]
    fn manifests_flatten_lists() {
        let text = "kind: List\nitems:\n  - kind: Pod\n  - kind: Job\n---\nkind: ConfigMap\n---\n";
        let objects = manifest_objects(text, Path::new("x")).unwrap();
        assert_eq!(objects.len(), 3);
    }
}

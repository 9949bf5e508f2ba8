//! The command line's flags (each also a `TRUSTGATE_*` environment variable), parsed by clap
//! into the argument types here, with the checks that need more than one flag; `cli` runs the
//! commands. Problems are reported together, each naming its flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cache::CacheConfig;
use crate::decision::Unmatched;
use crate::images;
use crate::policy::{DefaultTrustRoot, Labels, TrustRoot};
use crate::server::{CertSource, Settings};

/// Configuration problems, each naming the flag at fault; reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// Admit only container images with verified supply-chain evidence.
#[derive(Debug, Parser)]
#[command(name = "trustgate", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text", env = "TRUSTGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Output format of `verify` and `evaluate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the admission webhook.
    Serve(ServeArgs),
    /// Verify one image against the policies, as the webhook would.
    Verify(VerifyArgs),
    /// Decide every workload of a manifest, as the webhook would.
    Evaluate(EvaluateArgs),
    /// Print the ClusterImagePolicy CRD generated from the code.
    Crds(CrdsArgs),
    /// Verify a sigstore bundle over a file or digest (the sigstore-conformance CLI protocol).
    VerifyBundle(VerifyBundleArgs),
}

/// How to reach registries and what to trust from them.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Reach this registry (HOST:PORT) over plain HTTP. Repeatable.
    #[arg(
        long = "insecure-registry",
        value_name = "HOST:PORT",
        env = "TRUSTGATE_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// Extra CA bundle (PEM) for registry TLS. Repeatable.
    #[arg(long = "registry-ca", value_name = "FILE", env = "TRUSTGATE_REGISTRY_CA", value_delimiter = ',')]
    pub registry_ca: Vec<PathBuf>,
    /// Docker config.json with registry credentials (`auths`).
    #[arg(long, value_name = "FILE", env = "TRUSTGATE_REGISTRY_CONFIG")]
    pub registry_config: Option<PathBuf>,
    /// Deadline of each registry request.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = timeout, env = "TRUSTGATE_REGISTRY_TIMEOUT")]
    pub registry_timeout: Duration,
}

/// Where policies come from and what to do with images they do not cover.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Directory of ClusterImagePolicy YAML files (every *.yaml / *.yml, multi-document). Without
    /// it, `serve` reads ClusterImagePolicy objects from the cluster (in-cluster config or
    /// KUBECONFIG).
    #[arg(long, value_name = "DIR", env = "TRUSTGATE_POLICIES")]
    pub policies: Option<PathBuf>,
    /// What to do with an image no policy matches: deny (zero trust) or allow.
    #[arg(long, value_name = "deny|allow", default_value = "deny", value_parser = unmatched, env = "TRUSTGATE_UNMATCHED")]
    pub unmatched: Unmatched,
    /// A sigstore `trusted_root.json` for keyless authorities that name no `trustRoot`
    /// (a private Fulcio and Rekor, or an air-gapped copy); without it, the Sigstore
    /// public-good root shipped with trustgate. Read once at start; no network.
    #[arg(long, value_name = "FILE", env = "TRUSTGATE_TRUST_ROOT")]
    pub trust_root: Option<PathBuf>,
}

impl PolicyArgs {
    /// The trust root of keyless authorities that name none: `--trust-root`, read and checked
    /// here, or the shipped public-good root.
    pub fn default_trust_root(&self) -> Result<DefaultTrustRoot, ConfigError> {
        let Some(path) = &self.trust_root else { return Ok(DefaultTrustRoot::default()) };
        let bad = |message: String| ConfigError(vec![format!("--trust-root {}: {message}", path.display())]);
        let json = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let root = TrustRoot::from_json(&json, format!("the trust root {}", path.display()))
            .map_err(|e| bad(e.to_string()))?;
        Ok(DefaultTrustRoot::new(root))
    }
}

/// Decision cache settings.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// How long a passing decision is reused.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = ttl, env = "TRUSTGATE_CACHE_TTL")]
    pub cache_ttl: Duration,
    /// How long a failing decision is reused (short, so a fresh signature is seen soon).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = ttl, env = "TRUSTGATE_NEGATIVE_CACHE_TTL")]
    pub negative_cache_ttl: Duration,
    /// How long a tag → digest answer is reused (bounds how long a moved tag goes unseen).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = ttl, env = "TRUSTGATE_TAG_CACHE_TTL")]
    pub tag_cache_ttl: Duration,
    /// Most decisions cached.
    #[arg(long, value_name = "N", default_value_t = 20_000, env = "TRUSTGATE_CACHE_SIZE")]
    pub cache_size: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// HTTPS address of the webhook.
    #[arg(long, default_value = "0.0.0.0:8443", env = "TRUSTGATE_LISTEN")]
    pub listen: SocketAddr,
    /// Plain-HTTP address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080", env = "TRUSTGATE_PROBE_LISTEN")]
    pub probe_listen: SocketAddr,
    /// Serving certificate chain (PEM); reloaded when it changes.
    #[arg(long, value_name = "FILE", env = "TRUSTGATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Serving private key (PEM); reloaded when it changes.
    #[arg(long, value_name = "FILE", env = "TRUSTGATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Generate a CA and serving certificate at start (local use).
    #[arg(long, env = "TRUSTGATE_SELF_SIGNED")]
    pub self_signed: bool,
    /// Where --self-signed writes its CA certificate, for clients to trust.
    #[arg(long, value_name = "FILE", default_value = "trustgate-ca.pem", env = "TRUSTGATE_SELF_SIGNED_CA")]
    pub self_signed_ca: PathBuf,
    /// Names (DNS or IP) on the self-signed certificate, besides localhost and 127.0.0.1.
    #[arg(long = "self-signed-name", value_name = "NAME", env = "TRUSTGATE_SELF_SIGNED_NAMES", value_delimiter = ',')]
    pub self_signed_names: Vec<String>,
    /// Largest AdmissionReview body accepted.
    #[arg(long, value_name = "BYTES", default_value_t = 6 << 20, env = "TRUSTGATE_MAX_REQUEST_BYTES")]
    pub max_request_bytes: usize,
    /// Deadline when the API server sends no ?timeout=.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = webhook_timeout, env = "TRUSTGATE_DEFAULT_TIMEOUT")]
    pub default_timeout: Duration,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// What `verify` and `evaluate` share: they decide locally, as the webhook would.
#[derive(Debug, Clone, Args)]
pub struct LocalArgs {
    #[arg(long, short, value_enum, default_value = "text", env = "TRUSTGATE_OUTPUT")]
    pub output: Output,
    /// How long to wait for registries before giving up.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = timeout, env = "TRUSTGATE_TIMEOUT")]
    pub timeout: Duration,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The image reference, as a workload would name it.
    pub image: String,
    /// Labels of the namespace to decide for (k=v,k=v), for namespaceSelector.
    #[arg(long, value_name = "K=V,...", env = "TRUSTGATE_NAMESPACE_LABELS", value_parser = labels)]
    pub namespace_labels: Option<Labels>,
    #[command(flatten)]
    pub local: LocalArgs,
}

#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// Manifest file (multi-document YAML or JSON, or a List); `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Namespace for objects that do not name one.
    #[arg(long, short = 'n', default_value = "default", env = "TRUSTGATE_NAMESPACE")]
    pub namespace: String,
    /// Extra labels of the namespace (k=v,k=v), for namespaceSelector.
    #[arg(long, value_name = "K=V,...", env = "TRUSTGATE_NAMESPACE_LABELS", value_parser = labels)]
    pub namespace_labels: Option<Labels>,
    #[command(flatten)]
    pub local: LocalArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CrdsArgs {
    /// Write `clusterimagepolicies.yaml` into this directory instead of printing it.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("signer").required(true).args(["certificate_identity", "key"]))]
pub struct VerifyBundleArgs {
    /// The sigstore bundle (`*.sigstore.json`).
    #[arg(long, value_name = "FILE", env = "TRUSTGATE_BUNDLE")]
    pub bundle: PathBuf,
    /// The signer's certificate identity (SAN), matched exactly.
    #[arg(long, value_name = "ID", requires = "certificate_oidc_issuer", env = "TRUSTGATE_CERTIFICATE_IDENTITY")]
    pub certificate_identity: Option<String>,
    /// The OIDC issuer of the signer's certificate, matched exactly.
    #[arg(long, value_name = "URL", requires = "certificate_identity", env = "TRUSTGATE_CERTIFICATE_OIDC_ISSUER")]
    pub certificate_oidc_issuer: Option<String>,
    /// The signer's public key (PEM), for a bundle signed with a managed key.
    #[arg(long, value_name = "FILE", conflicts_with = "certificate_identity", env = "TRUSTGATE_KEY")]
    pub key: Option<PathBuf>,
    /// A sigstore `trusted_root.json`; without it, the Sigstore public-good root shipped with
    /// trustgate (no network).
    #[arg(long, value_name = "FILE", env = "TRUSTGATE_TRUSTED_ROOT")]
    pub trusted_root: Option<PathBuf>,
    /// The signed file, or its digest as `sha256:<hex>`.
    #[arg(value_name = "FILE_OR_DIGEST")]
    pub artifact: String,
}

impl RegistryArgs {
    /// What is wrong with these flags, each naming its flag.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for host in &self.insecure_registries {
            if host.is_empty() || host.contains('/') {
                problems.push(format!("--insecure-registry {host:?} must be HOST or HOST:PORT"));
            } else if let Err(why) = images::canonical_host(host) {
                problems.push(format!("--insecure-registry {host:?}: {why}"));
            }
        }
        problems
    }
}

/// What `serve` runs with, every flag checked.
#[derive(Debug)]
pub struct ServeConfig {
    pub certs: CertSource,
    pub trust_root: DefaultTrustRoot,
    pub settings: Settings,
    pub cache: CacheConfig,
}

impl ServeArgs {
    /// Checks every flag and their combinations; all problems are reported together.
    pub fn validate(&self) -> Result<ServeConfig, ConfigError> {
        let mut problems = Vec::new();
        let certs = match (&self.tls_cert, &self.tls_key, self.self_signed) {
            (Some(cert), Some(key), false) => Some(CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
                reload_interval: Duration::from_secs(2),
            }),
            (None, None, true) => {
                let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
                names.extend(self.self_signed_names.iter().cloned());
                Some(CertSource::SelfSigned { names, ca_out: self.self_signed_ca.clone() })
            }
            (_, _, true) => {
                problems.push("--self-signed cannot be combined with --tls-cert/--tls-key".to_owned());
                None
            }
            (None, None, false) => {
                problems.push("give --tls-cert and --tls-key, or --self-signed for local use".to_owned());
                None
            }
            _ => {
                problems.push("--tls-cert and --tls-key go together".to_owned());
                None
            }
        };
        if self.max_request_bytes < 3 << 20 {
            problems.push(format!(
                "--max-request-bytes {} is below the 3 MiB the API server may send",
                self.max_request_bytes
            ));
        }
        problems.extend(self.registry.problems());
        let trust_root = self.policy.default_trust_root().map_err(|e| problems.extend(e.0)).ok();
        match (certs, trust_root) {
            (Some(certs), Some(trust_root)) if problems.is_empty() => Ok(ServeConfig {
                certs,
                trust_root,
                settings: Settings {
                    max_body_bytes: self.max_request_bytes,
                    default_timeout: self.default_timeout,
                    ..Settings::default()
                },
                cache: CacheConfig {
                    positive_ttl: self.cache.cache_ttl,
                    negative_ttl: self.cache.negative_cache_ttl,
                    tag_ttl: self.cache.tag_cache_ttl,
                    max_entries: self.cache.cache_size,
                },
            }),
            _ => Err(ConfigError(problems)),
        }
    }
}

/// What `verify` and `evaluate` run with, every flag checked.
#[derive(Debug)]
pub struct LocalConfig {
    pub policies: PathBuf,
    pub trust_root: DefaultTrustRoot,
}

impl LocalArgs {
    /// Checks every flag; all problems are reported together.
    pub fn validate(&self) -> Result<LocalConfig, ConfigError> {
        let mut problems = Vec::new();
        if self.policy.policies.is_none() {
            problems.push("--policies DIR is required".to_owned());
        }
        problems.extend(self.registry.problems());
        let trust_root = self.policy.default_trust_root().map_err(|e| problems.extend(e.0)).ok();
        match (&self.policy.policies, trust_root) {
            (Some(dir), Some(trust_root)) if problems.is_empty() => {
                Ok(LocalConfig { policies: dir.clone(), trust_root })
            }
            _ => Err(ConfigError(problems)),
        }
    }
}

/// A timeout: more than 0, at most an hour.
fn timeout(s: &str) -> Result<Duration, String> {
    positive(crate::duration::parse_at_most(s, Duration::from_secs(3600)).map_err(|e| e.to_string())?)
}

/// The webhook's own timeout: the API server waits at most 30 s for a webhook.
fn webhook_timeout(s: &str) -> Result<Duration, String> {
    positive(crate::duration::parse_at_most(s, Duration::from_secs(30)).map_err(|e| e.to_string())?)
}

/// A cache lifetime: at most a year (0 turns the cache off).
fn ttl(s: &str) -> Result<Duration, String> {
    crate::duration::parse_at_most(s, Duration::from_secs(365 * 86_400)).map_err(|e| e.to_string())
}

fn positive(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err("must be more than 0".to_owned())
    } else {
        Ok(d)
    }
}

fn unmatched(s: &str) -> Result<Unmatched, String> {
    match s {
        "deny" => Ok(Unmatched::Deny),
        "allow" => Ok(Unmatched::Allow),
        other => Err(format!("{other:?} is neither deny nor allow")),
    }
}

fn labels(s: &str) -> Result<Labels, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(format!("{pair:?} is not key=value")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_clear_errors() {
        assert_eq!(labels("a=b, c=d").unwrap().len(), 2);
        assert!(labels("nope").is_err());
        assert!(timeout("ten").unwrap_err().contains("not a duration"));
        assert!(timeout("0s").unwrap_err().contains("more than 0"));
        let e = Cli::try_parse_from(["trustgate", "verify", "x", "--registry-timeout", "99999999999999999999999h"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is longer than 1h, the most allowed here"), "{e}");
        assert!(webhook_timeout("31s").is_err());
        assert_eq!(ttl("0s"), Ok(Duration::ZERO));
        let cli = Cli::try_parse_from([
            "trustgate",
            "verify",
            "nginx",
            "--policies",
            "p",
            "--insecure-registry",
            "127.0.0.1:5000",
            "--insecure-registry",
            "r:1",
        ])
        .unwrap();
        let Command::Verify(v) = cli.command else { panic!() };
        assert_eq!(v.local.registry.insecure_registries, ["127.0.0.1:5000", "r:1"]);
    }

    /// Every problem of a `serve` command line is reported at once, each naming its flag.
    #[test]
    fn serve_reports_every_problem_together() {
        let cli = Cli::try_parse_from([
            "trustgate",
            "serve",
            "--tls-cert",
            "only-cert.pem",
            "--max-request-bytes",
            "1024",
            "--insecure-registry",
            "a/b",
            "--trust-root",
            "/nonexistent/trusted_root.json",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        let ConfigError(problems) = args.validate().unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        for flag in [
            "--tls-cert and --tls-key go together",
            "--max-request-bytes 1024",
            "--insecure-registry \"a/b\"",
            "--trust-root",
        ] {
            assert!(problems.iter().any(|p| p.contains(flag)), "{flag}: {problems:#?}");
        }
    }

    #[test]
    fn verify_needs_a_policy_directory_and_says_what_else_is_wrong() {
        let cli = Cli::try_parse_from(["trustgate", "verify", "nginx", "--insecure-registry", ""]).unwrap();
        let Command::Verify(args) = cli.command else { panic!("not verify") };
        let ConfigError(problems) = args.local.validate().unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].contains("--policies DIR is required"), "{problems:#?}");
    }
}

//! [`Workspace`]: what a test that runs the `trustgate` binary works in.
//!
//! A scratch directory with a `policies/` directory in it, the registry the test's images are
//! in (if the workspace owns one), and `trustgate verify` / `trustgate evaluate` run over those
//! policies. Before, three test files each had their own version of it (two `Setup`s and a
//! `Dir`) and a fourth a policy-writing variant; they were the same concept with different
//! subsets of methods.
//!
//! A workspace made with [`Workspace::with`] trusts its registry over plain HTTP
//! (`--insecure-registry ADDR`); one made with [`Workspace::without_registry`] has no registry and passes no
//! such flag, for tests whose registry is reached some other way (over TLS with
//! `--registry-ca`, or through a proxy).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use tempfile::TempDir;

use super::cli::{trustgate, Run};
use super::cosign::KeyPair;
use super::registry::{PushedImage, Registry};
use super::sbom::{syft_sbom, SbomFormat};

/// Writes `DIR/NAME.yaml` (a policy file for `--policies DIR`) and returns its path.
pub fn write_policy(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// `tests/fixtures/PATH`.
pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

/// A fixture parsed as JSON.
pub fn fixture_json(path: &str) -> Value {
    let p = fixture(path);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

/// A scratch directory with `policies/` in it, and optionally the registry the images are in.
/// Dropping it removes the directory and stops the registry.
pub struct Workspace {
    registry: Option<Registry>,
    dir: TempDir,
}

impl Workspace {
    /// A workspace with its own registry ([`Registry::start`]).
    pub fn start() -> Workspace {
        Workspace::with(Registry::start())
    }

    /// A workspace around `registry`, which `verify` and `evaluate` trust over plain HTTP.
    pub fn with(registry: Registry) -> Workspace {
        Workspace { registry: Some(registry), ..Workspace::without_registry() }
    }

    /// A workspace without a registry: `verify` and `evaluate` get no `--insecure-registry`.
    pub fn without_registry() -> Workspace {
        let dir = tempfile::Builder::new().prefix("trustgate-workspace-").tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("policies")).expect("policies dir");
        Workspace { registry: None, dir }
    }

    /// The workspace's registry; panics if it has none.
    #[track_caller]
    pub fn registry(&self) -> &Registry {
        self.registry.as_ref().expect("this workspace has no registry (Workspace::without_registry)")
    }

    /// The workspace's registry, to stop it; panics if it has none.
    #[track_caller]
    pub fn registry_mut(&mut self) -> &mut Registry {
        self.registry.as_mut().expect("this workspace has no registry (Workspace::without_registry)")
    }

    /// `127.0.0.1:PORT` of the workspace's registry.
    #[track_caller]
    pub fn addr(&self) -> &str {
        &self.registry().addr
    }

    /// `DIR/NAME`, a path in the scratch directory (nothing is written).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The policy directory, as `--policies` takes it.
    pub fn policies(&self) -> String {
        self.path("policies").display().to_string()
    }

    /// Writes (or replaces) the policy file `NAME.yaml`.
    pub fn policy(&self, name: &str, yaml: &str) {
        write_policy(&self.path("policies"), name, yaml);
    }

    /// Writes a file into the scratch directory; returns its path.
    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes `value` as pretty JSON into the scratch directory (a predicate, an SBOM); returns
    /// its path.
    pub fn json_file(&self, name: &str, value: &Value) -> PathBuf {
        self.file(name, serde_json::to_vec_pretty(value).expect("serialize JSON"))
    }

    /// Writes a docker `config.json` with these credentials for the registry; returns its path.
    pub fn docker_config(&self, name: &str, username: &str, password: &str) -> PathBuf {
        self.file(name, self.registry().docker_config_json(username, password))
    }

    /// Pushes an image and signs it (classic format) with each of `keys`.
    pub fn signed(&self, repo: &str, tag: &str, keys: &[&KeyPair]) -> PushedImage {
        let registry = self.registry();
        let image = registry.push_image(repo, tag);
        for key in keys {
            key.sign_on(registry, &image.digest_ref);
        }
        image
    }

    /// Pushes an image carrying the package metadata of `tests/fixtures/TREE` at `/app`, and
    /// has syft scan it from the registry by digest ([`Workspace::sbom_of`]).
    pub fn image_with_sbom(&self, repo: &str, tag: &str, tree: &str, format: SbomFormat) -> (PushedImage, Value) {
        let image = self.registry().push_image_with_tree(repo, tag, &fixture(tree), "/app");
        let sbom = self.sbom_of(&image, format);
        (image, sbom)
    }

    /// syft's SBOM of a pushed image, scanned from the registry by digest into
    /// `TAG-FORMAT.json` in the scratch directory.
    pub fn sbom_of(&self, image: &PushedImage, format: SbomFormat) -> Value {
        let out = self.path(&format!("{}-{}.json", image.tag, format.syft_output()));
        let started = Instant::now();
        let sbom = syft_sbom(&format!("registry:{}", image.digest_ref), format, &out);
        eprintln!("  syft {} {} in {:?}", image.tag, format.syft_output(), started.elapsed());
        sbom
    }

    /// `trustgate verify IMAGE --policies DIR [--insecure-registry ADDR] --output json EXTRA...`
    pub fn verify(&self, image: &str, extra: &[&str]) -> Run {
        let policies = self.policies();
        let mut args = vec!["verify", image, "--policies", &policies];
        if let Some(registry) = &self.registry {
            args.extend(["--insecure-registry", &registry.addr]);
        }
        args.extend(["--output", "json"]);
        args.extend(extra);
        let run = trustgate(&args);
        eprintln!("  verify {image} -> {:?} in {:?}", run.code, run.took);
        run
    }

    /// Writes `manifest` to a file and runs `trustgate evaluate -f FILE --policies DIR
    /// [--insecure-registry ADDR] EXTRA...` (no `--output`: pass it in `extra`).
    pub fn evaluate(&self, manifest: &str, extra: &[&str]) -> Run {
        let file = self.file("manifest.yaml", manifest).display().to_string();
        let policies = self.policies();
        let mut args = vec!["evaluate", "-f", &file, "--policies", &policies];
        if let Some(registry) = &self.registry {
            args.extend(["--insecure-registry", &registry.addr]);
        }
        args.extend(extra);
        trustgate(&args)
    }
}

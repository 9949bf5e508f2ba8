//! A real OCI registry on loopback, and plain HTTP calls to it.
//!
//! [`Registry::start`] runs Debian's `docker-registry` (distribution 2.8, filesystem storage, no
//! referrers API); [`Registry::start_referrers`] and its variants run our
//! `tools/referrers-registry` (go-containerregistry, in memory, with the OCI 1.1 referrers API).
//! Each has its own free port and temporary directory and is stopped on drop.
//! [`Registry::push_image`] builds a tiny unique image with umoci and pushes it with skopeo;
//! [`Registry::serve_tls`] serves a registry's storage over HTTPS from a second process.
//! Calls to the registry API ([`Registry::manifest`], [`Registry::put_blob`], …) go through
//! curl ([`http`]), so the harness needs no HTTP client crate.
//!
//! What cosign writes into a registry is read in [`super::cosign`] (classic `.sig` / `.att`
//! tags) and [`super::bundles`] (sigstore bundles as referrers).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::machine::{self, Shared};
use super::tools::{describe, free_port, run, run_unchecked, Tools};

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
    pub(crate) tools: Tools,
    /// Held while the registry lives: a test with a registry loads the machine.
    _machine: Shared,
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
        let machine = machine::shared();
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
                Ok(()) => {
                    return Registry { addr, credentials, backend, child: Some(child), dir, tools, _machine: machine }
                }
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
    pub(crate) fn call(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> HttpResponse {
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

    /// Pushes `count` minimal, distinct OCI images as `REPO:0` … `REPO:<count-1>`: one shared
    /// layer of a few bytes and a config with a unique label each, uploaded straight through
    /// the registry API (blob uploads, then the manifest) over `lanes` kept-alive
    /// connections. For the load scenarios, which need thousands of images: about a
    /// millisecond each instead of [`Registry::push_image`]'s quarter second of umoci and
    /// skopeo. No credentials (a registry without authentication).
    pub fn push_minimal_images(&self, repo: &str, count: usize, lanes: usize) -> Vec<PushedImage> {
        assert!(self.credentials.is_none(), "push_minimal_images sends no credentials");
        let token = unique_token(self.dir.path());
        let layer = format!("trustgate load layer {token}\n").into_bytes();
        let layer_digest = self.put_blob(repo, &layer);
        let lanes = lanes.clamp(1, count.max(1));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let pushed = runtime.block_on(async {
            let tasks: Vec<_> = (0..lanes)
                .map(|lane| {
                    let (addr, repo, token, layer_digest) =
                        (self.addr.clone(), repo.to_string(), token.clone(), layer_digest.clone());
                    let layer_size = layer.len();
                    tokio::spawn(async move {
                        let mut conn = BulkConnection::open(&addr).await;
                        let mut out = Vec::new();
                        for i in (lane..count).step_by(lanes) {
                            let config = serde_json::to_vec(&serde_json::json!({
                                "architecture": "amd64",
                                "os": "linux",
                                "config": {"Labels": {"trustgate.test": format!("{token}-{i}")}},
                                "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
                            }))
                            .expect("serialize config");
                            let config_digest = sha256_digest(&config);
conn.upload_blob(&repo, &config_digest, config.clone()).await;
                            let manifest = serde_json::to_vec(&serde_json::json!({
                                "schemaVersion": 2,
                                "mediaType": OCI_MANIFEST_MEDIA_TYPE,
                                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
                                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
                            }))
                            .expect("serialize manifest");
                            conn.send("PUT", &format!("/v2/{repo}/manifests/{i}"), OCI_MANIFEST_MEDIA_TYPE, manifest.clone(), 201).await;
                            out.push((i, sha256_digest(&manifest)));
                        }
                        out
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(count);
            for task in tasks {
                all.extend(task.await.expect("push lane"));
            }
            all
        });
        let mut pushed = pushed;
        pushed.sort_unstable();
        let repo_ref = format!("{}/{repo}", self.addr);
        pushed
            .into_iter()
            .map(|(i, digest)| PushedImage {
                repo: repo.to_string(),
                tag: i.to_string(),
                tag_ref: format!("{repo_ref}:{i}"),
                digest_ref: format!("{repo_ref}@{digest}"),
                repo_ref: repo_ref.clone(),
                digest,
            })
            .collect()
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
                Ok(()) => return TlsRegistry { addr, child: Some(child), _dir: dir },
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
    /// Configuration, certificate and log; removed on drop.
    _dir: TempDir,
}

impl TlsRegistry {
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
}

/// One kept-alive plain-HTTP/1.1 connection to a registry, for [`Registry::push_minimal_images`].
struct BulkConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
    host: String,
}

impl BulkConnection {
    async fn open(addr: &str) -> BulkConnection {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("HTTP/1.1 handshake with the registry");
        tokio::spawn(connection);
        BulkConnection { sender, host: addr.to_string() }
    }

    /// Uploads a blob: `POST` to start the upload, `PUT` of the bytes to its `Location`.
    async fn upload_blob(&mut self, repo: &str, digest: &str, bytes: Vec<u8>) {
        let location =
            self.send("POST", &format!("/v2/{repo}/blobs/uploads/"), "application/octet-stream", Vec::new(), 202).await;
        let location = location.unwrap_or_else(|| panic!("no Location for the upload to {repo}"));
        let path = match location.find("/v2/") {
            Some(at) => &location[at..],
            None => panic!("unexpected upload Location {location}"),
        };
        let separator = if path.contains('?') { '&' } else { '?' };
        self.send("PUT", &format!("{path}{separator}digest={digest}"), "application/octet-stream", bytes, 201).await;
    }

    /// Sends one request; panics with the registry's answer unless its status is `expect`.
    /// Returns the answer's `Location` header, if any.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        expect: u16,
    ) -> Option<String> {
        use http_body_util::BodyExt as _;
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", content_type)
            .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
            .expect("a valid request");
        self.sender.ready().await.expect("registry connection");
        let response = self.sender.send_request(request).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let answer = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        assert_eq!(status, expect, "{method} {path}: {}", String::from_utf8_lossy(&answer));
        location
    }
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

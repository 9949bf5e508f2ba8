//! The two floods of issue 9, against the real `trustgate serve` process over TLS, as the API
//! server would send them:
//!
//! - **memory**: a Pod of 8 images, each with two OCI referrers holding 30 MiB of random bytes
//!   as "sigstore bundles", on the real referrers registry. The server must stay far below the
//!   chart's 256 MiB limit (under 128 MiB resident at its peak) and deny, naming the budget.
//! - **deadline**: a Pod of 8,000 distinct images on a registry that accepts no connections
//!   (a listening socket that is never accepted from, so its backlog fills and connects
//!   hang), sent with `?timeout=1s`, must be answered before the API server gives up; a
//!   cached single-image review sent meanwhile must stay fast.
//!
//! Both read the server's peak resident memory from `/proc/PID/status` (`VmHWM`) and print
//! their figures; `docs/benchmarks.md` records a release-build run of them. The bounds asserted
//! here are generous (the behaviour before the fix missed them by seconds or hundreds of MiB),
//! so that a loaded machine cannot make them flake.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::bundles::{OCI_EMPTY_MEDIA_TYPE, SIGSTORE_BUNDLE_V03_MEDIA_TYPE};
use crate::common::cosign::{KeyPair, KeyType};
use crate::common::machine;
use crate::common::registry::{sha256_digest, Registry, OCI_MANIFEST_MEDIA_TYPE};
use crate::common::review::pod_review;
use crate::common::tools::free_port;
use crate::common::webhook::ServeProcess;
use crate::common::workspace::write_policy;
use serde_json::{json, Value};

/// `trustgate serve` on loopback with a self-signed certificate and file policies; killed on drop.
struct Server {
    process: ServeProcess,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(policies: &Path, extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix("trustgate-flood-").tempdir().unwrap();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let (ca, policies) = (dir.path().join("ca.pem").display().to_string(), policies.display().to_string());
        let args = ["--self-signed", "--listen", &listen, "--self-signed-ca", &ca, "--policies", &policies];
        let args = [&args[..], extra].concat();
        let process = ServeProcess::start(&args, &[], &dir.path().join("server.log"));
        Server { process, port, dir }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// The peak resident memory of the server process so far, in MiB.
    fn peak_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib / 1024.0
    }

    /// Like [`Server::review`], on a TLS connection opened before the clock starts, as the API
    /// server keeps its connections to a webhook open: the time is the server's answer alone,
    /// without a curl process start and a handshake (which took 80-110 ms on a loaded machine).
    fn review_kept_alive(&self, body: &Value, timeout: &str) -> (Value, Duration) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let ca = std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap();
            let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
            let (mut sender, _, _) = crate::common::review::connect(addr, &ca).await.expect("connect");
            let bytes = hyper::body::Bytes::from(serde_json::to_vec(body).unwrap());
            let started = Instant::now();
            let (status, answer) =
                crate::common::review::post(&mut sender, &format!("/validate?timeout={timeout}"), bytes)
                    .await
                    .unwrap_or_else(|e| panic!("POST /validate: {e}\n{}", self.log()));
            let elapsed = started.elapsed();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
            let answer: Value = serde_json::from_slice(&answer).expect("an AdmissionReview");
            (answer["response"].clone(), elapsed)
        })
    }

    /// POSTs an AdmissionReview with `?timeout=`; the answer's `response` and how long it took.
    fn review(&self, body: &Value, timeout: &str) -> (Value, Duration) {
        let file = self.dir.path().join(format!("review-{}.json", body["request"]["uid"].as_str().unwrap()));
        std::fs::write(&file, serde_json::to_vec(body).unwrap()).unwrap();
        let started = Instant::now();
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "60", "--cacert"])
            .arg(self.dir.path().join("ca.pem"))
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .arg(format!("https://127.0.0.1:{}/validate?timeout={timeout}", self.port))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        assert!(out.status.success(), "curl: {}\n{}", String::from_utf8_lossy(&out.stderr), self.log());
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        (answer["response"].clone(), elapsed)
    }
}

fn key_policy(dir: &Path, registry: &str, key: &KeyPair) -> PathBuf {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    write_policy(
        &policies,
        "release",
        &format!(
            "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: release\nspec:\n  images:\n    - glob: \"{registry}/**\"\n  signatures:\n    authorities:\n{}",
            key.authority_yaml("release-key")
        ),
    );
    policies
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    bytes
}

/// Pushes a referrer of `subject` (an image manifest digest in `repo`) whose one layer claims
/// to be a sigstore bundle and holds `bytes`.
fn push_fake_bundle(registry: &Registry, repo: &str, subject: &str, bytes: &[u8]) {
    let layer = registry.put_blob(repo, bytes);
    let config = registry.put_blob(repo, b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "artifactType": SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        "config": {"mediaType": OCI_EMPTY_MEDIA_TYPE, "digest": config, "size": 2},
        "layers": [{"mediaType": SIGSTORE_BUNDLE_V03_MEDIA_TYPE, "digest": layer, "size": bytes.len()}],
        "subject": {"mediaType": OCI_MANIFEST_MEDIA_TYPE, "digest": subject, "size": 1},
    });
    let digest = sha256_digest(&serde_json::to_vec(&manifest).unwrap());
    registry.put_manifest(repo, &digest, &manifest);
}

/// Issue 9, case 5: before the per-review and per-process budgets, this Pod took the server to
/// 331-347 MiB resident before it was denied.
#[test]
fn a_pod_of_huge_referrers_stays_within_the_memory_budget() {
    // The floods measure time and memory of one server process: nothing else may run meanwhile.
    let _alone = machine::alone();
    let registry = Registry::start_referrers();
    let key = KeyPair::generate(KeyType::P256);
    let scratch = tempfile::tempdir().unwrap();
    let policies = key_policy(scratch.path(), &registry.addr, &key);
    let mut images = Vec::new();
    for i in 0..8 {
        let image = registry.push_image(&format!("flood/app{i}"), "v1");
        for _ in 0..2 {
            push_fake_bundle(&registry, &image.repo, &image.digest, &random_bytes(30 << 20));
        }
        images.push(image.digest_ref);
    }
    let server = Server::start(&policies, &["--insecure-registry", &registry.addr]);
    let before = server.peak_mib();
    let (response, elapsed) = server.review(&pod_review("memory-flood", &images), "10s");
    let peak = server.peak_mib();
    let message = response["status"]["message"].as_str().unwrap_or_default();
    eprintln!(
        "memory flood: answered in {elapsed:?}; peak resident {peak:.1} MiB (at start {before:.1} MiB)\n{message}"
    );
    assert_eq!(response["allowed"], false, "{response}");
    assert!(message.contains("48 MiB of evidence per image"), "the denial names the budget: {message}");
    for i in 0..8 {
        assert!(message.contains(&format!("spec.containers[{i}].image")), "every image is denied: {message}");
    }
    assert!(peak < 128.0, "peak resident memory {peak:.1} MiB; the budgets are 48 MiB per review, 96 MiB in all");
}

/// Issue 9, case 6: before the bounds on registry work, this review was answered after
/// 1.6-9.4 s instead of within its 1 s, a cached single-image review sent meanwhile took up to
/// 6.9 s instead of milliseconds (0.5 s on the machine this test was written on), and the
/// server reached 252 MiB.
#[test]
fn a_flood_of_images_on_a_dead_registry_is_answered_in_time_and_cached_reviews_stay_fast() {
    // The floods measure time and memory of one server process: nothing else may run meanwhile.
    let _alone = machine::alone();
    // Listening, never accepting: once its backlog is full, connections hang.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    let live = Registry::start();
    let key = KeyPair::generate(KeyType::P256);
    let signed = live.push_image("shop/api", "v1");
    key.sign_on(&live, &signed.digest_ref);
    let scratch = tempfile::tempdir().unwrap();
    let policies = key_policy(scratch.path(), "127.0.0.1:*", &key);
    let server = Server::start(&policies, &["--insecure-registry", &format!("{},{dead_addr}", live.addr)]);

    let cached = pod_review("cached", std::slice::from_ref(&signed.digest_ref));
    let (response, _) = server.review(&cached, "10s");
    assert_eq!(response["allowed"], true, "{response}");

    let flood: Vec<String> = (0..8000).map(|i| format!("{dead_addr}/flood/app{i}:v1")).collect();
    let body = pod_review("deadline-flood", &flood);
    let flooding = std::thread::scope(|s| {
        let flood = s.spawn(|| server.review_kept_alive(&body, "1s"));
        // Reviews of the cached image while the flood is in progress.
        std::thread::sleep(Duration::from_millis(300));
        let mut cached_times = Vec::new();
        for i in 0..5 {
            let mut again = cached.clone();
            again["request"]["uid"] = json!(format!("cached-{i}"));
            let (response, elapsed) = server.review(&again, "10s");
            assert_eq!(response["allowed"], true, "{response}");
            cached_times.push(elapsed);
        }
        (flood.join().unwrap(), cached_times)
    });
    let ((response, elapsed), cached_times) = flooding;
    let peak = server.peak_mib();
    eprintln!("deadline flood: answered in {elapsed:?}; cached reviews meanwhile {cached_times:?}; peak resident {peak:.1} MiB");
    drop(dead);
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    // 900 ms after the request arrived, less the time it took to read the 8,000 images.
    assert!(
        message.contains("could not evaluate within the") && message.contains("ms admission deadline"),
        "{message}"
    );
    assert!(message.contains("… and 7980 more"), "one line per image, capped: {message}");
    // The API server waits 1 s; sending the 8,000-image body is in this figure too.
    assert!(elapsed < Duration::from_millis(1500), "answered after {elapsed:?}");
    let slowest = cached_times.iter().max().unwrap();
    assert!(*slowest < Duration::from_millis(250), "a cached review took {slowest:?} during the flood");
    // 8,000 images queued, 16 verifying: no socket, task or buffer per image (252 MiB before).
    assert!(peak < 128.0, "peak resident memory {peak:.1} MiB");
}

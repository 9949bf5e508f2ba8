//! Hostile and broken registries. A real registry cannot be made to hang, lie about sizes,
//! send garbage or fail with 500, so these tests use a small fake HTTP server on loopback that
//! does exactly one of those things for the signature manifest or the OCI referrers API
//! (everything else answers as a registry without a referrers API would). Each case asserts a
//! denial with its own clear message, within the deadline.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use trustgate::cache::{CacheConfig, Caches};
use trustgate::decision::{Decision, Unmatched};
use trustgate::engine::Engine;
use trustgate::evidence::{Limits, RegistryClient, RegistryConfig};
use trustgate::images::{Digest, WorkloadImage};
use trustgate::metrics::Metrics;
use trustgate::policy::{parse_documents, Labels, PolicySet};

/// What the fake does when asked for the signature manifest.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Declares a 100 MB manifest.
    HugeDeclared,
    /// Streams 8 MB without declaring a length.
    HugeChunked,
    /// Accepts the connection and never answers.
    Hang,
    /// Answers 200 with HTML.
    Garbage,
    /// Answers 500.
    ServerError,
    /// A manifest with 1,000 signature layers.
    TooManySignatures,
    /// One layer whose blob does not hash to its digest.
    BlobMismatch,
    /// The referrers API answers 200 with HTML (the signature tag is absent).
    ReferrersGarbage,
    /// The referrers API pages forever, an empty page each time.
    ReferrersEndless,
    /// The referrers API's next page is on another host.
    ReferrersOffsite,
}

impl Misbehaviour {
    fn on_referrers(self) -> bool {
        matches!(self, Misbehaviour::ReferrersGarbage | Misbehaviour::ReferrersEndless | Misbehaviour::ReferrersOffsite)
    }
}

const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEkKPDbYxGOFyqfIt+zDbTZVoql7VW
HmhSPuBlmiGFYe70BZlGiFJ+l5r29JGkFWtbsXeZuLV+KTPZ23Xb7a+gSg==
-----END PUBLIC KEY-----";

async fn fake_registry(mode: Misbehaviour) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(handle(stream, mode));
        }
    });
    (addr, task)
}

/// Reads a request's head; returns its path (`None` when the client went away first).
async fn request_path(stream: &mut TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 8192];
    let mut read = 0;
    while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf[read..]).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => read += n,
        }
    }
    let head = String::from_utf8_lossy(&buf[..read]).to_string();
    Some(head.split_whitespace().nth(1).unwrap_or_default().to_owned())
}

async fn handle(mut stream: TcpStream, mode: Misbehaviour) {
    let Some(path) = request_path(&mut stream).await else { return };
    let respond = |status: &str, headers: &str, body: &[u8]| {
        let mut out =
            format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n", body.len())
                .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let blob = b"{\"critical\":{}}".to_vec();
    let empty_index = b"{\"schemaVersion\":2,\"manifests\":[]}";
    let out = if path.contains("/referrers/") {
        // The referrers API: absent (as on distribution) unless the case is about it.
        match mode {
            Misbehaviour::ReferrersGarbage => respond("200 OK", "", b"<html>welcome to nginx</html>"),
            Misbehaviour::ReferrersEndless => {
                let page: u64 = path.rsplit("page=").next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let (repo_path, _) = path.split_once('?').unwrap_or((&path, ""));
                let link = format!("Link: <{repo_path}?page={}>; rel=\"next\"\r\n", page + 1);
                respond("200 OK", &link, empty_index)
            }
            Misbehaviour::ReferrersOffsite => respond(
                "200 OK",
                "Link: <https://evil.example/v2/app/referrers/x?page=1>; rel=\"next\"\r\n",
                empty_index,
            ),
            _ => respond("404 Not Found", "", b"404 page not found"),
        }
    } else if mode.on_referrers() && path.contains("/manifests/") && path.contains(".sig") {
        respond("404 Not Found", "", b"")
    } else if !path.contains(".sig") && path.contains("/manifests/") {
        respond("200 OK", &format!("Docker-Content-Digest: {}\r\n", Digest::of(b"image")), b"{}")
    } else if path.contains("/blobs/") {
        respond("200 OK", "", &blob)
    } else {
        match mode {
            Misbehaviour::HugeDeclared => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n{").await;
                let _ = stream.write_all(&vec![b' '; 1 << 20]).await;
                return;
            }
            Misbehaviour::HugeChunked => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                let chunk = vec![b' '; 64 << 10];
                for _ in 0..128 {
                    let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
                    c.extend_from_slice(&chunk);
                    c.extend_from_slice(b"\r\n");
                    if stream.write_all(&c).await.is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
                return;
            }
            Misbehaviour::Hang => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            Misbehaviour::Garbage => respond("200 OK", "", b"<html>welcome to nginx</html>"),
            Misbehaviour::ServerError => respond("500 Internal Server Error", "", b"oops"),
            Misbehaviour::ReferrersGarbage | Misbehaviour::ReferrersEndless | Misbehaviour::ReferrersOffsite => {
                respond("404 Not Found", "", b"")
            }
            Misbehaviour::TooManySignatures | Misbehaviour::BlobMismatch => {
                let count = if matches!(mode, Misbehaviour::TooManySignatures) { 1000 } else { 1 };
                let layer = json!({
                    "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                    "digest": Digest::of(b"something else").as_str(),
                    "size": blob.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}
                });
                let manifest = json!({"schemaVersion": 2, "layers": vec![layer; count]});
                respond("200 OK", "", &serde_json::to_vec(&manifest).unwrap())
            }
        }
    };
    let _ = stream.write_all(&out).await;
}

async fn decide(addr: &str, registry_timeout: Duration, deadline: Duration) -> (Decision, Duration) {
    let key = KEY.replace('\n', "\n            ");
    let yaml = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {{name: release}}\nspec:\n  images: [{{glob: \"{addr}/**\"}}]\n  signatures:\n    authorities:\n      - name: release-key\n        key:\n          publicKey: |\n            {key}\n"
    );
    let (policies, errors) = parse_documents(&yaml);
    assert!(errors.is_empty(), "{errors:?}");
    let metrics = Arc::new(Metrics::default());
    let config = RegistryConfig {
        insecure: vec![addr.to_owned()],
        timeout: registry_timeout,
        limits: Limits::default(),
        ..Default::default()
    };
    let engine = Arc::new(Engine::new(
        PolicySet::new(policies),
        Arc::new(RegistryClient::new(config, metrics.clone()).unwrap()),
        Caches::new(CacheConfig::default()),
        Unmatched::Deny,
        metrics,
    ));
    let image = WorkloadImage {
        path: "spec.containers[0].image".into(),
        container: "app".into(),
        image: format!("{addr}/app:v1"),
    };
    // The deadlines measured here must not be shared with a flood.
    let _machine = crate::common::machine::shared();
    let started = Instant::now();
    let decision = engine.evaluate(&[image], &Labels::new(), started + deadline).await;
    (decision, started.elapsed())
}

async fn denial(mode: Misbehaviour) -> String {
    let (addr, server) = fake_registry(mode).await;
    let (decision, elapsed) = decide(&addr, Duration::from_secs(2), Duration::from_secs(5)).await;
    server.abort();
    assert!(!decision.allowed, "{mode:?} must deny");
    assert!(elapsed < Duration::from_secs(5), "{mode:?} took {elapsed:?}");
    assert_eq!(decision.denials.len(), 1, "{:?}", decision.denials);
    let line = decision.denials[0].clone();
    assert!(!line.contains("no signature found"), "{mode:?} must not look unsigned: {line}");
    line
}

#[tokio::test]
async fn a_declared_oversized_manifest_is_refused_unread() {
    let line = denial(Misbehaviour::HugeDeclared).await;
    assert!(line.ends_with("sent a signature manifest over trustgate's cap of 4194304 bytes"), "{line}");
}

#[tokio::test]
async fn an_undeclared_oversized_manifest_is_cut_off_at_the_cap() {
    let line = denial(Misbehaviour::HugeChunked).await;
    assert!(line.ends_with("sent a signature manifest over trustgate's cap of 4194304 bytes"), "{line}");
}

#[tokio::test]
async fn garbage_is_an_invalid_response() {
    let line = denial(Misbehaviour::Garbage).await;
    assert!(line.contains("could not evaluate: registry 127.0.0.1:"), "{line}");
    assert!(line.contains("sent an invalid signature manifest: expected value"), "{line}");
}

#[tokio::test]
async fn a_server_error_is_a_registry_error() {
    let line = denial(Misbehaviour::ServerError).await;
    assert!(line.contains("answered HTTP 500 for the signature manifest"), "{line}");
}

#[tokio::test]
async fn too_many_signatures_are_refused() {
    let line = denial(Misbehaviour::TooManySignatures).await;
    assert!(line.contains("sent 1000 signatures for sha256:"), "{line}");
    assert!(line.ends_with("over trustgate's cap of 64 signatures"), "{line}");
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_digest_is_refused() {
    let line = denial(Misbehaviour::BlobMismatch).await;
    assert!(line.contains("sent an invalid signature payload: its content does not match its digest"), "{line}");
}

#[tokio::test]
async fn a_hanging_registry_times_out_per_request() {
    let (addr, server) = fake_registry(Misbehaviour::Hang).await;
    let (decision, elapsed) = decide(&addr, Duration::from_secs(1), Duration::from_secs(5)).await;
    server.abort();
    assert!(!decision.allowed);
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(decision.denials[0].ends_with("did not answer within 1s"), "{}", decision.denials[0]);
}

#[tokio::test]
async fn a_hanging_registry_cannot_outlast_the_admission_deadline() {
    let (addr, server) = fake_registry(Misbehaviour::Hang).await;
    let (decision, elapsed) = decide(&addr, Duration::from_secs(30), Duration::from_millis(500)).await;
    server.abort();
    assert!(!decision.allowed);
    assert!(elapsed < Duration::from_millis(900), "answered after {elapsed:?}");
    assert!(
        decision.denials[0].contains("could not evaluate within the 500ms admission deadline"),
        "{}",
        decision.denials[0]
    );
}

#[tokio::test]
async fn an_unreachable_registry_is_named() {
    // Bind and drop to get a port nothing listens on.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    let (decision, _) = decide(&addr, Duration::from_secs(2), Duration::from_secs(5)).await;
    assert!(!decision.allowed);
    assert!(
        decision.denials[0].contains(&format!("could not evaluate: registry {addr} is unreachable")),
        "{}",
        decision.denials[0]
    );
}

#[tokio::test]
async fn a_garbage_referrers_list_is_an_invalid_response() {
    let line = denial(Misbehaviour::ReferrersGarbage).await;
    assert!(line.contains("sent an invalid referrers list: expected value"), "{line}");
}

#[tokio::test]
async fn endless_referrer_pages_stop_at_the_cap() {
    let line = denial(Misbehaviour::ReferrersEndless).await;
    assert!(line.contains("sent more than 8 pages of referrers for sha256:"), "{line}");
}

#[tokio::test]
async fn a_referrers_page_on_another_host_is_not_followed() {
    let line = denial(Misbehaviour::ReferrersOffsite).await;
    assert!(
        line.contains("its next page \"https://evil.example/v2/app/referrers/x?page=1\" is not a referrers URL of this repository on this registry"),
        "{line}"
    );
}

/// A registry that lists 40 attestations of 2 MiB each (each under the 32 MiB per-envelope cap,
/// 80 MiB together) and serves every one of them correctly. A real registry would do this just
/// as well; the fake only saves pushing 80 MiB through cosign. At most 48 MiB are read: the
/// envelopes past the per-image budget come back unread, marked over the cap, and are never
/// even requested.
#[tokio::test]
async fn attestations_past_the_per_image_budget_are_not_read() {
    use trustgate::evidence::Registry as _;
    const LAYERS: usize = 40;
    const SIZE: usize = 2 << 20;
    let blobs: Arc<std::collections::HashMap<String, Vec<u8>>> = Arc::new(
        (0..LAYERS).map(|i| vec![b'a' + i as u8; SIZE]).map(|b| (Digest::of(&b).as_str().to_owned(), b)).collect(),
    );
    let manifest = json!({"schemaVersion": 2, "layers": blobs.keys().map(|d| json!({
        "mediaType": "application/vnd.dsse.envelope.v1+json", "digest": d, "size": SIZE
    })).collect::<Vec<_>>()});
    let manifest = Arc::new(serde_json::to_vec(&manifest).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (blobs2, served2) = (blobs.clone(), served.clone());
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (blobs, manifest, served) = (blobs2.clone(), manifest.clone(), served2.clone());
            tokio::spawn(async move {
                let Some(path) = request_path(&mut stream).await else { return };
                let body: &[u8] = if path.ends_with(".att") {
                    &manifest
                } else if let Some(blob) = path.rsplit('/').next().and_then(|d| blobs.get(d)) {
                    served.fetch_add(blob.len(), std::sync::atomic::Ordering::SeqCst);
                    blob
                } else {
                    b"{}"
                };
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body).await;
            });
        }
    });
    let config = RegistryConfig {
        insecure: vec![addr.clone()],
        timeout: Duration::from_secs(10),
        limits: Limits::default(),
        ..Default::default()
    };
    let client = RegistryClient::new(config, Arc::new(Metrics::default())).unwrap();
    let image = trustgate::images::ImageRef::parse(&format!("{addr}/app:v1")).unwrap();
    let charge = trustgate::evidence::Charge::standalone(Default::default());
    let fetch = trustgate::evidence::Fetch { pull: &Default::default(), charge: &charge };
    let layers = client.attestations(&image, &Digest::of(b"image"), fetch).await.unwrap();
    server.abort();
    assert_eq!(layers.len(), LAYERS);
    let read: Vec<_> = layers.iter().filter(|l| l.too_large.is_none()).collect();
    let unread: Vec<_> = layers.iter().filter_map(|l| l.too_large.as_deref()).collect();
    assert_eq!(read.len(), 24, "48 MiB of 2 MiB envelopes");
    assert!(read.iter().all(|l| l.envelope.len() == SIZE && blobs[l.digest.as_str()] == l.envelope));
    assert_eq!(unread.len(), 16);
    assert!(
        unread[0].contains("sent an attestation of 2 MiB over trustgate's cap of 48 MiB of evidence per image"),
        "{}",
        unread[0]
    );
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 24 * SIZE, "nothing past the budget is fetched");
}

//! The webhook over real TLS on loopback: the handshake the API server makes (TLS 1.3,
//! HTTP/1.1, post-quantum key exchange), certificate rotation without dropping the listener,
//! graceful shutdown, and admission of real cosign-signed images from the real registry.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use trustgate::evidence::RegistryConfig;
use trustgate::server::tls::{self_signed, SelfSigned};
use trustgate::server::{AppState, BoundServer, CertSource, Settings};

use crate::common::cosign::{KeyPair, KeyType};
use crate::common::registry::Registry;
use crate::common::review::{connect, post_review};

fn state(policies: &str, insecure: Vec<String>) -> AppState {
    let registry = RegistryConfig { insecure, timeout: Duration::from_secs(3), ..Default::default() };
    crate::common::webhook::app_state(policies, registry, Settings::default())
}

/// A running server and the means to stop it.
struct Running {
    addr: SocketAddr,
    probe: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(certs: CertSource, state: AppState) -> Running {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let bound = BoundServer::bind(loopback, loopback, certs, state).await.unwrap();
        let (addr, probe) = bound.local_addrs();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(bound.run(async move {
            let _ = rx.await;
        }));
        Running { addr, probe, stop: Some(tx), task }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.task).await.expect("server stops").unwrap();
    }
}

fn pod_review(image: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "4b1f0c7e-2f9c-4b8e-9a51-7d0f1d3e2a10",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "api", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "dev"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api", "namespace": "shop"},
                       "spec": {"containers": [{"name": "api", "image": image}]}},
            "oldObject": null, "dryRun": false
        }
    })
}

fn write_pair(dir: &Path, cert_pem: &str, key_pem: &str) {
    // Write to temporaries and rename, as a Secret volume update does.
    std::fs::write(dir.join("tls.crt.tmp"), cert_pem).unwrap();
    std::fs::write(dir.join("tls.key.tmp"), key_pem).unwrap();
    std::fs::rename(dir.join("tls.key.tmp"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("tls.crt.tmp"), dir.join("tls.crt")).unwrap();
}

/// Writes a generated pair into `dir` and serves it from there, reloading every `interval`.
fn file_certs(dir: &Path, pair: &SelfSigned, interval: Duration) -> CertSource {
    write_pair(dir, &pair.cert_pem, &pair.key_pem);
    CertSource::Files { cert: dir.join("tls.crt"), key: dir.join("tls.key"), reload_interval: interval }
}

const ALLOW_ALL: &str = "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {name: all}\nspec:\n  images: [{glob: \"**\"}]\n";

#[tokio::test]
async fn tls13_with_post_quantum_key_exchange_and_http11() {
    let generated = self_signed(&["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = file_certs(dir.path(), &generated, Duration::from_millis(100));
    let server = Running::start(certs, state(ALLOW_ALL, vec![])).await;
    let (mut sender, group, version) = connect(server.addr, &generated.ca_pem).await.unwrap();
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(group, rustls::NamedGroup::X25519MLKEM768, "aws-lc-rs offers and prefers the hybrid PQ group");
    let response = post_review(&mut sender, &pod_review("nginx")).await;
    assert_eq!(response["allowed"], true);
    server.stop().await;
}

#[tokio::test]
async fn certificates_rotate_without_dropping_the_listener_or_open_connections() {
    let first = self_signed(&["localhost".into()]).unwrap();
    let second = self_signed(&["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = file_certs(dir.path(), &first, Duration::from_millis(100));
    let server = Running::start(certs, state(ALLOW_ALL, vec![])).await;
    let (mut kept, _, _) = connect(server.addr, &first.ca_pem).await.unwrap();
    assert_eq!(post_review(&mut kept, &pod_review("nginx")).await["allowed"], true);

    // A half-written pair is ignored: the old certificate keeps serving.
    std::fs::write(dir.path().join("tls.key"), "-----BEGIN PRIVATE KEY-----\ngarbage").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(connect(server.addr, &first.ca_pem).await.is_ok(), "a broken file must not take serving down");

    write_pair(dir.path(), &second.cert_pem, &second.key_pem);
    let mut rotated = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if connect(server.addr, &second.ca_pem).await.is_ok() {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the new certificate is served on the same port");
    let err = connect(server.addr, &first.ca_pem).await.expect_err("the old CA no longer verifies new handshakes");
    assert!(err.contains("invalid peer certificate"), "{err}");
    // The keep-alive connection made before the rotation still works.
    assert_eq!(post_review(&mut kept, &pod_review("nginx")).await["allowed"], true);
    server.stop().await;
}

#[tokio::test]
async fn ready_while_serving_and_graceful_on_shutdown() {
    let generated = self_signed(&["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_out = dir.path().join("ca.pem");
    let s = state(ALLOW_ALL, vec![]);
    let serving = s.serving.clone();
    let server =
        Running::start(CertSource::SelfSigned { names: vec!["localhost".into()], ca_out: ca_out.clone() }, s).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(serving.load(std::sync::atomic::Ordering::Acquire));
    let ca = std::fs::read_to_string(&ca_out).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(ca, generated.ca_pem);
    let (mut sender, _, _) = connect(server.addr, &ca).await.unwrap();
    assert_eq!(post_review(&mut sender, &pod_review("nginx")).await["allowed"], true);
    let probe = tokio::net::TcpStream::connect(server.probe).await;
    assert!(probe.is_ok());
    let addr = server.addr;
    server.stop().await;
    assert!(!serving.load(std::sync::atomic::Ordering::Acquire), "not ready once shutting down");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cosign_signatures_decide_over_tls() {
    let (registry, key, other, signed, unsigned, wrong) = tokio::task::spawn_blocking(|| {
        let registry = Registry::start();
        let key = KeyPair::generate(KeyType::P256);
        let other = KeyPair::generate(KeyType::P256);
        let signed = registry.push_image("shop/api", "v1");
        key.sign(&signed.digest_ref);
        let unsigned = registry.push_image("shop/api", "v2");
        let wrong = registry.push_image("shop/api", "v3");
        other.sign(&wrong.digest_ref);
        (registry, key, other, signed, unsigned, wrong)
    })
    .await
    .unwrap();
    let _ = &other;
    let pem = key.public_key_pem.trim().replace('\n', "\n            ");
    let policy = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {{name: shop-release}}\nspec:\n  images: [{{glob: \"{}/shop/**\"}}]\n  signatures:\n    authorities:\n      - name: release-key\n        key:\n          publicKey: |\n            {pem}\n",
        registry.addr
    );
    let generated = self_signed(&["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = file_certs(dir.path(), &generated, Duration::from_secs(2));
    let server = Running::start(certs, state(&policy, vec![registry.addr.clone()])).await;
    let (mut sender, _, _) = connect(server.addr, &generated.ca_pem).await.unwrap();

    let response = post_review(&mut sender, &pod_review(&signed.tag_ref)).await;
    assert_eq!(response["allowed"], true, "{response}");

    let response = post_review(&mut sender, &pod_review(&unsigned.tag_ref)).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "trustgate denied Pod shop/api:\n  spec.containers[0].image {} ({}): policy \"shop-release\": no signature found; \
             the policy requires one verified by [release-key]; sign with: cosign sign --key <key> {}",
            unsigned.tag_ref, unsigned.digest, unsigned.digest_ref
        )
    );

    let response = post_review(&mut sender, &pod_review(&wrong.digest_ref)).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("1 signature found, none verified by any of [release-key]"), "{message}");
    server.stop().await;
    drop(registry);
}

/// Each registry request waits for a turn of its host; no request may wait for one while it
/// holds another. Before that rule, the referrers lookup held its turn while it fell back to the
/// `sha256-<hex>` tag (a registry without the referrers API, as distribution 2.8 is), so 16 images
/// at once held all 16 turns of the host and waited for a 17th until the request timeout: a Pod
/// of 20 signed images was denied "trustgate is busy". With one turn per host, any such wait is a
/// deadlock at once; every image of the Pod must verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_registry_request_waits_for_a_turn_while_holding_one() {
    let (registry, key, images) = tokio::task::spawn_blocking(|| {
        let registry = Registry::start();
        let key = KeyPair::generate(KeyType::P256);
        let images: Vec<_> = registry.push_minimal_images("shop/api", 3, 1);
        let refs: Vec<String> = images.iter().map(|i| i.digest_ref.clone()).collect();
        key.sign_all(&refs, 10, 1);
        (registry, key, images)
    })
    .await
    .unwrap();
    let pem = key.public_key_pem.trim().replace('\n', "\n            ");
    let policy = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {{name: shop-release}}\nspec:\n  images: [{{glob: \"{}/shop/**\"}}]\n  signatures:\n    authorities:\n      - name: release-key\n        key:\n          publicKey: |\n            {pem}\n",
        registry.addr
    );
    let config = RegistryConfig {
        insecure: vec![registry.addr.clone()],
        timeout: Duration::from_secs(3),
        limits: trustgate::evidence::Limits { requests_per_host: 1, ..Default::default() },
        ..Default::default()
    };
    let state = crate::common::webhook::app_state(&policy, config, Settings::default());
    let generated = self_signed(&["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(file_certs(dir.path(), &generated, Duration::from_secs(2)), state).await;
    let (mut sender, _, _) = connect(server.addr, &generated.ca_pem).await.unwrap();
    // By tag (a resolve first) and by digest, all in one Pod.
    let mut refs: Vec<String> = images.iter().map(|i| i.tag_ref.clone()).collect();
    refs.extend(images.iter().map(|i| i.digest_ref.clone()));
    let started = std::time::Instant::now();
    let response = post_review(&mut sender, &crate::common::review::pod_review("one-turn", &refs)).await;
    let elapsed = started.elapsed();
    assert_eq!(response["allowed"], true, "{response}");
    assert!(elapsed < Duration::from_secs(3), "answered after {elapsed:?}: a request waited out its timeout");
    server.stop().await;
}

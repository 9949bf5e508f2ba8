//! AdmissionReviews, and sending them as the API server does: TLS 1.3 to the service name with
//! the CA bundle, HTTP/1.1 keep-alive. [`pod_review`] builds a Pod CREATE review;
//! [`connect`] opens one connection and [`post`] / [`post_review`] send reviews on it.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};

/// One kept-alive HTTP/1.1 connection to the webhook.
pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A Pod CREATE AdmissionReview (namespace `shop`, Pod `flood`) running `images`, one container
/// each (`c0`, `c1`, …).
pub fn pod_review(uid: &str, images: &[String]) -> Value {
    let containers: Vec<Value> =
        images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "flood",
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "developer"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "flood", "namespace": "shop"},
                "spec": {"containers": containers}
            },
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// Connects like the API server: TLS to the name `localhost` at `addr`, verified against
/// `ca_pem`, ALPN `http/1.1`. Returns the connection with the key exchange group and protocol
/// version negotiated.
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
) -> Result<(Sender, rustls::NamedGroup, rustls::ProtocolVersion), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("a valid name"), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    let group = conn.negotiated_key_exchange_group().ok_or("no key exchange group")?.name();
    let version = conn.protocol_version().ok_or("no protocol version")?;
    if conn.alpn_protocol() != Some(&b"http/1.1"[..]) {
        return Err(format!("ALPN {:?}, not http/1.1", conn.alpn_protocol()));
    }
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok((sender, group, version))
}

/// POSTs `body` (JSON) to `path` on the connection; the status and the whole answer.
pub async fn post(sender: &mut Sender, path: &str, body: Bytes) -> Result<(u16, Bytes), String> {
    let request = hyper::Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}

/// POSTs `review` to `/validate?timeout=5s`; panics unless the answer is HTTP 200 with JSON.
/// Returns the answer's `response`.
pub async fn post_review(sender: &mut Sender, review: &Value) -> Value {
    let body = Bytes::from(serde_json::to_vec(review).expect("serialize review"));
    let (status, answer) = post(sender, "/validate?timeout=5s", body).await.expect("POST /validate");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    serde_json::from_slice::<Value>(&answer).expect("an AdmissionReview")["response"].clone()
}

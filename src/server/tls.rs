//! Serving TLS: rustls with the aws-lc-rs provider (TLS 1.2 and 1.3, post-quantum
//! X25519MLKEM768 preferred), HTTP/1.1 only, a certificate that reloads when its files
//! change, or a self-generated CA and certificate for local use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Loading or generating serving certificates failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no usable PEM private key")]
    NoKey { path: PathBuf },
    #[error("the key in {path} does not fit the certificate or is unsupported: {message}")]
    BadKey { path: PathBuf, message: String },
    #[error("generating a self-signed certificate")]
    Generate(#[source] rcgen::Error),
    #[error("writing the self-signed CA to {path}")]
    WriteCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuring TLS")]
    Config(#[source] rustls::Error),
}

/// The serving certificate, swapped in place when it changes.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertResolver {
    pub fn new(key: CertifiedKey) -> Arc<Self> {
        Arc::new(CertResolver { current: ArcSwap::from_pointee(key) })
    }

    /// Replaces the certificate for new handshakes; open connections keep theirs.
    pub fn replace(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A rustls server config over `resolver`, speaking HTTP/1.1 only (the API server forces it).
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Loads a PEM certificate chain and private key.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|source| TlsError::Read { path: p.into(), source });
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    certified_key(&cert_pem, cert_path, &key_pem, key_path)
}

fn certified_key(cert_pem: &[u8], cert_path: &Path, key_pem: &[u8], key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut &cert_pem[..]).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path.into() });
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey { path: key_path.into() })?;
    CertifiedKey::from_der(certs, key, &provider())
        .map_err(|e| TlsError::BadKey { path: key_path.into(), message: e.to_string() })
}

/// Watches the certificate files and swaps them into `resolver` when they change. A bad
/// new pair (half-written, mismatched) is logged and the old certificate kept.
pub async fn watch(resolver: Arc<CertResolver>, cert_path: PathBuf, key_path: PathBuf, interval: Duration) {
    type Stamp = Option<(SystemTime, u64)>;
    let stamp = |p: &Path| -> Stamp { std::fs::metadata(p).and_then(|m| Ok((m.modified()?, m.len()))).ok() };
    let mut last = (stamp(&cert_path), stamp(&key_path));
    loop {
        tokio::time::sleep(interval).await;
        let now = (stamp(&cert_path), stamp(&key_path));
        if now == last {
            continue;
        }
        match load(&cert_path, &key_path) {
            Ok(key) => {
                resolver.replace(key);
                last = now;
                tracing::info!(cert = %cert_path.display(), "serving certificate reloaded");
            }
            Err(e) => {
                let error = error_chain(&e);
                tracing::warn!(%error, "serving certificate changed but could not be loaded; keeping the old one");
            }
        }
    }
}

fn error_chain(e: &TlsError) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

/// A CA and a serving certificate it signed, both generated in memory.
pub struct SelfSigned {
    /// The CA certificate (PEM), for clients to trust.
    pub ca_pem: String,
    pub key: CertifiedKey,
    /// Serving certificate and key (PEM), for tests that want files.
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and a serving certificate for `names` (DNS names or IP addresses).
pub fn self_signed(names: &[String]) -> Result<SelfSigned, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Generate)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(TlsError::Generate)?;
    // A name of its own per CA, so a client holding another generation's CA is told "unknown
    // issuer" rather than "bad signature".
    let id: String = crate::images::Digest::of(ca_key.public_key_pem().as_bytes()).hex().chars().take(12).collect();
    ca_params.distinguished_name.push(DnType::CommonName, format!("trustgate self-signed CA {id}"));
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(TlsError::Generate)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(TlsError::Generate)?;
    params.distinguished_name.push(DnType::CommonName, names.first().map_or("trustgate", String::as_str));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let leaf = params.signed_by(&leaf_key, &ca).map_err(TlsError::Generate)?;
    let cert_pem = format!("{}{}", leaf.pem(), ca.pem());
    let key_pem = leaf_key.serialize_pem();
    let key =
        certified_key(cert_pem.as_bytes(), Path::new("<generated>"), key_pem.as_bytes(), Path::new("<generated>"))?;
    Ok(SelfSigned { ca_pem: ca.pem(), key, cert_pem, key_pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pairs_load_and_mismatches_are_named() {
        let a = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let b = self_signed(&["localhost".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, &a.cert_pem).unwrap();
        std::fs::write(&key, &a.key_pem).unwrap();
        assert!(load(&cert, &key).is_ok());
        std::fs::write(&key, &b.key_pem).unwrap();
        assert!(matches!(load(&cert, &key), Err(TlsError::BadKey { .. })));
        std::fs::write(&key, "garbage").unwrap();
        assert!(matches!(load(&cert, &key), Err(TlsError::NoKey { .. })));
        assert!(matches!(load(&dir.path().join("missing"), &key), Err(TlsError::Read { .. })));
    }
}

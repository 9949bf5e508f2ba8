//! The HTTP side of [`Registry`]: the OCI distribution API, with token auth, caps on every
//! byte read, and errors that say which registry failed and how.

mod http;
mod referrers;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::try_join_all;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_LENGTH, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::{parse_challenge, Challenge, Credentials};
use super::budget::Held;
use super::{AttestationLayer, BundleLayer, ClassicMaterial, Fetch, Registry, RegistryError, SignatureLayer};
use crate::images::{Digest, ImageRef, DEFAULT_REGISTRY};
use crate::metrics::Metrics;
use http::{token_ttl, Token, TokenResponse};
use referrers::{bundle_candidates, bundle_layer};

/// Media types of image manifests and indexes we ask for.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// The layer media type of a classic cosign signature.
const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer media type of a classic cosign attestation.
const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The OCI image index (a referrers list, a fallback tag) and image manifest media types.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The empty config of an artifact manifest, which lax registries report as its artifactType.
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Largest referrer (bundle artifact) manifest read; cosign's are under 1 KiB.
const REFERRER_MANIFEST_BYTES: usize = 64 << 10;
/// Most referrer list pages followed, and most descriptors read in all of them.
const REFERRER_PAGES: usize = 8;
const REFERRER_DESCRIPTORS: usize = 256;

/// Is `media_type` a sigstore bundle's (v0.1–v0.3, both spellings)?
fn is_bundle_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.dev.sigstore.bundle.v0.3+json"
            | "application/vnd.dev.sigstore.bundle.v0.2+json"
            | "application/vnd.dev.sigstore.bundle.v0.1+json"
            | "application/vnd.dev.sigstore.bundle+json;version=0.3"
            | "application/vnd.dev.sigstore.bundle+json;version=0.2"
            | "application/vnd.dev.sigstore.bundle+json;version=0.1"
    )
}

/// The annotation holding a classic cosign signature.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Caps on what is read from a registry. A registry is not trusted to be small or honest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest read (bytes).
    pub manifest_bytes: usize,
    /// Largest signature payload read (bytes).
    pub payload_bytes: usize,
    /// Most signatures (and, separately, attestations) examined per image.
    pub signatures: usize,
    /// Largest attestation (DSSE envelope) or sigstore bundle read (bytes); SBOMs are the
    /// large ones. What one image, one review and the process may hold in all is
    /// [`super::MemoryLimits`]'.
    pub attestation_bytes: usize,
    /// Requests in flight to one registry host at once; more wait their turn.
    pub requests_per_host: usize,
    /// Requests in flight to all registries at once.
    pub requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            manifest_bytes: 4 << 20,
            payload_bytes: 256 << 10,
            signatures: 64,
            attestation_bytes: 32 << 20,
            requests_per_host: 16,
            requests: 128,
        }
    }
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Hosts (`HOST:PORT`) reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Extra PEM CA bundles to trust for registry TLS.
    pub ca_files: Vec<PathBuf>,
    pub credentials: Credentials,
    /// Deadline of each registry request, connection included.
    pub timeout: Duration,
    pub limits: Limits,
}

/// Building the HTTP client failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    #[error("reading registry CA file {path}")]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry CA file {path} holds no usable PEM certificate")]
    BadCa { path: PathBuf },
    #[error("building the registry HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("configuring registry TLS")]
    Tls(#[source] rustls::Error),
}

/// Registry host, repository, and which credentials the token was issued for (a digest of
/// them, so a pull secret's token is never used for a workload without it).
type TokenScope = (String, String, String);

/// The pull token of one scope. Held across a token fetch, so concurrent requests of one
/// repository wait for that fetch instead of each making their own.
type TokenSlot = tokio::sync::Mutex<Option<Token>>;

/// "a signature payload", "an attestation".
fn article(what: &str) -> String {
    let an = what.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {what}", if an { "an" } else { "a" })
}

/// A [`Registry`] over HTTPS (or HTTP for `--insecure-registry` hosts).
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    insecure: HashSet<String>,
    credentials: Credentials,
    timeout: Duration,
    limits: Limits,
    tokens: Mutex<HashMap<TokenScope, Arc<TokenSlot>>>,
    /// Turns for requests, per registry host and for all of them: a review of thousands of
    /// images on a registry that never answers holds a few sockets, not thousands.
    host_turns: Mutex<HashMap<String, Arc<Semaphore>>>,
    turns: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// A referrers list or a referrers fallback tag.
#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    artifact_type: Option<String>,
}

impl RegistryClient {
    /// Builds a client; the TLS stack is rustls with the aws-lc-rs provider and the Mozilla
    /// roots, plus any `ca_files`.
    pub fn new(config: RegistryConfig, metrics: Arc<Metrics>) -> Result<Self, RegistryConfigError> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for path in &config.ca_files {
            let pem =
                std::fs::read(path).map_err(|source| RegistryConfigError::ReadCa { path: path.clone(), source })?;
            let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok).collect();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(RegistryConfigError::BadCa { path: path.clone() });
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(RegistryConfigError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(3)))
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("trustgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(RegistryConfigError::Client)?;
        Ok(RegistryClient {
            http,
            // Spelled as image references are, so `LOCALHOST:05000` names `localhost:5000`.
            insecure: config
                .insecure
                .iter()
                .map(|h| crate::images::canonical_host(h).unwrap_or_else(|_| h.clone()))
                .collect(),
            credentials: config.credentials,
            timeout: config.timeout,
            limits: config.limits,
            tokens: Mutex::default(),
            host_turns: Mutex::default(),
            turns: Arc::new(Semaphore::new(config.limits.requests.max(1))),
            metrics,
        })
    }

    /// The layers of `media_type` in the manifest tagged `tag`, at most `self.limits.signatures`
    /// of them; empty when the tag does not exist.
    async fn evidence_layers(
        &self,
        image: &ImageRef,
        digest: &Digest,
        tag: &str,
        media_type: &str,
        what: &'static str,
        fetch: Fetch<'_>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let path = format!("manifests/{tag}");
        let response = self.call(what, image, Method::GET, &path, Some(MANIFEST_ACCEPT), fetch).await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(Vec::new()),
            s if s.is_success() => {}
            s => return Err(Self::status_error(image, &path, &format!("the {what} manifest"), s)),
        }
        let (body, _held) = self
            .read_capped(&image.registry, response, self.limits.manifest_bytes, &format!("a {what} manifest"), fetch)
            .await?;
        let manifest: Manifest =
            serde_json::from_slice(&body).map_err(|e| self.invalid(image, &format!("{what} manifest"), e))?;
        let layers: Vec<Descriptor> = manifest.layers.into_iter().filter(|l| l.media_type == media_type).collect();
        if layers.len() > self.limits.signatures {
            return Err(RegistryError::TooLarge {
                host: image.registry.clone(),
                what: format!("{} {what}s for {digest}", layers.len()),
                limit: format!("{} {what}s", self.limits.signatures),
            });
        }
        Ok(layers)
    }
}

impl RegistryClient {
    /// What the client makes of one registry answer, without the network: `body` read as an
    /// image or evidence manifest, a referrers list or index and a token response, `link` as a
    /// referrers `Link` header, each as the client does when it reads them. The entry point of
    /// the fuzz targets (`fuzz/`); not an API. Returns how many descriptors it accepted.
    #[doc(hidden)]
    pub fn read_answer_offline(&self, image: &ImageRef, digest: &Digest, body: &[u8], link: &str) -> usize {
        let mut accepted = 0;
        if let Ok(manifest) = serde_json::from_slice::<Manifest>(body) {
            for media_type in [SIMPLE_SIGNING_MEDIA_TYPE, DSSE_MEDIA_TYPE] {
                for layer in manifest.layers.iter().filter(|l| l.media_type == media_type) {
                    let _ = (
                        Digest::parse(&layer.digest),
                        classic_material(layer),
                        layer.annotations.get(SIGNATURE_ANNOTATION),
                    );
                    accepted += 1;
                }
            }
            accepted += usize::from(bundle_layer(&manifest, digest).is_some());
        }
        if let Ok(index) = serde_json::from_slice::<Index>(body) {
            accepted += bundle_candidates(&index.manifests).iter().filter(|d| Digest::parse(&d.digest).is_ok()).count();
        }
        if let Ok(token) = serde_json::from_slice::<TokenResponse>(body) {
            accepted += usize::from(Instant::now().checked_add(token_ttl(token.expires_in)).is_some());
        }
        accepted + self.next_page(image, link).ok().flatten().map_or(0, |_| 1)
    }
}

/// The keyless material cosign puts in a classic layer's annotations (capped: a certificate
/// chain and a log entry are a few KiB).
fn classic_material(layer: &Descriptor) -> ClassicMaterial {
    const MAX: usize = 64 << 10;
    let get = |name: &str| layer.annotations.get(name).filter(|v| v.len() <= MAX).cloned();
    ClassicMaterial {
        certificate: get("dev.sigstore.cosign/certificate"),
        chain: get("dev.sigstore.cosign/chain"),
        rekor_bundle: get("dev.sigstore.cosign/bundle"),
    }
}

#[async_trait]
impl Registry for RegistryClient {
    async fn resolve(&self, image: &ImageRef, fetch: Fetch<'_>) -> Result<Digest, RegistryError> {
        let tag = image.tag.as_deref().unwrap_or("latest");
        let path = format!("manifests/{tag}");
        let response = self.call("resolve", image, Method::HEAD, &path, Some(MANIFEST_ACCEPT), fetch).await?;
        if !response.status().is_success() {
            return Err(Self::status_error(image, &format!("tag {tag}"), "the image manifest", response.status()));
        }
        if let Some(d) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok())
        {
            return Ok(d);
        }
        // No digest header: hash the manifest itself (the HEAD's turn given back first, as no
        // call may wait for a turn while it holds one).
        drop(response);
        let response = self.call("resolve", image, Method::GET, &path, Some(MANIFEST_ACCEPT), fetch).await?;
        if !response.status().is_success() {
            return Err(Self::status_error(image, &format!("tag {tag}"), "the image manifest", response.status()));
        }
        let (body, _held) =
            self.read_capped(&image.registry, response, self.limits.manifest_bytes, "an image manifest", fetch).await?;
        Ok(Digest::of(&body))
    }

    async fn signatures(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<SignatureLayer>, RegistryError> {
        let tag = format!("sha256-{}.sig", digest.hex());
        let layers = self.evidence_layers(image, digest, &tag, SIMPLE_SIGNING_MEDIA_TYPE, "signature", fetch).await?;
        let limit = self.limits.payload_bytes;
        try_join_all(layers.iter().map(|l| async move {
            let (digest, payload) = self.blob(image, l, limit, "signature payload", fetch).await?;
            let signature = l.annotations.get(SIGNATURE_ANNOTATION).cloned().unwrap_or_default();
            Ok(SignatureLayer { digest, payload, signature, material: classic_material(l) })
        }))
        .await
    }

    async fn attestations(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<AttestationLayer>, RegistryError> {
        let tag = format!("sha256-{}.att", digest.hex());
        let layers = self.evidence_layers(image, digest, &tag, DSSE_MEDIA_TYPE, "attestation", fetch).await?;
        let limit = self.limits.attestation_bytes;
        try_join_all(layers.iter().map(|l| async move {
            match self.blob(image, l, limit, "attestation", fetch).await {
                Ok((digest, envelope)) => {
                    Ok(AttestationLayer { digest, envelope, too_large: None, material: classic_material(l) })
                }
                // One oversized envelope is that envelope's problem, not the image's: it is
                // reported as not accepted, and the others are still examined.
                Err(e @ RegistryError::TooLarge { .. }) => {
                    let digest = Digest::parse(&l.digest).unwrap_or_else(|_| Digest::of(l.digest.as_bytes()));
                    Ok(AttestationLayer {
                        digest,
                        envelope: Vec::new(),
                        too_large: Some(e.to_string()),
                        material: ClassicMaterial::default(),
                    })
                }
                Err(e) => Err(e),
            }
        }))
        .await
    }

    async fn bundles(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<BundleLayer>, RegistryError> {
        let referrers = self.referrers(image, digest, fetch).await?;
        // Descriptors are hints: keep image manifests that say they are bundles, or that say
        // nothing better (lax registries report the empty config type); the manifest decides.
        let candidates = bundle_candidates(&referrers);
        if candidates.len() > self.limits.signatures {
            return Err(RegistryError::TooLarge {
                host: image.registry.clone(),
                what: format!("{} sigstore bundles for {digest}", candidates.len()),
                limit: format!("{} bundles", self.limits.signatures),
            });
        }
        let found = try_join_all(candidates.into_iter().map(|d| self.bundle(image, digest, d, fetch))).await?;
        Ok(found.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token server cannot make a token last for ever, nor overflow the clock (an
    /// `expires_in` of u64::MAX once made `Instant::now() + ttl` panic).
    #[test]
    fn token_lifetimes_are_bounded() {
        assert_eq!(token_ttl(None), Duration::from_secs(50));
        assert_eq!(token_ttl(Some(0)), Duration::from_secs(10));
        assert_eq!(token_ttl(Some(300)), Duration::from_secs(290));
        assert_eq!(token_ttl(Some(u64::MAX)), Duration::from_secs(3600));
        let client = RegistryClient::new(RegistryConfig::default(), Arc::new(Metrics::default())).unwrap();
        let image = ImageRef::parse("registry.acme.io/app:v1").unwrap();
        let body = br#"{"token": "t", "expires_in": 18446744073709551615}"#;
        assert_eq!(client.read_answer_offline(&image, &Digest::of(b"x"), body, ""), 1);
    }
}

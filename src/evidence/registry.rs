//! The HTTP side of [`Registry`]: the OCI distribution API, with token auth, caps on every
//! byte read, and errors that say which registry failed and how.

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

/// What the token server last said for a scope.
enum Token {
    /// A token, and when it expires.
    Granted(Arc<str>, Instant),
    /// A refusal, remembered briefly so the requests that waited on the same fetch (a Pod's
    /// signatures, attestations and referrers are read at once) share it instead of each
    /// asking again.
    Refused(RegistryError, Instant),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never the token itself.
            Token::Granted(_, expiry) => f.debug_struct("Granted").field("expiry", expiry).finish_non_exhaustive(),
            Token::Refused(e, until) => f.debug_tuple("Refused").field(e).field(until).finish(),
        }
    }
}

/// How long a refused token is remembered: long enough for concurrent requests, short enough
/// that fixed credentials are used at once.
const REFUSAL_MEMORY: Duration = Duration::from_secs(2);

fn valid(token: &Option<Token>) -> Option<Arc<str>> {
    match token {
        Some(Token::Granted(t, expiry)) if *expiry > Instant::now() => Some(t.clone()),
        _ => None,
    }
}

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

/// A response, and the turn it holds until its body is read (or it is dropped).
struct Reply {
    response: reqwest::Response,
    _turn: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl std::ops::Deref for Reply {
    type Target = reqwest::Response;
    fn deref(&self) -> &reqwest::Response {
        &self.response
    }
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

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

enum Auth {
    Bearer(Arc<str>),
    Basic(String, String),
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

    fn base_url(&self, registry: &str) -> String {
        let scheme = if self.insecure.contains(registry) { "http" } else { "https" };
        let host = if registry == DEFAULT_REGISTRY { "registry-1.docker.io" } else { registry };
        format!("{scheme}://{host}")
    }

    /// A turn to send a request to `host`: one of its host's and one of the process's,
    /// waiting no longer than a request may take.
    async fn turn(&self, host: &str) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), RegistryError> {
        let per_host = {
            let mut turns = self.host_turns.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Hosts nobody is waiting on are forgotten, so a stream of new names stays bounded.
            if turns.len() >= 1024 {
                let free = self.limits.requests_per_host.max(1);
                turns.retain(|_, s| s.available_permits() < free || Arc::strong_count(s) > 1);
            }
            turns
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limits.requests_per_host.max(1))))
                .clone()
        };
        let busy = |what: String| RegistryError::Busy { budget: what, waited: self.timeout };
        let wait = |s: Arc<Semaphore>| tokio::time::timeout(self.timeout, s.acquire_owned());
        let host_turn =
            wait(per_host).await.ok().and_then(Result::ok).ok_or_else(|| {
                busy(format!("{} requests at once to registry {host}", self.limits.requests_per_host))
            })?;
        let turn = wait(self.turns.clone())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| busy(format!("{} registry requests at once", self.limits.requests)))?;
        Ok((host_turn, turn))
    }

    /// One registry API call, authenticating when challenged; records its outcome in metrics.
    async fn call(
        &self,
        op: &'static str,
        image: &ImageRef,
        method: Method,
        path: &str,
        accept: Option<&str>,
        fetch: Fetch<'_>,
    ) -> Result<Reply, RegistryError> {
        let start = Instant::now();
        let result = match self.turn(&image.registry).await {
            Ok(turn) => {
                self.call_inner(image, method, path, accept, fetch).await.map(|r| Reply { response: r, _turn: turn })
            }
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(r) if r.status().is_success() => "ok",
            Ok(r) if r.status() == StatusCode::NOT_FOUND => "not_found",
            Ok(_) => "error",
            Err(e) => e.kind(),
        };
        self.metrics.registry_call(op, outcome, start.elapsed());
        result
    }

    async fn call_inner(
        &self,
        image: &ImageRef,
        method: Method,
        path: &str,
        accept: Option<&str>,
        fetch: Fetch<'_>,
    ) -> Result<reqwest::Response, RegistryError> {
        let pull = fetch.pull;
        let url = format!("{}/v2/{}/{}", self.base_url(&image.registry), image.repository, path);
        // The workload's pull secret for this host, else the server's own credentials.
        let creds = pull.for_host(&image.registry).or_else(|| self.credentials.for_host(&image.registry)).cloned();
        let identity =
            creds.as_ref().map_or_else(String::new, |(u, p)| Digest::of(format!("{u}:{p}").as_bytes()).to_string());
        let slot = {
            let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            tokens.entry((image.registry.clone(), image.repository.clone(), identity)).or_default().clone()
        };
        // A slot locked by a fetch under way counts as empty here; the 401 path waits for it.
        let cached = slot.try_lock().ok().and_then(|t| valid(&t)).map(Auth::Bearer);
        let response = self.send(image, method.clone(), &url, accept, cached.as_ref()).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.check_denied(image, response);
        }
        let challenge =
            response.headers().get(WWW_AUTHENTICATE).and_then(|h| h.to_str().ok()).and_then(parse_challenge);
        let auth = match (challenge, creds) {
            (Some(Challenge::Bearer { realm, service }), creds) => {
                let mut held = slot.lock().await;
                if let Some(Token::Refused(e, until)) = &*held {
                    if *until > Instant::now() {
                        return Err(e.clone());
                    }
                }
                match valid(&held) {
                    Some(token) => Auth::Bearer(token),
                    None => match self.fetch_token(image, &realm, service.as_deref(), creds.as_ref(), fetch).await {
                        Ok((token, expiry)) => {
                            *held = Some(Token::Granted(token.clone(), expiry));
                            Auth::Bearer(token)
                        }
                        Err(e @ RegistryError::Unauthorized { .. }) => {
                            *held = Some(Token::Refused(e.clone(), Instant::now() + REFUSAL_MEMORY));
                            return Err(e);
                        }
                        Err(e) => return Err(e),
                    },
                }
            }
            (Some(Challenge::Basic), Some((u, p))) => Auth::Basic(u, p),
            _ => return Err(self.unauthorized(image, StatusCode::UNAUTHORIZED)),
        };
        let response = self.send(image, method, &url, accept, Some(&auth)).await?;
        self.check_denied(image, response)
    }

    fn check_denied(&self, image: &ImageRef, response: reqwest::Response) -> Result<reqwest::Response, RegistryError> {
        match response.status() {
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => Err(self.unauthorized(image, s)),
            _ => Ok(response),
        }
    }

    fn unauthorized(&self, image: &ImageRef, status: StatusCode) -> RegistryError {
        RegistryError::Unauthorized {
            host: image.registry.clone(),
            repository: image.repository.clone(),
            status: status.as_u16(),
        }
    }

    async fn send(
        &self,
        image: &ImageRef,
        method: Method,
        url: &str,
        accept: Option<&str>,
        auth: Option<&Auth>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut req = self.http.request(method, url);
        if let Some(a) = accept {
            // Our own constants; one that is not a valid header value is left out, not a panic.
            if let Ok(value) = HeaderValue::from_str(a) {
                req = req.header(ACCEPT, value);
            }
        }
        req = match auth {
            Some(Auth::Bearer(t)) => req.bearer_auth(t),
            Some(Auth::Basic(u, p)) => req.basic_auth(u, Some(p)),
            None => req,
        };
        req.send().await.map_err(|e| self.transport_error(&image.registry, &e))
    }

    async fn fetch_token(
        &self,
        image: &ImageRef,
        realm: &str,
        service: Option<&str>,
        creds: Option<&(String, String)>,
        fetch: Fetch<'_>,
    ) -> Result<(Arc<str>, Instant), RegistryError> {
        let start = Instant::now();
        // Credentials and tokens never travel in clear text to or from an HTTPS registry.
        if realm.starts_with("http://") && !self.insecure.contains(&image.registry) {
            return Err(self.invalid(
                image,
                "auth challenge",
                format!("token realm {realm} is not HTTPS; refusing to use it"),
            ));
        }
        let scope = format!("repository:{}:pull", image.repository);
        let mut query = vec![("scope", scope.as_str())];
        if let Some(s) = service {
            query.push(("service", s));
        }
        let mut req = self.http.get(realm).query(&query);
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        let result = async {
            let response = req.send().await.map_err(|e| self.transport_error(&image.registry, &e))?;
            match response.status() {
                s if s.is_success() => {}
                s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => return Err(self.unauthorized(image, s)),
                s => {
                    return Err(RegistryError::Status {
                        host: image.registry.clone(),
                        what: "a token".into(),
                        status: s.as_u16(),
                    })
                }
            }
            let (body, _held) =
                self.read_body(&image.registry, response, 64 << 10, "a token response", fetch, None).await?;
            let parsed: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| self.invalid(image, "token response", e))?;
            let token: Arc<str> = parsed
                .token
                .or(parsed.access_token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| RegistryError::Invalid {
                    host: image.registry.clone(),
                    what: "token response".into(),
                    detail: "no token".into(),
                })?
                .into();
            let ttl = token_ttl(parsed.expires_in);
            Ok((token, Instant::now().checked_add(ttl).unwrap_or_else(Instant::now)))
        }
        .await;
        self.metrics.registry_call(
            "token",
            result.as_ref().map_or_else(RegistryError::kind, |_| "ok"),
            start.elapsed(),
        );
        result
    }

    fn transport_error(&self, host: &str, e: &reqwest::Error) -> RegistryError {
        if e.is_timeout() {
            return RegistryError::Timeout { host: host.to_owned(), timeout: self.timeout };
        }
        // The innermost cause says it best ("Connection refused", "invalid peer certificate").
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        RegistryError::Unreachable { host: host.to_owned(), detail }
    }

    fn invalid(&self, image: &ImageRef, what: &str, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Invalid { host: image.registry.clone(), what: what.into(), detail: e.to_string() }
    }

    /// Reads a reply's body, refusing to buffer more than `limit` bytes whatever the registry
    /// claims, each byte charged before it is buffered; the request's turn ends with it.
    async fn read_capped(
        &self,
        host: &str,
        reply: Reply,
        limit: usize,
        what: &str,
        fetch: Fetch<'_>,
    ) -> Result<(Vec<u8>, Held), RegistryError> {
        let Reply { response, _turn } = reply;
        self.read_body(host, response, limit, what, fetch, None).await
    }

    /// [`RegistryClient::read_capped`] of a bare response; `held`: bytes charged for it already.
    async fn read_body(
        &self,
        host: &str,
        mut response: reqwest::Response,
        limit: usize,
        what: &str,
        fetch: Fetch<'_>,
        held: Option<Held>,
    ) -> Result<(Vec<u8>, Held), RegistryError> {
        let too_large = || RegistryError::TooLarge {
            host: host.to_owned(),
            what: what.to_owned(),
            limit: format!("{limit} bytes"),
        };
        let declared =
            response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        // What the registry says it sends is charged at once; without a length, 8 KiB to
        // start with and the buffer's growth as it comes.
        let initial = declared.unwrap_or(8192).min(limit);
        let mut held = match held {
            Some(h) => h,
            None => fetch.charge.take(initial, what, host).await?,
        };
        if held.bytes() < initial {
            held.merge(fetch.charge.take(initial.saturating_sub(held.bytes()), what, host).await?);
        }
        let mut body = Vec::with_capacity(initial);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(host, &e))? {
            let needed = body.len().checked_add(chunk.len()).filter(|&n| n <= limit).ok_or_else(too_large)?;
            if needed > held.bytes() {
                let grown = needed.max(held.bytes().saturating_mul(2)).min(limit);
                held.merge(fetch.charge.take(grown.saturating_sub(held.bytes()), what, host).await?);
                body.reserve_exact(grown.saturating_sub(body.len()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, held))
    }

    fn status_error(image: &ImageRef, reference: &str, what: &str, status: StatusCode) -> RegistryError {
        if status == StatusCode::NOT_FOUND {
            RegistryError::NotFound { repository: image.repository_name(), reference: reference.to_owned() }
        } else {
            RegistryError::Status { host: image.registry.clone(), what: what.to_owned(), status: status.as_u16() }
        }
    }

    /// A blob named by `layer`, at most `limit` bytes (and no more than it declares), checked
    /// against its digest. Its bytes stay charged to the image until its evaluation ends.
    async fn blob(
        &self,
        image: &ImageRef,
        layer: &Descriptor,
        limit: usize,
        what: &str,
        fetch: Fetch<'_>,
    ) -> Result<(Digest, Vec<u8>), RegistryError> {
        let digest = Digest::parse(&layer.digest).map_err(|e| self.invalid(image, &format!("{what} digest"), e))?;
        let too_large = || RegistryError::TooLarge {
            host: image.registry.clone(),
            what: article(what),
            limit: format!("{limit} bytes"),
        };
        let declared = usize::try_from(layer.size).map_err(|_| too_large())?;
        if declared > limit {
            return Err(too_large());
        }
        // Charged before it is asked for: what does not fit is not fetched at all.
        let held = fetch.charge.take(declared, &article(what), &image.registry).await?;
        let Reply { response, _turn } =
            self.call("blob", image, Method::GET, &format!("blobs/{digest}"), None, fetch).await?;
        if !response.status().is_success() {
            return Err(Self::status_error(image, digest.as_str(), &article(what), response.status()));
        }
        // More than declared would not match the digest anyway.
        let (bytes, held) =
            self.read_body(&image.registry, response, declared, &article(what), fetch, Some(held)).await?;
        if Digest::of(&bytes) != digest {
            return Err(self.invalid(image, what, format!("its content does not match its digest {digest}")));
        }
        fetch.charge.keep(held);
        Ok((digest, bytes))
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
    /// The descriptors that refer to `digest`: the OCI 1.1 referrers API, its `Link` pages
    /// followed on the same registry; or, when the registry has no such API, the referrers
    /// tag-schema fallback (`sha256-<hex>`). Nothing here is trusted yet.
    async fn referrers(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let mut path = format!("referrers/{digest}");
        let mut out = Vec::new();
        for page in 0.. {
            if page == REFERRER_PAGES {
                return Err(RegistryError::TooLarge {
                    host: image.registry.clone(),
                    what: format!("more than {REFERRER_PAGES} pages of referrers for {digest}"),
                    limit: format!("{REFERRER_PAGES} pages"),
                });
            }
            let response = self.call("referrers", image, Method::GET, &path, Some(OCI_INDEX), fetch).await?;
            let status = response.status();
            if page == 0
                && matches!(
                    status,
                    StatusCode::NOT_FOUND
                        | StatusCode::BAD_REQUEST
                        | StatusCode::METHOD_NOT_ALLOWED
                        | StatusCode::NOT_ACCEPTABLE
                )
            {
                return self.referrers_fallback(image, digest, fetch).await;
            }
            if !status.is_success() {
                return Err(Self::status_error(image, &path, "the referrers list", status));
            }
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .map(|link| self.next_page(image, link))
                .transpose()?
                .flatten();
            let (body, _held) = self
                .read_capped(&image.registry, response, self.limits.manifest_bytes, "a referrers list", fetch)
                .await?;
            let index: Index = serde_json::from_slice(&body).map_err(|e| self.invalid(image, "referrers list", e))?;
            out.extend(index.manifests);
            if out.len() > REFERRER_DESCRIPTORS {
                return Err(RegistryError::TooLarge {
                    host: image.registry.clone(),
                    what: format!("more than {REFERRER_DESCRIPTORS} referrers for {digest}"),
                    limit: format!("{REFERRER_DESCRIPTORS} referrers"),
                });
            }
            match next {
                Some(p) => path = p,
                None => break,
            }
        }
        Ok(out)
    }

    /// The `rel="next"` target of a `Link` header, as a path under the repository; only a
    /// referrers URL of the same registry and repository is followed.
    fn next_page(&self, image: &ImageRef, link: &str) -> Result<Option<String>, RegistryError> {
        let Some(target) = link
            .split(',')
            .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
            .and_then(|part| part.trim().strip_prefix('<'))
            .and_then(|part| part.split_once('>'))
            .map(|(url, _)| url.trim())
        else {
            return Ok(None);
        };
        let prefix = format!("/v2/{}/", image.repository);
        let base = self.base_url(&image.registry);
        let path = target.strip_prefix(&base).unwrap_or(target);
        match path.strip_prefix(&prefix) {
            Some(rest) if rest.starts_with("referrers/") => Ok(Some(rest.to_owned())),
            _ => Err(self.invalid(
                image,
                "referrers list",
                format!("its next page {target:?} is not a referrers URL of this repository on this registry"),
            )),
        }
    }

    /// The referrers tag-schema fallback: an index tagged `sha256-<hex>`.
    async fn referrers_fallback(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let path = format!("manifests/sha256-{}", digest.hex());
        let response = self.call("referrers", image, Method::GET, &path, Some(OCI_INDEX), fetch).await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(Vec::new()),
            s if s.is_success() => {}
            s => return Err(Self::status_error(image, &path, "the referrers fallback tag", s)),
        }
        let (body, _held) =
            self.read_capped(&image.registry, response, self.limits.manifest_bytes, "a referrers index", fetch).await?;
        let index: Index = serde_json::from_slice(&body).map_err(|e| self.invalid(image, "referrers index", e))?;
        if index.manifests.len() > REFERRER_DESCRIPTORS {
            return Err(RegistryError::TooLarge {
                host: image.registry.clone(),
                what: format!("{} referrers for {digest}", index.manifests.len()),
                limit: format!("{REFERRER_DESCRIPTORS} referrers"),
            });
        }
        Ok(index.manifests)
    }

    /// One referrer that may be a sigstore bundle: its manifest (checked against its digest,
    /// its subject must be `digest`) and its one bundle layer. `None` when it is something else.
    async fn bundle(
        &self,
        image: &ImageRef,
        digest: &Digest,
        referrer: &Descriptor,
        fetch: Fetch<'_>,
    ) -> Result<Option<BundleLayer>, RegistryError> {
        let manifest_digest =
            Digest::parse(&referrer.digest).map_err(|e| self.invalid(image, "referrer descriptor", e))?;
        if referrer.size > REFERRER_MANIFEST_BYTES as u64 {
            return Ok(None);
        }
        let path = format!("manifests/{manifest_digest}");
        let response = self.call("referrers", image, Method::GET, &path, Some(OCI_MANIFEST), fetch).await?;
        match response.status() {
            // Listed but gone (deleted since): nothing to read.
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            s => return Err(Self::status_error(image, &path, "a referrer manifest", s)),
        }
        let (body, held) =
            self.read_capped(&image.registry, response, REFERRER_MANIFEST_BYTES, "a referrer manifest", fetch).await?;
        if Digest::of(&body) != manifest_digest {
            return Err(self.invalid(
                image,
                "referrer manifest",
                format!("its content does not match its digest {manifest_digest}"),
            ));
        }
        let parsed = serde_json::from_slice::<Manifest>(&body);
        // The manifest's bytes are not needed while its bundle is read.
        drop((body, held));
        let Ok(manifest) = parsed else { return Ok(None) };
        let Some(layer) = bundle_layer(&manifest, digest) else { return Ok(None) };
        match self.blob(image, layer, self.limits.attestation_bytes, "sigstore bundle", fetch).await {
            Ok((_, bytes)) => Ok(Some(BundleLayer { manifest: manifest_digest, bytes, too_large: None })),
            Err(e @ RegistryError::TooLarge { .. }) => {
                Ok(Some(BundleLayer { manifest: manifest_digest, bytes: Vec::new(), too_large: Some(e.to_string()) }))
            }
            Err(e) => Err(e),
        }
    }
}

/// How long a token is used: what the token server says (60 s if nothing), less 10 s for the
/// clock and the trip, between 10 s and an hour (a token server cannot make it last forever).
fn token_ttl(expires_in: Option<u64>) -> Duration {
    Duration::from_secs(expires_in.unwrap_or(60).saturating_sub(10).clamp(10, 3600))
}

/// The referrer descriptors that may be sigstore bundles. Descriptors are hints: image
/// manifests that say they are bundles are kept, and those that say nothing better (lax
/// registries report the empty config type); the manifest decides.
fn bundle_candidates(referrers: &[Descriptor]) -> Vec<&Descriptor> {
    referrers
        .iter()
        .filter(|d| d.media_type == OCI_MANIFEST)
        .filter(|d| d.artifact_type.as_deref().is_none_or(|t| is_bundle_type(t) || t == OCI_EMPTY))
        .collect()
}

/// The one bundle layer of a referrer manifest of `digest`. A referrers list (or a fallback tag
/// anyone can push) may name anything: the manifest itself must say it refers to this image.
fn bundle_layer<'m>(manifest: &'m Manifest, digest: &Digest) -> Option<&'m Descriptor> {
    if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(digest.as_str()) {
        return None;
    }
    let layers: Vec<&Descriptor> = manifest.layers.iter().filter(|l| is_bundle_type(&l.media_type)).collect();
    let is_bundle = manifest.artifact_type.as_deref().is_some_and(is_bundle_type) || !layers.is_empty();
    match layers.as_slice() {
        [layer] if is_bundle => Some(layer),
        _ => None,
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
        // No digest header: hash the manifest itself.
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

//! Sigstore bundles as cosign v3 attaches them: OCI 1.1 referrers, or the referrers tag
//! fallback.
//!
//! With `--new-bundle-format=true` (the v3 default) cosign writes each signature or attestation
//! as one OCI manifest whose `artifactType` and single layer are
//! [`SIGSTORE_BUNDLE_V03_MEDIA_TYPE`] (the bundle JSON), whose config is the empty blob, and
//! whose `subject` is the image. It then asks `GET /v2/REPO/referrers/DIGEST`:
//! - on a registry with the referrers API ([`Registry::start_referrers`]) that is all, and
//!   [`Registry::referrers`] lists the bundles;
//! - on `docker-registry` (no referrers API, a 404) it also writes or rewrites the fallback
//!   tag `sha256-<hex>`, an OCI index listing the bundle manifests without annotations
//!   ([`Registry::fallback_index`]).
//!
//! Start with [`KeyPair::sign_bundle_on`] and [`Registry::bundles`]. Research notes:
//! `docs/research/referrers-and-bundles.md`.

use std::path::Path;
use std::process::Command;

use super::cosign::{envelope_statement, KeyPair, KEY_PASSWORD};
use super::registry::{HttpResponse, PushedImage, Registry};
use super::tools::run;

/// `artifactType` of cosign v3's bundle manifests, and the media type of their one layer.
pub const SIGSTORE_BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Media type of an OCI image index (referrers answers and the fallback tag are ones).
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Media type of the empty config blob (`{}`) of cosign's bundle manifests; raw
/// go-containerregistry reports it as the referrers' `artifactType`.
pub const OCI_EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// `predicateType` of the in-toto statement cosign v3 signs for `cosign sign` in the bundle
/// format (an image signature is a DSSE envelope too).
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Annotation of bundle manifests (and of referrers descriptors, not of the fallback index)
/// naming the statement's predicate type. Unsigned: a hint only.
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";

/// The `cosign sign` / `cosign attest` flags (besides `--key` and the certificate flags) that
/// make cosign v3.1.3 write a sigstore bundle offline: no transparency log
/// (`--tlog-upload=false` needs `--use-signing-config=false`), the bundle format, plain HTTP to
/// the loopback registry. The bundles have no `tlogEntries` and no timestamps.
pub const NEW_BUNDLE_OFFLINE_FLAGS: &[&str] = &[
    "--tlog-upload=false",
    "--use-signing-config=false",
    "--new-bundle-format=true",
    "--allow-http-registry",
    "--yes",
];

impl PushedImage {
    /// The referrers tag schema's fallback tag: `sha256-<hex>` (no suffix).
    pub fn fallback_tag(&self) -> String {
        self.digest.replacen(':', "-", 1)
    }
}

impl KeyPair {
    /// Signs an image with the real cosign in the **bundle** format, offline
    /// ([`NEW_BUNDLE_OFFLINE_FLAGS`]): one referrer manifest holding a v0.3 bundle whose
    /// `verificationMaterial` is `publicKey` (a hint only) and whose content is a DSSE envelope
    /// around an in-toto statement with predicate type [`COSIGN_SIGN_PREDICATE_TYPE`]. Attached
    /// through the referrers API, or the `sha256-<hex>` fallback tag on `docker-registry`.
    /// Sign by digest. Panics with cosign's output on failure.
    pub fn sign_bundle_on(&self, registry: &Registry, image_digest_ref: &str) {
        assert_in(registry, image_digest_ref);
        self.sign_with(image_digest_ref, registry.credentials(), NEW_BUNDLE_OFFLINE_FLAGS);
    }

    /// Attests an image in the **bundle** format, offline: `cosign attest --key KEY --type TYPE
    /// --predicate FILE` with [`NEW_BUNDLE_OFFLINE_FLAGS`], one more referrer (or fallback
    /// index entry) per call. `cosign_type` as for [`KeyPair::attest`]. Attest by digest.
    /// Panics with cosign's output on failure.
    pub fn attest_bundle_on(
        &self,
        registry: &Registry,
        image_digest_ref: &str,
        cosign_type: &str,
        predicate_file: &Path,
    ) {
        assert_in(registry, image_digest_ref);
        self.attest_with(
            image_digest_ref,
            cosign_type,
            predicate_file,
            registry.credentials(),
            NEW_BUNDLE_OFFLINE_FLAGS,
        );
    }
}

/// Panics unless `image_ref` names an image in `registry`.
pub(super) fn assert_in(registry: &Registry, image_ref: &str) {
    assert!(image_ref.starts_with(&format!("{}/", registry.addr)), "{image_ref} is not in {}", registry.addr);
}

/// Runs `cosign` in `dir` with [`KEY_PASSWORD`], panicking with its output on failure.
pub(super) fn run_cosign(cmd: &mut Command, dir: &Path) {
    run(cmd.current_dir(dir).env("COSIGN_PASSWORD", KEY_PASSWORD));
}

impl Registry {
    /// `GET /v2/REPO/referrers/DIGEST` (first page, `Accept` the OCI index type), whatever the
    /// answer: for status codes and the `Link` header. `docker-registry` answers 404.
    pub fn referrers_response(&self, repo: &str, digest: &str) -> HttpResponse {
        let url = format!("{}/v2/{repo}/referrers/{digest}", self.url());
        self.call("GET", &url, &[("Accept", OCI_INDEX_MEDIA_TYPE)], None)
    }

    /// The first page of the referrers of `REPO@DIGEST`: an OCI index whose `manifests` are
    /// descriptors with `artifactType` and (on the referrers registry) annotations. Panics
    /// unless the registry answers 200 with JSON, so it needs a registry with the referrers
    /// API ([`Registry::start_referrers`]).
    pub fn referrers(&self, repo: &str, digest: &str) -> serde_json::Value {
        let r = self.referrers_response(repo, digest);
        assert_eq!(
            r.status,
            200,
            "GET referrers of {repo}@{digest} from {}: {}",
            self.addr,
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// Every referrer descriptor of `REPO@DIGEST`, following `Link: <...>; rel="next"` from page
    /// to page (at most 1,000 pages). Panics as [`Registry::referrers`] does, or if a `Link`
    /// leaves this registry.
    pub fn referrers_all(&self, repo: &str, digest: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut response = self.referrers_response(repo, digest);
        for _page in 0..1_000 {
            assert_eq!(
                response.status,
                200,
                "GET referrers of {repo}@{digest}: {}",
                String::from_utf8_lossy(&response.body)
            );
            out.extend(response.json()["manifests"].as_array().cloned().unwrap_or_default());
            let Some(next) = response.header("link").and_then(next_link) else { return out };
            let url = if next.starts_with('/') { format!("{}{next}", self.url()) } else { next };
            assert!(url.starts_with(&format!("{}/", self.url())), "Link leaves the registry: {url}");
            response = self.call("GET", &url, &[("Accept", OCI_INDEX_MEDIA_TYPE)], None);
        }
        panic!("more than 1,000 pages of referrers of {repo}@{digest}");
    }

    /// The referrers tag schema's fallback index of an image: its `sha256-<hex>` tag, fetched
    /// with `Accept: application/vnd.oci.image.index.v1+json`. `None` if there is no such tag
    /// (nothing attached yet, or a registry with the referrers API, where cosign writes none).
    /// Panics on any answer but 200 and 404.
    pub fn fallback_index(&self, image: &PushedImage) -> Option<serde_json::Value> {
        let url = format!("{}/v2/{}/manifests/{}", self.url(), image.repo, image.fallback_tag());
        let r = self.call("GET", &url, &[("Accept", OCI_INDEX_MEDIA_TYPE)], None);
        match r.status {
            200 => Some(r.json()),
            404 => None,
            s => panic!("GET fallback index of {}: HTTP {s}: {}", image.digest_ref, String::from_utf8_lossy(&r.body)),
        }
    }

    /// The sigstore bundle in the referrer manifest `REPO@MANIFEST_DIGEST`: the JSON of its one
    /// layer. Panics unless the manifest has exactly one layer of type
    /// [`SIGSTORE_BUNDLE_V03_MEDIA_TYPE`].
    pub fn bundle(&self, repo: &str, manifest_digest: &str) -> serde_json::Value {
        let manifest = self
            .manifest(repo, manifest_digest)
            .unwrap_or_else(|| panic!("no manifest {repo}@{manifest_digest} in {}", self.addr));
        let layers = manifest["layers"].as_array().unwrap_or_else(|| panic!("no layers: {manifest}"));
        assert_eq!(layers.len(), 1, "a bundle manifest has one layer: {manifest}");
        assert_eq!(layers[0]["mediaType"], SIGSTORE_BUNDLE_V03_MEDIA_TYPE, "not a bundle manifest: {manifest}");
        let digest = layers[0]["digest"].as_str().expect("layer digest");
        serde_json::from_slice(&self.blob(repo, digest))
            .unwrap_or_else(|e| panic!("bundle {repo}@{digest} is not JSON: {e}"))
    }

    /// The sigstore bundles attached to an image, in descriptor order: from every page of the
    /// referrers API on a registry that has one, else from the fallback index (empty if there
    /// is none). Each bundle manifest must name the image as its `subject`.
    pub fn bundles(&self, image: &PushedImage) -> Vec<serde_json::Value> {
        let descriptors = if self.has_referrers_api() {
            self.referrers_all(&image.repo, &image.digest)
        } else {
            let index = self.fallback_index(image);
            index.and_then(|i| i["manifests"].as_array().cloned()).unwrap_or_default()
        };
        descriptors
            .iter()
            .map(|d| {
                let digest = d["digest"].as_str().unwrap_or_else(|| panic!("descriptor without digest: {d}"));
                let manifest = self.manifest(&image.repo, digest).expect("bundle manifest");
                assert_eq!(manifest["subject"]["digest"], image.digest.as_str(), "subject of {digest}: {manifest}");
                self.bundle(&image.repo, digest)
            })
            .collect()
    }
}

/// The target of a `Link: <URL>; rel="next"` header, if it has one.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let (_, rest) = part.split_once('<')?;
        let (url, _) = rest.split_once('>')?;
        Some(url.to_string())
    })
}

/// The in-toto statement in a bundle's DSSE envelope (decoded; the signature is not checked).
/// Panics if the bundle holds no DSSE envelope.
pub fn bundle_statement(bundle: &serde_json::Value) -> serde_json::Value {
    assert!(bundle["dsseEnvelope"].is_object(), "no dsseEnvelope in bundle: {bundle}");
    envelope_statement(&bundle["dsseEnvelope"])
}

/// The certificates in a bundle's `verificationMaterial`, DER, leaf first, and which form held
/// them: `"certificate"` (one, the form bundle v0.3 requires) or `"x509CertificateChain"`.
/// `None` for a key-based bundle (`publicKey`).
pub fn bundle_certificates(bundle: &serde_json::Value) -> Option<(&'static str, Vec<Vec<u8>>)> {
    use base64::Engine as _;
    let der = |c: &serde_json::Value| {
        let raw = c["rawBytes"].as_str().unwrap_or_else(|| panic!("certificate without rawBytes: {c}"));
        base64::engine::general_purpose::STANDARD.decode(raw).expect("rawBytes is base64")
    };
    let material = &bundle["verificationMaterial"];
    if material["certificate"].is_object() {
        Some(("certificate", vec![der(&material["certificate"])]))
    } else if let Some(certs) = material["x509CertificateChain"]["certificates"].as_array() {
        Some(("x509CertificateChain", certs.iter().map(der).collect()))
    } else {
        None
    }
}

//! Signing and attesting with the real cosign, in its **classic** format, and reading and
//! forging what it wrote.
//!
//! Signatures: a `sha256-<hex>.sig` tag in the image's repository whose OCI manifest has one
//! `application/vnd.dev.cosign.simplesigning.v1+json` layer per signature (the simple-signing
//! payload) with the base64 signature in the layer annotation
//! `dev.cosignproject.cosign/signature`.
//!
//! Attestations ([`KeyPair::attest`]): a `sha256-<hex>.att` tag whose manifest has one
//! `application/vnd.dsse.envelope.v1+json` layer per attestation (a DSSE envelope around an
//! in-toto statement), annotated with its `predicateType`.
//!
//! Start with [`KeyPair::generate`] and [`KeyPair::sign`]. The forgeries a verifier must refuse
//! are here too: [`copy_signature`], [`copy_attestations`], [`tamper_signature_payload`],
//! [`tamper_attestation`]. cosign v3's bundle format is in [`super::bundles`].

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::registry::{PushedImage, Registry};
use super::tools::{run, run_unchecked, Tools};

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
impl PushedImage {
    /// The classic cosign signature tag: `sha256-<hex>.sig`.
    pub fn sig_tag(&self) -> String {
        format!("{}.sig", self.digest.replacen(':', "-", 1))
    }

    /// The classic cosign attestation tag: `sha256-<hex>.att`.
    pub fn att_tag(&self) -> String {
        format!("{}.att", self.digest.replacen(':', "-", 1))
    }
}

impl Registry {
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

    /// A key authority named `name` holding this public key: one YAML list item of a policy's
    /// `spec.signatures.authorities`, indented by six spaces.
    pub fn authority_yaml(&self, name: &str) -> String {
        let mut yaml = format!("      - name: {name}\n        key:\n          publicKey: |\n");
        for line in self.public_key_pem.lines() {
            yaml.push_str(&format!("            {line}\n"));
        }
        yaml
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

    /// [`KeyPair::sign`] for many images: `cosign sign` with up to `per_run` references per run
    /// and `parallel` runs at a time, as the load scenarios sign their thousands of images
    /// (cosign's own start-up is most of the time of one signature).
    pub fn sign_all(&self, image_digest_refs: &[String], per_run: usize, parallel: usize) {
        let chunks: Vec<&[String]> = image_digest_refs.chunks(per_run.max(1)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..parallel.max(1) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else { break };
                    run(Command::new(&self.tools.cosign)
                        .arg("sign")
                        .arg("--key")
                        .arg(&self.private_key)
                        .args(CLASSIC_OFFLINE_SIGN_FLAGS)
                        .args(chunk.iter())
                        .current_dir(self.dir.path())
                        .env("COSIGN_PASSWORD", KEY_PASSWORD));
                });
            }
        });
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
    pub(crate) fn sign_with(&self, image_digest_ref: &str, credentials: Option<(&str, &str)>, flags: &[&str]) {
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

    /// `cosign attest --key KEY --type TYPE --predicate FILE` with `flags` (the format).
    pub(crate) fn attest_with(
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
    copy_tag(registry, &format!("{}:{}", from.repo_ref, from.sig_tag()), &format!("{}:{}", to.repo_ref, to.sig_tag()));
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
    copy_tag(registry, &format!("{}:{}", from.repo_ref, from.att_tag()), &format!("{}:{}", to.repo_ref, to.att_tag()));
}

/// Copies one tag's manifest and blobs within the loopback registry, digests preserved.
fn copy_tag(registry: &Registry, from: &str, to: &str) {
    let mut skopeo = Command::new(&registry.tools.skopeo);
    skopeo.args(["--insecure-policy", "copy", "--quiet", "--preserve-digests"]);
    if let Some((user, password)) = registry.credentials() {
        let creds = format!("{user}:{password}");
        skopeo.arg("--src-creds").arg(&creds).arg("--dest-creds").arg(&creds);
    }
    run(skopeo
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}")));
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

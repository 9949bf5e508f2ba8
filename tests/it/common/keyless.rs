//! Keyless signing without Fulcio: a local CA ([`LocalCa`]) issues Fulcio-like leaf
//! certificates ([`LeafSpec`]), and cosign signs with the leaf's key and certificate
//! ([`CertSigner`]), offline.
//!
//! What makes a leaf "Fulcio-like": an empty subject, the identity as the only SAN (an email, or
//! a URI such as a CI workflow's), EKU `codeSigning`, a P-256 key, and the OIDC issuer in
//! Fulcio's extensions: `1.3.6.1.4.1.57264.1.8` (a DER UTF8String) and the deprecated
//! `1.3.6.1.4.1.57264.1.1` (the raw string bytes). [`LocalCa::trusted_root_json`] is the
//! sigstore `trusted_root.json` with this CA as the only certificate authority, for verifiers.
//!
//! What cosign v3.1.3 does with them (`--certificate leaf.pem --certificate-chain chain.pem`):
//! - classic format: the `.sig` layer carries the leaf PEM in `dev.sigstore.cosign/certificate`
//!   and an **empty** `dev.sigstore.cosign/chain`: cosign drops self-signed certificates from
//!   the chain it is given, and `chain.pem` holds only the (self-signed) CA;
//! - bundle format: `verificationMaterial.x509CertificateChain` with **one** certificate, the
//!   leaf, which the v0.3 bundle spec does not allow (it wants `certificate`); cosign's own
//!   `verify` skips such bundles ("no signatures found"). Without `--certificate-chain`
//!   ([`CertSigner::chain_flag`] `false`) cosign writes `verificationMaterial.certificate`;
//! - `cosign verify` of the classic format reads the OIDC issuer only from the deprecated
//!   `57264.1.1` extension, so it needs [`IssuerExtensions::Deprecated`] or
//!   [`IssuerExtensions::Both`]; the bundle path reads `57264.1.8`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use super::bundles::{assert_in, run_cosign, NEW_BUNDLE_OFFLINE_FLAGS};
use super::cosign::CLASSIC_OFFLINE_SIGN_FLAGS;
use super::registry::Registry;
use super::tools::{run, run_unchecked, Tools};

/// The email identity of [`LeafSpec::email`] in the tests.
pub const CI_EMAIL: &str = "ci@example.com";

/// A CI workflow identity, as a URI SAN ([`LeafSpec::uri`]).
pub const WORKFLOW_IDENTITY: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

/// The OIDC issuer a [`LeafSpec`] names unless told otherwise.
pub const TEST_OIDC_ISSUER: &str = "https://issuer.example";

/// Fulcio's OIDC issuer extension (v2): the value is a DER `UTF8String`.
pub const OIDC_ISSUER_V2_OID: &str = "1.3.6.1.4.1.57264.1.8";

/// Fulcio's deprecated OIDC issuer extension (v1): the value is the raw string bytes.
pub const OIDC_ISSUER_V1_OID: &str = "1.3.6.1.4.1.57264.1.1";

/// `mediaType` of a sigstore `trusted_root.json`.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// Layer annotation of a classic `.sig` / `.att` manifest holding the signing certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";

/// Layer annotation of a classic `.sig` / `.att` manifest holding the certificate chain (PEM;
/// empty when the chain given to cosign held only a self-signed root).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

/// Start of the local CA's validity, and of its `validFor` in the trusted root.
const CA_VALID_FROM: &str = "2020-01-01T00:00:00Z";

const V2_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];
const V1_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];

/// A self-signed P-256 certificate authority standing in for Fulcio, with its certificate and
/// trusted root as files in a temporary directory (removed on drop).
pub struct LocalCa {
    /// The CA's common name.
    pub name: String,
    /// The CA certificate (PEM), as `chain.pem` for cosign and `--ca-roots` style flags.
    pub cert_path: PathBuf,
    /// [`LocalCa::trusted_root_json`], written to a file (`--trusted-root`).
    pub trusted_root_path: PathBuf,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    dir: TempDir,
    tools: Tools,
}

impl LocalCa {
    /// Generates a self-signed P-256 CA named `name` (subject `CN=name, O=trustgate tests`),
    /// with basicConstraints `CA:TRUE`, key usage `keyCertSign` + `cRLSign`, valid from
    /// 2020-01-01 to 2100-01-01.
    pub fn generate(name: &str) -> LocalCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
        let tools = Tools::get();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "trustgate tests");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let key = rcgen::KeyPair::generate().expect("generate CA key");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).expect("self-sign CA certificate");
        let dir = tempfile::Builder::new().prefix("trustgate-ca-").tempdir().expect("create CA temp dir");
        let ca = LocalCa {
            name: name.to_string(),
            cert_path: dir.path().join("ca.pem"),
            trusted_root_path: dir.path().join("trusted_root.json"),
            issuer,
            dir,
            tools,
        };
        std::fs::write(&ca.cert_path, ca.cert_pem()).expect("write ca.pem");
        std::fs::write(&ca.trusted_root_path, ca.trusted_root_json()).expect("write trusted_root.json");
        ca
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A sigstore `trusted_root.json` ([`TRUSTED_ROOT_MEDIA_TYPE`]) whose only certificate
    /// authority is this CA (`certChain.certificates[0].rawBytes` = base64 DER, `validFor.start`
    /// 2020-01-01, no end), with empty `tlogs`, `ctlogs` and `timestampAuthorities`: good for
    /// certificates, useless for proving when something was signed.
    pub fn trusted_root_json(&self) -> String {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD.encode(self.cert_der());
        let root = serde_json::json!({
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [],
            "certificateAuthorities": [{
                "subject": { "organization": "trustgate tests", "commonName": self.name },
                "uri": "https://local-ca.invalid",
                "certChain": { "certificates": [{ "rawBytes": raw }] },
                "validFor": { "start": CA_VALID_FROM },
            }],
            "ctlogs": [],
            "timestampAuthorities": [],
        });
        serde_json::to_string_pretty(&root).expect("serialize trusted root")
    }

    /// Issues a leaf certificate as `spec` says, signed by this CA, and prepares cosign to sign
    /// with it: the [`CertSigner`] holds `leaf.pem`, `chain.pem` (this CA), the leaf's P-256
    /// key (`leaf-pkcs8.pem`, PKCS#8 `PRIVATE KEY`; `cosign import-key-pair` also takes SEC1
    /// `EC PRIVATE KEY`) and that key imported into cosign's encrypted format.
    pub fn issue(&self, spec: &LeafSpec) -> CertSigner {
        use rcgen::string::Ia5String;
        use rcgen::{CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType};
        let mut params = CertificateParams::default();
        // Like Fulcio: no subject, the identity only in the SAN (which rcgen then marks
        // critical, as RFC 5280 wants for an empty subject).
        params.distinguished_name = rcgen::DistinguishedName::new();
        let ia5 = |s: &str| Ia5String::try_from(s).unwrap_or_else(|e| panic!("SAN {s:?} is not IA5: {e}"));
        params.subject_alt_names = vec![match &spec.san {
            LeafSan::Email(email) => SanType::Rfc822Name(ia5(email)),
            LeafSan::Uri(uri) => SanType::URI(ia5(uri)),
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.code_signing {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        }
        params.use_authority_key_identifier_extension = true;
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + since_epoch(spec.not_before);
        params.not_after = epoch + since_epoch(spec.not_after);
        if matches!(spec.issuer_extensions, IssuerExtensions::New | IssuerExtensions::Both) {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(V2_OID, der_utf8_string(&spec.oidc_issuer)));
        }
        if matches!(spec.issuer_extensions, IssuerExtensions::Deprecated | IssuerExtensions::Both) {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(V1_OID, spec.oidc_issuer.as_bytes().to_vec()));
        }
        let key = rcgen::KeyPair::generate().expect("generate leaf key");
        let leaf = params.signed_by(&key, &self.issuer).expect("sign leaf certificate");

        let dir = tempfile::Builder::new().prefix("trustgate-leaf-").tempdir().expect("create leaf temp dir");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("leaf.pem"), leaf.pem()).expect("write leaf.pem");
        std::fs::write(path("chain.pem"), self.cert_pem()).expect("write chain.pem");
        std::fs::write(path("leaf-pkcs8.pem"), key.serialize_pem()).expect("write leaf-pkcs8.pem");
        run_cosign(
            Command::new(&self.tools.cosign).args([
                "import-key-pair",
                "--yes",
                "--key",
                "leaf-pkcs8.pem",
                "--output-key-prefix",
                "cosign",
            ]),
            dir.path(),
        );
        CertSigner {
            spec: spec.clone(),
            leaf_pem: leaf.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_cert: path("leaf.pem"),
            chain: path("chain.pem"),
            leaf_key: path("leaf-pkcs8.pem"),
            private_key: path("cosign.key"),
            chain_flag: true,
            dir,
            tools: self.tools.clone(),
        }
    }

    /// Runs `cosign verify --trusted-root` with this CA's trusted root, the expected identity
    /// and OIDC issuer, tlog and SCT checks off, plain HTTP allowed. `Ok(stdout)` if cosign
    /// verified, `Err(stderr)` if not. See the module notes for what cosign v3.1.3 can verify.
    pub fn cosign_verify(&self, image_ref: &str, identity: &str, oidc_issuer: &str) -> Result<String, String> {
        let out = run_unchecked(
            Command::new(&self.tools.cosign)
                .arg("verify")
                .arg("--trusted-root")
                .arg(&self.trusted_root_path)
                .args(["--certificate-identity", identity, "--certificate-oidc-issuer", oidc_issuer])
                .args(["--insecure-ignore-tlog=true", "--insecure-ignore-sct=true", "--allow-http-registry"])
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

/// The identity in a leaf certificate's SAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafSan {
    /// An email address (`rfc822Name`), as for a person or a service account.
    Email(String),
    /// A URI (`uniformResourceIdentifier`), as for a CI workflow.
    Uri(String),
}

/// Which of Fulcio's OIDC issuer extensions a leaf carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerExtensions {
    /// Only `1.3.6.1.4.1.57264.1.8` (a DER UTF8String).
    New,
    /// Only the deprecated `1.3.6.1.4.1.57264.1.1` (the raw string bytes).
    #[expect(dead_code, reason = "no test needs it yet; the module doc says when cosign does")]
    Deprecated,
    /// Both, as Fulcio writes them.
    Both,
    /// Neither: a certificate that names no issuer.
    Neither,
}

/// What a leaf certificate from [`LocalCa::issue`] says. Start from [`LeafSpec::email`] or
/// [`LeafSpec::uri`] and change fields: `LeafSpec { code_signing: false, ..LeafSpec::email(CI_EMAIL) }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// The identity (the only SAN).
    pub san: LeafSan,
    /// The OIDC issuer the extensions name.
    pub oidc_issuer: String,
    /// Which issuer extensions carry [`LeafSpec::oidc_issuer`].
    pub issuer_extensions: IssuerExtensions,
    /// Whether the leaf has EKU `codeSigning` (Fulcio's always do).
    pub code_signing: bool,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl LeafSpec {
    /// An email identity, issuer [`TEST_OIDC_ISSUER`] in both extensions, EKU `codeSigning`,
    /// valid from an hour ago for a year.
    pub fn email(email: &str) -> LeafSpec {
        LeafSpec::new(LeafSan::Email(email.to_string()))
    }

    /// A URI identity ([`WORKFLOW_IDENTITY`], say), otherwise like [`LeafSpec::email`].
    pub fn uri(uri: &str) -> LeafSpec {
        LeafSpec::new(LeafSan::Uri(uri.to_string()))
    }

    fn new(san: LeafSan) -> LeafSpec {
        let now = SystemTime::now();
        LeafSpec {
            san,
            oidc_issuer: TEST_OIDC_ISSUER.to_string(),
            issuer_extensions: IssuerExtensions::Both,
            code_signing: true,
            not_before: now - Duration::from_secs(3_600),
            not_after: now + Duration::from_secs(365 * 86_400),
        }
    }

    /// The same leaf, expired long ago: valid from 2021-01-01 to 2022-01-01.
    pub fn expired(self) -> LeafSpec {
        LeafSpec { not_before: utc_date(2021, 1, 1), not_after: utc_date(2022, 1, 1), ..self }
    }

    /// The identity as a string (the email or the URI).
    pub fn identity(&self) -> &str {
        match &self.san {
            LeafSan::Email(s) | LeafSan::Uri(s) => s,
        }
    }
}

/// A leaf certificate from a [`LocalCa`] and its key, ready for `cosign sign --certificate`,
/// in a temporary directory (removed on drop).
pub struct CertSigner {
    /// What the certificate says.
    pub spec: LeafSpec,
    /// The leaf certificate, PEM (the content of [`CertSigner::leaf_cert`]).
    pub leaf_pem: String,
    /// The leaf certificate, DER.
    pub leaf_der: Vec<u8>,
    /// `leaf.pem`.
    pub leaf_cert: PathBuf,
    /// `chain.pem`: the CA certificate.
    pub chain: PathBuf,
    /// `leaf-pkcs8.pem`: the leaf's private key, unencrypted PKCS#8.
    pub leaf_key: PathBuf,
    /// The leaf's key in cosign's encrypted format (password [`super::cosign::KEY_PASSWORD`]).
    pub private_key: PathBuf,
    /// Whether to pass `--certificate-chain chain.pem` to cosign (default `true`). With it, the
    /// bundle format gets a one-certificate `x509CertificateChain`; without, a `certificate`.
    pub chain_flag: bool,
    dir: TempDir,
    tools: Tools,
}

impl CertSigner {
    /// Signs an image with cosign, the leaf's key and certificate, offline: `cosign sign --key
    /// KEY --certificate leaf.pem [--certificate-chain chain.pem]` with
    /// [`NEW_BUNDLE_OFFLINE_FLAGS`] when `new_bundle`, else [`CLASSIC_OFFLINE_SIGN_FLAGS`].
    /// Sign by digest. Panics with cosign's output on failure.
    pub fn sign_on(&self, registry: &Registry, image_digest_ref: &str, new_bundle: bool) {
        assert_in(registry, image_digest_ref);
        let mut cmd = self.cosign("sign", registry, new_bundle);
        run_cosign(cmd.arg(image_digest_ref), self.dir.path());
    }

    /// Attests an image like [`CertSigner::sign_on`] signs: `cosign attest ... --type TYPE
    /// --predicate FILE`. `cosign_type` as for [`super::cosign::KeyPair::attest`].
    pub fn attest_on(
        &self,
        registry: &Registry,
        image_digest_ref: &str,
        cosign_type: &str,
        predicate_file: &Path,
        new_bundle: bool,
    ) {
        assert_in(registry, image_digest_ref);
        assert!(predicate_file.is_file(), "no predicate file {}", predicate_file.display());
        let mut cmd = self.cosign("attest", registry, new_bundle);
        cmd.args(["--type", cosign_type]).arg("--predicate").arg(predicate_file);
        run_cosign(cmd.arg(image_digest_ref), self.dir.path());
    }

    /// `cosign SUBCOMMAND` with credentials, key, certificate flags and format flags.
    fn cosign(&self, subcommand: &str, registry: &Registry, new_bundle: bool) -> Command {
        let mut cmd = Command::new(&self.tools.cosign);
        cmd.arg(subcommand);
        if let Some((user, password)) = registry.credentials() {
            cmd.args(["--registry-username", user, "--registry-password", password]);
        }
        cmd.arg("--key").arg(&self.private_key).arg("--certificate").arg(&self.leaf_cert);
        if self.chain_flag {
            cmd.arg("--certificate-chain").arg(&self.chain);
        }
        cmd.args(if new_bundle { NEW_BUNDLE_OFFLINE_FLAGS } else { CLASSIC_OFFLINE_SIGN_FLAGS });
        cmd
    }
}

/// `openssl x509 -noout -text` of a DER certificate, for assertions on what it says (SANs,
/// extensions by OID, validity).
pub fn x509_text(der: &[u8]) -> String {
    let tools = Tools::get();
    let dir = tempfile::Builder::new().prefix("trustgate-x509-").tempdir().expect("create temp dir");
    let file = dir.path().join("cert.der");
    std::fs::write(&file, der).expect("write certificate");
    let out = run(Command::new(&tools.openssl).args(["x509", "-inform", "DER", "-noout", "-text", "-in"]).arg(&file));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A DER `UTF8String`.
fn der_utf8_string(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = vec![0x0c];
    match bytes.len() {
        n @ 0..=127 => out.push(n as u8),
        n @ 128..=255 => out.extend([0x81, n as u8]),
        n @ 256..=65_535 => out.extend([0x82, (n >> 8) as u8, n as u8]),
        n => panic!("issuer of {n} bytes is too long"),
    }
    out.extend_from_slice(bytes);
    out
}

/// Time since 1970 (certificates here are never older).
fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).expect("a time after 1970")
}

/// Midnight UTC of a calendar date (H. Hinnant's `days_from_civil`).
pub fn utc_date(year: i64, month: u32, day: u32) -> SystemTime {
    assert!((1..=12).contains(&month) && (1..=31).contains(&day), "bad date {year}-{month}-{day}");
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400).expect("a date after 1970");
    UNIX_EPOCH + Duration::from_secs(secs)
}

//! The `ClusterImagePolicy` resource (`trustgate.dev/v1alpha1`), the contract security teams
//! write. The CRD YAML in `manifests/crds/` is generated from these types (`trustgate crds`).
//!
//! Unknown fields are rejected rather than ignored: a policy naming a check this version does
//! not implement must not silently pass images that the author meant to constrain.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which images must carry which evidence.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "trustgate.dev",
    version = "v1alpha1",
    kind = "ClusterImagePolicy",
    plural = "clusterimagepolicies",
    shortname = "cip",
    doc = "Admits an image only when it carries the evidence this policy requires.",
    status = "ClusterImagePolicyStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Images","type":"string","jsonPath":".spec.images[*].glob"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.signatures) || self.signatures.threshold > 0 || (has(self.attestations) && size(self.attestations) > 0)", "message": "signatures.threshold 0 requires attestations"},
    {"rule": "!has(self.attestations) || self.attestations.all(a, a.authorities.all(n, has(self.signatures) && self.signatures.authorities.exists(s, s.name == n)))", "message": "attestation authorities must be names from signatures.authorities"}
]))]
pub struct ClusterImagePolicySpec {
    /// Which images this policy governs, by glob over the normalised repository
    /// (`registry.acme.io/apps/**`): `*` stays inside one path segment, `**` crosses them.
    #[schemars(length(min = 1))]
    pub images: Vec<ImageGlob>,
    /// `enforce` denies failing images, `warn` admits them with a warning, `audit` admits and logs.
    #[serde(default)]
    pub mode: Mode,
    /// Applies only in namespaces whose labels match; absent means every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Deny images referenced by tag alone.
    #[serde(default)]
    pub require_digest: bool,
    /// Signatures the image must carry, and the authorities attestations may be signed by;
    /// absent means no signature is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Signatures>,
    /// Attestations the image must carry: every one listed must be present, verified and pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub attestations: Vec<AttestationSpec>,
}

/// A required attestation.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestationSpec {
    /// Unique within the policy; used in messages.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The in-toto predicate type, as a URI or cosign's short name (`slsaprovenance1`,
    /// `slsaprovenance02`, `slsaprovenance`, `cyclonedx`, `spdx`, `spdxjson`, `custom`).
    #[schemars(length(min = 1, max = 512))]
    pub predicate_type: String,
    /// Names from `signatures.authorities` whose keys may sign this attestation.
    #[schemars(length(min = 1, max = 32))]
    pub authorities: Vec<String>,
    /// Checks on SLSA provenance (provenance predicate types only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slsa: Option<SlsaSpec>,
    /// Checks on an SBOM (CycloneDX or SPDX predicate types only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomSpec>,
}

/// What SLSA provenance must say. Empty lists allow anything.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlsaSpec {
    /// Globs over `builder.id` ('*' matches any characters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builder_ids: Vec<String>,
    /// Globs over the source repository URI (`https://github.com/acme/*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_repositories: Vec<String>,
    /// Accepted `buildType` URIs (globs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_types: Vec<String>,
    /// Globs over the source ref (`refs/heads/main`, `refs/tags/v*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_refs: Vec<String>,
}

/// What an SBOM must (not) contain.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SbomSpec {
    /// SPDX license ids no component may require.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_licenses: Vec<String>,
    /// When not empty, every component's license must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_licenses: Vec<String>,
    /// Package URLs no component may be; `*` allowed in the version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_packages: Vec<String>,
    /// Oldest acceptable SBOM, from its own creation time (a Go duration, e.g. `720h`; at
    /// most 876000h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), extend("pattern" = r"^([0-9]{1,6}(\.[0-9]{0,9})?|\.[0-9]{1,9})(ns|us|µs|μs|ms|s|m|h)(([0-9]{1,6}(\.[0-9]{0,9})?|\.[0-9]{1,9})(ns|us|µs|μs|ms|s|m|h))*$"))]
    pub max_age: Option<String>,
}

/// One glob over normalised image repositories.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageGlob {
    /// e.g. `registry.acme.io/apps/**` or `docker.io/library/nginx`.
    #[schemars(length(min = 1, max = 512), extend("pattern" = r"^[a-z0-9.:_\-/*\[\]]+$"))]
    pub glob: String,
}

/// What happens to an image that fails this policy.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny the workload.
    #[default]
    Enforce,
    /// Admit it, with a warning that `kubectl` prints.
    Warn,
    /// Admit it and log the failure.
    Audit,
}

impl Mode {
    /// The name used in the YAML and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

/// At least `threshold` distinct authorities must have signed the image digest.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.threshold <= size(self.authorities)", "message": "threshold cannot exceed the number of authorities"},
    {"rule": "self.authorities.all(a, self.authorities.exists_one(b, b.name == a.name))", "message": "authority names must be unique"}
]))]
pub struct Signatures {
    /// How many distinct authorities must have signed the image (default 1); 0 when the
    /// authorities only vouch for attestations.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 32), with = "i32")]
    pub threshold: u32,
    /// Who may sign.
    #[schemars(length(min = 1, max = 32))]
    pub authorities: Vec<Authority>,
}

fn one() -> u32 {
    1
}

/// A named signer: a key, or a keyless (Fulcio-style certificate) identity.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.key) != has(self.keyless)", "message": "give exactly one of key or keyless"}
]))]
pub struct Authority {
    /// Unique within the policy; used in messages.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// A public key that signatures must verify against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyAuthority>,
    /// A certificate identity: the signature's certificate must chain to the trust root's
    /// certificate authority and name one of these identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessAuthority>,
}

/// Keyless signing: a short-lived certificate (Fulcio or a private CA) binds the signing key to
/// an OIDC identity; a transparency log records the signature.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeylessAuthority {
    /// The certificate must name one of these (issuer and subject both match).
    #[schemars(length(min = 1, max = 32))]
    pub identities: Vec<Identity>,
    /// The certificate authorities, transparency logs and timestamp authorities to trust;
    /// absent means the Sigstore public-good instance (the copy shipped with trustgate, or the
    /// server's `--trust-root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_root: Option<TrustRootSource>,
    /// `require` (default): a transparency-log entry, verified against the trust root's log
    /// keys, must describe this very signature. `skip`: no log is consulted (private CAs
    /// without a log); the certificate must then be valid at the signing time a timestamp
    /// vouches for, or, without one, now.
    #[serde(default)]
    pub transparency_log: TransparencyLog,
}

/// One acceptable certificate identity. Regular expressions must match the whole value.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.issuer) != has(self.issuerRegExp)", "message": "give exactly one of issuer or issuerRegExp"},
    {"rule": "has(self.subject) != has(self.subjectRegExp)", "message": "give exactly one of subject or subjectRegExp"}
]))]
pub struct Identity {
    /// The OIDC issuer in the certificate's Fulcio issuer extension, exactly
    /// (`https://token.actions.githubusercontent.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub issuer: Option<String>,
    /// A regular expression the whole issuer must match.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "issuerRegExp")]
    #[schemars(length(min = 1, max = 1024))]
    pub issuer_regexp: Option<String>,
    /// The certificate's subject alternative name (an email or URI), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub subject: Option<String>,
    /// A regular expression the whole subject must match
    /// (`https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/heads/main`).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "subjectRegExp")]
    #[schemars(length(min = 1, max = 1024))]
    pub subject_regexp: Option<String>,
}

/// A sigstore `trusted_root.json`, inline or from a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.trustedRootJson) != has(self.secretRef)", "message": "give exactly one of trustedRootJson or secretRef"}
]))]
pub struct TrustRootSource {
    /// The `trusted_root.json` document itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 262144))]
    pub trusted_root_json: Option<String>,
    /// A key of a Secret holding it (cluster mode only; the key defaults to `trusted_root.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<TrustRootSecretRef>,
}

/// A `trusted_root.json` inside a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustRootSecretRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// The data key (default `trusted_root.json`).
    #[serde(default = "trusted_root_json")]
    pub key: String,
}

fn trusted_root_json() -> String {
    "trusted_root.json".to_owned()
}

impl From<&TrustRootSecretRef> for SecretKeyRef {
    fn from(r: &TrustRootSecretRef) -> Self {
        SecretKeyRef { name: r.name.clone(), namespace: r.namespace.clone(), key: r.key.clone() }
    }
}

/// Whether a transparency-log entry is required.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransparencyLog {
    /// A verified log entry describing this signature is required.
    #[default]
    Require,
    /// No log entry is required (one that is present is still checked against the bundle).
    Skip,
}

/// A cosign public key, inline or from a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.publicKey) != has(self.secretRef)", "message": "give exactly one of publicKey or secretRef"}
]))]
pub struct KeyAuthority {
    /// PEM `PUBLIC KEY` (ECDSA P-256/P-384/P-521, RSA, Ed25519), e.g. the `cosign.pub` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16384))]
    pub public_key: Option<String>,
    /// A key of a Secret holding the PEM public key (cluster mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
}

/// A key inside a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// The data key (default `cosign.pub`).
    #[serde(default = "cosign_pub")]
    pub key: String,
}

fn cosign_pub() -> String {
    "cosign.pub".to_owned()
}

/// What trustgate last concluded about a policy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterImagePolicyStatus {
    /// `Ready`: True when the policy is valid and in force; False, with the reason, when not.
    #[serde(default)]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

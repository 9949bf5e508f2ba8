//! Keyless signatures: a short-lived certificate binds the signing key to an OIDC identity.
//!
//! A certificate is never trusted on its own. [`Keyless::verify`] takes the whole sigstore
//! bundle (a classic `.sig` layer is first turned into one by [`classic_bundle`]) and checks,
//! in this order: the signature was made by the certificate's key; the certificate chains to a
//! certificate authority of the trust root at the signing time and carries the code-signing
//! usage; when the authority requires it, a transparency-log entry verified against the trust
//! root's log keys describes this very signature and certificate; and only then that the
//! certificate's issuer extension and subject alternative name match one of the authority's
//! identities.
//!
//! With a log entry or an RFC 3161 timestamp the cryptography is `sigstore-verify`'s (which
//! also binds the log entry's body to this signature). Without either — a private CA and
//! `transparencyLog: skip` — there is no trusted signing time, so the certificate must be valid
//! now, and the chain and signature are checked here with webpki.

use std::time::SystemTime;

use base64::Engine as _;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde_json::{json, Value};
use sigstore_types::bundle::{CertificateContent, VerificationMaterialContent};
use sigstore_types::{Artifact, Bundle, DerCertificate, MediaType, SignatureContent};
use sigstore_verify::crypto::{parse_certificate_info, verify_signature, verify_signature_prehashed};
use sigstore_verify::VerificationPolicy;

use super::ClassicMaterial;
use crate::policy::Keyless;

/// `id-kp-codeSigning` (1.3.6.1.5.5.7.3.3), the DER content of the OID.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// Who a verified certificate says signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certified {
    pub subject: String,
    pub issuer: String,
    /// Signing time vouched for by a log entry or a timestamp, if any.
    pub signed_at: Option<SystemTime>,
}

/// Why a keyless signature was not accepted: one variant per check, in the order they are made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeylessError {
    /// The classic layer's certificate annotations could not be turned into a bundle.
    #[error("{0}")]
    Material(String),
    #[error("signed with a key, not a certificate")]
    NotACertificate,
    #[error("the signature has no transparency-log entry, and the authority requires one (transparencyLog: require)")]
    LogEntryRequired,
    /// sigstore-verify refused the bundle (signature, chain at the signing time, log entry).
    #[error("the keyless signature did not verify against {root}: {detail}")]
    NotVerified { root: String, detail: String },
    #[error("the bundle's certificate chain is empty")]
    EmptyChain,
    #[error("the signing certificate is malformed: {0}")]
    MalformedCertificate(String),
    #[error(
        "the signing certificate has expired (with no log entry or timestamp to prove it was valid when it signed, it must be valid now)"
    )]
    Expired,
    #[error("the signing certificate is not valid yet")]
    NotValidYet,
    /// Another CA, or one that impersonates a trusted CA's name.
    #[error("the signing certificate was not issued by a certificate authority of {root}")]
    UnknownIssuer { root: String },
    #[error("the signing certificate (or an intermediate CA of its chain) lacks the code-signing extended key usage")]
    NotForCodeSigning,
    #[error("the signing certificate does not chain to {root}: {detail}")]
    Chain { root: String, detail: String },
    #[error("the clock cannot be read as a timestamp: {0}")]
    Clock(String),
    #[error("the bundle's message digest is not this image's digest")]
    OtherDigest,
    #[error("the bundle holds neither a message signature nor a DSSE envelope")]
    NoSignature,
    #[error("the signature was not made by the certificate's key (a certificate paired with another key's signature)")]
    OtherKey,
    /// Verified, but certified to someone the authority does not accept. `mismatch`: `identity
    /// mismatch` when some accepted identity has this issuer, `issuer mismatch` when none has.
    #[error(
        "{mismatch}: signed by {subject} (issuer {issuer}), which is none of the authority's identities ({accepted})"
    )]
    OtherIdentity { mismatch: &'static str, subject: String, issuer: String, accepted: String },
}

/// Verifies `bundle` over `artifact` (the image digest for bundles and DSSE envelopes, the
/// payload bytes for a classic signature) against a keyless authority and returns the certified
/// identity, or why not.
pub fn verify(authority: &Keyless, bundle: &Bundle, artifact: Artifact<'_>) -> Result<Certified, KeylessError> {
    let bundle = normalise(bundle);
    let material = &bundle.verification_material;
    if matches!(material.content, VerificationMaterialContent::PublicKey(_)) {
        return Err(KeylessError::NotACertificate);
    }
    let has_log = !material.tlog_entries.is_empty();
    let has_timestamp = !material.timestamp_verification_data.rfc3161_timestamps.is_empty();
    if authority.require_log && !has_log {
        return Err(KeylessError::LogEntryRequired);
    }
    let certified = if has_log || has_timestamp {
        let mut policy = VerificationPolicy::any_identity();
        if !authority.require_log {
            policy = policy.skip_tlog_unsafe();
        }
        if !authority.trust_root.has_ct_logs() {
            // A private CA without a certificate-transparency log embeds no SCT.
            policy = policy.skip_sct();
        }
        let result = authority.trust_root.verifier().verify(artifact, &bundle, &policy).map_err(|e| {
            KeylessError::NotVerified { root: authority.trust_root.label.clone(), detail: e.to_string() }
        })?;
        Certified {
            subject: result.identity().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            issuer: result.issuer().unwrap_or_default().to_owned(),
            signed_at: result.verified_timestamps().iter().min().map(|t| SystemTime::from(*t)),
        }
    } else {
        verify_offline(authority, &bundle, artifact)?
    };
    if authority.identities.iter().any(|i| i.issuer.matches(&certified.issuer) && i.subject.matches(&certified.subject))
    {
        Ok(certified)
    } else {
        let issuer_known = authority.identities.iter().any(|i| i.issuer.matches(&certified.issuer));
        Err(KeylessError::OtherIdentity {
            mismatch: if issuer_known { "identity mismatch" } else { "issuer mismatch" },
            subject: or_none(&certified.subject).to_owned(),
            issuer: or_none(&certified.issuer).to_owned(),
            accepted: authority
                .identities
                .iter()
                .map(|i| format!("issuer {} subject {}", i.issuer, i.subject))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }
}

/// No log entry, no timestamp (`transparencyLog: skip`): chain, usage and validity now;
/// then the signature with the certificate's key.
fn verify_offline(authority: &Keyless, bundle: &Bundle, artifact: Artifact<'_>) -> Result<Certified, KeylessError> {
    let (leaf, intermediates) = match &bundle.verification_material.content {
        VerificationMaterialContent::Certificate(c) => (c.raw_bytes.clone(), Vec::new()),
        VerificationMaterialContent::X509CertificateChain { certificates } => match certificates.split_first() {
            Some((leaf, rest)) => (leaf.raw_bytes.clone(), rest.iter().map(|c| c.raw_bytes.clone()).collect()),
            None => return Err(KeylessError::EmptyChain),
        },
        _ => return Err(KeylessError::NotACertificate),
    };
    let now = SystemTime::now();
    let now_ts = jiff::Timestamp::try_from(now).map_err(|e| KeylessError::Clock(e.to_string()))?;
    let anchors: Vec<TrustAnchor<'_>> = authority.trust_root.anchors_at(now_ts);
    let leaf_der = CertificateDer::from(leaf.as_bytes());
    let intermediates: Vec<CertificateDer<'_>> =
        intermediates.iter().map(|c| CertificateDer::from(c.as_bytes())).collect();
    let end_entity =
        webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| KeylessError::MalformedCertificate(e.to_string()))?;
    let time = UnixTime::since_unix_epoch(now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default());
    end_entity
        .verify_for_usage(
            sigstore_verify::crypto::WEBPKI_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::required(CODE_SIGNING),
            None,
            None,
        )
        .map_err(|e| chain_error(&e, &authority.trust_root.label))?;
    let info = parse_certificate_info(&leaf).map_err(|e| KeylessError::MalformedCertificate(e.to_string()))?;
    let scheme = info.key_algorithm.default_signing_scheme();
    let signed = match (&bundle.content, &artifact) {
        (SignatureContent::DsseEnvelope(envelope), _) => {
            verify_signature(&info.public_key, &envelope.pae(), &envelope.signature.sig, scheme)
        }
        (SignatureContent::MessageSignature(m), Artifact::Blob(bytes)) => {
            verify_signature(&info.public_key, bytes, &m.signature, scheme)
        }
        (SignatureContent::MessageSignature(m), Artifact::Digest(digest)) => {
            if m.message_digest.as_ref().is_none_or(|d| d.digest.as_bytes() != digest.as_bytes()) {
                return Err(KeylessError::OtherDigest);
            }
            verify_signature_prehashed(&info.public_key, digest.as_bytes(), &m.signature, scheme)
        }
        _ => return Err(KeylessError::NoSignature),
    };
    signed.map_err(|_| KeylessError::OtherKey)?;
    Ok(Certified {
        subject: info.identity.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        issuer: info.issuer.unwrap_or_default(),
        signed_at: None,
    })
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "no identity"
    } else {
        s
    }
}

fn chain_error(e: &webpki::Error, root: &str) -> KeylessError {
    match e {
        webpki::Error::CertExpired { .. } => KeylessError::Expired,
        webpki::Error::CertNotValidYet { .. } => KeylessError::NotValidYet,
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
            KeylessError::UnknownIssuer { root: root.to_owned() }
        }
        webpki::Error::RequiredEkuNotFoundContext(_) => KeylessError::NotForCodeSigning,
        other => KeylessError::Chain { root: root.to_owned(), detail: other.to_string() },
    }
}

/// cosign v3 writes a v0.3 bundle whose `x509CertificateChain` holds only the leaf when it signs
/// with `--certificate`; v0.3 allows only `certificate`. A one-certificate chain *is* a single
/// certificate, so it is read as one. (Longer chains stay as they are and are refused.)
fn normalise(bundle: &Bundle) -> std::borrow::Cow<'_, Bundle> {
    match &bundle.verification_material.content {
        VerificationMaterialContent::X509CertificateChain { certificates }
            if bundle.media_type == MediaType::Bundle0_3 && certificates.len() == 1 =>
        {
            let Some(leaf) = certificates.first() else { return std::borrow::Cow::Borrowed(bundle) };
            let mut b = bundle.clone();
            b.verification_material.content =
                VerificationMaterialContent::Certificate(CertificateContent::new(leaf.raw_bytes.clone()));
            std::borrow::Cow::Owned(b)
        }
        _ => std::borrow::Cow::Borrowed(bundle),
    }
}

/// What a classic cosign layer signs.
pub enum ClassicContent<'a> {
    /// A `.sig` layer: the simple-signing payload and its base64 signature.
    Message { payload: &'a [u8], signature_b64: &'a str },
    /// An `.att` layer: the DSSE envelope JSON.
    Dsse { envelope: &'a [u8] },
}

/// Turns a classic keyless layer into a v0.1 sigstore bundle (certificate chain, the log entry
/// of its `bundle` annotation as an inclusion promise), so it is verified by the same code as
/// a bundle. Nothing here is trusted: it only rearranges what the registry sent.
pub fn classic_bundle(material: &ClassicMaterial, content: ClassicContent<'_>) -> Result<Bundle, KeylessError> {
    bundle_of_classic(material, content).map_err(KeylessError::Material)
}

fn bundle_of_classic(material: &ClassicMaterial, content: ClassicContent<'_>) -> Result<Bundle, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let leaf = material.certificate.as_deref().ok_or("the signature carries no certificate")?;
    let mut certificates = Vec::new();
    for pem in std::iter::once(leaf).chain(material.chain.as_deref()) {
        for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("the signature's certificate is not valid PEM: {e}"))?;
            certificates.push(json!({"rawBytes": b64.encode(cert.as_ref())}));
        }
    }
    if certificates.is_empty() {
        return Err("the signature's certificate annotation holds no certificate".into());
    }
    let mut tlog_entries = Vec::new();
    if let Some(rekor) = &material.rekor_bundle {
        tlog_entries.push(rekor_entry(rekor)?);
    }
    let mut bundle = json!({
        "mediaType": MediaType::Bundle0_1.as_str(),
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": certificates},
            "tlogEntries": tlog_entries,
        },
    });
    let (key, value) = match content {
        ClassicContent::Message { payload, signature_b64 } => {
            use sha2::Digest as _;
            let signature = json!({
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64.encode(sha2::Sha256::digest(payload))},
                "signature": signature_b64.trim(),
            });
            ("messageSignature", signature)
        }
        ClassicContent::Dsse { envelope } => {
            let envelope: Value = serde_json::from_slice(envelope).map_err(|e| format!("not a DSSE envelope: {e}"))?;
            ("dsseEnvelope", envelope)
        }
    };
    if let Some(fields) = bundle.as_object_mut() {
        fields.insert(key.to_owned(), value);
    }
    Bundle::from_json(&bundle.to_string())
        .map_err(|e| format!("the signature's certificate material is malformed: {e}"))
}

/// cosign's `dev.sigstore.cosign/bundle` annotation: `{SignedEntryTimestamp, Payload: {body,
/// integratedTime, logIndex, logID}}`, as a bundle's log entry with an inclusion promise.
fn rekor_entry(annotation: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("the signature's transparency-log annotation is malformed: {what}");
    let v: Value = serde_json::from_str(annotation).map_err(|e| bad(&e.to_string()))?;
    let field = |v: &Value, name: &str| v.get(name).cloned().unwrap_or(Value::Null);
    let payload = field(&v, "Payload");
    let text =
        |v: &Value, name: &str| field(v, name).as_str().map(str::to_owned).ok_or_else(|| bad(&format!("no {name}")));
    let body = text(&payload, "body")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(&body).map_err(|e| bad(&e.to_string()))?;
    let entry: Value = serde_json::from_slice(&decoded).map_err(|e| bad(&e.to_string()))?;
    let log_id = hex::decode(text(&payload, "logID")?).map_err(|_| bad("logID"))?;
    Ok(json!({
        "logIndex": field(&payload, "logIndex").as_u64().ok_or_else(|| bad("no logIndex"))?.to_string(),
        "logId": {"keyId": base64::engine::general_purpose::STANDARD.encode(log_id)},
        "kindVersion": {
            "kind": text(&entry, "kind")?,
            "version": text(&entry, "apiVersion")?,
        },
        "integratedTime": field(&payload, "integratedTime").as_i64().ok_or_else(|| bad("no integratedTime"))?.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": text(&v, "SignedEntryTimestamp")?},
        "canonicalizedBody": body,
    }))
}

/// The certificate of a classic signature, parsed only to name it in messages.
pub fn describe_certificate(pem: &str) -> Option<String> {
    let cert = rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()?;
    let info = parse_certificate_info(&DerCertificate::new(cert.to_vec())).ok()?;
    Some(format!("{} (issuer {})", info.identity?.as_str(), info.issuer.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Identity, Matcher, TrustRoot};
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
        SigningKey,
    };
    use std::sync::Arc;

    const ISSUER: &str = "https://issuer.example";
    const SUBJECT: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        der: Vec<u8>,
    }

    impl Ca {
        fn new() -> Ca {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2100, 1, 1);
            let key = KeyPair::generate().unwrap();
            let der = params.self_signed(&key).unwrap().der().to_vec();
            Ca { params, key, der }
        }

        fn root(&self) -> TrustRoot {
            let json = json!({
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [], "ctlogs": [], "timestampAuthorities": [],
                "certificateAuthorities": [{
                    "subject": {"organization": "test", "commonName": "test"},
                    "uri": "https://ca.example",
                    "certChain": {"certificates": [{"rawBytes": base64::engine::general_purpose::STANDARD.encode(&self.der)}]},
                    "validFor": {"start": "2020-01-01T00:00:00Z"}
                }]
            });
            TrustRoot::from_json(&json.to_string(), "the test root".into()).unwrap()
        }

        /// A leaf for `subject`; `edit` changes the defaults (issuer extension, code signing, valid now).
        fn leaf(&self, subject: &str, edit: impl FnOnce(&mut CertificateParams)) -> (Vec<u8>, KeyPair) {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.subject_alt_names = vec![SanType::URI(subject.try_into().unwrap())];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
            let mut issuer = vec![0x0c, ISSUER.len() as u8];
            issuer.extend_from_slice(ISSUER.as_bytes());
            params.custom_extensions =
                vec![CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], issuer)];
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2099, 1, 1);
            edit(&mut params);
            let key = KeyPair::generate().unwrap();
            let issuer = Issuer::from_params(&self.params, &self.key);
            (params.signed_by(&key, &issuer).unwrap().der().to_vec(), key)
        }
    }

    fn keyless(root: TrustRoot, issuer: Matcher, subject: Matcher, require_log: bool) -> Keyless {
        Keyless { identities: vec![Identity { issuer, subject }], trust_root: Arc::new(root), require_log }
    }

    fn exact(s: &str) -> Matcher {
        Matcher::Exact(s.to_owned())
    }

    /// A classic `.sig`-style bundle: `payload` signed by `signer`, with `cert` as its certificate.
    fn signed(cert: &[u8], signer: &KeyPair, payload: &[u8]) -> Bundle {
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(cert)
        );
        let signature = base64::engine::general_purpose::STANDARD.encode(signer.sign(payload).unwrap());
        let material = ClassicMaterial { certificate: Some(pem), ..Default::default() };
        classic_bundle(&material, ClassicContent::Message { payload, signature_b64: &signature }).unwrap()
    }

    #[test]
    fn a_private_ca_signature_verifies_offline_and_its_identity_is_checked() {
        let ca = Ca::new();
        let (cert, key) = ca.leaf(SUBJECT, |_| {});
        let bundle = signed(&cert, &key, b"payload");
        let ok = keyless(ca.root(), exact(ISSUER), exact(SUBJECT), false);
        let certified = verify(&ok, &bundle, Artifact::from_blob(b"payload")).unwrap();
        assert_eq!((certified.subject.as_str(), certified.issuer.as_str()), (SUBJECT, ISSUER));

        let by_regexp =
            keyless(ca.root(), exact(ISSUER), Matcher::regex(r"https://github\.com/acme/.+").unwrap(), false);
        assert!(verify(&by_regexp, &bundle, Artifact::from_blob(b"payload")).is_ok());

        for (issuer, subject) in [
            (exact(ISSUER), exact("https://github.com/acme/other")),
            (exact("https://other-issuer.example"), exact(SUBJECT)),
            (exact(ISSUER), Matcher::regex(r"https://github\.com/acme").unwrap()),
        ] {
            let err = verify(&keyless(ca.root(), issuer, subject, false), &bundle, Artifact::from_blob(b"payload"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("none of the authority's identities") && err.contains(SUBJECT), "{err}");
        }
        let err = verify(&ok, &bundle, Artifact::from_blob(b"another payload")).unwrap_err().to_string();
        assert!(err.contains("not made by the certificate's key"), "{err}");
    }

    #[test]
    fn a_certificate_paired_with_another_keys_signature_is_refused() {
        let ca = Ca::new();
        let (cert, _) = ca.leaf(SUBJECT, |_| {});
        let forger = KeyPair::generate().unwrap();
        let bundle = signed(&cert, &forger, b"payload");
        let err =
            verify(&keyless(ca.root(), exact(ISSUER), exact(SUBJECT), false), &bundle, Artifact::from_blob(b"payload"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("not made by the certificate's key"), "{err}");
    }

    #[test]
    fn chain_usage_and_validity_are_checked() {
        let ca = Ca::new();
        let other = Ca::new();
        let verifier = keyless(ca.root(), exact(ISSUER), exact(SUBJECT), false);
        let check =
            |cert: Vec<u8>, key: KeyPair| verify(&verifier, &signed(&cert, &key, b"p"), Artifact::from_blob(b"p"));

        let (cert, key) = other.leaf(SUBJECT, |_| {});
        let err = check(cert, key).unwrap_err().to_string();
        assert!(err.contains("not issued by a certificate authority of the test root"), "{err}");
        let (cert, key) = ca.leaf(SUBJECT, |p| {
            p.not_before = rcgen::date_time_ymd(2021, 1, 1);
            p.not_after = rcgen::date_time_ymd(2022, 1, 1);
        });
        assert!(check(cert, key).unwrap_err().to_string().contains("has expired"));
        let (cert, key) = ca.leaf(SUBJECT, |p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]);
        assert!(check(cert, key).unwrap_err().to_string().contains("code-signing"));
        // The deprecated issuer extension (raw bytes) is read too.
        let (cert, key) = ca.leaf(SUBJECT, |p| {
            p.custom_extensions =
                vec![CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 1], ISSUER.as_bytes().to_vec())]
        });
        assert_eq!(check(cert, key).unwrap().issuer, ISSUER);
        // No issuer extension at all: no identity can match.
        let (cert, key) = ca.leaf(SUBJECT, |p| p.custom_extensions.clear());
        assert!(check(cert, key).unwrap_err().to_string().contains("issuer no identity"));
    }

    #[test]
    fn a_chain_through_an_intermediate_verifies_and_only_with_it() {
        let root = Ca::new();
        // An intermediate CA issued by the root; the leaf is issued by the intermediate.
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        params.distinguished_name.push(rcgen::DnType::CommonName, "intermediate");
        // Like Fulcio's intermediate: the code-signing usage is required of every certificate of
        // the path below the trust anchor (webpki's rule, so sigstore-verify's too).
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let key = KeyPair::generate().unwrap();
        let der = params.signed_by(&key, &Issuer::from_params(&root.params, &root.key)).unwrap().der().to_vec();
        let intermediate = Ca { params, key, der };
        let (leaf, leaf_key) = intermediate.leaf(SUBJECT, |_| {});
        let pem = |der: &[u8]| {
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64::engine::general_purpose::STANDARD.encode(der)
            )
        };
        let signature = base64::engine::general_purpose::STANDARD.encode(leaf_key.sign(b"p").unwrap());
        let verifier = keyless(root.root(), exact(ISSUER), exact(SUBJECT), false);
        let with_chain = ClassicMaterial {
            certificate: Some(pem(&leaf)),
            chain: Some(pem(&intermediate.der) + &pem(&root.der)),
            ..Default::default()
        };
        let bundle =
            classic_bundle(&with_chain, ClassicContent::Message { payload: b"p", signature_b64: &signature }).unwrap();
        let verified = verify(&verifier, &bundle, Artifact::from_blob(b"p"));
        assert!(verified.is_ok(), "{verified:?}");
        let without = ClassicMaterial { certificate: Some(pem(&leaf)), ..Default::default() };
        let bundle =
            classic_bundle(&without, ClassicContent::Message { payload: b"p", signature_b64: &signature }).unwrap();
        let err = verify(&verifier, &bundle, Artifact::from_blob(b"p")).unwrap_err().to_string();
        assert!(err.contains("not issued by a certificate authority"), "{err}");
    }

    #[test]
    fn a_required_log_entry_that_is_absent_denies() {
        let ca = Ca::new();
        let (cert, key) = ca.leaf(SUBJECT, |_| {});
        let err = verify(
            &keyless(ca.root(), exact(ISSUER), exact(SUBJECT), true),
            &signed(&cert, &key, b"p"),
            Artifact::from_blob(b"p"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no transparency-log entry") && err.contains("transparencyLog: require"), "{err}");
    }

    #[test]
    fn bad_trust_roots_and_material_are_errors() {
        assert!(TrustRoot::from_json("{", "x".into())
            .unwrap_err()
            .to_string()
            .contains("not a valid sigstore trusted_root.json"));
        let empty = json!({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [], "ctlogs": [], "timestampAuthorities": [], "certificateAuthorities": []});
        assert!(TrustRoot::from_json(&empty.to_string(), "x".into())
            .unwrap_err()
            .to_string()
            .contains("no certificate authority"));
        assert!(TrustRoot::public_good().is_ok());
        let none = ClassicMaterial::default();
        assert!(classic_bundle(&none, ClassicContent::Dsse { envelope: b"{}" }).is_err());
        let junk = ClassicMaterial { certificate: Some("not pem".into()), ..Default::default() };
        assert!(classic_bundle(&junk, ClassicContent::Dsse { envelope: b"{}" }).is_err());
        let bad_log = ClassicMaterial {
            certificate: Some("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".into()),
            rekor_bundle: Some("{\"Payload\": {}}".into()),
            ..Default::default()
        };
        let err = classic_bundle(&bad_log, ClassicContent::Message { payload: b"p", signature_b64: "AA==" })
            .unwrap_err()
            .to_string();
        assert!(err.contains("transparency-log annotation is malformed"), "{err}");
    }
}

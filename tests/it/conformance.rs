//! The sigstore-conformance bundle-verify cases, run through `trustgate verify-bundle` exactly as
//! the public suite runs a client: every `_fail` case must be rejected, every other accepted.
//!
//! The cases live in `../shared/testdata/sigstore-conformance/` (SOURCE.md there says where they
//! come from and how a case directory reads).

use std::path::{Path, PathBuf};
use std::process::Command;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/sigstore-conformance");
const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

struct Outcome {
    case: String,
    expect_pass: bool,
    passed: bool,
    stderr: String,
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn run_case(dir: &Path) -> Outcome {
    let case = dir.file_name().expect("a case directory has a name").to_string_lossy().into_owned();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trustgate"));
    cmd.arg("verify-bundle").arg("--bundle").arg(dir.join("bundle.sigstore.json"));
    if dir.join("key.pub").is_file() {
        cmd.arg("--key").arg(dir.join("key.pub"));
    } else {
        let identity = read_trimmed(&dir.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.to_owned());
        let issuer = read_trimmed(&dir.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        cmd.args(["--certificate-identity", &identity, "--certificate-oidc-issuer", &issuer]);
    }
    if dir.join("trusted_root.json").is_file() {
        cmd.arg("--trusted-root").arg(dir.join("trusted_root.json"));
    }
    let artifact = dir.join("artifact");
    cmd.arg(if artifact.is_file() { artifact } else { Path::new(CASES).join("a.txt") });
    // Nothing from the environment may change the answer.
    for (name, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("TRUSTGATE_")) {
        cmd.env_remove(name);
    }
    let output = cmd.output().expect("trustgate runs");
    Outcome {
        expect_pass: !case.ends_with("_fail"),
        passed: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().replace('\n', " | "),
        case,
    }
}

#[test]
fn every_conformance_case_gets_the_suites_answer() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(CASES)
        .unwrap_or_else(|e| panic!("{CASES}: {e} (the shared test data must sit beside the clone)"))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.join("bundle.sigstore.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 30, "only {} cases found in {CASES}", dirs.len());

    let outcomes: Vec<Outcome> = dirs.iter().map(|d| run_case(d)).collect();
    let wrong: Vec<&Outcome> = outcomes.iter().filter(|o| o.passed != o.expect_pass).collect();
    if !wrong.is_empty() {
        let mut table = String::from("| case | expected | got | stderr |\n|---|---|---|---|\n");
        for o in &outcomes {
            let mark = if o.passed == o.expect_pass { "" } else { "**WRONG** " };
            table.push_str(&format!(
                "| {mark}{} | {} | {} | {} |\n",
                o.case,
                if o.expect_pass { "verified" } else { "rejected" },
                if o.passed { "verified" } else { "rejected" },
                o.stderr
            ));
        }
        panic!("{} of {} conformance cases got the wrong answer:\n{table}", wrong.len(), outcomes.len());
    }
}

/// The suite never varies the identity, so a verifier that ignored `--certificate-identity` or
/// `--certificate-oidc-issuer` would pass it; these must be rejected. The digest form of the
/// artifact must give the same answer as the file.
#[test]
fn the_identity_flags_and_the_digest_form_count() {
    let happy = Path::new(CASES).join("happy-path-v0.3");
    let run = |identity: &str, issuer: &str, artifact: &str| {
        Command::new(env!("CARGO_BIN_EXE_trustgate"))
            .args(["verify-bundle", "--bundle"])
            .arg(happy.join("bundle.sigstore.json"))
            .args(["--certificate-identity", identity, "--certificate-oidc-issuer", issuer, artifact])
            .env_remove("TRUSTGATE_TRUSTED_ROOT")
            .output()
            .expect("trustgate runs")
    };
    let digest = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"; // of a.txt
    let a_txt = Path::new(CASES).join("a.txt");
    let a_txt = a_txt.to_str().expect("a UTF-8 path");
    assert!(run(DEFAULT_IDENTITY, DEFAULT_ISSUER, digest).status.success());
    let other_digest = digest.replace("sha256:a0", "sha256:b0");
    let other_identity = format!("{DEFAULT_IDENTITY}x");
    for (identity, issuer, artifact, why) in [
        (other_identity.as_str(), DEFAULT_ISSUER, a_txt, "identity mismatch"),
        (DEFAULT_IDENTITY, "https://accounts.google.com", a_txt, "issuer mismatch"),
        (DEFAULT_IDENTITY, DEFAULT_ISSUER, other_digest.as_str(), "artifact mismatch"),
    ] {
        let out = run(identity, issuer, artifact);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{why}: {stderr}");
        assert!(stderr.contains(why), "{why}: {stderr}");
    }
}

/// A classic cosign keyless signature, rebuilt from the real public-good `happy-path-v0.1` case
/// the way cosign lays one out in a `.sig` layer: the certificate and chain as PEM annotations,
/// the Rekor entry with its signed entry timestamp as the `dev.sigstore.cosign/bundle`
/// annotation, the signature beside the payload.
fn classic_layer(signature_b64: &str) -> (trustgate::evidence::ClassicMaterial, Vec<u8>, String) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bundle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(CASES).join("happy-path-v0.1/bundle.sigstore.json")).expect("case bundle"),
    )
    .expect("case bundle is JSON");
    let pem = |raw: &serde_json::Value| {
        let der = b64.decode(raw["rawBytes"].as_str().unwrap()).unwrap();
        let body = b64
            .encode(der)
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap().to_owned())
            .collect::<Vec<_>>();
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", body.join("\n"))
    };
    let certs = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"].as_array().unwrap();
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    let rekor = serde_json::json!({
        "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": entry["canonicalizedBody"],
            "integratedTime": entry["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
            "logIndex": entry["logIndex"].as_str().unwrap().parse::<u64>().unwrap(),
            "logID": hex::encode(b64.decode(entry["logId"]["keyId"].as_str().unwrap()).unwrap()),
        }
    });
    let material = trustgate::evidence::ClassicMaterial {
        certificate: Some(pem(&certs[0])),
        chain: Some(certs[1..].iter().map(pem).collect()),
        rekor_bundle: Some(rekor.to_string()),
    };
    let payload = std::fs::read(Path::new(CASES).join("a.txt")).expect("a.txt");
    let signature = if signature_b64.is_empty() {
        bundle["messageSignature"]["signature"].as_str().unwrap().to_owned()
    } else {
        signature_b64.to_owned()
    };
    (material, payload, signature)
}

/// The public-good root, the conformance identity, the log required.
fn public_good_keyless() -> trustgate::policy::Keyless {
    use trustgate::policy::{Identity, Keyless, Matcher, TrustRoot};
    Keyless {
        identities: vec![Identity {
            issuer: Matcher::Exact(DEFAULT_ISSUER.into()),
            subject: Matcher::regex(r"https://github\.com/sigstore-conformance/.+").unwrap(),
        }],
        trust_root: std::sync::Arc::new(TrustRoot::public_good().unwrap()),
        require_log: true,
    }
}

#[test]
fn a_classic_keyless_signature_with_its_log_entry_verifies_and_a_forged_pairing_does_not() {
    use trustgate::evidence::keyless::{self, classic_bundle, ClassicContent};
    let keyless = public_good_keyless();
    let (material, payload, signature) = classic_layer("");
    let bundle = classic_bundle(&material, ClassicContent::Message { payload: &payload, signature_b64: &signature })
        .expect("the classic layer converts");
    let certified = keyless::verify(&keyless, &bundle, sigstore_types::Artifact::from_blob(&payload))
        .expect("the real certificate, log entry and signature verify");
    assert_eq!(certified.issuer, DEFAULT_ISSUER);
    assert!(certified.signed_at.is_some(), "the log entry gives the signing time");

    // The same real certificate and log entry, with a signature made by another key over the
    // same payload: the certificate is genuine and the log entry is genuine, but neither is
    // about this signature.
    use base64::Engine as _;
    use rcgen::SigningKey as _;
    let forger = rcgen::KeyPair::generate().unwrap();
    let forged = base64::engine::general_purpose::STANDARD.encode(forger.sign(&payload).unwrap());
    let (material, payload, signature) = classic_layer(&forged);
    let bundle = classic_bundle(&material, ClassicContent::Message { payload: &payload, signature_b64: &signature })
        .expect("the forged layer converts");
    let err =
        keyless::verify(&keyless, &bundle, sigstore_types::Artifact::from_blob(&payload)).unwrap_err().to_string();
    assert!(err.contains("did not verify"), "{err}");

    // Without the log entry and with the log required: refused for that reason.
    let (mut material, payload, signature) = classic_layer("");
    material.rekor_bundle = None;
    let bundle =
        classic_bundle(&material, ClassicContent::Message { payload: &payload, signature_b64: &signature }).unwrap();
    let err =
        keyless::verify(&keyless, &bundle, sigstore_types::Artifact::from_blob(&payload)).unwrap_err().to_string();
    assert!(err.contains("no transparency-log entry"), "{err}");
    // And another identity is refused even with everything genuine.
    let mut other = public_good_keyless();
    other.identities[0].subject = trustgate::policy::Matcher::Exact("https://github.com/acme/x".into());
    let (material, payload, signature) = classic_layer("");
    let bundle =
        classic_bundle(&material, ClassicContent::Message { payload: &payload, signature_b64: &signature }).unwrap();
    let err = keyless::verify(&other, &bundle, sigstore_types::Artifact::from_blob(&payload)).unwrap_err().to_string();
    assert!(err.contains("none of the authority's identities"), "{err}");
}

/// The webhook's keyless path (`Keyless::verify`, which policies use) gives the suite's answer
/// on every certificate case too, not only `verify-bundle`: it adds its own identity matching
/// and SCT rule on top of the same cryptography, and must not loosen anything.
#[test]
fn the_webhooks_keyless_path_gives_the_suites_answer() {
    use trustgate::policy::{Identity, Keyless, Matcher, TrustRoot};
    let mut wrong = Vec::new();
    let mut checked = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(CASES)
        .expect("cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("bundle.sigstore.json").is_file() && !p.join("key.pub").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expect_pass = !case.ends_with("_fail");
        let root = match std::fs::read_to_string(dir.join("trusted_root.json")) {
            Ok(json) => TrustRoot::from_json(&json, "the case's trust root".into()),
            Err(_) => TrustRoot::public_good(),
        };
        let keyless = root.map_err(|e| e.to_string()).map(|root| Keyless {
            identities: vec![Identity {
                issuer: Matcher::Exact(read_trimmed(&dir.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.into())),
                subject: Matcher::Exact(read_trimmed(&dir.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.into())),
            }],
            trust_root: std::sync::Arc::new(root),
            require_log: true,
        });
        let artifact = std::fs::read(if dir.join("artifact").is_file() {
            dir.join("artifact")
        } else {
            Path::new(CASES).join("a.txt")
        })
        .expect("artifact");
        let json = std::fs::read_to_string(dir.join("bundle.sigstore.json")).expect("bundle");
        let result = keyless.and_then(|k| {
            let bundle = sigstore_types::Bundle::from_json(&json).map_err(|e| e.to_string())?;
            trustgate::evidence::keyless::verify(&k, &bundle, sigstore_types::Artifact::from_blob(&artifact))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        checked += 1;
        if result.is_ok() != expect_pass {
            wrong.push(format!("{case}: expected {}, got {result:?}", if expect_pass { "pass" } else { "fail" }));
        }
    }
    assert!(checked >= 25, "only {checked} certificate cases");
    assert!(wrong.is_empty(), "{} of {checked} wrong:\n{}", wrong.len(), wrong.join("\n"));
}

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

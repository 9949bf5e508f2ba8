//! The binary's own contract: configuration and policy errors stop it with every problem
//! named, `serve` starts, answers and stops on SIGTERM, and `crds` prints the committed CRD.
//! No registry is needed here; the registry-backed CLI cases are in [`crate::registry`].

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::tools::free_port;

fn trustgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trustgate"));
    c.env_remove("TRUSTGATE_LOG").env("NO_COLOR", "1");
    c
}

#[test]
fn serve_refuses_to_start_with_an_invalid_policy_naming_file_object_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.yaml"),
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {name: acme}\nspec:\n  images: [{glob: \"registry.acme.io/**\"}]\n  mode: strict\n",
    )
    .unwrap();
    let out = trustgate()
        .args(["serve", "--self-signed", "--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0", "--policies"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("trustgate: error: loading policies: 1 invalid policy:"), "{stderr}");
    assert!(stderr.contains("acme.yaml: policy \"acme\": spec.mode: unknown variant `strict`"), "{stderr}");
}

#[test]
fn configuration_errors_are_reported_together() {
    let out =
        trustgate().args(["serve", "--tls-cert", "only-cert.pem", "--max-request-bytes", "1024"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid configuration:"), "{stderr}");
    assert!(stderr.contains("--tls-cert and --tls-key go together"), "{stderr}");
    assert!(stderr.contains("--max-request-bytes 1024 is below the 3 MiB"), "{stderr}");
}

#[test]
fn flags_come_from_the_environment_too() {
    let out = trustgate()
        .args(["verify", "quay.io/x/y"])
        .env("TRUSTGATE_POLICIES", concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/examples"))
        .env("TRUSTGATE_OUTPUT", "json")
        .env("TRUSTGATE_UNMATCHED", "allow")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowed"], true);
    assert_eq!(json["images"][0]["problem"]["kind"], "no-matching-policy");
}

#[test]
fn crds_prints_the_committed_crd() {
    let out = trustgate().arg("crds").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/crds/clusterimagepolicies.yaml"))
            .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[test]
fn serve_answers_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let (port, probe) = (free_port(), free_port());
    let mut child = trustgate()
        .args(["serve", "--self-signed", "--log-format", "json", "--policies"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/examples"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--probe-listen", &format!("127.0.0.1:{probe}")])
        .arg("--self-signed-ca")
        .arg(&ca)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let lines = std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<String>>());

    let started = Instant::now();
    let ready = loop {
        let out = Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{probe}/readyz")]).output().unwrap();
        if out.status.success() {
            break true;
        }
        if started.elapsed() > Duration::from_secs(20) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ready, "the server never became ready");

    let review = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission/create-pod.json");
    let out = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&ca)
        .args(["-H", "content-type: application/json", "--data"])
        .arg(format!("@{review}"))
        .arg(format!("https://localhost:{port}/validate?timeout=2s"))
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{answer}");

    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let lines = lines.join().unwrap();
    // One structured line per decision, with what an operator searches for.
    let decision = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "admission decision")
        .unwrap_or_else(|| panic!("no decision line in {lines:?}"));
    assert_eq!(decision["namespace"], "shop");
    assert_eq!(decision["object"], "Pod shop/api");
    assert_eq!(decision["outcome"], "denied");
    assert!(decision["uid"].is_string() && decision["images"].is_string());
    assert!(lines.iter().any(|l| l.contains("shutting down")), "{lines:?}");
}

#[test]
fn an_absurd_duration_flag_is_a_clear_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let out = trustgate()
        .args(["verify", "x", "--policies"])
        .arg(dir.path())
        .args(["--registry-timeout", "99999999999999999999999h"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // clap's usage-error exit code, which is also "could not evaluate".
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--registry-timeout"), "the flag is named: {stderr}");
    assert!(stderr.contains("\"99999999999999999999999h\" is longer than 1h, the most allowed here"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

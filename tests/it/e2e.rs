//! End-to-end on a real control plane: etcd and kube-apiserver on loopback
//! (`scripts/e2e-cluster.sh`), the chart installed with real Helm, trustgate running as a host
//! process with the chart's TLS material and reached by the API server at the chart's Service
//! (an EndpointSlice points it at 127.0.0.1), images in a real registry signed by real cosign.
//! Every assertion is on what `kubectl` prints to a developer.
//!
//! One test function, in order: the control plane is the expensive part, and the cases build
//! on each other (install, enforce, change policy, stop the server, upgrade, uninstall).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::cosign::{KeyPair, KeyType};
use crate::common::keyless::{LeafSpec, LocalCa, TEST_OIDC_ISSUER, WORKFLOW_IDENTITY};
use crate::common::machine;
use crate::common::registry::{PushedImage, Registry};
use crate::common::sbom::{syft_sbom, SbomFormat};
use crate::common::tools::free_port;
use crate::common::webhook::ServeProcess;

const NS: &str = "trustgate-system";
const RELEASE: &str = "trustgate";

/// The control plane; stopped on drop.
struct ControlPlane {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl ControlPlane {
    fn start() -> ControlPlane {
        let dir = tempfile::Builder::new().prefix("trustgate-e2e-").tempdir().unwrap();
        let out = Command::new("bash").arg(script("e2e-cluster.sh")).arg("start").arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "control plane did not start:\n{}", String::from_utf8_lossy(&out.stderr));
        let env_file = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let env = std::fs::read_to_string(&env_file)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        ControlPlane { dir, env }
    }

    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(&self.env[name]);
        c.env("KUBECONFIG", &self.env["KUBECONFIG"]);
        c
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.tool("TRUSTGATE_KUBECTL").args(args).output().unwrap()
    }

    /// `kubectl apply -f -` of `yaml` (plus extra args).
    fn apply(&self, yaml: &str, extra: &[&str]) -> Output {
        let mut child = self
            .tool("TRUSTGATE_KUBECTL")
            .args(["apply", "-f", "-"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), yaml.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn helm(&self, args: &[&str]) -> Output {
        self.tool("TRUSTGATE_HELM").args(args).output().unwrap()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script("e2e-cluster.sh")).arg("stop").arg(self.dir.path()).output();
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got:\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// trustgate as a host process in cluster mode on `port`, with the chart's TLS material in
/// `tls`; killed on drop.
fn start_server(cp: &ControlPlane, port: u16, tls: &Path, registries: &[&str]) -> ServeProcess {
    let (cert, key) = (tls.join("tls.crt").display().to_string(), tls.join("tls.key").display().to_string());
    let listen = format!("127.0.0.1:{port}");
    let registries = registries.join(",");
    let args = ["--listen", &listen, "--tls-cert", &cert, "--tls-key", &key];
    let args = [&args[..], &["--insecure-registry", &registries, "--negative-cache-ttl", "1s"]].concat();
    let log = cp.dir.path().join(format!("trustgate-{port}.log"));
    ServeProcess::start(&args, &[("KUBECONFIG", &cp.env["KUBECONFIG"])], &log)
}

fn policy(name: &str, registry: &str, mode: &str, key: &KeyPair) -> String {
    format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: {name}\nspec:\n  images:\n    - glob: \"{registry}/shop/**\"\n  mode: {mode}\n  signatures:\n    authorities:\n{}",
        key.authority_yaml("release-key")
    )
}

fn deployment(ns: &str, name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: app\n          image: {image}\n"
    )
}

fn pod_with_init(ns: &str, name: &str, init: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  initContainers:\n    - name: init\n      image: {init}\n  containers:\n    - name: app\n      image: {app}\n"
    )
}

/// The pod spec lines, indented by `indent`, of a Pod that runs `app` and mounts `volume` as an
/// OCI image volume at /data.
fn image_volume_spec(indent: &str, app: &str, volume: &str) -> String {
    let spec = format!(
        "containers:\n  - name: app\n    image: {app}\n    volumeMounts: [{{name: data, mountPath: /data, readOnly: true}}]\nvolumes:\n  - name: data\n    image: {{reference: {volume}, pullPolicy: IfNotPresent}}\n"
    );
    spec.lines().map(|line| format!("{indent}{line}\n")).collect()
}

fn pod_with_image_volume(ns: &str, name: &str, app: &str, volume: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{}",
        image_volume_spec("  ", app, volume)
    )
}

fn deployment_with_image_volume(ns: &str, name: &str, app: &str, volume: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n{}",
        image_volume_spec("      ", app, volume)
    )
}

fn cronjob(ns: &str, name: &str, image: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n            - name: job\n              image: {image}\n"
    )
}

/// Retries `f` until it returns true (policy changes reach the server through a watch).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn decode_secret_field(cp: &ControlPlane, field: &str) -> Vec<u8> {
    use base64::Engine as _;
    let jsonpath = format!("jsonpath={{.data.{}}}", field.replace('.', "\\."));
    let b64 = ok(&cp.kubectl(&["-n", NS, "get", "secret", &format!("{RELEASE}-tls"), "-o", &jsonpath]));
    base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap()
}

#[test]
fn trustgate_on_a_real_api_server() {
    // The API server gives the webhook 5 s: no other test may load the machine meanwhile.
    let _alone = machine::alone();
    let cp = ControlPlane::start();
    let registry = Registry::start();
    let private = Registry::start_with_htpasswd();
    let key = KeyPair::generate(KeyType::P256);
    let other = KeyPair::generate(KeyType::P256);
    let push_signed = |tag: &str, k: &KeyPair| -> PushedImage {
        let image = registry.push_image("shop/api", tag);
        k.sign(&image.digest_ref);
        image
    };
    let signed = push_signed("v1", &key);
    let unsigned = registry.push_image("shop/api", "v2");
    let wrongly_signed = push_signed("v3", &other);

    // The chart: lint, a dry-run of what it renders, then a real install.
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/trustgate");
    ok(&cp.helm(&["lint", "--strict", chart]));
    ok(&cp.kubectl(&["create", "namespace", NS]));
    let rendered = ok(&cp.helm(&["template", RELEASE, chart, "-n", NS, "--include-crds"]));
    ok(&cp.apply(&rendered, &["--dry-run=server"]));
    ok(&cp.helm(&["install", RELEASE, chart, "-n", NS, "--set", &format!("insecureRegistries={{{}}}", registry.addr)]));
    let webhooks = ok(&cp.kubectl(&["get", "validatingwebhookconfigurations", "-o", "name"]));
    assert!(webhooks.contains(&format!("validatingwebhookconfiguration.admissionregistration.k8s.io/{RELEASE}")));

    // The chart's TLS material, served by a host process the chart's Service points at.
    let tls = cp.dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    let ca_before = decode_secret_field(&cp, "ca.crt");
    std::fs::write(tls.join("tls.crt"), decode_secret_field(&cp, "tls.crt")).unwrap();
    std::fs::write(tls.join("tls.key"), decode_secret_field(&cp, "tls.key")).unwrap();
    let port = free_port();
    let endpoint = Command::new("bash")
        .arg(script("e2e-cluster.sh"))
        .args(["endpoint-yaml", NS, RELEASE, &port.to_string(), "https"])
        .output()
        .unwrap();
    ok(&cp.apply(&ok(&endpoint), &[]));
    let mut server = start_server(&cp, port, &tls, &[&registry.addr, &private.addr]);

    ok(&cp.kubectl(&["create", "namespace", "shop"]));
    ok(&cp.kubectl(&["-n", "shop", "create", "serviceaccount", "default"]));
    ok(&cp.apply(&policy("shop-release", &registry.addr, "enforce", &key), &[]));
    ok(&cp.kubectl(&["wait", "--for=condition=Ready", "clusterimagepolicy/shop-release", "--timeout=20s"]));

    // A developer applies an unsigned Deployment: denied, saying where, what and how to fix.
    let denied = failed(&cp.apply(&deployment("shop", "api", &unsigned.tag_ref), &[]));
    for part in [
        "admission webhook \"validate.trustgate.dev\" denied the request: trustgate denied Deployment shop/api:",
        &format!("spec.template.spec.containers[0].image {} ({})", unsigned.tag_ref, unsigned.digest),
        "policy \"shop-release\": no signature found; the policy requires one verified by [release-key]",
        &format!("sign with: cosign sign --key <key> {}", unsigned.digest_ref),
    ] {
        assert!(denied.contains(part), "missing {part:?} in:\n{denied}");
    }
    // The same answer for a server-side dry run.
    let dry = failed(&cp.apply(&deployment("shop", "api", &unsigned.tag_ref), &["--dry-run=server"]));
    assert!(dry.contains("no signature found"), "{dry}");
    // Signed: created.
    let created = ok(&cp.apply(&deployment("shop", "api", &signed.tag_ref), &[]));
    assert!(created.contains("deployment.apps/api created"), "{created}");
    // Signed by another key, by digest: denied as untrusted.
    let denied = failed(&cp.apply(&deployment("shop", "web", &wrongly_signed.digest_ref), &[]));
    assert!(denied.contains("1 signature found, none verified by any of [release-key]"), "{denied}");
    // A CronJob and a Pod whose init container is unsigned.
    let denied = failed(&cp.apply(&cronjob("shop", "nightly", &unsigned.tag_ref), &[]));
    assert!(denied.contains("trustgate denied CronJob shop/nightly:"), "{denied}");
    assert!(denied.contains("spec.jobTemplate.spec.template.spec.containers[0].image"), "{denied}");
    let denied = failed(&cp.apply(&pod_with_init("shop", "p", &unsigned.tag_ref, &signed.digest_ref), &[]));
    assert!(denied.contains(&format!("spec.initContainers[0].image {}", unsigned.tag_ref)), "{denied}");
    assert!(!denied.contains("spec.containers[0].image"), "the signed container passes: {denied}");

    // An image a Pod mounts as an image volume needs a signature like an image it runs.
    let denied = failed(&cp.apply(&pod_with_image_volume("shop", "model", &signed.digest_ref, &unsigned.tag_ref), &[]));
    for part in [
        "trustgate denied Pod shop/model:",
        &format!("spec.volumes[0].image.reference {} ({})", unsigned.tag_ref, unsigned.digest),
        "policy \"shop-release\": no signature found",
        &format!("sign with: cosign sign --key <key> {}", unsigned.digest_ref),
    ] {
        assert!(denied.contains(part), "missing {part:?} in:\n{denied}");
    }
    assert!(!denied.contains("spec.containers[0].image"), "the signed container passes: {denied}");
    let created = ok(&cp.apply(&pod_with_image_volume("shop", "model", &signed.digest_ref, &signed.tag_ref), &[]));
    assert!(created.contains("pod/model created"), "{created}");
    let stored =
        ok(&cp.kubectl(&["-n", "shop", "get", "pod", "model", "-o", "jsonpath={.spec.volumes[0].image.reference}"]));
    assert_eq!(stored, signed.tag_ref, "the API server keeps the image volume it admitted");
    let denied =
        failed(&cp.apply(&deployment_with_image_volume("shop", "model", &signed.digest_ref, &unsigned.tag_ref), &[]));
    assert!(denied.contains("trustgate denied Deployment shop/model:"), "{denied}");
    assert!(
        denied.contains(&format!("spec.template.spec.volumes[0].image.reference {}", unsigned.tag_ref)),
        "{denied}"
    );

    // Excluded namespaces are never sent to trustgate.
    ok(&cp.kubectl(&["create", "namespace", "sandbox"]));
    ok(&cp.kubectl(&["label", "namespace", "sandbox", "trustgate.dev/ignore=true"]));
    ok(&cp.apply(&deployment("sandbox", "api", &unsigned.tag_ref), &[]));
    ok(&cp.apply(&deployment("kube-system", "unsigned", &unsigned.tag_ref), &[]));

    // Warn mode: created, and kubectl prints the warning.
    ok(&cp.apply(&policy("shop-release", &registry.addr, "warn", &key), &[]));
    eventually("warn mode is in force", || {
        let out = cp.apply(&deployment("shop", "warned", &unsigned.tag_ref), &["--dry-run=server"]);
        out.status.success()
    });
    let out = cp.apply(&deployment("shop", "warned", &unsigned.tag_ref), &[]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Warning: trustgate: spec.template.spec.containers[0].image"), "{stderr}");
    assert!(stderr.contains("no signature found"), "{stderr}");

    // A policy changed with kubectl (now trusting only the other key) applies without a restart.
    ok(&cp.apply(&policy("shop-release", &registry.addr, "enforce", &other), &[]));
    eventually("the changed key is in force", || {
        let out = cp.apply(&deployment("shop", "api2", &signed.tag_ref), &["--dry-run=server"]);
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("none verified")
    });
    ok(&cp.apply(&deployment("shop", "web", &wrongly_signed.digest_ref), &["--dry-run=server"]));
    // Deleted: the image is governed by no policy, and unmatched images are denied.
    ok(&cp.kubectl(&["delete", "clusterimagepolicy", "shop-release"]));
    eventually("the deleted policy is gone", || {
        let out = cp.apply(&deployment("shop", "api3", &signed.tag_ref), &["--dry-run=server"]);
        String::from_utf8_lossy(&out.stderr).contains("no ClusterImagePolicy governs")
    });
    ok(&cp.apply(&policy("shop-release", &registry.addr, "enforce", &key), &[]));

    // A malformed policy is rejected by the API server itself.
    let rejected = failed(&cp.apply(&policy("bad", &registry.addr, "strict", &key), &[]));
    assert!(rejected.contains("spec.mode: Unsupported value: \"strict\""), "{rejected}");
    let two_of_one = policy("bad", &registry.addr, "enforce", &key)
        .replace("    authorities:", "    threshold: 2\n    authorities:");
    let rejected = failed(&cp.apply(&two_of_one, &[]));
    assert!(rejected.contains("threshold cannot exceed the number of authorities"), "{rejected}");
    let zero = policy("bad", &registry.addr, "enforce", &key)
        .replace("    authorities:", "    threshold: 0\n    authorities:");
    let rejected = failed(&cp.apply(&zero, &[]));
    assert!(rejected.contains("signatures.threshold 0 requires attestations"), "{rejected}");
    let stranger = format!(
        "{}  attestations:\n    - name: sbom\n      predicateType: cyclonedx\n      authorities: [stranger]\n",
        policy("bad", &registry.addr, "enforce", &key)
    );
    let rejected = failed(&cp.apply(&stranger, &[]));
    assert!(rejected.contains("attestation authorities must be names from signatures.authorities"), "{rejected}");
    let keyless_head =
        policy("bad", &registry.addr, "enforce", &key).split("      - name: release-key").next().unwrap().to_owned();
    let keyless_bad = |identity: &str, log: &str| {
        format!(
            "{keyless_head}      - name: ci\n        keyless:\n          identities:\n            - {identity}\n          transparencyLog: {log}\n"
        )
    };
    // (CEL rules run only once the schema is satisfied, so one problem per object.)
    let rejected = failed(&cp.apply(&keyless_bad("{issuer: https://i.example, subject: a}", "sometimes"), &[]));
    assert!(rejected.contains("Unsupported value: \"sometimes\""), "{rejected}");
    let rejected =
        failed(&cp.apply(&keyless_bad("{issuer: https://i.example, subject: a, subjectRegExp: b}", "skip"), &[]));
    assert!(rejected.contains("give exactly one of subject or subjectRegExp"), "{rejected}");
    let neither = format!("{keyless_head}      - name: ci\n");
    let rejected = failed(&cp.apply(&neither, &[]));
    assert!(rejected.contains("give exactly one of key or keyless"), "{rejected}");
    // An SBOM age no number could hold is refused by the CRD's schema, naming the field; the
    // longest age a policy may give is accepted.
    let max_age = |age: &str| {
        format!(
            "{}  attestations:\n    - name: sbom\n      predicateType: cyclonedx\n      authorities: [release-key]\n      sbom:\n        maxAge: {age}\n",
            policy("bad", &registry.addr, "enforce", &key)
        )
    };
    let rejected = failed(&cp.apply(&max_age("99999999999999999999999h"), &[]));
    assert!(
        rejected.contains("spec.attestations[0].sbom.maxAge: Invalid value: \"99999999999999999999999h\""),
        "{rejected}"
    );
    ok(&cp.apply(&max_age("876000h"), &["--dry-run=server"]));

    // A private registry: the Pod's pull secret, or its service account's, lets trustgate read
    // the signatures; without one the denial says the registry refused access.
    let private_image = private.push_image("shop/private", "v1");
    key.sign_on(&private, &private_image.digest_ref);
    ok(&cp.apply(&policy("private", &private.addr, "enforce", &key), &[]));
    ok(&cp.kubectl(&["wait", "--for=condition=Ready", "clusterimagepolicy/private", "--timeout=20s"]));
    let (user, password) = private.credentials().unwrap();
    ok(&cp.kubectl(&[
        "-n",
        "shop",
        "create",
        "secret",
        "docker-registry",
        "pull",
        &format!("--docker-server={}", private.addr),
        &format!("--docker-username={user}"),
        &format!("--docker-password={password}"),
    ]));
    let pod = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n{extra}  containers:\n    - name: app\n      image: {}\n",
            private_image.tag_ref
        )
    };
    let denied = failed(&cp.apply(&pod("no-secret", ""), &[]));
    assert!(
        denied.contains(&format!("registry {} refused access to shop/private (HTTP 401)", private.addr)),
        "{denied}"
    );
    assert!(!denied.contains("no signature"), "{denied}");
    ok(&cp.apply(&pod("with-secret", "  imagePullSecrets: [{name: pull}]\n"), &[]));
    ok(&cp.kubectl(&["-n", "shop", "create", "serviceaccount", "builder"]));
    ok(&cp.kubectl(&[
        "-n",
        "shop",
        "patch",
        "serviceaccount",
        "builder",
        "-p",
        r#"{"imagePullSecrets":[{"name":"pull"}]}"#,
    ]));
    eventually("the service account's pull secret is used", || {
        cp.apply(&pod("via-account", "  serviceAccountName: builder\n"), &[]).status.success()
    });

    // An image whose SBOM (made by syft, attested by cosign) has a denied license.
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sbom-src");
    let sbom_image = registry.push_image_with_tree("sbom/app", "v1", &tree, "/app");
    let sbom_file = cp.dir.path().join("sbom.cdx.json");
    syft_sbom(&format!("registry:{}", sbom_image.digest_ref), SbomFormat::CycloneDx, &sbom_file);
    key.attest(&sbom_image.digest_ref, "cyclonedx", &sbom_file);
    let pem = key.public_key_pem.trim().replace('\n', "\n            ");
    let sbom_policy = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: approved-sbom\nspec:\n  images:\n    - glob: \"{}/sbom/**\"\n  signatures:\n    threshold: 0\n    authorities:\n      - name: release-key\n        key:\n          publicKey: |\n            {pem}\n  attestations:\n    - name: sbom\n      predicateType: cyclonedx\n      authorities: [release-key]\n      sbom:\n        deniedLicenses: [AGPL-3.0-only]\n",
        registry.addr
    );
    ok(&cp.apply(&sbom_policy, &[]));
    ok(&cp.kubectl(&["wait", "--for=condition=Ready", "clusterimagepolicy/approved-sbom", "--timeout=20s"]));
    let denied = failed(&cp.apply(&deployment("shop", "sbom-app", &sbom_image.tag_ref), &[]));
    for part in [
        "trustgate denied Deployment shop/sbom-app:",
        &format!("spec.template.spec.containers[0].image {} ({})", sbom_image.tag_ref, sbom_image.digest),
        "policy \"approved-sbom\": SBOM (CycloneDX) denies license AGPL-3.0-only in pkg:npm/agpl-thing@1.0.0",
    ] {
        assert!(denied.contains(part), "missing {part:?} in:\n{denied}");
    }

    // Keyless: a CI identity certified by a private CA (standing in for Fulcio), signed in the
    // sigstore bundle format; the trust root comes from a Secret.
    let ca = LocalCa::generate("trustgate e2e fulcio");
    let root_file = cp.dir.path().join("trusted_root.json");
    std::fs::write(&root_file, ca.trusted_root_json()).unwrap();
    ok(&cp.kubectl(&[
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "ci-trust-root",
        &format!("--from-file=trusted_root.json={}", root_file.display()),
    ]));
    let keyless_policy = format!(
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: keyless-ci\nspec:\n  images:\n    - glob: \"{}/ci/**\"\n  signatures:\n    authorities:\n      - name: ci\n        keyless:\n          identities:\n            - issuer: {TEST_OIDC_ISSUER}\n              subjectRegExp: 'https://github\\.com/acme/.+@refs/heads/main'\n          trustRoot:\n            secretRef: {{name: ci-trust-root, namespace: {NS}}}\n          transparencyLog: skip\n",
        registry.addr
    );
    ok(&cp.apply(&keyless_policy, &[]));
    ok(&cp.kubectl(&["wait", "--for=condition=Ready", "clusterimagepolicy/keyless-ci", "--timeout=20s"]));
    let ci_image = registry.push_image("ci/app", "v1");
    ca.issue(&LeafSpec::uri(WORKFLOW_IDENTITY)).sign_on(&registry, &ci_image.digest_ref, true);
    ok(&cp.apply(&deployment("shop", "ci-app", &ci_image.tag_ref), &[]));
    let stranger_image = registry.push_image("ci/other", "v1");
    ca.issue(&LeafSpec::email("someone@evil.example")).sign_on(&registry, &stranger_image.digest_ref, true);
    let denied = failed(&cp.apply(&deployment("shop", "ci-other", &stranger_image.tag_ref), &[]));
    for part in [
        "trustgate denied Deployment shop/ci-other:",
        &format!("spec.template.spec.containers[0].image {} ({})", stranger_image.tag_ref, stranger_image.digest),
        "policy \"keyless-ci\"",
        "signed by someone@evil.example (issuer https://issuer.example), which is none of the authority's identities",
    ] {
        assert!(denied.contains(part), "missing {part:?} in:\n{denied}");
    }

    // The server stopped: enforced namespaces fail closed, kube-system keeps working.
    server.terminate();
    let out = failed(&cp.apply(&deployment("shop", "api4", &signed.tag_ref), &[]));
    assert!(out.contains("failed calling webhook \"validate.trustgate.dev\""), "{out}");
    ok(&cp.apply(&deployment("kube-system", "still-works", &signed.tag_ref), &[]));

    // helm upgrade keeps the certificates; the restarted server is trusted as before.
    ok(&cp.helm(&["upgrade", RELEASE, chart, "-n", NS, "--reuse-values", "--set", "replicaCount=2"]));
    assert_eq!(decode_secret_field(&cp, "ca.crt"), ca_before, "helm upgrade must keep the CA");
    let mut server = start_server(&cp, port, &tls, &[&registry.addr, &private.addr]);
    eventually("the restarted server answers", || {
        cp.apply(&deployment("shop", "api", &signed.tag_ref), &[]).status.success()
    });

    // helm uninstall leaves no webhook behind to block the cluster.
    server.terminate();
    ok(&cp.helm(&["uninstall", RELEASE, "-n", NS]));
    let webhooks = ok(&cp.kubectl(&["get", "validatingwebhookconfigurations", "-o", "name"]));
    assert!(!webhooks.contains(RELEASE), "{webhooks}");
    ok(&cp.apply(&deployment("shop", "after-uninstall", &unsigned.tag_ref), &[]));
}

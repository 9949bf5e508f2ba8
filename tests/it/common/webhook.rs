//! The webhook in the test process: [`app_state`] builds the router's state over file policies
//! and a real registry client, for `tower::ServiceExt::oneshot` (router tests) and for serving
//! over real TLS (server tests); [`ServeProcess`] runs `trustgate serve` as a process of its
//! own, as a cluster would.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tools::free_port;

/// Webhook state over file policies (`policies_yaml`, which must be valid) and a real registry
/// client configured by `registry`, for router and server tests.
pub fn app_state(
    policies_yaml: &str,
    registry: trustgate::evidence::RegistryConfig,
    settings: trustgate::server::Settings,
) -> trustgate::server::AppState {
    use std::sync::Arc;
    let (policies, errors) = trustgate::policy::parse_documents(policies_yaml);
    assert!(errors.is_empty(), "{errors:?}");
    let metrics = Arc::new(trustgate::metrics::Metrics::default());
    let client = trustgate::evidence::RegistryClient::new(registry, metrics.clone()).expect("registry client");
    let engine = trustgate::engine::Engine::new(
        trustgate::policy::PolicySet::new(policies),
        Arc::new(client),
        trustgate::cache::Caches::new(trustgate::cache::CacheConfig::default()),
        trustgate::decision::Unmatched::Deny,
        metrics.clone(),
    );
    trustgate::server::AppState::new(Arc::new(engine), metrics, settings)
}

/// `trustgate serve` as a process of its own, as the floods and the end-to-end tier run it;
/// killed on drop.
pub struct ServeProcess {
    child: Child,
    log: PathBuf,
    probe: u16,
    /// Held while the server runs: a server process loads the machine.
    _machine: super::machine::Shared,
}

impl ServeProcess {
    /// Starts `trustgate serve --probe-listen 127.0.0.1:PROBE ARGS...` (on a free probe port)
    /// with `env` added to its environment and its output written to `log`, and waits until
    /// `/readyz` answers 200. Panics, with the log, if it is not ready within 30 s.
    pub fn start<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)], log: &Path) -> ServeProcess {
        let machine = super::machine::shared();
        let probe = free_port();
        let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let child = Command::new(env!("CARGO_BIN_EXE_trustgate"))
            .arg("serve")
            .args(["--probe-listen", &format!("127.0.0.1:{probe}")])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log handle"))
            .stderr(file)
            .spawn()
            .expect("start trustgate serve");
        let server = ServeProcess { child, log: log.to_owned(), probe, _machine: machine };
        let started = Instant::now();
        while !Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{probe}/readyz")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(started.elapsed() < Duration::from_secs(30), "trustgate did not become ready:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The text of its `/metrics` (Prometheus exposition format), from the probe port.
    pub fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args(["-sSf", "--max-time", "10", &format!("http://127.0.0.1:{}/metrics", self.probe)])
            .stdin(Stdio::null())
            .output()
            .expect("run curl");
        assert!(out.status.success(), "GET /metrics: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the server wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server as Kubernetes would, with SIGTERM, and waits until it exits.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Running the trustgate binary from tests, and reading what it said (its exit code, and the
//! JSON decision of `verify` and `evaluate`).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const TRUSTGATE: &str = env!("CARGO_BIN_EXE_trustgate");

pub const ADMITTED: i32 = 0;
pub const DENIED: i32 = 1;
pub const COULD_NOT_EVALUATE: i32 = 2;

/// One run of the binary.
pub struct Run {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Wall-clock time of the run.
    pub took: Duration,
}

impl Run {
    /// Asserts the exit code, showing everything the binary said if it differs.
    #[track_caller]
    pub fn expect_exit(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code of `{}`\n{self}", self.command);
        self
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- exit: {:?}\n--- stdout:\n{}\n--- stderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `trustgate ARGS` with no `TRUSTGATE_*` variables from the test's environment.
pub fn trustgate(args: &[&str]) -> Run {
    // A process of its own loads the machine: not while a test measures it.
    let _machine = super::machine::shared();
    let mut cmd = Command::new(TRUSTGATE);
    cmd.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TRUSTGATE_") {
            cmd.env_remove(name);
        }
    }
    let started = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {TRUSTGATE}: {e}"));
    Run {
        command: format!("trustgate {}", args.join(" ")),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// The only image of a `verify` decision.
#[track_caller]
pub fn only_image(decision: &Value) -> &Value {
    let images = decision["images"].as_array().unwrap_or_else(|| panic!("no images: {decision:#}"));
    assert_eq!(images.len(), 1, "{decision:#}");
    &images[0]
}

/// The first finding of the first policy of the only image.
#[track_caller]
pub fn finding(decision: &Value) -> &Value {
    &only_image(decision)["policies"][0]["findings"][0]
}

/// The lines of a list field of a decision (`denials`, `warnings`, `audits`).
#[track_caller]
pub fn lines<'a>(decision: &'a Value, field: &str) -> Vec<&'a str> {
    decision[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field}: {decision:#}"))
        .iter()
        .map(|l| l.as_str().expect("a line is a string"))
        .collect()
}

/// The only denial line of a decision.
#[track_caller]
pub fn only_denial(decision: &Value) -> &str {
    let denials = lines(decision, "denials");
    assert_eq!(denials.len(), 1, "{decision:#}");
    denials[0]
}

/// Asserts that `text` contains each of `parts`.
#[track_caller]
pub fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

//! Real-component test harness: a real registry on loopback, real images, real cosign, real
//! syft, and the `trustgate` binary run over them.
//!
//! Everything here drives the real tools (DESIGN.md, "Real components"): the Debian
//! `docker-registry` (distribution 2.8), `umoci` + `skopeo` to build and push images without a
//! daemon, the pinned cosign CLI to generate keys, sign and attest, and syft for SBOMs. Plain
//! HTTP calls to the registry API go through `curl`, so the harness needs no crates beyond the
//! crate's own dependencies and `tempfile`.
//!
//! One module per concern, in the order a test meets them:
//!
//! | module | what |
//! |---|---|
//! | [`tools`] | finding the real binaries (`TRUSTGATE_*` from `scripts/tools.sh`), running commands, free ports |
//! | [`registry`] | [`registry::Registry`]: distribution or our referrers registry on loopback, pushing images, the registry API over curl, TLS |
//! | [`cosign`] | [`cosign::KeyPair`]: keys, classic `.sig` signatures and `.att` attestations, and forging them |
//! | [`bundles`] | cosign v3's sigstore bundles, as OCI referrers or the referrers tag fallback |
//! | [`keyless`] | a local CA standing in for Fulcio, and cosign signing with its certificates |
//! | [`sbom`] | SBOMs from the real syft |
//! | [`workspace`] | [`workspace::Workspace`]: a policy directory (and registry) that `trustgate verify` / `evaluate` run over |
//! | [`cli`] | running the `trustgate` binary, and reading its exit code and JSON decision |
//! | [`review`] | AdmissionReviews, and posting them over TLS keep-alive as the API server does |
//! | [`webhook`] | the webhook's router state in the test process; `trustgate serve` as a process |
//! | [`machine`] | the few tests that measure the machine have it alone; the rest share it |
//!
//! Rules the harness keeps:
//! - no global state but the [`machine`] gate: every [`registry::Registry`] has its own free
//!   loopback port and temporary directory, so tests can run in parallel threads;
//! - everything listens on `127.0.0.1` only, and everything started is stopped on `Drop`;
//! - missing tools make tests **fail** (panic with "run scripts/tools.sh first"), never skip.

pub mod bundles;
pub mod cli;
pub mod cosign;
pub mod keyless;
pub mod machine;
pub mod registry;
pub mod review;
pub mod sbom;
pub mod tools;
pub mod webhook;
pub mod workspace;

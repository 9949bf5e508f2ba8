#!/usr/bin/env bash
# The test command (README, CI): installs the real components once per machine, then runs
# formatting, lints, the manifest drift and chart checks, every test tier (unit, integration
# against a real registry and cosign, end to end on a real kube-apiserver), and a short run of
# every fuzz target (scripts/fuzz.sh; TRUSTGATE_FUZZ_SECONDS, default 30, each).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1090
source "$(bash scripts/tools.sh)"
# kube-apiserver, kubectl, etcd and helm for the end-to-end tier (built once per machine).
# shellcheck disable=SC1090
source "$(bash scripts/e2e-tools.sh)"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)
scripts/render-manifests.sh --check
"$TRUSTGATE_HELM" lint --strict charts/trustgate
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
scripts/fuzz.sh "${TRUSTGATE_FUZZ_SECONDS:-30}"

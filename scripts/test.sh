#!/usr/bin/env bash
# The test command (README, CI): installs the real components once per machine, then runs
# formatting, lints and every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1090
source "$(bash scripts/tools.sh)"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets

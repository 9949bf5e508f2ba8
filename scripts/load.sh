#!/usr/bin/env bash
# Load and latency measurements of `trustgate serve`, release build: the scenarios of
# tests/it/load.rs (cached reviews at max rate with wrk and at fixed rates with oha, open loop;
# cold, burst, concurrent and cache-fill reviews of never-seen images) against the real
# registry on loopback, with images signed by the real cosign. Every answer is checked; the
# table it prints goes into docs/benchmarks.md.
#
#   scripts/load.sh        install the tools (once per machine), build, run, print the table
#
# Knobs (environment; defaults in tests/it/load.rs):
#   LOAD_DURATION=20         seconds per generator run
#   LOAD_THREADS=2 LOAD_CONNECTIONS=32        wrk, max rate (closed loop)
#   LOAD_RATES=2000,5000 LOAD_RATE_CONNECTIONS=16 LOAD_RUNS=5   oha, fixed rates (open loop)
#   LOAD_COLD=20 LOAD_BURST=100 LOAD_FILL=10000                 never-seen images
#   LOAD_STRICT=1            fail when a target of DESIGN.md is missed (default: report only)
#   TRUSTGATE_LOG=info       the server's log filter (info: one line per decision, as deployed)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1090
source "$(bash scripts/tools.sh)"
exec cargo test --release --locked --test it load::measure -- --ignored --exact --nocapture

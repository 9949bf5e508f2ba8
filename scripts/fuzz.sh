#!/usr/bin/env bash
# The fuzz targets in fuzz/ (cargo fuzz, libFuzzer, nightly Rust): builds them and runs each
# for a while from the committed seeds. A crash fails the run and leaves its input in
# fuzz/artifacts/TARGET/; add it as a regression test where the bug is fixed.
#
#   scripts/fuzz.sh              every target, 30 s each (CI)
#   scripts/fuzz.sh 600 sbom     one target, 10 minutes
#
# What the fuzzer finds beyond the seeds goes to a scratch directory, not into fuzz/corpus/
# (add an input there by hand when it is worth keeping). cargo-fuzz is installed once per
# machine into ~/.cache/trustgate, keyed by version, like the other tools.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH="${1:-30}"
shift || true
CACHE="${TRUSTGATE_CACHE:-$HOME/.cache/trustgate}"
log() { echo "fuzz: $*" >&2; }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal >&2
fi
FUZZ_DIR="$CACHE/cargo-fuzz-$CARGO_FUZZ_VERSION"
if [ ! -x "$FUZZ_DIR/bin/cargo-fuzz" ]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$FUZZ_DIR.partial.$$" >&2
  rm -rf "$FUZZ_DIR" && mv "$FUZZ_DIR.partial.$$" "$FUZZ_DIR"
fi
export PATH="$FUZZ_DIR/bin:$PATH"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
log "building ${#targets[@]} targets"
# cargo fuzz has no --locked: check that the committed fuzz/Cargo.lock needs no change first.
(cd fuzz && cargo +nightly metadata --locked --format-version 1 >/dev/null && cargo +nightly fuzz build >&2)

scratch="$(mktemp -d "${TMPDIR:-/tmp}/trustgate-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  log "$t: ${SECONDS_EACH}s"
  # New inputs go to the scratch corpus (the first directory); the seeds are only read.
  (cd fuzz && cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$scratch/$t.log" 2>&1) || {
    tail -n 60 "$scratch/$t.log" >&2
    log "$t FAILED; the input is in fuzz/artifacts/$t/"
    exit 1
  }
  grep -E '^stat::number_of_executed_units|^Done' "$scratch/$t.log" | tr '\n' ' ' >&2 || true
  echo >&2
done
log "all ${#targets[@]} targets ran ${SECONDS_EACH}s each without a crash"

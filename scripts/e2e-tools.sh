#!/usr/bin/env bash
# Builds the real Kubernetes components the end-to-end tier uses (DESIGN.md, "Real
# components"), once per machine, into a cache outside the repository keyed by version:
#
#   ~/.cache/trustgate/kubernetes-<v>/{kube-apiserver,kubectl}  from the Go module k8s.io/kubernetes
#   ~/.cache/trustgate/etcd-<v>/etcd                            from go.etcd.io/etcd/server/v3
#   ~/.cache/trustgate/helm-<v>/helm                            from helm.sh/helm/v3
#
# Everything comes from the Go module proxy; nothing is downloaded from anywhere else. A
# cold machine needs roughly 15-25 minutes of CPU on 2 cores (kube-apiserver dominates); a
# warm machine only checks that each binary is there. Safe to run concurrently (a lock
# serialises builders) and safe to interrupt (each tool is built into a scratch directory
# and renamed into place only when complete).
#
#   scripts/e2e-tools.sh                 build what is missing, print the env file's path
#   source "$(scripts/e2e-tools.sh)"     export TRUSTGATE_{KUBE_APISERVER,KUBECTL,ETCD,HELM}
#
# Long builds on a shared machine: run it as `nice -n 19 scripts/e2e-tools.sh`.
set -euo pipefail

K8S_VERSION=v1.36.3    # k8s.io/kubernetes; its staging modules are published as v0.36.3
ETCD_VERSION=v3.6.16   # go.etcd.io/etcd/server/v3
HELM_VERSION=v3.19.5   # helm.sh/helm/v3

CACHE="${TRUSTGATE_CACHE:-$HOME/.cache/trustgate}"
K8S_DIR="$CACHE/kubernetes-$K8S_VERSION"
ETCD_DIR="$CACHE/etcd-$ETCD_VERSION"
HELM_DIR="$CACHE/helm-$HELM_VERSION"
ENV_FILE="$CACHE/e2e-tools.env"
mkdir -p "$CACHE"

log() { echo "e2e-tools: $*" >&2; }

# Go settings for every build: resolve modules freely (-mod=mod: our throwaway go.mod files
# start without go.sum), no VCS stamping (the sources come from the module cache), no
# surrounding go.work, static binaries like the upstream release builds (CGO_ENABLED=0).
export GOFLAGS="-mod=mod -buildvcs=false"
export GOWORK=off
export CGO_ENABLED=0

# Scratch space for the throwaway modules; removed on any exit.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/trustgate-e2e-tools.XXXXXX")"
cleanup() { rm -rf "$WORK"; rm -rf "$CACHE"/.*.partial.$$ 2>/dev/null || true; }
trap cleanup EXIT

have_all() { for f in "$@"; do [ -x "$f" ] || return 1; done; }

# The GoMod path of a module version in the local module cache (downloads the module).
gomod_of() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p'
}

# Builders run under an exclusive lock so two concurrent callers never build the same
# tool twice; each re-checks after taking the lock.
exec 9>"$CACHE/.e2e-tools.lock"

# ---------------------------------------------------------------------------------------
# kube-apiserver and kubectl from k8s.io/kubernetes.
#
# k8s.io/kubernetes's own go.mod replaces every k8s.io/* staging module with
# ./staging/src/k8s.io/<name>, which only works inside its git tree. A consumer module must
# replace each of them with the published v0.<minor>.<patch> instead; the list is read from
# the real go.mod so it follows the pinned version.
build_kubernetes() {
  local mod staging_version gomod go_line godebug out
  staging_version="v0${K8S_VERSION#v1}"           # v1.36.3 -> v0.36.3
  gomod="$(gomod_of "k8s.io/kubernetes@$K8S_VERSION")"
  [ -s "$gomod" ] || { log "no go.mod for k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  go_line="$(grep -m1 '^go ' "$gomod")"
  godebug="$(grep -m1 '^godebug ' "$gomod" || true)"

  mod="$WORK/kubernetes"
  mkdir -p "$mod"
  {
    echo "module trustgate.dev/e2e-tools"
    echo
    echo "$go_line"
    [ -z "$godebug" ] || echo "$godebug"
    echo
    echo "replace ("
    # Lines look like:  k8s.io/api => ./staging/src/k8s.io/api
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/k8s\.io/.*$#\1#p' "$gomod" |
      sort -u | while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
    echo ")"
  } >"$mod/go.mod"
  grep -q "k8s.io/api => k8s.io/api $staging_version" "$mod/go.mod" ||
    { log "could not read the staging modules from $gomod"; exit 1; }

  (cd "$mod" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
                       "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION" >&2)

  # Version stamping as hack/lib/version.sh does it, so --version reports the pinned
  # release instead of v0.0.0-master (the API server also derives its emulation version
  # from it).
  local major minor ldflags pkg
  major="${K8S_VERSION#v}"; major="${major%%.*}"
  minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done

  out="$CACHE/.kubernetes.partial.$$"
  mkdir -p "$out"
  (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$out/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl >&2)
  cp "$mod/go.mod" "$mod/go.sum" "$out/"          # provenance: exactly what was built
  rm -rf "$K8S_DIR"; mv "$out" "$K8S_DIR"
}

# ---------------------------------------------------------------------------------------
# etcd. Its main package is the root of the go.etcd.io/etcd/server/v3 module (main.go calls
# etcdmain.Main), but that module's go.mod has replace directives (../api, ../client/...),
# so `go install go.etcd.io/etcd/server/v3@<v>` is refused; build it from a throwaway
# module that requires it instead (its requirements pin api/client/pkg at the same tag).
build_etcd() {
  local mod="$WORK/etcd" out="$CACHE/.etcd.partial.$$"
  mkdir -p "$mod" "$out"
  printf 'module trustgate.dev/e2e-tools-etcd\n\ngo 1.26.0\n' >"$mod/go.mod"
  (cd "$mod" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 &&
     go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 >&2)
  cp "$mod/go.mod" "$mod/go.sum" "$out/"
  rm -rf "$ETCD_DIR"; mv "$out" "$ETCD_DIR"
}

# ---------------------------------------------------------------------------------------
# helm, with the version stamping of its Makefile: the release version, and the Kubernetes
# minor its client-go targets (used by `helm lint` deprecation checks and as the default
# .Capabilities.KubeVersion of `helm template`; without it both say v1.20).
build_helm() {
  local gomod client_go k8s_minor out="$CACHE/.helm.partial.$$" ldflags
  gomod="$(gomod_of "helm.sh/helm/v3@$HELM_VERSION")"
  client_go="$(sed -n 's/^[[:space:]]*k8s\.io\/client-go[[:space:]]\{1,\}\(v[0-9.]*\).*$/\1/p' "$gomod" | head -n1)"
  [ -n "$client_go" ] || { log "no k8s.io/client-go in $gomod"; exit 1; }
  k8s_minor="${client_go#v0.}"; k8s_minor="${k8s_minor%%.*}"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  mkdir -p "$out"
  # helm's go.mod has no replace directives, so a plain `go install pkg@version` works.
  GOBIN="$out" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  rm -rf "$HELM_DIR"; mv "$out" "$HELM_DIR"
}

timed() {
  local name="$1" start; shift
  start=$(date +%s)
  log "building $name (once per machine)"
  "$@"
  log "built $name in $(( $(date +%s) - start ))s"
}

if ! have_all "$K8S_DIR/kube-apiserver" "$K8S_DIR/kubectl" "$ETCD_DIR/etcd" "$HELM_DIR/helm"; then
  command -v go >/dev/null || { log "building needs Go 1.26 or newer on PATH"; exit 1; }
  flock 9
  have_all "$K8S_DIR/kube-apiserver" "$K8S_DIR/kubectl" ||
    timed "kube-apiserver + kubectl $K8S_VERSION" build_kubernetes
  have_all "$ETCD_DIR/etcd" || timed "etcd $ETCD_VERSION" build_etcd
  have_all "$HELM_DIR/helm" || timed "helm $HELM_VERSION" build_helm
  flock -u 9
fi

cat >"$ENV_FILE.tmp.$$" <<ENV
export TRUSTGATE_KUBE_APISERVER="$K8S_DIR/kube-apiserver"
export TRUSTGATE_KUBECTL="$K8S_DIR/kubectl"
export TRUSTGATE_ETCD="$ETCD_DIR/etcd"
export TRUSTGATE_HELM="$HELM_DIR/helm"
ENV
mv "$ENV_FILE.tmp.$$" "$ENV_FILE"
echo "$ENV_FILE"

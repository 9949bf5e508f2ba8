#!/usr/bin/env bash
# Regenerates what manifests/ and the chart derive from each other:
#
#   manifests/install.yaml                  the plain-YAML install, rendered from charts/trustgate
#   charts/trustgate/crds/*.yaml            copies of manifests/crds/*.yaml (the CRD generated
#                                           from the Rust types by `trustgate crds`)
#
#   scripts/render-manifests.sh            rewrite both
#   scripts/render-manifests.sh --check    change nothing; exit 1 with a diff if either is stale (CI)
#
# Helm: $TRUSTGATE_HELM, else the one scripts/e2e-tools.sh builds into ~/.cache/trustgate,
# else `helm` on PATH. The rendering is deterministic: install.yaml uses tls.mode=certManager
# (the chart's own generated certificates would differ on every render, since `helm template`
# cannot look up the existing Secret) and a pinned --kube-version (the chart gates a field on
# .Capabilities.KubeVersion, which would otherwise follow how helm was built).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMESPACE=trustgate-system
RELEASE=trustgate
# The oldest Kubernetes minor trustgate supports (k8s-openapi feature v1_33).
KUBE_VERSION=1.33.0
HELM_VERSION=v3.19.5   # as pinned in scripts/e2e-tools.sh

die() { echo "render-manifests: $*" >&2; exit 1; }

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) die "usage: $0 [--check]" ;;
esac

helm="${TRUSTGATE_HELM:-}"
if [ -z "$helm" ]; then
  cached="${TRUSTGATE_CACHE:-$HOME/.cache/trustgate}/helm-$HELM_VERSION/helm"
  if [ -x "$cached" ]; then
    helm="$cached"
  elif command -v helm >/dev/null; then
    helm="$(command -v helm)"
  else
    die "no helm: run scripts/e2e-tools.sh (builds helm $HELM_VERSION into ~/.cache/trustgate) or set TRUSTGATE_HELM"
  fi
fi
[ -x "$helm" ] || die "$helm is not executable"

render_install() {
  cat <<HEADER
# trustgate: plain-YAML install, generated from the Helm chart; do not edit.
# Regenerate with scripts/render-manifests.sh, which runs:
#
#   helm template $RELEASE charts/trustgate --namespace $NAMESPACE --include-crds \\
#     --set tls.mode=certManager --kube-version $KUBE_VERSION
#
# and puts the Namespace first. CI checks that this file is current
# (scripts/render-manifests.sh --check).
#
# TLS comes from cert-manager (tls.mode=certManager), which must be installed first:
# rendered with the chart's default tls.mode=helm, this file would hold a freshly generated
# CA and key on every render (\`helm template\` cannot reuse an existing Secret), so it
# could never be checked for drift, and would publish a private key. Without cert-manager,
# install with Helm instead (helm install trustgate charts/trustgate -n $NAMESPACE
# --create-namespace), which generates the certificates and keeps them across upgrades.
#
#   kubectl apply --server-side -f manifests/install.yaml
#
# Break-glass: kubectl delete validatingwebhookconfiguration $RELEASE
---
apiVersion: v1
kind: Namespace
metadata:
  name: $NAMESPACE
  labels:
    # trustgate's pods meet the restricted Pod Security Standard.
    pod-security.kubernetes.io/enforce: restricted
HEADER
  "$helm" template "$RELEASE" charts/trustgate --namespace "$NAMESPACE" --include-crds \
    --set tls.mode=certManager --kube-version "$KUBE_VERSION"
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/render-manifests.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

stale=0
if $check; then
  render_install >"$tmp/install.yaml"
  if ! diff -u manifests/install.yaml "$tmp/install.yaml" >"$tmp/diff"; then
    cat "$tmp/diff"
    echo "render-manifests: manifests/install.yaml is stale: run scripts/render-manifests.sh" >&2
    stale=1
  fi
  for crd in manifests/crds/*.yaml; do
    copy="charts/trustgate/crds/$(basename "$crd")"
    if ! diff -u "$copy" "$crd"; then
      echo "render-manifests: $copy differs from $crd: run scripts/render-manifests.sh" >&2
      stale=1
    fi
  done
  for copy in charts/trustgate/crds/*.yaml; do
    [ -e "manifests/crds/$(basename "$copy")" ] ||
      { echo "render-manifests: $copy has no counterpart in manifests/crds/" >&2; stale=1; }
  done
  [ "$stale" -eq 0 ] && echo "render-manifests: manifests/install.yaml and the chart's CRDs are current" >&2
  exit "$stale"
fi

# Copy the CRDs first: install.yaml includes them from the chart.
mkdir -p charts/trustgate/crds
rm -f charts/trustgate/crds/*.yaml
cp manifests/crds/*.yaml charts/trustgate/crds/
render_install >"$tmp/install.yaml"
mv "$tmp/install.yaml" manifests/install.yaml
echo "render-manifests: wrote manifests/install.yaml and charts/trustgate/crds/" >&2

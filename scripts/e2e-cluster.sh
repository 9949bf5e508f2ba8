#!/usr/bin/env bash
# A real Kubernetes control plane for the end-to-end tier: etcd and kube-apiserver (built
# by scripts/e2e-tools.sh) on 127.0.0.1, with certificates generated here by openssl and an
# admin kubeconfig. No kubelet, scheduler, controller-manager or kube-proxy: admission runs
# inside the API server before anything would be scheduled.
#
#   scripts/e2e-cluster.sh start DIR   generate certs in DIR, start etcd + kube-apiserver,
#                                      wait for /readyz, print DIR/cluster.env's path
#   scripts/e2e-cluster.sh stop DIR    stop both (TERM, then KILL after 20s) and wait
#
# TRUSTGATE_E2E_APISERVER_ARGS adds kube-apiserver flags (space-separated; later wins).
#
# DIR keeps the certificates, the kubeconfig (DIR/kubeconfig), logs (DIR/*.log), etcd's data
# and the PIDs; delete it after `stop`. DIR/cluster.env exports:
#   KUBECONFIG, TRUSTGATE_E2E_KUBECONFIG, TRUSTGATE_E2E_SERVER (https://127.0.0.1:PORT),
#   TRUSTGATE_E2E_CA (the cluster CA), TRUSTGATE_E2E_DIR, and the TRUSTGATE_* tool paths.
#
# What a control plane without controllers means for tests (see also the comments at the
# apiserver flags):
# - Namespaces get their kubernetes.io/metadata.name label (the API server sets it), but no
#   `default` ServiceAccount is created in them (that is kube-controller-manager's job).
#   Creating a Pod that names no service account fails in the ServiceAccount admission
#   plugin with `error looking up service account NS/default: serviceaccount "default" not
#   found`; a test creates it first: `kubectl -n NS create serviceaccount default`.
#   Deployments, CronJobs etc. are stored but never produce Pods (no controllers).
# - A deleted Namespace stays Terminating for ever (no namespace controller): use a fresh
#   namespace per test rather than delete-and-recreate.
# - Webhooks referenced by `service:` are dialled at an endpoint chosen from the Service's
#   EndpointSlices (--enable-aggregator-routing=true below; without it the API server dials
#   the ClusterIP, which nothing routes without kube-proxy). No controller maintains
#   EndpointSlices here, so a test creates one itself; to reach a host process on
#   127.0.0.1:PORT it must use addressType FQDN with the address "127.0.0.1" (IPv4/IPv6
#   slices and v1 Endpoints refuse loopback addresses; FQDN is deprecated, so kubectl prints
#   a warning, but v1.36 accepts and routes it), a port whose name equals the Service
#   port's name (an omitted name defaults to "", matching an unnamed Service port), and the
#   label kubernetes.io/service-name=<service>. The Service's port and targetPort do not
#   matter: the slice's port is dialled. TLS is still verified against the name
#   <service>.<namespace>.svc. Print one with: scripts/e2e-cluster.sh endpoint-yaml.
#   An /etc/hosts entry for <service>.<namespace>.svc does NOT help `service:` webhooks:
#   the API server never resolves that name, it only uses it for SNI and verification.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
log() { echo "e2e-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

usage() { die "usage: $0 start DIR | stop DIR | endpoint-yaml NAMESPACE SERVICE PORT [PORT_NAME]"; }

# The tools, from the environment or built/located by e2e-tools.sh.
load_tools() {
  if [ -z "${TRUSTGATE_KUBE_APISERVER:-}" ] || [ -z "${TRUSTGATE_KUBECTL:-}" ] || [ -z "${TRUSTGATE_ETCD:-}" ]; then
    # shellcheck disable=SC1090
    source "$(bash "$HERE/e2e-tools.sh")"
  fi
  for t in "$TRUSTGATE_KUBE_APISERVER" "$TRUSTGATE_KUBECTL" "$TRUSTGATE_ETCD"; do
    [ -x "$t" ] || die "missing tool $t (run scripts/e2e-tools.sh)"
  done
  command -v openssl >/dev/null || die "openssl is needed (scripts/tools.sh installs it)"
  command -v curl >/dev/null || die "curl is needed (scripts/tools.sh installs it)"
}

# A TCP port on 127.0.0.1 that nothing listens on or uses now (checked with ss), not one
# already handed out by this script run. A race with another process remains possible; the
# daemons then fail to bind and `start` reports it with their log.
USED_PORTS=" "
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
      USED_PORTS+="$p "
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

# ---------------------------------------------------------------------------------------
# Certificates: a CA; the API server's serving certificate; the service-account signing
# key pair; the admin client certificate (O=system:masters, so RBAC grants it everything).
gen_certs() {
  local d="$1/pki"
  mkdir -p "$d"
  (
    cd "$d"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=trustgate-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

    # sign NAME SUBJECT EXTENSIONS: NAME.key + NAME.crt signed by the CA.
    sign() {
      openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -sha256 -days 3650 -in "$1.csr" -CA ca.crt -CAkey ca.key \
        -CAcreateserial -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    sign admin "/O=system:masters/CN=admin" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ca.srl
  )
}

write_kubeconfig() {
  local dir="$1" server="$2" b64
  b64() { base64 -w0 <"$1"; }
  cat >"$dir/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: trustgate-e2e
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$dir/pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$dir/pki/admin.crt")
    client-key-data: $(b64 "$dir/pki/admin.key")
contexts:
- name: trustgate-e2e
  context:
    cluster: trustgate-e2e
    user: admin
current-context: trustgate-e2e
YAML
  chmod 600 "$dir/kubeconfig"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# The PID recorded in DIR/NAME.pid, if that process is still the binary we started (a
# recycled PID belonging to something else is never signalled).
recorded_pid() {
  local dir="$1" name="$2" pid
  [ -f "$dir/$name.pid" ] || return 1
  pid="$(cat "$dir/$name.pid")"
  pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" || return 1
  echo "$pid"
}

stop_one() {
  local dir="$1" name="$2" pid i
  if pid="$(recorded_pid "$dir" "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do pid_alive "$pid" || break; sleep 0.1; done
    if pid_alive "$pid"; then
      log "$name ($pid) did not stop after 20s; killing"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$dir/$name.pid"
}

cmd_stop() {
  local dir="$1"
  [ -d "$dir" ] || die "no such directory: $dir"
  dir="$(cd "$dir" && pwd)"
  stop_one "$dir" kube-apiserver   # the API server first, so it never loses etcd mid-request
  stop_one "$dir" etcd
  log "stopped ($dir)"
}

show_logs() {
  local dir="$1" f
  for f in "$dir/etcd.log" "$dir/kube-apiserver.log"; do
    [ -f "$f" ] && { log "---- last lines of $f"; tail -n 12 "$f" >&2; }
  done
}

cmd_start() {
  local dir="$1" etcd_client etcd_peer api_port server i
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if recorded_pid "$dir" kube-apiserver >/dev/null || recorded_pid "$dir" etcd >/dev/null; then
    die "a cluster is already running in $dir (stop it first)"
  fi
  load_tools

  # On any failure from here on, stop whatever was started and show why.
  STARTING_DIR="$dir"
  trap 'rc=$?; if [ $rc -ne 0 ]; then show_logs "$STARTING_DIR"; cmd_stop "$STARTING_DIR"; fi' EXIT

  gen_certs "$dir"
  etcd_client="$(free_port)"; etcd_peer="$(free_port)"; api_port="$(free_port)"
  server="https://127.0.0.1:$api_port"
  write_kubeconfig "$dir" "$server"

  # etcd: one member, loopback only, throwaway data (fsync off: this data never matters).
  rm -rf "$dir/etcd-data"
  "$TRUSTGATE_ETCD" \
    --name trustgate-e2e \
    --data-dir "$dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "trustgate-e2e=http://127.0.0.1:$etcd_peer" \
    --initial-cluster-state new \
    --unsafe-no-fsync \
    </dev/null >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  for i in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$etcd_client/health" 2>/dev/null | grep -q '"health":"true"' && break
    pid_alive "$(cat "$dir/etcd.pid")" || die "etcd exited"
    [ "$i" -lt 100 ] || die "etcd not healthy after 20s"
    sleep 0.2
  done

  # kube-apiserver. Flags beyond the obvious ones:
  # --enable-aggregator-routing: route `service:` webhooks (and aggregated APIs) to an
  #     EndpointSlice endpoint instead of the ClusterIP (nothing routes ClusterIPs here);
  # --endpoint-reconciler-type=none: do not publish 127.0.0.1 as the endpoint of the
  #     `kubernetes` Service (loopback endpoints are invalid: with the default `lease` it
  #     logs "unable to sync kubernetes service ... may not be in the loopback range" every
  #     10s); the API server still reaches itself through its loopback client;
  # --allow-privileged: as kubeadm clusters do, so tests can store any Pod spec;
  # --cert-dir: keep anything it would write inside DIR (default /var/run/kubernetes).
  # TRUSTGATE_E2E_APISERVER_ARGS (split on spaces) is appended; a repeated flag overrides.
  # shellcheck disable=SC2086
  "$TRUSTGATE_KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --secure-port "$api_port" \
    --tls-cert-file "$dir/pki/apiserver.crt" \
    --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --service-account-key-file "$dir/pki/sa.pub" \
    --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode RBAC \
    --service-cluster-ip-range 10.96.0.0/16 \
    --enable-aggregator-routing=true \
    --endpoint-reconciler-type none \
    --allow-privileged=true \
    --cert-dir "$dir/pki/generated" \
    ${TRUSTGATE_E2E_APISERVER_ARGS:-} \
    </dev/null >"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"

  for i in $(seq 1 240); do
    if [ "$("$TRUSTGATE_KUBECTL" --kubeconfig "$dir/kubeconfig" --request-timeout=2s \
             get --raw /readyz 2>/dev/null)" = ok ]; then
      break
    fi
    pid_alive "$(cat "$dir/kube-apiserver.pid")" || die "kube-apiserver exited"
    [ "$i" -lt 240 ] || die "kube-apiserver not ready after 60s"
    sleep 0.25
  done

  cat >"$dir/cluster.env" <<ENV
export KUBECONFIG="$dir/kubeconfig"
export TRUSTGATE_E2E_KUBECONFIG="$dir/kubeconfig"
export TRUSTGATE_E2E_SERVER="$server"
export TRUSTGATE_E2E_CA="$dir/pki/ca.crt"
export TRUSTGATE_E2E_DIR="$dir"
export TRUSTGATE_KUBE_APISERVER="$TRUSTGATE_KUBE_APISERVER"
export TRUSTGATE_KUBECTL="$TRUSTGATE_KUBECTL"
export TRUSTGATE_ETCD="$TRUSTGATE_ETCD"
export TRUSTGATE_HELM="${TRUSTGATE_HELM:-}"
ENV
  trap - EXIT
  log "ready: $server (etcd 127.0.0.1:$etcd_client)"
  echo "$dir/cluster.env"
}

# The EndpointSlice that makes `service: {namespace: NS, name: SERVICE}` webhooks reach a
# process on 127.0.0.1:PORT (see the header). PORT_NAME must equal the Service port's name
# ("" when unnamed).
cmd_endpoint_yaml() {
  local ns="$1" svc="$2" port="$3" port_name="${4:-}"
  cat <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $svc-host
  namespace: $ns
  labels:
    kubernetes.io/service-name: $svc
    endpointslice.kubernetes.io/managed-by: trustgate-e2e
addressType: FQDN
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {ready: true}
ports:
- name: "$port_name"
  port: $port
  protocol: TCP
YAML
}

case "${1:-}" in
  start) [ $# -eq 2 ] || usage; cmd_start "$2" ;;
  stop) [ $# -eq 2 ] || usage; cmd_stop "$2" ;;
  endpoint-yaml) [ $# -ge 4 ] || usage; cmd_endpoint_yaml "$2" "$3" "$4" "${5:-}" ;;
  *) usage ;;
esac

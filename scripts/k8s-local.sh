#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for Syringe's tests: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler as plain processes, no containers, no kubelet.
#
# Everything comes from Debian's archive:
#   etcd-server                          etcd 3.4
#   golang-go                            Go 1.19, to build the server binaries
#   source package `kubernetes`          1.20.5+really1.20.2: the full upstream v1.20.2 tree with vendor/
#   golang-github-modern-go-reflect2-dev reflect2 1.0.2, swapped into vendor/ because the vendored 1.0.1
#                                        crashes kube-apiserver under Go >= 1.18 on the first custom
#                                        resource write
#
# Usage:
#   scripts/k8s-local.sh start [KUBECONFIG_OUT]   install (idempotent), build once (cached), start, wait
#   scripts/k8s-local.sh start --with-node [KUBECONFIG_OUT]
#                                                 the same, then a real node joins it (scripts/k8s-node.sh up)
#   scripts/k8s-local.sh build                    install and build only
#   scripts/k8s-local.sh stop                     stop every process this script started (a node first)
#   scripts/k8s-local.sh status
#   scripts/k8s-local.sh reset                    stop, then forget the run dir and etcd data
#   scripts/k8s-local.sh stop-apiserver           stop kube-apiserver alone (outage tests); start brings it back
#
# scripts/k8s-node.sh sources this file for its settings and build functions; sourced, it runs nothing.
#
# Environment (all optional):
#   SYRINGE_K8S_CACHE  built binaries and source (default /var/cache/syringe-k8s, outside the checkout)
#   SYRINGE_K8S_RUN    pki, tokens, kubeconfigs, logs, pid files (default /tmp/syringe-k8s)
#   SYRINGE_K8S_PORT   kube-apiserver port (default 26443); etcd uses 22379/22380
set -euo pipefail

CACHE="${SYRINGE_K8S_CACHE:-/var/cache/syringe-k8s}"
RUN_DIR="${SYRINGE_K8S_RUN:-/tmp/syringe-k8s}"
API_PORT="${SYRINGE_K8S_PORT:-26443}"
ETCD_PORT="${SYRINGE_K8S_ETCD_PORT:-22379}"
ETCD_DATA="${SYRINGE_K8S_ETCD_DATA:-/dev/shm/syringe-k8s-etcd-$API_PORT}"
VERSION=1.20.2
DEB_VERSION="1.20.5+really1.20.2"
BIN="$CACHE/bin-$VERSION"
PKI="$RUN_DIR/pki"
LOGS="$RUN_DIR/logs"
PIDS="$RUN_DIR/pids"
SERVERS=(kube-apiserver kube-controller-manager kube-scheduler)

say() { printf '[k8s-local %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

is_running() { [ -f "$PIDS/$1" ] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

apt_install() { # packages...
  [ "$#" -gt 0 ] || return 0
  say "apt-get install $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

binaries_built() {
  local s
  for s in "${SERVERS[@]}"; do [ -x "$BIN/$s" ] || return 1; done
}

install_tools() {
  local need=()
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  command -v kubectl >/dev/null || need+=(kubernetes-client)
  apt_install "${need[@]}"
}

install_build_tools() {
  local need=()
  command -v go >/dev/null || need+=(golang-go)
  command -v make >/dev/null || need+=(make)
  command -v rsync >/dev/null || need+=(rsync)
  [ -f /usr/share/gocode/src/github.com/modern-go/reflect2/go_above_118.go ] \
    || need+=(golang-github-modern-go-reflect2-dev)
  apt_install "${need[@]}"
}

fetch_source() { # -> prints the source dir
  local src="$CACHE/src/kubernetes-$VERSION"
  if [ ! -f "$src/go.mod" ]; then
    # A private deb-src list, so the machine's own apt configuration stays untouched.
    mkdir -p "$CACHE/apt/lists/partial" "$CACHE/src"
    printf 'deb-src http://deb.debian.org/debian bookworm main\ndeb-src http://deb.debian.org/debian-security bookworm-security main\n' \
      > "$CACHE/apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$CACHE/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
                -o "Dir::State::Lists=$CACHE/apt/lists")
    say "fetching Debian source package kubernetes $DEB_VERSION"
    apt-get "${opts[@]}" update -qq
    (cd "$CACHE/src" && { apt-get "${opts[@]}" source --download-only -qq "kubernetes=$DEB_VERSION-1.1+deb12u1" 2>/dev/null \
                          || apt-get "${opts[@]}" source --download-only -qq kubernetes; })
    (cd "$CACHE/src" && tar xzf "kubernetes_${DEB_VERSION}.orig.tar.gz")
  fi
  local reflect2="$src/vendor/github.com/modern-go/reflect2"
  if [ ! -f "$reflect2/go_above_118.go" ]; then
    say "swapping vendored reflect2 1.0.1 for Debian's 1.0.2"
    rm -f "$reflect2"/*.go "$reflect2"/*.s
    find /usr/share/gocode/src/github.com/modern-go/reflect2 -maxdepth 1 -name '*.go' ! -name '*_test.go' \
      -exec cp {} "$reflect2/" \;
  fi
  echo "$src"
}

build_binaries() { # names under cmd/ (kube-apiserver, kubelet...): builds the missing ones into $BIN
  local src targets=() s
  for s in "$@"; do [ -x "$BIN/$s" ] || targets+=("cmd/$s"); done
  [ "${#targets[@]}" -gt 0 ] || return 0
  install_build_tools
  mkdir -p "$CACHE"
  # One build at a time in the shared source tree: a second caller waits, then finds its binaries built.
  exec {lock}>"$CACHE/build.lock"
  flock "$lock"
  targets=()
  for s in "$@"; do [ -x "$BIN/$s" ] || targets+=("cmd/$s"); done
  if [ "${#targets[@]}" -gt 0 ]; then
    src="$(fetch_source)"
    say "building ${targets[*]} with $(go version | awk '{print $3}') (a cold build takes minutes)"
    mkdir -p "$BIN" "$CACHE/home"
    ( cd "$src"
      unset GOPATH GO111MODULE GOFLAGS
      export HOME="$CACHE/home" GOCACHE="$CACHE/gocache" CGO_ENABLED=0 GOLDFLAGS="-s -w" \
             KUBE_GIT_VERSION="v$VERSION" KUBE_GIT_TREE_STATE=clean
      make WHAT="${targets[*]}" >"$CACHE/build.log" 2>&1 ) || { tail -40 "$CACHE/build.log" >&2; die "build failed"; }
    for s in "${targets[@]}"; do cp "$src/_output/local/bin/linux/amd64/$(basename "$s")" "$BIN/"; done
    # The build's own output tree and Go cache are ~2 GB and no longer needed.
    rm -rf "$src/_output" "$CACHE/gocache"
  fi
  exec {lock}>&-
}

build() {
  install_tools
  build_binaries "${SERVERS[@]}"
}

token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

make_pki() {
  [ -f "$PKI/tokens.csv" ] && return 0
  mkdir -p "$PKI"
  ( cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=syringe-k8s-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 \
      -extfile apiserver.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    token >admin.token; token >controller-manager.token; token >scheduler.token
    # Static bearer tokens: admin is cluster-admin through system:masters; the two controllers get
    # their built-in RBAC identities.
    { echo "$(cat admin.token),admin,admin,\"system:masters\""
      echo "$(cat controller-manager.token),system:kube-controller-manager,kcm,\"\""
      echo "$(cat scheduler.token),system:kube-scheduler,sched,\"\""; } >tokens.csv
    chmod 600 ./*.key ./*.token tokens.csv )
}

write_kubeconfig() { # path token user
  mkdir -p "$(dirname "$1")"
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: syringe-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $3
  user:
    token: $2
contexts:
- name: syringe-local
  context: {cluster: syringe-local, user: $3}
current-context: syringe-local
EOF
  chmod 600 "$1"
}

launch() { # name command...
  local name="$1"; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name"
}

wait_for() { # description seconds command...
  local what="$1" secs="$2" i; shift 2
  for ((i = 0; i < secs * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

api_get() { curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$PKI/admin.token")" "https://127.0.0.1:$API_PORT$1"; }

controller_tokens_issued() { api_get /api/v1/namespaces/kube-system/serviceaccounts/namespace-controller | grep -q '"secrets"'; }

start() {
  local out="${1:-$RUN_DIR/admin.kubeconfig}" t0=$SECONDS
  build
  mkdir -p "$LOGS" "$PIDS" "$ETCD_DATA"
  make_pki
  write_kubeconfig "$RUN_DIR/admin.kubeconfig" "$(cat "$PKI/admin.token")" admin
  write_kubeconfig "$RUN_DIR/controller-manager.kubeconfig" "$(cat "$PKI/controller-manager.token")" system:kube-controller-manager
  write_kubeconfig "$RUN_DIR/scheduler.kubeconfig" "$(cat "$PKI/scheduler.token")" system:kube-scheduler

  is_running etcd || launch etcd etcd --name syringe --data-dir "$ETCD_DATA" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "syringe=http://127.0.0.1:$((ETCD_PORT + 1))" --listen-metrics-urls "" \
    --quota-backend-bytes 2147483648
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health" || { tail -20 "$LOGS/etcd.log" >&2; die "etcd did not start"; }

  # The ServiceAccount admission plugin is off so a pod can be created the instant its namespace
  # exists (no token-secret race); authorization is real RBAC.
  is_running kube-apiserver || launch kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --insecure-port=0 \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none \
    --authorization-mode=RBAC --allow-privileged=true --profiling=false \
    --disable-admission-plugins=ServiceAccount \
    --kubelet-preferred-address-types=InternalIP
  wait_for kube-apiserver 90 api_get /readyz || { tail -30 "$LOGS/kube-apiserver.log" >&2; die "kube-apiserver did not start"; }

  # --use-service-account-credentials: without it namespaces never finish deleting under RBAC.
  is_running kube-controller-manager || launch kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$RUN_DIR/controller-manager.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 --port=0 \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=true --controllers='*' \
    --concurrent-namespace-syncs=10 --namespace-sync-period=30s
  is_running kube-scheduler || launch kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$RUN_DIR/scheduler.kubeconfig" --authentication-kubeconfig="$RUN_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$RUN_DIR/scheduler.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 --port=0
  # The controller-manager works once it has issued tokens to its per-controller service accounts.
  wait_for controller-manager 60 controller_tokens_issued \
    || { tail -30 "$LOGS/kube-controller-manager.log" >&2; die "kube-controller-manager did not start"; }

  write_kubeconfig "$out" "$(cat "$PKI/admin.token")" admin
  say "control plane ready in $((SECONDS - t0))s; kubeconfig $out"
  echo "$out"
}

stop() {
  local name pid stopped=()
  for name in "${SERVERS[@]}" etcd; do
    is_running "$name" || { rm -f "$PIDS/$name"; continue; }
    pid="$(cat "$PIDS/$name")"
    kill "$pid" 2>/dev/null || true
    stopped+=("$pid")
    rm -f "$PIDS/$name"
  done
  for pid in "${stopped[@]}"; do
    wait_for "pid $pid" 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  done
  say "stopped ${#stopped[@]} process(es)"
}

status() {
  local name
  for name in etcd "${SERVERS[@]}"; do
    if is_running "$name"; then echo "$name running (pid $(cat "$PIDS/$name"))"; else echo "$name stopped"; fi
  done
}

# Sourced (scripts/k8s-node.sh does), this file only defines the settings and functions above.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

# A node (scripts/k8s-node.sh) keeps its state in $RUN_DIR/node. It goes down before the control plane,
# because its pods are deleted through the API server and the kubelet.
NODE="$(dirname "$0")/k8s-node.sh"
node_down() { [ ! -d "$RUN_DIR/node" ] || "$NODE" down; }
rc=0

case "${1:-start}" in
  start)
    shift || true
    args=() with_node=0
    for a in "$@"; do if [ "$a" = --with-node ]; then with_node=1; else args+=("$a"); fi; done
    if [ "$with_node" = 1 ]; then
      kubeconfig="$(start "${args[@]}")"
      "$NODE" up >&2
      echo "$kubeconfig"
    else
      start "$@"
    fi ;;
  build) build ;;
  stop) node_down || rc=$?; stop ;;
  status) status; [ ! -d "$RUN_DIR/node" ] || "$NODE" status ;;
  reset) node_down || rc=$?; stop; rm -rf "$RUN_DIR" "$ETCD_DATA"; say "reset" ;;
  stop-apiserver)
    if is_running kube-apiserver; then
      pid="$(cat "$PIDS/kube-apiserver")"; kill "$pid"; rm -f "$PIDS/kube-apiserver"
      wait_for "apiserver exit" 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
      say "kube-apiserver stopped"
    fi ;;
  *) die "usage: $0 start [--with-node] [KUBECONFIG_OUT] | build | stop | status | reset | stop-apiserver" ;;
esac
exit "$rc"

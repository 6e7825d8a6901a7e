#!/usr/bin/env bash
# A real Kubernetes node for the local control plane (scripts/k8s-local.sh): a kubelet, containerd, runc and
# the CNI plugins as plain processes on this machine, with a Multus stand-in, so that pods really run.
#
# Everything comes from Debian's archive, like the control plane:
#   containerd 1.6, runc 1.1, containernetworking-plugins 1.1 (bridge, host-local...), busybox-static, gcc
#   the kubelet, built from the same `kubernetes` source package as the control plane (k8s-local.sh's
#     build, reflect2 swap included) and cached next to it
#   the pause image, built from that source package's build/pause/linux/pause.c with gcc -static
# Multus is not packaged: tests/node/multus_standin.py is the node's CNI network and attaches each
# NetworkAttachmentDefinition a pod's k8s.v1.cni.cncf.io/networks annotation names (see that file).
# Nor are CoreDNS and kube-proxy: tests/node/cluster_services.py answers cluster DNS on the node IP (Service
# names resolve to their ready endpoints) and relays the `kubernetes` Service's ClusterIP to the API server,
# the only ClusterIP pods route (see that file). So in-cluster clients, Syringe among them, work unchanged.
#
# Usage:
#   scripts/k8s-node.sh up       install (idempotent), build once (cached), join the running control plane, wait
#                                until the Node is Ready, then restore the kernel settings the kubelet changed
#   scripts/k8s-node.sh down     delete the node's pods through the kubelet, stop it and containerd, and check
#                                that no netns, veth, bridge, cgroup, mount or host-local address is left
#                                (exit status 1, naming each, when something was)
#   scripts/k8s-node.sh build    install and build only (kubelet, pause and busybox images)
#   scripts/k8s-node.sh status
#   scripts/k8s-node.sh import IMAGE.tar...   load docker-archive images into the node's containerd
#   scripts/k8s-node.sh env      the node's names and paths, as shell assignments (for the tests)
# `scripts/k8s-local.sh start --with-node` starts the control plane and then runs `up`; its stop and reset
# run `down` first.
#
# No traffic leaves the machine: the kubelet and containerd run with a dead HTTP(S) proxy and
# AWS_EC2_METADATA_DISABLED=true; the API server prefers the node's InternalIP (the bridge address below,
# never a DNS name); pods get no default route and no NAT, and ip_forward stays as it is, so a pod reaches
# the host and other pods only. Images are never pulled: the tests import them (pull policy Never).
#
# Environment (all optional; the control plane's SYRINGE_K8S_CACHE, SYRINGE_K8S_RUN and SYRINGE_K8S_PORT
# select which control plane the node joins):
#   SYRINGE_K8S_NODE_NAME    the Node's name (default syringe-node)
#   SYRINGE_K8S_NODE_CIDR    the pods' eth0 network, a /24 (default 10.244.77.0/24); its first address is on
#                            the host's bridge, and is the node's InternalIP and the kubelet's address
#   SYRINGE_K8S_NODE_BRIDGE  that bridge (default synode0)
#   SYRINGE_K8S_NODE_PORT    the kubelet's port (default 10250)
#   SYRINGE_K8S_NODE_TRACE   set to 1: the kubelet and containerd (with the shims, runc and CNI plugins they
#                            start) run under `strace -f -e trace=connect`, and `down` lists every connection
#                            they tried to anything but this machine (an audit; slower)
# State lives in $SYRINGE_K8S_RUN/node: containerd's root and state (netns included), the kubelet's root,
# CNI configuration and leases, logs. Machine-wide, and so one node per machine: the bridges, the
# /sys/fs/cgroup/*/syringe-node cgroups, the shims' sockets in /run/containerd/s and pod logs in /var/log/pods.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
# shellcheck source=scripts/k8s-local.sh
source "$HERE/k8s-local.sh"  # CACHE RUN_DIR API_PORT PKI BIN; apt_install fetch_source build_binaries wait_for...

say() { printf '[k8s-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

NODE_NAME="${SYRINGE_K8S_NODE_NAME:-syringe-node}"
POD_CIDR="${SYRINGE_K8S_NODE_CIDR:-10.244.77.0/24}"
BRIDGE="${SYRINGE_K8S_NODE_BRIDGE:-synode0}"
KUBELET_PORT="${SYRINGE_K8S_NODE_PORT:-10250}"
[[ "$POD_CIDR" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] || die "SYRINGE_K8S_NODE_CIDR must be a /24 like 10.244.77.0/24"
NET="${BASH_REMATCH[1]}"
NODE_IP="$NET.1"
NODE_DIR="$RUN_DIR/node"
CTRD="$NODE_DIR/containerd"
SOCK="$CTRD/containerd.sock"
NETNS_DIR="$CTRD/state/io.containerd.grpc.v1.cri/netns"  # netns_mounts_under_state_dir: not in /run/netns
CNI="$NODE_DIR/cni"
IPAM_DIR="$CNI/ipam"                   # host-local leases: the default network's and every NAD's
STANDIN_STATE="$CNI/multus-standin"
KUBELET_DIR="$NODE_DIR/kubelet"
NLOGS="$NODE_DIR/logs"
NPIDS="$NODE_DIR/pids"
CGROUP_ROOT=syringe-node               # the kubelet's cgroupRoot: /sys/fs/cgroup/<each>/syringe-node/kubepods
IMAGES="$CACHE/images"                 # cached by content
# Paths outside $NODE_DIR that the kubelet, containerd and libcni create with fixed names, deepest first:
# `up` notes the ones that did not exist, and `down` removes them again once they are empty.
MACHINE_PATHS=(/var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni
               /var/log/pods /var/log/containers /run/containerd/s /run/containerd /run/mount)
PAUSE_IMAGE=localhost/syringe-node/pause:3.4
BUSYBOX_IMAGE=localhost/busybox:e2e    # the end-to-end tests' image: busybox-static, one layer
NOEGRESS=(HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9
          https_proxy=http://127.0.0.1:9 NO_PROXY="127.0.0.1,localhost,$NODE_IP"
          no_proxy="127.0.0.1,localhost,$NODE_IP" AWS_EC2_METADATA_DISABLED=true)
# The kubelet's setupKernelTunables writes these values at start (pkg/kubelet/cm/container_manager_linux.go),
# once the runtime answers: that can be after the Node first says Ready.
KUBELET_SYSCTLS=(vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.panic=10 kernel.panic_on_oops=1
                 kernel.keys.root_maxkeys=1000000 kernel.keys.root_maxbytes=25000000)

PY=/usr/bin/python3
VENV_PY="$REPO/.venv/bin/python"       # the cluster-services stand-in's (dnspython): scripts/setup.sh makes it
SERVICE_IP=10.96.0.1                   # the `kubernetes` Service: first of k8s-local.sh's service range, in its cert
CLUSTER_DOMAIN=cluster.local

running() { [ -f "$NPIDS/$1" ] && kill -0 "$(cat "$NPIDS/$1")" 2>/dev/null; }
ctr_() { ctr -a "$SOCK" -n k8s.io "$@"; }
kubectl_() { kubectl --kubeconfig "$RUN_DIR/admin.kubeconfig" --cache-dir "$NODE_DIR/kubectl-cache" "$@"; }

# ------------------------------------------------------------------------------------------ install, build
install_node_tools() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
  [ -x /bin/busybox ] && /bin/busybox --list | grep -qx ping || need+=(busybox-static)
  command -v gcc >/dev/null || need+=(gcc)
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
  [ -x "$PY" ] || need+=(python3)  # the stand-in is a CNI plugin: Debian's python3, outside any venv
  apt_install "${need[@]}"
}

content_key() { # files... -> 16 hex digits of their content, with this recipe's version
  { echo "syringe-node-images-1"; cat "$@"; } | sha256sum | cut -c1-16
}

build_pause() { # -> path of the cached image tarball
  local src key out
  src="$(fetch_source)/build/pause/linux/pause.c"
  key="$(content_key "$src" "$REPO/tests/node/mkimage.py" <(gcc --version))"
  out="$IMAGES/pause-$key.tar"
  if [ ! -f "$out" ]; then
    say "building the pause image from the source package's pause.c"
    mkdir -p "$IMAGES/work"
    gcc -Os -Wall -Werror -static -DVERSION=v3.4-syringe -o "$IMAGES/work/pause" "$src"
    strip "$IMAGES/work/pause"
    "$PY" "$REPO/tests/node/mkimage.py" "$IMAGES/work/pause.tar" "$PAUSE_IMAGE" \
      --file "$IMAGES/work/pause:pause" --entrypoint '["/pause"]' >&2
    mv "$IMAGES/work/pause.tar" "$out"
    rm -rf "$IMAGES/work"
  fi
  echo "$out"
}

build_busybox() { # -> path of the cached image tarball
  local key out args=()
  key="$(content_key /bin/busybox "$REPO/tests/node/mkimage.py")"
  out="$IMAGES/busybox-$key.tar"
  if [ ! -f "$out" ]; then
    say "building $BUSYBOX_IMAGE from /bin/busybox (busybox-static)"
    mkdir -p "$IMAGES/work"
    while read -r applet; do
      [ "$applet" = bin/busybox ] || args+=(--symlink "$applet:/bin/busybox")
    done < <(/bin/busybox --list-full)
    # PID 1 that ends at SIGTERM, so a pod stops at once rather than at the end of its grace period.
    "$PY" "$REPO/tests/node/mkimage.py" "$IMAGES/work/busybox.tar" "$BUSYBOX_IMAGE" \
      --file /bin/busybox:bin/busybox "${args[@]}" --dir tmp --dir proc --dir sys --dir dev --dir root \
      --text 'etc/passwd=root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
      --text 'etc/group=root:x:0:\nnogroup:x:65534:\n' \
      --cmd '["sh", "-c", "trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]' >&2
    mv "$IMAGES/work/busybox.tar" "$out"
    rm -rf "$IMAGES/work"
  fi
  echo "$out"
}

build_all() {
  install_tools
  install_node_tools
  build_binaries kubelet
  build_pause >/dev/null
  build_busybox >/dev/null
}

# ------------------------------------------------------------------------------------------ up
other_kubelet() { # a kubelet that is not this node's: one node per machine
  local comm pid
  for comm in /proc/[0-9]*/comm; do
    [ "$(cat "$comm" 2>/dev/null)" = kubelet ] || continue
    pid="${comm#/proc/}"; pid="${pid%/comm}"
    [ -f "$NPIDS/kubelet" ] && [ "$(cat "$NPIDS/kubelet")" = "$pid" ] && continue
    echo "$pid"; return 0
  done
  return 1
}

setup_cgroups() { # the kubelet's cgroupRoot must exist in every hierarchy it uses
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -L "${h%/}" ] && continue
    grep -q " ${h%/} cgroup " /proc/mounts || continue  # cgroup v1 hierarchies (not the unified one)
    mkdir -p "$h$CGROUP_ROOT"
    if [ -f "${h}cpuset.cpus" ]; then
      [ -n "$(cat "$h$CGROUP_ROOT/cpuset.cpus")" ] || cat "${h}cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus"
      [ -n "$(cat "$h$CGROUP_ROOT/cpuset.mems")" ] || cat "${h}cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

setup_bridge() { # the pods' eth0 network; its host address is the node IP (this machine has no dummy links)
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  local addresses  # (not `ip | grep -q`: with pipefail, grep leaving early can fail the pipe)
  addresses="$(ip addr show dev "$BRIDGE")"
  [[ "$addresses" == *"inet $NODE_IP/24 "* ]] || ip addr add "$NODE_IP/24" dev "$BRIDGE"
  [[ "$addresses" == *"inet $SERVICE_IP/32 "* ]] || ip addr add "$SERVICE_IP/32" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

setup_cni() {
  local p
  mkdir -p "$CNI/bin" "$CNI/net.d" "$IPAM_DIR" "$STANDIN_STATE"
  for p in /usr/lib/cni/*; do ln -sfn "$p" "$CNI/bin/"; done
  install -m 0755 "$REPO/tests/node/multus_standin.py" "$CNI/bin/multus-standin"
  # The default network: a bridge with host-local addresses, no gateway, no masquerade, and so no default
  # route in pods: their one route is to the API server's ClusterIP, through the node. The stand-in runs it
  # for eth0, then each of the pod's NetworkAttachmentDefinitions.
  cat >"$CNI/multus-standin.json" <<EOF
{"cniVersion": "1.0.0", "name": "$NODE_NAME", "type": "multus-standin",
 "apiserver": "https://127.0.0.1:$API_PORT", "token_file": "$PKI/admin.token", "ca_file": "$PKI/ca.crt",
 "state_dir": "$STANDIN_STATE", "ipam_dir": "$IPAM_DIR",
 "delegate": {"type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
              "ipam": {"type": "host-local", "dataDir": "$IPAM_DIR",
                       "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "$NET.10", "rangeEnd": "$NET.250"}]],
                       "routes": [{"dst": "$SERVICE_IP/32", "gw": "$NODE_IP"}]}}}
EOF
  "$PY" - "$CNI/multus-standin.json" "$CNI/net.d/10-syringe-node.conflist" <<'EOF'
import json, sys
plugin = json.load(open(sys.argv[1]))
json.dump({"cniVersion": plugin["cniVersion"], "name": plugin["name"], "plugins": [plugin]}, open(sys.argv[2], "w"), indent=1)
EOF
}

setup_containerd() {
  mkdir -p "$CTRD/root" "$CTRD/state" "$CTRD/opt" "$CTRD/runc"
  # restrict_oom_score_adj: root lacks CAP_SYS_RESOURCE here, and without it every sandbox fails with
  # "can't get final child's PID from pipe: EOF". cgroupfs: there is no systemd.
  cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
        Root = "$CTRD/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI/bin"
    conf_dir = "$CNI/net.d"
    max_conf_num = 1
EOF
}

write_kubelet_config() {
  mkdir -p "$KUBELET_DIR/root" "$KUBELET_DIR/pki" "$KUBELET_DIR/volume-plugins"
  # The kubelet serves on the node IP only. Anonymous and AlwaysAllow: the API server calls it without a
  # client certificate; only the host and this node's pods can reach that address.
  cat >"$KUBELET_DIR/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failSwapOn: false
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
makeIPTablesUtilChains: false
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 1m
syncFrequency: 10s
runtimeRequestTimeout: 2m
volumePluginDir: $KUBELET_DIR/volume-plugins
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $KUBELET_DIR/resolv.conf
EOF
  # Pods get cluster DNS only: none of this machine's resolvers or search domains.
  : >"$KUBELET_DIR/resolv.conf"
  write_kubeconfig "$NODE_DIR/kubelet.kubeconfig" "$(cat "$PKI/admin.token")" admin
}

node_launch() { # name command...: in its own session, with the dead proxy
  local name="$1" trace=(); shift
  if [ "${SYRINGE_K8S_NODE_TRACE:-0}" = 1 ]; then
    command -v strace >/dev/null || apt_install strace
    trace=(strace -f -qq -e trace=connect -o "$NLOGS/$name.connect.trace")
  fi
  env "${NOEGRESS[@]}" setsid "${trace[@]}" "$@" >"$NLOGS/$name.log" 2>&1 </dev/null &
  local pid=$! child=""
  if [ "${#trace[@]}" -gt 0 ]; then  # the pid file names the traced process: strace ends with it
    wait_for "$name under strace" 10 bash -c "[ -n \"\$(cat /proc/$pid/task/$pid/children)\" ]" \
      || die "strace did not start $name"
    child="$(cat "/proc/$pid/task/$pid/children")"
    pid="${child%% *}"
  fi
  echo "$pid" >"$NPIDS/$name"
}

off_machine_connects() { # from the traces: connect() calls to anything but loopback, the pod network or a socket file
  cat "$NLOGS"/*.connect.trace 2>/dev/null | grep -E 'AF_INET6?' \
    | grep -vE 'inet_addr\("(127\.|'"${NET//./\\.}"'\.)|inet_pton\(AF_INET6, "::1"' || true
}

import_images() { # tarballs...
  local t
  for t in "$@"; do
    ctr_ images import "$t" >/dev/null 2>"$NLOGS/import.err" \
      || { cat "$NLOGS/import.err" >&2; die "importing $t into the node's containerd failed"; }
  done
}

node_ready() { # since (UTC, RFC 3339): Ready with a heartbeat since then, an address, no NoSchedule taint
  api_get "/api/v1/nodes/$NODE_NAME" | "$PY" -c '
import json, sys
node = json.load(sys.stdin)
ready = {c["type"]: c for c in node["status"].get("conditions", [])}.get("Ready", {})
taints = [t for t in node["spec"].get("taints", []) if t["effect"] in ("NoSchedule", "NoExecute")]
sys.exit(0 if ready.get("status") == "True" and ready.get("lastHeartbeatTime", "") >= sys.argv[1]
         and node["status"].get("addresses") and not taints and not node["spec"].get("unschedulable") else 1)
' "$1"
}

kubelet_set_sysctls() { # true once every tunable has the kubelet's value
  local kv
  for kv in "${KUBELET_SYSCTLS[@]}"; do [ "$(sysctl -n "${kv%%=*}")" = "${kv#*=}" ] || return 1; done
}

restore_sysctls() { # the machine's own values, saved before the kubelet started (kept until `down`)
  [ -f "$NODE_DIR/sysctls" ] || return 0
  local changed=() k v now
  while read -r k v; do
    now="$(sysctl -n "$k")"
    [ "$now" = "$v" ] && continue
    sysctl -q -w "$k=$v"
    changed+=("$k $now->$v")
  done <"$NODE_DIR/sysctls"
  [ "${#changed[@]}" -eq 0 ] || say "restored what the kubelet changed: ${changed[*]}"
}

up() {
  local t0=$SECONDS t1 since pid forward k p fresh=0
  build_all
  api_get /readyz >/dev/null 2>&1 \
    || die "no control plane answers on https://127.0.0.1:$API_PORT: start it first (scripts/k8s-local.sh start --with-node)"
  if pid="$(other_kubelet)"; then
    die "another kubelet (pid $pid: $(tr '\0' ' ' </proc/"$pid"/cmdline | cut -c1-200)) runs on this machine; one node per machine"
  fi
  mkdir -p "$NLOGS" "$NPIDS"
  for p in "${MACHINE_PATHS[@]}"; do
    [ -e "$p" ] || grep -qxF "$p" "$NODE_DIR/created" 2>/dev/null || echo "$p" >>"$NODE_DIR/created"
  done
  forward="$(sysctl -n net.ipv4.ip_forward)"
  setup_cgroups
  setup_bridge
  setup_cni
  setup_containerd
  if ! running containerd; then
    node_launch containerd containerd --config "$CTRD/config.toml"
  fi
  wait_for containerd 30 ctr -a "$SOCK" version || { tail -30 "$NLOGS/containerd.log" >&2; die "containerd did not start"; }
  import_images "$(build_pause)" "$(build_busybox)"
  if ! running cluster-services; then
    [ -x "$VENV_PY" ] || die "$VENV_PY is missing: run scripts/setup.sh first"
    node_launch cluster-services "$VENV_PY" "$REPO/tests/node/cluster_services.py" --dns-ip "$NODE_IP" \
      --domain "$CLUSTER_DOMAIN" --service-ip "$SERVICE_IP" --api "127.0.0.1:$API_PORT" \
      --token-file "$PKI/admin.token" --ca-file "$PKI/ca.crt"
  fi
  wait_for "cluster DNS and the API relay" 20 bash -c "exec 3<>/dev/tcp/$SERVICE_IP/443" \
    || { tail -20 "$NLOGS/cluster-services.log" >&2; die "the cluster-services stand-in did not start"; }
  t1=$SECONDS

  write_kubelet_config
  # A Node left from an earlier run may still say Ready: a kubelet started now must have said so itself.
  since=""
  running kubelet || since="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # ...or be cordoned, by a `down` that was interrupted before it deleted the Node.
  kubectl_ uncordon "$NODE_NAME" >/dev/null 2>&1 || true
  if ! running kubelet; then
    [ -f "$NODE_DIR/sysctls" ] || for k in "${KUBELET_SYSCTLS[@]}"; do echo "${k%%=*} $(sysctl -n "${k%%=*}")"; done >"$NODE_DIR/sysctls"
    fresh=1
    [ -f "$NODE_DIR/logs-before" ] || { ls -d /var/log/pods/* /var/log/containers/* 2>/dev/null || true; } >"$NODE_DIR/logs-before"
    node_launch kubelet "$BIN/kubelet" --config="$KUBELET_DIR/config.yaml" \
      --kubeconfig="$NODE_DIR/kubelet.kubeconfig" \
      --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
      --root-dir="$KUBELET_DIR/root" --cert-dir="$KUBELET_DIR/pki" \
      --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
      --pod-infra-container-image="$PAUSE_IMAGE" --v=2
  fi
  local ok=0 i
  for ((i = 0; i < 600; i++)); do
    if node_ready "$since" 2>/dev/null; then ok=1; break; fi
    running kubelet || break
    sleep 0.2
  done
  # Restore only after the kubelet has written its values, or it would write them after this.
  if [ "$fresh" = 1 ] && running kubelet; then
    wait_for "the kubelet's sysctls" 30 kubelet_set_sysctls || say "the kubelet has not set its sysctls yet"
  fi
  restore_sysctls
  [ "$(sysctl -n net.ipv4.ip_forward)" = "$forward" ] || die "net.ipv4.ip_forward changed to $(sysctl -n net.ipv4.ip_forward)"
  [ "$ok" = 1 ] || { tail -30 "$NLOGS/kubelet.log" >&2; die "the node did not become Ready (logs in $NLOGS)"; }
  say "node $NODE_NAME Ready at $NODE_IP in $((SECONDS - t0))s (containerd and images $((t1 - t0))s, kubelet $((SECONDS - t1))s)"
}

# ------------------------------------------------------------------------------------------ down
stop_pid() { # name
  running "$1" || { rm -f "$NPIDS/$1"; return 0; }
  local pid
  pid="$(cat "$NPIDS/$1")"
  kill "$pid" 2>/dev/null || true
  wait_for "$1 exit" 15 bash -c "! kill -0 $pid" || { say "$1 (pid $pid) ignored SIGTERM; killing it"; kill -9 "$pid" 2>/dev/null || true; }
  rm -f "$NPIDS/$1"
}

our_shims() { # pids of containerd shims that serve this node's containerd
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -q "^/usr/bin/containerd-shim-runc-v2 .*-address $SOCK " && echo "$pid"
  done
  return 0
}

pods_torn_down() {
  [ -z "$(kubectl_ get pods -A --field-selector "spec.nodeName=$NODE_NAME" -o name 2>/dev/null)" ] \
    && [ -z "$(ls "$STANDIN_STATE"/*.json 2>/dev/null)" ] && [ -z "$(ls -A "$NETNS_DIR" 2>/dev/null)" ]
}

leased_ips() { # host-local lease files (named by the address they hold) that are still there
  find "$IPAM_DIR" -type f -regextype posix-extended -regex '.*/[0-9a-f.:]+$' 2>/dev/null | sort
}

our_bridges() { { echo "$BRIDGE"; cat "$STANDIN_STATE/bridges" 2>/dev/null || true; } | sort -u; }

down() {
  local t0=$SECONDS leaks=() removed=() kubelet_path=0 ids=() b m c pid f p
  [ -d "$NODE_DIR" ] || { say "no node in $NODE_DIR"; return 0; }
  # What is found below after the kubelet tore the pods down was leaked; without the kubelet (it died, or
  # the API server was down), cleaning it up is this function's job.
  found() { if [ "$kubelet_path" = 1 ]; then leaks+=("$1"); else removed+=("$1"); fi; }
  # 1. Through the kubelet: no new pods, delete them all, wait until their sandboxes are gone (CNI DEL ran).
  if running kubelet && api_get /readyz >/dev/null 2>&1; then
    kubelet_path=1
    kubectl_ cordon "$NODE_NAME" >/dev/null 2>&1 || true
    kubectl_ delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --grace-period=1 --wait=false >/dev/null 2>&1 || true
    wait_for "pods torn down" 120 pods_torn_down || say "after 120s the kubelet has not torn every pod down"
  elif running kubelet || running containerd; then
    say "the API server does not answer: cleaning up without the kubelet"
  fi
  stop_pid kubelet
  stop_pid cluster-services
  api_get /readyz >/dev/null 2>&1 && kubectl_ delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true
  # 2. Containers and attachments the kubelet did not remove: kill, then CNI DEL as containerd would.
  if running containerd; then
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$c" >/dev/null 2>&1 || true; done
    for c in $(ctr_ tasks ls -q 2>/dev/null); do
      wait_for "task $c" 10 bash -c "! ctr -a '$SOCK' -n k8s.io tasks ls -q | grep -qx '$c'" || true
      ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true
      found "running container ${c:0:12}"
    done
  fi
  for f in "$STANDIN_STATE"/*.json; do
    [ -e "$f" ] || continue
    c="$(basename "$f" .json)"
    ids+=("$c")
    found "the network attachments of sandbox ${c:0:12}"
    CNI_COMMAND=DEL CNI_CONTAINERID="$c" CNI_IFNAME=eth0 CNI_PATH="$CNI/bin" \
      CNI_NETNS="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("netns",""))' "$f")" \
      "$CNI/bin/multus-standin" <"$CNI/multus-standin.json" >/dev/null || leaks+=("sandbox ${c:0:12}: CNI DEL failed")
  done
  if running containerd; then  # stopped sandboxes and containers: the kubelet's GC would remove them later
    for c in $(ctr_ containers ls -q 2>/dev/null); do ids+=("$c"); ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  stop_pid containerd
  for pid in $(our_shims); do leaks+=("containerd shim $pid"); kill -9 "$pid" 2>/dev/null || true; done
  # 3. The machine-wide pieces: check each, clean it, and name it if it was left behind.
  for f in "$NETNS_DIR"/*; do
    [ -e "$f" ] || continue
    found "netns $(basename "$f")"; umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null || true; rm -f "$f"
  done
  while read -r b; do
    [ -n "$b" ] && ip link show "$b" >/dev/null 2>&1 || continue
    for m in $(ip -o link show master "$b" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      found "veth $m on $b"; ip link del "$m" 2>/dev/null || true
    done
    ip link del "$b"
    [ "$b" = "$BRIDGE" ] || removed+=("bridge $b")  # the bridge plugin never deletes the bridges it makes
  done < <(our_bridges)
  rm -f "$STANDIN_STATE/bridges"
  while read -r m; do
    [ -n "$m" ] || continue
    # The kubelet bind-mounts its root dir on itself (to make it rshared); anything else is a leftover.
    [ "$m" = "$KUBELET_DIR/root" ] || found "mount $m"
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || leaks+=("mount $m (busy)")
  done < <(awk -v d="$NODE_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)
  for f in $(leased_ips); do found "host-local address ${f#"$IPAM_DIR"/}"; rm -f "$f"; done
  # libcni's result cache (/var/lib/cni/results, not configurable in containerd 1.6): a DEL through
  # containerd clears a sandbox's entries; one run here does not.
  for c in "${ids[@]}"; do
    for f in /var/lib/cni/results/*"-$c-"*; do [ -e "$f" ] && { found "libcni cache ${f##*/}"; rm -f "$f"; }; done
  done
  # Pod cgroups the kubelet manages (cgroup v1) must be gone. In this hybrid layout runc also makes each
  # pod's directory in the unified hierarchy, and nothing removes those: they are empty, and go here.
  for b in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [ -d "$b" ] || continue
    f="$(find "$b" -mindepth 1 -type d -name 'pod*' | wc -l)"
    if [ "$f" -gt 0 ]; then
      if [ "$b" = "/sys/fs/cgroup/unified/$CGROUP_ROOT" ]; then removed+=("$f empty pod cgroup(s) runc left in $b")
      else found "$f pod cgroup(s) in $b"; fi
    fi
    find "$b" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ ! -d "$b" ] || leaks+=("cgroup $b (busy)")
  done
  # Pod logs: the kubelet removes them at its container GC, a minute after the pod. Those of this node's
  # pods go now (what was there before it started stays).
  for f in /var/log/pods/* /var/log/containers/*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    grep -qxF "$f" "$NODE_DIR/logs-before" 2>/dev/null || rm -rf "$f"
  done
  rm -f "$NODE_DIR/logs-before"
  if [ -f "$NODE_DIR/created" ]; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/DEPRECATION
    [ -s /run/mount/utab ] || rm -f /run/mount/utab
    while read -r p; do
      [ -d "$p" ] || continue
      rmdir "$p" 2>/dev/null || leaks+=("$p: $(ls -A "$p" | head -3 | tr '\n' ' ')")
    done <"$NODE_DIR/created"
    rm -f "$NODE_DIR/created"
  fi
  restore_sysctls
  rm -f "$NODE_DIR/sysctls"
  if ls "$NLOGS"/*.connect.trace >/dev/null 2>&1; then
    f="$(off_machine_connects | wc -l)"
    if [ "$f" -gt 0 ]; then leaks+=("$f connection(s) off the machine: $(off_machine_connects | head -3)")
    else say "traced: $(cat "$NLOGS"/*.connect.trace | grep -c 'connect(') connect() calls, none off the machine"; fi
    rm -f "$NLOGS"/*.connect.trace
  fi
  [ "${#removed[@]}" -eq 0 ] || say "removed: $(printf '%s; ' "${removed[@]}")"
  if [ "${#leaks[@]}" -gt 0 ]; then
    say "node down in $((SECONDS - t0))s, but the kubelet LEFT: $(printf '%s; ' "${leaks[@]}")(cleaned up now, as far as possible)"
    return 1
  fi
  say "node down in $((SECONDS - t0))s: no pod, netns, veth, bridge, cgroup, mount or host-local address left"
}

status() {
  local name
  for name in containerd kubelet; do
    if running "$name"; then echo "node $name running (pid $(cat "$NPIDS/$name"))"; else echo "node $name stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  build) build_all ;;
  status) status ;;
  import) shift; running containerd || die "the node is not up"; import_images "$@" ;;
  env)
    printf 'NODE_NAME=%q\nNODE_IP=%q\nNODE_DIR=%q\nBRIDGE=%q\nNETNS_DIR=%q\nIPAM_DIR=%q\nSTANDIN_STATE=%q\nCONTAINERD_SOCK=%q\nCGROUP_ROOT=%q\nBUSYBOX_IMAGE=%q\nPAUSE_IMAGE=%q\n' \
      "$NODE_NAME" "$NODE_IP" "$NODE_DIR" "$BRIDGE" "$NETNS_DIR" "$IPAM_DIR" "$STANDIN_STATE" "$SOCK" \
      "$CGROUP_ROOT" "$BUSYBOX_IMAGE" "$PAUSE_IMAGE" ;;
  *) die "usage: $0 up | down | build | status | import IMAGE.tar... | env" ;;
esac

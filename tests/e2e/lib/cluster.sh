#!/usr/bin/env bash
# Builds throw-away clusters out of network namespaces for the end-to-end tests and the demo.
#
#   fabric   a namespace with bridge "fabric": the underlay every machine is cabled to
#   hub      kohaku-hostd in its own namespace, uplink eth0 on the fabric
#   runners  kohaku-runnerd each in its own namespace, uplink eth0 on the fabric
#   workloads namespaces attached to a runner through its /api/workloads
#
# Every name starts with a per-run prefix, and an EXIT trap removes everything, also after a
# failure: nothing is created in, or changed in, the root namespace.
set -euo pipefail

KOHAKU_BIN_DIR=${KOHAKU_BIN_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build/bin}
CLUSTER_ID=${CLUSTER_ID:-$(printf 'k%04x' $((RANDOM % 65536)))}
CLUSTER_DIR=$(mktemp -d "/tmp/kohaku-${CLUSTER_ID}.XXXXXX")
UNDERLAY_NET=${UNDERLAY_NET:-198.18.$((RANDOM % 200 + 10))}
CLUSTER_PIDS=()
CLUSTER_KEEP=${CLUSTER_KEEP:-0}
declare -A HOST_IP=()   # machine name -> underlay address
declare -A DAEMON_PID=() # machine name -> daemon pid
declare -A API_TOKEN=()  # machine name -> the token its daemon's mutating routes want
CLUSTER_HOOKS=()         # commands run first at teardown (e.g. removing containers)

ns_path() { echo "/var/run/netns/${CLUSTER_ID}-$1"; }
ns_name() { echo "${CLUSTER_ID}-$1"; }
# Runs a command inside machine $1's network namespace (clients only: daemons use run_daemon).
in_ns() { local m=$1; shift; nsenter --net="$(ns_path "$m")" "$@"; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
fail() {
  log "FAIL: $*"
  dump_logs
  exit 1
}

dump_logs() {
  local f
  for f in "$CLUSTER_DIR"/*.log; do
    [[ -f $f ]] || continue
    echo "----- $(basename "$f") (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
}

# wait_for SECONDS DESCRIPTION CMD...: polls CMD until it succeeds or the deadline passes.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${seconds}s waiting for: $what"
    sleep 0.1
  done
}

cluster_cleanup() {
  local rc=$?
  if [[ $CLUSTER_KEEP == 1 ]]; then
    log "kept cluster ${CLUSTER_ID}; remove it with: $(cluster_teardown_hint)"
    return $rc
  fi
  local hook pid
  for hook in "${CLUSTER_HOOKS[@]}"; do eval "$hook" >/dev/null 2>&1 || true; done
  for pid in "${CLUSTER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${CLUSTER_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Every namespace of this cluster carries its id as prefix; listing them (rather than keeping
  # a list in a variable) also catches those made in subshells such as $(workload_up ...).
  local ns
  for ns in $(ip netns list | awk -v p="${CLUSTER_ID}-" 'index($1, p) == 1 {print $1}'); do
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "/sys/fs/bpf/kohaku-${CLUSTER_ID}" 2>/dev/null || true
  # Anything still mounted below the cluster dir (a Docker data root) goes before the files do.
  local mnt
  for mnt in $(awk -v d="$CLUSTER_DIR" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$mnt" 2>/dev/null || true
  done
  rm -rf "$CLUSTER_DIR"
  return $rc
}

cluster_teardown_hint() {
  echo "pkill -f kohaku-${CLUSTER_ID}; for n in \$(ip netns list | awk '/^${CLUSTER_ID}-/{print \$1}'); do ip netns del \$n; done; rm -rf /sys/fs/bpf/kohaku-${CLUSTER_ID} ${CLUSTER_DIR}"
}

trap cluster_cleanup EXIT

# The daemons of a test cluster must never reach a firewalld on this machine's system bus: that
# is the root namespace's firewall. A bus address that leads nowhere is "firewalld not running";
# test_firewalld.sh gives each machine a private bus of its own (firewalld_up).
export DBUS_SYSTEM_BUS_ADDRESS=${KOHAKU_TEST_DBUS_ADDRESS:-unix:path=/nonexistent/kohaku-no-system-bus}

new_ns() {
  local ns
  ns=$(ns_name "$1")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
}

# fabric_up: the underlay switch every machine plugs into.
fabric_up() {
  new_ns fabric
  ip -n "$(ns_name fabric)" link add fabric type bridge
  ip -n "$(ns_name fabric)" link set fabric up
}

# machine_up NAME HOSTNUM: a namespace with eth0 on the fabric at UNDERLAY_NET.HOSTNUM/24.
machine_up() {
  local m=$1 num=$2 ns
  ns=$(ns_name "$m")
  new_ns "$m"
  ip -n "$(ns_name fabric)" link add "p-$m" type veth peer name eth0 netns "$ns"
  ip -n "$(ns_name fabric)" link set "p-$m" master fabric up
  ip -n "$ns" addr add "${UNDERLAY_NET}.${num}/24" dev eth0
  ip -n "$ns" link set eth0 up
  HOST_IP[$m]="${UNDERLAY_NET}.${num}"
}

# cluster_machines_up: the usual machines on a fresh fabric: hub (.1), r1 (.11) and r2 (.12).
cluster_machines_up() {
  fabric_up
  machine_up hub 1
  machine_up r1 11
  machine_up r2 12
}

# outside_up ADDR RUNNER...: machine "outside" (.50) holding ADDR on its loopback, the default
# route of each RUNNER (whose uplink is eth0 by that route).
outside_up() {
  local addr=$1 r
  shift
  machine_up outside 50
  ip -n "$(ns_name outside)" addr add "$addr/32" dev lo
  for r in "$@"; do ip -n "$(ns_name "$r")" route add default via "${HOST_IP[outside]}" dev eth0; done
}

# run_daemon MACHINE LOGNAME CMD...: starts CMD in MACHINE's namespace (nsenter keeps the real
# /sys/fs/bpf visible, so pins survive the process), output to $CLUSTER_DIR/LOGNAME.log.
run_daemon() {
  local m=$1 name=$2
  shift 2
  nsenter --net="$(ns_path "$m")" "$@" >>"$CLUSTER_DIR/$name.log" 2>&1 &
  local pid=$!
  CLUSTER_PIDS+=("$pid")
  DAEMON_PID[$name]=$pid
}

# bg_in MACHINE CMD...: a background process in MACHINE (a listener) that the cluster cleanup
# stops (nsenter execs CMD, so the pid kept is CMD's own).
bg_in() {
  local m=$1
  shift
  nsenter --net="$(ns_path "$m")" "$@" &
  CLUSTER_PIDS+=("$!")
}

http_ok() { in_ns "$1" curl -fsS -m 2 "$2"; }

# api_curl MACHINE CURL-ARGS...: curl inside MACHINE with the bearer token its daemon wants (the
# hub's generated one; a runner was given the same), as an operator's script would send it.
api_curl() {
  local m=$1
  shift
  in_ns "$m" curl -H "Authorization: Bearer ${API_TOKEN[$m]:-}" "$@"
}

# hub_up MACHINE [--set K=V ...]: kohaku-hostd with the overlay on, state in the cluster dir.
hub_up() {
  local m=$1
  shift
  mkdir -p "$CLUSTER_DIR/$m-state"
  run_daemon "$m" hostd-"$m" "$KOHAKU_BIN_DIR/kohaku-hostd" \
    --set OVERLAY_ENABLED=True --set "HOST_REACHABLE_ADDRESS=${HOST_IP[$m]}" \
    --set "STATE_DIR=$CLUSTER_DIR/$m-state" --set "BPF_PIN_ROOT=/sys/fs/bpf/kohaku-${CLUSTER_ID}/$m" \
    --set HEARTBEAT_INTERVAL_SECONDS=1 --set CLEANUP_CHECK_INTERVAL_SECONDS=1 "$@"
  wait_for 20 "kohaku-hostd on $m answering /healthz" http_ok "$m" http://127.0.0.1:8000/healthz
  hub_token_known "$m" "$@"
}

# hub_token_known MACHINE [HUB ARGS...]: API_TOKEN[MACHINE] from an OVERLAY_API_TOKEN among the
# args, else from the token the hub generated in its STATE_DIR at first start.
hub_token_known() {
  local m=$1 arg
  shift
  for arg in "$@"; do
    if [[ $arg == OVERLAY_API_TOKEN=* ]]; then
      API_TOKEN[$m]=${arg#OVERLAY_API_TOKEN=}
      return
    fi
  done
  API_TOKEN[$m]=$(cat "$CLUSTER_DIR/$m-state/api_token")
}

# runner_up MACHINE HUB [--set K=V ...]: kohaku-runnerd registered with HUB's hostd.
runner_up() {
  local m=$1 hub=$2
  shift 2
  mkdir -p "$CLUSTER_DIR/$m-state"
  local token=()
  [[ -n ${API_TOKEN[$hub]:-} ]] && token=(--set "OVERLAY_API_TOKEN=${API_TOKEN[$hub]}")
  run_daemon "$m" runnerd-"$m" "$KOHAKU_BIN_DIR/kohaku-runnerd" \
    --set OVERLAY_ENABLED=True --set "HOST_ADDRESS=${HOST_IP[$hub]}" --set "RUNNER_HOSTNAME=$m" \
    --set "STATE_DIR=$CLUSTER_DIR/$m-state" --set "BPF_PIN_ROOT=/sys/fs/bpf/kohaku-${CLUSTER_ID}/$m" \
    --set HEARTBEAT_INTERVAL_SECONDS=1 --set "DOCKER_SOCKET=$CLUSTER_DIR/no-docker.sock" \
    "${token[@]}" "$@"
  API_TOKEN[$m]=${API_TOKEN[$hub]:-}
  wait_for 20 "kohaku-runnerd on $m answering /healthz" http_ok "$m" http://127.0.0.1:8001/healthz
}

runner_overlay_ready() {
  in_ns "$1" curl -fsS -m 2 http://127.0.0.1:8001/api/overlay/status | grep -q '"overlay_ready": *true'
}

# daemon_stop NAME [SIGNAL]: signals daemon NAME (run_daemon's LOGNAME; TERM by default) and
# reaps it.
daemon_stop() {
  local pid=${DAEMON_PID[$1]}
  kill -"${2:-TERM}" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The runner fast path as RUNNER's /api/overlay/status shows it (docs/bpf-runner-fast-path.md).
runner_status() { in_ns "$1" curl -fsS -m 2 http://127.0.0.1:8001/api/overlay/status; }
# fast_path_entry RUNNER IP: the entry of the workload or container with that address (none
# under the kernel datapath, whose status names the datapath instead of describing it).
fast_path_entry() {
  runner_status "$1" | jq -c --arg ip "$2" '.datapath | objects | .fast_path[]? | select(.ip == $ip)'
}
fast_path_served() { [[ -n $(fast_path_entry "$1" "$2") ]]; }
fast_path_counter() { fast_path_entry "$1" "$2" | jq -r ".counters.$3"; }
# What proves the path on RUNNER: its kernel's IpForwDatagrams and its overlay bridge's rx packets.
ip_forwarded() { in_ns "$1" awk '/^Ip:/ && ++n == 2 {print $7}' /proc/net/snmp; }
bridge_rx() { in_ns "$1" ip -s -j link show kohaku-overlay | jq '.[0].stats64.rx.packets'; }

# runners_ready HUB RUNNER...: each RUNNER started against HUB with the default settings, then
# waited for until its overlay is ready (20 s each).
runners_ready() {
  local hub=$1 r
  shift
  for r in "$@"; do runner_up "$r" "$hub"; done
  for r in "$@"; do wait_for 20 "$r overlay ready" runner_overlay_ready "$r"; done
}

# workload_up RUNNER NAME [TOKEN]: a namespace attached to RUNNER's bridge; prints its IP.
workload_up() {
  local r=$1 w=$2 token=${3:-}
  new_ns "$w"
  local body="{\"netns\": \"$(ns_path "$w")\", \"name\": \"$w\"${token:+, \"token\": \"$token\"}}"
  local answer
  answer=$(api_curl "$r" -fsS -m 10 -X POST -H 'Content-Type: application/json' \
    -d "$body" http://127.0.0.1:8001/api/workloads) || fail "attaching workload $w on $r"
  echo "$answer" | jq -r .ip
}

# l2_workload_up RUNNER NAME NETWORK: a namespace attached to named L2 network NETWORK on RUNNER
# (address from the host's cluster-wide pool); prints its IP.
l2_workload_up() {
  new_ns "$2"
  local answer
  answer=$(api_curl "$1" -fsS -m 10 -X POST -H 'Content-Type: application/json' \
    -d "{\"netns\": \"$(ns_path "$2")\", \"name\": \"$2\", \"network\": \"$3\"}" \
    http://127.0.0.1:8001/api/workloads) || fail "attaching $2 to $3 on $1"
  jq -r .ip <<<"$answer"
}

ctl() {
  local m=$1
  shift
  in_ns "$m" "$KOHAKU_BIN_DIR/kohakuctl" --host http://127.0.0.1:8000 --token "${API_TOKEN[$m]:-}" "$@"
}

can_ping() { in_ns "$1" ping -c 1 -W 1 "$2"; }

# workloads_a_b: workload "a" on r1 and "b" on r2 (their addresses in $a and $b), a reaching b.
workloads_a_b() {
  # shellcheck disable=SC2034 # a is the caller's
  a=$(workload_up r1 a)
  b=$(workload_up r2 b)
  wait_for 10 "a reaches b" can_ping a "$b"
}

# expect_bpf_fallback LOG REASON: a daemon given a pin root below the regular file
# $CLUSTER_DIR/not-a-directory (how the tests make BPF unloadable) says so in REASON (its
# status's datapath.reason) and logged exactly one warning to LOG since line $LOG_FROM, that it
# falls back to the kernel datapath.
expect_bpf_fallback() {
  local log=$1 reason=$2 warnings
  [[ $reason == "BPF datapath could not be loaded: "*"not-a-directory"* ]] || fail "reason: $reason"
  warnings=$(tail -n +"$LOG_FROM" "$log" | grep -c ' WARN ' || true)
  [[ $warnings == 1 ]] || fail "expected one warning, got $warnings: $(tail -n +"$LOG_FROM" "$log" | grep ' WARN ')"
  tail -n +"$LOG_FROM" "$log" | grep ' WARN ' | grep -q 'falling back to the kernel datapath' ||
    fail "the warning does not say it falls back"
}

# docker_up MACHINE: a Docker engine inside MACHINE's network namespace (nsenter keeps the cgroup
# mounts visible, which `ip netns exec` would hide), with an image "kohaku-busybox" made from
# Debian's static busybox (nothing can be pulled here). Sets DOCKER_SOCK_<machine>.
docker_up() {
  local m=$1 dir="$CLUSTER_DIR/docker-$1"
  command -v dockerd >/dev/null || fail "dockerd not installed (tools/install-deps installs docker.io)"
  mkdir -p "$dir/data" "$dir/exec" "$dir/rootfs/bin"
  local sock="$dir/docker.sock"
  run_daemon "$m" dockerd-"$m" dockerd --data-root "$dir/data" --exec-root "$dir/exec" \
    -H "unix://$sock" --pidfile "$dir/docker.pid" --containerd-namespace "kohaku-$CLUSTER_ID" \
    --log-level warn
  CLUSTER_HOOKS+=("docker -H unix://$sock ps -aq | xargs -r docker -H unix://$sock rm -f")
  wait_for 60 "dockerd on $m" docker -H "unix://$sock" info
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  local applet
  for applet in sh ping nc wget ip sleep cat echo hostname; do ln -sf busybox "$dir/rootfs/bin/$applet"; done
  tar -C "$dir/rootfs" -c . | docker -H "unix://$sock" import - kohaku-busybox:latest >/dev/null
  printf -v "DOCKER_SOCK_${m//-/_}" '%s' "$sock"
}

# docker_cluster: after cluster_machines_up (and any outside_up), the hub with the classic layout,
# a Docker engine on r1 used by r1's runner (`dk ARGS...` runs docker against it), r2 without
# one, both overlays up and the overlay's Docker network created on r1.
docker_cluster() {
  hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
  docker_up r1
  dk() { docker -H "unix://$DOCKER_SOCK_r1" "$@"; }
  runner_up r1 hub --set "DOCKER_SOCKET=$DOCKER_SOCK_r1"
  runner_up r2 hub
  wait_for 20 "r1 overlay ready" runner_overlay_ready r1
  wait_for 20 "r2 overlay ready" runner_overlay_ready r2
  network_ready() { dk network inspect kohakuriver-overlay >/dev/null; }
  wait_for 20 "Docker network kohakuriver-overlay on r1" network_ready
}

# two_runner_cluster [HUB ARGS...]: the usual test bed: fabric, hub "hub" with the classic
# 10.0.0.0/8/8/16 layout (plus HUB ARGS), runners "r1" and "r2" registered with their overlay up.
two_runner_cluster() {
  cluster_machines_up
  hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16 "$@"
  runner_up r1 hub
  runner_up r2 hub
  wait_for 20 "r1 overlay ready" runner_overlay_ready r1
  wait_for 20 "r2 overlay ready" runner_overlay_ready r2
}

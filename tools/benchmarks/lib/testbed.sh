# The data plane testbed, built with tests/e2e/lib/cluster.sh: a hub and two runners on the fabric,
# one workload on each runner (a1 on r1, b1 on r2). The hub's datapath is switched by restarting
# kohaku-hostd with the column's settings (state kept, so runners and tunnels stay):
#   kernel   OVERLAY_DATAPATH=kernel (ip_forward + FORWARD rules)
#   tc       OVERLAY_DATAPATH=bpf, OVERLAY_EXPRESS=off (host_forward on the tunnels, today's path)
#   express  OVERLAY_DATAPATH=bpf (the default: express stage on the uplink, auto = TC on veth)
#   xdp      OVERLAY_DATAPATH=bpf, OVERLAY_EXPRESS=xdp (the express stage in native XDP)

HUB_ARGS=(--set OVERLAY_SUBNET=10.0.0.0/8/8/16)

column_args() {
  case $1 in
    kernel) echo "--set OVERLAY_DATAPATH=kernel" ;;
    bpf | express) echo "--set OVERLAY_DATAPATH=bpf" ;;
    tc) echo "--set OVERLAY_DATAPATH=bpf --set OVERLAY_EXPRESS=off" ;;
    xdp) echo "--set OVERLAY_DATAPATH=bpf --set OVERLAY_EXPRESS=xdp" ;;
    *) fail "unknown datapath column $1" ;;
  esac
}

testbed_up() {
  cluster_machines_up
  hub_up hub "${HUB_ARGS[@]}" --set OVERLAY_DATAPATH=kernel
  ACTIVE_DP=kernel
  # Both ends of the hub's uplink receive in NAPI mode with GRO on, for every column alike: the
  # hub's side as a physical NIC does (and as the express stage sets it), the fabric's side
  # because veth hands frames redirected by XDP only to a peer in NAPI mode.
  in_ns hub ethtool -K eth0 gro on >/dev/null
  in_ns fabric ethtool -K p-hub gro on >/dev/null
  runner_outside_up # before the runners: r1's uplink is the device of its default route
  runner_up r1 hub
  runner_up r2 hub
  wait_for 30 "r1 overlay ready" runner_overlay_ready r1
  wait_for 30 "r2 overlay ready" runner_overlay_ready r2
  # Not inside $(...): workload_up registers the namespace it creates for removal at exit, and a
  # subshell would forget that registration.
  workload_up r1 a1 >"$CLUSTER_DIR/a1.ip"
  workload_up r2 b1 >"$CLUSTER_DIR/b1.ip"
  A1=$(<"$CLUSTER_DIR/a1.ip")
  B1=$(<"$CLUSTER_DIR/b1.ip")
  wait_for 20 "a1 reaches b1" can_ping a1 "$B1"
  log "testbed: hub ${HOST_IP[hub]}, r1 ${HOST_IP[r1]} (a1 $A1), r2 ${HOST_IP[r2]} (b1 $B1)"
}

# bench_daemon_stop NAME: SIGTERM, and SIGKILL after 5 s: a slow shutdown must not stall a
# column switch (the e2e tests, which judge shutdowns, wait instead).
bench_daemon_stop() {
  local pid=${DAEMON_PID[$1]}
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

# What the hub says it runs, and where our programs sit (the proof, not the setting):
# "<datapath>/express=<stage>/tc-bpf-filters=<on the hub's tunnel towards r1>/uplink=<eth0 hooks>".
hub_datapath_evidence() {
  local s reported stage filters uplink
  s=$(in_ns hub curl -fsS -m 2 http://127.0.0.1:8000/api/overlay/status 2>/dev/null)
  reported=$(jq -r '.datapath.active // "not-reported"' <<<"$s" 2>/dev/null)
  stage=$(jq -r '.datapath.express.active // "none"' <<<"$s" 2>/dev/null)
  filters=$(in_ns hub tc filter show dev "$(hub_tunnel_of r1)" ingress 2>/dev/null | grep -c 'direct-action' || true)
  uplink=$( (in_ns hub tc filter show dev eth0 ingress | grep -o 'host_express_tc' | head -n1
    in_ns hub ip -d link show eth0 | grep -o 'name host_express_xd' | sed 's/name //') | paste -sd+)
  echo "${reported:-not-reported}/express=${stage}/tc-bpf-filters=${filters}/uplink=${uplink:-none}"
}

# hub_set_datapath COLUMN [fresh]: restart kohaku-hostd with the column's settings (always when
# "fresh": XDP instruments on the uplink replace the hub's own XDP program) and wait until the
# overlay carries traffic again.
hub_set_datapath() {
  local dp=$1 fresh=${2:-}
  if [[ $ACTIVE_DP != "$dp" || -n $fresh ]]; then
    bench_daemon_stop hostd-hub
    # shellcheck disable=SC2046
    hub_up hub "${HUB_ARGS[@]}" $(column_args "$dp")
    ACTIVE_DP=$dp
  fi
  wait_for 30 "r1 overlay ready" runner_overlay_ready r1
  wait_for 30 "r2 overlay ready" runner_overlay_ready r2
  wait_for 30 "a1 reaches b1 under $dp" can_ping a1 "$B1"
  local ev
  ev=$(hub_datapath_evidence)
  DP_EVIDENCE[$dp]=$ev
  log "hub datapath $dp: $ev"
}

hub_ip_forwarded() { in_ns hub awk '/^Ip: [0-9]/ {print $7}' /proc/net/snmp; }

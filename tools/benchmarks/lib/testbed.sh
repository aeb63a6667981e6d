# The data plane testbed, built with tests/e2e/lib/cluster.sh: a hub and two runners on the fabric,
# one workload on each runner (a1 on r1, b1 on r2). The hub's datapath is switched by restarting
# kohaku-hostd with OVERLAY_DATAPATH=<dp> (state kept, so runners and tunnels stay).

HUB_ARGS=(--set OVERLAY_SUBNET=10.0.0.0/8/8/16)

testbed_up() {
  fabric_up
  machine_up hub 1
  machine_up r1 11
  machine_up r2 12
  hub_up hub "${HUB_ARGS[@]}" --set OVERLAY_DATAPATH=kernel
  ACTIVE_DP=kernel
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

hub_stop() {
  local pid=${DAEMON_PID[hostd-hub]}
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

# What the hub says it runs, and whether our TC program is on the tunnels (the proof, not the
# setting): "<reported datapath>/<bpf filters on the ingress of the hub's tunnel towards r1>".
hub_datapath_evidence() {
  local reported filters
  reported=$(in_ns hub curl -fsS -m 2 http://127.0.0.1:8000/api/overlay/status |
    jq -r '.datapath.active // .datapath.mode // .datapath // .overlay_datapath // "not-reported"' 2>/dev/null |
    head -n1)
  filters=$(in_ns hub tc filter show dev "$(hub_tunnel_of r1)" ingress 2>/dev/null | grep -c 'direct-action' || true)
  echo "${reported:-not-reported}/tc-bpf-filters=${filters}"
}

# hub_set_datapath DP: restart kohaku-hostd with OVERLAY_DATAPATH=DP and wait until the overlay
# carries traffic again.
hub_set_datapath() {
  local dp=$1
  if [[ $ACTIVE_DP != "$dp" ]]; then
    hub_stop
    hub_up hub "${HUB_ARGS[@]}" --set "OVERLAY_DATAPATH=$dp"
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

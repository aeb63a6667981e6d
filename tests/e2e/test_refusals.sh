#!/usr/bin/env bash
# Bad set-ups are refused with a clear reason and change nothing: a loopback
# HOST_REACHABLE_ADDRESS stops the hub, and a runner with another VXLAN id base is refused.
source "$(dirname "$0")/lib/cluster.sh"

fabric_up
machine_up hub 1
machine_up r1 11

# Loopback reachable address: hostd must exit non-zero and say why, without creating devices.
set +e
out=$(in_ns hub "$KOHAKU_BIN_DIR/kohaku-hostd" --set OVERLAY_ENABLED=True \
  --set HOST_REACHABLE_ADDRESS=127.0.0.1 --set "STATE_DIR=$CLUSTER_DIR/bad" 2>&1)
rc=$?
set -e
((rc != 0)) || fail "hostd accepted 127.0.0.1 as HOST_REACHABLE_ADDRESS"
grep -q "HOST_REACHABLE_ADDRESS" <<<"$out" || fail "refusal does not name the key: $out"
grep -q "127.0.0.1" <<<"$out" || fail "refusal does not name the value: $out"
in_ns hub ip link show kohaku-host >/dev/null 2>&1 && fail "refused hostd still created kohaku-host"

hub_up hub
# VXLAN id base mismatch: registration is refused with both values named.
runner_up r1 hub --set OVERLAY_VXLAN_ID=200
refused() { in_ns r1 curl -fsS http://127.0.0.1:8001/api/overlay/status | grep -q "200"; }
wait_for 15 "r1 reports the refusal" refused
reason=$(in_ns r1 curl -fsS http://127.0.0.1:8001/api/overlay/status)
grep -q "100" <<<"$reason" || fail "refusal does not name the host's value: $reason"
in_ns hub ip link show | grep -q vxkr && fail "hub built a tunnel for a refused runner"
in_ns r1 ip link show vxlan0 >/dev/null 2>&1 && fail "refused runner built vxlan0"
[[ $(in_ns hub curl -fsS http://127.0.0.1:8000/api/overlay/status | jq '.allocations | length') == 0 ]] ||
  fail "refused runner got an allocation"
log "PASS"

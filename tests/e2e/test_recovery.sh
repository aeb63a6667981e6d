#!/usr/bin/env bash
# The hub loses its state (a new disk, a wiped STATE_DIR) while the tunnels stay up: at start it
# recovers runner ids from the vxkr devices it finds, removes a device whose VNI does not match
# its id, and each runner registering again takes its old id back, without traffic between the
# runners stopping.
source "$(dirname "$0")/lib/cluster.sh"

# A token in the config, not the one generated in STATE_DIR: the runners must still be let in
# after the state is gone (docs/security.md, "Losing STATE_DIR").
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
two_runner_cluster --set "OVERLAY_API_TOKEN=$token"
[[ ! -e $CLUSTER_DIR/hub-state/api_token ]] || fail "api_token generated although OVERLAY_API_TOKEN is set"
workloads_a_b

# Swap the runners' ids as seen from outside: r2 registered second, so it holds id 2.
allocation() { in_ns hub curl -fsS http://127.0.0.1:8000/api/overlay/status |
  jq -r --arg h "$1" '.allocations[] | select(.runner_name==$h) | "\(.runner_id) \(.subnet) \(.physical_ip)"'; }
r1_before=$(allocation r1)
r2_before=$(allocation r2)

kill -KILL "${DAEMON_PID[hostd-hub]}"
wait "${DAEMON_PID[hostd-hub]}" 2>/dev/null || true
rm -rf "$CLUSTER_DIR/hub-state"
# A stray device whose VNI does not belong to its id (vxkr5 must carry VNI 105).
in_ns hub ip link add vxkr5 type vxlan id 999 remote 192.0.2.99 dstport 4789 nolearning

in_ns a ping -i 0.05 -c 120 -W 1 "$b" >"$CLUSTER_DIR/ping.txt" &
pinger=$!
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16 --set "OVERLAY_API_TOKEN=$token"

gone() { ! in_ns hub ip link show vxkr5; }
wait_for 10 "hub removes vxkr5 (wrong VNI)" gone
grep -q "removing vxkr5" "$CLUSTER_DIR/hostd-hub.log" || fail "removal of vxkr5 not logged"
grep -q "recovered vxkr1 as placeholder runner_1" "$CLUSTER_DIR/hostd-hub.log" ||
  fail "vxkr1 not recovered as a placeholder"

back() { [[ $(allocation r1) == "$r1_before" && $(allocation r2) == "$r2_before" ]]; }
wait_for 20 "runners take their old ids back ($r1_before / $r2_before)" back
status=$(in_ns hub curl -fsS http://127.0.0.1:8000/api/overlay/status)
jq -e '[.allocations[] | select(.runner_name | startswith("runner_"))] | length == 0' <<<"$status" >/dev/null ||
  fail "placeholders left after the runners came back: $status"

wait "$pinger" || true
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$CLUSTER_DIR/ping.txt")
((received >= 118)) || fail "traffic interrupted while the hub recovered: $(tail -2 "$CLUSTER_DIR/ping.txt")"
log "PASS"

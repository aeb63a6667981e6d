#!/usr/bin/env bash
# Drift repair: a deleted vxlan0 comes back, a deleted vxkr device comes back, and when the
# host's reachable address changes the runner's tunnel follows it.
source "$(dirname "$0")/lib/cluster.sh"

two_runner_cluster
workloads_a_b

# Someone deletes the runner's vxlan0: the next heartbeat repairs it.
in_ns r1 ip link del vxlan0
wait_for 15 "vxlan0 recreated on r1" in_ns r1 ip link show vxlan0
wait_for 10 "a reaches b after vxlan0 repair" can_ping a "$b"

# Someone deletes the hub's vxkr2: the host's reconciliation recreates it.
in_ns hub ip link del vxkr2
wait_for 15 "vxkr2 recreated on hub" in_ns hub ip link show vxkr2
wait_for 10 "a reaches b after vxkr2 repair" can_ping a "$b"

# The hub moves to a new underlay address: the runners' tunnels follow.
new_ip="${UNDERLAY_NET}.2"
in_ns hub ip addr add "$new_ip/24" dev eth0
kill -TERM "${DAEMON_PID[hostd-hub]}"
wait "${DAEMON_PID[hostd-hub]}" || true
HOST_IP[hub]=$new_ip
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
tunnel_remote_is() { in_ns "$1" ip -d link show vxlan0 | grep -q "remote $2 "; }
wait_for 20 "r1 vxlan0 remote follows to $new_ip" tunnel_remote_is r1 "$new_ip"
wait_for 20 "r2 vxlan0 remote follows to $new_ip" tunnel_remote_is r2 "$new_ip"
in_ns hub ip -d link show vxkr1 | grep -q "local $new_ip" || fail "vxkr1 still uses the old local address"
wait_for 10 "a reaches b via the new hub address" can_ping a "$b"
log "PASS"

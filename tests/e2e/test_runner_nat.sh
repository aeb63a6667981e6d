#!/usr/bin/env bash
# The runner's BPF datapath end to end: an "outside" machine on the fabric (holding 192.0.2.1,
# TEST-NET-1, reached through r1's default route) that r1's workloads reach over TCP, UDP and
# ping, seeing r1's uplink address as the source; the outside cannot open a connection into a
# workload (the forward filter drops it and counts); a long-lived TCP connection survives
# kill -9 and a restart of kohaku-runnerd; idle UDP flows are collected by the daemon's GC;
# deny rules through the runner API; overlay traffic between runners is not masqueraded.
source "$(dirname "$0")/lib/cluster.sh"

OUTSIDE=192.0.2.1
PIN_ROOT=/sys/fs/bpf/kohaku-${CLUSTER_ID}/r1
R1_ARGS=(--set OVERLAY_NAT_UDP_TIMEOUT_SECONDS=5 --set OVERLAY_NAT_UDP_STREAM_TIMEOUT_SECONDS=5)

status() { in_ns "$1" curl -fsS -m 2 http://127.0.0.1:8001/api/overlay/status; }
counter() { status r1 | jq -r ".datapath.counters.$1"; }
# ct_count PROTO DPORT: conntrack entries (both halves) of flows to the outside's port.
ct_count() {
  bpftool -j map dump pinned "$PIN_ROOT/runner/runner_ct" |
    jq --argjson p "$1" --argjson d "$2" '[.[] | (.formatted // .) | select(.key.proto == $p and (.key.dport == $d or .key.sport == $d))] | length'
}
no_ct() { [[ $(ct_count "$1" "$2") == 0 ]]; }
datapath_bpf() { status r1 | jq -e '.datapath.active == "bpf" and .datapath.uplink.device == "eth0"'; }
# peer_seen_by_outside tcp|udp PORT: what the outside's listener reports as our address.
peer_tcp() { in_ns "$1" timeout 5 socat -T 3 - "TCP:$2:$3,connect-timeout=3" </dev/null; }
peer_udp() { echo hi | in_ns "$1" timeout 5 socat -t 1 -T 3 - "UDP:$2:$3" | head -n 1; }

cluster_machines_up
# r1's way to the outside is a default route: its uplink is eth0 by that route.
outside_up "$OUTSIDE" r1
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
runner_up r1 hub "${R1_ARGS[@]}"
runner_up r2 hub
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 20 "r2 overlay ready" runner_overlay_ready r2
wait_for 10 "r1 BPF datapath on eth0" datapath_bpf

st=$(status r1 | jq .datapath)
[[ $(jq -r '.requested + "/" + .active' <<<"$st") == bpf/bpf ]] || fail "r1 datapath: $st"
[[ $(jq -r .uplink.address <<<"$st") == "${HOST_IP[r1]}" ]] || fail "r1 uplink address: $st"
[[ $(jq -r .uplink.chosen_by <<<"$st") == "default route" ]] || fail "r1 uplink choice: $st"
jq -e '.conntrack.max == 65536 and .nat.port_min == 32768 and .nat.udp_timeout_seconds == 5' \
  <<<"$st" >/dev/null || fail "r1 NAT config: $st"
# r2 has no default route: its uplink is the device of the route to the host.
[[ $(status r2 | jq -r '.datapath.uplink.chosen_by') == "route to ${HOST_IP[hub]}" ]] ||
  fail "r2 uplink: $(status r2 | jq -c .datapath.uplink)"
in_ns r1 tc filter show dev eth0 egress | grep -q runner_nat_egre || fail "no NAT on eth0 egress: $(in_ns r1 tc filter show dev eth0 egress)"
in_ns r1 tc filter show dev eth0 ingress | grep -q runner_nat_ingr || fail "no NAT on eth0 ingress"
in_ns r1 tc filter show dev kohaku-overlay egress | grep -q runner_forward_ ||
  fail "no forward filter on the bridge"
[[ -e $PIN_ROOT/runner/runner_ct ]] || fail "conntrack not pinned under $PIN_ROOT/runner"

a1=$(workload_up r1 a1)
b1=$(workload_up r2 b1)

# --- Outbound: ping, TCP and UDP; the outside sees r1's uplink address.
bg_in outside socat TCP-LISTEN:7100,reuseaddr,fork SYSTEM:'echo $SOCAT_PEERADDR'
# Bound to the address: an unbound UDP socket would answer from the fabric address instead.
bg_in outside socat UDP-RECVFROM:7101,bind=$OUTSIDE,fork SYSTEM:'echo $SOCAT_PEERADDR'
bg_in outside socat TCP-LISTEN:7102,reuseaddr,fork EXEC:cat
# All three: a datagram sent before the UDP listener is bound is lost, and nothing resends it.
wait_for 10 "listeners on the outside" in_ns outside sh -c \
  "ss -ltn | grep -q ':7100 ' && ss -lun | grep -q ':7101 ' && ss -ltn | grep -q ':7102 '"
wait_for 10 "a1 pings the outside" can_ping a1 "$OUTSIDE"
seen=$(peer_tcp a1 "$OUTSIDE" 7100) || fail "a1 -> outside TCP"
[[ $seen == "${HOST_IP[r1]}" ]] || fail "outside saw TCP from '$seen', not r1's uplink ${HOST_IP[r1]}"
seen=$(peer_udp a1 "$OUTSIDE" 7101) || fail "a1 -> outside UDP"
[[ $seen == "${HOST_IP[r1]}" ]] || fail "outside saw UDP from '$seen', not r1's uplink ${HOST_IP[r1]}"
(($(counter egress_translated) > 0 && $(counter ingress_translated) > 0)) ||
  fail "NAT counters: $(status r1 | jq -c .datapath.counters)"
(($(ct_count 17 7101) == 2)) || fail "UDP flow not in the conntrack table"

# --- Idle flows expire: the daemon's GC removes the UDP flow (timeout 5 s, GC every heartbeat).
wait_for 15 "idle UDP flow collected" no_ct 17 7101
(($(status r1 | jq .datapath.gc.flows_expired) >= 1)) || fail "GC did not count: $(status r1 | jq -c .datapath.gc)"

# --- Overlay traffic between runners is not masqueraded.
bg_in b1 socat TCP-LISTEN:7300,reuseaddr,fork SYSTEM:'echo $SOCAT_PEERADDR'
wait_for 10 "listener on b1" in_ns b1 sh -c "ss -ltn | grep -q ':7300 '"
before=$(counter egress_translated)
seen=$(peer_tcp a1 "$b1" 7300) || fail "a1 -> b1 TCP"
[[ $seen == "$a1" ]] || fail "b1 saw '$seen', not a1's overlay address $a1"
[[ $(counter egress_translated) == "$before" ]] || fail "overlay traffic was masqueraded"

# --- Inbound: the outside routes the overlay via r1 but cannot connect to a workload.
ip -n "$(ns_name outside)" route add 10.0.0.0/8 via "${HOST_IP[r1]}"
bg_in a1 socat TCP-LISTEN:7200,reuseaddr SYSTEM:'echo reached'
wait_for 10 "listener on a1" in_ns a1 sh -c "ss -ltn | grep -q ':7200 '"
dropped=$(counter forward_dropped_untracked)
if in_ns outside timeout 5 socat -T 2 - "TCP:$a1:7200,connect-timeout=2" </dev/null; then
  fail "the outside opened a connection into workload a1"
fi
(($(counter forward_dropped_untracked) > dropped)) || fail "the unsolicited SYN was not counted as dropped"

# --- A deny rule through the runner API cuts ping to the outside; removing it restores it.
rule='{"destination": "192.0.2.1/32", "protocol": "icmp"}'
api_curl r1 -fsS -X POST -d "$rule" http://127.0.0.1:8001/api/policy/deny | jq -e .added >/dev/null ||
  fail "adding a deny rule"
can_ping a1 "$OUTSIDE" >/dev/null 2>&1 && fail "ping passed a deny rule"
status r1 | jq -e '.datapath.deny_rules[0].hits >= 1 and .datapath.counters.policy_denied >= 1' >/dev/null ||
  fail "deny rule hits: $(status r1 | jq -c .datapath.deny_rules)"
api_curl r1 -fsS -X DELETE -d "$rule" http://127.0.0.1:8001/api/policy/deny >/dev/null || fail "removing the rule"
wait_for 5 "ping after the rule is gone" can_ping a1 "$OUTSIDE"
code=$(api_curl r1 -s -o /dev/null -w '%{http_code}' -X POST -d '{"port": 22}' http://127.0.0.1:8001/api/policy/deny)
[[ $code == 422 ]] || fail "a port without tcp/udp was accepted ($code)"

# --- A long-lived TCP connection survives kill -9 and a restart of the daemon.
coproc CLIENT { exec nsenter --net="$(ns_path a1)" socat - "TCP:$OUTSIDE:7102"; }
CLUSTER_PIDS+=("$CLIENT_PID")
echo before >&"${CLIENT[1]}"
read -r -t 5 line <&"${CLIENT[0]}" && [[ $line == before ]] || fail "echo over the long-lived connection"
kill -KILL "${DAEMON_PID[runnerd-r1]}"
wait "${DAEMON_PID[runnerd-r1]}" 2>/dev/null || true
echo while-down >&"${CLIENT[1]}"
read -r -t 5 line <&"${CLIENT[0]}" && [[ $line == while-down ]] || fail "connection broke while the daemon was down"
runner_up r1 hub "${R1_ARGS[@]}"
wait_for 20 "r1 overlay ready again" runner_overlay_ready r1
wait_for 10 "r1 BPF datapath again" datapath_bpf
status r1 | jq -e '.datapath.adopted_conntrack == true' >/dev/null || fail "conntrack not adopted: $(status r1 | jq -c .datapath)"
echo after-restart >&"${CLIENT[1]}"
read -r -t 5 line <&"${CLIENT[0]}" && [[ $line == after-restart ]] || fail "connection broke across the restart"
grep -q "adopted the previous daemon's conntrack table" "$CLUSTER_DIR/runnerd-r1.log" || fail "no adoption logged"
exec {CLIENT[1]}>&-

# --- The uplink address changes (the default route now prefers another source): the programs
# are re-configured and new flows leave with the new address.
NEW_UPLINK=${UNDERLAY_NET}.111
ip -n "$(ns_name r1)" addr add "$NEW_UPLINK/24" dev eth0
ip -n "$(ns_name r1)" route replace default via "${HOST_IP[outside]}" dev eth0 src "$NEW_UPLINK"
new_uplink() { [[ $(status r1 | jq -r .datapath.nat.address) == "$NEW_UPLINK" ]]; }
wait_for 10 "r1 masquerades as $NEW_UPLINK" new_uplink
seen=$(peer_tcp a1 "$OUTSIDE" 7100) || fail "a1 -> outside TCP after the address change"
[[ $seen == "$NEW_UPLINK" ]] || fail "outside saw '$seen' after the change, not $NEW_UPLINK"
grep -q "uplink address changed from ${HOST_IP[r1]} to $NEW_UPLINK" "$CLUSTER_DIR/runnerd-r1.log" ||
  fail "the address change was not logged"
log "PASS"

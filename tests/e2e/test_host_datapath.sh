#!/usr/bin/env bash
# The hub's BPF fast path (OVERLAY_DATAPATH = "bpf", the default) in a real cluster: packets
# between runners are redirected by host_forward (its counters grow, the hub kernel's
# IpForwDatagrams does not), spoofed sources are dropped, a recreated tunnel (new ifindex) is
# picked up, forwarding goes on while kohaku-hostd is dead after kill -9 and the restarted daemon
# adopts the pins, and a released runner leaves the maps. The express stage on the uplink
# (test_host_express.sh) would carry this traffic before the tunnels see it, so it is off here:
# this is the TC path as it runs for what the express stage hands to the kernel.
source "$(dirname "$0")/lib/cluster.sh"

HUB_ARGS=(--set OVERLAY_SUBNET=10.0.0.0/8/8/16 --set HEARTBEAT_TIMEOUT_FACTOR=2 --set OVERLAY_EXPRESS=off)
PINS=/sys/fs/bpf/kohaku-${CLUSTER_ID}/hub/host

two_runner_cluster "${HUB_ARGS[@]}"
workloads_a_b

status() { in_ns hub curl -fsS -m 2 http://127.0.0.1:8000/api/overlay/status; }
# counter RUNNER_ID JQ_PATH: one of the runner's counters from /api/overlay/status.
counter() {
  status | jq -er --argjson id "$1" ".datapath.counters[] | select(.runner_id == \$id) | $2"
}
# snmp NS GROUP FIELD: a counter of /proc/net/snmp in machine NS's namespace.
snmp() {
  in_ns "$1" awk -v g="$2:" -v f="$3" \
    '$1 == g { if (!c) { for (i = 2; i <= NF; i++) if ($i == f) c = i } else print $c }' /proc/net/snmp
}
# dump MAP: a pinned map's entries as bpftool formats them from the BTF ({key, value} objects).
dump() { bpftool -j map dump pinned "$PINS/$1" | jq -c '[.[].formatted]'; }
# pinned_fwd RUNNER_ID: forwarded packets read straight from the pinned map (no daemon needed).
pinned_fwd() {
  bpftool -j map lookup pinned "$PINS/host_stats" key $(printf '%d 0 0 0' "$1") |
    jq '[.formatted.values[].value.fwd_packets] | add'
}
# ingress_ifindex RUNNER_ID: the tunnel the pinned host_ingress map has for the runner.
ingress_ifindex() {
  dump host_ingress | jq -er --argjson id "$1" '.[] | select(.value.runner_id == $id) | .key.ifindex'
}
ifindex_of() { in_ns hub ip -j link show "$1" | jq -e '.[0].ifindex'; }

# --- The datapath is BPF, pinned in the cluster's pin root, attached to both tunnels.
s=$(status)
[[ $(jq -r '.datapath.requested + "/" + .datapath.active' <<<"$s") == bpf/bpf ]] ||
  fail "expected datapath bpf/bpf: $(jq -c .datapath <<<"$s")"
jq -e '.datapath | has("reason") | not' <<<"$s" >/dev/null || fail "no fallback reason expected"
for pin in host_forward host_routes host_ingress host_addrs host_stats; do
  [[ -e $PINS/$pin ]] || fail "missing pin $PINS/$pin"
done
prog=$(jq -r .datapath.program_id <<<"$s")
for dev in vxkr1 vxkr2; do
  in_ns hub tc filter show dev "$dev" ingress | grep -q "host_forward.*id $prog " ||
    fail "$dev does not run host_forward id $prog: $(in_ns hub tc filter show dev "$dev" ingress)"
  [[ $(in_ns hub sysctl -n "net.ipv4.conf.$dev.forwarding") == 1 ]] || fail "forwarding off on $dev"
done
[[ $(in_ns hub sysctl -n net.ipv4.ip_forward) == 0 ]] || fail "bpf mode turned on ip_forward globally"
in_ns hub iptables -S FORWARD | grep -q kohaku-overlay && fail "bpf mode installed FORWARD rules"
routes=$(dump host_routes)
jq -e '[.[] | select(.key.addr == [10,2,0,0] and .key.prefixlen == 16 and .value.runner_id == 2)]
  | length == 1' <<<"$routes" >/dev/null || fail "host_routes lacks 10.2.0.0/16 -> runner 2: $routes"
[[ $(ingress_ifindex 2) == $(ifindex_of vxkr2) ]] || fail "host_ingress does not name vxkr2"
addrs=$(dump host_addrs | jq -c '[.[].key.addr] | sort')
[[ $addrs == '[[10,0,0,1],[10,1,0,254],[10,2,0,254]]' ]] || fail "host_addrs: $addrs"

# --- Fast path: a burst of pings grows the program's counters, not the kernel's forwarding.
fwd1=$(counter 1 .forwarded_packets)
fwd2=$(counter 2 .forwarded_packets)
kfwd=$(snmp hub Ip ForwDatagrams)
in_ns a ping -q -c 100 -i 0.01 -W 1 "$b" >"$CLUSTER_DIR/burst.txt" || fail "burst a -> b: $(tail -2 "$CLUSTER_DIR/burst.txt")"
((($(counter 1 .forwarded_packets) - fwd1) >= 100)) || fail "r1's forwarded counter grew by less than 100"
((($(counter 2 .forwarded_packets) - fwd2) >= 100)) || fail "r2's forwarded counter grew by less than 100"
(($(snmp hub Ip ForwDatagrams) == kfwd)) ||
  fail "hub kernel forwarded $(($(snmp hub Ip ForwDatagrams) - kfwd)) datagrams: not the fast path"
((fwd1 + 100 <= $(pinned_fwd 1))) || fail "pinned host_stats disagrees with the status"
overlay=$(ctl hub node overlay)
grep -q '^Datapath: *bpf$' <<<"$overlay" || fail "kohakuctl shows no bpf datapath: $overlay"
grep -Eq '^r2 +2 +vxkr2 +[0-9]{3,} ' <<<"$overlay" || fail "kohakuctl lacks r2's counters: $overlay"
log "fast path: 100 pings, +$(($(counter 1 .forwarded_packets) - fwd1)) forwarded, ForwDatagrams flat"

# --- The kernel's exception path still works with forwarding on the tunnels only: TTL 2 leaves
# r1 with TTL 1, the program hands it to the hub kernel, which answers Time Exceeded.
ttl=$(counter 1 .passed.ttl)
answer=$(in_ns a ping -c 1 -t 2 -W 1 "$b" || true)
grep -q 'From 10.1.0.254 .*Time to live exceeded' <<<"$answer" ||
  fail "no Time Exceeded from the hub for TTL 2: $answer"
((($(counter 1 .passed.ttl) - ttl) >= 1)) || fail "TTL expiry not counted as passed.ttl"

# --- Anti-spoofing: runner r1 posing as an address of r2's subnet is dropped at the hub. (A
# workload's own spoofing is already dropped on its runner: test_runner_fast_path.sh.)
in_ns r1 ip addr add 10.2.0.77/32 dev lo
spoofed=$(counter 1 .dropped.spoofed)
echos=$(snmp b Icmp InEchos)
in_ns r1 ping -q -c 5 -i 0.05 -W 1 -I 10.2.0.77 "$b" >/dev/null && fail "spoofed pings were answered"
(($(snmp b Icmp InEchos) == echos)) || fail "spoofed pings reached b"
((($(counter 1 .dropped.spoofed) - spoofed) >= 5)) || fail "spoof drops not counted on r1"
in_ns r1 ip addr del 10.2.0.77/32 dev lo

# --- A tunnel deleted behind the daemon's back comes back with a new ifindex; maps follow.
old=$(ifindex_of vxkr2)
in_ns hub ip link del vxkr2
new_tunnel() { local i; i=$(ifindex_of vxkr2) && [[ $i != "$old" && $(ingress_ifindex 2) == "$i" ]] &&
  in_ns hub tc filter show dev vxkr2 ingress | grep -q host_forward; }
wait_for 10 "vxkr2 recreated and back in host_ingress" new_tunnel
wait_for 10 "a reaches b over the recreated vxkr2" can_ping a "$b"
fwd2=$(counter 2 .forwarded_packets)
kfwd=$(snmp hub Ip ForwDatagrams)
in_ns a ping -q -c 20 -i 0.01 -W 1 "$b" >/dev/null || fail "a -> b after vxkr2 was recreated"
((($(counter 2 .forwarded_packets) - fwd2) >= 20)) || fail "replies over the new vxkr2 not forwarded"
(($(snmp hub Ip ForwDatagrams) == kfwd)) || fail "recreated tunnel fell back to kernel forwarding"

# --- kill -9 in the middle of a stream: not one packet lost, forwarding goes on while the
# daemon is dead, and the restarted daemon adopts the pinned maps (counters kept).
in_ns a ping -c 200 -i 0.02 -W 2 "$b" >"$CLUSTER_DIR/stream.txt" &
pinger=$!
wait_for 5 "stream started" grep -q 'icmp_seq=5 ' "$CLUSTER_DIR/stream.txt"
kill -KILL "${DAEMON_PID[hostd-hub]}"
wait "${DAEMON_PID[hostd-hub]}" 2>/dev/null || true
dead=$(pinned_fwd 1)
sleep 1 # the daemon stays dead for a second of traffic
(($(pinned_fwd 1) >= dead + 25)) || fail "forwarding stopped with the daemon: $dead -> $(pinned_fwd 1)"
hub_up hub "${HUB_ARGS[@]}"
wait "$pinger" || true
summary=$(grep 'packets transmitted' "$CLUSTER_DIR/stream.txt")
[[ $summary == "200 packets transmitted, 200 received,"* ]] || fail "loss across kill -9: $summary"
s=$(status)
[[ $(jq -r .datapath.active <<<"$s") == bpf ]] || fail "restarted hub is not on bpf"
prog=$(jq -r .datapath.program_id <<<"$s")
in_ns hub tc filter show dev vxkr1 ingress | grep -q "host_forward.*id $prog " ||
  fail "vxkr1 does not run the restarted daemon's program $prog"
(($(counter 1 .forwarded_packets) >= dead + 25)) || fail "counters lost across the restart"
log "kill -9: $summary; $(($(pinned_fwd 1) - dead)) forwarded from r1 since the kill"

# --- A released runner leaves the maps and its tunnel goes.
kill -TERM "${DAEMON_PID[runnerd-r2]}"
wait "${DAEMON_PID[runnerd-r2]}" || true
r2_inactive() { status | jq -e '.allocations[] | select(.runner_name == "r2") | .is_active == false'; }
wait_for 15 "r2 inactive" r2_inactive
api_curl hub -fsS -X POST http://127.0.0.1:8000/api/overlay/release/r2 >/dev/null || fail "release r2"
in_ns hub ip link show vxkr2 >/dev/null 2>&1 && fail "vxkr2 still exists after the release"
dump host_routes | jq -e 'all(.[]; .value.runner_id != 2)' >/dev/null ||
  fail "host_routes still routes to runner 2"
ingress_ifindex 2 >/dev/null && fail "host_ingress still has runner 2"
dump host_addrs | jq -e 'all(.[]; .key.addr != [10,2,0,254])' >/dev/null ||
  fail "host_addrs still holds 10.2.0.254"
status | jq -e 'all(.datapath.counters[]; .runner_id != 2)' >/dev/null || fail "r2 still has counters"
log "PASS"

#!/usr/bin/env bash
# The hub express stage (OVERLAY_EXPRESS, default auto) in a real cluster: on the hub's veth
# uplink auto picks TC; runner-to-runner packets are rewritten there (express counters grow, the
# hub's vxkr devices receive nothing and its kernel forwards nothing), TCP arrives intact, the
# largest DF packet passes and a tunnel with a smaller MTU gets Fragmentation Needed from the
# hub's kernel, spoofed outer and inner sources are dropped, a destination with no neighbour yet
# works from its first packet and then goes express, a kill -9 of kohaku-hostd loses no packet,
# a recreated uplink is followed, and XDP (forced, and refused by the device) is reported.
source "$(dirname "$0")/lib/cluster.sh"

HUB_ARGS=(--set OVERLAY_SUBNET=10.0.0.0/8/8/16)
PINS=/sys/fs/bpf/kohaku-${CLUSTER_ID}/hub/host

two_runner_cluster
# The hub's neighbour entries on the tunnels age in a second here (the MAC-change case below waits
# on it). Set before the first packet: an entry's timer armed with the default 30 s reachable time
# keeps it REACHABLE for up to 45 s whatever the sysctl says later.
for dev in $(in_ns hub ip -j link show type vxlan | jq -r '.[].ifname'); do
  for k in base_reachable_time_ms=1000 delay_first_probe_time=1 retrans_time_ms=300; do
    in_ns hub sysctl -qw "net.ipv4.neigh.$dev.${k%%=*}=${k#*=}"
  done
done
workloads_a_b

status() { in_ns hub curl -fsS -m 2 http://127.0.0.1:8000/api/overlay/status; }
express() { status | jq -c .datapath.express; }
# ecounter RUNNER_NAME JQ_PATH: one of the express counters of a runner ("" = runner 0).
ecounter() {
  status | jq -er --arg n "$1" \
    ".datapath.express.counters[] | select((.runner_name // \"\") == \$n) | $2"
}
snmp() {
  in_ns "$1" awk -v g="$2:" -v f="$3" \
    '$1 == g { if (!c) { for (i = 2; i <= NF; i++) if ($i == f) c = i } else print $c }' /proc/net/snmp
}
# rx_packets DEV: packets the hub's device received.
rx_packets() { in_ns hub ip -j -s link show "$1" | jq -e '.[0].stats64.rx.packets'; }
tunnel_of() {
  in_ns hub ip -j -d link show type vxlan |
    jq -r --arg r "${HOST_IP[$1]}" '.[] | select(.linkinfo.info_data.remote == $r) | .ifname' | head -n1
}
# pinned_express_fwd RUNNER_ID: forwarded frames read straight from the pinned map.
pinned_express_fwd() {
  bpftool -j map lookup pinned "$PINS/express_stats" key $(printf '%d 0 0 0' "$1") |
    jq '[.formatted.values[].value.fwd_packets] | add'
}
runner_id() { status | jq -er --arg n "$1" '.allocations[] | select(.runner_name == $n) | .runner_id'; }
vx1=$(tunnel_of r1)
vx2=$(tunnel_of r2)

# --- auto on a veth uplink: TC, with the reason, attached to eth0, pins in place.
ex=$(express)
[[ $(jq -r '.requested + "/" + .active + "/" + .device' <<<"$ex") == auto/tc/eth0 ]] ||
  fail "expected express auto/tc/eth0: $ex"
jq -e '.reason | test("veth")' <<<"$ex" >/dev/null || fail "no reason for picking TC: $ex"
in_ns hub tc filter show dev eth0 ingress | grep -q "host_express_tc.*id $(jq -r .program_id <<<"$ex") " ||
  fail "eth0 does not run host_express_tc: $(in_ns hub tc filter show dev eth0 ingress)"
for pin in host_express_tc host_express_xdp express_config express_runners express_nexthops \
  express_stats; do
  [[ -e $PINS/$pin ]] || fail "missing pin $PINS/$pin"
done
bpftool -j map dump pinned "$PINS/express_runners" |
  jq -e --arg ip "${HOST_IP[r2]}" '[.[].formatted.value.physical_ip | map(tostring) | join(".")] | index($ip)' \
    >/dev/null || fail "express_runners lacks r2's physical IP: $(bpftool map dump pinned "$PINS/express_runners")"
in_ns hub ethtool -k eth0 | grep -q 'generic-receive-offload: on' || fail "GRO not turned on for eth0"
overlay=$(ctl hub node overlay)
grep -q '^Express stage: *tc on eth0' <<<"$overlay" || fail "kohakuctl shows no express stage: $overlay"
grep -q 'Express stage counters' <<<"$overlay" || fail "kohakuctl shows no express counters: $overlay"

# --- The path: 100 pings each way through the express stage; the tunnels see none of them.
fwd1=$(ecounter r1 .forwarded_packets)
fwd2=$(ecounter r2 .forwarded_packets)
pass1=$(ecounter r1 .passed_packets)
pass2=$(ecounter r2 .passed_packets)
rx1=$(rx_packets "$vx1")
rx2=$(rx_packets "$vx2")
kfwd=$(snmp hub Ip ForwDatagrams)
in_ns a ping -q -c 100 -i 0.01 -W 1 "$b" >"$CLUSTER_DIR/burst.txt" || fail "burst a -> b: $(tail -2 "$CLUSTER_DIR/burst.txt")"
((($(ecounter r1 .forwarded_packets) - fwd1) >= 100)) || fail "r1's express counter grew by less than 100"
((($(ecounter r2 .forwarded_packets) - fwd2) >= 100)) || fail "r2's express counter grew by less than 100"
# The tunnels decapsulate only what the stage handed to the kernel (the runners' ARP and IPv6
# neighbour traffic goes on meanwhile): none of the burst.
d1=$(($(rx_packets "$vx1") - rx1)) d2=$(($(rx_packets "$vx2") - rx2))
p1=$(($(ecounter r1 .passed_packets) - pass1)) p2=$(($(ecounter r2 .passed_packets) - pass2))
((d1 <= p1 && d2 <= p2 && d1 < 50 && d2 < 50)) ||
  fail "hub tunnels received burst packets: $vx1 +$d1 (passed $p1), $vx2 +$d2 (passed $p2)"
(($(snmp hub Ip ForwDatagrams) == kfwd)) || fail "hub kernel forwarded datagrams"
log "express: 100 pings a -> b, +$(($(ecounter r1 .forwarded_packets) - fwd1)) expressed, tunnels and ForwDatagrams flat"

# --- TCP: 100 MB with a checksum arrives intact. The runners' TSO aggregates cross the veths
# whole and go express whole (rewritten once, segmented by the device after the hub).
# wire_fwd: the packets the express stage sent for runner r1, aggregates counted by segment.
wire_fwd() {
  status | jq -er '.datapath.express.counters[] | select(.runner_name == "r1") |
    .forwarded_packets - .forwarded_gso + .forwarded_gso_segs'
}
gso1=$(ecounter r1 .forwarded_gso) gsopass=$(ecounter r1 .passed.gso)
head -c 100M /dev/urandom >"$CLUSTER_DIR/blob"
want=$(sha256sum <"$CLUSTER_DIR/blob" | cut -d' ' -f1)
in_ns b sh -c "socat -u TCP-LISTEN:5001,reuseaddr - | sha256sum | cut -d' ' -f1 >$CLUSTER_DIR/got" &
listener=$!
wait_for 10 "listener on b" in_ns b sh -c "ss -ltn | grep -q ':5001 '"
in_ns a socat -u "FILE:$CLUSTER_DIR/blob" "TCP:$b:5001" || fail "sending 100 MB a -> b"
wait "$listener" || true
[[ $(<"$CLUSTER_DIR/got") == "$want" ]] || fail "100 MB a -> b arrived damaged"
((($(ecounter r1 .forwarded_gso) - gso1) >= 100)) ||
  fail "TSO aggregates did not go express: +$(($(ecounter r1 .forwarded_gso) - gso1))"
(($(ecounter r1 .passed.gso) == gsopass)) || fail "aggregates handed to the kernel: $(express)"
# The same with wire-sized frames (r1's uplink segments and fills checksums): the hub's uplink GRO
# merges them (hostd turned it on) and the aggregates go express. A veth feeds its peer's GRO only
# when the sending side has TSO off, as a wire does: the fabric's port towards the hub gets it off.
in_ns r1 ethtool -K eth0 tso off gso off tx off >/dev/null 2>&1 || true
in_ns fabric ethtool -K p-hub tso off >/dev/null
fwd1=$(wire_fwd) gso1=$(ecounter r1 .forwarded_gso)
in_ns b sh -c "socat -u TCP-LISTEN:5001,reuseaddr - | sha256sum | cut -d' ' -f1 >$CLUSTER_DIR/got" &
listener=$!
wait_for 10 "listener on b" in_ns b sh -c "ss -ltn | grep -q ':5001 '"
head -c 20M "$CLUSTER_DIR/blob" >"$CLUSTER_DIR/blob20"
want=$(sha256sum <"$CLUSTER_DIR/blob20" | cut -d' ' -f1)
in_ns a socat -u "FILE:$CLUSTER_DIR/blob20" "TCP:$b:5001" || fail "sending 20 MB a -> b wire-sized"
wait "$listener" || true
[[ $(<"$CLUSTER_DIR/got") == "$want" ]] || fail "20 MB a -> b with wire-sized frames arrived damaged"
((($(wire_fwd) - fwd1) >= 10000)) ||
  fail "wire-sized TCP segments did not go express: +$(($(wire_fwd) - fwd1))"
((($(ecounter r1 .forwarded_gso) - gso1) >= 100)) ||
  fail "the uplink's GRO aggregates did not go express: +$(($(ecounter r1 .forwarded_gso) - gso1))"
(($(ecounter r1 .passed.gso) == gsopass)) || fail "aggregates handed to the kernel: $(express)"
in_ns r1 ethtool -K eth0 tso on gso on tx on >/dev/null 2>&1 || true
in_ns fabric ethtool -K p-hub tso on >/dev/null
log "TCP: 100 MB and 20 MB (wire-sized) a -> b intact"

# --- MTU: the largest DF packet the overlay carries goes express; with r2's tunnel at a smaller
# MTU the hub hands it to the kernel, which answers Fragmentation Needed.
fwd1=$(ecounter r1 .forwarded_packets)
in_ns a ping -c 3 -i 0.05 -M do -s 1422 -W 1 "$b" >/dev/null || fail "1450-byte DF ping a -> b"
((($(ecounter r1 .forwarded_packets) - fwd1) >= 3)) || fail "1450-byte DF pings did not go express"
answer=$(in_ns a ping -c 1 -M do -s 1423 -W 1 "$b" 2>&1 || true)
grep -qi 'message too long' <<<"$answer" || fail "a 1451-byte DF ping was not refused: $answer"
oversize=$(ecounter r1 .passed.oversize)
frag_needed() {
  # hostd puts the MTU back on its next tick: set it again right before each try.
  in_ns hub ip link set "$vx2" mtu 1400
  local answer
  answer=$(in_ns a ping -c 1 -M do -s 1400 -W 1 "$b" 2>&1 || true)
  grep -q 'Frag needed and DF set (mtu = 1400)' <<<"$answer"
}
wait_for 10 "Fragmentation Needed from the hub for a 1428-byte DF packet" frag_needed
((($(ecounter r1 .passed.oversize) - oversize) >= 1)) || fail "oversize not counted as passed.oversize"
in_ns hub ip link set "$vx2" mtu 1450
# a cached the path MTU of 1400 towards b: forget it so later tests see the overlay as it is.
in_ns a ip route flush cache

# --- Spoofing: r2's underlay address sending with r1's VNI, and a workload of r1 posing as an
# address of r2's subnet, are dropped at the uplink.
mac() { in_ns "$1" ip -j link show dev "$2" | jq -r '.[0].address'; }
bytes_of_mac() { echo "0x${1//:/, 0x}"; }
bytes_of_ip() { local IFS=.; set -- $1; echo "$1, $2, $3, $4"; }
vni1=$(in_ns hub ip -j -d link show "$vx1" | jq -r '.[0].linkinfo.info_data.id')
cat >"$CLUSTER_DIR/spoof.trafgen" <<CONF
{
  $(bytes_of_mac "$(mac hub eth0)"), $(bytes_of_mac "$(mac r2 eth0)"), 0x08, 0x00,
  0x45, 0x00, const16(96), const16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  $(bytes_of_ip "${HOST_IP[r2]}"), $(bytes_of_ip "${HOST_IP[hub]}"),
  const16(40001), const16(4789), const16(76), const16(0),
  0x08, 0x00, 0x00, 0x00, $((vni1 >> 16 & 255)), $((vni1 >> 8 & 255)), $((vni1 & 255)), 0x00,
  $(bytes_of_mac "$(mac hub "$vx1")"), $(bytes_of_mac "$(mac r1 vxlan0)"), 0x08, 0x00,
  0x45, 0x00, const16(46), const16(0), 0x40, 0x00, 64, 17, csumip(64, 83),
  $(bytes_of_ip "$a"), $(bytes_of_ip "$b"),
  const16(40000), const16(9), const16(26), const16(0),
  fill(0x5a, 18)
}
CONF
spoofed=$(ecounter r1 .dropped.spoofed_outer)
in_ns r2 trafgen --dev eth0 --conf "$CLUSTER_DIR/spoof.trafgen" -n 20 --cpus 1 >/dev/null 2>&1 ||
  fail "trafgen in r2"
((($(ecounter r1 .dropped.spoofed_outer) - spoofed) == 20)) ||
  fail "spoofed outer source: $(($(ecounter r1 .dropped.spoofed_outer) - spoofed)) of 20 dropped"
# Runner r1 itself posing as an address of r2's subnet (a workload's own spoofing is already
# dropped on its runner: test_runner_fast_path.sh).
in_ns r1 ip addr add 10.2.0.77/32 dev lo
spoofed=$(ecounter r1 .dropped.spoofed_inner)
echos=$(snmp b Icmp InEchos)
in_ns r1 ping -q -c 5 -i 0.05 -W 1 -I 10.2.0.77 "$b" >/dev/null && fail "spoofed pings were answered"
(($(snmp b Icmp InEchos) == echos)) || fail "spoofed pings reached b"
((($(ecounter r1 .dropped.spoofed_inner) - spoofed) >= 5)) || fail "inner spoofing not counted"
in_ns r1 ip addr del 10.2.0.77/32 dev lo
log "spoofing: 20 frames with r1's VNI from r2's address and 5 pings from a forged source dropped"

# --- A new destination without a neighbour entry on the hub: its first packet goes through the
# kernel path (which resolves it), the next ones express.
c=$(workload_up r2 c)
noneigh=$(ecounter r1 .passed.no_neigh)
in_ns a ping -c 1 -W 2 "$c" >/dev/null || fail "first ping a -> c (no neighbour yet) lost"
((($(ecounter r1 .passed.no_neigh) - noneigh) >= 1)) || fail "first packet to c not handed to the kernel"
fwd1=$(ecounter r1 .forwarded_packets)
in_ns a ping -q -c 20 -i 0.01 -W 1 "$c" >/dev/null || fail "a -> c after resolution"
((($(ecounter r1 .forwarded_packets) - fwd1) >= 20)) || fail "a -> c did not go express once resolved"

# --- b comes back with another MAC and sends no gratuitous ARP: the hub's entry for it is STALE
# (short reachable time, set above) and used only by the express stage, so without revalidation it
# would stay in use for good; the daemon's revalidation makes the kernel probe it, the probe to
# the old MAC fails, the next packet resolves the new one.
in_ns a ping -c 3 -i 0.2 -W 1 "$b" >/dev/null || fail "a -> b before b's MAC changed"
in_ns b ip link set eth0 address 02:00:00:00:bb:01
wait_for 30 "a reaches b after b changed its MAC" can_ping a "$b"
in_ns hub ip neigh show dev "$vx2" | grep -q "$b lladdr 02:00:00:00:bb:01" ||
  fail "hub's neighbour entry for b not updated: $(in_ns hub ip neigh show dev "$vx2")"

# --- kill -9 of kohaku-hostd in the middle of a stream: not one packet lost, the stage forwards
# while no daemon runs, the restarted daemon adopts it (counters kept).
in_ns a ping -c 200 -i 0.02 -W 2 "$b" >"$CLUSTER_DIR/stream.txt" &
pinger=$!
wait_for 5 "stream started" grep -q 'icmp_seq=5 ' "$CLUSTER_DIR/stream.txt"
kill -KILL "${DAEMON_PID[hostd-hub]}"
wait "${DAEMON_PID[hostd-hub]}" 2>/dev/null || true
id1=$(bpftool -j map dump pinned "$PINS/express_runners" |
  jq -r --arg ip "${HOST_IP[r1]}" '.[].formatted | select((.value.physical_ip | map(tostring) | join(".")) == $ip) | .key.runner_id')
dead=$(pinned_express_fwd "$id1")
sleep 1 # the daemon stays dead for a second of traffic
(($(pinned_express_fwd "$id1") >= dead + 25)) || fail "express stopped with the daemon: $dead -> $(pinned_express_fwd "$id1")"
hub_up hub "${HUB_ARGS[@]}"
wait "$pinger" || true
summary=$(grep 'packets transmitted' "$CLUSTER_DIR/stream.txt")
[[ $summary == "200 packets transmitted, 200 received,"* ]] || fail "loss across kill -9: $summary"
[[ $(express | jq -r .active) == tc ]] || fail "restarted hub has no express stage: $(express)"
(($(ecounter r1 .forwarded_packets) >= dead + 25)) || fail "express counters lost across the restart"
log "kill -9: $summary"

# --- The uplink recreated (new ifindex, same address): the stage follows within a tick.
old=$(in_ns hub ip -j link show eth0 | jq '.[0].ifindex')
ip -n "$(ns_name fabric)" link del p-hub
ip -n "$(ns_name fabric)" link add p-hub type veth peer name eth0 netns "$(ns_name hub)"
ip -n "$(ns_name fabric)" link set p-hub master fabric up
in_ns hub ip addr add "${HOST_IP[hub]}/24" dev eth0
in_ns hub ip link set eth0 up
followed() {
  [[ $(in_ns hub ip -j link show eth0 | jq '.[0].ifindex') != "$old" ]] &&
    in_ns hub tc filter show dev eth0 ingress | grep -q host_express_tc
}
wait_for 15 "express stage on the recreated eth0" followed
wait_for 20 "a reaches b over the new uplink" can_ping a "$b"
fwd1=$(ecounter r1 .forwarded_packets)
in_ns a ping -q -c 20 -i 0.01 -W 1 "$b" >/dev/null || fail "a -> b after the uplink was recreated"
((($(ecounter r1 .forwarded_packets) - fwd1) >= 20)) || fail "no express after the uplink was recreated"

# --- Forced XDP on the veth: native XDP attaches (redirect through the devmap), pings go express.
# veth hands redirected frames only to a peer in NAPI mode: the fabric port gets GRO on, as a
# switch port that receives from an XDP hub must.
ip netns exec "$(ns_name fabric)" ethtool -K p-hub gro on >/dev/null
hub_stop() {
  kill -TERM "${DAEMON_PID[hostd-hub]}" 2>/dev/null || true
  wait "${DAEMON_PID[hostd-hub]}" 2>/dev/null || true
}
hub_stop
hub_up hub "${HUB_ARGS[@]}" --set OVERLAY_EXPRESS=xdp
[[ $(express | jq -r .active) == xdp-native ]] || fail "OVERLAY_EXPRESS=xdp: $(express)"
in_ns hub ip -d link show eth0 | grep -q 'prog/xdp' || fail "no XDP program on eth0"
in_ns hub tc filter show dev eth0 ingress | grep -q host_express_tc && fail "TC variant left attached"
wait_for 10 "a reaches b under XDP" can_ping a "$b"
fwd1=$(ecounter r1 .forwarded_packets)
in_ns a ping -q -c 20 -i 0.01 -W 1 "$b" >/dev/null || fail "a -> b under XDP"
((($(ecounter r1 .forwarded_packets) - fwd1) >= 20)) || fail "pings did not go express under XDP"

# --- XDP refused (another tool's XDP program on the uplink): one warning, TC instead.
hub_stop
in_ns hub ip link set dev eth0 xdp off
in_ns hub ip link set dev eth0 xdpdrv obj "$KOHAKU_BIN_DIR/../bpf/foreign_xdp_pass.bpf.o" sec xdp ||
  fail "attaching a foreign XDP program"
hub_up hub "${HUB_ARGS[@]}" --set OVERLAY_EXPRESS=xdp
ex=$(express)
[[ $(jq -r .active <<<"$ex") == tc ]] || fail "refused XDP did not fall back to TC: $ex"
jq -e '.reason | test("another tool")' <<<"$ex" >/dev/null || fail "fallback reason missing: $ex"
(($(grep -c 'native XDP on eth0 failed' "$CLUSTER_DIR/hostd-hub.log") >= 1)) || fail "no fallback warning"
wait_for 10 "a reaches b after the fallback" can_ping a "$b"
in_ns hub ip link set dev eth0 xdp off

# --- Back on the kernel datapath, nothing of the stage is left on the uplink.
hub_stop
hub_up hub "${HUB_ARGS[@]}" --set OVERLAY_DATAPATH=kernel
in_ns hub tc filter show dev eth0 ingress | grep -q host_express && fail "express left on eth0 in kernel mode"
wait_for 10 "a reaches b on the kernel datapath" can_ping a "$b"
log "PASS"

#!/usr/bin/env bash
# Outbound NAT per named L2 network and isolation between networks (docs/bpf-runner-nat.md).
# An "outside" machine (192.0.2.1, reached through the runners' default routes) that also routes
# both named subnets back via r1. On the BPF datapath: a workload of the NAT-on network "natnet"
# reaches the outside as its runner's uplink address (r1 and r2 each masquerade their own), and
# the outside cannot open a connection into it; a workload of the NAT-off network "routed"
# reaches the outside with its own address and accepts connections from it; routing between
# natnet, routed and the overlay on one runner is dropped while natnet's members still reach each
# other; a rebuilt network bridge gets its forward filter back, a deleted network leaves
# runner_nets. Then r1 restarts on the kernel datapath (iptables): NAT on/off the same way.
source "$(dirname "$0")/lib/cluster.sh"

OUTSIDE=192.0.2.1
PIN_ROOT=/sys/fs/bpf/kohaku-${CLUSTER_ID}/r1

status() { in_ns "$1" curl -fsS -m 2 http://127.0.0.1:8001/api/overlay/status; }
counter() { status r1 | jq -r ".datapath.counters.$1"; }
# seen_by_outside WORKLOAD: the source address the outside's TCP listener reports.
seen_by_outside() { in_ns "$1" timeout 5 socat -T 3 - "TCP:$OUTSIDE:7100,connect-timeout=3" </dev/null; }
# connects FROM ADDR: a TCP connection from machine FROM to ADDR:7200 gets the listener's answer.
connects() { [[ $(in_ns "$1" timeout 3 socat -T 2 - "TCP:$2:7200,connect-timeout=2" </dev/null) == reached ]]; }
listening() { in_ns "$1" sh -c "ss -ltn | grep -q ':$2 '"; }
# named_ready NETWORK...: r1's datapath status shows each network in runner_nets with its filter.
named_ready() {
  local n
  for n in "$@"; do
    status r1 | jq -e --arg n "$n" \
      '.datapath.named_networks[] | select(.name == $n and .in_runner_nets and .filter_attached)' ||
      return 1
  done
}
nets_ids() {
  bpftool -j map dump pinned "$PIN_ROOT/runner/runner_nets" | jq -c '[.[] | (.formatted // .) | .value.id] | sort'
}
datapath_is() { [[ $(status r1 | jq -r '.datapath.requested + "/" + .datapath.active') == "$1" ]]; }
# expect_outbound MODE: natnet leaves as its runner, routed as itself.
expect_outbound() {
  local seen
  seen=$(seen_by_outside n1) || fail "n1 -> outside TCP ($1)"
  [[ $seen == "${HOST_IP[r1]}" ]] || fail "outside saw n1 as '$seen', not r1's uplink ${HOST_IP[r1]} ($1)"
  seen=$(seen_by_outside p1) || fail "p1 -> outside TCP ($1)"
  [[ $seen == "$p1" ]] || fail "outside saw p1 as '$seen', not its own address $p1 ($1)"
  connects outside "$p1" || fail "outside -> p1 (NAT off: routable) ($1)"
}

cluster_machines_up
outside_up "$OUTSIDE" r1 r2
# The operator routes both subnets to r1: only the filter stops what reaches natnet unasked.
ip -n "$(ns_name outside)" route add 172.20.0.0/24 via "${HOST_IP[r1]}"
ip -n "$(ns_name outside)" route add 172.21.0.0/24 via "${HOST_IP[r1]}"
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
runners_ready hub r1 r2

ctl hub network create natnet --subnet 172.20.0.0/24 --runners r1,r2 >/dev/null || fail "create natnet"
ctl hub network create routed --subnet 172.21.0.0/24 --no-outbound-nat --runners r1 >/dev/null ||
  fail "create routed"
n1=$(l2_workload_up r1 n1 natnet)
n2=$(l2_workload_up r2 n2 natnet)
p1=$(l2_workload_up r1 p1 routed)
o1=$(workload_up r1 o1)
log "workloads: n1=$n1 n2=$n2 (natnet) p1=$p1 (routed) o1=$o1 (overlay)"
bg_in outside socat TCP-LISTEN:7100,reuseaddr,fork SYSTEM:'echo $SOCAT_PEERADDR'
for w in n1 p1 o1; do bg_in "$w" socat TCP-LISTEN:7200,reuseaddr,fork SYSTEM:'echo reached'; done
for m in outside:7100 n1:7200 p1:7200 o1:7200; do wait_for 10 "listener $m" listening "${m%:*}" "${m#*:}"; done
wait_for 10 "r1 covers natnet and routed" named_ready natnet routed
in_ns r1 tc filter show dev kbr-routed egress | grep -q runner_forward_ || fail "no filter on kbr-routed"
status r1 | jq -e '.datapath.named_networks | map(select(.name == "routed"))[0] |
  .outbound_nat == false and .subnet == "172.21.0.0/24" and .bridge == "kbr-routed"' >/dev/null ||
  fail "r1 status: $(status r1 | jq -c .datapath.named_networks)"
# The operator's view of the same through the host: one line per network (no Docker here).
out=$(ctl hub node overlay r1)
grep -Eq "^natnet +172\.20\.0\.0/24 +yes +kbr-natnet +attached +- +- +no Docker engine *$" <<<"$out" &&
  grep -Eq "^routed +172\.21\.0\.0/24 +no +kbr-routed +attached " <<<"$out" ||
  fail "kohakuctl node overlay r1: $out"
# The map's ids are the networks' VNIs: djb2 gives natnet 12463, routed 15384.
[[ $(nets_ids) == "[12463,15384]" ]] || fail "runner_nets ids: $(nets_ids)"

# --- Outbound: natnet masqueraded by whichever runner it leaves, routed untouched.
wait_for 10 "n1 pings the outside" can_ping n1 "$OUTSIDE"
translated=$(counter egress_translated)
expect_outbound bpf
seen=$(seen_by_outside n2) || fail "n2 -> outside TCP"
[[ $seen == "${HOST_IP[r2]}" ]] || fail "outside saw n2 as '$seen', not r2's uplink ${HOST_IP[r2]}"
(($(counter egress_translated) > translated && $(counter passed_no_nat) > 0)) ||
  fail "counters: $(status r1 | jq -c .datapath.counters)"

# --- Inbound: unsolicited into natnet is dropped (the route exists), into routed it is not.
dropped=$(counter forward_dropped_untracked)
connects outside "$n1" && fail "the outside opened a connection into natnet's n1"
(($(counter forward_dropped_untracked) > dropped)) || fail "the unsolicited SYN to n1 was not counted"

# --- Isolation on r1: natnet, routed and the overlay do not reach each other by routing.
isolated=$(counter forward_dropped_isolated)
connects n1 "$p1" && fail "natnet reached routed"
connects p1 "$o1" && fail "routed reached the overlay"
connects o1 "$n1" && fail "the overlay reached natnet"
(($(counter forward_dropped_isolated) >= isolated + 3)) ||
  fail "isolation drops not counted: $(status r1 | jq -c .datapath.counters)"
wait_for 10 "n1 and n2 (natnet on two runners) reach each other" can_ping n1 "$n2"

# --- A rebuilt bridge gets its filter back; a deleted network leaves runner_nets.
ctl hub network create extra --subnet 172.22.0.0/24 --runners r1 >/dev/null || fail "create extra"
wait_for 10 "r1 covers extra" named_ready extra
in_ns r1 ip link del kbr-extra
wait_for 10 "kbr-extra rebuilt with its filter" named_ready extra
ctl hub network delete extra >/dev/null || fail "delete extra"
gone_extra() { [[ $(nets_ids) == "[12463,15384]" ]] && ! status r1 | jq -e '.datapath.named_networks[] | select(.name == "extra")'; }
wait_for 10 "extra gone from runner_nets and the status" gone_extra

# --- The kernel datapath: iptables rules per network, NAT on/off the same way.
kill -TERM "${DAEMON_PID[runnerd-r1]}"
wait "${DAEMON_PID[runnerd-r1]}" || fail "runnerd did not exit cleanly"
runner_up r1 hub --set OVERLAY_DATAPATH=kernel
wait_for 20 "r1 overlay ready (kernel)" runner_overlay_ready r1
wait_for 10 "r1 on the kernel datapath" datapath_is kernel/kernel
masq_rules() { in_ns r1 iptables -t nat -S POSTROUTING | grep -c -- '--comment kohaku-runner -j MASQUERADE'; }
has_named_rules() {
  in_ns r1 iptables -t nat -S POSTROUTING | grep -q -- '-s 172.20.0.0/24 ! -d 172.20.0.0/24 .*MASQUERADE' &&
    in_ns r1 iptables -S FORWARD | grep -q -- '-d 172.21.0.0/24 .*kohaku-runner -j ACCEPT' &&
    [[ $(masq_rules) == 2 ]] # overlay + natnet; routed has NAT off
}
wait_for 10 "iptables rules of natnet and routed" has_named_rules
[[ -e $PIN_ROOT/runner ]] && fail "the kernel datapath left BPF pins"
expect_outbound kernel
log "PASS"

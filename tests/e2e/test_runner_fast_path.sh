#!/usr/bin/env bash
# The runner fast path end to end (docs/bpf-runner-fast-path.md): kohaku-runnerd puts
# runner_workload on each workload's veth; a workload's traffic to the outside (masqueraded on the
# uplink) and to another runner's workload (through vxlan0 and the hub) is routed in BPF, so the
# runner's IP forwarding counter and its bridge's receive counter stay flat while it flows, and
# replies are delivered into the workload past the bridge; a spoofed source is dropped and
# counted per workload; a workload detached loses the program; a restarted daemon keeps serving.
source "$(dirname "$0")/lib/cluster.sh"

OUTSIDE=192.0.2.1
fast() { fast_path_entry r1 "$1"; }
served() { fast_path_served r1 "$1"; }
wl_counter() { fast_path_counter r1 "$1" "$2"; }

cluster_machines_up
outside_up "$OUTSIDE" r1
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
runners_ready hub r1 r2

a1=$(workload_up r1 a1)
b1=$(workload_up r2 b1)
wait_for 10 "a1 on the fast path" served "$a1"
veth=$(fast "$a1" | jq -r .veth)
in_ns r1 tc filter show dev "$veth" ingress | grep -q runner_workload ||
  fail "no runner_workload on $veth: $(in_ns r1 tc filter show dev "$veth" ingress)"

# --- Outside and overlay traffic: routed in BPF, nothing through the stack or the bridge.
bg_in outside socat TCP-LISTEN:7400,reuseaddr,fork EXEC:cat
bg_in b1 socat TCP-LISTEN:7401,reuseaddr,fork EXEC:cat
wait_for 10 "listener outside" in_ns outside sh -c "ss -ltn | grep -q ':7400 '"
wait_for 10 "listener on b1" in_ns b1 sh -c "ss -ltn | grep -q ':7401 '"
can_ping a1 "$OUTSIDE" >/dev/null || fail "a1 cannot ping the outside"
can_ping a1 "$b1" >/dev/null || fail "a1 cannot ping b1 across the hub"
fwd0=$(ip_forwarded r1)
rx0=$(bridge_rx r1)
for dst in "$OUTSIDE:7400" "$b1:7401"; do
  got=$(head -c 2000000 /dev/zero | tr '\0' x | in_ns a1 timeout 20 socat -T 5 - "TCP:$dst" | wc -c)
  [[ $got == 2000000 ]] || fail "a1 -> $dst echoed $got of 2000000 bytes"
done
fwd1=$(ip_forwarded r1)
rx1=$(bridge_rx r1)
# A few packets may still take the kernel (neighbour resolution of a first packet, ARP).
((fwd1 - fwd0 < 20)) || fail "r1 forwarded $((fwd1 - fwd0)) datagrams in the kernel: $(runner_status r1 | jq -c .datapath.fast_path) $(in_ns r1 tc filter show dev vxlan0 ingress)"
((rx1 - rx0 < 20)) || fail "r1's bridge received $((rx1 - rx0)) frames"
c=$(fast "$a1" | jq .counters)
jq -e '(.fwd_fib + .fwd_neigh) > 100 and .delivered > 100 and .pass_kernel < 10' <<<"$c" >/dev/null ||
  fail "a1's fast-path counters: $c"
# ... and kohakuctl shows them next to the workload.
row=$(ctl hub node overlay r1 | grep "^a1 ")
re="fast \\($veth\\) +([0-9]+) +([0-9]+) +[0-9]+ +0$"
[[ $row =~ $re ]] && ((BASH_REMATCH[1] > 100 && BASH_REMATCH[2] > 100)) ||
  fail "kohakuctl node overlay r1, a1's row: $row"

# --- A spoofed source from a1 is dropped and counted on a1.
in_ns a1 ip addr add 10.250.0.9/32 dev eth0
before=$(wl_counter "$a1" drop_spoofed_ip)
in_ns a1 ping -c 2 -W 1 -I 10.250.0.9 "$OUTSIDE" >/dev/null 2>&1 && fail "a spoofed ping went through"
(($(wl_counter "$a1" drop_spoofed_ip) >= before + 2)) || fail "spoofed packets not counted: $(fast "$a1")"
in_ns a1 ip addr del 10.250.0.9/32 dev eth0

# --- kill -9 and restart of kohaku-runnerd under a running TCP stream: the program keeps
# running, then is adopted, and not one segment of the stream is retransmitted.
retrans() { in_ns "$1" awk '/^Tcp:/ && ++n == 2 {print $13}' /proc/net/snmp; }
stream_out=$CLUSTER_DIR/stream.out
re_a0=$(retrans a1)
re_o0=$(retrans outside)
# 120 x 10 kB, 50 ms apart: about 6 s, across the kill and the restart.
bg_in a1 sh -c "for i in \$(seq 120); do head -c 10000 /dev/zero; sleep 0.05; done |
  socat -T 10 - TCP:$OUTSIDE:7400 | wc -c >$stream_out"
stream_pid=$!
streaming() { in_ns outside ss -Htn state established '( sport = :7400 )' | grep -q .; }
wait_for 5 "the stream connected" streaming
daemon_stop runnerd-r1 KILL
can_ping a1 "$OUTSIDE" >/dev/null || fail "a1 lost the outside while kohaku-runnerd was down"
runner_up r1 hub
wait_for 20 "r1 overlay ready after the restart" runner_overlay_ready r1
wait_for 10 "a1 on the fast path after the restart" served "$a1"
stream_done() { ! kill -0 "$stream_pid"; }
wait_for 30 "the TCP stream across the restart to end" stream_done
[[ $(cat "$stream_out") == 1200000 ]] || fail "the stream across the restart echoed $(cat "$stream_out") of 1200000 bytes"
(($(retrans a1) == re_a0 && $(retrans outside) == re_o0)) ||
  fail "segments retransmitted across the restart: a1 $(($(retrans a1) - re_a0)), outside $(($(retrans outside) - re_o0))"
can_ping a1 "$b1" >/dev/null || fail "a1 cannot ping b1 after the restart"

# --- OVERLAY_FAST_PATH = False: the programs a previous daemon left on the veths and vxlan0
# go, the traffic takes the bridge and the IP stack again, and turning it back on restores it.
on_vxlan0() { in_ns r1 tc filter show dev vxlan0 ingress | grep -q runner_overlay_; }  # tc shows the kernel name, 15 characters
on_veth() { in_ns r1 tc filter show dev "$veth" ingress | grep -q runner_workload; }
on_vxlan0 || fail "no runner_overlay_ingress on vxlan0 with the fast path on"
daemon_stop runnerd-r1
runner_up r1 hub --set OVERLAY_FAST_PATH=False
wait_for 20 "r1 overlay ready with the fast path off" runner_overlay_ready r1
off() { ! on_veth && ! on_vxlan0; }
wait_for 10 "the fast-path programs detached" off
[[ $(runner_status r1 | jq .datapath.fast_path_enabled) == false ]] || fail "status: $(runner_status r1 | jq -c .datapath)"
[[ $(runner_status r1 | jq '.datapath.fast_path | length') == 0 ]] || fail "workloads still served: $(runner_status r1 | jq -c .datapath.fast_path)"
ctl hub node overlay r1 | grep -Eq "^a1 .* bridge +- +- +- +-$" ||
  fail "kohakuctl with the fast path off: $(ctl hub node overlay r1)"
fwd0=$(ip_forwarded r1)
can_ping a1 "$OUTSIDE" >/dev/null || fail "a1 cannot ping the outside with the fast path off"
can_ping a1 "$b1" >/dev/null || fail "a1 cannot ping b1 with the fast path off"
(($(ip_forwarded r1) >= fwd0 + 2)) || fail "with the fast path off the kernel forwarded $(($(ip_forwarded r1) - fwd0)) datagrams"
daemon_stop runnerd-r1
runner_up r1 hub
wait_for 20 "r1 overlay ready with the fast path back on" runner_overlay_ready r1
wait_for 10 "a1 on the fast path again" served "$a1"
wait_for 10 "runner_overlay_ingress on vxlan0 again" on_vxlan0
can_ping a1 "$b1" >/dev/null || fail "a1 cannot ping b1 with the fast path back on"

# --- Detached: the veth and its entry go.
id=$(in_ns r1 curl -fsS http://127.0.0.1:8001/api/workloads | jq -r '.workloads[] | select(.name=="a1") | .id')
api_curl r1 -fsS -X DELETE "http://127.0.0.1:8001/api/workloads/$id" >/dev/null || fail "detaching a1"
gone() { ! served "$a1"; }
wait_for 10 "a1 off the fast path" gone
log "PASS"

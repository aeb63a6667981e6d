#!/usr/bin/env bash
# Two runners, two workloads each: ping and TCP between workloads on different runners, a
# workload to the host's overlay address, and the control plane's view of it all. DATAPATH picks
# the hub's OVERLAY_DATAPATH (bpf, the default, or kernel; registered once for each).
source "$(dirname "$0")/lib/cluster.sh"
DATAPATH=${DATAPATH:-bpf}

two_runner_cluster --set "OVERLAY_DATAPATH=$DATAPATH"

# The hub built one tunnel per runner with the documented layout.
in_ns hub ip -d link show vxkr1 | grep -q "vxlan id 101 remote ${HOST_IP[r1]} local ${HOST_IP[hub]}" ||
  fail "vxkr1 is not VNI 101 from ${HOST_IP[hub]} to ${HOST_IP[r1]}: $(in_ns hub ip -d link show vxkr1)"
in_ns hub ip -4 addr show vxkr2 | grep -q "10.2.0.254/16" || fail "vxkr2 lacks 10.2.0.254/16"
in_ns hub ip -4 addr show kohaku-host | grep -q "10.0.0.1/8" || fail "kohaku-host lacks 10.0.0.1/8"
in_ns r1 ip -4 addr show kohaku-overlay | grep -q "10.1.0.1/16" || fail "r1 bridge lacks 10.1.0.1/16"

a1=$(workload_up r1 a1)
a2=$(workload_up r1 a2)
b1=$(workload_up r2 b1)
b2=$(workload_up r2 b2)
log "workloads: a1=$a1 a2=$a2 b1=$b1 b2=$b2"
[[ $a1 == 10.1.* && $b1 == 10.2.* ]] || fail "workload IPs not from their runner's subnet"

for pair in "a1 $b1" "a2 $b2" "b1 $a1" "b2 $a2" "a1 $a2"; do
  set -- $pair
  wait_for 10 "$1 reaches $2" can_ping "$1" "$2"
done
wait_for 10 "b2 reaches the host overlay IP" can_ping b2 10.0.0.1
wait_for 10 "a1 reaches the host on its subnet" can_ping a1 10.1.0.254

# TCP: 4 MiB across nodes, byte for byte.
head -c 4194304 /dev/urandom >"$CLUSTER_DIR/sent"
in_ns b1 socat -u TCP-LISTEN:7000,reuseaddr OPEN:"$CLUSTER_DIR/received",creat,trunc &
listener=$!
wait_for 10 "listener on b1" in_ns b1 sh -c "ss -ltn | grep -q ':7000 '"
in_ns a1 timeout 30 socat -u OPEN:"$CLUSTER_DIR/sent" TCP:"$b1":7000 || fail "TCP send a1 -> b1"
wait "$listener"
cmp -s "$CLUSTER_DIR/sent" "$CLUSTER_DIR/received" || fail "TCP data arrived corrupted"

# The host's control plane knows both runners and the IPs their workloads use.
status=$(in_ns hub curl -fsS http://127.0.0.1:8000/api/overlay/status)
[[ $(jq '.stats.active_allocations' <<<"$status") == 2 ]] || fail "expected 2 active allocations: $status"
[[ $(jq -r '.datapath.active' <<<"$status") == "$DATAPATH" ]] || fail "hub datapath is not $DATAPATH: $status"
used=$(in_ns hub curl -fsS 'http://127.0.0.1:8000/api/overlay/ip/info/r1' | jq .used)
[[ $used == 2 ]] || fail "host should count 2 used IPs on r1, has $used"
ctl hub node overlay | grep -q r2 || fail "kohakuctl node overlay does not list r2"
# The runner's own view through the host: its devices and who is attached with which address.
view=$(ctl hub node overlay r1)
grep -q "VXLAN vxlan0: *up, VNI 101" <<<"$view" || fail "node overlay r1 lacks vxlan0 state: $view"
grep -Eq "^a1 +wl-[0-9a-f]+ +$a1 " <<<"$view" || fail "node overlay r1 does not list a1 at $a1: $view"
grep -Eq "Datapath: +bpf, uplink eth0 ${HOST_IP[r1]}, conntrack [0-9]+/[0-9]+" <<<"$view" ||
  fail "node overlay r1 lacks the runner's datapath, uplink and conntrack use: $view"
out=$(ctl hub node overlay nosuch 2>&1) && fail "node overlay of an unknown runner succeeded"
grep -q "not registered" <<<"$out" || fail "unknown runner not reported: $out"

# Detaching frees the address at the host.
id=$(in_ns r1 curl -fsS http://127.0.0.1:8001/api/workloads | jq -r '.workloads[] | select(.name=="a2") | .id')
api_curl r1 -fsS -X DELETE "http://127.0.0.1:8001/api/workloads/$id" >/dev/null
used=$(in_ns hub curl -fsS 'http://127.0.0.1:8000/api/overlay/ip/info/r1' | jq .used)
[[ $used == 1 ]] || fail "after detaching a2 the host should count 1 used IP on r1, has $used"
log "PASS"

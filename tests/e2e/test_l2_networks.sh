#!/usr/bin/env bash
# Named L2 networks (kcore model) across three runners: devices and head-end replication FDB on
# every member, workloads in one subnet reaching each other across nodes (ARP flooded to the
# peers), a leaving member gone from the others' FDB within two seconds (pushed by the host: the
# runners poll only every 10 s here), a runner with OVERLAY_DISABLE_VXLAN refused with 412,
# unique addresses under 20 concurrent allocations and 8 concurrent workload attaches, and the
# distributed gateway's ARP and broadcasts kept off the tunnel.
source "$(dirname "$0")/lib/cluster.sh"

api() { api_curl hub -sS -m 5 -H 'Content-Type: application/json' "$@"; }
fdb_dsts() { in_ns "$1" bridge fdb show dev "$2" | awk '$1 == "00:00:00:00:00:00" {print $3}' | sort | tr '\n' ' '; }
fdb_is() { [[ $(fdb_dsts "$1" "$2") == "$3" ]]; }
no_link() { ! in_ns "$1" ip link show "$2" >/dev/null 2>&1; }

fabric_up
machine_up hub 1
for i in 1 2 3; do machine_up "r$i" "1$i"; done
machine_up rx 19
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
# A slow poll: what reaches the runners within a second or two came from the host's push.
for r in r1 r2 r3; do runner_up "$r" hub --set HEARTBEAT_INTERVAL_SECONDS=10; done
runner_up rx hub --set OVERLAY_DISABLE_VXLAN=True
wait_for 10 "rx registered" sh -c "in_ns hub curl -fsS http://127.0.0.1:8000/api/nodes | jq -e '.[] | select(.hostname==\"rx\")' >/dev/null"

# djb2("train") = 275925091 -> VNI 10000 + 275925091 % 6000 = 13091.
out=$(ctl hub --json network create train --subnet 172.20.0.0/24 --runners r1,r2,r3) ||
  fail "kohakuctl network create: $out"
[[ $(jq .vni <<<"$out") == 13091 && $(jq -r .gateway <<<"$out") == 172.20.0.1 ]] || fail "create: $out"
ctl hub network list | grep -Eq "^train +172.20.0.0/24 +172.20.0.1 +13091 +yes +r1,r2,r3 " ||
  fail "network list: $(ctl hub network list)"
vx=vxlan13091
declare -A others=([r1]="${HOST_IP[r2]} ${HOST_IP[r3]} " [r2]="${HOST_IP[r1]} ${HOST_IP[r3]} "
  [r3]="${HOST_IP[r1]} ${HOST_IP[r2]} ")
for r in r1 r2 r3; do
  wait_for 3 "$r has $vx with the two other members in its FDB" fdb_is "$r" "$vx" "${others[$r]}"
  in_ns "$r" ip -d link show "$vx" | grep -q "vxlan id 13091 local ${HOST_IP[$r]} .*dstport 4789" ||
    fail "$r: $vx is not VNI 13091 from ${HOST_IP[$r]}: $(in_ns "$r" ip -d link show "$vx")"
  in_ns "$r" ip -d link show "$vx" | grep -q nolearning && fail "$r: $vx must learn"
  in_ns "$r" ip -d link show "$vx" | grep -q "master kbr-train" || fail "$r: $vx not in kbr-train"
  in_ns "$r" ip -4 addr show kbr-train | grep -q "172.20.0.1/24" || fail "$r: kbr-train lacks 172.20.0.1/24"
  for dev in kbr-train "$vx"; do
    [[ $(in_ns "$r" cat "/proc/sys/net/ipv6/conf/$dev/disable_ipv6") == 1 ]] || fail "$r: IPv6 on $dev"
  done
done
# The same spec again is a no-op; another spec under the name is refused.
out=$(api -X POST -d '{"name": "train", "subnet": "172.20.0.0/24"}' http://127.0.0.1:8000/api/networks)
[[ $(jq .created <<<"$out") == false ]] || fail "repeat create: $out"
code=$(api -o /dev/null -w '%{http_code}' -X POST -d '{"name": "train", "subnet": "172.21.0.0/24"}' \
  http://127.0.0.1:8000/api/networks)
[[ $code == 409 ]] || fail "conflicting spec answered $code"

# Workloads on three nodes, one subnet: ARP goes through head-end replication.
w1=$(l2_workload_up r1 w1 train)
w2=$(l2_workload_up r2 w2 train)
w3=$(l2_workload_up r3 w3 train)
log "workloads: w1=$w1 w2=$w2 w3=$w3"
[[ $w1 == 172.20.0.* && $w2 == 172.20.0.* && $w3 == 172.20.0.* ]] || fail "addresses outside 172.20.0.0/24"
[[ $(printf '%s\n' "$w1" "$w2" "$w3" | sort -u | wc -l) == 3 ]] || fail "duplicate addresses"
for pair in "w1 $w2" "w1 $w3" "w2 $w3" "w3 $w1"; do
  set -- $pair
  wait_for 10 "$1 reaches $2" can_ping "$1" "$2"
done
in_ns w1 ip neigh show "$w2" | grep -q lladdr || fail "w1 has no ARP entry for w2"
# The peer's MAC was learned behind r2's address on r1's vxlan device.
mac2=$(in_ns w2 ip -br link show eth0 | awk '{print $3}')
[[ $mac2 =~ ^[0-9a-f:]{17}$ ]] || fail "cannot read w2's MAC: '$mac2'"
# Each check sends a frame from w2 first, so an entry that aged out or was flushed comes back.
learned_w2() {
  in_ns w2 ping -c 1 -W 1 "$w1" >/dev/null
  in_ns r1 bridge fdb show dev "$vx" | grep -q "$mac2 dst ${HOST_IP[r2]}"
}
wait_for 5 "r1 learns w2's MAC $mac2 behind ${HOST_IP[r2]}" learned_w2

# The distributed gateway stays local: w1 resolves and pings its gateway (r1's bridge), and r1
# itself resolves w2 (a broadcast from the shared gateway MAC). The guard on r1's vxlan device
# keeps both off the tunnel, so no peer learns the shared MAC behind r1.
gw_mac=0a:6b:ac:14:00:01
in_ns w1 ip neigh flush dev eth0
in_ns w1 ping -c 1 -W 1 172.20.0.1 >/dev/null || fail "w1 cannot reach its gateway"
in_ns w1 ip neigh show 172.20.0.1 | grep -q "lladdr $gw_mac" || fail "w1's gateway is not $gw_mac"
in_ns r1 ping -c 1 -W 1 "$w2" >/dev/null || true  # its ARP request must not cross
guard=$(in_ns r1 curl -fsS http://127.0.0.1:8001/api/l2/networks | jq .gateway_guard)
[[ $(jq .enabled <<<"$guard") == true ]] || fail "r1 runs no gateway guard: $guard"
(($(jq .gateway_arp_kept_local <<<"$guard") >= 1)) || fail "w1's ARP for the gateway crossed: $guard"
(($(jq .gateway_floods_kept_local <<<"$guard") >= 1)) || fail "r1's own ARP request crossed: $guard"
# Nor is any member's own vxlan device heard from (no IPv6 on it): r1 learns workloads only.
vx_mac2=$(in_ns r2 ip -br link show "$vx" | awk '{print $3}')
in_ns r1 bridge fdb show dev "$vx" | grep -q "^$vx_mac2 dst" &&
  fail "r1 learned r2's $vx device MAC $vx_mac2: $(in_ns r1 bridge fdb show dev "$vx")"
for r in r2 r3; do
  in_ns "$r" bridge fdb show dev "$vx" | grep -q "^$gw_mac dst" &&
    fail "$r learned the shared gateway MAC behind a peer: $(in_ns "$r" bridge fdb show dev "$vx")"
done

# A long name gets kb-<8 hex of sha256>.
long=a-rather-long-network
api -fsS -X POST -d "{\"name\": \"$long\", \"subnet\": \"172.21.0.0/24\", \"runners\": [\"r1\"]}" \
  http://127.0.0.1:8000/api/networks >/dev/null || fail "create $long"
br="kb-$(printf %s "$long" | sha256sum | cut -c1-8)"
wait_for 3 "r1 has $br" in_ns r1 ip link show "$br"

# Leaving: r3's workload goes first (the host refuses to strand it), then r3 leaves.
code=$(api -o /dev/null -w '%{http_code}' -X DELETE http://127.0.0.1:8000/api/networks/train/members/r3)
[[ $code == 409 ]] || fail "leaving with an attached workload answered $code"
id3=$(in_ns r3 curl -fsS http://127.0.0.1:8001/api/workloads | jq -r '.workloads[] | select(.name=="w3") | .id')
api_curl r3 -fsS -X DELETE "http://127.0.0.1:8001/api/workloads/$id3" >/dev/null || fail "detach w3"
ctl hub network leave train r3 | grep -q "left" || fail "r3 leave"
wait_for 2 "r3 gone from r1's FDB" fdb_is r1 "$vx" "${HOST_IP[r2]} "
wait_for 2 "r3 gone from r2's FDB" fdb_is r2 "$vx" "${HOST_IP[r1]} "
wait_for 2 "r3 removed kbr-train" no_link r3 kbr-train
wait_for 2 "r3 removed $vx" no_link r3 "$vx"
can_ping w1 "$w2" || fail "w1 lost w2 after r3 left"

ctl hub network show train | grep -Eq "^r2 +${HOST_IP[r2]} " || fail "network show: $(ctl hub network show train)"
ctl hub network join train r3 | grep -q joined || fail "r3 join"
wait_for 2 "r3 back in r1's FDB" fdb_is r1 "$vx" "${HOST_IP[r2]} ${HOST_IP[r3]} "
ctl hub network leave train r3 >/dev/null || fail "r3 leave again"
wait_for 2 "r3 gone again from r1's FDB" fdb_is r1 "$vx" "${HOST_IP[r2]} "

# A runner without VXLAN is refused, named in the error.
out=$(ctl hub network join train rx 2>&1) && fail "kohakuctl joined rx"
grep -q "'rx'.*HTTP 412" <<<"$out" || fail "kohakuctl join rx: $out"
out=$(api -w '\n%{http_code}' -X POST http://127.0.0.1:8000/api/networks/train/members/rx)
[[ $(tail -1 <<<"$out") == 412 ]] || fail "joining rx: $out"
grep -q "'rx'" <<<"$out" || fail "412 does not name rx: $out"
out=$(api -w '\n%{http_code}' -X POST -d '{"name": "novx", "subnet": "172.22.0.0/24", "runners": ["rx"]}' \
  http://127.0.0.1:8000/api/networks)
[[ $(tail -1 <<<"$out") == 412 ]] || fail "creating on rx: $out"
code=$(api -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/api/networks/novx)
[[ $code == 404 ]] || fail "refused network exists anyway ($code)"

# 20 concurrent allocations: 20 different addresses, none already held.
pids=()
for i in $(seq 1 20); do
  api -fsS -X POST "http://127.0.0.1:8000/api/networks/train/ip/allocate?runner=r$((1 + i % 2))&container_id=c$i" \
    >"$CLUSTER_DIR/alloc.$i" &
  pids+=($!)
done
wait "${pids[@]}"  # not a bare wait: the daemons are children too
ips=$(cat "$CLUSTER_DIR"/alloc.* | jq -r .ip)
[[ $(wc -l <<<"$ips") == 20 && $(sort -u <<<"$ips" | wc -l) == 20 ]] || fail "allocations not unique: $ips"
grep -qx -e "$w1" -e "$w2" -e 172.20.0.1 <<<"$ips" && fail "an allocation reused a held address"

# 8 concurrent workload attaches through the runners (4 on each member): 8 more addresses, all
# different from each other and from everything held before, and they reach across nodes.
pids=()
for i in $(seq 1 8); do
  r=r$((1 + i % 2))
  (l2_workload_up "$r" "cw$i" train >"$CLUSTER_DIR/attach.$i") &
  pids+=($!)
done
wait "${pids[@]}" || fail "a concurrent attach failed"
attached=$(cat "$CLUSTER_DIR"/attach.*)
[[ $(sort -u <<<"$attached" | grep -c '^172\.20\.0\.') == 8 ]] || fail "attaches not unique: $attached"
[[ $(sort <<<"$ips"$'\n'"$attached"$'\n'"$w1"$'\n'"$w2" | uniq -d) == "" ]] ||
  fail "an attach got an address already held: $attached"
wait_for 10 "cw1 (r2) reaches cw2 (r1)" can_ping cw1 "$(cat "$CLUSTER_DIR/attach.2")"

# Deleting the network takes the devices away from the remaining members.
ctl hub network delete train -f >/dev/null || fail "delete"
wait_for 2 "r1 removed kbr-train" no_link r1 kbr-train
wait_for 2 "r2 removed $vx" no_link r2 "$vx"
log "PASS"

#!/usr/bin/env bash
# A Docker network per named L2 network: two runners with real Docker engines join network
# "train"; each gets Docker network kohaku-train on its kbr-train bridge, confined to an address
# block the host reserved for that runner. `docker run --network kohaku-train` on each runner
# gives addresses from different blocks, the containers ping each other across runners and a
# namespace workload whose address came from the host's pool (outside every block), a leave
# removes the Docker network (its container disconnected) and frees the block, a same-named
# Docker network that is not ours is left alone, and a runner that was down during its leave
# removes the Docker network once back.
source "$(dirname "$0")/lib/cluster.sh"

cluster_machines_up
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16 --set L2_DOCKER_BLOCK_SIZE=16
docker_up r1
docker_up r2
dk() { local r=$1; shift; local s="DOCKER_SOCK_$r"; docker -H "unix://${!s}" "$@"; }
runner_up r1 hub --set "DOCKER_SOCKET=$DOCKER_SOCK_r1"
runner_up r2 hub --set "DOCKER_SOCKET=$DOCKER_SOCK_r2"
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 20 "r2 overlay ready" runner_overlay_ready r2

ctl hub network create train --subnet 172.20.0.0/24 --runners r1,r2 >/dev/null ||
  fail "network create"
block_of() {
  in_ns hub curl -fsS http://127.0.0.1:8000/api/networks/train |
    jq -er --arg r "$1" '.blocks[] | select(.runner == $r) | .cidr'
}
net_state() {
  in_ns "$1" curl -fsS http://127.0.0.1:8001/api/overlay/status |
    jq -er '.docker.named_networks[] | select(.network == "train") | .state'
}
state_ok() { [[ $(net_state "$1") =~ ^(ok|created|recreated)$ ]]; }
for r in r1 r2; do
  wait_for 20 "Docker network kohaku-train on $r" dk "$r" network inspect kohaku-train
  wait_for 10 "$r reports kohaku-train in shape" state_ok "$r"
done
block1=$(block_of r1) || fail "no block for r1: $(ctl hub network show train)"
block2=$(block_of r2) || fail "no block for r2: $(ctl hub network show train)"
log "blocks: r1=$block1 r2=$block2"
[[ $block1 != "$block2" ]] || fail "r1 and r2 got the same block $block1"
ctl hub network show train | grep -Eq "^$block2 +r2" || fail "network show: $(ctl hub network show train)"
for r in r1 r2; do
  net=$(dk "$r" network inspect kohaku-train)
  want=$block1
  [[ $r == r2 ]] && want=$block2
  [[ $(jq -r '.[0].Options["com.docker.network.bridge.name"]' <<<"$net") == kbr-train ]] ||
    fail "$r: kohaku-train not on kbr-train: $net"
  [[ $(jq -r '.[0].IPAM.Config[0].Subnet' <<<"$net") == 172.20.0.0/24 &&
    $(jq -r '.[0].IPAM.Config[0].Gateway' <<<"$net") == 172.20.0.1 ]] || fail "$r: subnet/gateway: $net"
  [[ $(jq -r '.[0].IPAM.Config[0].IPRange' <<<"$net") == "$want" ]] || fail "$r: range not $want: $net"
  [[ $(jq -r '.[0].Options["com.docker.network.bridge.enable_ip_masquerade"]' <<<"$net") == false ]] ||
    fail "$r: Docker masquerade should be off"
  [[ $(jq -r '.[0].Labels["org.kohaku.l2-network"]' <<<"$net") == train ]] || fail "$r: label: $net"
  [[ $(in_ns "$r" curl -fsS http://127.0.0.1:8001/api/overlay/status |
    jq -r '.docker.named_networks[0].block') == "$want" ]] || fail "$r: status does not show block $want"
done

# Docker picks the addresses, each runner inside its own block; across runners they talk L2.
dk r1 run -d --name c1 --network kohaku-train kohaku-busybox sleep 600 >/dev/null
dk r2 run -d --name c2 --network kohaku-train kohaku-busybox sleep 600 >/dev/null
ip_of() { dk "$1" inspect -f '{{(index .NetworkSettings.Networks "kohaku-train").IPAddress}}' "$2"; }
ip1=$(ip_of r1 c1)
ip2=$(ip_of r2 c2)
log "containers: c1=$ip1 (r1) c2=$ip2 (r2)"
in_block() { python3 -c "import ipaddress,sys; sys.exit(ipaddress.ip_address('$1') not in ipaddress.ip_network('$2'))"; }
in_block "$ip1" "$block1" || fail "c1's $ip1 is outside r1's block $block1"
in_block "$ip2" "$block2" || fail "c2's $ip2 is outside r2's block $block2"
wait_for 15 "c1 reaches c2 across runners" dk r1 exec c1 ping -c 1 -W 1 "$ip2"
wait_for 10 "c2 reaches c1" dk r2 exec c2 ping -c 1 -W 1 "$ip1"
# The operator's view through the host: the network with its Docker side, the container in it.
out=$(ctl hub node overlay r1)
grep -Eq "^train +172\.20\.0\.0/24 +yes +kbr-train +attached +kohaku-train +${block1//./\\.} +ok *$" <<<"$out" &&
  grep -Eq "^c1 +[0-9a-f]+ +${ip1//./\\.} +docker \(train\)" <<<"$out" || fail "kohakuctl node overlay r1: $out"
# A namespace workload on the same network (address from the host's pool, outside both blocks)
# and the Docker containers reach each other.
wip=$(l2_workload_up r1 w1 train)
in_block "$wip" "$block1" && fail "host allocated $wip inside r1's block"
in_block "$wip" "$block2" && fail "host allocated $wip inside r2's block"
wait_for 10 "c2 (Docker, r2) reaches w1 (workload, r1)" dk r2 exec c2 ping -c 1 -W 1 "$wip"
can_ping w1 "$ip1" || fail "w1 cannot reach c1 on its own runner"
id1=$(in_ns r1 curl -fsS http://127.0.0.1:8001/api/workloads | jq -r '.workloads[] | select(.name=="w1") | .id')
api_curl r1 -fsS -X DELETE "http://127.0.0.1:8001/api/workloads/$id1" >/dev/null ||
  fail "detach w1"

# r2 leaves: not refused for the block; its Docker network goes (c2 disconnected, still running).
ctl hub network leave train r2 | grep -q left || fail "r2 leave"
gone() { ! dk r2 network inspect kohaku-train >/dev/null 2>&1; }
wait_for 10 "r2 removed Docker network kohaku-train" gone
[[ $(dk r2 inspect -f '{{.State.Running}}' c2) == true ]] || fail "c2 should still run, only disconnected"
block_of r2 >/dev/null && fail "r2's block still held after the leave"
dk r1 network inspect kohaku-train >/dev/null || fail "r1 lost its Docker network"

# A same-named Docker network that is not ours is left alone, and the status says why.
dk r1 network create --subnet 172.31.0.0/24 kohaku-other >/dev/null
ctl hub network create other --subnet 172.21.0.0/24 --runners r1 >/dev/null || fail "create other"
other_error() {
  in_ns r1 curl -fsS http://127.0.0.1:8001/api/overlay/status |
    jq -er '.docker.named_networks[] | select(.network == "other") | .error' | grep -q "did not create"
}
wait_for 10 "r1 reports the foreign kohaku-other" other_error
[[ $(dk r1 network inspect -f '{{(index .IPAM.Config 0).Subnet}}' kohaku-other) == 172.31.0.0/24 ]] ||
  fail "the foreign kohaku-other was changed"

# r1 leaves while its runner is down: back up, it removes the Docker network it no longer needs.
kill -TERM "${DAEMON_PID[runnerd-r1]}"
wait_for 10 "runnerd on r1 stopped" sh -c "! kill -0 ${DAEMON_PID[runnerd-r1]}"
ctl hub network leave train r1 | grep -q left || fail "r1 leave"
runner_up r1 hub --set "DOCKER_SOCKET=$DOCKER_SOCK_r1"
gone_r1() { ! dk r1 network inspect kohaku-train >/dev/null 2>&1; }
wait_for 15 "restarted r1 removed Docker network kohaku-train" gone_r1
[[ $(dk r1 network inspect -f '{{(index .IPAM.Config 0).Subnet}}' kohaku-other) == 172.31.0.0/24 ]] ||
  fail "the foreign kohaku-other was touched after the restart"
log "PASS"

#!/usr/bin/env bash
# A real Docker engine in a runner's namespace: the runner creates the kohakuriver-overlay
# network on its bridge, two containers on it (one with an address reserved at the host) reach
# a workload on another runner, the host counts Docker's addresses as used, and frees them when
# the containers go.
source "$(dirname "$0")/lib/cluster.sh"

cluster_machines_up
docker_cluster
b=$(workload_up r2 b)
net=$(dk network inspect kohakuriver-overlay)
[[ $(jq -r '.[0].Options["com.docker.network.bridge.name"]' <<<"$net") == kohaku-overlay ]] ||
  fail "Docker network not on the kohaku-overlay bridge: $net"
[[ $(jq -r '.[0].IPAM.Config[0].Subnet' <<<"$net") == 10.1.0.0/16 ]] || fail "wrong subnet: $net"
[[ $(jq -r '.[0].Options["com.docker.network.bridge.enable_ip_masquerade"]' <<<"$net") == false ]] ||
  fail "masquerade should be off on the overlay network"

# c1: Docker picks the address. c2: an address reserved at the host first, with its token.
dk run -d --name c1 --network kohakuriver-overlay kohaku-busybox sleep 600 >/dev/null
reserved=$(api_curl hub -fsS -X POST 'http://127.0.0.1:8000/api/overlay/ip/reserve?runner=r1&ttl=300')
ip2=$(jq -r .ip <<<"$reserved")
dk run -d --name c2 --network kohakuriver-overlay --ip "$ip2" kohaku-busybox sleep 600 >/dev/null
ip1=$(dk inspect -f '{{(index .NetworkSettings.Networks "kohakuriver-overlay").IPAddress}}' c1)
log "containers: c1=$ip1 c2=$ip2, workload b on r2=$b"
[[ $ip1 == 10.1.* ]] || fail "c1 got $ip1, not an address of r1's subnet"

for c in c1 c2; do
  wait_for 15 "$c reaches b across nodes" dk exec "$c" ping -c 1 -W 1 "$b"
done
wait_for 10 "b reaches c1" can_ping b "$ip1"

# The host learns Docker's addresses as used (and c2's reservation becomes in use).
used_has() {
  in_ns hub curl -fsS 'http://127.0.0.1:8000/api/overlay/ip/reservations?runner=r1&include_used=true' |
    jq -e --arg ip "$1" '.reservations[] | select(.ip==$ip and .is_used)' >/dev/null
}
wait_for 15 "host records c1's $ip1 as used" used_has "$ip1"
wait_for 15 "host records c2's $ip2 as used" used_has "$ip2"

# Containers go: their addresses are freed at the host.
dk rm -f c1 >/dev/null
not_used() { ! used_has "$1"; }
wait_for 15 "host frees c1's $ip1" not_used "$ip1"
log "PASS"

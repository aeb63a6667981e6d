#!/usr/bin/env bash
# The runner fast path with real Docker containers (docs/bpf-runner-fast-path.md): a container
# on r1's overlay Docker network gets runner_workload on its host-side veth (the peer of its
# eth0) and is listed in datapath.fast_path; its TCP to the outside (masqueraded) and to a
# workload on r2 across the hub is echoed in full while r1's IP forwarding counter and its
# bridge's receive counter stay flat, and its counters grow; a container that adds another
# address and sends from it is dropped and counted; a restarted container is served on its new
# veth; a container started while kohaku-runnerd is down is found and served once it is back,
# and reaches the outside, while those served before keep their counters; a container on a named
# L2 network is served on its bridge and isolated from the overlay's containers; a removed
# container leaves the fast path and the workload map.
source "$(dirname "$0")/lib/cluster.sh"

OUTSIDE=192.0.2.1
fast() { fast_path_entry r1 "$1"; }
served() { fast_path_served r1 "$1"; }
gone() { ! served "$1"; }
wl_counter() { fast_path_counter r1 "$1" "$2"; }
wl_map_size() {
  bpftool -j map dump pinned "/sys/fs/bpf/kohaku-${CLUSTER_ID}/r1/runner/runner_wl" | jq length
}

# expect_counted NAME IP: the container's fast path forwarded and delivered its traffic.
expect_counted() {
  local c
  c=$(fast "$2" | jq .counters)
  jq -e '(.fwd_fib + .fwd_neigh) > 50 and .delivered > 50' <<<"$c" >/dev/null ||
    fail "$1's fast-path counters: $c"
}

cluster_machines_up
outside_up "$OUTSIDE" r1
docker_cluster
b1=$(workload_up r2 b1)

# run NAME NETWORK [DOCKER ARGS...]: a busybox container that sleeps; prints its address there.
run() {
  local name=$1 net=$2
  shift 2
  dk run -d --name "$name" --network "$net" "$@" kohaku-busybox sleep 600 >/dev/null ||
    fail "docker run $name"
  dk inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$name"
}
# echoes CONTAINER HOST PORT: 1 MB through busybox nc in the container, echoed in full.
echoes() {
  local got
  got=$(head -c 1000000 /dev/zero | tr '\0' x |
    timeout 20 docker -H "unix://$DOCKER_SOCK_r1" exec -i "$1" nc "$2" "$3" | wc -c)
  [[ $got == 1000000 ]] || fail "$1 -> $2:$3 echoed $got of 1000000 bytes"
}
reaches() { dk exec "$1" ping -c 1 -W 1 "$2"; }

c1=$(run c1 kohakuriver-overlay)
[[ $c1 == 10.1.* ]] || fail "c1 got $c1, not an address of r1's subnet"
wait_for 15 "c1 on the fast path" served "$c1"
veth=$(fast "$c1" | jq -r .veth)
# The veth served is the host side of c1's eth0, and the program runs there.
peer=$(dk exec c1 cat /sys/class/net/eth0/iflink)
[[ $(in_ns r1 ip -j link show dev "$veth" | jq '.[0].ifindex') == "$peer" ]] ||
  fail "$veth is not the peer of c1's eth0"
in_ns r1 tc filter show dev "$veth" ingress | grep -q runner_workload ||
  fail "no runner_workload on $veth: $(in_ns r1 tc filter show dev "$veth" ingress)"
fast "$c1" | jq -e '.workload | startswith("container ")' >/dev/null || fail "c1's entry: $(fast "$c1")"

# --- Outside and overlay traffic of a container: routed in BPF, nothing through the stack or
# the bridge. The outside has no route to the overlay: its replies come back only masqueraded.
bg_in outside socat TCP-LISTEN:7400,reuseaddr,fork EXEC:cat
bg_in b1 socat TCP-LISTEN:7401,reuseaddr,fork EXEC:cat
wait_for 10 "listener outside" in_ns outside sh -c "ss -ltn | grep -q ':7400 '"
wait_for 10 "listener on b1" in_ns b1 sh -c "ss -ltn | grep -q ':7401 '"
wait_for 10 "c1 reaches the outside" reaches c1 "$OUTSIDE"
wait_for 10 "c1 reaches b1 across the hub" reaches c1 "$b1"
fwd0=$(ip_forwarded r1)
rx0=$(bridge_rx r1)
echoes c1 "$OUTSIDE" 7400
echoes c1 "$b1" 7401
fwd1=$(ip_forwarded r1)
rx1=$(bridge_rx r1)
# A few packets may still take the kernel (neighbour resolution of a first packet, ARP).
((fwd1 - fwd0 < 20)) || fail "r1 forwarded $((fwd1 - fwd0)) datagrams in the kernel: $(fast "$c1")"
((rx1 - rx0 < 20)) || fail "r1's bridge received $((rx1 - rx0)) frames"
c=$(fast "$c1" | jq .counters)
jq -e '(.fwd_fib + .fwd_neigh) > 100 and .delivered > 100 and .pass_kernel < 10' <<<"$c" >/dev/null ||
  fail "c1's fast-path counters: $c"

# --- A container that adds another address and sends from it is dropped and counted.
c2=$(run c2 kohakuriver-overlay --cap-add NET_ADMIN)
wait_for 15 "c2 on the fast path" served "$c2"
dk exec c2 ip addr add 10.250.0.9/32 dev eth0 || fail "adding an address inside c2"
before=$(wl_counter "$c2" drop_spoofed_ip)
dk exec c2 ping -c 2 -W 1 -I 10.250.0.9 "$OUTSIDE" >/dev/null 2>&1 && fail "a spoofed ping went through"
spoofed_counted() { (($(wl_counter "$c2" drop_spoofed_ip) >= before + 2)); }
wait_for 5 "c2's spoofed packets counted" spoofed_counted

# --- A restarted container comes back on a new veth with the same address and MAC (Docker
# derives the MAC from the address): served there.
old_veth=$(fast "$c2" | jq -r .veth)
dk restart -t 0 c2 >/dev/null || fail "docker restart c2"
[[ $(dk inspect -f '{{(index .NetworkSettings.Networks "kohakuriver-overlay").IPAddress}}' c2) == "$c2" ]] ||
  fail "c2 came back with another address"
moved() { [[ $(fast "$c2" | jq -r .veth) != "$old_veth" ]] && served "$c2"; }
wait_for 10 "c2 served on its new veth" moved
wait_for 10 "c2 reaches the outside after its restart" reaches c2 "$OUTSIDE"

# --- A container started while kohaku-runnerd is down is found and served once it is back;
# the containers it served keep their entries and counters across the restart.
fwd_before=$(wl_counter "$c1" fwd_fib)
daemon_stop runnerd-r1
c3=$(run c3 kohakuriver-overlay)
runner_up r1 hub --set "DOCKER_SOCKET=$DOCKER_SOCK_r1"
wait_for 20 "r1 overlay ready after the restart" runner_overlay_ready r1
wait_for 15 "c3 on the fast path" served "$c3"
served "$c1" || fail "c1 lost its fast path across the restart: $(runner_status r1 | jq -c .datapath.fast_path)"
(($(wl_counter "$c1" fwd_fib) >= fwd_before)) ||
  fail "c1's counters were reset by the restart: fwd_fib $fwd_before before, now $(fast "$c1")"
wait_for 10 "c3 reaches the outside" reaches c3 "$OUTSIDE"
echoes c3 "$OUTSIDE" 7400
expect_counted c3 "$c3"

# --- A container on a named L2 network: served on that network's bridge, masqueraded to the
# outside, isolated from the overlay's containers.
ctl hub network create train --subnet 172.20.0.0/24 --runners r1 >/dev/null || fail "network create"
wait_for 20 "Docker network kohaku-train on r1" dk network inspect kohaku-train
c4=$(run c4 kohaku-train)
wait_for 15 "c4 on the fast path" served "$c4"
veth4=$(fast "$c4" | jq -r .veth)
[[ $(in_ns r1 ip -j link show dev "$veth4" | jq -r '.[0].master') == kbr-train ]] ||
  fail "c4's $veth4 is not a port of kbr-train: $(in_ns r1 ip link show dev "$veth4")"
wait_for 10 "c4 reaches the outside" reaches c4 "$OUTSIDE"
echoes c4 "$OUTSIDE" 7400
expect_counted c4 "$c4"
before=$(wl_counter "$c4" drop_isolated)
reaches c4 "$c1" >/dev/null 2>&1 && fail "c4 on train reached c1 on the overlay"
(($(wl_counter "$c4" drop_isolated) > before)) || fail "isolation not counted on c4: $(fast "$c4")"

# --- Removed containers go off the fast path, and out of the workload map.
dk rm -f c1 c4 >/dev/null
wait_for 10 "c1 off the fast path" gone "$c1"
wait_for 10 "c4 off the fast path" gone "$c4"
served "$c3" || fail "c3 lost its fast path when c1 went"
[[ $(wl_map_size) == $(runner_status r1 | jq '.datapath.fast_path | length') ]] ||
  fail "runner_wl holds $(wl_map_size) entries for $(runner_status r1 | jq -c .datapath.fast_path)"
log "PASS"

# Measurement 1: hub forwarding rate. trafgen (AF_PACKET TX ring, qdisc bypassed: no socket
# layer) on r1's uplink sends VXLAN frames to the hub exactly as r1's vxlan0 would: outer
# r1 -> hub UDP 4789, VNI of r1, inner Ethernet to the MAC of r1's hub tunnel, inner IPv4/UDP
# a1 -> b1 with an 18-byte payload (60-byte inner frame, 110-byte outer frame). The hub
# decapsulates on r1's tunnel, routes to r2's (kernel forwarding or the TC program) and
# encapsulates to r2. An XDP counter on r2's uplink counts (and drops) the VXLAN frames arriving from the hub.
# The ceiling: the same XDP counter in drop-all mode on the hub's own uplink, i.e. what the
# generator, the veths and the fabric bridge can deliver to the hub at all, measured right before
# every forwarding sample (fwd_over_ceiling is the per-sample ratio).

mac_bytes() { echo "0x${1//:/, 0x}"; }
ip_bytes() { local IFS=.; set -- $1; echo "$1, $2, $3, $4"; }
link_json() { in_ns "$1" ip -j -d link show dev "$2" | jq -r ".[0].$3"; }

# The hub's tunnel device towards runner machine $1 (runner ids follow registration order, so r1
# is not necessarily runner 1).
hub_tunnel_of() {
  in_ns hub ip -j -d link show type vxlan |
    jq -r --arg r "${HOST_IP[$1]}" '.[] | select(.linkinfo.info_data.remote == $r) | .ifname' | head -n1
}

fwd_write_trafgen_conf() {
  local hub_mac r1_mac vx_mac in_mac vni tun
  tun=$(hub_tunnel_of r1)
  [[ -n $tun ]] || fail "no hub tunnel towards r1 (${HOST_IP[r1]})"
  hub_mac=$(link_json hub eth0 address)
  r1_mac=$(link_json r1 eth0 address)
  vx_mac=$(link_json hub "$tun" address)
  in_mac=$(link_json r1 vxlan0 address)
  vni=$(link_json hub "$tun" linkinfo.info_data.id)
  cat >"$CLUSTER_DIR/vxlan.trafgen" <<CONF
{
  $(mac_bytes "$hub_mac"), $(mac_bytes "$r1_mac"), 0x08, 0x00,
  0x45, 0x00, const16(96), const16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  $(ip_bytes "${HOST_IP[r1]}"), $(ip_bytes "${HOST_IP[hub]}"),
  const16(40001), const16(4789), const16(76), const16(0),
  0x08, 0x00, 0x00, 0x00, $((vni >> 16 & 255)), $((vni >> 8 & 255)), $((vni & 255)), 0x00,
  $(mac_bytes "$vx_mac"), $(mac_bytes "$in_mac"), 0x08, 0x00,
  0x45, 0x00, const16(46), const16(0), 0x40, 0x00, 64, 17, csumip(64, 83),
  $(ip_bytes "$A1"), $(ip_bytes "$B1"),
  const16(40000), const16(9), const16(26), const16(0),
  fill(0x5a, 18)
}
CONF
}

# trafgen_for SECONDS NS DEV CONF: the generator in the background (one process); sets GEN_PID.
trafgen_for() {
  local secs=$1 ns=$2 dev=$3 conf=$4
  in_ns "$ns" timeout -s INT "$secs" trafgen --dev "$dev" --conf "$conf" --cpus 1 >/dev/null 2>&1 &
  GEN_PID=$!
}

# count_while_generating COUNTER_NS COUNTER_DEV UDP_PORT GEN_NS GEN_DEV CONF [--saddr A]
# A window in which almost nothing arrived (under MIN_SANE_PPS) means the generator did not run
# (trafgen failed to start), not a slow datapath: such a sample is measured again, twice at most,
# rather than recorded (one such ceiling sample once showed up as a ratio of 434869).
MIN_SANE_PPS=${MIN_SANE_PPS:-1000}
count_while_generating() {
  local cns=$1 cdev=$2 port=$3 gns=$4 gdev=$5 conf=$6
  shift 6
  local out attempt
  for attempt in 1 2 3; do
    trafgen_for "$(awk -v w="$WARMUP" -v s="$WINDOW" 'BEGIN {print w + s + 1}')" "$gns" "$gdev" "$conf"
    out=$(in_ns "$cns" "$BIN/bench_xdp_count" --dev "$cdev" --udp-port "$port" \
      --warmup "$WARMUP" --seconds "$WINDOW" "$@") || { kill "$GEN_PID" 2>/dev/null; fail "XDP counter on $cns/$cdev"; }
    wait "$GEN_PID" 2>/dev/null || true
    local pps
    pps=$(kv matched_pps "$out" | cut -d. -f1)
    ((${pps:-0} >= MIN_SANE_PPS)) && break
    log "  only $(kv matched_pps "$out") packets/s reached $cns/$cdev (attempt $attempt): the generator did not run; measuring again"
  done
  echo "$out"
}

measure_ceiling() {
  fwd_write_trafgen_conf
  local out
  out=$(count_while_generating hub eth0 0 r1 eth0 "$CLUSTER_DIR/vxlan.trafgen")
  LAST_CEILING=$(kv matched_pps "$out")
  record fwd_ceiling_pps ceiling "$LAST_CEILING"
}

# The testbed's forwarding limit at the hub: bench_bounce on the hub's uplink sends every
# generated frame on to r2 with the cheapest rewrite there is (fixed addresses, no lookup), and
# the counter on r2 counts them. Measured right before every forwarding sample, through both hooks
# (XDP_TX and a TC ingress redirect): which is cheaper depends on the device (on veth, XDP pays for
# turning the skb into an XDP frame and back), and the limit is the faster of the two.
bounce_once() {
  local hook=$1 tun2 vni2 out secs
  tun2=$(hub_tunnel_of r2)
  vni2=$(link_json hub "$tun2" linkinfo.info_data.id)
  secs=$(awk -v w="$WARMUP" -v s="$WINDOW" 'BEGIN {print w + s + 1.5}')
  : >"$CLUSTER_DIR/bounce.out"
  in_ns hub "$BIN/bench_bounce" --hook "$hook" --dev eth0 --out-dmac "$(link_json r2 eth0 address)" \
    --out-smac "$(link_json hub eth0 address)" --inner-dmac "$(link_json b1 eth0 address)" \
    --inner-smac "$(link_json hub "$tun2" address)" --src-ip "${HOST_IP[hub]}" \
    --dst-ip "${HOST_IP[r2]}" --vni "$vni2" --seconds "$secs" >"$CLUSTER_DIR/bounce.out" &
  local bouncer=$!
  # The generator starts once the bounce is in place (the tool says so), not after a guess.
  wait_for 5 "bench_bounce --hook $hook attached" grep -q attached "$CLUSTER_DIR/bounce.out"
  out=$(count_while_generating r2 eth0 4789 r1 eth0 "$CLUSTER_DIR/vxlan.trafgen")
  wait "$bouncer" || fail "bench_bounce --hook $hook on the hub's uplink"
  kv matched_pps "$out"
}

measure_limit() {
  fwd_write_trafgen_conf
  local xdp tc
  xdp=$(bounce_once xdp)
  tc=$(bounce_once tc)
  record fwd_bounce_pps xdp "$xdp"
  record fwd_bounce_pps tc "$tc"
  LAST_LIMIT=$(awk -v a="$xdp" -v b="$tc" 'BEGIN { print (a > b) ? a : b }')
  record fwd_limit_pps limit "$LAST_LIMIT"
  ROUND_LIMITS+=("$LAST_LIMIT")
}

# The bare bounce itself runs at different rates in the hub states of the columns (in the kernel
# and TC columns' states about 2/3 of what it does in the express columns' states, measured
# here; the cause is not identified, and it is not the bounce's hook: XDP_TX and the TC redirect
# move alike). A limit measured in one column's state is then no limit of the testbed. So each
# round also judges every column against the fastest bounce of the round (its testbed limit):
# finish_forwarding_round records forwarding/round limit and the hub's own cost against it.
ROUND_LIMITS=()
declare -A ROUND_FWD=()
finish_forwarding_round() {
  local limit dp
  limit=$(printf '%s\n' "${ROUND_LIMITS[@]}" | sort -g | tail -n1)
  for dp in "${!ROUND_FWD[@]}"; do
    record fwd_over_round_limit "$dp" "$(share "${ROUND_FWD[$dp]}" "$limit")"
    record hub_cost_round_ns "$dp" "$(cost_beyond "${ROUND_FWD[$dp]}" "$limit")"
  done
  record fwd_round_limit_pps limit "$limit"
  ROUND_LIMITS=()
  ROUND_FWD=()
}

measure_forwarding() {
  local dp=$1
  fwd_write_trafgen_conf
  can_ping a1 "$B1" >/dev/null || fail "a1 cannot reach b1 before the forwarding run"
  local out pps matched
  out=$(count_while_generating r2 eth0 4789 r1 eth0 "$CLUSTER_DIR/vxlan.trafgen" \
    --snmp-pid "${DAEMON_PID[hostd-hub]}")
  pps=$(kv matched_pps "$out")
  matched=$(kv matched "$out")
  record fwd_pps "$dp" "$pps"
  ROUND_FWD[$dp]=$pps
  # Against the ceiling and the limit measured just before: the machine's load moves them alike.
  record fwd_over_ceiling "$dp" "$(share "$pps" "$LAST_CEILING")"
  record fwd_over_limit "$dp" "$(share "$pps" "$LAST_LIMIT")"
  # The hub's own cost per packet: what a packet costs beyond the cheapest possible bounce.
  record hub_cost_ns "$dp" "$(cost_beyond "$pps" "$LAST_LIMIT")"
  # Share of the counted packets the hub's kernel IP forwarding handled in the same window
  # (~1 = kernel path, ~0 = the TC program redirected them).
  record fwd_kernel_share "$dp" "$(awk -v f="$(kv ip_forwarded "$out")" -v m="$matched" \
    'BEGIN { if (m > 0) printf "%.2f\n", f / m }')"
}

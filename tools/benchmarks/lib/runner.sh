# Measurement 4 (runner NAT) and the runner overlay measurement, in the data plane testbed's real
# runner r1 (tools/benchmarks/lib/testbed.sh): workload a1 on r1's bridge, attached through
# kohaku-runnerd, and the machine "outside" (192.0.2.1 on its loopback) on the fabric, r1's
# default route. r1's datapath is switched by restarting kohaku-runnerd with the column's settings
# (its workload a1 is persisted and adopted, so the same veth serves every column):
#   iptables  OVERLAY_DATAPATH=kernel (ip_forward, iptables MASQUERADE and FORWARD rules)
#   bpf       OVERLAY_DATAPATH=bpf, OVERLAY_FAST_PATH=False (BPF masquerade on the uplink and
#             forward filter on the bridge; packets cross the bridge and the IP stack: the BPF
#             datapath before the fast path)
#   fast      the default (runner_workload on a1's veth, replies delivered past the bridge)
# The hub runs its default datapath (express) throughout.
# pps: trafgen in a1 sends one UDP flow (a1:40000 -> 192.0.2.1:9, 64-byte payload) to its gateway;
# an XDP counter on the outside's eth0 counts the frames whose source is r1's uplink address
# (translated), and separately any other source (must be 0). Right before, in the same column
# state: the ceiling (the same generator into an XDP drop on a1's host-side veth, i.e. what the
# generator and a1's veth deliver to r1 at all) and the testbed's limit (bench_bounce --hook
# route on that veth: every frame gets fixed MACs and r1's address and is redirected out of r1's
# uplink, no lookup: what any runner forwarding costs at the least, fabric and outside included).
# conns/s: bench_connrate in a1 against a server on the outside (handshake through the NAT, RST).
# Overlay: one iperf3 stream a1 -> b1 (r1's vxlan0, the hub, r2) at full speed and paced; CPU as in
# measurement 2.

RUNNER_COLUMNS=(iptables bpf fast)
OUTSIDE_IP=192.0.2.1
declare -A RUNNER_EVIDENCE=()

runner_column_args() {
  case $1 in
    iptables) echo "--set OVERLAY_DATAPATH=kernel" ;;
    bpf) echo "--set OVERLAY_FAST_PATH=False" ;;
    fast) echo "" ;;
    *) fail "unknown runner column $1" ;;
  esac
}

# The outside machine and its connection server; called by testbed_up before the runners start
# (their uplink is the device of that default route).
runner_outside_up() {
  outside_up "$OUTSIDE_IP" r1
  run_daemon outside connsrv "$BIN/bench_connrate" server --port 7001
  wait_for 10 "connection server on the outside" grep -q listening "$CLUSTER_DIR/connsrv.log"
  RUNNER_ACTIVE=fast
}

# a1's host-side veth in r1: the peer of a1's eth0.
a1_veth() {
  local peer
  peer=$(in_ns a1 ip -j link show eth0 | jq '.[0].link_index')
  in_ns r1 ip -j link show | jq -r --argjson i "$peer" '.[] | select(.ifindex == $i) | .ifname'
}

a1_served() { fast_path_served r1 "$A1"; }
a1_veth_bare() { ! in_ns r1 tc filter show dev "$A1_VETH" ingress | grep -q runner_workload; }

# What r1 says it runs and where its programs and rules sit (the proof, not the setting):
# "<datapath>/fast_path=<setting>/veth=<filter on a1's veth>/masquerade=<iptables rules>".
runner_datapath_evidence() {
  local s active enabled veth rules
  s=$(runner_status r1 2>/dev/null)
  active=$(jq -r '.datapath | if type == "object" then .active else . end // "not-reported"' <<<"$s" 2>/dev/null)
  enabled=$(jq -r '.datapath | objects | .fast_path_enabled' <<<"$s" 2>/dev/null)
  veth=$(in_ns r1 tc filter show dev "$A1_VETH" ingress 2>/dev/null | grep -o runner_workload | head -n1)
  rules=$(in_ns r1 iptables -t nat -S 2>/dev/null | grep -c MASQUERADE || true)
  echo "${active:-not-reported}/fast_path=${enabled:-n/a}/veth=${veth:-none}/masquerade=${rules}"
}

# runner_set_datapath COLUMN: kohaku-runnerd on r1 restarted with the column's settings (when it
# runs another one), then waited for until a1 reaches the outside and b1 on the column's path.
runner_set_datapath() {
  local col=$1
  if [[ $RUNNER_ACTIVE != "$col" ]]; then
    bench_daemon_stop runnerd-r1
    # shellcheck disable=SC2046
    runner_up r1 hub $(runner_column_args "$col")
    RUNNER_ACTIVE=$col
  fi
  wait_for 30 "r1 overlay ready" runner_overlay_ready r1
  A1_VETH=$(a1_veth)
  if [[ $col == fast ]]; then
    wait_for 20 "a1 on r1's fast path" a1_served
  else
    wait_for 20 "no runner_workload on a1's veth under $col" a1_veth_bare
  fi
  wait_for 20 "a1 reaches the outside under $col" can_ping a1 "$OUTSIDE_IP"
  wait_for 20 "a1 reaches b1 under $col" can_ping a1 "$B1"
  local ev
  ev=$(runner_datapath_evidence)
  RUNNER_EVIDENCE[$col]=$ev
  log "r1 datapath $col: $ev"
}

nat_write_trafgen_conf() {
  local gw_mac a1_mac
  gw_mac=$(link_json r1 kohaku-overlay address)
  a1_mac=$(link_json a1 eth0 address)
  cat >"$CLUSTER_DIR/nat.trafgen" <<CONF
{
  $(mac_bytes "$gw_mac"), $(mac_bytes "$a1_mac"), 0x08, 0x00,
  0x45, 0x00, const16(92), const16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  $(ip_bytes "$A1"), $(ip_bytes $OUTSIDE_IP),
  const16(40000), const16(9), const16(72), const16(0),
  fill(0x5a, 64)
}
CONF
}

# The testbed's limit right now: bench_bounce --hook route on a1's veth, counted on the outside.
nat_limit() {
  local secs out
  secs=$(awk -v w="$WARMUP" -v s="$WINDOW" 'BEGIN {print w + s + 1.5}')
  : >"$CLUSTER_DIR/route.out"
  in_ns r1 "$BIN/bench_bounce" --hook route --dev "$A1_VETH" --out-dev eth0 \
    --out-dmac "$(link_json outside eth0 address)" --out-smac "$(link_json r1 eth0 address)" \
    --src-ip "${HOST_IP[r1]}" --seconds "$secs" >"$CLUSTER_DIR/route.out" &
  local bouncer=$!
  wait_for 5 "bench_bounce --hook route attached" grep -q attached "$CLUSTER_DIR/route.out"
  out=$(count_while_generating fabric p-r1 9 a1 eth0 "$CLUSTER_DIR/nat.trafgen" --saddr "${HOST_IP[r1]}")
  wait "$bouncer" || fail "bench_bounce --hook route on $A1_VETH"
  kv matched_pps "$out"
}

measure_nat() {
  local col=$1 out ceiling limit pps
  nat_write_trafgen_conf
  out=$(count_while_generating r1 "$A1_VETH" 0 a1 eth0 "$CLUSTER_DIR/nat.trafgen")
  ceiling=$(kv matched_pps "$out")
  record nat_ceiling_pps "$col" "$ceiling"
  limit=$(nat_limit)
  record nat_limit_pps "$col" "$limit"
  out=$(count_while_generating fabric p-r1 9 a1 eth0 "$CLUSTER_DIR/nat.trafgen" \
    --saddr "${HOST_IP[r1]}" --snmp-pid "${DAEMON_PID[runnerd-r1]}")
  pps=$(kv matched_pps "$out")
  record nat_pps "$col" "$pps"
  record nat_over_limit "$col" "$(share "$pps" "$limit")"
  record nat_over_ceiling "$col" "$(share "$pps" "$ceiling")"
  record nat_kernel_share "$col" "$(awk -v f="$(kv ip_forwarded "$out")" -v m="$(kv matched "$out")" \
    'BEGIN { if (m > 0) printf "%.2f\n", f / m }')"
  local other
  other=$(kv other_saddr "$out")
  ((other == 0)) || log "  WARNING: $other frames reached the outside untranslated under $col"

  out=$(in_ns a1 "$BIN/bench_connrate" client --dst $OUTSIDE_IP --port 7001 --threads 2 \
    --seconds "$NAT_SECONDS") || fail "connection storm through $col: $out"
  [[ $(kv failures "$out") == 0 ]] || log "  connection failures under $col: $out"
  record nat_conns_per_s "$col" "$(kv conns_per_s "$out")"
  record nat_conn_failures "$col" "$(kv failures "$out")"
}

measure_runner_overlay() {
  measure_tcp_run "$1" runner_tcp
  measure_tcp_run "$1" runner_tcp_paced -b "$TCP_RATE"
}

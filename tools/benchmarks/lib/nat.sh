# Measurement 4: runner masquerade, eBPF programs vs iptables MASQUERADE, in a three-namespace
# testbed built fresh for every sample (so no conntrack entry or NAT binding of one mode can
# serve the other):
#   natw (workload 10.1.0.5/16) --veth-- natr (runner: 10.1.0.1/16 on ovl, uplink eth0
#   $NAT_NET.2/24, ip_forward on) --veth-- nato (outside: $NAT_NET.9/24, no route to 10/8)
# kernel: `iptables -t nat -A POSTROUTING -s 10.0.0.0/8 ! -d 10.0.0.0/8 -o eth0 -j MASQUERADE`.
# bpf:    runner_nat_egress/ingress attached to natr's eth0 by bench_nat_attach (RunnerDatapath,
#         the loader kohaku-runnerd will use); no iptables rule, so no netfilter conntrack.
# pps: trafgen in natw sends one UDP flow (10.1.0.5:40000 -> $NAT_NET.9:9, 64-byte payload) to
# natr; the XDP counter on nato's eth0 counts frames whose source is natr's uplink address
# (translated) separately from any other source; right before, the same generator into an XDP
# drop on the runner's overlay-side interface gives this sample's ceiling. conns/s: bench_connrate in natw opens TCP
# connections to nato (full handshake through the NAT, closed with RST) with 2 threads.

NAT_NET=198.19.254
NAT_SEQ=0

nat_testbed_up() {
  local mode=$1
  NAT_SEQ=$((NAT_SEQ + 1))
  NATW=nw$NAT_SEQ NATR=nr$NAT_SEQ NATO=no$NAT_SEQ
  new_ns $NATW
  new_ns $NATR
  new_ns $NATO
  local w r o
  w=$(ns_name $NATW) r=$(ns_name $NATR) o=$(ns_name $NATO)
  ip -n "$r" link add ovl type veth peer name eth0 netns "$w"
  ip -n "$r" link add eth0 type veth peer name eth0 netns "$o"
  ip -n "$r" addr add 10.1.0.1/16 dev ovl
  ip -n "$r" addr add $NAT_NET.2/24 dev eth0
  ip -n "$w" addr add 10.1.0.5/16 dev eth0
  ip -n "$o" addr add $NAT_NET.9/24 dev eth0
  for ns in "$r ovl" "$r eth0" "$w eth0" "$o eth0"; do
    set -- $ns
    ip -n "$1" link set "$2" up
  done
  ip -n "$w" route add default via 10.1.0.1
  in_ns $NATR sysctl -qw net.ipv4.ip_forward=1
  if [[ $mode == kernel ]]; then
    in_ns $NATR iptables -t nat -A POSTROUTING -s 10.0.0.0/8 ! -d 10.0.0.0/8 -o eth0 -j MASQUERADE
  else
    run_daemon $NATR nat-$NAT_SEQ "$BIN/bench_nat_attach" --dev eth0 --uplink $NAT_NET.2 \
      --overlay 10.0.0.0/8
    wait_for 10 "BPF masquerade attached in $NATR" grep -q '^attached' "$CLUSTER_DIR/nat-$NAT_SEQ.log"
  fi
  wait_for 10 "workload reaches the outside through $mode NAT" in_ns $NATW ping -c1 -W1 $NAT_NET.9
}

nat_testbed_down() {
  local mode=$1
  if [[ $mode == bpf ]]; then
    local pid=${DAEMON_PID[nat-$NAT_SEQ]}
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    log "  BPF masquerade counters: $(grep -v -e '^attached' -e '^libbpf' "$CLUSTER_DIR/nat-$NAT_SEQ.log" | tr '\n' ' ')"
  fi
  local n
  for n in $NATW $NATR $NATO; do ip netns del "$(ns_name $n)" 2>/dev/null || true; done
}

nat_write_trafgen_conf() {
  local dst_mac src_mac
  dst_mac=$(link_json $NATR ovl address)
  src_mac=$(link_json $NATW eth0 address)
  cat >"$CLUSTER_DIR/nat.trafgen" <<CONF
{
  $(mac_bytes "$dst_mac"), $(mac_bytes "$src_mac"), 0x08, 0x00,
  0x45, 0x00, const16(92), const16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  10, 1, 0, 5, $(ip_bytes $NAT_NET.9),
  const16(40000), const16(9), const16(72), const16(0),
  fill(0x5a, 64)
}
CONF
}

measure_nat() {
  local mode=$1 out
  nat_testbed_up "$mode"
  nat_write_trafgen_conf
  # Ceiling of this testbed right now: the same generator into an XDP drop on the runner's
  # overlay-side interface (before routing and NAT).
  local ceiling pps
  out=$(count_while_generating $NATR ovl 0 $NATW eth0 "$CLUSTER_DIR/nat.trafgen")
  ceiling=$(kv matched_pps "$out")
  record nat_ceiling_pps "$mode" "$ceiling"
  out=$(count_while_generating $NATO eth0 9 $NATW eth0 "$CLUSTER_DIR/nat.trafgen" --saddr $NAT_NET.2)
  pps=$(kv matched_pps "$out")
  record nat_pps "$mode" "$pps"
  record nat_over_ceiling "$mode" "$(share "$pps" "$ceiling")"
  local other
  other=$(kv other_saddr "$out")
  ((other == 0)) || log "  WARNING: $other frames reached the outside untranslated under $mode"

  run_daemon $NATO connsrv-$NAT_SEQ "$BIN/bench_connrate" server --port 7001
  wait_for 10 "connection server in $NATO" grep -q listening "$CLUSTER_DIR/connsrv-$NAT_SEQ.log"
  out=$(in_ns $NATW "$BIN/bench_connrate" client --dst $NAT_NET.9 --port 7001 --threads 2 \
    --seconds "$NAT_SECONDS") || fail "connection storm through $mode NAT: $out"
  [[ $(kv failures "$out") == 0 ]] || log "  connection failures under $mode: $out"
  record nat_conns_per_s "$mode" "$(kv conns_per_s "$out")"
  record nat_conn_failures "$mode" "$(kv failures "$out")"
  kill -TERM "${DAEMON_PID[connsrv-$NAT_SEQ]}" 2>/dev/null || true
  nat_testbed_down "$mode"
}

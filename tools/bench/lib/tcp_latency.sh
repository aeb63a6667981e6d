# Measurements 2 and 3: TCP throughput and round-trip latency from workload a1 (on r1) to
# workload b1 (on r2): every packet crosses r1's vxlan0, the hub (vxkr1 -> vxkr2) and r2's vxlan0.

# Measurement 2: one iperf3 stream a1 -> b1. CPU: softirq jiffies of the whole machine
# (/proc/stat) during the run, per GB moved. The hub has no process on the data path, so its
# work is all softirq; the runners' encap/decap is softirq too and identical under both hub
# datapaths, so the difference between datapaths is the hub's.
measure_tcp() {
  local dp=$1 port=5201
  in_ns b1 iperf3 -s -1 -p $port >/dev/null 2>&1 &
  local srv=$!
  wait_for 10 "iperf3 server on b1" in_ns b1 sh -c "ss -ltn | grep -q ':$port '"
  local t0 t1 out hz
  t0=$(cpu_softirq_ticks)
  out=$(in_ns a1 iperf3 -c "$B1" -p $port -t "$TCP_SECONDS" -J) || { kill $srv 2>/dev/null; fail "iperf3 a1 -> b1"; }
  t1=$(cpu_softirq_ticks)
  wait $srv 2>/dev/null || true
  hz=$(getconf CLK_TCK)
  local bps bytes
  bps=$(jq '.end.sum_received.bits_per_second' <<<"$out")
  bytes=$(jq '.end.sum_received.bytes' <<<"$out")
  record tcp_gbps "$dp" "$(awk -v b="$bps" 'BEGIN {printf "%.3f\n", b / 1e9}')"
  record tcp_softirq_cpu_s_per_gb "$dp" \
    "$(awk -v t=$((t1 - t0)) -v hz="$hz" -v by="$bytes" 'BEGIN { if (by > 0) printf "%.3f\n", t / hz / (by / 1e9) }')"
}

# Measurement 3: ping a1 -> b1 every PING_INTERVAL s; p50/p99 of the per-packet RTTs.
measure_latency() {
  local dp=$1 rtts
  rtts=$(in_ns a1 ping -n -i "$PING_INTERVAL" -c "$PING_COUNT" -W 1 "$B1" |
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p')
  local n
  n=$(wc -l <<<"$rtts")
  ((n > PING_COUNT / 2)) || fail "only $n of $PING_COUNT pings a1 -> b1 answered under $dp"
  record rtt_p50_us "$dp" "$(percentile 50 <<<"$rtts" | awk '{printf "%.0f\n", $1 * 1000}')"
  record rtt_p99_us "$dp" "$(percentile 99 <<<"$rtts" | awk '{printf "%.0f\n", $1 * 1000}')"
}

# Measurements 2 and 3: TCP throughput and round-trip latency from workload a1 (on r1) to
# workload b1 (on r2): every packet crosses r1's vxlan0, the hub (r1's tunnel -> r2's) and r2's vxlan0.

# Measurement 2: one iperf3 stream a1 -> b1, at full speed and paced at TCP_RATE (same load for
# both datapaths). CPU: on veth the whole path (both runners, the hub, both stacks) runs in
# softirq context on the CPU of the sending task, i.e. inside the iperf3 processes' system time,
# or in ksoftirqd when it overflows. So the test's CPU time is the iperf3 client's and server's
# user+system time (bash `times` of the subshell that ran and reaped them) plus the ksoftirqd
# threads' time over the run; unlike /proc/stat totals it does not count what other users of the
# machine run meanwhile. Runners and workloads are the same under both datapaths, so the
# difference between the columns is the hub's.

ksoftirqd_ticks() {
  local pid sum=0 t
  for pid in $(pgrep -x 'ksoftirqd/[0-9]+' || true); do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo $sum
}

# iperf_run PORT ARGS...: runs server (b1) and client (a1) in a subshell; prints the client's JSON
# path and the CPU seconds of both iperf3 processes ("user sys" from `times`).
iperf_run() {
  local port=$1
  shift
  (
    in_ns b1 iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    srv=$!
    wait_for 10 "iperf3 server on b1" in_ns b1 sh -c "ss -ltn | grep -q ':$port '"
    in_ns a1 iperf3 -c "$B1" -p "$port" -J "$@" >"$CLUSTER_DIR/iperf.json" || kill $srv 2>/dev/null
    wait $srv 2>/dev/null || true
    times >"$CLUSTER_DIR/iperf.times" # not in a pipeline: that would be a fresh subshell
  )
  jq -e '.end.sum_received.bytes > 0' "$CLUSTER_DIR/iperf.json" >/dev/null ||
    fail "iperf3 a1 -> b1 moved nothing: $(head -c 400 "$CLUSTER_DIR/iperf.json")"
}

# seconds of a bash `times` field like 1m2.345s
times_s() { awk '{ split($1, a, "m"); sub("s", "", a[2]); u = a[1] * 60 + a[2]
                   split($2, b, "m"); sub("s", "", b[2]); print u + b[1] * 60 + b[2] }'; }

measure_tcp_run() {
  local dp=$1 what=$2
  shift 2
  local hz k0 k1 t0 t1 cpu bytes bps secs
  hz=$(getconf CLK_TCK)
  k0=$(ksoftirqd_ticks) t0=$(date +%s.%N)
  iperf_run 5201 -t "$TCP_SECONDS" "$@"
  k1=$(ksoftirqd_ticks) t1=$(date +%s.%N)
  cpu=$(awk -v p="$(tail -n1 "$CLUSTER_DIR/iperf.times" | times_s)" -v k=$((k1 - k0)) -v hz="$hz" \
    'BEGIN {print p + k / hz}')
  bytes=$(jq '.end.sum_received.bytes' "$CLUSTER_DIR/iperf.json")
  bps=$(jq '.end.sum_received.bits_per_second' "$CLUSTER_DIR/iperf.json")
  secs=$(jq '.end.sum_received.seconds' "$CLUSTER_DIR/iperf.json")
  record "${what}_gbps" "$dp" "$(awk -v b="$bps" 'BEGIN {printf "%.3f\n", b / 1e9}')"
  record "${what}_cpu_s_per_gb" "$dp" "$(awk -v c="$cpu" -v by="$bytes" 'BEGIN {printf "%.3f\n", c / (by / 1e9)}')"
  record "${what}_cpu_pct" "$dp" "$(awk -v c="$cpu" -v s="$secs" 'BEGIN {printf "%.1f\n", 100 * c / s}')"
}

measure_tcp() { measure_tcp_run "$1" tcp; }
measure_tcp_paced() { measure_tcp_run "$1" tcp_paced -b "$TCP_RATE"; }

# The same stream with wire-sized frames: both runners' uplinks segment and fill checksums
# themselves (TSO, GSO and TX checksum offload off), as frames on a physical wire are, instead of
# handing 64 KB aggregates with partial checksums across the veths. The fabric's port towards the
# hub gets TSO off too: a veth feeds its peer's GRO only when the sending side has it off, and the
# hub's NIC driver would merge wire frames with GRO (for every column alike). The hub's own output
# still crosses to r2 as aggregates, as a NIC's TSO and r2's GRO would make it.
runner_uplinks_offload() {
  local m
  for m in r1 r2; do in_ns "$m" ethtool -K eth0 tso "$1" gso "$1" tx "$1" >/dev/null; done
  in_ns fabric ethtool -K p-hub tso "$1" >/dev/null
}
measure_tcp_wire() {
  runner_uplinks_offload off
  measure_tcp_run "$1" tcp_wire
  runner_uplinks_offload on
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

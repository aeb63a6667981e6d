# Measurement 6: the control plane of kohaku-hostd (overlay on, 10.0.0.0/8/8/16), each hub in its
# own namespace (registration creates one vxkr device per runner). Per round, datapaths alternating:
#   register: a fresh hub; CTL_RUNNERS runners registered by 16 concurrent clients (physical
#     addresses 198.19.x.y that the hub namespace has no route to, so tunnels exist but carry
#     nothing); time until all answered, and until all vxkr devices exist (bpf: with the program).
#   restart: on the long-lived hub ctl-DP holding CTL_RUNNERS runners and CTL_RESERVATIONS
#     reservations, kohaku-hostd is stopped (SIGTERM) and started again: time from the start until
#     /api/overlay/ip/stats answers with all reservations loaded.
#   reservations: 64 concurrent clients reserve IPs on ctl-DP for CTL_SECONDS (reservations/s,
#     p99), then release them, so every round starts from the same state.
# Scale (once per run, after the rounds): OVERLAY_SUBNET 10.0.0.0/8/12/12 (4095 runner ids), for
# each count in CTL_SCALE_COUNTS and each datapath a fresh hub, the runners registered by 16
# clients: time until all answered and until all tunnels are ready, and ms per registration.
# The hub of the largest count is then restarted (time to serving, all runners adopted) and
# `kohakuctl node overlay` is timed against it.

CTL_URL=http://127.0.0.1:8000

# wait_tunnels M N DP: waits until N vxkr devices exist on M and, under bpf, all carry the TC
# program on their ingress (bench_ctl_load wait-tunnels: one query per device, where
# `bpftool net show` lists every qdisc of the namespace per device and takes minutes at 4,000).
wait_tunnels() {
  local m=$1 n=$2 dp=$3 prog=0
  [[ $dp == bpf ]] && prog=1
  ctl_load "$m" wait-tunnels --count "$n" --program "$prog" --timeout 600 ||
    fail "$n tunnels not ready on $m under $dp"
}

# ctl_load MACHINE ARGS...: bench_ctl_load inside MACHINE with the token of its hub (the
# reservation and registration routes need it, docs/security.md).
ctl_load() {
  local m=$1
  shift
  KOHAKU_TOKEN=${API_TOKEN[$m]:-} in_ns "$m" "$BIN/bench_ctl_load" "$@"
}

# elapsed T0: seconds since T0 (a `date +%s.%N` value).
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f\n", b - a}'; }

# Same command line as cluster.sh's hub_up, without its polling (the measurement polls itself).
hostd_start() {
  local m=$1
  shift
  run_daemon "$m" hostd-"$m" "$KOHAKU_BIN_DIR/kohaku-hostd" \
    --set OVERLAY_ENABLED=True --set "HOST_REACHABLE_ADDRESS=${HOST_IP[$m]}" \
    --set "STATE_DIR=$CLUSTER_DIR/$m-state" --set "BPF_PIN_ROOT=/sys/fs/bpf/kohaku-${CLUSTER_ID}/$m" \
    --set HEARTBEAT_INTERVAL_SECONDS=1 --set CLEANUP_CHECK_INTERVAL_SECONDS=1 "$@"
}

hostd_stop() {
  local pid=${DAEMON_PID[hostd-$1]}
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

# control_register DP NUM: a fresh hub, registration timed, then kept as ctl-DP for the other
# measurements when KEEP is 1 (else removed).
control_register() {
  local dp=$1 num=$2 m=$3 out t0
  machine_up "$m" "$num"
  hub_up "$m" "${HUB_ARGS[@]}" --set "OVERLAY_DATAPATH=$dp"
  t0=$(date +%s.%N)
  out=$(ctl_load "$m" register --url $CTL_URL --count "$CTL_RUNNERS" \
    --clients 16) || fail "registering $CTL_RUNNERS runners under $dp: $out"
  log "  $out"
  record ctl_register_s "$dp" "$(kv wall_s "$out")"
  wait_tunnels "$m" "$CTL_RUNNERS" "$dp" >/dev/null
  record ctl_register_tunnels_s "$dp" "$(elapsed "$t0")"
}

control_remove() {
  hostd_stop "$1"
  ip netns del "$(ns_name "$1")" 2>/dev/null || true
}

# control_setup DP NUM: the long-lived hub ctl-DP with CTL_RUNNERS runners and CTL_RESERVATIONS.
control_setup() {
  local dp=$1 num=$2 m=ctl-$1 out
  control_register "$dp" "$num" "$m"
  out=$(ctl_load "$m" fill --url $CTL_URL --count "$CTL_RUNNERS" \
    --reservations "$CTL_RESERVATIONS" --clients 64) || fail "filling reservations under $dp: $out"
  log "  fill: $out"
}

# control_round DP ROUND: registration on a fresh hub, then restart and reservation load on ctl-DP.
control_round() {
  local dp=$1 round=$2 m=ctl-$1 out
  if ((round > 1)); then
    # Round 1's registration was the setup's; later rounds register on a throw-away hub.
    local num=$((40 + round * 2))
    [[ $dp == bpf ]] && num=$((num + 1))
    control_register "$dp" "$num" "reg$round-$dp"
    control_remove "reg$round-$dp"
  fi
  hostd_stop "$m"
  hostd_start "$m" "${HUB_ARGS[@]}" --set "OVERLAY_DATAPATH=$dp"
  out=$(ctl_load "$m" wait-serving --url $CTL_URL --timeout 120 \
    --min-reservations "$CTL_RESERVATIONS") || fail "hostd on $m not serving after restart"
  log "  restart: $out"
  record ctl_restart_s "$dp" "$(kv serving_s "$out")"

  local runners=()
  for i in $(seq 1 16); do runners+=(--runner "$(printf 'bench-r%03d' "$i")"); done
  out=$(ctl_load "$m" reserve --url $CTL_URL "${runners[@]}" --clients 64 \
    --seconds "$CTL_SECONDS") || fail "reservation load under $dp: $out"
  [[ $(kv failures "$out") == 0 ]] || log "  reservation failures under $dp: $out"
  record ctl_reservations_per_s "$dp" "$(kv per_s "$out")"
  record ctl_reservation_p99_ms "$dp" "$(kv p99_ms "$out")"
}

# The scale hubs run with the product's default cleanup tick (10 s), as a production hub does;
# the 1 s tick of the test clusters is there to make drift repair fast in tests. Both
# datapaths alike.
SCALE_ARGS=(--set OVERLAY_SUBNET=10.0.0.0/8/12/12 --set CLEANUP_CHECK_INTERVAL_SECONDS=10)

# control_scale DP COUNT NUM: a fresh hub s<COUNT>-DP (underlay host NUM), COUNT runners
# registered. The hub is left running for control_scale_restart.
control_scale() {
  local dp=$1 count=$2 num=$3 m=s$2-$1 out t0 ready
  machine_up "$m" "$num"
  hub_up "$m" "${SCALE_ARGS[@]}" --set "OVERLAY_DATAPATH=$dp"
  t0=$(date +%s.%N)
  out=$(ctl_load "$m" register --url $CTL_URL --count "$count" \
    --clients 16) || fail "registering $count runners under $dp: $out"
  log "  scale $count: $out"
  record "ctl_scale_register_s_$count" "$dp" "$(kv wall_s "$out")"
  wait_tunnels "$m" "$count" "$dp" >/dev/null
  ready=$(elapsed "$t0")
  record "ctl_scale_tunnels_s_$count" "$dp" "$ready"
  record "ctl_scale_ms_per_runner_$count" "$dp" "$(awk -v t="$ready" -v n="$count" 'BEGIN {printf "%.3f\n", t * 1000 / n}')"
}

# control_scale_restart DP COUNT: restarts s<COUNT>-DP (SIGTERM, start): time from the start
# until the API serves (it serves only after every tunnel has been re-checked and the datapath
# adopted), then `kohakuctl node overlay` timed 3 times; the hub is removed.
control_scale_restart() {
  local dp=$1 count=$2 m=s$2-$1 out t0
  hostd_stop "$m"
  hostd_start "$m" "${SCALE_ARGS[@]}" --set "OVERLAY_DATAPATH=$dp"
  out=$(ctl_load "$m" wait-serving --url $CTL_URL --timeout 120) ||
    fail "hostd on $m not serving after a restart with $count runners"
  log "  scale restart: $out"
  record ctl_scale_restart_s "$dp" "$(kv serving_s "$out")"
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    ctl "$m" node overlay >/dev/null || fail "kohakuctl node overlay on $m under $dp"
    record ctl_scale_node_overlay_s "$dp" "$(elapsed "$t0")"
  done
  control_remove "$m"
}

# control_scale_all: every count under both datapaths (alternating, the order flipped per count).
# Each hub has its own name and address: a removed namespace may linger for a moment.
control_scale_all() {
  local count dp order=("$DP_A" "$DP_B") last=${CTL_SCALE_COUNTS##* } num=100
  for count in $CTL_SCALE_COUNTS; do
    for dp in "${order[@]}"; do
      control_scale "$dp" "$count" $((num++))
      if [[ $count == "$last" ]]; then
        control_scale_restart "$dp" "$count"
      else
        control_remove "s$count-$dp"
      fi
    done
    order=("${order[1]}" "${order[0]}")
  done
}

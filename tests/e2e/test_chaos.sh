#!/usr/bin/env bash
# Chaos: cross-node traffic and a reservation storm while kohaku-hostd and kohaku-runnerd are
# killed with -9 at random moments, many times. Afterwards every reservation the host
# acknowledged (HTTP 200 with a token) is still there, no address is held twice, the data path
# kept forwarding throughout, and every restart served again quickly.
source "$(dirname "$0")/lib/cluster.sh"

KILLS=${CHAOS_KILLS:-12}
two_runner_cluster
workloads_a_b

# Traffic across the hub for the whole run.
# nsenter execs ping, so $! is ping itself and SIGINT makes it print its summary.
nsenter --net="$(ns_path a)" ping -i 0.02 -W 1 "$b" >"$CLUSTER_DIR/ping.txt" 2>&1 &
pinger=$!
CLUSTER_PIDS+=("$pinger")

# The storm: 4 clients reserving in a loop; an acknowledged reservation is "token ip" in a file.
stop=$CLUSTER_DIR/stop-storm
storm() {
  local i=$1 runner out
  while [[ ! -e $stop ]]; do
    runner=r$((RANDOM % 2 + 1))
    out=$(api_curl hub -sS -m 2 -X POST -w '\n%{http_code}' \
      "http://127.0.0.1:8000/api/overlay/ip/reserve?runner=$runner&ttl=1800" 2>/dev/null) || continue
    [[ ${out##*$'\n'} == 200 ]] || continue
    jq -r '"\(.token) \(.ip)"' <<<"${out%$'\n'*}" >>"$CLUSTER_DIR/acked-$i"
  done
}
storm_pids=()
for i in 1 2 3 4; do
  storm "$i" &
  storm_pids+=($!)
done

# kill_and_restart hub|r1|r2: kill -9 that daemon, start it again and note the seconds from
# the start until its /healthz answered.
restart_times=()
kill_and_restart() {
  local which=$1 t0 deadline
  case $which in
    hub)
      kill -KILL "${DAEMON_PID[hostd-hub]}"
      wait "${DAEMON_PID[hostd-hub]}" 2>/dev/null || true
      t0=$(date +%s.%N)
      hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
      ;;
    r1 | r2)
      kill -KILL "${DAEMON_PID[runnerd-$which]}"
      wait "${DAEMON_PID[runnerd-$which]}" 2>/dev/null || true
      t0=$(date +%s.%N)
      runner_up "$which" hub
      ;;
  esac
  restart_times+=("$which=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')")
}

targets=(hub hub r1 hub r2 hub)
for ((k = 0; k < KILLS; k++)); do
  sleep "0.$((RANDOM % 8 + 2))"
  kill_and_restart "${targets[RANDOM % ${#targets[@]}]}"
done
sleep 0.5
touch "$stop"
wait "${storm_pids[@]}" 2>/dev/null || true
kill -INT "$pinger" 2>/dev/null || true
wait "$pinger" 2>/dev/null || true
log "restarts (s until /healthz answered): ${restart_times[*]}"

# Every acknowledged reservation survived, token and address.
cat "$CLUSTER_DIR"/acked-* >"$CLUSTER_DIR/acked" 2>/dev/null || true
acked=$(wc -l <"$CLUSTER_DIR/acked")
((acked > 100)) || fail "the storm got only $acked reservations acknowledged"
# The listing shows tokens shortened; each acknowledged token is checked whole with validate.
in_ns hub curl -fsS "http://127.0.0.1:8000/api/overlay/ip/reservations?include_used=true" |
  jq -r '.reservations[] | "\(.token) \(.ip)"' | sort >"$CLUSTER_DIR/held"
lost=0
while read -r token ip; do
  got=$(api_curl hub -fsS -X POST "http://127.0.0.1:8000/api/overlay/ip/validate?token=$token" |
    jq -r 'if .valid then .ip else "invalid" end')
  [[ $got == "$ip" ]] || { lost=$((lost + 1)); log "lost: $token $ip (validate: $got)"; }
done <"$CLUSTER_DIR/acked"
((lost == 0)) || fail "$lost of $acked acknowledged reservations were lost"
dup=$(awk '{print $2}' "$CLUSTER_DIR/held" | sort | uniq -d | wc -l)
((dup == 0)) || fail "$dup addresses are held twice"
dup_acked=$(awk '{print $2}' "$CLUSTER_DIR/acked" | sort | uniq -d | wc -l)
((dup_acked == 0)) || fail "$dup_acked addresses were handed out twice"

# The data path kept forwarding: kill -9 of a daemon leaves devices and BPF programs in place.
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$CLUSTER_DIR/ping.txt")
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$CLUSTER_DIR/ping.txt")
[[ -n $sent && -n $received ]] || fail "no ping summary: $(tail -3 "$CLUSTER_DIR/ping.txt")"
((received * 100 >= sent * 99)) || fail "traffic lost across the kills: $received of $sent"
wait_for 10 "a reaches b at the end" can_ping a "$b"

# Every restart served within a second (measured to the first /healthz answer, polled every
# 100 ms by hub_up/runner_up, so this includes up to 0.1 s of polling).
for t in "${restart_times[@]}"; do
  awk -v s="${t#*=}" 'BEGIN {exit !(s <= 1.0)}' || fail "a restart took ${t#*=} s to serve (${t%%=*}); all: ${restart_times[*]}"
done
log "chaos: $KILLS kills, $acked reservations acknowledged, 0 lost, 0 duplicates, $received/$sent pings"

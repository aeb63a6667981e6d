#!/usr/bin/env bash
# Restarts: a runner restart keeps its id and subnet; a hub restart (graceful and kill -9)
# keeps state and never interrupts traffic between runners that stay registered.
source "$(dirname "$0")/lib/cluster.sh"

two_runner_cluster
workloads_a_b

runner_id() { in_ns hub curl -fsS http://127.0.0.1:8000/api/overlay/status |
  jq -r --arg h "$1" '.allocations[] | select(.runner_name==$h) | "\(.runner_id) \(.subnet)"'; }
before=$(runner_id r2)

# Runner restart: same id, same subnet, workload still attached and reachable.
kill -TERM "${DAEMON_PID[runnerd-r2]}"
wait "${DAEMON_PID[runnerd-r2]}" || true
runner_up r2 hub
wait_for 20 "r2 overlay ready again" runner_overlay_ready r2
[[ $(runner_id r2) == "$before" ]] || fail "r2 changed allocation: '$before' -> '$(runner_id r2)'"
in_ns r2 curl -fsS http://127.0.0.1:8001/api/workloads | jq -e '.workloads | length == 1' >/dev/null ||
  fail "r2 forgot its workload across a restart"
wait_for 10 "a reaches b after runner restart" can_ping a "$b"

# A reservation made before the hub restarts must survive it, token and all.
token=$(api_curl hub -fsS -X POST 'http://127.0.0.1:8000/api/overlay/ip/reserve?runner=r1&ttl=600' | jq -r .token)
[[ -n $token && $token != null ]] || fail "reservation failed"

# Continuous traffic across the hub while kohaku-hostd is killed with -9 and restarted.
in_ns a ping -i 0.05 -c 200 -W 1 "$b" >"$CLUSTER_DIR/ping.txt" &
pinger=$!
sleep 0.5 # let the stream start before the kill: the point is to kill it mid-stream
kill -KILL "${DAEMON_PID[hostd-hub]}"
wait "${DAEMON_PID[hostd-hub]}" 2>/dev/null || true
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
wait "$pinger" || true
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$CLUSTER_DIR/ping.txt")
((received >= 199)) || fail "traffic interrupted across hub restart: $(tail -2 "$CLUSTER_DIR/ping.txt")"

[[ $(runner_id r1) == "1 10.1.0.0/16" ]] || fail "r1 allocation lost across kill -9: '$(runner_id r1)'"
valid=$(api_curl hub -fsS -X POST "http://127.0.0.1:8000/api/overlay/ip/validate?token=$token" | jq -r .valid)
[[ $valid == true ]] || fail "reservation token lost across kill -9"

# Graceful restart too.
kill -TERM "${DAEMON_PID[hostd-hub]}"
wait "${DAEMON_PID[hostd-hub]}" || fail "hostd did not exit cleanly on SIGTERM"
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
wait_for 10 "a reaches b after graceful hub restart" can_ping a "$b"
[[ $(runner_id r2) == "$before" ]] || fail "r2 allocation changed across hub restart"
log "PASS"

#!/usr/bin/env bash
# OVERLAY_DATAPATH on a runner: "kernel" masquerades with KohakuRiver's iptables rules (FORWARD
# accepts and nat MASQUERADE in the runner's namespace, added once); restarting into "bpf"
# removes them and attaches the TC programs; back to "kernel" detaches and unpins; disabling the
# overlay removes everything; a BPF datapath that cannot be loaded falls back to "kernel" with
# one warning. A deny rule added on "bpf" comes back from STATE_DIR after the pins were removed. The workload reaches the outside (seeing r1's uplink address) in every mode.
source "$(dirname "$0")/lib/cluster.sh"

OUTSIDE=192.0.2.1
PIN_ROOT=/sys/fs/bpf/kohaku-${CLUSTER_ID}/r1

status() { in_ns r1 curl -fsS -m 2 http://127.0.0.1:8001/api/overlay/status; }
our_rules() { in_ns r1 sh -c 'iptables -S FORWARD; iptables -t nat -S POSTROUTING' | grep -- '--comment kohaku-runner' || true; }
no_rules() { [[ -z $(our_rules) ]]; }
has_filters() { in_ns r1 tc filter show dev eth0 egress | grep -q runner_nat_egre; }
r1_log_lines() { wc -l <"$CLUSTER_DIR/runnerd-r1.log"; }
# restart_r1 [--set K=V ...]: SIGTERM, then start again with the arguments.
restart_r1() {
  kill -TERM "${DAEMON_PID[runnerd-r1]}"
  wait "${DAEMON_PID[runnerd-r1]}" || fail "runnerd did not exit cleanly"
  LOG_FROM=$(($(r1_log_lines) + 1))
  runner_up r1 hub "$@"
}
datapath_is() { [[ $(status | jq -r '.datapath.requested + "/" + .datapath.active') == "$1" ]]; }
expect_kernel_rules() {
  local rules
  rules=$(our_rules)
  [[ $rules == "-A FORWARD -s 10.0.0.0/8 -m comment --comment kohaku-runner -j ACCEPT
-A FORWARD -d 10.0.0.0/8 -m comment --comment kohaku-runner -j ACCEPT
-A POSTROUTING -s 10.0.0.0/8 ! -d 10.0.0.0/8 -m comment --comment kohaku-runner -j MASQUERADE" ]] ||
    fail "iptables rules in r1: '$rules'"
}
# reaches_outside: TCP from the workload; the outside must see r1's uplink address.
reaches_outside() {
  local seen
  seen=$(in_ns a timeout 5 socat -T 3 - "TCP:$OUTSIDE:7100,connect-timeout=3" </dev/null) ||
    fail "a -> outside TCP ($1)"
  [[ $seen == "${HOST_IP[r1]}" ]] || fail "outside saw '$seen', not ${HOST_IP[r1]} ($1)"
  can_ping a "$OUTSIDE" >/dev/null || fail "a -> outside ping ($1)"
}

fabric_up
machine_up hub 1
machine_up r1 11
outside_up "$OUTSIDE" r1
hub_up hub --set OVERLAY_SUBNET=10.0.0.0/8/8/16
LOG_FROM=1
runner_up r1 hub --set OVERLAY_DATAPATH=kernel
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 10 "r1 on the kernel datapath" datapath_is kernel/kernel
bg_in outside socat TCP-LISTEN:7100,reuseaddr,fork SYSTEM:'echo $SOCAT_PEERADDR'
wait_for 10 "listener on the outside" in_ns outside sh -c "ss -ltn | grep -q ':7100 '"
a=$(workload_up r1 a)

# --- kernel: the three rules, once, also after a restart; no BPF anywhere.
expect_kernel_rules
status | jq -e '(.datapath.iptables_rules | length) == 3 and (.datapath | has("reason") | not)' >/dev/null ||
  fail "kernel status: $(status | jq -c .datapath)"
has_filters && fail "kernel mode attached the NAT programs"
[[ -e $PIN_ROOT/runner ]] && fail "kernel mode pinned BPF objects"
reaches_outside kernel
restart_r1 --set OVERLAY_DATAPATH=kernel
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 10 "kernel again" datapath_is kernel/kernel
expect_kernel_rules # -C before -A: no duplicates
reaches_outside kernel-restarted

# --- kernel -> bpf: programs attached, rules gone.
restart_r1
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 10 "bpf" datapath_is bpf/bpf
wait_for 5 "kernel rules removed" no_rules
has_filters || fail "bpf mode did not attach the NAT programs"
[[ -e $PIN_ROOT/runner/runner_ct ]] || fail "bpf mode did not pin the conntrack"
reaches_outside bpf
(($(status | jq .datapath.counters.egress_translated) > 0)) || fail "bpf mode did not translate"
# A deny rule: kept in STATE_DIR as well as in the pinned map (which a switch to the kernel
# datapath, or a reboot, removes). A connection to the port it names is dropped, not refused.
deny='{"destination": "192.0.2.1", "protocol": "tcp", "port": 7101}'
api_curl r1 -fsS -X POST -d "$deny" http://127.0.0.1:8001/api/policy/deny | jq -e .added >/dev/null ||
  fail "adding a deny rule"
jq -e '.rules == [{"source": "any", "destination": "192.0.2.1/32", "protocol": "tcp", "port": 7101}]' \
  "$CLUSTER_DIR/r1-state/deny-rules.json" >/dev/null || fail "deny rule not stored: $(cat "$CLUSTER_DIR/r1-state/deny-rules.json")"
deny_hits() { status | jq -e '.datapath.deny_rules[0].hits >= 1' >/dev/null; }
in_ns a timeout 3 socat -T 1 - "TCP:$OUTSIDE:7101,connect-timeout=1" </dev/null 2>/dev/null || true
deny_hits || fail "the deny rule did not drop: $(status | jq -c .datapath.deny_rules)"

# --- bpf -> kernel: filters detached from every device, pins removed, rules back.
restart_r1 --set OVERLAY_DATAPATH=kernel
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 10 "kernel" datapath_is kernel/kernel
has_filters && fail "switching to kernel left the NAT programs attached"
in_ns r1 tc filter show dev kohaku-overlay egress | grep -q runner_forward_ && fail "forward filter left attached"
[[ -e $PIN_ROOT/runner ]] && fail "switching to kernel left pins: $(ls "$PIN_ROOT/runner")"
expect_kernel_rules
reaches_outside kernel-again

# --- overlay disabled: nothing of either datapath stays.
restart_r1 --set OVERLAY_DATAPATH=kernel --set OVERLAY_ENABLED=False
wait_for 10 "kernel rules removed when disabled" no_rules
restart_r1
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 10 "bpf" datapath_is bpf/bpf
# The pins went with the switch to kernel: the rule came back from STATE_DIR, hits from zero.
status | jq -e '[.datapath.deny_rules[] | {destination, protocol, port, hits}] ==
  [{"destination": "192.0.2.1/32", "protocol": "tcp", "port": 7101, "hits": 0}]' >/dev/null ||
  fail "deny rule not restored: $(status | jq -c .datapath.deny_rules)"
restart_r1 --set OVERLAY_ENABLED=False
# The API may answer a moment before the control loop's clean-up has run.
wait_for 10 "NAT programs detached when disabled" eval '! has_filters'
wait_for 10 "pins removed when disabled" test ! -e "$PIN_ROOT/runner"

# --- BPF cannot be loaded (the pin root lies below a regular file): one warning, kernel path.
touch "$CLUSTER_DIR/not-a-directory"
restart_r1 --set "BPF_PIN_ROOT=$CLUSTER_DIR/not-a-directory/pins"
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 10 "fallback" datapath_is bpf/kernel
expect_bpf_fallback "$CLUSTER_DIR/runnerd-r1.log" "$(status | jq -r .datapath.reason)"
expect_kernel_rules
reaches_outside fallback
log "PASS"

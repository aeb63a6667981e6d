#!/usr/bin/env bash
# OVERLAY_DATAPATH on the hub: "kernel" forwards with ip_forward and FORWARD accept rules; a
# restart into the other mode removes the previous mode's leftovers (rules, or TC filters and
# pins); a BPF datapath that cannot be loaded falls back to the kernel path with one warning and
# says so in the status.
source "$(dirname "$0")/lib/cluster.sh"

HUB_ARGS=(--set OVERLAY_SUBNET=10.0.0.0/8/8/16)
PIN_ROOT=/sys/fs/bpf/kohaku-${CLUSTER_ID}/hub

status() { in_ns hub curl -fsS -m 2 http://127.0.0.1:8000/api/overlay/status; }
snmp() {
  in_ns "$1" awk -v g="$2:" -v f="$3" \
    '$1 == g { if (!c) { for (i = 2; i <= NF; i++) if ($i == f) c = i } else print $c }' /proc/net/snmp
}
forward_rules() { in_ns hub iptables -S FORWARD | grep -- '--comment kohaku-overlay' || true; }
has_filter() { in_ns hub tc filter show dev "$1" ingress | grep -q host_forward; }
hostd_log_lines() { wc -l <"$CLUSTER_DIR/hostd-hub.log"; }
# restart_hub [--set K=V ...]: SIGTERM, then start again with HUB_ARGS plus the arguments.
restart_hub() {
  kill -TERM "${DAEMON_PID[hostd-hub]}"
  wait "${DAEMON_PID[hostd-hub]}" || fail "hostd did not exit cleanly"
  LOG_FROM=$(($(hostd_log_lines) + 1))
  hub_up hub "${HUB_ARGS[@]}" "$@"
}
expect_datapath() {
  local want=$1 got
  got=$(status | jq -r '.datapath.requested + "/" + .datapath.active')
  [[ $got == "$want" ]] || fail "datapath requested/active is $got, expected $want"
}
# expect_kernel_rules: exactly our two accept rules for the overlay CIDR.
expect_kernel_rules() {
  local rules
  rules=$(forward_rules)
  [[ $rules == "-A FORWARD -s 10.0.0.0/8 -m comment --comment kohaku-overlay -j ACCEPT
-A FORWARD -d 10.0.0.0/8 -m comment --comment kohaku-overlay -j ACCEPT" ]] ||
    fail "FORWARD rules in the hub: '$rules'"
  [[ $(in_ns hub sysctl -n net.ipv4.ip_forward) == 1 ]] || fail "kernel mode left ip_forward off"
}
# expect_rules_on_top: ours are rules 1 and 2 of FORWARD, above the REJECT appended before start.
expect_rules_on_top() {
  local top
  top=$(in_ns hub iptables -S FORWARD | sed -n 2,3p)
  [[ $top == "$(forward_rules)" ]] || fail "our FORWARD rules are not at the top: $(in_ns hub iptables -S FORWARD)"
}
# pings_via kernel|bpf: 20 pings a -> b; the hub kernel forwards them (kernel) or not at all (bpf).
pings_via() {
  local before
  before=$(snmp hub Ip ForwDatagrams)
  in_ns a ping -q -c 20 -i 0.01 -W 1 "$b" >/dev/null || fail "a -> b ($1)"
  if [[ $1 == kernel ]]; then
    (($(snmp hub Ip ForwDatagrams) - before >= 40)) || fail "kernel mode: hub did not forward"
  else
    (($(snmp hub Ip ForwDatagrams) == before)) || fail "bpf mode: hub kernel forwarded"
  fi
}

cluster_machines_up
LOG_FROM=1
# A firewall's catch-all REJECT, there before the host starts: the accept rules must go above it.
in_ns hub iptables -A FORWARD -j REJECT
hub_up hub "${HUB_ARGS[@]}" --set OVERLAY_DATAPATH=kernel
runners_ready hub r1 r2
a=$(workload_up r1 a)
b=$(workload_up r2 b)

# --- kernel: rules (once, even after a restart), kernel forwarding, no BPF anywhere.
wait_for 10 "a reaches b (kernel)" can_ping a "$b"
expect_datapath kernel/kernel
expect_kernel_rules
expect_rules_on_top
status | jq -e '.datapath.counters == [] and (.datapath | has("reason") | not)' >/dev/null ||
  fail "kernel mode status: $(status | jq -c .datapath)"
has_filter vxkr1 && fail "kernel mode attached host_forward"
[[ -e $PIN_ROOT/host ]] && fail "kernel mode pinned BPF objects"
pings_via kernel
restart_hub --set OVERLAY_DATAPATH=kernel
expect_kernel_rules # idempotent: no duplicates
expect_rules_on_top
pings_via kernel
# The BPF datapath does not go through FORWARD for what it forwards, but the first packets to a
# new neighbour do: the REJECT is the kernel path's test only.
in_ns hub iptables -D FORWARD -j REJECT
ctl hub node overlay | grep -q '^Datapath: *kernel$' || fail "kohakuctl does not show kernel"

# --- kernel -> bpf: filters and pins appear, the rules go, the kernel stops forwarding.
restart_hub
expect_datapath bpf/bpf
[[ -z $(forward_rules) ]] || fail "switching to bpf left FORWARD rules: $(forward_rules)"
has_filter vxkr1 && has_filter vxkr2 || fail "bpf mode did not attach host_forward"
[[ -e $PIN_ROOT/host/host_forward ]] || fail "bpf mode did not pin host_forward"
wait_for 10 "a reaches b (bpf)" can_ping a "$b"
pings_via bpf

# --- bpf -> kernel: filters detached, pins removed, rules back, traffic flows.
restart_hub --set OVERLAY_DATAPATH=kernel
expect_datapath kernel/kernel
has_filter vxkr1 || has_filter vxkr2 && fail "switching to kernel left host_forward attached"
[[ -e $PIN_ROOT/host ]] && fail "switching to kernel left pins: $(ls "$PIN_ROOT/host")"
expect_kernel_rules
pings_via kernel

# --- BPF cannot be loaded (the pin root lies below a regular file): one warning, kernel path.
touch "$CLUSTER_DIR/not-a-directory"
restart_hub --set "BPF_PIN_ROOT=$CLUSTER_DIR/not-a-directory/pins"
expect_datapath bpf/kernel
expect_bpf_fallback "$CLUSTER_DIR/hostd-hub.log" "$(status | jq -r .datapath.reason)"
tail -n +"$LOG_FROM" "$CLUSTER_DIR/hostd-hub.log" | grep -q 'serving the API .* datapath=bpf (active: kernel)' ||
  fail "the start-up line does not show the active datapath"
expect_kernel_rules
pings_via kernel
overlay=$(ctl hub node overlay)
grep -q '^Datapath: *kernel (requested bpf)$' <<<"$overlay" || fail "kohakuctl: $overlay"
grep -q '^Datapath fallback: BPF datapath could not be loaded' <<<"$overlay" || fail "kohakuctl: $overlay"
log "PASS"

#!/usr/bin/env bash
# KohakuRiver's "Custom IP scheme" (docs, configuration.md): OVERLAY_HOST_IP 172.16.0.1 with
# OVERLAY_HOST_PREFIX 12 and an OVERLAY_SUBNET inside it, written in the hub's
# ~/.kohakuriver/host_config.py (read without --config), one runner with its own
# OVERLAY_BRIDGE_NAME. Workloads on both runners reach each other and the host's address; the
# hub refuses an OVERLAY_HOST_IP outside the OVERLAY_SUBNET, naming both keys.
source "$(dirname "$0")/lib/cluster.sh"

fabric_up
machine_up hub 1
machine_up r1 11
machine_up r2 12

home="$CLUSTER_DIR/hub-home"
mkdir -p "$home/.kohakuriver"
cat >"$home/.kohakuriver/host_config.py" <<'PY'
# Overlay Network Configuration (VXLAN Hub), as KohakuRiver's docs write it
OVERLAY_BRIDGE_NAME: str = "kohaku-overlay"
OVERLAY_HOST_IP: str = "172.16.0.1"
OVERLAY_HOST_PREFIX: int = 12
OVERLAY_SUBNET: str = "172.16.0.0/12/8/12"
PY
HOME="$home" hub_up hub
grep -q "reading $home/.kohakuriver/host_config.py (no --config given)" "$CLUSTER_DIR/hostd-hub.log" ||
  fail "hub did not say it read its home config: $(cat "$CLUSTER_DIR/hostd-hub.log")"
! grep -q "unknown key" "$CLUSTER_DIR/hostd-hub.log" || fail "hub warned about a KohakuRiver key"
in_ns hub ip -4 addr show kohaku-host | grep -q "inet 172.16.0.1/12 " ||
  fail "kohaku-host lacks 172.16.0.1/12: $(in_ns hub ip -4 addr show kohaku-host)"

printf 'OVERLAY_BRIDGE_NAME = "kr-overlay"\n' >"$CLUSTER_DIR/r2_runner_config.py"
runner_up r1 hub
runner_up r2 hub --config "$CLUSTER_DIR/r2_runner_config.py"
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 20 "r2 overlay ready" runner_overlay_ready r2
in_ns r1 ip -4 addr show kohaku-overlay | grep -q "172.16.16.1/20" || fail "r1 bridge lacks 172.16.16.1/20"
in_ns r2 ip -4 addr show kr-overlay | grep -q "172.16.32.1/20" ||
  fail "r2's OVERLAY_BRIDGE_NAME bridge lacks 172.16.32.1/20: $(in_ns r2 ip -br link)"
! in_ns r2 ip link show kohaku-overlay >/dev/null 2>&1 || fail "r2 built kohaku-overlay too"
in_ns r2 ip -d link show vxlan0 | grep -q "master kr-overlay" || fail "vxlan0 not on kr-overlay"

a1=$(workload_up r1 a1)
b1=$(workload_up r2 b1)
log "workloads: a1=$a1 b1=$b1"
# Runner 1 holds 172.16.16.0/20, runner 2 172.16.32.0/20; the first workloads get their first IPs.
[[ $a1 == 172.16.16.* ]] || fail "a1 $a1 not in r1's 172.16.16.0/20"
[[ $b1 == 172.16.32.* ]] || fail "b1 $b1 not in r2's 172.16.32.0/20"
wait_for 10 "a1 reaches b1 across runners" can_ping a1 "$b1"
wait_for 10 "b1 reaches a1 across runners" can_ping b1 "$a1"
wait_for 10 "b1 reaches the host's OVERLAY_HOST_IP" can_ping b1 172.16.0.1
wait_for 10 "a1 reaches the host's OVERLAY_HOST_IP" can_ping a1 172.16.0.1

# kohakuctl shows the docs' panel for it.
overlay=$(ctl hub node overlay)
grep -Eq '^Host IP: +172\.16\.0\.1/12$' <<<"$overlay" || fail "node overlay host IP: $overlay"
grep -Eq '^Subnet config: +172\.16\.0\.0/12/8/12$' <<<"$overlay" || fail "node overlay scheme: $overlay"
grep -Eq '^Available IDs: +253/255$' <<<"$overlay" || fail "node overlay ids: $overlay"
grep -Eq '^r2 +2 +172\.16\.32\.0/20 +172\.16\.32\.1 ' <<<"$overlay" || fail "node overlay r2 row: $overlay"
view=$(ctl hub node overlay r2)
grep -q "Bridge kr-overlay: *up" <<<"$view" || fail "node overlay r2 lacks its bridge: $view"

# Inconsistent keys are refused at start, naming both.
out=$(in_ns hub timeout 10 "$KOHAKU_BIN_DIR/kohaku-hostd" --config "$home/.kohakuriver/host_config.py" \
  --set OVERLAY_HOST_IP=10.0.0.1 --set HOST_PORT=8009 --set "STATE_DIR=$CLUSTER_DIR/bad-state" 2>&1) &&
  fail "hostd started with OVERLAY_HOST_IP outside OVERLAY_SUBNET"
grep -q "OVERLAY_HOST_IP = '10.0.0.1': is outside the overlay network 172.16.0.0/12 of OVERLAY_SUBNET" <<<"$out" ||
  fail "refusal does not name both keys: $out"
log "PASS"

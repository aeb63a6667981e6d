#!/usr/bin/env bash
# firewalld (Debian's package, the real daemon) on the hub and on one runner, each confined to
# the machine's network namespace with a private D-Bus daemon and its own --system-config
# directory: the daemons put the overlay's interfaces into the trusted zone (runtime only) and
# open the VXLAN port, re-apply that at every start, take an interface out when its device goes,
# and with firewalld in place traffic crosses the hub. A runner without firewalld (no bus)
# attempts nothing and logs no error. Nothing outside the cluster's namespaces changes.
source "$(dirname "$0")/lib/cluster.sh"

command -v firewalld >/dev/null || fail "firewalld is not installed (tools/install-deps)"
command -v dbus-daemon >/dev/null || fail "dbus-daemon is not installed (tools/install-deps)"

bus_of() { echo "unix:path=$CLUSTER_DIR/firewalld-$1/bus.sock"; }
fw() {
  local m=$1
  shift
  in_ns "$m" env DBUS_SYSTEM_BUS_ADDRESS="$(bus_of "$m")" firewall-cmd "$@"
}
# firewalld_up MACHINE: a private system bus and a firewalld on it, in MACHINE's namespace.
firewalld_up() {
  local m=$1 dir="$CLUSTER_DIR/firewalld-$1"
  mkdir -p "$dir/etc"
  cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/> <allow own="*"/> <allow send_destination="*"/> <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
  # Its own configuration directory instead of /etc/firewalld, so nothing there changes.
  printf 'DefaultZone=public\nFirewallBackend=nftables\nCleanupOnExit=yes\nLogDenied=off\n' \
    >"$dir/etc/firewalld.conf"
  run_daemon "$m" dbus-"$m" dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile
  wait_for 10 "private D-Bus on $m" test -S "$dir/bus.sock"
  # A mount namespace of its own with a tmpfs on /run: firewalld makes /run/firewalld (its temp
  # dir) at start, which must not appear on this machine. Its log goes to the cluster dir.
  run_daemon "$m" firewalld-"$m" env DBUS_SYSTEM_BUS_ADDRESS="$(bus_of "$m")" \
    unshare --mount --propagation private sh -c 'mount -t tmpfs kohaku-fw-run /run && exec "$@"' \
    firewalld firewalld --nofork --nopid --system-config "$dir/etc" --log-target console
  wait_for 60 "firewalld on $m" fw "$m" --state
}
trusted() { fw "$1" --zone=trusted --list-interfaces | tr ' ' '\n' | grep -qx "$2"; }
not_trusted() { ! trusted "$@"; }
restart_hub() {
  kill -TERM "${DAEMON_PID[hostd-hub]}"
  wait "${DAEMON_PID[hostd-hub]}" || fail "hostd did not exit cleanly"
  DBUS_SYSTEM_BUS_ADDRESS=$(bus_of hub) hub_up hub "${HUB_ARGS[@]}"
}

root_nft_before=$(nft list ruleset 2>/dev/null | sha256sum)
etc_before=$(find /etc/firewalld -type f -exec sha256sum {} + 2>/dev/null | sort | sha256sum)
run_before=$(ls -d /run/firewalld /var/log/firewalld 2>/dev/null || true)

# The kernel datapath by default: its forwarding goes through firewalld's FORWARD hook, which
# the BPF one bypasses, so the zones matter most there.
HUB_ARGS=(--set OVERLAY_SUBNET=10.0.0.0/8/8/16 --set "OVERLAY_DATAPATH=${DATAPATH:-kernel}")
fabric_up
machine_up hub 1
machine_up r1 11
machine_up r2 12
firewalld_up hub
firewalld_up r1
# The API ports are the operator's to open, as with KohakuRiver: the daemons open only VXLAN's.
fw hub --add-port=8000/tcp >/dev/null
fw r1 --add-port=8001/tcp >/dev/null
# The hub's default zone is public: without our changes it refuses VXLAN and forwarding.
DBUS_SYSTEM_BUS_ADDRESS=$(bus_of hub) hub_up hub "${HUB_ARGS[@]}"
wait_for 10 "VXLAN port open on the hub" fw hub --query-port=4789/udp
DBUS_SYSTEM_BUS_ADDRESS=$(bus_of r1) runner_up r1 hub
runner_up r2 hub # no firewalld on r2: its bus leads nowhere
wait_for 20 "r1 overlay ready" runner_overlay_ready r1
wait_for 20 "r2 overlay ready" runner_overlay_ready r2

# --- the hub: every vxkr device in the trusted zone; the runner: bridge and vxlan0.
wait_for 10 "vxkr1 trusted on the hub" trusted hub vxkr1
wait_for 10 "vxkr2 trusted on the hub" trusted hub vxkr2
wait_for 10 "kohaku-overlay trusted on r1" trusted r1 kohaku-overlay
wait_for 10 "vxlan0 trusted on r1" trusted r1 vxlan0
fw r1 --query-port=4789/udp >/dev/null || fail "r1: VXLAN port not open"
# Runtime only: the permanent configuration knows none of it.
[[ -z $(fw hub --permanent --zone=trusted --list-interfaces) ]] ||
  fail "the hub wrote permanent configuration: $(fw hub --permanent --zone=trusted --list-interfaces)"
grep -q 'firewalld is running: overlay interfaces go into its trusted zone' \
  "$CLUSTER_DIR/hostd-hub.log" || fail "the hub did not say it found firewalld"
grep -qi 'firewalld' "$CLUSTER_DIR/runnerd-r2.log" &&
  fail "r2 has no firewalld and should not mention it: $(grep -i firewalld "$CLUSTER_DIR/runnerd-r2.log")"

# --- traffic crosses the hub with its firewalld in place.
a=$(workload_up r1 a)
b=$(workload_up r2 b)
wait_for 10 "a reaches b through the hub's firewalld" can_ping a "$b"

# --- named L2 network: kbr-<name> and vxlan<VNI> on r1 trusted; out again when it is deleted.
created=$(api_curl hub -fsS -X POST -H 'Content-Type: application/json' \
  -d '{"name": "fwnet", "subnet": "172.20.0.0/24", "runners": ["r1", "r2"]}' \
  http://127.0.0.1:8000/api/networks) || fail "creating the named network"
vni=$(jq -r .vni <<<"$created")
[[ $vni =~ ^[0-9]+$ ]] || fail "no VNI for fwnet: '$vni'"
wait_for 20 "kbr-fwnet trusted on r1" trusted r1 kbr-fwnet
wait_for 20 "vxlan$vni trusted on r1" trusted r1 "vxlan$vni"
api_curl hub -fsS -X DELETE "http://127.0.0.1:8000/api/networks/fwnet?force=true" >/dev/null ||
  fail "deleting the named network"
wait_for 20 "kbr-fwnet out of the trusted zone" not_trusted r1 kbr-fwnet
wait_for 20 "vxlan$vni out of the trusted zone" not_trusted r1 "vxlan$vni"

# --- re-applied at every start: what an operator removed comes back with the next start.
fw hub --zone=trusted --remove-interface=vxkr2 >/dev/null
fw hub --remove-port=4789/udp >/dev/null
not_trusted hub vxkr2 || fail "could not take vxkr2 out by hand"
restart_hub
wait_for 10 "vxkr2 trusted again after the restart" trusted hub vxkr2
wait_for 10 "VXLAN port open again after the restart" fw hub --query-port=4789/udp

# --- a device that goes away leaves the zone: r2 stops, goes inactive, is released.
kill -TERM "${DAEMON_PID[runnerd-r2]}"
wait "${DAEMON_PID[runnerd-r2]}" || true
inactive() { api_curl hub -fsS http://127.0.0.1:8000/api/overlay/status | jq -e '.allocations[] | select(.runner_name == "r2") | .is_active == false' >/dev/null; }
wait_for 30 "r2 inactive" inactive
api_curl hub -fsS -X POST http://127.0.0.1:8000/api/overlay/release/r2 | jq -e '.released == true' >/dev/null ||
  fail "releasing r2"
wait_for 10 "vxkr2 out of the trusted zone" not_trusted hub vxkr2
trusted hub vxkr1 || fail "vxkr1 left the trusted zone with vxkr2"

# --- nothing outside the namespaces changed.
[[ $(nft list ruleset 2>/dev/null | sha256sum) == "$root_nft_before" ]] ||
  fail "the root namespace's nftables ruleset changed"
[[ $(find /etc/firewalld -type f -exec sha256sum {} + 2>/dev/null | sort | sha256sum) == "$etc_before" ]] ||
  fail "/etc/firewalld changed"
[[ $(ls -d /run/firewalld /var/log/firewalld 2>/dev/null || true) == "$run_before" ]] ||
  fail "firewalld left /run/firewalld or /var/log/firewalld on this machine"
log "PASS"

#!/usr/bin/env bash
# The main job on one machine: three emulated hypervisors (each its own
# ovsdb-server + ovs-vswitchd in a network namespace, VMs on veth ports, an
# L2 underlay), a dlb-agent on each, and a group of servers behind a VIP.
# Clients on two hosts open connections to the VIP; each host balances its
# own VMs' connections in its own Open vSwitch. Then a member is drained.
# Everything is torn down at the end (KEEP=1 leaves it running).
#
# The controller is not in the demo yet: the agents read the group from a
# file, which the demo rewrites.
set -euo pipefail
cd "$(dirname "$0")/.."
tb() { bin/dlb-testbed --name demo "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }

RUN=/run/dlb-testbed/demo
WORK=$(mktemp -d /tmp/dlb-demo.XXXXXX)
GROUPS_FILE=$WORK/groups.yaml
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" != 1 ]; then say "Tearing down"; tb down; rm -rf "$WORK"; fi
}
trap cleanup EXIT

write_group() { # $1: state of s3
  cat > "$GROUPS_FILE.tmp" <<EOF
groups:
  - name: web
    vip: 10.96.0.10
    ports: [{protocol: tcp, port: 80, target_port: 8080}, {protocol: udp, port: 53, target_port: 5353}]
    members:
      - {ip: 10.0.0.11, mac: "02:00:0a:00:00:0b", weight: 100}
      - {ip: 10.0.0.12, mac: "02:00:0a:00:00:0c", weight: 200}
      - {ip: 10.0.0.13, mac: "02:00:0a:00:00:0d", weight: 100, state: $1}
EOF
  mv "$GROUPS_FILE.tmp" "$GROUPS_FILE"
}

say "Bringing up three emulated hypervisors (testbed/topologies/three-hosts.yaml)"
tb up -f testbed/topologies/three-hosts.yaml

say "Starting a dlb-agent on each host, with group 'web': VIP 10.96.0.10:80 -> s1 (h1), s2 (h2, weight 200), s3 (h3)"
write_group active
for h in h1 h2 h3; do
  bin/dlb-agent --ovsdb "unix:$RUN/$h/db.sock" --bridge br-int --own-bridge -f "$GROUPS_FILE" \
    --metrics-addr "127.0.0.1:0" > "$WORK/agent-$h.log" 2>&1 &
  pids+=($!)
done
for h in h1 h2 h3; do
  for _ in $(seq 100); do grep -q "reconciled" "$WORK/agent-$h.log" && break; sleep 0.05; done
  grep -q "reconciled" "$WORK/agent-$h.log" || { echo "agent on $h did not start:"; cat "$WORK/agent-$h.log"; exit 1; }
done
echo "agents running; their logs are in $WORK"

say "c1 (on h1) opens 600 new TCP connections to the VIP: shares follow the weights 1:2:1"
tb load c1 10.96.0.10:80 --count 600
say "c2 (on h2) sends 600 UDP datagrams to the VIP"
tb load c2 10.96.0.10:53 --proto udp --count 600

say "h1's pipeline, as an admin reads it (ovs-ofctl --names; groups abbreviated)"
ovs-ofctl -O OpenFlow15 --names --no-stats dump-flows "unix:$RUN/h1/br-int.mgmt" | grep -v "in_port=" | cut -c1-180
ovs-ofctl -O OpenFlow15 dump-groups "unix:$RUN/h1/br-int.mgmt" | cut -c1-200

say "Draining s3: it takes no new connections (established ones would finish)"
write_group draining
sleep 0.5
tb load c1 10.96.0.10:80 --count 400

if [ "${KEEP:-0}" = 1 ]; then
  trap - EXIT
  say "Left running (agents too, pids ${pids[*]}). Poke at it:"
  cat <<TIPS
  bin/dlb-testbed --name demo load c3 10.96.0.10:80 --count 300
  ovs-ofctl -O OpenFlow15 --names dump-flows unix:$RUN/h2/br-int.mgmt
  edit $GROUPS_FILE (the agents pick changes up)
  kill ${pids[*]}; bin/dlb-testbed --name demo down
TIPS
fi

#!/usr/bin/env bash
# The main job on one machine: brings up the three-hypervisor testbed
# (each host its own ovsdb-server + ovs-vswitchd in a network namespace,
# VMs on veth ports, an L2 underlay between hosts), shows traffic between
# VMs on different hosts, and tears it down again (KEEP=1 leaves it up).
#
# The DLB's agent and controller are not in the demo yet: until they are,
# every bridge forwards with NORMAL, as a hypervisor without the DLB would.
set -euo pipefail
cd "$(dirname "$0")/.."
tb() { bin/dlb-testbed --name demo "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }

say "Bringing up three emulated hypervisors (testbed/topologies/three-hosts.yaml)"
tb up -f testbed/topologies/three-hosts.yaml
if [ "${KEEP:-0}" != 1 ]; then trap 'say "Tearing down"; tb down' EXIT; fi

say "c1 on h1 pings s3 on h3 across the underlay"
tb exec c1 -- ping -c 3 -i 0.2 10.0.0.13 | tail -2

say "c1 asks s2 (on h2) over HTTP: the built-in server answers with its name"
tb exec c1 -- curl -s http://10.0.0.12:8080/

say "c1 opens 2000 new TCP connections to s2, each from a fresh source port"
tb load c1 10.0.0.12:8080 --count 2000 --concurrency 8

say "c2 sends 1000 UDP datagrams to s3 over IPv6"
tb load c2 '[fd00::13]:5353' --proto udp --count 1000

say "What h1's bridge holds (no DLB yet: one NORMAL flow), read with ovs-ofctl"
ovs-ofctl -O OpenFlow15 --names dump-flows "unix:/run/dlb-testbed/demo/h1/br-int.mgmt"

say "h1's VM ports in its OVSDB, with the iface-id and attached-mac hypervisors set"
ovs-vsctl --db=unix:/run/dlb-testbed/demo/h1/db.sock --columns=name,ofport,external_ids list Interface c1 s1

if [ "${KEEP:-0}" = 1 ]; then
  say "Left running. Poke at it:"
  cat <<'TIPS'
  bin/dlb-testbed --name demo status
  bin/dlb-testbed --name demo exec c1 -- curl -s http://10.0.0.13:8080/
  bin/dlb-testbed --name demo load c3 10.0.0.11:8080 --count 500
  ovs-ofctl -O OpenFlow15 --names dump-flows unix:/run/dlb-testbed/demo/h2/br-int.mgmt
  bin/dlb-testbed --name demo down
TIPS
fi

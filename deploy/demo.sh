#!/usr/bin/env bash
# The main job on one machine: three emulated hypervisors (each its own
# ovsdb-server + ovs-vswitchd in a network namespace, VMs on veth ports, an
# L2 underlay), a dlb-controller with its embedded ovsdb-server, and a
# dlb-agent on each host following it. A group of servers behind a VIP is
# created with dlbctl; clients on two hosts open connections to the VIP,
# each host balancing its own VMs' connections in its own Open vSwitch.
# Then a member is drained. Everything is torn down at the end (KEEP=1
# leaves it running).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin} # where the binaries are (make build puts them in bin/)
tb() { "$BIN/dlb-testbed" --name demo "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }

RUN=/run/dlb-testbed/demo
PORT=${DEMO_PORT:-18470}
export DLB_SERVER=http://127.0.0.1:$PORT
dlbctl() { "$BIN/dlbctl" "$@"; }
pids=()
if curl -s -o /dev/null "$DLB_SERVER/healthz"; then
  echo "demo: something already answers on 127.0.0.1:$PORT (a demo left running with KEEP=1?); stop it, or set DEMO_PORT" >&2
  exit 1
fi
WORK=$(mktemp -d /tmp/dlb-demo.XXXXXX)

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" != 1 ]; then say "Tearing down"; tb down; rm -rf "$WORK"; fi
}
trap cleanup EXIT
wait_for() { # $1: what, $2: command that succeeds when ready
  for _ in $(seq 200); do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "demo: $1 not ready" >&2; return 1
}

say "Bringing up three emulated hypervisors (testbed/topologies/three-hosts.yaml)"
tb up -f testbed/topologies/three-hosts.yaml

say "Starting dlb-controller (its own ovsdb-server on $WORK/controller) on 127.0.0.1:$PORT"
"$BIN/dlb-controller" --listen "127.0.0.1:$PORT" --data-dir "$WORK/controller" > "$WORK/controller.log" 2>&1 &
pids+=($!)
wait_for "dlb-controller" "kill -0 $! && curl -sf $DLB_SERVER/readyz" || { cat "$WORK/controller.log"; exit 1; }

say "Starting a dlb-agent on each host, following the controller"
for h in h1 h2 h3; do
  "$BIN/dlb-agent" --ovsdb "unix:$RUN/$h/db.sock" --bridge br-int --own-bridge --controller "$DLB_SERVER" \
    --host-id "$h" --state-dir "$WORK/agent-$h" --metrics-addr "127.0.0.1:0" > "$WORK/agent-$h.log" 2>&1 &
  pids+=($!)
done
for h in h1 h2 h3; do
  wait_for "agent on $h" "grep -q 'registered with the controller' $WORK/agent-$h.log" || { cat "$WORK/agent-$h.log"; exit 1; }
done
dlbctl host list

say "dlbctl group create: 'web', VIP 10.96.0.10 (tcp/80 -> 8080, udp/53 -> 5353) -> s1 (h1), s2 (h2, weight 200), s3 (h3)"
dlbctl group create -f - <<EOF
name: web
vip: 10.96.0.10
ports: [{protocol: tcp, port: 80, target_port: 8080}, {protocol: udp, port: 53, target_port: 5353}]
members:
  - {ip: 10.0.0.11}
  - {ip: 10.0.0.12, weight: 200}
  - {ip: 10.0.0.13}
EOF
wait_for "the group on every host" "dlbctl group get web | grep -q 'Applied: *3/3'"
dlbctl group get web

say "c1 (on h1) opens 300 new TCP connections to the VIP: shares follow the weights 1:2:1"
tb load c1 10.96.0.10:80 --count 300
say "c2 (on h2) opens 300 more, and sends 300 UDP datagrams"
tb load c2 10.96.0.10:80 --count 300
tb load c2 10.96.0.10:53 --proto udp --count 300

say "h1's pipeline for the group, as an admin reads it (ovs-ofctl --names; VM port flows left out)"
ovs-ofctl -O OpenFlow15 --names --no-stats dump-flows "unix:$RUN/h1/br-int.mgmt" | grep -v "in_port=" | cut -c1-180
ovs-ofctl -O OpenFlow15 dump-groups "unix:$RUN/h1/br-int.mgmt" | cut -c1-200

say "dlbctl group stats web --by-host: each member's new connections, counted by every host's agent and summed by the controller"
wait_for "every connection counted" "dlbctl group stats web | awk '\$1==\"tcp/80\"{t+=\$6} \$1==\"udp/53\"{u+=\$6} END{exit !(t>=600 && u>=300)}'"
dlbctl group stats web --by-host

say "dlbctl member drain web 10.0.0.13: s3 takes no new connections (established ones would finish)"
dlbctl member drain web 10.0.0.13
wait_for "the drain on every host" "dlbctl group get web | grep -q 'Applied: *3/3'"
tb load c1 10.96.0.10:80 --count 300
tb load c2 10.96.0.10:80 --count 300

say "The store, as an admin reads it (ovsdb-client dump, Member table)"
ovsdb-client dump "unix:$WORK/controller/db.sock" DLB Member

if [ "${KEEP:-0}" = 1 ]; then
  trap - EXIT
  say "Left running (controller and agents: pids ${pids[*]}). Poke at it:"
  cat <<TIPS
  export DLB_SERVER=$DLB_SERVER
  bin/dlbctl group get web; bin/dlbctl host list; bin/dlbctl group stats web --watch
  bin/dlbctl member add web 10.0.0.14 --weight 50
  bin/dlb-testbed --name demo load c3 10.96.0.10:80 --count 300
  ovs-ofctl -O OpenFlow15 --names dump-flows unix:$RUN/h2/br-int.mgmt
  ovsdb-client dump unix:$WORK/controller/db.sock DLB
  kill ${pids[*]}; bin/dlb-testbed --name demo down
TIPS
fi

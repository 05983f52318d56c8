// Package agent is dlb-agent: it joins the local OVS's OVSDB (package
// ovsdb: the bridge, the VM port inventory) and OpenFlow (package ofctrl)
// with the pipeline (package pipeline) and a source of groups (the
// controller's watch through controller/client, or a file), and keeps the
// bridge's DLB flows and groups equal to what the pipeline computes. It
// never flushes: the reconciler diffs desired against installed and
// applies the difference as one bundle; on a new connection it reads what
// is installed first, so a restarted agent adopts its flows. Beside it:
// member MAC resolution and the refusals (packet-ins), departed members'
// conntrack flushes, and the expiry of day-long affinity entries.
//
// The reconciler talks to the switch and the port inventory through the
// narrow interfaces of reconcile.go (switchConn, bridgeSwitch,
// portInventory, flusher), so its rules are unit-tested against fakes.
//
// It owns: one hypervisor's DLB state on its bridge. It must not touch:
// flows and groups whose cookie or id is not the DLB's, or the controller's
// store (it only reads the watch and reports its host's state).
package agent

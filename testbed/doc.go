// Package testbed emulates hypervisors on one machine, Mininet-style, for
// the tests, the demo and the benchmarks of ovs-dlb.
//
// Each host is a network namespace running its own ovsdb-server and
// ovs-vswitchd (userspace datapath, bridge br-int with OpenFlow 1.5), each
// VM a namespace whose eth0 is a veth peer of a port on its host's bridge,
// and the hosts share an L2 underlay: a Linux bridge in a fabric namespace
// with one uplink port per host bridge. Everything lives inside namespaces
// whose names carry a per-testbed prefix, and a run directory remembers
// the testbed, so another process can inspect or remove it.
//
// It owns: the namespaces, processes and files of the testbeds it makes,
// the VMs' built-in servers (Serve) and the traffic tool (Testbed.Load).
// It must not touch: anything it did not create (other namespaces, the
// system's own Open vSwitch), and only tests and cmd/dlb-testbed import it.
package testbed

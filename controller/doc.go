// Package controller is dlb-controller: the store of record for DCN
// groups (ovsdb-server, with a go-memdb view for reads and watches), the
// REST API for admins, the resumable watch for agents, and the collection
// of the agents' statistics.
//
// It owns: the central state and its API. It must not touch: OpenFlow
// (it never imports ofctrl) or any hypervisor's switch.
package controller

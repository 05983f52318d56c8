// Package controller is dlb-controller: the store of record for DCN
// groups (controller/store: store.Store, on ovsdb-server), the indexed,
// watchable view that serves every read and watch (controller/view:
// view.View, on go-memdb, fed by the store), the REST API for admins and
// the resumable watch for agents (controller/api), and the collection of
// the agents' statistics.
//
// It owns: the central state and its API. It must not touch: OpenFlow
// (it never imports ofctrl) or any hypervisor's switch.
package controller

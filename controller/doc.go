// Package controller is dlb-controller: the store of record for DCN
// groups (controller/store: store.Store, on ovsdb-server), the indexed,
// watchable view that serves every read and watch (controller/view:
// view.View, on go-memdb, fed by the store), the REST API for admins and
// the resumable watch for agents (controller/api), and the API's one Go
// client (controller/client, for dlbctl and the agents).
//
// It owns: the central state and its API. It must not touch: OpenFlow
// or any hypervisor's switch. Nothing under controller/ (nor dlbctl, nor
// lb) links ofctrl, the pipeline or libOpenflow, even through another
// package: deps_test.go checks it with go list -deps.
package controller

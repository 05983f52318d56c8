// Package pipeline is a hypervisor's egress pipeline for the DLB: Compile,
// the pure function that turns valid groups (package lb) and the bridge's
// VM ports into the OpenFlow flows and groups the agent installs. Tables,
// registers, zones, cookies and group ids are declared as data in
// layout.go; slot assignment is in assign.go; docs/pipeline.md explains
// them. Golden files in testdata hold the whole pipeline of a few group
// sets as ovs-ofctl prints it (go test ./pipeline -update rewrites them).
//
// It owns the pipeline design. It must not touch any I/O (no switch, no
// database, no network): the agent applies what it computes. Only the
// agent (and its tests) import it; the controller side never does.
package pipeline

// Package lb is the load balancer's model and datapath pipeline: DCN
// groups (VIP, ports, members, weights, affinity, mode, scope), their
// validation, and Compile, the pure function that turns groups and the
// bridge's VM ports into the OpenFlow flows and groups of a hypervisor's
// egress pipeline. Tables, registers, zones, cookies and group ids are
// declared in layout.go; docs/pipeline.md explains them.
//
// It owns the group model and the pipeline design. It must not touch any
// I/O (no switch, no database, no network): the agent applies what it
// computes.
package lb

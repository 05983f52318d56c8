// Package lb is the load balancer's model and datapath pipeline: DCN
// groups (VIP, ports, members, weights, affinity, mode, scope), their
// validation, and the pure function that turns groups and local VM ports
// into the OpenFlow flows and groups of a hypervisor's egress pipeline.
//
// It owns: the group model and the pipeline design (tables, registers,
// cookies, conntrack zones). It must not touch: any I/O (no switch, no
// database, no network): the agent applies what it computes.
package lb

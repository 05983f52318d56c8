// Package lb is the load balancer's model: DCN groups (VIP, ports,
// members, weights, affinity, mode, scope) as the agent's file, the REST
// API and dlbctl take them; their validation with field paths, which
// yields a group's checked form (Checked: its addresses parsed, once, at
// the edge where the group came in); the groups file's one parser; the
// members that leave a group between two versions (Departed); and the
// zone rules (which conntrack zone a scope's connections live in).
//
// It owns the group model. It must not touch any I/O (no switch, no
// database, no network) and must not know OpenFlow: the controller and
// dlbctl import it, and they never link OpenFlow (a test in controller
// checks). The pipeline package turns groups into flows.
package lb

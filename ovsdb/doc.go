// Package ovsdb is ovs-dlb's access to the local Open_vSwitch database,
// through libovsdb with typed models generated from OVS's schema (package
// vswitchd).
//
// Client keeps a reconnecting connection and a monitored cache of only the
// tables and columns the agent uses; Inventory turns it into a live view
// of one bridge's interfaces (ofport, iface-id, attached-mac, IPs, link
// state) with added/removed/changed events; Client.PrepareBridge makes the
// bridge as the DLB needs it, idempotently, in one transaction. docs/ovsdb.md
// lists every key read and written.
//
// It owns OVSDB connections, models and transactions. It must not touch
// OpenFlow, the load balancer's pipeline, or rows it does not own: what it
// owns is marked external_ids:ovs-dlb-managed=true.
package ovsdb

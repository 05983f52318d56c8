// Package ofctrl is ovs-dlb's OpenFlow 1.5 controller library: a
// connection to one bridge, flow and group mods, bundles, statistics,
// packet-in and packet-out, and a builder whose flows and groups render
// exactly as ovs-ofctl prints them.
//
// It owns the OpenFlow protocol. It must not touch OVSDB, the load
// balancer's model or pipeline, or anything but the switch it is given.
//
// # Connection lifecycle
//
// Dial connects to "unix:PATH" (a bridge's RUNDIR/BRIDGE.mgmt) or
// "tcp:HOST:PORT", exchanges HELLOs offering OpenFlow 1.5 only (a switch
// that does not offer it is refused with ErrVersion and a hint to enable
// it), and reads the switch's features. A reader goroutine then answers
// echo requests, routes replies to their requests by xid, reassembles
// multipart replies and hands packet-ins to ConnOptions.PacketIn. When the
// connection has been idle for EchoInterval it sends an echo request; no
// answer within EchoTimeout (a hung switch) closes it, as does a read
// error (a dead one). Every request takes a context for its deadline.
// Errors from the switch come back as *SwitchError, naming the refused
// message (the flow or group mod as this package renders it, or what the
// error's copy of the message says) and the OpenFlow error type and code.
//
// A Switch keeps a connection up: it redials with exponential backoff and
// runs SwitchOptions.OnConnect on each new connection before handing it
// out, which is where a user replays its state after ovs-vswitchd
// restarted (it starts with no flows).
//
// # Changing the switch
//
// Flows are built with NewFlow and groups with NewGroup; their Add,
// ModifyStrict, DeleteStrict, Modify and Delete methods, and DeleteFlows,
// ModifyFlows, DeleteGroup, InsertBuckets and RemoveBucket, make Mods.
// Conn.Send applies mods in order and waits for a barrier; Conn.Apply puts
// them in one atomic, ordered bundle, so either all take effect or none
// does. Bundle adds are streamed without waiting for replies; the switch's
// errors are collected by xid and returned by Commit:
//
//	b, err := conn.OpenBundle(ctx)
//	if err != nil { ... }
//	b.Add(ofctrl.NewGroup(7, ofctrl.GroupSelect).WithSelection("dp_hash", 0).
//		Bucket(0, 100, ofctrl.CT{Commit: true, Table: 3, Zone: 65000,
//			NAT: &ofctrl.NAT{Dst: true, AddrMin: dcn, PortMin: 8080}}).Add())
//	b.Add(ofctrl.NewFlow(2, 100).Cookie(cookie).
//		Match(ofctrl.TCP, ofctrl.IPDst(ofctrl.Host(vip)), ofctrl.DstPort(ofctrl.ProtoTCP, 80)).
//		Actions(ofctrl.ToGroup(7)).Done().Add())
//	if err := b.Commit(ctx); err != nil {
//		// nothing changed; err names each refused mod
//	}
//
// Flow.String and Group.String render what "ovs-ofctl -O OpenFlow15
// --no-stats dump-flows" and "dump-groups" print (ports by number), so
// tests and logs compare with what admins see. DumpFlows, DumpGroups,
// GroupStats and Ports read the switch back.
//
// # Encoding
//
// libOpenflow supplies the protocol's constants and some message bodies
// (bundle control, the NTR selection-method group property). Flows, groups
// and their actions are encoded and decoded here, one table-driven codec
// for both directions, because libOpenflow's decoder cannot read several
// Nicira actions the pipeline uses (multipath, ct_clear) and its flow mod
// writes out_port in place of out_group. On OpenFlow 1.5, OVS wants
// copy_field for "move" and reports registers as 64-bit xregs; both are
// handled here. The decoders trust no length the switch sends: a short or
// malformed action, flow or group is an error that names it, never a panic
// (FuzzDecodeActions, FuzzDecodeFlowDesc and FuzzDecodeGroupDesc hold them
// to that). Actions live in action_*.go by family, each encoder beside its
// decoder.
package ofctrl

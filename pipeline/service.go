package pipeline

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/ovs-dlb/dlb/lb"
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// service compiles one group's select groups and per-port flows.
func (c *compiler) service(g *lb.Checked, id uint32) *groupOut {
	e := &groupOut{print: g.Fingerprint(), id: id}
	vip := g.VIPAddr
	zone := c.cfg.ZoneOf(g.Scope)
	scope := c.portsInScope(g.Scope) // nil: every VM port
	v6 := vip.Is6()
	fromVM := of.RegMasked(RegPortClass, portClassVM, portClassVM)

	// New-connection choice: every port deals the same slots, by member
	// index, through one shared select group (shape.go).
	weights, dealt := c.slotWeights(g)
	macs := make([]net.HardwareAddr, len(g.Members))
	for i := range g.Members {
		ip := g.MemberAddr(i)
		if macs[i] = c.memberMAC(ip, g.MAC(i)); macs[i] == nil {
			e.unresolved = append(e.unresolved, ip)
		}
	}
	if g.Affinity != nil {
		e.affinity = g.Affinity.ClientIPTimeoutS
	}
	lay := c.layoutOf(g, id)
	idx, ids, kept := lay.indexes(g)
	next := &memberLayout{ids: ids, idx: idx, slots: lay.slots}
	var sh *shapeOut
	if slices.ContainsFunc(weights, func(w int) bool { return w > 0 }) {
		b := c.cfg.Buckets
		switch {
		case b != 0:
		case dealt:
			b = lb.MaxSlots
		default:
			b = lb.SlotCount(weights, len(lay.slots))
		}
		slots := Assign(b, weights, lay.previous(idx, kept))
		shape := make([]uint16, len(slots))
		for s, m := range slots {
			shape[s] = idx[m]
		}
		sh = c.shape(shape)
		next.slots = sh.slots
		e.shapes = append(e.shapes, sh)
	}
	// Without an available member the slots stay as they were, for the
	// members' return.
	c.cache.layouts[g.Name] = next
	// A new connection not yet committed by a member's commit (no MAC in
	// its label): a packet of a committed one that saw no reply yet (a
	// SYN sent again, a second datagram) is +new too, and must not choose
	// again (fixed flow in DLB_SELECT).
	isNew, uncommitted := of.CTState(of.CTNew|of.CTTrk, of.CTNew|of.CTTrk), of.CTLabel([16]byte{}, labelMACMask)
	for k, ps := range g.Ports {
		pid := PortID(id, k)
		proto := lb.ProtocolNumber(ps.Protocol)
		cookie := Cookie(KindVIP, id, uint16(k+1))
		if scope == nil {
			e.flows = append(e.flows,
				c.flow(TableService, 100, cookie).
					Match(fromVM, of.L4(v6, proto), of.IPDst(of.Host(vip)), of.DstPort(proto, uint16(ps.Port))).
					Actions(of.Set(of.Reg(RegService), uint64(pid)), natLookup(zone, c.t(TableSelect))).Done())
		}
		// A scoped group serves only its ports, ahead of any unscoped
		// group with the same VIP:port.
		for _, p := range scope {
			e.flows = append(e.flows,
				c.flow(TableService, 110, cookie).
					Match(of.InPort(p.OFPort), of.L4(v6, proto), of.IPDst(of.Host(vip)), of.DstPort(proto, uint16(ps.Port))).
					Actions(of.Set(of.Reg(RegService), uint64(pid)), natLookup(zone, c.t(TableSelect))).Done())
		}
		// Every member's counting flows, each direction: a draining or
		// disabled member's connections go on.
		if !c.cfg.NoByteCounts {
			e.commits = append(e.commits, countSets(c.t(TableCount), id, k, pid, idx)...)
		}
		if sh == nil {
			// Refused by the agent: a TCP reset or an ICMP port
			// unreachable, built from the packet (OVS cannot make either).
			e.flows = append(e.flows, c.flow(TableSelect, 100, Cookie(KindReject, id, uint16(k+1))).
				Match(isNew, uncommitted, of.RegEq(RegService, pid)).
				Actions(of.Controller{MaxLen: RejectMaxLen}).Done())
			continue
		}
		// Each active member's commit, for this port (the protocol in the
		// match is what the commit's NAT needs).
		set := &Commits{Table: c.t(TableMember), Cookie: Cookie(KindMember, id, uint16(k+1)), Port: pid, V6: v6, Proto: proto}
		for m := range g.Members {
			if weights[m] > 0 {
				set.Members = append(set.Members, Commit{Index: idx[m], Action: c.commitAction(g, m, ps, MemberLabel(pid, idx[m], macs[m]), macs[m] != nil)})
			}
		}
		slices.SortFunc(set.Members, func(a, b Commit) int { return int(a.Index) - int(b.Index) })
		set.Members = slices.Clip(set.Members)
		e.commits = append(e.commits, set)
		if g.Affinity == nil {
			e.flows = append(e.flows, c.flow(TableSelect, 100, cookie).
				Match(isNew, uncommitted, of.RegEq(RegService, pid)).
				Actions(of.ToGroup(sh.id)).Done())
			continue
		}
		// A learned entry for the client (DLB_AFFINITY) loads its member's
		// index; DLB_MEMBER commits to that member while it is active, else
		// hands the connection to the group, whose choice DLB_TO_MEMBER
		// learns. Copying the source port keeps each new connection its own
		// datapath flow, so the second of two back-to-back connections is
		// translated after the first one's learn, not by the first one's
		// cached datapath flow.
		e.flows = append(e.flows, c.flow(TableSelect, 100, cookie).
			Match(isNew, uncommitted, of.RegEq(RegService, pid), of.L4(v6, proto)).
			Actions(of.Move{Src: of.All(of.L4PortField(proto, true)), Dst: of.Sub(of.Reg(RegSrcPort), 0, 15)},
				of.ResubmitTable(c.t(TableAffinity))).
			Goto(c.t(TableMember)).Done())
		e.flows = append(e.flows, c.flow(TableMember, 50, cookie).
			Match(of.RegEq(RegService, pid)).Actions(of.ToGroup(sh.id)).Done())
		if k == 0 {
			// Committed, the connection's first packet records the choice
			// (the group's, or DLB_MEMBER's: refreshing it).
			e.flows = append(e.flows, c.flow(TableToMember, 100, Cookie(KindVIP, id, 0)).
				Match(isNew, ofService(id), ipOf(v6)).
				Actions(c.learnAffinity(g, id), toMemberMAC, c.count()).Goto(c.t(TableOutput)).Done())
		}
	}
	if g.Mode != lb.ModeDSR && scope == nil { // a DSR member holds the VIP: its kernel answers itself
		e.flows = append(e.flows, c.hairpinFlows(g, id, vip)...)
	}
	e.shared = c.sharedFlows(g, id)
	return e
}

// countSets are a VIP port's counting flows, to the members and from
// them, one each for every member with an index.
func countSets(table uint8, id uint32, k int, pid uint32, idx []uint16) []*Commits {
	to := &Commits{Role: RoleCountTo, Table: table, Cookie: Cookie(KindCountTo, id, uint16(k+1)), Port: pid, Members: make([]Commit, len(idx))}
	for m := range idx {
		to.Members[m] = Commit{Index: idx[m]}
	}
	slices.SortFunc(to.Members, func(a, b Commit) int { return int(a.Index) - int(b.Index) })
	from := &Commits{Role: RoleCountFrom, Table: table, Cookie: Cookie(KindCountFrom, id, uint16(k+1)), Port: pid, Members: to.Members}
	return []*Commits{to, from}
}

// sharedFlows lists the flows a group shares with others: the answer to
// ARP or ND for its VIP, and the reply lookups of its members' ports.
func (c *compiler) sharedFlows(g *lb.Checked, id uint32) []sharedFlow {
	vip := g.VIPAddr
	v6 := vip.Is6()
	var out []sharedFlow
	seen := map[string]bool{}
	for _, ps := range g.Ports {
		proto := lb.ProtocolNumber(ps.Protocol)
		for _, m := range g.Members {
			port := lb.TargetPort(ps, m)
			if g.Scope.Key() != "" {
				// Replies to a scoped group's clients are looked up in its
				// zone, told apart by the client port's MAC.
				zone := c.cfg.ZoneOf(g.Scope)
				for _, p := range c.portsInScope(g.Scope) {
					key := fmt.Sprintf("sreply/%d/%t/%d/%d", p.OFPort, v6, proto, port)
					if seen[key] || p.MAC == nil {
						continue
					}
					seen[key] = true
					mac := p.MAC
					out = append(out, sharedFlow{key, func() *of.Flow {
						return c.flow(TableReply, 110, Cookie(KindReply, 0, port)).
							Match(of.EthDst(mac), of.L4(v6, proto), of.SrcPort(proto, port)).
							Actions(natLookup(zone, c.t(TableUnNAT))).Done()
					}})
				}
				continue
			}
			key := fmt.Sprintf("reply/%t/%d/%d", v6, proto, port)
			if !seen[key] {
				seen[key] = true
				out = append(out, sharedFlow{key, func() *of.Flow {
					return c.flow(TableReply, 100, Cookie(KindReply, 0, port)).
						Match(of.L4(v6, proto), of.SrcPort(proto, port)).
						Actions(natLookup(c.cfg.Zone, c.t(TableUnNAT))).Done()
				}})
			}
		}
	}
	fromVM := of.RegMasked(RegPortClass, portClassVM, portClassVM)
	if g.Mode != lb.ModeDSR && g.Scope.Key() == "" && len(c.localMemberPorts(g)) > 0 {
		// Answers of a local member to a hairpin connection come to the
		// VIP (the source it got); only those VIPs get the hairpin zone's
		// lookup, so other traffic to the DLB's MAC (a VIP port not
		// configured, say) is dropped without touching conntrack.
		out = append(out, sharedFlow{"hairpin-reply/" + vip.String(), func() *of.Flow {
			return c.flow(TableService, 45, Cookie(KindHairpin, id, 0)).Match(fromVM, ipOf(v6), of.EthDst(c.cfg.MAC), of.IPDst(of.Host(vip))).
				Actions(natLookup(c.cfg.HairpinZone(), c.t(TableHairpinReply))).Done()
		}})
	}
	out = append(out, sharedFlow{"neigh/" + vip.String(), func() *of.Flow {
		cookie := Cookie(KindVIP, id, 0)
		if v6 {
			// The agent answers neighbour solicitations (a packet-in).
			return c.flow(TableService, 100, cookie).Match(fromVM, of.ICMPv6, of.ICMPv6Type(135), of.NDTarget(vip)).
				Actions(of.Controller{MaxLen: 128}).Done()
		}
		return c.flow(TableService, 100, cookie).Match(fromVM, of.ARP, of.ARPTPA(vip), of.ARPOp(1)).Actions(c.arpReply(vip)...).Done()
	}})
	return out
}

// ofService matches RegService on a group's id bits, whichever of its VIP
// ports the packet is for.
func ofService(id uint32) of.MatchOption {
	return of.RegMasked(RegService, PortID(id, 0), portIDMask|(1<<serviceBits-1)<<8)
}

// toMemberMAC writes the member's MAC from the connection's label.
var toMemberMAC = of.Move{Src: of.Sub(of.FieldCTLabel, 0, 47), Dst: of.All(of.FieldEthDst)}

// labelMACMask is ct_label's bits 0..47, where a commit records the
// member's MAC.
var labelMACMask = [16]byte{10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}

// RejectMaxLen is how much of a refused packet the agent gets: enough
// for its headers and the 8 bytes of transport header an ICMP error quotes.
const RejectMaxLen = 128

// commitAction sends a new connection to a member: the commit, recording
// the member's label (its VIP port and index, and its MAC when known: mac)
// in the connection, with DNAT to the member (mode dnat) or none (mode
// dsr: the member holds the VIP), then on to DLB_TO_MEMBER, which writes
// the MAC from the label. (A ct action with no table, followed by output
// in the same pass, is dropped from the datapath actions by OVS 3.1: the
// recirculation is needed.)
func (c *compiler) commitAction(g *lb.Checked, m int, ps lb.PortSpec, label of.Label128, mac bool) of.Action {
	var macBits uint8
	if mac {
		macBits = labelMACBits
	}
	if g.Mode == lb.ModeDSR {
		ct := of.ConnTrack(c.cfg.ZoneOf(g.Scope))
		ct.Commit, ct.Table = true, c.t(TableToMember)
		n := of.CTCommitNAT{Label: label, LoBits: macBits, HiBits: labelIDBits}
		ct.Exec = n.CT().Exec
		return ct
	}
	return of.CTCommitNAT{Zone: c.cfg.ZoneOf(g.Scope), Table: c.t(TableToMember),
		Dst: netip.AddrPortFrom(g.MemberAddr(m), lb.TargetPort(ps, g.Members[m])), Label: label, LoBits: macBits, HiBits: labelIDBits}
}

// count is the resubmit to DLB_COUNT, whose flows count a connection's
// packets by member and direction (from its label) and do nothing else.
func (c *compiler) count() of.Action { return of.ResubmitTable(c.t(TableCount)) }

// labelMAC is a MAC as the value of the connection label's bits 0..47
// (where DLB_TO_MEMBER takes the member's MAC from).
func labelMAC(mac net.HardwareAddr) uint64 {
	var v uint64
	for _, x := range mac[:6] {
		v = v<<8 | uint64(x)
	}
	return v
}

// MaxLearnedIdle is the longest idle timeout OpenFlow gives a flow; the
// agent expires learned affinity entries with longer timeouts itself.
const MaxLearnedIdle = 65535

// learnAffinity records, in DLB_AFFINITY, that the packet's source address
// goes to the member whose index is in RegMember, for every port of the
// group (the learned flow matches the group's id bits of RegService).
func (c *compiler) learnAffinity(g *lb.Checked, id uint32) of.Learn {
	et, src := of.EthTypeIPv4, of.FieldIPv4Src
	if g.VIPAddr.Is6() {
		et, src = of.EthTypeIPv6, of.FieldIPv6Src
	}
	idle := 0 // kept by the switch until the agent expires it
	if t := g.Affinity.ClientIPTimeoutS; t <= MaxLearnedIdle {
		idle = t
	}
	return of.Learn{Table: c.t(TableAffinity), IdleTimeout: uint16(idle), Priority: 100, Cookie: Cookie(KindAffinity, id, 0),
		Specs: []of.LearnSpec{
			of.LearnMatchValue(of.All(of.FieldEthType), uint64(et)),
			of.LearnMatchField(of.Sub(of.Reg(RegService), 8, 8+serviceBits-1)),
			of.LearnMatchField(of.All(src)),
			of.LearnLoadField(of.All(of.Reg(RegMember)), of.All(of.Reg(RegMember))),
		}}
}

// arpReply turns an ARP request for vip into the reply, sent back out of
// the port it came from. The actions but the last two are shared.
func (c *compiler) arpReply(vip netip.Addr) []of.Action {
	if c.arpHead == nil {
		mac := c.cfg.MAC
		c.arpHead = []of.Action{
			of.Move{Src: of.All(of.FieldEthSrc), Dst: of.All(of.FieldEthDst)},
			of.SetBytes(of.FieldEthSrc, mac),
			of.Set(of.FieldARPOp, 2),
			of.Move{Src: of.All(of.FieldARPSHA), Dst: of.All(of.FieldARPTHA)},
			of.SetBytes(of.FieldARPSHA, mac),
			of.Move{Src: of.All(of.FieldARPSPA), Dst: of.All(of.FieldARPTPA)},
		}
	}
	out := make([]of.Action, 0, len(c.arpHead)+2)
	out = append(out, c.arpHead...)
	return append(out, of.SetBytes(of.FieldARPSPA, vip.AsSlice()), of.OutInPort())
}

// memberMAC finds a member's MAC: its own (given), else the agent's
// table, else a local VM port with its address; nil when unknown.
func (c *compiler) memberMAC(ip netip.Addr, given net.HardwareAddr) net.HardwareAddr {
	if given != nil {
		return given
	}
	if mac, ok := c.in.MACs[ip]; ok {
		return mac
	}
	for _, p := range c.portsWith(ip) {
		if p.MAC != nil {
			return p.MAC
		}
	}
	return nil
}

// slotWeights are the weights a group's slots are dealt by: its members'
// (0 for one that takes no new connections), or, for a least-connections
// group with shares (Input.Slots), those shares' slot counts over
// lb.MaxSlots slots (dealt true).
func (c *compiler) slotWeights(g *lb.Checked) (weights []int, dealt bool) {
	weights = lb.ActiveWeights(&g.Group)
	q, ok := c.in.Slots[g.Name]
	if !ok || !g.LeastConnections() || len(q) != len(weights) {
		return weights, false
	}
	shares := make([]int, len(q))
	for i, n := range q {
		if weights[i] > 0 {
			shares[i] = max(n, 1) // never starved
		}
	}
	if !slices.ContainsFunc(shares, func(n int) bool { return n > 0 }) {
		return weights, false
	}
	return shares, true
}

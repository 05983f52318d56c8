package pipeline

import (
	"fmt"

	of "github.com/ovs-dlb/dlb/ofctrl"
)

// pipeline adds the fixed flows and the VM port classification.
func (c *compiler) pipeline() {
	fixed := Cookie(KindPipeline, 0, 0)
	c.add(c.flow(TableClassify, 0, fixed).Goto(c.t(TableService)))
	for _, p := range c.in.Ports {
		if p.OFPort == 0 || p.OFPort >= of.PortInPort {
			continue
		}
		c.shared(fmt.Sprintf("port/%d", p.OFPort), c.flow(TableClassify, 100, Cookie(KindPort, 0, uint16(p.OFPort))).
			Match(of.InPort(p.OFPort)).
			Actions(of.SetMasked(of.Reg(RegPortClass), portClassVM, portClassVM)).
			Goto(c.t(TableService)).Done)
	}
	c.add(c.flow(TableService, 0, fixed).Goto(c.t(TableReply)))
	// After the conntrack lookup of VIP traffic: new connections were sent
	// to their group by the per-service flows; established and related
	// ones were already translated by ct(nat); invalid ones are dropped.
	c.add(c.flow(TableSelect, 50, fixed).Match(of.CTState(of.CTEst|of.CTTrk, of.CTEst|of.CTTrk)).Goto(c.t(TableToMember)))
	c.add(c.flow(TableSelect, 50, fixed).Match(of.CTState(of.CTRel|of.CTTrk, of.CTRel|of.CTTrk)).Goto(c.t(TableToMember)))
	// New but committed already (a SYN sent again, a second datagram
	// before the reply): to the member its label names, past
	// DLB_TO_MEMBER's affinity learning (the choice was learned at the
	// commit).
	c.add(c.flow(TableSelect, 50, fixed).Match(of.CTState(of.CTNew|of.CTTrk, of.CTNew|of.CTTrk)).Actions(toMemberMAC, c.count()).Goto(c.t(TableOutput)))
	c.add(c.flow(TableSelect, 40, fixed).Match(of.CTState(of.CTInv|of.CTTrk, of.CTInv|of.CTTrk)))
	c.add(c.flow(TableSelect, 0, fixed))
	// The member's MAC rides in the connection's label (bits 0-47), set by
	// the member's commit, so one flow serves every member. Each packet to
	// a member, and each packet back, is counted in DLB_COUNT on the way.
	c.add(c.flow(TableToMember, 0, fixed).Actions(toMemberMAC, c.count()).Goto(c.t(TableOutput)))
	c.add(c.flow(TableReply, 0, fixed).Goto(c.t(TableOutput)))
	// Replies of DLB connections leave from the DLB's MAC, as the VIP.
	c.add(c.flow(TableUnNAT, 100, fixed).Match(of.CTState(of.CTRpl|of.CTTrk, of.CTRpl|of.CTTrk)).
		Actions(of.SetBytes(of.FieldEthSrc, c.cfg.MAC), c.count()).Goto(c.t(TableOutput)))
	c.add(c.flow(TableUnNAT, 0, fixed).Goto(c.t(TableOutput)))
	if sh := c.cfg.Shared; sh != nil {
		// Shared bridge: the one hook, and back to the owner's pipeline.
		c.add(of.NewFlow(sh.EntryTable, sh.EntryPriority).Cookie(fixed).Goto(c.t(TableClassify)))
		c.add(c.flow(TableOutput, 0, fixed).Actions(of.ResubmitTable(sh.ReturnTable)))
	} else {
		c.add(c.flow(TableOutput, 0, fixed).Actions(of.Normal()))
	}
	// A client with no learned entry leaves RegMember at 0.
	c.add(c.flow(TableAffinity, 0, fixed))
	c.add(c.flow(TableMember, 0, fixed))
	// A connection no member's counting flow knows (committed by an agent
	// before they existed, or a hairpin's source translation) counts here.
	c.add(c.flow(TableCount, 0, fixed))
	// Answers to the agent's own ARP requests and neighbour solicitations
	// for members' MACs come to the DLB's MAC: the agent reads them.
	c.add(c.flow(TableClassify, 110, fixed).Match(of.ARP, of.ARPOp(2), of.EthDst(c.cfg.MAC)).Actions(of.Controller{MaxLen: 128}))
	c.add(c.flow(TableClassify, 110, fixed).Match(of.ICMPv6, of.ICMPv6Type(136), of.EthDst(c.cfg.MAC)).Actions(of.Controller{MaxLen: 128}))
	// Traffic from VMs to the DLB's MAC that no VIP port took goes nowhere
	// rather than flooding.
	fromVM := of.RegMasked(RegPortClass, portClassVM, portClassVM)
	c.add(c.flow(TableService, 40, fixed).Match(fromVM, of.IP, of.EthDst(c.cfg.MAC)))
	c.add(c.flow(TableService, 40, fixed).Match(fromVM, of.IPv6, of.EthDst(c.cfg.MAC)))

	// Hairpin: a member that reached itself through its VIP gets the
	// connection with the VIP as source (DLB_OUTPUT's per-member flows, in
	// the hairpin zone), so it answers to the VIP, at the DLB's MAC. Its
	// answer (looked up in the hairpin zone by a flow per VIP with a local
	// member: sharedFlows) is un-SNATed, then un-DNATed, and goes back out
	// of its port.
	for _, ipm := range []of.MatchOption{of.IP, of.IPv6} {
		c.add(c.flow(TableHairpinReply, 100, fixed).Match(of.CTState(of.CTRpl|of.CTTrk, of.CTRpl|of.CTTrk), ipm).
			Actions(natLookup(c.cfg.Zone, c.t(TableHairpin))))
	}
	c.add(c.flow(TableHairpinReply, 0, fixed))
	c.add(c.flow(TableHairpin, 0, fixed).Actions(c.count(),
		of.Move{Src: of.All(of.FieldEthSrc), Dst: of.All(of.FieldEthDst)},
		of.SetBytes(of.FieldEthSrc, c.cfg.MAC), of.OutInPort()))
}

// Reply lookups key on protocol and port only (one flow per target port,
// not per member, which keeps a 10,000-VIP host at a few flows per VIP):
// other traffic from such a port gets a conntrack lookup, which commits
// nothing.

func ipOf(v6 bool) of.MatchOption {
	if v6 {
		return of.IPv6
	}
	return of.IP
}

// natLookup sends a packet through conntrack in the DLB's zone, applying
// the NAT of its connection, and continues in table.
func natLookup(zone uint16, table uint8) of.CT {
	ct := of.ConnTrack(zone)
	ct.Table = table
	ct.NAT = &of.NAT{}
	return ct
}

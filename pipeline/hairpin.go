package pipeline

import (
	"net/netip"
	"slices"

	"github.com/ovs-dlb/dlb/lb"
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// hairpinFlows give the connections a local member made to its own group
// and got itself for the VIP as their source, so that its kernel accepts
// them (a packet from its own address is a martian) and answers through
// the DLB. They match on the group's id bits of RegService and the
// member's address as source and destination, after the DNAT.
func (c *compiler) hairpinFlows(g *lb.Checked, id uint32, vip netip.Addr) []*of.Flow {
	var out []*of.Flow
	for _, mp := range c.localMemberPorts(g) {
		ip, p := mp.ip, mp.port
		ct := of.ConnTrack(c.cfg.HairpinZone())
		ct.Commit, ct.Table = true, c.t(TableHairpin)
		ct.NAT = &of.NAT{Src: true, AddrMin: vip}
		out = append(out, c.flow(TableOutput, 100, Cookie(KindHairpin, id, uint16(p.OFPort))).
			Match(of.InPort(p.OFPort), ipOf(ip.Is6()), ofService(id),
				of.IPSrc(of.Host(ip)), of.IPDst(of.Host(ip))).
			Actions(ct).Done())
	}
	return out
}

// memberPort is a VM port of this host that holds a member's address.
type memberPort struct {
	ip   netip.Addr
	port LocalPort
}

// localMemberPorts lists the VM ports of this host that hold one of g's
// member addresses (each address once), in member order.
func (c *compiler) localMemberPorts(g *lb.Checked) []memberPort {
	var out []memberPort
	seen := map[netip.Addr]bool{}
	for i := range g.Members {
		ip := g.MemberAddr(i)
		if seen[ip] {
			continue
		}
		seen[ip] = true
		for _, p := range c.portsWith(ip) {
			out = append(out, memberPort{ip, p})
		}
	}
	return out
}

// portsWith lists the VM ports that hold ip, in port order. (An index:
// 10,000 members against a port inventory of as many addresses made the
// scan quadratic.)
func (c *compiler) portsWith(ip netip.Addr) []LocalPort {
	if c.portsOf == nil {
		c.portsOf = map[netip.Addr][]LocalPort{}
		for _, p := range c.in.Ports {
			if p.OFPort == 0 || p.OFPort >= of.PortInPort {
				continue
			}
			for _, a := range p.IPs {
				a = a.Unmap()
				if l := c.portsOf[a]; len(l) == 0 || l[len(l)-1].OFPort != p.OFPort { // each port once per address
					c.portsOf[a] = append(c.portsOf[a], p)
				}
			}
		}
	}
	return c.portsOf[ip]
}

// portsInScope lists the local VM ports a scope selects (by iface-id, or by
// all of its labels in external_ids); nil for no scope, and an empty,
// non-nil list when the scope selects none of this host's ports.
func (c *compiler) portsInScope(s *lb.Scope) []LocalPort {
	if s.Key() == "" {
		return nil
	}
	out := []LocalPort{}
	for _, p := range c.in.Ports {
		if p.OFPort == 0 || p.OFPort >= of.PortInPort {
			continue
		}
		if slices.Contains(s.IfaceIDs, p.IfaceID) && p.IfaceID != "" {
			out = append(out, p)
			continue
		}
		if len(s.Labels) == 0 {
			continue
		}
		all := true
		for k, v := range s.Labels {
			all = all && p.Labels[k] == v
		}
		if all {
			out = append(out, p)
		}
	}
	return out
}

package pipeline

import (
	"fmt"
	"net/netip"

	of "github.com/ovs-dlb/dlb/ofctrl"
)

// Probe is a health probe the agent sends into a VM port (a packet-out):
// from Source (a VIP) and a port in ProbePorts to a member's Port. The
// member's answers come back into the bridge on OFPort, addressed to
// Source and that port, and the pipeline hands them to the agent.
type Probe struct {
	OFPort uint32
	Member netip.Addr
	Source netip.Addr
	// Proto is 6 (tcp, http) or 17 (udp: ICMP errors about it are caught
	// too).
	Proto uint8
	Port  uint16
}

// Probe source ports: ProbePortBase | n, 61440..65535 (above Linux's
// ephemeral range, 32768..60999, so that a VM's own connections to a VIP
// never look like answers to a probe).
const (
	ProbePortBase uint16 = 0xf000
	ProbePortMask uint16 = 0xf000
)

// ProbeMaxLen is how much of an answer a probe packet-in carries: the
// headers and the first bytes of an HTTP answer (its status line).
const ProbeMaxLen = 256

// probeAnswers adds, in DLB_CLASSIFY at priority 120 (before the VM port
// classification and the ARP answers), one flow per probed member and
// port that sends its answers to the agent:
//
//	in_port=P, tcp, nw_src=MEMBER, nw_dst=SOURCE, tp_src=PORT, tp_dst=0xf000/0xf000 → controller
//
// and, for udp probes, the ICMP errors about them (port unreachable):
//
//	in_port=P, icmp, nw_src=MEMBER, nw_dst=SOURCE, icmp_type=3 → controller
//
// Nothing else touches them: no conntrack lookup, no forwarding.
func (c *compiler) probeAnswers() {
	for _, p := range c.in.Probes {
		if p.OFPort == 0 || p.OFPort >= of.PortInPort || !p.Member.IsValid() || !p.Source.IsValid() || p.Member.Is4() != p.Source.Is4() {
			continue
		}
		v6 := p.Member.Is6()
		cookie := Cookie(KindProbe, 0, 0)
		from := []of.MatchOption{of.InPort(p.OFPort)}
		key := fmt.Sprintf("probe/%d/%s/%s/%d/%d", p.OFPort, p.Member, p.Source, p.Proto, p.Port)
		c.shared(key, c.flow(TableClassify, 120, cookie).
			Match(append(from, of.L4(v6, p.Proto), of.IPSrc(of.Host(p.Member)), of.IPDst(of.Host(p.Source)),
				of.SrcPort(p.Proto, p.Port), of.DstPortMasked(p.Proto, ProbePortBase, ProbePortMask))...).
			Actions(of.Controller{MaxLen: ProbeMaxLen}).Done)
		if p.Proto != 17 {
			continue
		}
		icmp := []of.MatchOption{of.L4(v6, 1), of.ICMPType(3)}
		if v6 {
			icmp = []of.MatchOption{of.L4(v6, 58), of.ICMPv6Type(1)}
		}
		c.shared(fmt.Sprintf("probe-icmp/%d/%s/%s", p.OFPort, p.Member, p.Source), c.flow(TableClassify, 120, cookie).
			Match(append(append(from, icmp...), of.IPSrc(of.Host(p.Member)), of.IPDst(of.Host(p.Source)))...).
			Actions(of.Controller{MaxLen: ProbeMaxLen}).Done)
	}
}

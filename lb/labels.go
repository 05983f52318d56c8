package lb

import (
	"net/netip"
	"strconv"
	"strings"
)

// PortLabel names a VIP port in the member statistics: "tcp/80".
func PortLabel(ps PortSpec) string { return strings.ToLower(ps.Protocol) + "/" + strconv.Itoa(ps.Port) }

// MemberLabel names a member in the member statistics: its address
// (IPv4-mapped addresses unmapped), or address:port for a member with a
// port of its own.
func MemberLabel(addr netip.Addr, port int) string {
	addr = addr.Unmap()
	if port == 0 {
		return addr.String()
	}
	return netip.AddrPortFrom(addr, uint16(port)).String()
}

// MemberLabels are a valid group's members' labels, in order.
func (g *Group) MemberLabels() []string {
	out := make([]string, len(g.Members))
	for i, m := range g.Members {
		a, err := netip.ParseAddr(m.IP)
		if err != nil {
			out[i] = m.IP // not valid: the caller checked it was
			continue
		}
		out[i] = MemberLabel(a, m.Port)
	}
	return out
}

package lb

import "net/netip"

// Departure is one member's service port that a group no longer sends
// to: the conntrack entries of connections committed to it may go.
type Departure struct {
	Group      string
	VIP        netip.Addr
	Proto      uint8  // IP protocol number
	Port       uint16 // the VIP's port
	Member     netip.Addr
	TargetPort uint16
	// Scope is the group's scope: its connections are in ZoneOf(Scope).
	Scope *Scope
}

// Departed lists what the change from old to new groups takes away: every
// (VIP port, member) of an old group that the new group of the same name
// no longer has, and all of a group that is gone or moved to another VIP.
// Members that are draining or disabled have not departed: their
// established connections are left to finish. Both sets are checked.
func Departed(old, new []Checked) []Departure {
	byName := make(map[string]*Checked, len(new))
	for i := range new {
		byName[new[i].Name] = &new[i]
	}
	type key struct {
		proto      uint8
		port       uint16
		member     netip.Addr
		targetPort uint16
	}
	var out []Departure
	for i := range old {
		o := &old[i]
		n := byName[o.Name]
		if n != nil && n.Fingerprint() == o.Fingerprint() {
			continue
		}
		kept := map[key]bool{}
		if n != nil && n.VIPAddr == o.VIPAddr {
			for _, ps := range n.Ports {
				for j, m := range n.Members {
					kept[key{ProtocolNumber(ps.Protocol), uint16(ps.Port), n.MemberAddr(j), TargetPort(ps, m)}] = true
				}
			}
		}
		for _, ps := range o.Ports {
			for j, m := range o.Members {
				k := key{ProtocolNumber(ps.Protocol), uint16(ps.Port), o.MemberAddr(j), TargetPort(ps, m)}
				if !kept[k] {
					out = append(out, Departure{Group: o.Name, VIP: o.VIPAddr, Proto: k.proto, Port: k.port, Member: k.member, TargetPort: k.targetPort, Scope: o.Scope})
				}
			}
		}
	}
	return out
}

package lb

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
)

// Checked is a group that passed validation, with what its text fields
// say parsed once, at the edge where the group came in (the groups file,
// the controller's watch): the pipeline, Departed and the agent read
// these values and never parse the group's strings again. Make one with
// Check, CheckAll or (for a set of groups checked one by one) CheckSet.
// It encodes (JSON, YAML) as its Group does. A checked group is read-only:
// change the Group and check it again. It is a pointer to what was
// checked (a set of 10,000 groups copied on every change is 80 kB of
// pointers, not 1.7 MB): its copies share it, and the zero value holds
// nothing.
type Checked struct{ *checked }

type checked struct {
	Group
	// VIPAddr is the VIP, an IPv4-mapped IPv6 address unmapped.
	VIPAddr netip.Addr
	// members are the members' addresses and MACs, in Members' order
	// (MemberAddr, MAC): 22 bytes a member in one array per group, as a
	// host holds 100,000 of them.
	members []parsedMember
	// print is the Group's fingerprint, taken once when it was checked.
	print uint64
}

// MarshalJSON encodes the group as its Group.
func (c Checked) MarshalJSON() ([]byte, error) { return json.Marshal(&c.Group) }

// MarshalYAML encodes the group as its Group.
func (c Checked) MarshalYAML() (any, error) { return &c.Group, nil }

// Fingerprint is the group's fingerprint (Group.Fingerprint), computed
// once, when the group was checked: an agent compares 10,000 of them on
// every change.
func (c *Checked) Fingerprint() uint64 {
	if c.print == 0 {
		return c.Group.Fingerprint()
	}
	return c.print
}

// parsedMember is a member's address (16 bytes, IPv4 as mapped) and MAC
// (zero when the member gives none).
type parsedMember struct {
	addr [16]byte
	mac  [6]byte
}

// Check validates one group on its own (paths relative to the group) and
// returns its checked form.
func Check(g Group) (Checked, error) {
	if err := g.Validate(); err != nil {
		return Checked{}, err
	}
	return parsed(g), nil
}

// CheckAll validates a set of groups, each on its own and together (as
// ValidateAll; paths start with "groups[i]"), and returns their checked
// forms.
func CheckAll(groups []Group) ([]Checked, error) {
	if err := ValidateAll(groups); err != nil {
		return nil, err
	}
	out := make([]Checked, len(groups))
	for i := range groups {
		out[i] = parsed(groups[i])
	}
	return out, nil
}

// CheckSet checks a set of groups that were each checked on their own
// (Check) for what only the set can get wrong: names, and VIP, protocol
// and port within a scope, are unique. Paths start with "groups[i]".
func CheckSet(set []Checked) error {
	var c checker
	crossCheck(&c, len(set), func(i int) (*Group, netip.Addr) { return &set[i].Group, set[i].VIPAddr })
	return c.err()
}

// SetChecker is CheckSet for a caller that checks one set after another
// (the agent's follower, on every change): it keeps its indexes between
// sets, so that checking 10,000 groups again allocates nothing. The zero
// value is ready; not for concurrent use.
type SetChecker struct{ x setIndex }

// Check is CheckSet(set).
func (s *SetChecker) Check(set []Checked) error {
	var c checker
	s.x.check(&c, len(set), func(i int) (*Group, netip.Addr) { return &set[i].Group, set[i].VIPAddr })
	return c.err()
}

// parsed is the checked form of a valid group.
func parsed(g Group) Checked {
	c := Checked{&checked{Group: g, VIPAddr: mustAddr(g.VIP), members: make([]parsedMember, len(g.Members))}}
	for i, m := range g.Members {
		c.members[i].addr = mustAddr(m.IP).As16()
		if m.MAC != "" {
			mac, err := net.ParseMAC(m.MAC)
			if err != nil || len(mac) != 6 {
				panic(fmt.Sprintf("lb: member MAC %q passed validation: %v", m.MAC, err))
			}
			copy(c.members[i].mac[:], mac)
		}
	}
	c.print = c.Group.Fingerprint()
	return c
}

func mustAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		panic(fmt.Sprintf("lb: address %q passed validation: %v", s, err))
	}
	return a.Unmap()
}

// MemberAddr is the i-th member's address, unmapped.
func (c *Checked) MemberAddr(i int) netip.Addr {
	return netip.AddrFrom16(c.members[i].addr).Unmap()
}

// MAC is the i-th member's MAC, nil when it gives none. The slice is the
// checked group's own: read-only.
func (c *Checked) MAC(i int) net.HardwareAddr {
	if c.Members[i].MAC == "" {
		return nil
	}
	return c.members[i].mac[:]
}

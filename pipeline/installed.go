package pipeline

import (
	"net"
	"net/netip"

	"github.com/ovs-dlb/dlb/lb"
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// Installed is the DLB's part of the switch, as read back: its groups by
// id, its commit flows, and its other flows (those of DLB_SELECT and
// DLB_MEMBER are the ones read; commit flows among them count too).
type Installed struct {
	Groups  map[uint32]*of.Group
	Commits []*Commits
	Flows   []*of.Flow
}

// adoption is an installed state indexed for taking over: which member
// index each VIP port's commits stand for, and which select group each
// VIP port uses.
type adoption struct {
	commits map[uint32]map[uint16]of.Action // port id → member index → the commit
	shapeOf map[uint32]uint32               // port id → select group
	groups  map[uint32]*of.Group
}

// adopt takes over an installed state: the compiler forgets what it made
// (the switch may hold something else, say after a refused bundle) and
// every group's layout is read back from the switch when compiled.
func (c *compiler) adopt(in *Installed) {
	k := c.cache
	k.groups = map[string]*groupOut{}
	k.layouts = map[string]*memberLayout{}
	k.shapes, k.shapeIDs = map[string]*shapeOut{}, map[uint32]*shapeOut{}
	a := &adoption{commits: map[uint32]map[uint16]of.Action{}, shapeOf: map[uint32]uint32{}, groups: in.Groups}
	for id, g := range in.Groups {
		if slots := shapeSlots(g); IsDLBGroup(id) && slots != nil {
			// The installed object itself, so the diff sees it unchanged.
			sh := &shapeOut{id: id, slots: slots, group: g}
			if key := shapeKey(slots); k.shapes[key] == nil {
				k.shapes[key] = sh
			}
			k.shapeIDs[id] = sh
		}
	}
	addCommit := func(port uint32, m Commit) {
		if m.Index == 0 || m.Index > lb.MaxMembers {
			return
		}
		if a.commits[port] == nil {
			a.commits[port] = map[uint16]of.Action{}
		}
		a.commits[port][m.Index] = m.Action
	}
	for _, set := range in.Commits {
		if set.Role != RoleCommit {
			continue
		}
		for _, m := range set.Members {
			addCommit(set.Port, m)
		}
	}
	for _, f := range in.Flows {
		if set, m, ok := CommitsOf(f, c.cfg); ok {
			if set.Role == RoleCommit {
				addCommit(set.Port, m)
			}
			continue
		}
		pid, ok := regOf(f, RegService)
		if !ok || (f.Table != c.t(TableSelect) && f.Table != c.t(TableMember)) {
			continue
		}
		if CookieKind(f.Cookie) == KindVIP {
			for _, act := range f.Actions {
				if g, ok := act.(of.ToGroup); ok {
					a.shapeOf[pid] = uint32(g)
				}
			}
		}
	}
	k.adopted = a
}

// layoutOf is a group's layout: the compiler's own, or read back from the
// switch being taken over, or none.
func (c *compiler) layoutOf(g *lb.Checked, id uint32) *memberLayout {
	if l := c.cache.layouts[g.Name]; l != nil {
		return l
	}
	l := &memberLayout{}
	a := c.cache.adopted
	if a == nil {
		return l
	}
	// Member indexes, from each port's commits.
	l.idx, l.ids = make([]uint16, len(g.Members)), make([]uint64, len(g.Members))
	found := false
	for i := range g.Members {
		l.ids[i] = memberIdentity(g, i)
	}
	for k, ps := range g.Ports {
		for idx, act := range a.commits[PortID(id, k)] {
			if i := c.committedTo(g, ps, act); i >= 0 && l.idx[i] == 0 {
				l.idx[i], found = idx, true
			}
		}
	}
	for k := range g.Ports {
		if grp := a.groups[a.shapeOf[PortID(id, k)]]; grp != nil {
			if slots := shapeSlots(grp); slots != nil {
				l.slots = slots
				break
			}
		}
	}
	if !found && len(g.Ports) > 0 {
		// A switch set up by an agent before shared select groups: a group
		// per VIP port whose buckets commit to their member.
		l.slots = c.perPortSlots(g, a.groups[PortID(id, 0)], l)
	}
	return l
}

// committedTo is the member a commit sends to (by the address and port it
// translates to, or, in DSR mode, by the MAC it records), or -1.
func (c *compiler) committedTo(g *lb.Checked, ps lb.PortSpec, act of.Action) int {
	if dst, ok := natTarget(act); ok {
		for i, m := range g.Members {
			if g.MemberAddr(i) == dst.Addr() && lb.TargetPort(ps, m) == dst.Port() {
				return i
			}
		}
		return -1
	}
	if mac, ok := labelOf(act); ok && g.Mode == lb.ModeDSR {
		found := -1
		for i := range g.Members {
			if m := c.memberMAC(g.MemberAddr(i), g.MAC(i)); m != nil && labelMAC(m) == mac {
				if found >= 0 {
					return -1 // two members with one MAC: neither is known
				}
				found = i
			}
		}
		return found
	}
	return -1
}

// perPortSlots reads an older agent's group of a VIP port (buckets that
// commit to their member), giving the members indexes in their order.
func (c *compiler) perPortSlots(g *lb.Checked, grp *of.Group, l *memberLayout) []uint16 {
	n := 0
	if grp != nil {
		n = grp.NumBuckets()
	}
	if n == 0 || n&(n-1) != 0 {
		return nil
	}
	for i := range g.Members {
		l.idx[i] = uint16(i + 1)
	}
	slots := make([]uint16, n)
	for s := range slots {
		for _, act := range grp.BucketAt(s).Actions {
			if i := c.committedTo(g, g.Ports[0], act); i >= 0 {
				slots[s] = uint16(i + 1)
			}
		}
	}
	return slots
}

// shapeSlots reads the member index of each bucket of a shared select
// group (a power of two of buckets, each loading RegMember first), or nil
// for another kind of group.
func shapeSlots(g *of.Group) []uint16 {
	n := g.NumBuckets()
	if n == 0 || n&(n-1) != 0 || g.Type != of.GroupSelect {
		return nil
	}
	slots := make([]uint16, n)
	for s := range slots {
		acts := g.BucketAt(s).Actions
		if len(acts) == 0 {
			return nil
		}
		v, ok := memberIndexOf(acts[0])
		if !ok || v == 0 || v > lb.MaxMembers {
			return nil
		}
		slots[s] = uint16(v)
	}
	return slots
}

// regOf is the exact value a flow matches in a register.
func regOf(f *of.Flow, reg int) (uint32, bool) {
	v, mask, ok := f.Match.Value(of.Reg(reg))
	if !ok || mask != nil || len(v) != 4 {
		return 0, false
	}
	return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]), true
}

// memberIndexOf is the member index a bucket action loads, if it is one.
func memberIndexOf(a of.Action) (uint64, bool) {
	sf, ok := a.(of.SetField)
	if !ok || sf.Field != of.Reg(RegMember) || sf.Mask != nil {
		return 0, false
	}
	var k uint64
	for _, b := range sf.Value {
		k = k<<8 | uint64(b)
	}
	return k, true
}

// natTarget is the address a commit translates to: a CTCommitNAT that the
// compiler made, or the CT the switch reported.
func natTarget(a of.Action) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case of.CTCommitNAT:
		return a.Dst, true
	case of.CT:
		if a.NAT != nil && a.NAT.AddrMin.IsValid() {
			return netip.AddrPortFrom(a.NAT.AddrMin.Unmap(), a.NAT.PortMin), true
		}
	}
	return netip.AddrPort{}, false
}

// CommitMAC is the member address a commit translates to and the MAC it
// records for it, if it does both: what an agent that restarts knew of the
// member's MAC before it resolves it again.
func CommitMAC(a of.Action) (netip.Addr, net.HardwareAddr, bool) {
	dst, ok := natTarget(a)
	if !ok {
		return netip.Addr{}, nil, false
	}
	v, ok := labelOf(a)
	if !ok || v == 0 {
		return netip.Addr{}, nil, false
	}
	return dst.Addr(), net.HardwareAddr{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}, true
}

// labelOf is the MAC (ct_label bits 0..47) a commit records, if it does.
func labelOf(a of.Action) (uint64, bool) {
	if n, ok := a.(of.CTCommitNAT); ok {
		return n.Label.Lo & (1<<labelMACBits - 1), n.LoBits == labelMACBits
	}
	ct, ok := a.(of.CT)
	if !ok {
		return 0, false
	}
	for _, x := range ct.Exec {
		if sf, ok := x.(of.SetField); ok && sf.Field == of.FieldCTLabel && len(sf.Value) == 16 {
			var v uint64
			for _, b := range sf.Value[10:] {
				v = v<<8 | uint64(b)
			}
			return v, true
		}
	}
	return 0, false
}

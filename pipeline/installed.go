package pipeline

import (
	"net/netip"

	"github.com/ovs-dlb/dlb/lb"
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// previous returns the member index of each bucket of the installed group
// gid, by the address and port its bucket translates to, or by the member
// key it sets (DSR), or nil.
func (c *compiler) previous(gid uint32, g *lb.Checked, ps lb.PortSpec, keys []uint32) []int {
	inst := c.in.Installed[gid]
	if inst == nil {
		return nil
	}
	idx := map[netip.AddrPort]int{}
	for i, m := range g.Members {
		idx[netip.AddrPortFrom(g.MemberAddr(i), lb.TargetPort(ps, m))] = i
	}
	byKey := make(map[uint64]int, len(keys))
	for i, k := range keys {
		byKey[uint64(k)] = i
	}
	prev := make([]int, inst.NumBuckets())
	for s := range prev {
		b := inst.BucketAt(s)
		prev[s] = -1
		for _, a := range b.Actions {
			if dst, ok := natTarget(a); ok {
				if i, ok := idx[dst]; ok {
					prev[s] = i
				}
			} else if k, ok := memberKeyOf(a); ok && g.Mode == lb.ModeDSR {
				if i, ok := byKey[k]; ok {
					prev[s] = i
				}
			}
		}
	}
	return prev
}

// memberKeyOf is the member key a bucket action sets, if it is one.
func memberKeyOf(a of.Action) (uint64, bool) {
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

// natTarget is the address a bucket's commit translates to: a CTCommitNAT
// that the compiler made, or the CT the switch reported.
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

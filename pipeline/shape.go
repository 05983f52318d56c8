package pipeline

import (
	"hash/fnv"
	"net/netip"

	"github.com/ovs-dlb/dlb/lb"
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// A group's new connections are dealt over slots (lb.SlotCount of them),
// each slot a member's. The select group that hashes a connection to a
// slot does not know the member: its bucket only loads the member's index
// (MemberIndex, 1-based, stable while the member stays) into RegMember and
// resubmits to DLB_MEMBER, where one flow per VIP port and member does the
// commit. A select group is therefore a "shape", the slots' member
// indexes, and every VIP port whose slots deal the same indexes shares it:
// 10,000 groups of 10 equal members are one group of 256 buckets, not
// 2.56 million buckets (which take OVS 5 s and 900 MiB to install).

// memberLayout is what a group's slots and member indexes are, kept
// between compiles so that both stay put while the group changes.
type memberLayout struct {
	// index is each member's index, by identity; members that take no new
	// connections keep theirs while they stay in the group.
	index map[memberID]uint16
	// slots are the member index of each slot; nil when none was dealt.
	slots []uint16
}

// memberID is a member's identity in its group (lb.Check refuses two
// members with the same).
type memberID struct {
	addr netip.Addr
	port uint16
}

func idOf(g *lb.Checked, i int) memberID {
	return memberID{g.MemberAddr(i), uint16(g.Members[i].Port)}
}

// indexes gives every member of g an index: the one it has in l, or the
// lowest free one.
func (l *memberLayout) indexes(g *lb.Checked) ([]uint16, map[memberID]uint16) {
	idx := make([]uint16, len(g.Members))
	next := make(map[memberID]uint16, len(g.Members))
	var used [lb.MaxMembers + 2]bool
	for i := range g.Members {
		if v, ok := l.index[idOf(g, i)]; ok && int(v) <= lb.MaxMembers && !used[v] {
			idx[i], used[v] = v, true
		}
	}
	free := uint16(1)
	for i := range g.Members {
		if idx[i] != 0 {
			continue
		}
		for used[free] {
			free++
		}
		idx[i], used[free] = free, true
	}
	for i, v := range idx {
		next[idOf(g, i)] = v
	}
	return idx, next
}

// previous is the member (index into g.Members) of each slot of l, -1 for
// a slot whose member left.
func (l *memberLayout) previous(g *lb.Checked, idx []uint16) []int {
	if l.slots == nil {
		return nil
	}
	byIndex := make(map[uint16]int, len(idx))
	for i, v := range idx {
		byIndex[v] = i
	}
	prev := make([]int, len(l.slots))
	for s, v := range l.slots {
		prev[s] = -1
		// A member keeps its slots only if its index is the one the slot
		// names (an index handed on to a new member is not the same member).
		if i, ok := byIndex[v]; ok && l.index[idOf(g, i)] == v {
			prev[s] = i
		}
	}
	return prev
}

// shapeOut is a select group that deals slots to member indexes, with the
// last compile that used it.
type shapeOut struct {
	id    uint32
	group *of.Group
	gen   uint64
}

// shapeKey is a shape as a map key.
func shapeKey(slots []uint16) string {
	b := make([]byte, 2*len(slots))
	for i, v := range slots {
		b[2*i], b[2*i+1] = byte(v>>8), byte(v)
	}
	return string(b)
}

// shape finds or makes the select group of a shape. Its id is a hash of
// the shape, probed past the ids of other shapes, so the same shapes get
// the same ids on every host and after every restart.
func (c *compiler) shape(slots []uint16) *shapeOut {
	k := c.cache
	key := shapeKey(slots)
	if sh := k.shapes[key]; sh != nil {
		return sh
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	id := GroupIDBase | h.Sum32()&^GroupIDMask
	for k.shapeIDs[id] != nil {
		id = GroupIDBase | (id+1)&^GroupIDMask
	}
	sh := &shapeOut{id: id, group: c.shapeGroup(id, slots)}
	k.shapes[key], k.shapeIDs[id] = sh, sh
	return sh
}

// shapeGroup is the select group of a shape: bucket s loads slot s's
// member index and goes on to DLB_MEMBER. dp_hash deals exactly one hash
// slot to each of a power-of-two number of equal-weight buckets, in list
// order.
func (c *compiler) shapeGroup(id uint32, slots []uint16) *of.Group {
	grp := of.NewGroup(id, of.GroupSelect).WithSelection("dp_hash", 0)
	grp.Slots = make([]uint16, len(slots))
	pos := map[uint16]uint16{}
	for s, v := range slots {
		p, ok := pos[v]
		if !ok {
			p = uint16(len(grp.SlotActions))
			pos[v] = p
			grp.SlotActions = append(grp.SlotActions, []of.Action{of.Set(of.Reg(RegMember), uint64(v)), of.ResubmitTable(c.t(TableMember))})
		}
		grp.Slots[s] = p
	}
	return grp
}

// useShape emits a shape's group once per compile.
func (c *compiler) useShape(sh *shapeOut) {
	if sh.gen == c.cache.gen {
		return
	}
	sh.gen = c.cache.gen
	c.out.Groups = append(c.out.Groups, sh.group)
}

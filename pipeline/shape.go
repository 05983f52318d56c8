package pipeline

import (
	"hash/fnv"

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
	// ids identify the members as last compiled (memberIdentity), idx
	// are their indexes (0: none known).
	ids []uint64
	idx []uint16
	// slots are the member index of each slot (a shape's, shared); nil
	// when none was dealt.
	slots []uint16
}

// memberIdentity is a hash of what makes a member itself in its group (its
// address and port: lb.Check refuses two members with the same).
func memberIdentity(g *lb.Checked, i int) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for _, b := range g.MemberAddr(i).AsSlice() {
		h = (h ^ uint64(b)) * prime
	}
	p := g.Members[i].Port
	h = (h ^ uint64(p&0xff)) * prime
	return (h ^ uint64(p>>8)) * prime
}

// indexes gives every member of g an index: the one it had in l, or the
// lowest free one; kept says which had one.
func (l *memberLayout) indexes(g *lb.Checked) (idx []uint16, ids []uint64, kept []bool) {
	n := len(g.Members)
	idx, ids, kept = make([]uint16, n), make([]uint64, n), make([]bool, n)
	var used [lb.MaxMembers + 2]bool
	for i := range g.Members {
		ids[i] = memberIdentity(g, i)
		for j, id := range l.ids {
			if v := l.idx[j]; id == ids[i] && v != 0 && int(v) <= lb.MaxMembers && !used[v] {
				idx[i], used[v], kept[i] = v, true, true
				break
			}
		}
	}
	free := uint16(1)
	for i := range idx {
		if idx[i] != 0 {
			continue
		}
		for used[free] {
			free++
		}
		idx[i], used[free] = free, true
	}
	return idx, ids, kept
}

// previous is the member (index into g.Members) of each slot of l, -1 for
// a slot whose member left (an index handed on to a new member is not that
// member's slot).
func (l *memberLayout) previous(idx []uint16, kept []bool) []int {
	if l.slots == nil {
		return nil
	}
	var byIndex [lb.MaxMembers + 2]int16
	for i, v := range idx {
		if kept[i] {
			byIndex[v] = int16(i + 1)
		}
	}
	prev := make([]int, len(l.slots))
	for s, v := range l.slots {
		prev[s] = int(byIndex[min(int(v), lb.MaxMembers+1)]) - 1
	}
	return prev
}

// shapeOut is a select group that deals slots to member indexes, with the
// last compile that used it.
type shapeOut struct {
	id    uint32
	slots []uint16
	group *of.Group
	gen   uint64
}

// shapeKey is a shape as a map key.
func shapeKey(slots []uint16) string { return string(appendShapeKey(nil, slots)) }

func appendShapeKey(b []byte, slots []uint16) []byte {
	for _, v := range slots {
		b = append(b, byte(v>>8), byte(v))
	}
	return b
}

// shape finds or makes the select group of a shape. Its id is a hash of
// the shape, probed past the ids of other shapes, so the same shapes get
// the same ids on every host and after every restart.
func (c *compiler) shape(slots []uint16) *shapeOut {
	k := c.cache
	k.scratch = appendShapeKey(k.scratch[:0], slots)
	if sh := k.shapes[string(k.scratch)]; sh != nil { // no allocation
		return sh
	}
	key := string(k.scratch)
	h := fnv.New32a()
	h.Write([]byte(key))
	id := GroupIDBase | h.Sum32()&^GroupIDMask
	for k.shapeIDs[id] != nil {
		id = GroupIDBase | (id+1)&^GroupIDMask
	}
	sh := &shapeOut{id: id, slots: slots, group: c.shapeGroup(id, slots)}
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
	if c.first(&sh.gen) {
		c.out.Groups = append(c.out.Groups, sh.group)
	}
}

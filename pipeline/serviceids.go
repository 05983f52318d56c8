package pipeline

import (
	"hash/fnv"
	"slices"
)

// serviceIDAssigner keeps ServiceIDs' answer for a set of names that
// changes a few names at a time, without sorting and probing the whole
// set again for each change: at 10,000 groups that was 2 ms and a
// megabyte of garbage per change.
//
// ServiceIDs deals ids in name order, each name taking the first free id
// from its hash on (0 is never used). Its answer for a set with a few
// names more or fewer is the old one changed in place in the common case:
//
//   - an added name whose hash's id is free takes it and moves nobody: a
//     name dealt after it in name order probed only through ids that were
//     taken (a probe stops at the first free id), so it never passed that
//     id, and still does not;
//   - a removed name whose id's successor is free frees its id and moves
//     nobody: a probe that passed through that id would have gone on to
//     the successor, which would then be taken.
//
// Anything else (an added name whose id is taken, a removed name whose
// id's successor is taken: about one change in a hundred at 10,000 names
// of 2^20 ids) deals the whole set again.
type serviceIDAssigner struct {
	bits  uint
	ids   map[string]uint32
	owner map[uint32]string
	// present is scratch space: the names of the set being updated to.
	present map[string]struct{}
}

func newServiceIDAssigner(bits uint) *serviceIDAssigner {
	return &serviceIDAssigner{bits: bits}
}

// homeID is a name's first candidate id.
func homeID(name string, bits uint) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32() & (1<<bits - 1)
}

// dealIDs is ServiceIDs over an id space of the given bits.
func dealIDs(names []string, bits uint) map[string]uint32 {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	ids := make(map[string]uint32, len(sorted))
	used := make(map[uint32]bool, len(sorted))
	mask := uint32(1)<<bits - 1
	for _, n := range sorted {
		id := homeID(n, bits)
		for used[id] || id == 0 {
			id = (id + 1) & mask
		}
		used[id] = true
		ids[n] = id
	}
	return ids
}

// update brings the ids to the set names (each name once) and returns
// them; changed, when not nil, lists every name that may be new since the
// last update (others may be missing from it: removals are found by
// count). The map returned is the assigner's own: read-only, valid until
// the next update.
func (a *serviceIDAssigner) update(names []string, changed map[string]bool) map[string]uint32 {
	if a.ids == nil {
		return a.deal(names)
	}
	var added []string
	if changed != nil {
		for n := range changed {
			if _, ok := a.ids[n]; !ok {
				added = append(added, n)
			}
		}
	} else {
		for _, n := range names {
			if _, ok := a.ids[n]; !ok {
				added = append(added, n)
			}
		}
	}
	// Names in added may have gone again (a change list names removals
	// too): keep those in names.
	var removed []string
	if len(a.ids)+len(added) != len(names) {
		if a.present == nil {
			a.present = make(map[string]struct{}, len(names))
		}
		clear(a.present)
		for _, n := range names {
			a.present[n] = struct{}{}
		}
		kept := added[:0]
		for _, n := range added {
			if _, ok := a.present[n]; ok {
				kept = append(kept, n)
			}
		}
		added = kept
		for n := range a.ids {
			if _, ok := a.present[n]; !ok {
				removed = append(removed, n)
			}
		}
		if len(a.ids)+len(added)-len(removed) != len(names) {
			return a.deal(names) // names listed twice, or a change missed
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return a.ids
	}
	mask := uint32(1)<<a.bits - 1
	// Removals first: each frees an id whose successor is free.
	for _, n := range removed {
		id := a.ids[n]
		next := (id + 1) & mask
		if next == 0 {
			next = 1 // 0 is never dealt: a probe skips it
		}
		if _, taken := a.owner[next]; taken {
			return a.deal(names)
		}
		delete(a.ids, n)
		delete(a.owner, id)
	}
	for _, n := range added {
		id := homeID(n, a.bits)
		if _, taken := a.owner[id]; taken || id == 0 {
			return a.deal(names)
		}
		a.ids[n], a.owner[id] = id, n
	}
	return a.ids
}

// deal deals every id again.
func (a *serviceIDAssigner) deal(names []string) map[string]uint32 {
	a.ids = dealIDs(names, a.bits)
	a.owner = make(map[uint32]string, len(a.ids))
	for n, id := range a.ids {
		a.owner[id] = n
	}
	return a.ids
}

// name is the name holding id, as of the last update.
func (a *serviceIDAssigner) name(id uint32) (string, bool) {
	n, ok := a.owner[id]
	return n, ok
}

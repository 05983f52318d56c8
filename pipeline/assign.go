package pipeline

import "github.com/ovs-dlb/dlb/lb"

// Assign deals b slots to members in proportion to their weights (0 for a
// member that takes no new connections) and returns the member index of
// each slot, or -1 for every slot when no member has weight.
//
// prev is the previous assignment (nil when there is none), of any
// power-of-two length: a different one is resized first, so every hash
// keeps its member across a new slot count. Every slot keeps its member
// while that member is still under its new quota, so adding a member to N
// moves only the slots it takes (about 1/(N+1)), removing one moves only
// its own, and changing a weight moves only the difference.
func Assign(b int, weights []int, prev []int) []int {
	slots := make([]int, b)
	for i := range slots {
		slots[i] = -1
	}
	quota := lb.SlotQuotas(b, weights)
	if quota == nil {
		return slots
	}
	have := make([]int, len(weights))
	prev = resized(prev, b)
	if len(prev) == b {
		for s, m := range prev {
			if m >= 0 && m < len(weights) && have[m] < quota[m] {
				slots[s] = m
				have[m]++
			}
		}
	}
	// Deal the free slots round-robin among the members under quota.
	next := 0
	for s := range slots {
		if slots[s] >= 0 {
			continue
		}
		for have[next%len(weights)] >= quota[next%len(weights)] {
			next++
		}
		m := next % len(weights)
		slots[s] = m
		have[m]++
		next++
	}
	return slots
}

// resized is an installed assignment as b slots: dp_hash sends a hash h
// to slot h mod (slot count), so with twice the slots, slot s takes the
// hashes of slot s mod n, and with half, slot s keeps those of its first
// half. Unchanged when either length is not a power of two.
func resized(prev []int, b int) []int {
	n := len(prev)
	switch {
	case n == b || n == 0 || n&(n-1) != 0 || b&(b-1) != 0:
		return prev
	case n < b:
		out := make([]int, b)
		for s := range out {
			out[s] = prev[s%n]
		}
		return out
	default:
		return prev[:b]
	}
}

package lb

import "math"

// Slots: a group's new connections are dealt by hash over a power-of-two
// number of slots (OVS's dp_hash allows 16 to 256), each slot a member's,
// in proportion to the active members' weights. This file holds the
// arithmetic every part agrees on: how many slots a weight set needs and
// how far from its weights the best split over them is. Which slot goes to
// which member is the pipeline's.
const (
	MinSlots = 16
	MaxSlots = 256
	// MaxMembers is the most members a group may have: each active member
	// needs a slot of its own.
	MaxMembers = MaxSlots
)

// The accuracy asked of a split: every active member's share of the
// slots within max(AbsShareError, RelShareError x its weight's share) of
// its weight's share, and with equal weights the most slots at most
// 1+RelShareError times the mean.
const (
	AbsShareError = 0.005
	RelShareError = 0.03
)

// Balance is how closely a slot count honours a weight set.
type Balance struct {
	// Slots is the slot count.
	Slots int
	// WorstError is the largest distance, in share of new connections,
	// between a member's share of the slots and its weight's share (0.004
	// is 0.4 percentage points).
	WorstError float64
	// WorstMember is that member's index, -1 when no member is active.
	WorstMember int
	// MaxOverMean is the most slots a member has over the mean, for equal
	// weights (1 otherwise).
	MaxOverMean float64
	// Within reports whether every member is within the bound.
	Within bool
}

// BalanceOf measures the split of b slots by SlotQuotas.
func BalanceOf(b int, weights []int) Balance {
	q := SlotQuotas(b, weights)
	bal := Balance{Slots: b, WorstMember: -1, MaxOverMean: 1, Within: true}
	if q == nil {
		return bal
	}
	total, active, equal, first := 0, 0, true, 0
	for _, w := range weights {
		if w > 0 {
			if active == 0 {
				first = w
			}
			equal = equal && w == first
			total += w
			active++
		}
	}
	worstExcess := math.Inf(-1)
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		share := float64(w) / float64(total)
		got := float64(q[i]) / float64(b)
		e := math.Abs(got - share)
		if e > bal.WorstError || bal.WorstMember < 0 {
			bal.WorstError, bal.WorstMember = e, i
		}
		allowed := max(AbsShareError, RelShareError*share)
		if e-allowed > 1e-12 || q[i] == 0 {
			bal.Within = false
		}
		worstExcess = max(worstExcess, got/share)
	}
	if equal {
		bal.MaxOverMean = worstExcess
		if bal.MaxOverMean > 1+RelShareError+1e-12 {
			bal.Within = false
		}
	}
	return bal
}

// SlotCount is how many slots a weight set gets (weights of members that
// take no new connections are 0): the smallest power of two from MinSlots
// to MaxSlots whose split is Within, or MaxSlots when none is. prev, the
// count installed now (0 for none), is kept while it is Within and never
// halved: a count that grows keeps every hash on its member (the pipeline
// tiles the installed slots), one that shrinks would move half of them.
func SlotCount(weights []int, prev int) int {
	start := MinSlots
	if prev >= MinSlots && prev <= MaxSlots && prev&(prev-1) == 0 {
		if BalanceOf(prev, weights).Within || prev == MaxSlots {
			return prev
		}
		start = 2 * prev
	}
	for b := start; b < MaxSlots; b *= 2 {
		if BalanceOf(b, weights).Within {
			return b
		}
	}
	return MaxSlots
}

// GroupBalance is the split a group's active members get on a host that
// has none installed yet (SlotCount from nothing).
func GroupBalance(g *Group) Balance {
	w := ActiveWeights(g)
	return BalanceOf(SlotCount(w, 0), w)
}

// ActiveWeights are the members' weights for new connections: 0 for a
// member that is draining or disabled.
func ActiveWeights(g *Group) []int {
	w := make([]int, len(g.Members))
	for i, m := range g.Members {
		if m.StateOf() == StateActive {
			w[i] = m.WeightOf()
		}
	}
	return w
}

// SlotQuotas splits b slots by weight with the Huntington-Hill method
// (the divisor method that gives every positive weight a slot first, then
// each next slot to the member with the most weight per sqrt(k(k+1)) of
// the k it has; ties to the lower index); nil when no weight is positive.
//
// A divisor method, unlike largest remainders, never takes a slot from a
// member because another one left or came: when a member goes, the others'
// quotas only grow; when one comes, they only shrink. So the slots that
// move are the ones that must (TestSlotsSweep).
func SlotQuotas(b int, weights []int) []int {
	total, active := 0, 0
	for _, w := range weights {
		if w > 0 {
			total += w
			active++
		}
	}
	if total == 0 || b <= 0 {
		return nil
	}
	q := make([]int, len(weights))
	if active >= b {
		// One slot each for the b heaviest (the lower index first).
		for given := 0; given < b; given++ {
			best := -1
			for i, w := range weights {
				if w > 0 && q[i] == 0 && (best < 0 || w > weights[best]) {
					best = i
				}
			}
			q[best] = 1
		}
		return q
	}
	// Start from the rounding at the divisor total/b, then add or take
	// slots one at a time by priority.
	d := float64(total) / float64(b)
	sum := 0
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		x := float64(w) / d
		k := int(x)
		if float64(k)*float64(k+1) <= x*x {
			k++
		}
		q[i] = max(k, 1)
		sum += q[i]
	}
	for ; sum < b; sum++ {
		best, bp := -1, 0.0
		for i, w := range weights {
			if w <= 0 {
				continue
			}
			if p := float64(w) / math.Sqrt(float64(q[i])*float64(q[i]+1)); best < 0 || p > bp {
				best, bp = i, p
			}
		}
		q[best]++
	}
	for ; sum > b; sum-- {
		worst, wp := -1, 0.0
		for i, w := range weights {
			if w <= 0 || q[i] <= 1 {
				continue
			}
			if p := float64(w) / math.Sqrt(float64(q[i]-1)*float64(q[i])); worst < 0 || p <= wp {
				worst, wp = i, p
			}
		}
		q[worst]--
	}
	return q
}

package lb

// BucketCount is how many buckets a group's select group gets: 64, which
// keeps every member within 1/64 of its share, or 256 when the lightest
// active member's share is below 1/16 (so it still gets 16 or more).
// OVS's dp_hash deals exactly one hash slot per bucket only when the
// buckets have equal weights and their count is a power of two up to 256.
func BucketCount(weights []int) int {
	total, least := 0, 0
	for _, w := range weights {
		if w <= 0 {
			continue
		}
		total += w
		if least == 0 || w < least {
			least = w
		}
	}
	if least == 0 || total <= 16*least {
		return 64
	}
	return 256
}

// Assign deals b slots to members in proportion to their weights (0 for a
// member that takes no new connections) and returns the member index of
// each slot, or -1 for every slot when no member has weight.
//
// prev is the previous assignment (nil or of another length when there is
// none). Every slot keeps its member while that member is still under its
// new quota, so adding a member to N moves only the slots it takes (about
// 1/(N+1)), removing one moves only its own, and changing a weight moves
// only the difference.
func Assign(b int, weights []int, prev []int) []int {
	slots := make([]int, b)
	for i := range slots {
		slots[i] = -1
	}
	quota := quotas(b, weights)
	if quota == nil {
		return slots
	}
	have := make([]int, len(weights))
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

// quotas splits b slots by weight with the largest-remainder method
// (ties to the lower index); nil when no weight is positive.
func quotas(b int, weights []int) []int {
	total := 0
	for _, w := range weights {
		if w > 0 {
			total += w
		}
	}
	if total == 0 {
		return nil
	}
	q := make([]int, len(weights))
	rem := make([]int, len(weights))
	given := 0
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		q[i] = b * w / total
		rem[i] = b * w % total
		given += q[i]
	}
	for ; given < b; given++ {
		best := -1
		for i, w := range weights {
			if w > 0 && (best < 0 || rem[i] > rem[best]) {
				best = i
			}
		}
		q[best]++
		rem[best] = -1
	}
	return q
}

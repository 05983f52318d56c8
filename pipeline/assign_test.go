package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ovs-dlb/dlb/lb"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func counts(slots []int, n int) []int {
	c := make([]int, n)
	for _, m := range slots {
		c[m]++
	}
	return c
}

func moved(a, b []int) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// TestSlotsSweep: over weight sets a user may give (random sets of 1-64
// members with weights 1-1000, and the named ones), every active member's
// share of the slots Assign deals is within max(0.5 points, 3 % of its
// share) of its weight's share, equal weights give max/mean <= 1.03, and
// where 256 slots cannot do that lb.BalanceOf says so; adding a member
// moves only the slots it takes (and, when the slot count grows, the
// rounding of the others' quotas), removing one moves only its own.
func TestSlotsSweep(t *testing.T) {
	equal := func(n int) []int {
		w := make([]int, n)
		for i := range w {
			w[i] = 100
		}
		return w
	}
	sets := [][]int{{1, 2, 3, 4}, {1, 100}, {65535, 1}, equal(1), equal(2), equal(3), equal(5), equal(7), equal(10), equal(13), equal(50)}
	rng := rand.New(rand.NewPCG(16, 2026))
	for range 500 {
		w := make([]int, 1+rng.IntN(64))
		for i := range w {
			w[i] = 1 + rng.IntN(1000)
		}
		sets = append(sets, w)
	}
	hist, short := map[int]int{}, 0
	for _, w := range sets {
		b := lb.SlotCount(w, 0)
		hist[b]++
		bal := lb.BalanceOf(b, w)
		slots := Assign(b, w, nil)
		c := counts(slots, len(w))
		total := 0
		for _, x := range w {
			total += x
		}
		worst, most := 0.0, 0
		for i, x := range w {
			share := float64(x) / float64(total)
			got := float64(c[i]) / float64(b)
			worst = max(worst, math.Abs(got-share))
			most = max(most, c[i])
			if bal.Within {
				assert.LessOrEqual(t, math.Abs(got-share), max(lb.AbsShareError, lb.RelShareError*share)+1e-9,
					"weights %v: member %d has %d of %d slots", w, i, c[i], b)
				assert.Positive(t, c[i], "weights %v: member %d has a slot", w, i)
			}
		}
		assert.InDelta(t, bal.WorstError, worst, 1e-9, "weights %v: the reported worst error is the dealt one", w)
		if slices.Min(w) == slices.Max(w) && bal.Within {
			assert.LessOrEqual(t, float64(most)*float64(len(w))/float64(b), 1+lb.RelShareError+1e-9, "%d equal members", len(w))
		}
		if !bal.Within {
			short++
			assert.Equal(t, lb.MaxSlots, b, "weights %v: a set short of the bound has every slot there is", w)
		}
		checkRemap(t, w)
	}
	t.Logf("slot counts over %d sets: %v; short of the bound at 256 slots: %d", len(sets), hist, short)
	assert.Equal(t, 1, short, "only the 50 equal members")
	for _, n := range []int{3, 5, 7, 10, 13} {
		assert.True(t, lb.BalanceOf(lb.SlotCount(equal(n), 0), equal(n)).Within, "%d equal members", n)
	}
	assert.True(t, lb.BalanceOf(lb.SlotCount([]int{1, 2, 3, 4}, 0), []int{1, 2, 3, 4}).Within)
	bal := lb.BalanceOf(lb.SlotCount(equal(50), 0), equal(50))
	assert.False(t, bal.Within, "50 equal members cannot be within 3 %% of each other on 256 slots")
	assert.InDelta(t, 6.0/5.12, bal.MaxOverMean, 1e-9, "and the balance says how far: 6 slots where the mean is 5.12")
}

// checkRemap adds a member of the mean weight to w, then removes member 0,
// and checks that only the slots that must move do.
func checkRemap(t *testing.T, w []int) {
	t.Helper()
	b := lb.SlotCount(w, 0)
	before := Assign(b, w, nil)
	mean := 0
	for _, x := range w {
		mean += x
	}
	mean = max(1, mean/len(w))
	next := append(slices.Clone(w), mean)
	nb := lb.SlotCount(next, b)
	require.GreaterOrEqual(t, nb, b, "a slot count is never halved")
	after := Assign(nb, next, before)
	tiled := resized(before, nb)
	// A slot keeps its member unless that member is over its new quota:
	// the moves are exactly the members' surpluses.
	was, now := counts(tiled, len(next)), counts(after, len(next))
	surplus := 0
	for i := range next {
		surplus += max(0, was[i]-now[i])
	}
	assert.Equal(t, surplus, moved(tiled, after), "weights %v + %d: only surplus slots move", w, mean)
	if nb == b {
		for s := range after {
			if tiled[s] != after[s] {
				assert.Equal(t, len(w), after[s], "weights %v + %d: moved slots go to the new member", w, mean)
			}
		}
	}
	// Member 0 leaves (weight 0, as when it drains): nothing else moves.
	gone := slices.Clone(w)
	gone[0] = 0
	if len(w) > 1 {
		removed := Assign(b, gone, before)
		for s := range before {
			if before[s] != 0 {
				assert.Equal(t, before[s], removed[s], "weights %v: member %d's slot %d stays when member 0 leaves", w, before[s], s)
			}
		}
	}
}

func TestAssignIsStable(t *testing.T) {
	for n := 1; n <= 8; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			w := make([]int, n)
			for i := range w {
				w[i] = 100
			}
			b := 64
			before := Assign(b, w, nil)
			// Add a member: only its own slots move, about b/(n+1).
			after := Assign(b, append(append([]int{}, w...), 100), before)
			m := moved(before, after)
			assert.LessOrEqual(t, float64(m)/float64(b), 1/float64(n+1)+1/float64(b)+1e-9)
			for s := range after {
				if before[s] != after[s] {
					assert.Equal(t, n, after[s], "moved slots go to the new member")
				}
			}
			// Remove member 0: nothing else moves.
			w0 := append([]int{0}, w[1:]...)
			removed := Assign(b, w0, before)
			for s := range before {
				if before[s] != 0 {
					assert.Equal(t, before[s], removed[s])
				}
			}
			// Draining keeps the others where they are, too.
			assert.Equal(t, removed, Assign(b, w0, removed))
		})
	}
	// A weight change moves only the difference.
	before := Assign(64, []int{1, 1}, nil)
	after := Assign(64, []int{1, 3}, before)
	assert.Equal(t, 16, moved(before, after))
}

// TestAssignAcrossSlotCounts: when a group's slot count grows (a member
// whose share needs more slots), the installed slots are tiled onto the
// new count first, so every hash keeps its member and only the new
// member's quota moves; an installed count is never halved.
func TestAssignAcrossSlotCounts(t *testing.T) {
	w := []int{100, 100}
	b := lb.SlotCount(w, 0)
	require.Equal(t, 16, b)
	before := Assign(b, w, nil)
	next := append(slices.Clone(w), 100)
	nb := lb.SlotCount(next, b)
	require.Equal(t, 128, nb, "3 equal members need 128 slots where 2 need 16")
	after := Assign(nb, next, before)
	x := resized(before, nb)
	takes := counts(after, len(next))[len(w)]
	assert.Equal(t, takes, moved(x, after), "only the new member's slots move, hash by hash")
	for s := range after {
		if x[s] != after[s] {
			assert.Equal(t, len(w), after[s], "moved slots go to the new member")
		}
	}
	assert.Equal(t, nb, lb.SlotCount(w, nb), "back to 2 members: the count stays (halving moves half the hashes)")
	assert.Equal(t, []int{0, 1, 0, 1}, resized([]int{0, 1}, 4))
	assert.Equal(t, []int{0, 1}, resized([]int{0, 1, 2, 3}, 2))
}

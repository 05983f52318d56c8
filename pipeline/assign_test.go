package pipeline

import (
	"fmt"
	"slices"
	"testing"

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

func TestAssignFollowsWeights(t *testing.T) {
	for _, w := range [][]int{{1, 1, 1}, {1, 2, 3}, {1, 1, 1, 10}, {100, 100, 100, 100, 100}, {65535, 1}} {
		b := BucketCount(w, 0)
		slots := Assign(b, w, nil)
		c := counts(slots, len(w))
		total := 0
		for _, x := range w {
			total += x
		}
		for i := range w {
			want := float64(b) * float64(w[i]) / float64(total)
			assert.InDelta(t, want, float64(c[i]), 1, "weights %v: member %d got %d of %d slots", w, i, c[i], b)
			assert.InDelta(t, float64(w[i])/float64(total), float64(c[i])/float64(b), maxShareError, "weights %v member %d", w, i)
			if w[i] >= total/256 {
				assert.Positive(t, c[i], "weights %v: member %d gets slots", w, i)
			}
		}
	}
	assert.Equal(t, 32, BucketCount([]int{1, 2, 3}, 0))
	assert.Equal(t, 32, BucketCount([]int{1, 1, 1, 10}, 0))
	assert.Equal(t, 64, BucketCount([]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0))
	assert.Equal(t, 256, BucketCount([]int{1, 300}, 0))
	assert.Equal(t, 64, BucketCount([]int{1, 1, 1}, 64), "an installed count that still fits stays")
	assert.Equal(t, []int{-1, -1}, Assign(2, []int{0, 0}, nil), "no active member, no slot")
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
	w := []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}
	b := BucketCount(w, 0)
	before := Assign(b, w, nil)
	next := append(slices.Clone(w), 100)
	nb := BucketCount(next, b)
	require.Equal(t, 2*b, nb, "11 equal members need twice the slots of 10")
	after := Assign(nb, next, before)
	x := resized(before, nb)
	takes := counts(after, len(next))[len(w)]
	assert.Equal(t, takes, moved(x, after), "only the new member's slots move, hash by hash")
	for s := range after {
		if x[s] != after[s] {
			assert.Equal(t, len(w), after[s], "moved slots go to the new member")
		}
	}
	assert.Equal(t, nb, BucketCount(w, nb), "back to 10 members: the count stays (halving moves half the hashes)")
	assert.Equal(t, []int{0, 1, 0, 1}, resized([]int{0, 1}, 4))
	assert.Equal(t, []int{0, 1}, resized([]int{0, 1, 2, 3}, 2))
}

package pipeline

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServiceIDAssignerMatchesDealing: over random sequences of names
// added and removed, in an id space small enough for collisions to be the
// rule (6 bits: up to 40 names of 63 ids), the assigner's ids are always
// ServiceIDs' answer for the same set, whether the compile names what
// changed, names too much, or says nothing; and most changes are in
// place.
func TestServiceIDAssignerMatchesDealing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changed func(added, removed []string) map[string]bool
	}{
		{"nothing named", func(_, _ []string) map[string]bool { return nil }},
		{"added and removed named", func(added, removed []string) map[string]bool {
			m := map[string]bool{}
			for _, n := range append(append([]string(nil), added...), removed...) {
				m[n] = true
			}
			return m
		}},
		{"added named", func(added, _ []string) map[string]bool {
			m := map[string]bool{}
			for _, n := range added {
				m[n] = true
			}
			return m
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for _, bits := range []uint{6, 20} {
				a := newServiceIDAssigner(bits)
				present := map[string]bool{}
				deals := 0
				next := 0
				for step := 0; step < 3000; step++ {
					var added, removed []string
					for k := rng.IntN(3); k >= 0; k-- {
						if len(present) > 0 && (rng.IntN(2) == 0 || len(present) >= 40) {
							for n := range present {
								removed = append(removed, n)
								delete(present, n)
								break
							}
						} else {
							n := fmt.Sprintf("g%d", next)
							next++
							added = append(added, n)
							present[n] = true
						}
					}
					names := make([]string, 0, len(present))
					for n := range present {
						names = append(names, n)
					}
					before := a.owner
					got := a.update(names, tc.changed(added, removed))
					if step > 0 && fmt.Sprintf("%p", before) != fmt.Sprintf("%p", a.owner) {
						deals++
					}
					require.Equal(t, dealIDs(names, bits), got, "step %d: +%v -%v", step, added, removed)
				}
				t.Logf("%d bits: %d of 3000 changes dealt every id again", bits, deals)
				if bits == 20 {
					require.Zero(t, deals, "no collision among 40 names of 2^20 ids")
				} else {
					require.Less(t, deals, 2900, "some changes are made in place even with collisions the rule")
				}
			}
		})
	}
}

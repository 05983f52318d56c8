package lb

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample(at float64, capacity []int, active, arrivals []float64) LoadSample {
	keys := make([]string, len(capacity))
	for i := range keys {
		keys[i] = string(rune('a' + i))
	}
	return LoadSample{At: time.Unix(1000, 0).Add(time.Duration(at * float64(time.Second))), Keys: keys, Capacity: capacity, Active: active, Arrivals: arrivals}
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func TestSharesFirstSampleFollowsLoad(t *testing.T) {
	tests := []struct {
		name     string
		capacity []int
		active   []float64
		check    func(t *testing.T, s []float64)
	}{
		{"idle: by capacity", []int{1, 2, 1}, []float64{0, 0, 0}, func(t *testing.T, s []float64) {
			assert.InDeltaSlice(t, []float64{0.25, 0.5, 0.25}, s, 1e-9)
		}},
		{"none takes connections", []int{0, 0}, []float64{5, 5}, func(t *testing.T, s []float64) {
			assert.Equal(t, []float64{0, 0}, s)
		}},
		{"a draining member gets nothing", []int{1, 0, 1}, []float64{0, 0, 0}, func(t *testing.T, s []float64) {
			assert.InDeltaSlice(t, []float64{0.5, 0, 0.5}, s, 1e-9)
		}},
		{"loaded members get the floor, within one step", []int{1, 1, 1, 1}, []float64{200, 200, 0, 0}, func(t *testing.T, s []float64) {
			// From the capacities (a first sample) a step of at most
			// MaxShareStep towards (floor, floor, rest, rest).
			for i, x := range s {
				assert.LessOrEqual(t, math.Abs(x-0.25), MaxShareStep+1e-9, "member %d", i)
			}
			assert.Less(t, s[0], 0.05)
			assert.Greater(t, s[2], 0.45)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lt := NewLoadTracker()
			s := lt.Shares(sample(0, tt.capacity, tt.active, make([]float64, len(tt.active))))
			tt.check(t, s)
			if sum(s) > 0 {
				assert.InDelta(t, 1, sum(s), 1e-9)
			}
		})
	}
}

func TestSharesConvergeAndKeepAFloor(t *testing.T) {
	lt := NewLoadTracker()
	var s []float64
	for k := 0; k < 10; k++ {
		s = lt.Shares(sample(float64(k), []int{1, 1, 1, 1}, []float64{200, 200, 0, 0}, []float64{200, 200, 0, 0}))
	}
	floor := FloorShare / 4
	assert.InDeltaSlice(t, []float64{floor, floor, 0.5 - floor, 0.5 - floor}, s, 1e-6, "%v", s)
	// Fallback: back to the capacities, a bounded step at a time.
	prev := s
	for k := 10; k < 20; k++ {
		smp := sample(float64(k), []int{1, 1, 1, 1}, []float64{200, 200, 0, 0}, []float64{200, 200, 0, 0})
		smp.Fallback = true
		s = lt.Shares(smp)
		for i := range s {
			assert.LessOrEqual(t, math.Abs(s[i]-prev[i]), MaxShareStep+1e-9)
		}
		prev = s
	}
	assert.InDeltaSlice(t, []float64{0.25, 0.25, 0.25, 0.25}, s, 1e-6)
}

func TestSharesFollowMembersByKey(t *testing.T) {
	lt := NewLoadTracker()
	for k := 0; k < 10; k++ {
		lt.Shares(sample(float64(k), []int{1, 1}, []float64{100, 0}, []float64{100, 0}))
	}
	// The group changes: member "b" goes first, "c" joins.
	s := lt.Shares(LoadSample{At: time.Unix(1010, 0), Keys: []string{"b", "a", "c"}, Capacity: []int{1, 1, 1},
		Active: []float64{0, 100, 0}, Arrivals: []float64{0, 100, 0}})
	require.Len(t, s, 3)
	assert.Greater(t, s[0], s[1], "b, less loaded, keeps more than a: %v", s)
	assert.Len(t, lt.members, 3)
	lt.Shares(LoadSample{At: time.Unix(1011, 0), Keys: []string{"c"}, Capacity: []int{1}, Active: []float64{0}, Arrivals: []float64{0}})
	assert.Len(t, lt.members, 1, "members gone are forgotten")
}

func TestShareSlots(t *testing.T) {
	tests := []struct {
		name   string
		shares []float64
		prev   []int
		want   []int
	}{
		{"even", []float64{0.5, 0.5}, nil, []int{128, 128}},
		{"a tiny share keeps a slot", []float64{0.999, 0.001, 0}, nil, []int{255, 1, 0}},
		{"within one slot: unchanged", []float64{0.5, 0.5}, []int{129, 127}, []int{129, 127}},
		{"two slots off: dealt anew", []float64{0.5, 0.5}, []int{130, 126}, []int{128, 128}},
		{"a member back: dealt anew", []float64{0.5, 0.5}, []int{256, 0}, []int{128, 128}},
		{"nobody", []float64{0, 0}, []int{128, 128}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ShareSlots(tt.shares, tt.prev))
		})
	}
}

package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSlotCount(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		prev    int
		want    int
		within  bool
	}{
		{"one member", []int{5}, 0, 16, true},
		{"two equal", []int{1, 1}, 0, 16, true},
		{"1:2:3:4", []int{1, 2, 3, 4}, 0, 128, true},
		{"ten equal", []int{7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, 0, 256, true},
		{"1:100", []int{1, 100}, 0, 128, true},
		{"draining members take nothing", []int{0, 1, 0, 1}, 0, 16, true},
		{"installed count kept while within", []int{1, 1}, 64, 64, true},
		{"installed count grows when short", []int{1, 1, 1}, 32, 128, true},
		{"nobody active", []int{0, 0}, 0, 16, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := SlotCount(tt.weights, tt.prev)
			assert.Equal(t, tt.want, b)
			assert.Equal(t, tt.within, BalanceOf(b, tt.weights).Within)
		})
	}
}

func TestSlotQuotas(t *testing.T) {
	tests := []struct {
		b       int
		weights []int
		want    []int
	}{
		{16, []int{1, 1}, []int{8, 8}},
		{128, []int{1, 2, 3, 4}, []int{13, 26, 38, 51}},
		{16, []int{65535, 1}, []int{15, 1}},
		{4, []int{1, 1, 1, 1, 1, 1}, []int{1, 1, 1, 1, 0, 0}},
		{16, []int{0, 3, 0}, []int{0, 16, 0}},
		{16, []int{0, 0}, nil},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, SlotQuotas(tt.b, tt.weights), "%d slots, weights %v", tt.b, tt.weights)
	}
}

func TestBalanceOf(t *testing.T) {
	bal := BalanceOf(32, []int{1, 2, 3, 4})
	assert.False(t, bal.Within, "1:2:3:4 on 32 slots is off by up to 2.5 points")
	assert.Equal(t, 32, bal.Slots)
	bal = BalanceOf(256, []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100})
	assert.True(t, bal.Within)
	assert.InDelta(t, 26/25.6, bal.MaxOverMean, 1e-9)
	assert.InDelta(t, 0.1-25.0/256, bal.WorstError, 1e-9)
	assert.Equal(t, -1, BalanceOf(16, []int{0}).WorstMember)
}

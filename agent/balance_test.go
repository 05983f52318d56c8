package agent

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// fakeSlots is the reconciler's side of the balancer.
type fakeSlots struct {
	groups  []lcGroup
	slots   map[string][]int
	changed [][]string
}

func (f *fakeSlots) setSlots(slots map[string][]int, changed []string) {
	f.slots = slots
	f.changed = append(f.changed, changed)
}
func (f *fakeSlots) lcGroups() []lcGroup { return f.groups }

func TestBalancer(t *testing.T) {
	fake := &fakeSlots{groups: []lcGroup{
		{name: "g", view: lb.LoadViewGlobal, keys: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, capacity: []int{1, 1, 0}},
		{name: "l", view: lb.LoadViewLocal, keys: []string{"10.0.1.1", "10.0.1.2"}, capacity: []int{1, 1}},
	}}
	reg := prometheus.NewRegistry()
	b := newBalancer(fake, time.Second, 100, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	own := map[lcKey]ownLoad{
		{"g", "10.0.0.1"}: {active: 5, sinceRead: 2, total: 10, unsent: 1},
		{"l", "10.0.1.1"}: {active: 40, total: 40},
	}
	ownFn := func(groups map[string]bool) map[lcKey]ownLoad {
		assert.Equal(t, map[string]bool{"g": true, "l": true}, groups)
		return own
	}
	t0 := time.Unix(1000, 0)

	// No global figures yet: g falls back to its weights; l follows its own.
	b.recompute(t0, ownFn)
	require.Len(t, fake.changed, 1)
	assert.ElementsMatch(t, []string{"g", "l"}, fake.changed[0])
	assert.Equal(t, []int{128, 128, 0}, fake.slots["g"], "by weight: a draining member gets nothing")
	assert.Less(t, fake.slots["l"][0], fake.slots["l"][1], "the local view: 10.0.1.1 has the connections")
	assert.Equal(t, 1.0, testutil.ToFloat64(b.views.WithLabelValues(wire.ViewWeights)))

	// The report carries every group's shares, then only changed ones.
	var r wire.StatsReport
	taken := b.report(&r, false)
	assert.Len(t, r.Balancing, 2)
	assert.Equal(t, float64(1000), r.BalancedAt)
	taken()
	// The controller answers with the global figures: 10.0.0.2 is loaded.
	b.answered(wire.StatsAnswer{LoadsSeq: 7, LoadsFull: true, Loads: []wire.GroupLoad{{Group: "g", Members: []wire.MemberLoad{
		{Member: "10.0.0.1", ActiveConnections: 5, NewConnections: 9}, {Member: "10.0.0.2", ActiveConnections: 200, NewConnections: 200}}}}}, t0)
	for k := 1; k <= 5; k++ {
		b.recompute(t0.Add(time.Duration(k)*time.Second/2), ownFn)
	}
	g := fake.slots["g"]
	assert.Greater(t, g[0], 200, "the less loaded member takes most: %v", g)
	assert.Equal(t, 0, g[2])
	assert.Equal(t, 1.0, testutil.ToFloat64(b.views.WithLabelValues(wire.ViewGlobal)))
	r = wire.StatsReport{}
	taken = b.report(&r, false)
	assert.Equal(t, uint64(7), r.LoadsSince)
	require.Len(t, r.Balancing, 2, "g's view and slots changed, l's slots moved")
	taken()
	r = wire.StatsReport{}
	b.report(&r, true)
	assert.Len(t, r.Balancing, 2, "a full report has them all")

	// Three intervals without an answer: back to the weights.
	b.recompute(t0.Add(4*time.Second), ownFn)
	assert.Equal(t, 1.0, testutil.ToFloat64(b.views.WithLabelValues(wire.ViewWeights)))
	// A group gone is forgotten.
	fake.groups = fake.groups[:1]
	b.recompute(t0.Add(5*time.Second), func(map[string]bool) map[lcKey]ownLoad { return own })
	assert.NotContains(t, b.groups, "l")
	assert.Equal(t, 1, testutil.CollectAndCount(b, "dlb_agent_member_slots")/3)
}

// TestBalancerGatherManySlots: a registry's Gather reads the balancer's
// age (under its lock) while the slots series are still being sent; with
// more series than the registry's channel holds, sending them under the
// lock deadlocked the agent's /metrics and, behind it, its reports.
func TestBalancerGatherManySlots(t *testing.T) {
	fake := &fakeSlots{}
	for g := range 1000 {
		keys := []string{}
		for k := range 4 {
			keys = append(keys, fmt.Sprintf("10.%d.%d.%d", g/250, g%250, k))
		}
		fake.groups = append(fake.groups, lcGroup{name: fmt.Sprintf("g%d", g), view: lb.LoadViewGlobal, keys: keys, capacity: []int{1, 1, 1, 1}})
	}
	reg := prometheus.NewRegistry()
	b := newBalancer(fake, time.Second, 10000, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	b.recompute(time.Now(), func(map[string]bool) map[lcKey]ownLoad { return nil })
	b.answered(wire.StatsAnswer{LoadsSeq: 1, LoadsFull: true}, time.Now())
	for range 20 {
		done := make(chan int, 1)
		go func() {
			mfs, err := reg.Gather()
			assert.NoError(t, err)
			n := 0
			for _, mf := range mfs {
				if mf.GetName() == "dlb_agent_member_slots" {
					n = len(mf.GetMetric())
				}
			}
			done <- n
		}()
		select {
		case n := <-done:
			require.Equal(t, 4000, n)
		case <-time.After(30 * time.Second):
			t.Fatal("Gather did not return: deadlock")
		}
	}
}

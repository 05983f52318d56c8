package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/testbed"
)

// Sizes of the weights test (issue #16). The hash that picks a slot is a
// fixed function of the 5-tuple, and a fresh testbed hands out the same
// source pairs every run, so a run's figures repeat exactly. But any change
// that reshuffles them (the slots' order, the source pairs, OVS's hash)
// draws them anew, and sampling noise alone must then not fail a correct
// split. At the 20,000 it too often would (binomial, simulated):
// ten equal members on 256 slots (26 or 25 each, max/mean 1.016) stay
// within max/mean 1.06 in 88 % of draws, in 99.9 % with 60,000; 1:2:3:4
// on 128 slots (13/26/38/51, the second member 0.31 points over) stays
// within its bounds in 99.3 % of draws per protocol, in 99.85 % with
// 30,000. The old rule fails with these counts as with 20,000.
const (
	// weightedFlows is the number of TCP connections, and of UDP flows,
	// for weights 1:2:3:4, split over the two clients.
	weightedFlows = 30000
	// equalFlows is the number of TCP connections for ten equal members.
	equalFlows = 60000
	// weightsConcurrency is how many exchanges each client keeps in
	// flight: 16 was the fastest here (8 was 10-30 % slower, 32 no faster).
	weightsConcurrency = 16
	// weightsTimeout bounds each connect and answer: long enough for a
	// SYN's second retransmission (at 3 s) on a loaded machine.
	weightsTimeout = 5 * time.Second
)

// tenServersTopology is three-hosts with six more servers, s5..s10, dealt
// round-robin over the hosts, so that ten members are ten VMs: a server
// answers with its VM's name whatever the port, so members that were
// (address, port) pairs of one VM could not be told apart.
func tenServersTopology(t testing.TB) *testbed.Topology {
	topo, err := testbed.Example("three-hosts")
	require.NoError(t, err)
	for i := 5; i <= 10; i++ {
		h := &topo.Hosts[(i-5)%len(topo.Hosts)]
		h.VMs = append(h.VMs, testbed.VMSpec{
			Name:     fmt.Sprintf("s%d", i),
			IP:       fmt.Sprintf("10.0.0.%d/24", 10+i),
			Services: []string{"tcp:8080", "udp:5353"},
		})
	}
	return topo
}

// loadSplit runs spec from each client VM at once, count/len(vms) each
// (each client's own source reservation keeps every 5-tuple fresh), and
// adds the results up.
func (c *cluster) loadSplit(t *testing.T, spec testbed.LoadSpec, count int, vms ...string) *testbed.LoadResult {
	t.Helper()
	results := make([]*testbed.LoadResult, len(vms))
	errs := make([]error, len(vms))
	var wg sync.WaitGroup
	for i, vm := range vms {
		s := spec
		s.VM, s.Count = vm, count/len(vms)
		if i == 0 {
			s.Count += count % len(vms)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.tb.Load(c.ctx, s)
		}()
	}
	wg.Wait()
	sum := &testbed.LoadResult{VM: strings.Join(vms, "+"), Proto: spec.Proto, Answers: map[string]int{}, Failures: map[string]int{}}
	for i, r := range results {
		if r != nil && errs[i] != nil {
			t.Logf("load from %s, cut short: %d answered %v, failures %v %v", vms[i], r.Answered(), r.Answers, r.Failures, r.FailureExamples)
		}
		require.NoError(t, errs[i], "load from %s", vms[i])
		assert.False(t, r.SourcesReused, "%s reused source pairs", vms[i])
		sum.Target = r.Target
		sum.Count += r.Count
		sum.ElapsedSeconds = max(sum.ElapsedSeconds, r.ElapsedSeconds)
		for k, v := range r.Answers {
			sum.Answers[k] += v
		}
		for k, v := range r.Failures {
			sum.Failures[k] += v
		}
		sum.FailureExamples = append(sum.FailureExamples, r.FailureExamples...)
	}
	sum.RatePerSecond = float64(sum.Count) / sum.ElapsedSeconds
	return sum
}

// assertWeightShares checks the bound: every member's share of the
// answers within max(1 percentage point, 5 % of its weight's share) of
// that share. It logs each member's figures.
func assertWeightShares(t *testing.T, res *testbed.LoadResult, weights map[string]int) {
	t.Helper()
	assert.Zero(t, res.Failed(), "failures: %v %v", res.Failures, res.FailureExamples)
	total := 0
	for _, w := range weights {
		total += w
	}
	answered := res.Answered()
	require.Positive(t, answered)
	var lines []string
	for _, name := range sortedNames(weights) {
		want := float64(weights[name]) / float64(total)
		got := float64(res.Answers[name]) / float64(answered)
		tol := max(0.01, 0.05*want)
		lines = append(lines, fmt.Sprintf("  %s weight %d: %5d answers, %5.2f %% (weight share %5.2f %%, off by %+.2f points, bound %.2f)",
			name, weights[name], res.Answers[name], 100*got, 100*want, 100*(got-want), 100*tol))
		assert.LessOrEqual(t, math.Abs(got-want), tol+1e-12, "%s answered %.2f %%, weight share %.2f %% ± %.2f: %v",
			name, 100*got, 100*want, 100*tol, res.Answers)
	}
	for name := range res.Answers {
		assert.Contains(t, weights, name, "an answer from %s, which is no member", name)
	}
	t.Logf("%s/%s from %s, %d answered of %d (%.0f/s):\n%s", res.Target, res.Proto, res.VM, answered, res.Count, res.RatePerSecond, strings.Join(lines, "\n"))
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	// s2 before s10.
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	return names
}

// TestWeightsHonouredToTheSlot: with real connections from clients on two
// hosts, weights 1:2:3:4 are honoured within max(1 point, 5 % of a
// member's share), for TCP and UDP separately, and ten equal members get
// at most 1.06 times the mean (issue #16). The old rule (at most 2.5
// points off, 32 slots for both sets) gave 1:2:3:4 3/6/10/13 slots, the
// second member 1.25 points short, and ten members 3 or 4 slots each,
// max/mean 1.25.
func TestWeightsHonouredToTheSlot(t *testing.T) {
	weights := map[string]int{"s1": 1, "s2": 2, "s3": 3, "s4": 4}
	c := newClusterOn(t, tenServersTopology(t), func(tb *testbed.Testbed) string {
		var ms []string
		for _, name := range sortedNames(weights) {
			ms = append(ms, member(tb, name, fmt.Sprintf(", weight: %d", weights[name])))
		}
		return webGroup(tb, ms...)
	})
	t.Cleanup(func() {
		// Runs before the testbed goes down: each switch's own account.
		if t.Failed() {
			for _, h := range c.tb.Hosts() {
				t.Logf("host %s, last lines of the ovs-vswitchd log:\n%s", h.Name, h.LogTail("ovs-vswitchd", 40))
			}
		}
	})
	for _, tc := range []struct{ proto, target string }{
		{"tcp", "10.96.0.10:80"},
		{"udp", "10.96.0.10:53"},
	} {
		t.Run("1:2:3:4/"+tc.proto, func(t *testing.T) {
			res := c.loadSplit(t, testbed.LoadSpec{Target: tc.target, Proto: tc.proto, Concurrency: weightsConcurrency, Timeout: weightsTimeout},
				weightedFlows, "c1", "c2")
			assertWeightShares(t, res, weights)
		})
	}

	t.Run("10 equal", func(t *testing.T) {
		var ms []string
		for i := 1; i <= 10; i++ {
			ms = append(ms, member(c.tb, fmt.Sprintf("s%d", i), ""))
		}
		c.setGroups(t, webGroup(c.tb, ms...))
		res := c.loadSplit(t, testbed.LoadSpec{Target: "10.96.0.10:80", Proto: "tcp", Concurrency: weightsConcurrency, Timeout: weightsTimeout},
			equalFlows, "c1", "c2")
		assert.Zero(t, res.Failed(), "failures: %v %v", res.Failures, res.FailureExamples)
		answered := res.Answered()
		require.Positive(t, answered)
		mean := float64(answered) / 10
		most, least := 0, answered
		var lines []string
		for i := 1; i <= 10; i++ {
			name := fmt.Sprintf("s%d", i)
			n := res.Answers[name]
			most, least = max(most, n), min(least, n)
			lines = append(lines, fmt.Sprintf("  %s: %5d answers, %5.2f %%, %.3f of the mean", name, n, 100*float64(n)/float64(answered), float64(n)/mean))
		}
		assert.Len(t, res.Answers, 10, "every member answers, no one else: %v", res.Answers)
		t.Logf("ten equal members, %s/%s from %s, %d answered of %d (%.0f/s): max/mean %.4f, min/mean %.4f\n%s",
			res.Target, res.Proto, res.VM, answered, res.Count, res.RatePerSecond, float64(most)/mean, float64(least)/mean, strings.Join(lines, "\n"))
		assert.LessOrEqual(t, float64(most)/mean, 1.06, "max/mean of answers: %v", res.Answers)
	})
}

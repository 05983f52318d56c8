package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/testbed"
)

// heldCounts opens held connections and counts, per server, those that
// got their first answer.
type heldCounts struct {
	mu   sync.Mutex
	open map[string]map[string]int // by target, by server
}

func newHeldCounts() *heldCounts { return &heldCounts{open: map[string]map[string]int{}} }

// start opens count connections from vm to target at rate a second, each
// held for hold after its first answer; the result comes on the channel.
func (h *heldCounts) start(t *testing.T, f *fleet, vm, target string, count int, rate float64, hold time.Duration) <-chan *testbed.LoadResult {
	done := make(chan *testbed.LoadResult, 1)
	go func() {
		res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: vm, Target: target, Count: count, Concurrency: count, Rate: rate, Hold: hold,
			Timeout: 5 * time.Second, Opened: func(server string) {
				h.mu.Lock()
				defer h.mu.Unlock()
				if h.open[target] == nil {
					h.open[target] = map[string]int{}
				}
				h.open[target][server]++
			}})
		assert.NoError(t, err)
		done <- res
	}()
	return done
}

// of is the counts of target's servers (each of servers, 0 for none).
func (h *heldCounts) of(target string, servers []string) []float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]float64, len(servers))
	for i, s := range servers {
		out[i] = float64(h.open[target][s])
	}
	return out
}

func (h *heldCounts) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.open {
		for _, v := range m {
			n += v
		}
	}
	return n
}

func maxOverMean(v []float64) float64 {
	mx, sum := 0.0, 0.0
	for _, x := range v {
		mx = max(mx, x)
		sum += x
	}
	return mx / (sum / float64(len(v)))
}

// TestGlobalLeastConnections is the first case, with three groups
// side by side (weighted; least-connections with a local view; with the
// global view): four equal members, s3 and s4 disabled; clients on h1 open
// 400 long-lived connections to each; s3 and s4 are enabled; clients on h2
// open 400 more. Only the global view evens the members' connections
// (each host sees its own connections only with the local one). No held
// connection changes member while the shares move.
func TestGlobalLeastConnections(t *testing.T) {
	f := newFleet(t)
	servers := []string{"s1", "s2", "s3", "s4"}
	type variant struct{ name, vip, extra string }
	variants := []variant{
		{"weighted", "10.96.0.20", ""},
		{"least-connections, local", "10.96.0.21", `,"algorithm":"least-connections","load_view":"local"`},
		{"least-connections, global", "10.96.0.22", `,"algorithm":"least-connections"`},
	}
	var members []string
	for _, vm := range servers {
		state := "active"
		if vm == "s3" || vm == "s4" {
			state = "disabled"
		}
		members = append(members, fmt.Sprintf(`{"ip":%q,"state":%q}`, f.tb.VM(vm).Addr(), state))
	}
	for i, v := range variants {
		f.ctl.Call("POST", "/v1/groups", fmt.Sprintf(`{"name":"g%d","vip":%q,"ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[%s]%s}`,
			i, v.vip, strings.Join(members, ","), v.extra), 201)
	}
	idx := f.group(t, "g2").ModifyIndex
	f.appliedEverywhere(t, idx, time.Now())
	time.Sleep(3 * time.Second) // a few recomputations

	held := newHeldCounts()
	var done []<-chan *testbed.LoadResult
	for _, v := range variants {
		done = append(done, held.start(t, f, "c1", v.vip+":80", 400, 40, 45*time.Second))
	}
	require.Eventually(t, func() bool { return held.total() == 1200 }, 30*time.Second, 100*time.Millisecond, "phase 1: every connection answered")
	for i := range variants {
		for _, vm := range []string{"s3", "s4"} {
			f.ctl.Call("PATCH", fmt.Sprintf("/v1/groups/g%d/members/%s", i, f.tb.VM(vm).Addr()), `{"state":"active"}`, 200)
		}
	}
	f.appliedEverywhere(t, f.group(t, "g2").ModifyIndex, time.Now())
	time.Sleep(4 * time.Second) // the shares move a bounded step an interval
	for _, v := range variants {
		done = append(done, held.start(t, f, "c2", v.vip+":80", 400, 40, 15*time.Second))
	}
	require.Eventually(t, func() bool { return held.total() == 2400 }, 30*time.Second, 100*time.Millisecond, "phase 2: every connection answered")

	ratios := map[string]float64{}
	for _, v := range variants {
		open := held.of(v.vip+":80", servers)
		ratios[v.name] = maxOverMean(open)
		t.Logf("%-26s active connections s1..s4 %v: max/mean %.2f", v.name, open, ratios[v.name])
	}
	assert.Greater(t, ratios["weighted"], 1.3, "static shares: about 300/300/100/100")
	assert.Greater(t, ratios["least-connections, local"], 1.3, "h2 sees none of h1's connections")
	assert.LessOrEqual(t, ratios["least-connections, global"], 1.10, "the global view evens them")

	// The hosts report their shares: dlbctl shows them.
	out := f.dlbctl(t, "", "group", "stats", "g2")
	t.Logf("dlbctl group stats g2:\n%s", out)
	for _, d := range done {
		res := <-d
		require.NotNil(t, res)
		require.Zero(t, res.Failed(), "no held connection failed or changed member: %v %v", res.Failures, res.FailureExamples)
	}
}

package client

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/testbed"
)

// BenchmarkFanOut: 1,000 agents' watch clients (Followers, in this
// process, each with its own watch stream) follow one controller; a
// one-member change is made through the API, and the time until each
// follower has it is measured. 10 changes; the median of each change's
// p50, p99 and slowest.
func BenchmarkFanOut(b *testing.B) {
	const agents, changes = 1000, 10
	// 1,000 watch streams are 1,000 sockets on each side; the controller
	// inherits the limit.
	var lim syscall.Rlimit
	require.NoError(b, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	lim.Cur = max(lim.Cur, min(lim.Max, 65536))
	require.NoError(b, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	ctl := testbed.StartController(b)
	ctl.Call("POST", "/v1/groups", `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12","weight":1}]}`, 201)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: agents, MaxConnsPerHost: 0}}
	var mu sync.Mutex
	got := make([]map[uint64]time.Time, agents) // per agent: index -> when delivered
	var wg sync.WaitGroup
	for i := 0; i < agents; i++ {
		got[i] = map[uint64]time.Time{}
		cl, err := New(ctl.URL(), Options{HTTP: hc})
		require.NoError(b, err)
		c, err := cl.ForHost(fmt.Sprintf("h%d", i))
		require.NoError(b, err)
		f := &Follower{Client: c, Wait: time.Minute, Deliver: func(_ []lb.Checked, index uint64) {
			now := time.Now()
			mu.Lock()
			got[i][index] = now
			mu.Unlock()
		}}
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.Run(ctx) }()
	}
	// has counts the followers that delivered index.
	has := func(index uint64) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, g := range got {
			if _, ok := g[index]; ok {
				n++
			}
		}
		return n
	}
	index := func() uint64 {
		resp, err := http.Get(ctl.URL() + "/v1/groups/web")
		require.NoError(b, err)
		resp.Body.Close()
		idx, err := strconv.ParseUint(strings.Trim(resp.Header.Get("ETag"), `"`), 10, 64)
		require.NoError(b, err)
		return idx
	}
	first := index()
	require.Eventually(b, func() bool { return has(first) == agents }, time.Minute, 10*time.Millisecond, "every follower has the group")
	time.Sleep(200 * time.Millisecond) // every stream is waiting

	var p50s, p99s, maxes []time.Duration
	for b.Loop() {
		if len(p99s) >= changes {
			continue // the changes are made in the first iteration
		}
		for k := 0; k < changes; k++ {
			t0 := time.Now()
			ctl.Call("PATCH", "/v1/groups/web/members/10.0.0.12", fmt.Sprintf(`{"weight":%d}`, k+2), 200)
			idx := index()
			require.Eventually(b, func() bool { return has(idx) == agents }, 30*time.Second, time.Millisecond, "change %d reached every follower", k)
			var took []time.Duration
			mu.Lock()
			for _, g := range got {
				took = append(took, g[idx].Sub(t0))
			}
			mu.Unlock()
			slices.Sort(took)
			p50s = append(p50s, took[len(took)/2])
			p99s = append(p99s, took[len(took)*99/100])
			maxes = append(maxes, took[len(took)-1])
			time.Sleep(300 * time.Millisecond) // quiet between changes
		}
	}
	med := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(med(p50s), "p50-ms")
	b.ReportMetric(med(p99s), "p99-ms")
	b.ReportMetric(med(maxes), "max-ms")
	fmt.Printf("fan-out: %d followers (real watch clients, one watch stream each) on one controller; a one-member change through the API reaches them: median over %d changes of p50 %.1f ms, p99 %.1f ms, slowest %.1f ms\n",
		agents, len(p99s), med(p50s), med(p99s), med(maxes))
	cancel()
	wg.Wait()
}

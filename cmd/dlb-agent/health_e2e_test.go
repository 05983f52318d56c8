package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/testbed"
)

// choosing reports, for each host, whether it still deals new connections
// to member:port: whether its member's commit (DLB_MEMBER, kind 4) is
// installed.
func choosing(t *testing.T, f *fleet, member string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, h := range f.tb.Hosts() {
		flows, err := h.OFCtl(f.ctx, "dump-flows", "--no-stats", "cookie=0xdb04000000000000/0xffff000000000000")
		require.NoError(t, err)
		out[h.Name] = strings.Contains(flows, "nat(dst="+member+")")
	}
	return out
}

// untilChoosing polls every 50 ms until every host's choice of member is
// want, and returns how long after start that was (or fails after limit).
func untilChoosing(t *testing.T, f *fleet, member string, want bool, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		all := true
		for _, c := range choosing(t, f, member) {
			all = all && c == want
		}
		if all {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: hosts still not choosing=%v after %v: %v", member, want, limit, choosing(t, f, member))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHealthCheckTCP: a member whose server stops (connections refused) is
// out of every host's choice within 3 s of the stop, with interval 1 s
// and fall 2, and back within 3 s of its return; connections through the
// VIP meanwhile all succeed. The controller shows its health. (Flap
// damping is set out of the way of the trials.)
func TestHealthCheckTCP(t *testing.T) {
	f := newFleet(t)
	vms := []string{"s1", "s2", "s3"}
	f.ctl.Call("POST", "/v1/groups", fmt.Sprintf(`{"name":"hc","vip":"10.96.0.90","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[%s],
		"health_check":{"type":"tcp","interval":"1s","timeout":"500ms","rise":2,"fall":2,"flap_changes":100}}`, memberList(f, vms)), 201)
	s2 := f.tb.VM("s2").Addr().String() + ":8080"
	// Every member up (first probe) everywhere.
	untilChoosing(t, f, s2, true, time.Now(), 20*time.Second)
	g := f.group(t, "hc")
	require.Len(t, g.Health, 3)
	for _, h := range g.Health {
		assert.Equal(t, "up", h.State, "%+v", h)
		assert.NotEmpty(t, h.Prober)
	}

	var out, back []time.Duration
	for trial := range 3 {
		start := time.Now()
		require.NoError(t, f.tb.StopServices("s2"))
		out = append(out, untilChoosing(t, f, s2, false, start, 10*time.Second))
		g = f.group(t, "hc")
		for _, h := range g.Health {
			if h.Member == f.tb.VM("s2").Addr().String() {
				assert.Equal(t, "down", h.State)
				assert.Contains(t, h.Reason, "refused")
				assert.Equal(t, "h2", h.Prober)
			}
		}
		// Connections meanwhile, from every host: none fails, none reaches s2.
		for _, c := range []string{"c1", "c2", "c3"} {
			res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: c, Target: "10.96.0.90:80", Count: 30, Rate: 100})
			require.NoError(t, err)
			assert.Empty(t, res.Failures, "trial %d from %s: %v", trial, c, res.FailureExamples)
			assert.Zero(t, res.Answers["s2"], "trial %d from %s: %v", trial, c, res.Answers)
		}

		start = time.Now()
		require.NoError(t, f.tb.StartServices(f.ctx, "s2"))
		back = append(back, untilChoosing(t, f, s2, true, start, 10*time.Second))
		time.Sleep(time.Second)
	}
	t.Logf("stopped server out of every host's choice after %v; back after %v", out, back)
	for i := range out {
		assert.LessOrEqual(t, out[i], 3*time.Second, "out, trial %d", i)
		assert.LessOrEqual(t, back[i], 3*time.Second, "back, trial %d", i)
	}
}

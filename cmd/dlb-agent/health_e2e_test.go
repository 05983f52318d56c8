package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/testbed"
)

// chooses is whether host h still deals new connections to member
// (IP:PORT): whether its member's commit (DLB_MEMBER, kind 4) is
// installed.
func chooses(ctx context.Context, h *testbed.Host, member string) (bool, error) {
	flows, err := h.OFCtl(ctx, "dump-flows", "--no-stats", "cookie=0xdb04000000000000/0xffff000000000000")
	return strings.Contains(flows, "nat(dst="+member+")"), err
}

// choosing reports, for each host, whether it chooses member.
func choosing(t testing.TB, f *fleet, member string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, h := range f.tb.Hosts() {
		c, err := chooses(f.ctx, h, member)
		require.NoError(t, err)
		out[h.Name] = c
	}
	return out
}

// untilChoosing polls each host's choice of member in a goroutine of its
// own, every 20 ms, until every host's is want; it returns how long after
// start the last host got there (or fails after limit).
func untilChoosing(t testing.TB, f *fleet, member string, want bool, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	took := make([]time.Duration, len(f.tb.Hosts()))
	errs := make([]error, len(f.tb.Hosts()))
	for i, h := range f.tb.Hosts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := chooses(f.ctx, h, member)
				if err != nil {
					errs[i] = err
					return
				}
				if c == want {
					took[i] = time.Since(start)
					return
				}
				if time.Since(start) > limit {
					errs[i] = fmt.Errorf("%s: still not choosing=%v %s after %v", h.Name, want, member, limit)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	return slices.Max(took)
}

// healthOf is a member's health in a group, as the API shows it (State
// "" while the group shows none for it yet).
func healthOf(t testing.TB, f *fleet, group, member string) wire.MemberHealth {
	t.Helper()
	var g wire.Group
	require.NoError(t, json.Unmarshal(f.ctl.Call("GET", "/v1/groups/"+group, "", 200), &g))
	for _, h := range g.Health {
		if h.Member == member {
			return h
		}
	}
	return wire.MemberHealth{Member: member}
}

// untilHealth polls the API every 50 ms until member's state in group is
// state, and returns its health then (or fails after limit).
func untilHealth(t testing.TB, f *fleet, group, member, state string, limit time.Duration) wire.MemberHealth {
	t.Helper()
	start := time.Now()
	for {
		h := healthOf(t, f, group, member)
		if h.State == state {
			return h
		}
		if time.Since(start) > limit {
			t.Fatalf("group %s member %s: still %s after %v, not %s: %+v", group, member, h.State, limit, state, h)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failure is one way a member's server fails, and how it comes back.
type failure struct {
	name          string
	fail, restore func() error
	// reason is what the member's health says once it is down.
	reason string
}

// failures are a VM's two ways of failing: its server stopped (its port
// refuses connections) and silenced (the VM drops everything).
func failures(f *fleet, vm string) []failure {
	return []failure{
		{name: "stopped", reason: "refused",
			fail:    func() error { return f.tb.StopServices(vm) },
			restore: func() error { return f.tb.StartServices(f.ctx, vm) }},
		{name: "silenced", reason: "no answer",
			fail:    func() error { return f.tb.Silence(f.ctx, vm) },
			restore: func() error { return f.tb.Unsilence(f.ctx, vm) }},
	}
}

// healthTrial fails a member's server and measures until no host chooses
// member (IP:PORT) for new connections, meanwhile runs during the outage,
// then restores the server and measures until every host chooses it
// again.
func healthTrial(t testing.TB, f *fleet, fl failure, member string, meanwhile func()) (out, back time.Duration) {
	t.Helper()
	start := time.Now()
	require.NoError(t, fl.fail())
	out = untilChoosing(t, f, member, false, start, 10*time.Second)
	if meanwhile != nil {
		meanwhile()
	}
	start = time.Now()
	require.NoError(t, fl.restore())
	back = untilChoosing(t, f, member, true, start, 10*time.Second)
	return out, back
}

// hcGroup creates a health-checked group of s1, s2 and s3.
func hcGroup(t testing.TB, f *fleet, name, vip, proto string, port, target int, check string) {
	t.Helper()
	f.ctl.Call("POST", "/v1/groups", fmt.Sprintf(`{"name":%q,"vip":%q,"ports":[{"protocol":%q,"port":%d,"target_port":%d}],"members":[%s],"health_check":%s}`,
		name, vip, proto, port, target, memberList(f, []string{"s1", "s2", "s3"}), check), 201)
}

// TestHealthCheckTCP: a member whose server stops (connections refused)
// or is silenced (its VM drops everything) is out of every host's choice
// within 3 s of the failure, with interval 1 s and fall 2, and back within
// 3 s of its return; connections through the VIP meanwhile all succeed.
// The controller shows its health, with the prober and the reason. (Flap
// damping is set out of the way of the trials.)
func TestHealthCheckTCP(t *testing.T) {
	f := newFleet(t)
	hcGroup(t, f, "hc", "10.96.0.90", "tcp", 80, 8080, `{"type":"tcp","interval":"1s","timeout":"500ms","rise":2,"fall":2,"flap_changes":100}`)
	s2ip := f.tb.VM("s2").Addr().String()
	s2 := s2ip + ":8080"
	// Every member up (first probe) everywhere.
	for _, vm := range []string{"s1", "s2", "s3"} {
		untilHealth(t, f, "hc", f.tb.VM(vm).Addr().String(), "up", 20*time.Second)
	}
	untilChoosing(t, f, s2, true, time.Now(), 10*time.Second)
	var g wire.Group
	require.NoError(t, json.Unmarshal(f.ctl.Call("GET", "/v1/groups/hc", "", 200), &g))
	require.Len(t, g.Health, 3)
	for _, h := range g.Health {
		assert.Equal(t, "up", h.State, "%+v", h)
		assert.NotEmpty(t, h.Prober)
	}

	for _, fl := range failures(f, "s2") {
		var out, back []time.Duration
		for trial := range 2 {
			o, b := healthTrial(t, f, fl, s2, func() {
				h := healthOf(t, f, "hc", s2ip)
				assert.Equal(t, "down", h.State)
				assert.Contains(t, h.Reason, fl.reason)
				assert.Equal(t, "h2", h.Prober)
				// Connections meanwhile, from every host: none fails,
				// none reaches s2.
				for _, c := range []string{"c1", "c2", "c3"} {
					res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: c, Target: "10.96.0.90:80", Count: 30, Rate: 100})
					require.NoError(t, err)
					assert.Empty(t, res.Failures, "%s, trial %d from %s: %v", fl.name, trial, c, res.FailureExamples)
					assert.Zero(t, res.Answers["s2"], "%s, trial %d from %s: %v", fl.name, trial, c, res.Answers)
				}
			})
			out, back = append(out, o), append(back, b)
			time.Sleep(time.Second)
		}
		t.Logf("%s server out of every host's choice after %v; back after %v", fl.name, out, back)
		for i := range out {
			assert.LessOrEqual(t, out[i], 3*time.Second, "%s: out, trial %d", fl.name, i)
			assert.LessOrEqual(t, back[i], 3*time.Second, "%s: back, trial %d", fl.name, i)
		}
	}
}

// TestHealthCheckUDPAndHTTP: a UDP check finds a stopped server (ICMP port
// unreachable) and a silent one (no answer in the timeout), unless the
// group says silence is fine; an HTTP check marks a server answering 500
// down and 200 up again. Each case is seen in the controller's health and
// in every host's choice.
func TestHealthCheckUDPAndHTTP(t *testing.T) {
	f := newFleet(t)
	const quick = `"interval":"500ms","timeout":"250ms","rise":2,"fall":2,"flap_changes":100`
	hcGroup(t, f, "udp", "10.96.0.91", "udp", 53, 5353, `{"type":"udp","payload":"ping",`+quick+`}`)
	hcGroup(t, f, "udp-quiet", "10.96.0.92", "udp", 53, 5353, `{"type":"udp","udp_silence_ok":true,`+quick+`}`)
	hcGroup(t, f, "http", "10.96.0.93", "tcp", 80, 8080, `{"type":"http","path":"/healthz","host":"web",`+quick+`}`)
	s2ip := f.tb.VM("s2").Addr().String()
	for _, g := range []string{"udp", "udp-quiet", "http"} {
		untilHealth(t, f, g, s2ip, "up", 20*time.Second)
	}

	// HTTP: 500 is down (the port still accepts connections), 200 up.
	require.NoError(t, f.tb.SetHTTPStatus("s2", 500))
	h := untilHealth(t, f, "http", s2ip, "down", 5*time.Second)
	assert.Equal(t, "http 500", h.Last.Detail)
	assert.False(t, h.Last.OK)
	untilChoosing(t, f, s2ip+":8080", false, time.Now(), 3*time.Second)
	assert.Equal(t, "up", healthOf(t, f, "udp", s2ip).State, "the UDP server is fine")
	require.NoError(t, f.tb.SetHTTPStatus("s2", 0))
	h = untilHealth(t, f, "http", s2ip, "up", 5*time.Second)
	assert.Contains(t, h.Last.Detail, "http 200")
	untilChoosing(t, f, s2ip+":8080", true, time.Now(), 3*time.Second)

	// UDP, stopped: the VM's kernel answers ICMP port unreachable.
	require.NoError(t, f.tb.StopServices("s2"))
	h = untilHealth(t, f, "udp", s2ip, "down", 5*time.Second)
	assert.Contains(t, h.Reason, "port unreachable")
	untilChoosing(t, f, s2ip+":5353", false, time.Now(), 3*time.Second)
	assert.Equal(t, "down", untilHealth(t, f, "udp-quiet", s2ip, "down", 5*time.Second).State, "an ICMP error is down even where silence is ok")
	require.NoError(t, f.tb.StartServices(f.ctx, "s2"))
	untilHealth(t, f, "udp", s2ip, "up", 5*time.Second)
	untilHealth(t, f, "udp-quiet", s2ip, "up", 5*time.Second)
	untilChoosing(t, f, s2ip+":5353", true, time.Now(), 3*time.Second)

	// UDP, silent: no answer in the timeout is down, unless silence is ok.
	quietSince := healthOf(t, f, "udp-quiet", s2ip).Since
	require.NoError(t, f.tb.Silence(f.ctx, "s2"))
	h = untilHealth(t, f, "udp", s2ip, "down", 5*time.Second)
	assert.Contains(t, h.Reason, "no answer in 250ms")
	time.Sleep(2 * time.Second) // several more probes
	q := healthOf(t, f, "udp-quiet", s2ip)
	assert.Equal(t, "up", q.State, "silence is ok for udp-quiet: %+v", q)
	assert.Equal(t, quietSince, q.Since, "udp-quiet's member stayed up throughout")
	assert.Equal(t, "down", healthOf(t, f, "http", s2ip).State, "a silent VM fails its HTTP check too")
	require.NoError(t, f.tb.Unsilence(f.ctx, "s2"))
	for _, g := range []string{"udp", "udp-quiet", "http"} {
		untilHealth(t, f, g, s2ip, "up", 5*time.Second)
	}
	res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: "c1", Target: "10.96.0.91:53", Proto: "udp", Count: 60, Rate: 200})
	require.NoError(t, err)
	assert.Empty(t, res.Failures, "%v", res.FailureExamples)
	assert.Positive(t, res.Answers["s2"], "s2 answers again: %v", res.Answers)
}

// TestHealthCheckScopes: two tenants' members with one address on one
// host (s1 and t1, 10.0.0.11, told apart by MAC) are two probe targets,
// each probed into its own VM port: the one whose server stops is down
// in its group only, and each tenant's clients keep reaching the right
// members.
func TestHealthCheckScopes(t *testing.T) {
	f := newFleet(t, func(topo *testbed.Topology) {
		topo.Hosts[0].VMs = append(topo.Hosts[0].VMs,
			testbed.VMSpec{Name: "t1", IP: "10.0.0.11/24", MAC: "02:00:0b:00:00:0b", Tenant: "b", Services: []string{"tcp:8080"}},
			testbed.VMSpec{Name: "u1", IP: "10.0.0.21/24", Tenant: "b"})
	})
	s1, t1 := f.tb.VM("s1"), f.tb.VM("t1")
	require.Equal(t, s1.Addr(), t1.Addr())
	const check = `{"type":"tcp","interval":"500ms","timeout":"250ms","flap_changes":100}`
	f.ctl.Call("POST", "/v1/groups", fmt.Sprintf(`{"name":"tenant-a","vip":"10.96.0.94","scope":{"iface_ids":["c1"]},"ports":[{"protocol":"tcp","port":80,"target_port":8080}],
		"members":[{"ip":%q,"mac":%q},{"ip":%q}],"health_check":%s}`, s1.Addr(), s1.HardwareAddr(), f.tb.VM("s4").Addr(), check), 201)
	f.ctl.Call("POST", "/v1/groups", fmt.Sprintf(`{"name":"tenant-b","vip":"10.96.0.94","scope":{"labels":{"tenant":"b"}},"ports":[{"protocol":"tcp","port":80,"target_port":8080}],
		"members":[{"ip":%q,"mac":%q},{"ip":%q}],"health_check":%s}`, t1.Addr(), t1.HardwareAddr(), f.tb.VM("s2").Addr(), check), 201)
	addr := s1.Addr().String()
	untilHealth(t, f, "tenant-a", addr, "up", 20*time.Second)
	untilHealth(t, f, "tenant-b", addr, "up", 20*time.Second)
	serves := func(client, want string, others ...string) {
		t.Helper()
		res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: client, Target: "10.96.0.94:80", Count: 40, Rate: 200})
		require.NoError(t, err)
		assert.Empty(t, res.Failures, "%s: %v", client, res.FailureExamples)
		for server := range res.Answers {
			assert.Contains(t, append([]string{want}, others...), server, "%s reaches only its tenant's members: %v", client, res.Answers)
		}
		if want != "" {
			assert.Positive(t, res.Answers[want], "%s: %v", client, res.Answers)
		}
	}
	serves("c1", "s1", "s4")
	serves("u1", "t1", "s2")

	for _, tc := range []struct{ stop, down, up, client, other string }{
		{stop: "t1", down: "tenant-b", up: "tenant-a", client: "u1", other: "s2"},
		{stop: "s1", down: "tenant-a", up: "tenant-b", client: "c1", other: "s4"},
	} {
		require.NoError(t, f.tb.StopServices(tc.stop))
		h := untilHealth(t, f, tc.down, addr, "down", 5*time.Second)
		assert.Contains(t, h.Reason, "refused", "%s stopped", tc.stop)
		assert.Equal(t, "h1", h.Prober)
		time.Sleep(time.Second) // more probes of both
		assert.Equal(t, "up", healthOf(t, f, tc.up, addr).State, "%s stopped: the other tenant's %s is up", tc.stop, addr)
		serves(tc.client, "", tc.other) // nothing to the stopped one, nothing failed
		require.NoError(t, f.tb.StartServices(f.ctx, tc.stop))
		untilHealth(t, f, tc.down, addr, "up", 5*time.Second)
	}
	serves("c1", "s1", "s4")
	serves("u1", "t1", "s2")
}

// TestHealthCheckFlapping: a server that is up 0.5 s, down 0.5 s (its VM
// silenced and let go in turn) is held down after a few changes (flap
// damping: 4 changes in 30 s), not toggled in and out of the hosts'
// choice every second; once it stays up it is back after the hold.
func TestHealthCheckFlapping(t *testing.T) {
	f := newFleet(t)
	hcGroup(t, f, "flap", "10.96.0.95", "tcp", 80, 8080, `{"type":"tcp","interval":"200ms","timeout":"100ms","rise":2,"fall":2}`)
	s2ip := f.tb.VM("s2").Addr().String()
	s2 := s2ip + ":8080"
	untilChoosing(t, f, s2, true, time.Now(), 20*time.Second)

	// Flap for 8 s, watching h1's choice of s2 every 100 ms.
	stopFlap := make(chan struct{})
	flapped := make(chan error, 1)
	go func() {
		silent := false
		defer func() {
			if silent {
				_ = f.tb.Unsilence(f.ctx, "s2")
			}
		}()
		for {
			var err error
			if silent {
				err = f.tb.Unsilence(f.ctx, "s2")
			} else {
				err = f.tb.Silence(f.ctx, "s2")
			}
			if err != nil {
				flapped <- err
				return
			}
			silent = !silent
			select {
			case <-stopFlap:
				flapped <- nil
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	was, toggles := true, 0
	var heldAt time.Duration
	for time.Since(start) < 8*time.Second {
		now := choosing(t, f, s2)["h1"]
		if now != was {
			toggles++
			was = now
		}
		if heldAt == 0 && healthOf(t, f, "flap", s2ip).State == "held" {
			heldAt = time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stopFlap)
	require.NoError(t, <-flapped)
	h := healthOf(t, f, "flap", s2ip)
	t.Logf("flapping 8 s: held after %v; h1's choice of s2 changed %d times; now %+v", heldAt, toggles, h)
	require.NotZero(t, heldAt, "held while flapping")
	assert.Equal(t, "held", h.State)
	assert.Contains(t, h.Reason, "flapping")
	require.NotNil(t, h.HeldUntil)
	assert.LessOrEqual(t, toggles, 5, "at most the changes before the hold (in, out, in, out) reach the hosts, not one a second")
	assert.False(t, choosing(t, f, s2)["h1"], "held: out of the choice")

	// Steady now: back after the hold (10 s for a first hold) and rise.
	untilHealth(t, f, "flap", s2ip, "up", time.Until(*h.HeldUntil)+5*time.Second)
	untilChoosing(t, f, s2, true, time.Now(), 3*time.Second)
}

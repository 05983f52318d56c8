package agent

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// TestHealthMetrics: the prober's targets, its probes by result and each
// target's state (a state set), the members whose health the overlay
// holds and those it takes out, read at scrape time; without a prober or
// an overlay, zeros; past the limit, no target's state.
func TestHealthMetrics(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ports := fixedPorts{
		{Name: "s1", OFPort: 3, IfaceID: "s1", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 11}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.11")}},
		{Name: "s2", OFPort: 4, IfaceID: "s2", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 12}, IPs: []netip.Addr{netip.MustParseAddr("fd00::12")}},
	}
	probe := lb.Probe{Type: lb.CheckTCP, Port: 8080, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2, FlapChanges: 4, FlapWindow: 30 * time.Second, Hold: 10 * time.Second, MaxHold: 5 * time.Minute}
	newTestProber := func() *prober {
		p := newProber(&sentFrames{}, ports, net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}, log)
		p.setTargets([]wire.ProbeTarget{
			{ID: "t1", IP: "10.0.0.11", Port: "s1", Source: "10.96.0.10", Probe: probe},
			{ID: "t2", IP: "fd00::12", Port: "s2", Source: "fd00::10", Probe: probe},
			{ID: "t3", IP: "10.0.0.13", Source: "10.96.0.10", Probe: probe}, // on no VM port here
		})
		return p
	}
	// results has each target's probes end: true passed, false failed.
	results := func(p *prober, res map[string][]bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		for id, oks := range res {
			for _, ok := range oks {
				p.observe(p.targets[id], now, ok, "", true)
			}
		}
		p.observe(p.targets["t3"], now, false, p.targets["t3"].why, false) // no probe sent: not counted
	}
	newOverlay := func() *healthOverlay {
		h := newHealthOverlay(func([]lb.Checked, uint64) {}, log)
		gs, err := lb.CheckAll([]lb.Group{{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, HealthCheck: &lb.HealthCheck{Type: "tcp"},
			Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12"}, {IP: "10.0.0.13"}}}})
		require.NoError(t, err)
		h.setGroups(gs, 1)
		h.setHealth(&wire.HealthLine{Full: true, Health: []wire.MemberHealth{
			{Group: "web", Member: "10.0.0.11", State: lb.HealthUp}, {Group: "web", Member: "10.0.0.12", State: lb.HealthDown}, {Group: "web", Member: "10.0.0.13", State: lb.HealthUp}}})
		return h
	}
	const counts = `
# HELP dlb_agent_member_health_known Members whose health the controller sent this host.
# TYPE dlb_agent_member_health_known gauge
dlb_agent_member_health_known %d
# HELP dlb_agent_member_health_out Active members this host takes out of new connections for their health (not up).
# TYPE dlb_agent_member_health_out gauge
dlb_agent_member_health_out %d
# HELP dlb_agent_probe_targets Health check targets this host probes (members of several groups probed alike are one).
# TYPE dlb_agent_probe_targets gauge
dlb_agent_probe_targets %d
# HELP dlb_agent_probes_total Health probes that ended, by result (ok, fail).
# TYPE dlb_agent_probes_total counter
dlb_agent_probes_total{result="fail"} %d
dlb_agent_probes_total{result="ok"} %d
`
	const statesHead = `
# HELP dlb_agent_probe_target_state A probe target's state as this host's probes decide it: 1 for its state (up, down, unknown, held), 0 for the others. target is IP:PORT of the probe; id tells apart targets probed differently (another VIP, check or VM port).
# TYPE dlb_agent_probe_target_state gauge
`
	for _, tc := range []struct {
		name    string
		p       func() *prober
		overlay func() *healthOverlay
		limit   int
		// known, out, targets, fail, ok
		counts [5]int
		states string
	}{
		{name: "no prober, no overlay", p: func() *prober { return nil }, overlay: func() *healthOverlay { return nil }, limit: 10},
		{name: "targets not probed yet", p: newTestProber, overlay: newOverlay, limit: 10, counts: [5]int{3, 1, 3, 0, 0}, states: `
dlb_agent_probe_target_state{id="t1",state="down",target="10.0.0.11:8080"} 0
dlb_agent_probe_target_state{id="t1",state="held",target="10.0.0.11:8080"} 0
dlb_agent_probe_target_state{id="t1",state="unknown",target="10.0.0.11:8080"} 1
dlb_agent_probe_target_state{id="t1",state="up",target="10.0.0.11:8080"} 0
dlb_agent_probe_target_state{id="t2",state="down",target="[fd00::12]:8080"} 0
dlb_agent_probe_target_state{id="t2",state="held",target="[fd00::12]:8080"} 0
dlb_agent_probe_target_state{id="t2",state="unknown",target="[fd00::12]:8080"} 1
dlb_agent_probe_target_state{id="t2",state="up",target="[fd00::12]:8080"} 0
dlb_agent_probe_target_state{id="t3",state="down",target="10.0.0.13:8080"} 0
dlb_agent_probe_target_state{id="t3",state="held",target="10.0.0.13:8080"} 0
dlb_agent_probe_target_state{id="t3",state="unknown",target="10.0.0.13:8080"} 1
dlb_agent_probe_target_state{id="t3",state="up",target="10.0.0.13:8080"} 0
`},
		{name: "one up, one down after two failures", p: func() *prober {
			p := newTestProber()
			results(p, map[string][]bool{"t1": {true}, "t2": {true, false, false}})
			return p
		}, limit: 10, counts: [5]int{0, 0, 3, 2, 2}, states: `
dlb_agent_probe_target_state{id="t1",state="down",target="10.0.0.11:8080"} 0
dlb_agent_probe_target_state{id="t1",state="held",target="10.0.0.11:8080"} 0
dlb_agent_probe_target_state{id="t1",state="unknown",target="10.0.0.11:8080"} 0
dlb_agent_probe_target_state{id="t1",state="up",target="10.0.0.11:8080"} 1
dlb_agent_probe_target_state{id="t2",state="down",target="[fd00::12]:8080"} 1
dlb_agent_probe_target_state{id="t2",state="held",target="[fd00::12]:8080"} 0
dlb_agent_probe_target_state{id="t2",state="unknown",target="[fd00::12]:8080"} 0
dlb_agent_probe_target_state{id="t2",state="up",target="[fd00::12]:8080"} 0
dlb_agent_probe_target_state{id="t3",state="down",target="10.0.0.13:8080"} 0
dlb_agent_probe_target_state{id="t3",state="held",target="10.0.0.13:8080"} 0
dlb_agent_probe_target_state{id="t3",state="unknown",target="10.0.0.13:8080"} 1
dlb_agent_probe_target_state{id="t3",state="up",target="10.0.0.13:8080"} 0
`},
		{name: "past the limit: no target's state", p: newTestProber, limit: 2, counts: [5]int{0, 0, 3, 0, 0}},
		{name: "a target gone", p: func() *prober {
			p := newTestProber()
			p.setTargets([]wire.ProbeTarget{{ID: "t1", IP: "10.0.0.11", Port: "s1", Source: "10.96.0.10", Probe: probe}})
			return p
		}, limit: 10, counts: [5]int{0, 0, 1, 0, 0}, states: `
dlb_agent_probe_target_state{id="t1",state="down",target="10.0.0.11:8080"} 0
dlb_agent_probe_target_state{id="t1",state="held",target="10.0.0.11:8080"} 0
dlb_agent_probe_target_state{id="t1",state="unknown",target="10.0.0.11:8080"} 1
dlb_agent_probe_target_state{id="t1",state="up",target="10.0.0.11:8080"} 0
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var overlay *healthOverlay
			if tc.overlay != nil {
				overlay = tc.overlay()
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(newHealthCollector(tc.p(), overlay, tc.limit, log))
			c := tc.counts
			assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(counts, c[0], c[1], c[2], c[3], c[4])),
				"dlb_agent_member_health_known", "dlb_agent_member_health_out", "dlb_agent_probe_targets", "dlb_agent_probes_total"))
			want := ""
			if tc.states != "" {
				want = statesHead + tc.states
			}
			assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "dlb_agent_probe_target_state"))
		})
	}
}

// TestProberCountsAllocs: counting a probe's result allocates nothing
// beyond what the probe's result always did.
func TestProberCountsAllocs(t *testing.T) {
	p := newProber(&sentFrames{}, fixedPorts{}, net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}, slog.New(slog.DiscardHandler))
	p.setTargets([]wire.ProbeTarget{{ID: "t1", IP: "10.0.0.11", Source: "10.96.0.10", Probe: lb.Probe{Type: lb.CheckTCP, Port: 80, Interval: time.Second, Rise: 2, Fall: 2, FlapChanges: 4}}})
	tg := p.targets["t1"]
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observe(tg, now, true, "syn-ack", true) // up: no more changes below
	allocs := testing.AllocsPerRun(100, func() { p.observe(tg, now, true, "syn-ack", true) })
	assert.Equal(t, 1.0, allocs, "the last result only")
}

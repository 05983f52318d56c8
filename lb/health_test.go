package lb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func healthGroup(hc *HealthCheck) Group {
	return Group{Name: "web", VIP: "10.96.0.10", Ports: []PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}},
		Members: []Member{{IP: "10.0.0.1"}, {IP: "10.0.0.2", Port: 9090}, {IP: "10.0.0.3", HealthCheckPort: 7000}}, HealthCheck: hc}
}

func TestHealthCheckValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   HealthCheck
		edit func(*Group)
		want []string // problem paths; none: valid
	}{
		{name: "tcp defaults", hc: HealthCheck{Type: "tcp"}},
		{name: "the issue's example", hc: HealthCheck{Type: "tcp", Interval: "1s", Timeout: "500ms", Rise: 2, Fall: 2}},
		{name: "http", hc: HealthCheck{Type: "http", Path: "/healthz", Host: "web.example", Expect: "200-299,304"}},
		{name: "udp", hc: HealthCheck{Type: "udp", Port: 5353, UDPSilenceOK: true, Payload: "ping"}},
		{name: "no type", hc: HealthCheck{}, want: []string{"health_check.type"}},
		{name: "bad type", hc: HealthCheck{Type: "icmp"}, want: []string{"health_check.type"}},
		{name: "bad port", hc: HealthCheck{Type: "tcp", Port: 70000}, want: []string{"health_check.port"}},
		{name: "interval not a duration", hc: HealthCheck{Type: "tcp", Interval: "1"}, want: []string{"health_check.interval"}},
		{name: "interval too short", hc: HealthCheck{Type: "tcp", Interval: "50ms"}, want: []string{"health_check.interval"}},
		{name: "timeout past interval", hc: HealthCheck{Type: "tcp", Interval: "1s", Timeout: "2s"}, want: []string{"health_check.timeout"}},
		{name: "fast interval past interval", hc: HealthCheck{Type: "tcp", Interval: "1s", FastInterval: "2s"}, want: []string{"health_check.fast_interval"}},
		{name: "fast interval too short", hc: HealthCheck{Type: "tcp", FastInterval: "10ms"}, want: []string{"health_check.fast_interval"}},
		{name: "fast interval", hc: HealthCheck{Type: "tcp", Interval: "1s", FastInterval: "1s"}},
		{name: "rise and fall", hc: HealthCheck{Type: "tcp", Rise: 11, Fall: -1}, want: []string{"health_check.rise", "health_check.fall"}},
		{name: "flap changes 1", hc: HealthCheck{Type: "tcp", FlapChanges: 1}, want: []string{"health_check.flap_changes"}},
		{name: "hold", hc: HealthCheck{Type: "tcp", Hold: "25h"}, want: []string{"health_check.hold"}},
		{name: "http fields on tcp", hc: HealthCheck{Type: "tcp", Path: "/", Expect: "200"}, want: []string{"health_check.path", "health_check.expect"}},
		{name: "relative path", hc: HealthCheck{Type: "http", Path: "healthz"}, want: []string{"health_check.path"}},
		{name: "path with a space", hc: HealthCheck{Type: "http", Path: "/a b"}, want: []string{"health_check.path"}},
		{name: "bad expect", hc: HealthCheck{Type: "http", Expect: "200-99"}, want: []string{"health_check.expect"}},
		{name: "udp fields on http", hc: HealthCheck{Type: "http", UDPSilenceOK: true, Payload: "x"}, want: []string{"health_check.udp_silence_ok", "health_check.payload"}},
		{name: "udp check of a tcp port", hc: HealthCheck{Type: "udp"}, want: []string{"health_check.port"}},
		{name: "dsr", hc: HealthCheck{Type: "tcp"}, edit: func(g *Group) {
			g.Mode = ModeDSR
			g.Ports[0].TargetPort = 0
			g.Members[1].Port = 0
		}, want: []string{"health_check"}},
		{name: "member port without a check", edit: func(g *Group) { g.HealthCheck = nil }, want: []string{"members[2].health_check_port"}},
		{name: "member port out of range", hc: HealthCheck{Type: "tcp"}, edit: func(g *Group) { g.Members[0].HealthCheckPort = -1 }, want: []string{"members[0].health_check_port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := tc.hc
			g := healthGroup(&hc)
			if tc.edit != nil {
				tc.edit(&g)
			}
			err := g.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			var paths []string
			for _, p := range ve.Problems {
				paths = append(paths, p.Path)
			}
			assert.Equal(t, tc.want, paths, err.Error())
		})
	}
}

func TestProbeOf(t *testing.T) {
	g := healthGroup(&HealthCheck{Type: "http", Interval: "2s"})
	p := g.ProbeOf(0)
	assert.Equal(t, Probe{Type: "http", Port: 8080, Interval: 2 * time.Second, FastInterval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2, Path: "/", Host: "10.0.0.1",
		Expect: []StatusRange{{200, 399}}, FlapChanges: 4, FlapWindow: 30 * time.Second, Hold: 10 * time.Second, MaxHold: 5 * time.Minute}, *p)
	assert.Equal(t, 9090, g.ProbeOf(1).Port, "the member's own target port")
	assert.Equal(t, 7000, g.ProbeOf(2).Port, "the member's health_check_port")
	assert.True(t, p.Expects(204))
	assert.False(t, p.Expects(500))

	g = healthGroup(&HealthCheck{Type: "udp", Port: 53})
	assert.Equal(t, 53, g.ProbeOf(1).Port, "the check's port over the member's")
	assert.Equal(t, "dlb-health", g.ProbeOf(0).Payload)
	g = healthGroup(nil)
	g.Members[2].HealthCheckPort = 0
	assert.Nil(t, g.ProbeOf(0))

	g = healthGroup(&HealthCheck{Type: "udp"})
	g.Ports = []PortSpec{{Protocol: "udp", Port: 5353}, {Protocol: "tcp", Port: 80}, {Protocol: "udp", Port: 53, TargetPort: 1053}}
	require.NoError(t, g.Validate())
	assert.Equal(t, 1053, g.ProbeOf(0).Port, "the lowest udp port's target, wherever it is listed")

	g = healthGroup(&HealthCheck{Type: "http"})
	g.VIP, g.Members[0].IP = "fd00::10", "fd00::1"
	assert.Equal(t, "[fd00::1]", g.ProbeOf(0).Host)
}

// TestHealthCheckProbe: a check's settings with the defaults, for any
// member.
func TestHealthCheckProbe(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   HealthCheck
		want Probe
		err  bool
	}{
		{name: "tcp, every default", hc: HealthCheck{Type: "tcp"},
			want: Probe{Type: "tcp", Interval: time.Second, FastInterval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2, FlapChanges: 4, FlapWindow: 30 * time.Second, Hold: 10 * time.Second, MaxHold: 5 * time.Minute}},
		{name: "http with its port and a long hold", hc: HealthCheck{Type: "http", Port: 8081, Interval: "2s", Rise: 3, Path: "/healthz", Hold: "10m"},
			want: Probe{Type: "http", Port: 8081, Interval: 2 * time.Second, FastInterval: time.Second, Timeout: time.Second, Rise: 3, Fall: 2, Path: "/healthz", Expect: []StatusRange{{200, 399}},
				FlapChanges: 4, FlapWindow: 30 * time.Second, Hold: 10 * time.Minute, MaxHold: 10 * time.Minute}},
		{name: "udp", hc: HealthCheck{Type: "udp", UDPSilenceOK: true},
			want: Probe{Type: "udp", Interval: time.Second, FastInterval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2, UDPSilenceOK: true, Payload: "dlb-health", FlapChanges: 4, FlapWindow: 30 * time.Second, Hold: 10 * time.Second, MaxHold: 5 * time.Minute}},
		{name: "not a duration", hc: HealthCheck{Type: "tcp", Interval: "often"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.hc.Probe()
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, p)
		})
	}
}

func TestHealthCheckCloneAndFingerprint(t *testing.T) {
	g := healthGroup(&HealthCheck{Type: "tcp", Interval: "1s"})
	c := g.Clone()
	require.Equal(t, g, c)
	c.HealthCheck.Interval = "2s"
	assert.Equal(t, "1s", g.HealthCheck.Interval, "a deep copy")
	assert.NotEqual(t, g.Fingerprint(), c.Fingerprint())
	c = g.Clone()
	c.HealthCheck = nil
	c.Members[2].HealthCheckPort = 0
	assert.NotEqual(t, g.Fingerprint(), c.Fingerprint())
	assert.True(t, HealthTakesNew(HealthUp))
	for _, s := range []string{HealthDown, HealthUnknown, HealthHeld} {
		assert.False(t, HealthTakesNew(s))
	}
}

func TestProbeFastInterval(t *testing.T) {
	for _, tc := range []struct {
		interval, fast string
		want           time.Duration
	}{
		{"1s", "", 500 * time.Millisecond},
		{"150ms", "", 100 * time.Millisecond},
		{"100ms", "", 100 * time.Millisecond},
		{"1s", "250ms", 250 * time.Millisecond},
		{"1s", "1s", time.Second},
	} {
		g := healthGroup(&HealthCheck{Type: "tcp", Interval: tc.interval, FastInterval: tc.fast})
		require.NoError(t, g.Validate())
		assert.Equal(t, tc.want, g.ProbeOf(0).FastInterval, "interval %s, fast_interval %q", tc.interval, tc.fast)
	}
}

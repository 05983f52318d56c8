package lb

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HealthCheck is how a group's members are probed (issue 19): each member
// by one host, normally the one its VM port is on. Members that fail are
// taken out of new-connection selection on every host, as a disabled
// member is; their established connections are kept.
type HealthCheck struct {
	// Type is tcp (a SYN answered by a SYN-ACK), udp (a datagram: an
	// ICMP port unreachable is down, silence for Timeout is down unless
	// UDPSilenceOK) or http (GET Path, a status in Expect).
	Type string `json:"type" yaml:"type"`
	// Port is the port probed; 0 means the member's target port (the
	// first port's, for a group with several).
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// Interval between probes of one member, a duration ("1s", "500ms");
	// default 1s, at least 100ms.
	Interval string `json:"interval,omitempty" yaml:"interval,omitempty"`
	// FastInterval is the interval while a member's state is in question:
	// after a probe that disagrees with it (a failure while up, a pass
	// while down), until the state changes or a probe agrees again, as
	// HAProxy's fastinter and Envoy's edge intervals. Default half the
	// interval (at least 100ms, at most the interval).
	FastInterval string `json:"fast_interval,omitempty" yaml:"fast_interval,omitempty"`
	// Timeout of one probe; default half the interval, at most the
	// interval.
	Timeout string `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Rise and Fall are the successes (failures) in a row that bring a
	// member up (down); default 2 each, 1..10.
	Rise int `json:"rise,omitempty" yaml:"rise,omitempty"`
	Fall int `json:"fall,omitempty" yaml:"fall,omitempty"`
	// Path and Host of an http check: default "/" and the member's
	// address.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Expect is the statuses an http check takes as up: ranges and
	// codes separated by commas ("200-399", "200,204"); default 200-399.
	Expect string `json:"expect,omitempty" yaml:"expect,omitempty"`
	// UDPSilenceOK takes a udp probe that gets no answer as up (the
	// member's firewall or service drops what it does not understand).
	UDPSilenceOK bool `json:"udp_silence_ok,omitempty" yaml:"udp_silence_ok,omitempty"`
	// Payload is what a udp probe sends; default "dlb-health".
	Payload string `json:"payload,omitempty" yaml:"payload,omitempty"`
	// FlapChanges state changes within FlapWindow hold a member down for
	// Hold, doubled each time it flaps again, up to MaxHold. Defaults: 4
	// changes in 30s, held 10s, at most 5m.
	FlapChanges int    `json:"flap_changes,omitempty" yaml:"flap_changes,omitempty"`
	FlapWindow  string `json:"flap_window,omitempty" yaml:"flap_window,omitempty"`
	Hold        string `json:"hold,omitempty" yaml:"hold,omitempty"`
}

// Health check types.
const (
	CheckTCP  = "tcp"
	CheckUDP  = "udp"
	CheckHTTP = "http"
)

// Member health states (the controller's status, never the document).
const (
	// HealthUp: the member passed its last Rise probes.
	HealthUp = "up"
	// HealthDown: it failed its last Fall probes.
	HealthDown = "down"
	// HealthUnknown: not probed yet since it joined (fail closed: no new
	// connections until its first success), or its prober cannot reach it.
	HealthUnknown = "unknown"
	// HealthHeld: it flapped and is held down until its hold time ends.
	HealthHeld = "held"
)

// HealthStates lists the health states, in the order the metrics' state
// sets give them.
func HealthStates() []string {
	return []string{HealthUp, HealthDown, HealthUnknown, HealthHeld}
}

// HealthTakesNew reports whether a member in health state s takes new
// connections: only up does.
func HealthTakesNew(s string) bool { return s == HealthUp }

// Limits of a health check.
const (
	MinCheckInterval = 100 * time.Millisecond
	MaxCheckInterval = 5 * time.Minute
	MaxCheckRiseFall = 10
	MaxHold          = 24 * time.Hour
	maxCheckText     = 255
)

// Probe is a health check with every default filled in and its durations
// parsed: what a prober runs.
type Probe struct {
	Type         string        `json:"type"`
	Port         int           `json:"port"`
	Interval     time.Duration `json:"interval"`
	FastInterval time.Duration `json:"fast_interval"`
	Timeout      time.Duration `json:"timeout"`
	Rise         int           `json:"rise"`
	Fall         int           `json:"fall"`
	Path         string        `json:"path,omitempty"`
	Host         string        `json:"host,omitempty"`
	Expect       []StatusRange `json:"expect,omitempty"`
	UDPSilenceOK bool          `json:"udp_silence_ok,omitempty"`
	Payload      string        `json:"payload,omitempty"`
	FlapChanges  int           `json:"flap_changes"`
	FlapWindow   time.Duration `json:"flap_window"`
	Hold         time.Duration `json:"hold"`
	MaxHold      time.Duration `json:"max_hold"`
}

// StatusRange is an inclusive range of HTTP statuses.
type StatusRange struct {
	Lo int `json:"lo"`
	Hi int `json:"hi"`
}

// Expects reports whether status is one the probe takes as up.
func (p *Probe) Expects(status int) bool {
	for _, r := range p.Expect {
		if status >= r.Lo && status <= r.Hi {
			return true
		}
	}
	return false
}

// ProbeOf is the probe a valid group's health check runs against member
// i: nil when the group has no health check. The port is the member's
// health_check_port, else the check's port, else the member's target port
// for the group's lowest port of the check's protocol (tcp for tcp and
// http).
func (g *Group) ProbeOf(i int) *Probe {
	hc := g.HealthCheck
	if hc == nil {
		return nil
	}
	p, err := hc.probe()
	if err != nil {
		panic(fmt.Sprintf("lb: health check of %s passed validation: %v", g.Name, err))
	}
	switch m := g.Members[i]; {
	case m.HealthCheckPort != 0:
		p.Port = m.HealthCheckPort
	case p.Port == 0:
		if ps, ok := g.checkedPort(); ok {
			p.Port = int(TargetPort(ps, m))
		}
	}
	if p.Type == CheckHTTP && p.Host == "" {
		p.Host = g.Members[i].IP
		if strings.Contains(p.Host, ":") {
			p.Host = "[" + p.Host + "]"
		}
	}
	return &p
}

// Probe is the check with its defaults filled in and its durations
// parsed, for any member: Port stays 0 when the check gives none (each
// member's target port), Host empty when it gives none (each member's
// address). An error names a value no valid check has.
func (hc *HealthCheck) Probe() (Probe, error) { return hc.probe() }

// probe fills the check's defaults in and parses it.
func (hc *HealthCheck) probe() (Probe, error) {
	p := Probe{Type: hc.Type, Port: hc.Port, Rise: hc.Rise, Fall: hc.Fall, UDPSilenceOK: hc.UDPSilenceOK, Path: hc.Path, Host: hc.Host, Payload: hc.Payload, FlapChanges: hc.FlapChanges}
	var err error
	dur := func(s string, def time.Duration) time.Duration {
		if s == "" || err != nil {
			return def
		}
		var d time.Duration
		d, err = time.ParseDuration(s)
		return d
	}
	p.Interval = dur(hc.Interval, time.Second)
	p.FastInterval = dur(hc.FastInterval, max(p.Interval/2, min(p.Interval, MinCheckInterval)))
	p.Timeout = dur(hc.Timeout, p.Interval/2)
	p.FlapWindow = dur(hc.FlapWindow, 30*time.Second)
	p.Hold = dur(hc.Hold, 10*time.Second)
	if err != nil {
		return p, err
	}
	p.MaxHold = max(p.Hold, 5*time.Minute)
	if p.Rise == 0 {
		p.Rise = 2
	}
	if p.Fall == 0 {
		p.Fall = 2
	}
	if p.FlapChanges == 0 {
		p.FlapChanges = 4
	}
	if p.Type == CheckHTTP {
		if p.Path == "" {
			p.Path = "/"
		}
		expect := hc.Expect
		if expect == "" {
			expect = "200-399"
		}
		if p.Expect, err = parseExpect(expect); err != nil {
			return p, err
		}
	}
	if p.Type == CheckUDP && p.Payload == "" {
		p.Payload = "dlb-health"
	}
	return p, nil
}

// parseExpect reads "200-399,404" as status ranges.
func parseExpect(s string) ([]StatusRange, error) {
	var out []StatusRange
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		a, errA := strconv.Atoi(strings.TrimSpace(lo))
		b, errB := strconv.Atoi(strings.TrimSpace(hi))
		switch {
		case errA != nil || errB != nil:
			return nil, fmt.Errorf("%q is not a status or a range of statuses (200-399)", part)
		case a < 100 || b > 599 || a > b:
			return nil, fmt.Errorf("%q: statuses are 100..599, low to high", part)
		}
		out = append(out, StatusRange{Lo: a, Hi: b})
	}
	return out, nil
}

// check validates a health check; p is its path ("health_check").
func (hc *HealthCheck) check(c *checker, p string, g *Group) {
	switch hc.Type {
	case CheckTCP, CheckUDP, CheckHTTP:
	case "":
		c.add(join(p, "type"), "required (tcp, udp or http)")
	default:
		c.add(join(p, "type"), "%q: want tcp, udp or http", hc.Type)
	}
	if hc.Port < 0 || hc.Port > 65535 {
		c.add(join(p, "port"), "%d is not a port (1..65535)", hc.Port)
	}
	dur := func(field, s string, lo, hi time.Duration) (time.Duration, bool) {
		if s == "" {
			return 0, false
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			c.add(join(p, field), "%q is not a duration (\"1s\", \"500ms\")", s)
		case d < lo || d > hi:
			c.add(join(p, field), "%s is out of range (%s..%s)", s, lo, hi)
		case d%time.Millisecond != 0:
			c.add(join(p, field), "%s: whole milliseconds only", s)
		default:
			return d, true
		}
		return 0, false
	}
	interval, okInterval := dur("interval", hc.Interval, MinCheckInterval, MaxCheckInterval)
	if !okInterval {
		interval = time.Second
	}
	if t, ok := dur("timeout", hc.Timeout, 10*time.Millisecond, MaxCheckInterval); ok && t > interval {
		c.add(join(p, "timeout"), "%s is longer than the interval (%s)", hc.Timeout, interval)
	}
	if f, ok := dur("fast_interval", hc.FastInterval, MinCheckInterval, MaxCheckInterval); ok && f > interval {
		c.add(join(p, "fast_interval"), "%s is longer than the interval (%s)", hc.FastInterval, interval)
	}
	dur("flap_window", hc.FlapWindow, time.Second, time.Hour)
	dur("hold", hc.Hold, time.Second, MaxHold)
	for _, f := range []struct {
		name string
		v    int
	}{{"rise", hc.Rise}, {"fall", hc.Fall}} {
		if f.v < 0 || f.v > MaxCheckRiseFall {
			c.add(join(p, f.name), "%d is out of range (1..%d)", f.v, MaxCheckRiseFall)
		}
	}
	if hc.FlapChanges < 0 || hc.FlapChanges > 100 {
		c.add(join(p, "flap_changes"), "%d is out of range (2..100)", hc.FlapChanges)
	} else if hc.FlapChanges == 1 {
		c.add(join(p, "flap_changes"), "1 would hold a member at its first change: at least 2")
	}
	http := hc.Type == CheckHTTP
	for _, f := range []struct{ name, v string }{{"path", hc.Path}, {"host", hc.Host}, {"expect", hc.Expect}} {
		switch {
		case f.v == "":
		case !http:
			c.add(join(p, f.name), "only for an http check")
		case len(f.v) > maxCheckText:
			c.add(join(p, f.name), "%d bytes: at most %d", len(f.v), maxCheckText)
		case strings.ContainsFunc(f.v, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			c.add(join(p, f.name), "%q has spaces or control characters", f.v)
		}
	}
	if http && hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
		c.add(join(p, "path"), "%q: want an absolute path (\"/healthz\")", hc.Path)
	}
	if http && hc.Expect != "" {
		if _, err := parseExpect(hc.Expect); err != nil {
			c.add(join(p, "expect"), "%v", err)
		}
	}
	if hc.Type != CheckUDP {
		if hc.UDPSilenceOK {
			c.add(join(p, "udp_silence_ok"), "only for a udp check")
		}
		if hc.Payload != "" {
			c.add(join(p, "payload"), "only for a udp check")
		}
	} else if len(hc.Payload) > 512 {
		c.add(join(p, "payload"), "%d bytes: at most 512", len(hc.Payload))
	}
	if g.Mode == ModeDSR {
		c.add(p, "not with dsr mode: a dsr member answers from the VIP, which the probe comes from")
	}
	if _, ok := g.checkedPort(); hc.Port == 0 && hc.Type != "" && !ok {
		c.add(join(p, "port"), "required: the group has no %s port for a %s check to probe", checkProtocol(hc.Type), hc.Type)
	}
}

// checkProtocol is the transport a check type probes over.
func checkProtocol(typ string) string {
	if typ == CheckUDP {
		return "udp"
	}
	return "tcp"
}

// checkedPort is the port whose target a health check without a port
// probes: the group's lowest port of the check's protocol (the lowest, not
// the first: the store does not keep the order of ports).
func (g *Group) checkedPort() (PortSpec, bool) {
	var best PortSpec
	ok := false
	for _, ps := range g.Ports {
		if strings.EqualFold(ps.Protocol, checkProtocol(g.HealthCheck.Type)) && (!ok || ps.Port < best.Port) {
			best, ok = ps, true
		}
	}
	return best, ok
}

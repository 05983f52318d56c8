package agent

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ovsdb"
	"github.com/ovs-dlb/dlb/pipeline"
)

type sentFrames struct{ frames [][]byte }

func (s *sentFrames) sendFrames(fs []outFrame) error {
	for _, f := range fs {
		s.frames = append(s.frames, f.data)
	}
	return nil
}

// sendQueued sends what the prober queued, as its scheduler does.
func sendQueued(p *prober) {
	p.mu.Lock()
	out, starts := p.out, p.starts
	p.out, p.starts = nil, nil
	p.mu.Unlock()
	p.flush(out, starts)
}

type fixedPorts []ovsdb.Port

func (f fixedPorts) Ports() []ovsdb.Port { return f }

// memberAnswer is what the member at the other end of the probe sends
// back: built from the probe's own frame.
func memberAnswer(t *testing.T, probe []byte, flags uint8, data []byte) []byte {
	t.Helper()
	a, ok := parseProbeAnswer(probe) // parsed as if it came back: fields swap
	require.True(t, ok)
	// a.member is the probe's source (the VIP), a.source the member.
	seg := tcpSegment(a.probePort, a.port, 1000, a.seq+1, flags, data)
	return probeFrame(net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 11}, a.source, a.member, protoTCP, seg)
}

func TestProberTCP(t *testing.T) {
	sent := &sentFrames{}
	ports := fixedPorts{{Name: "s1", OFPort: 3, IfaceID: "s1", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 11}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.11")}}}
	p := newProber(sent, ports, net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	var probes []pipeline.Probe
	p.onProbes = func(ps []pipeline.Probe) { probes = ps }
	g := lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}},
		Members: []lb.Member{{IP: "10.0.0.11"}}, HealthCheck: &lb.HealthCheck{Type: "tcp", FlapChanges: 3}}
	p.setTargets([]wire.ProbeTarget{{ID: "t1", IP: "10.0.0.11", Port: "s1", Source: "10.96.0.10", Probe: *g.ProbeOf(0)}})
	require.Equal(t, []pipeline.Probe{{OFPort: 3, Member: netip.MustParseAddr("10.0.0.11"), Source: netip.MustParseAddr("10.96.0.10"), Proto: 6, Port: 8080}}, probes)
	tg := p.targets["t1"]
	assert.Equal(t, lb.HealthUnknown, tg.state)

	probe := func(flags uint8) {
		t.Helper()
		p.mu.Lock()
		p.start(tg, now)
		p.mu.Unlock()
		sendQueued(p)
		syn := sent.frames[len(sent.frames)-1]
		a, ok := parseProbeAnswer(syn)
		require.True(t, ok)
		assert.Equal(t, uint8(tcpSYN), a.flags)
		assert.Equal(t, uint16(8080), a.probePort, "to the member's port")
		assert.GreaterOrEqual(t, a.port, uint16(0xf000), "from a probe port")
		if flags != 0 {
			p.answer(3, memberAnswer(t, syn, flags, nil))
			sendQueued(p)
		} else {
			p.mu.Lock()
			p.timeout(tg, now.Add(500*time.Millisecond))
			p.mu.Unlock()
		}
		now = now.Add(time.Second)
	}
	probe(tcpSYN | tcpACK)
	assert.Equal(t, lb.HealthUp, tg.state, "up at the first success")
	assert.Contains(t, tg.last.Detail, "syn-ack")
	rst, _ := parseProbeAnswer(sent.frames[len(sent.frames)-1])
	assert.Equal(t, uint8(tcpRST), rst.flags, "the half-open connection is reset")

	assert.Equal(t, tg.sent.Add(time.Second), tg.queued, "the next probe after the interval")
	probe(tcpRST | tcpACK)
	assert.Equal(t, lb.HealthUp, tg.state, "one failure is not fall 2")
	assert.Equal(t, tg.sent.Add(500*time.Millisecond), tg.queued, "in question: the next probe after the fast interval")
	probe(tcpRST | tcpACK)
	assert.Equal(t, lb.HealthDown, tg.state)
	assert.Equal(t, "2 probes failed: refused (rst)", tg.reason)
	assert.Equal(t, tg.sent.Add(time.Second), tg.queued, "down as the probes say: the interval again")
	probe(tcpSYN | tcpACK)
	assert.Equal(t, lb.HealthDown, tg.state, "rise 2")
	assert.Equal(t, tg.sent.Add(500*time.Millisecond), tg.queued, "in question again")
	probe(tcpSYN | tcpACK)
	assert.Equal(t, lb.HealthUp, tg.state)
	probe(0)
	probe(0)
	assert.Equal(t, lb.HealthHeld, tg.state, "third change in the window: held")
	assert.Equal(t, "no answer in 500ms", tg.last.Detail)
	for range 5 {
		probe(tcpSYN | tcpACK)
	}
	assert.Equal(t, lb.HealthHeld, tg.state, "held for 10 s whatever the probes say")
	for range 6 {
		probe(tcpSYN | tcpACK)
	}
	assert.Equal(t, lb.HealthUp, tg.state, "back after the hold and rise")

	rep := p.results(true)
	require.Len(t, rep.Results, 1)
	assert.Equal(t, "up", rep.Results[0].State)
	assert.True(t, rep.Full)

	// A stray answer (not to the probe under way) changes nothing.
	p.answer(3, memberAnswer(t, sent.frames[0], tcpRST|tcpACK, nil))
	assert.Equal(t, lb.HealthUp, tg.state)
}

func TestProbeAnswerParsing(t *testing.T) {
	vip, m := netip.MustParseAddr("fd00::10"), netip.MustParseAddr("fd00::11")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	d := probeFrame(mac, mac, m, vip, protoUDP, udpDatagram(5353, 0xf001, []byte("pong")))
	a, ok := parseProbeAnswer(d)
	require.True(t, ok)
	assert.Equal(t, probeAnswer{member: m, source: vip, proto: protoUDP, port: 5353, probePort: 0xf001, data: []byte("pong")}, a)
	// An ICMPv6 port unreachable quoting the probe datagram.
	probe := probeFrame(mac, mac, vip, m, protoUDP, udpDatagram(0xf001, 5353, []byte("ping")))
	icmp := append([]byte{1, 4, 0, 0, 0, 0, 0, 0}, probe[ethLen:]...)
	u := probeFrame(mac, mac, m, vip, 58, icmp)
	a, ok = parseProbeAnswer(u)
	require.True(t, ok)
	assert.True(t, a.unreachable)
	assert.Equal(t, uint16(5353), a.port)
	assert.Equal(t, uint16(0xf001), a.probePort)
	status, ok := httpStatus([]byte("HTTP/1.1 503 Service Unavailable\r\n"))
	assert.True(t, ok)
	assert.Equal(t, 503, status)
	_, ok = httpStatus([]byte("SSH-2.0"))
	assert.False(t, ok)
	for n := range len(u) {
		parseProbeAnswer(u[:n]) // never panics
	}
}

type failingSender struct{ calls int }

func (f *failingSender) sendFrames([]outFrame) error { f.calls++; return errors.New("not connected") }

// TestProberNotSent: a batch that cannot be sent fails the probes in it,
// in one write.
func TestProberNotSent(t *testing.T) {
	send := &failingSender{}
	ports := fixedPorts{
		{Name: "s1", OFPort: 3, IfaceID: "s1", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 11}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.11")}},
		{Name: "s2", OFPort: 4, IfaceID: "s2", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 12}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.12")}},
	}
	p := newProber(send, ports, net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}, slog.New(slog.DiscardHandler))
	probe := lb.Probe{Type: "tcp", Port: 8080, Interval: time.Second, FastInterval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1, FlapChanges: 4, FlapWindow: 30 * time.Second, Hold: 10 * time.Second, MaxHold: 5 * time.Minute}
	p.setTargets([]wire.ProbeTarget{{ID: "a", IP: "10.0.0.11", Source: "10.96.0.10", Probe: probe}, {ID: "b", IP: "10.0.0.12", Source: "10.96.0.10", Probe: probe}})
	p.mu.Lock()
	for _, id := range []string{"a", "b"} {
		p.start(p.targets[id], p.now())
	}
	p.mu.Unlock()
	sendQueued(p)
	assert.Equal(t, 1, send.calls, "one write for the batch")
	for _, id := range []string{"a", "b"} {
		tg := p.targets[id]
		assert.False(t, tg.active)
		require.NotNil(t, tg.last, id)
		assert.Equal(t, "not sent: not connected", tg.last.Detail)
	}
}

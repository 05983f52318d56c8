package agent

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/ovsdb"
	"github.com/ovs-dlb/dlb/pipeline"
)

// The prober probes the members the controller assigned to this host
// (issue 19): each probe is a packet-out into the member's VM port, from
// the member's VIP and a port of pipeline.ProbePortBase, and its answers
// come back as packet-ins (pipeline.Probe). The hypervisor needs no route
// to the VMs, and two tenants' members with one address on two ports are
// two targets. Each target's results go through rise, fall and flap
// damping here; the states go to the controller, which tells every host.

// outFrame is a frame to send out of a bridge port.
type outFrame struct {
	ofport uint32
	data   []byte
}

// frameSender sends frames out of ports of the bridge (packet-outs), in
// one write.
type frameSender interface {
	sendFrames(frames []outFrame) error
}

// switchSender posts packet-outs on the switch's connection: one write,
// no round trip (a lost probe is a failed probe, sent again).
type switchSender struct{ sw *ofctrl.Switch }

func (s switchSender) post(mods ...ofctrl.Mod) error {
	c, err := s.sw.TryConn()
	if err != nil {
		return err
	}
	return c.Post(mods...)
}

func (s switchSender) sendFrames(frames []outFrame) error {
	mods := make([]ofctrl.Mod, len(frames))
	for i, f := range frames {
		mods[i] = ofctrl.PacketOut{InPort: ofctrl.PortController, Actions: []ofctrl.Action{ofctrl.OutputPort(f.ofport)}, Data: f.data}
	}
	return s.post(mods...)
}

// vmPorts lists the bridge's VM ports.
type vmPorts interface{ Ports() []ovsdb.Port }

type prober struct {
	send  frameSender
	ports vmPorts
	mac   net.HardwareAddr
	log   *slog.Logger
	now   func() time.Time
	// report sends results to the controller (nil: none to send to).
	report func(context.Context, wire.HealthReport) error
	// onProbes hands the pipeline the probes whose answers it catches.
	onProbes func([]pipeline.Probe)

	mu       sync.Mutex
	targets  map[string]*target
	inflight map[answerKey]*target
	queue    probeQueue
	dirty    map[string]bool
	needFull bool
	wake     chan struct{} // the scheduler: the queue's head changed, or frames to send
	// out are the frames to send, sent by the scheduler outside the lock
	// (one write for all that are due); starts are the probes among them.
	out     []outFrame
	starts  []*target
	kick    chan struct{} // the reporter: a state changed
	counter uint16
	// probesOK and probesFailed count the probes' results, for the
	// metrics.
	probesOK, probesFailed uint64
}

// answerKey names the probe an answer is for.
type answerKey struct {
	ofport    uint32
	member    netip.Addr
	proto     uint8
	port      uint16
	probePort uint16
}

// target is one assigned probe target and its history.
type target struct {
	t wire.ProbeTarget
	// label names it in the metrics: IP:PORT of the probe.
	label  string
	ofport uint32
	dstMAC net.HardwareAddr
	member netip.Addr
	source netip.Addr
	// why, when set, is why the target cannot be probed from here.
	why string

	state     string
	since     time.Time
	reason    string
	heldUntil time.Time
	hold      time.Duration
	heldAt    time.Time
	okRun     int
	failRun   int
	changes   []time.Time
	last      *wire.ProbeResult

	// The probe under way.
	active    bool
	key       answerKey
	isn       uint32
	sent      time.Time
	phase     int // http: 0 SYN sent, 1 request sent
	request   []byte
	next      time.Time
	queued    time.Time // the time of its live queue entry
	scheduled bool
}

func newProber(send frameSender, ports vmPorts, mac net.HardwareAddr, log *slog.Logger) *prober {
	return &prober{send: send, ports: ports, mac: mac, log: log, now: time.Now,
		targets: map[string]*target{}, inflight: map[answerKey]*target{}, dirty: map[string]bool{},
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
}

// setTargets takes the controller's assignment (the whole list).
func (p *prober) setTargets(ts []wire.ProbeTarget) {
	p.mu.Lock()
	now := p.now()
	seen := map[string]bool{}
	var added []*target
	for _, wt := range ts {
		seen[wt.ID] = true
		if old, ok := p.targets[wt.ID]; ok {
			old.t.Members = wt.Members
			continue
		}
		tg := &target{t: wt, label: targetLabel(wt), state: lb.HealthUnknown, since: now, reason: "not probed yet"}
		p.targets[wt.ID] = tg
		added = append(added, tg)
	}
	for id, tg := range p.targets {
		if !seen[id] {
			p.stop(tg)
			delete(p.targets, id)
			delete(p.dirty, id)
		}
	}
	p.resolveLocked()
	for i, tg := range added {
		// The first probe goes at once; a large batch (an agent's start)
		// is spread over an interval.
		at := now
		if len(added) > 100 {
			at = now.Add(tg.t.Probe.Interval * time.Duration(i) / time.Duration(len(added)))
		}
		p.dirty[tg.t.ID] = true
		p.schedule(tg, at)
	}
	probes := p.probesLocked()
	p.mu.Unlock()
	p.signal(p.wake)
	p.signal(p.kick)
	if p.onProbes != nil {
		p.onProbes(probes)
	}
}

// targetLabel is a target's IP and probe port ("10.0.0.11:8080",
// "[fd00::11]:8080"), its IP alone without a port.
func targetLabel(t wire.ProbeTarget) string {
	if t.Probe.Port == 0 {
		return t.IP
	}
	return net.JoinHostPort(t.IP, strconv.Itoa(t.Probe.Port))
}

// portsChanged resolves the targets' ports again (a VM port came, went or
// changed).
func (p *prober) portsChanged() {
	p.mu.Lock()
	p.resolveLocked()
	probes := p.probesLocked()
	p.mu.Unlock()
	if p.onProbes != nil {
		p.onProbes(probes)
	}
}

// resolveLocked finds each target's VM port: the one the controller named,
// else the only one with the member's address (and MAC).
func (p *prober) resolveLocked() {
	ports := p.ports.Ports()
	for _, tg := range p.targets {
		tg.why, tg.ofport, tg.dstMAC = "", 0, nil
		member, err1 := netip.ParseAddr(tg.t.IP)
		source, err2 := netip.ParseAddr(tg.t.Source)
		if err1 != nil || err2 != nil || member.Is4() != source.Is4() {
			tg.why = "bad target"
			continue
		}
		tg.member, tg.source = member.Unmap(), source.Unmap()
		var found []ovsdb.Port
		for _, port := range ports {
			if !port.IsVM() || port.OFPort <= 0 {
				continue
			}
			if tg.t.Port != "" && port.Name == tg.t.Port {
				found = []ovsdb.Port{port}
				break
			}
			for _, a := range port.IPs {
				if a.Unmap() == tg.member && (tg.t.MAC == "" || port.MAC.String() == tg.t.MAC) {
					found = append(found, port)
				}
			}
		}
		switch {
		case len(found) == 0 && tg.t.Port == "":
			tg.why = "on no VM port of this host: probing through the underlay is not supported yet"
		case len(found) == 0:
			tg.why = fmt.Sprintf("VM port %s is not on this host's bridge", tg.t.Port)
		case len(found) > 1:
			tg.why = fmt.Sprintf("%d VM ports have %s: give the member's mac", len(found), tg.t.IP)
		default:
			tg.ofport, tg.dstMAC = uint32(found[0].OFPort), found[0].MAC
		}
	}
}

// probesLocked is what the pipeline catches answers for.
func (p *prober) probesLocked() []pipeline.Probe {
	var out []pipeline.Probe
	for _, tg := range p.targets {
		if tg.why != "" {
			continue
		}
		proto := uint8(protoTCP)
		if tg.t.Probe.Type == lb.CheckUDP {
			proto = protoUDP
		}
		out = append(out, pipeline.Probe{OFPort: tg.ofport, Member: tg.member, Source: tg.source, Proto: proto, Port: uint16(tg.t.Probe.Port)})
	}
	return out
}

func (p *prober) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// schedule queues tg's next event at at.
func (p *prober) schedule(tg *target, at time.Time) {
	tg.queued, tg.scheduled = at, true
	heap.Push(&p.queue, queued{at: at, tg: tg})
}

// stop ends tg's probe under way.
func (p *prober) stop(tg *target) {
	if tg.active {
		delete(p.inflight, tg.key)
		tg.active = false
	}
	tg.scheduled = false
}

// run is the scheduler: it starts probes and times them out, until ctx
// ends.
func (p *prober) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		now := p.now()
		for p.queue.Len() > 0 && !p.queue[0].at.After(now) {
			q := heap.Pop(&p.queue).(queued)
			tg := q.tg
			if !tg.scheduled || !q.at.Equal(tg.queued) || p.targets[tg.t.ID] != tg {
				continue // a stale entry
			}
			tg.scheduled = false
			if tg.active {
				p.timeout(tg, now)
				continue
			}
			p.start(tg, now)
		}
		wait := time.Hour
		if p.queue.Len() > 0 {
			// Probes due within a batch's time go together.
			wait = max(p.queue[0].at.Sub(now), probeBatch)
		}
		out, starts := p.out, p.starts
		p.out, p.starts = nil, nil
		p.mu.Unlock()
		p.flush(out, starts)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.wake:
			// Answers' segments wait for the batch too.
			select {
			case <-ctx.Done():
				return
			case <-time.After(probeBatch):
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// probeBatch is how long the scheduler gathers frames to send in one
// write: probes due within it start together, an answer's segment waits
// at most that long.
const probeBatch = 2 * time.Millisecond

// flush sends frames (outside the lock); if they could not be sent, the
// probes among them failed.
func (p *prober) flush(out []outFrame, starts []*target) {
	if len(out) == 0 {
		return
	}
	err := p.send.sendFrames(out)
	if err == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, tg := range starts {
		if tg.active && p.targets[tg.t.ID] == tg {
			p.finish(tg, now, false, "not sent: "+err.Error())
		}
	}
}

// queueFrame has a frame sent with the next batch.
func (p *prober) queueFrame(ofport uint32, frame []byte) {
	p.out = append(p.out, outFrame{ofport: ofport, data: frame})
}

// start sends tg's next probe.
func (p *prober) start(tg *target, now time.Time) {
	pr := &tg.t.Probe
	tg.next = now.Add(pr.Interval)
	if tg.why != "" {
		p.observe(tg, now, false, tg.why, false)
		p.schedule(tg, tg.next)
		return
	}
	p.counter++
	tg.key = answerKey{ofport: tg.ofport, member: tg.member, proto: protoTCP, port: uint16(pr.Port), probePort: pipeline.ProbePortBase | (p.counter & ^pipeline.ProbePortMask)}
	tg.isn, tg.phase, tg.sent = rand.Uint32(), 0, now
	var l4 []byte
	if pr.Type == lb.CheckUDP {
		tg.key.proto = protoUDP
		l4 = udpDatagram(tg.key.probePort, tg.key.port, []byte(pr.Payload))
	} else {
		l4 = tcpSegment(tg.key.probePort, tg.key.port, tg.isn, 0, tcpSYN, nil)
	}
	if old := p.inflight[tg.key]; old != nil && old != tg {
		p.stop(old)
	}
	p.inflight[tg.key] = tg
	tg.active = true
	p.schedule(tg, now.Add(pr.Timeout))
	p.queueFrame(tg.ofport, probeFrame(tg.dstMAC, p.mac, tg.source, tg.member, tg.key.proto, l4))
	p.starts = append(p.starts, tg)
}

// timeout ends a probe that got no answer in time.
func (p *prober) timeout(tg *target, now time.Time) {
	pr := &tg.t.Probe
	if pr.Type == lb.CheckUDP && pr.UDPSilenceOK {
		p.finish(tg, now, true, "no answer in "+pr.Timeout.String()+" (silence is ok)")
		return
	}
	p.finish(tg, now, false, "no answer in "+pr.Timeout.String())
}

// finish ends tg's probe with a result and schedules the next.
func (p *prober) finish(tg *target, now time.Time, ok bool, detail string) {
	if tg.active {
		delete(p.inflight, tg.key)
		tg.active = false
	}
	p.observe(tg, now, ok, detail, true)
	next := tg.next
	if inQuestion(tg) {
		next = tg.sent.Add(tg.t.Probe.FastInterval)
	}
	p.schedule(tg, maxTime(next, now))
}

// inQuestion is whether tg's last probes disagree with its state (failed
// while it is up, passed while it is down): its next probes then go at
// the fast interval, until the state changes or a probe agrees again.
func inQuestion(tg *target) bool {
	return (tg.state == lb.HealthUp && tg.failRun > 0) || (tg.state == lb.HealthDown && tg.okRun > 0)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// answer takes a probe answer the pipeline handed over.
func (p *prober) answer(inPort uint32, frame []byte) {
	a, ok := parseProbeAnswer(frame)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	tg := p.inflight[answerKey{ofport: inPort, member: a.member.Unmap(), proto: a.proto, port: a.port, probePort: a.probePort}]
	if tg == nil || !tg.active {
		return
	}
	now := p.now()
	took := now.Sub(tg.sent).Round(10 * time.Microsecond)
	pr := &tg.t.Probe
	switch {
	case a.unreachable:
		p.finish(tg, now, false, "port unreachable (icmp)")
	case a.proto == protoUDP:
		p.finish(tg, now, true, "answered in "+took.String())
	case a.ack != tg.isn+1 && tg.phase == 0:
		// Not an answer to this probe (an old one's).
	case a.flags&tcpRST != 0:
		p.finish(tg, now, false, "refused (rst)")
	case tg.phase == 0 && a.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
		if pr.Type != lb.CheckHTTP {
			p.sendTCP(tg, tg.isn+1, 0, tcpRST, nil)
			p.finish(tg, now, true, "syn-ack in "+took.String())
			return
		}
		tg.phase = 1
		tg.request = []byte("GET " + pr.Path + " HTTP/1.1\r\nHost: " + pr.Host + "\r\nUser-Agent: dlb-agent health check\r\nConnection: close\r\n\r\n")
		p.sendTCP(tg, tg.isn+1, a.seq+1, tcpACK|tcpPSH, tg.request)
	case tg.phase == 1 && len(a.data) > 0:
		seq := tg.isn + 1 + uint32(len(tg.request))
		p.sendTCP(tg, seq, 0, tcpRST, nil)
		status, ok := httpStatus(a.data)
		switch {
		case !ok:
			p.finish(tg, now, false, "not an http answer")
		case pr.Expects(status):
			p.finish(tg, now, true, "http "+strconv.Itoa(status)+" in "+took.String())
		default:
			p.finish(tg, now, false, "http "+strconv.Itoa(status))
		}
	case tg.phase == 1 && a.flags&tcpFIN != 0:
		p.sendTCP(tg, tg.isn+1+uint32(len(tg.request)), 0, tcpRST, nil)
		p.finish(tg, now, false, "closed without an answer")
	}
}

// sendTCP has a segment of tg's probe connection sent with the next
// batch.
func (p *prober) sendTCP(tg *target, seq, ack uint32, flags uint8, data []byte) {
	seg := tcpSegment(tg.key.probePort, tg.key.port, seq, ack, flags, data)
	p.queueFrame(tg.ofport, probeFrame(tg.dstMAC, p.mac, tg.source, tg.member, protoTCP, seg))
	p.signal(p.wake)
}

// httpStatus reads the status of an HTTP answer's first bytes.
func httpStatus(b []byte) (int, bool) {
	if len(b) < 12 || string(b[:7]) != "HTTP/1." || b[8] != ' ' {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[9:12]))
	return n, err == nil && n >= 100 && n <= 599
}

// observe takes a probe's result through rise, fall and flap damping.
func (p *prober) observe(tg *target, now time.Time, ok bool, detail string, probed bool) {
	pr := &tg.t.Probe
	if probed {
		tg.last = &wire.ProbeResult{At: now.UTC(), OK: ok, Detail: detail}
		if ok {
			p.probesOK++
		} else {
			p.probesFailed++
		}
	}
	if ok {
		tg.okRun, tg.failRun = tg.okRun+1, 0
	} else {
		tg.failRun, tg.okRun = tg.failRun+1, 0
	}
	if tg.state == lb.HealthHeld {
		if now.Before(tg.heldUntil) {
			return
		}
		p.transition(tg, now, lb.HealthDown, "hold ended; up again after "+strconv.Itoa(pr.Rise)+" passed probes")
	}
	if !probed {
		if tg.state != lb.HealthUnknown || tg.reason != detail {
			p.transition(tg, now, lb.HealthUnknown, detail)
		}
		return
	}
	var to, why string
	switch {
	case ok && tg.state == lb.HealthUnknown:
		to, why = lb.HealthUp, "first probe passed: "+detail
	case ok && tg.state == lb.HealthDown && tg.okRun >= pr.Rise:
		to, why = lb.HealthUp, fmt.Sprintf("%d probes passed: %s", tg.okRun, detail)
	case !ok && tg.state != lb.HealthDown && tg.failRun >= pr.Fall:
		to, why = lb.HealthDown, fmt.Sprintf("%d probes failed: %s", tg.failRun, detail)
	}
	if to == "" {
		return
	}
	if tg.state == lb.HealthUp || tg.state == lb.HealthDown {
		tg.changes = append(tg.changes, now)
		for len(tg.changes) > 0 && now.Sub(tg.changes[0]) > pr.FlapWindow {
			tg.changes = tg.changes[1:]
		}
		if len(tg.changes) >= pr.FlapChanges {
			if tg.hold == 0 || now.Sub(tg.heldAt) > pr.MaxHold {
				tg.hold = pr.Hold
			} else {
				tg.hold = min(2*tg.hold, pr.MaxHold)
			}
			tg.heldAt, tg.heldUntil, tg.changes = now, now.Add(tg.hold), nil
			p.transition(tg, now, lb.HealthHeld, fmt.Sprintf("flapping: %d changes in %s; held down for %s", pr.FlapChanges, pr.FlapWindow, tg.hold))
			return
		}
	}
	p.transition(tg, now, to, why)
}

func (p *prober) transition(tg *target, now time.Time, to, why string) {
	if tg.state != to {
		p.log.Info("member health", "member", tg.t.IP, "port", tg.t.Probe.Port, "state", to, "was", tg.state, "reason", why)
	}
	tg.state, tg.since, tg.reason = to, now, why
	p.dirty[tg.t.ID] = true
	p.signal(p.kick)
}

// targetState is a target's state, for the metrics.
type targetState struct{ id, label, state string }

// probeCounts is what the metrics read of the prober.
type probeCounts struct {
	targets                int
	probesOK, probesFailed uint64
	// states are the targets' states, in no order; nil above the limit.
	states []targetState
}

// counts reads the prober's counts and, up to limit targets, each
// target's state.
func (p *prober) counts(limit int) probeCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := probeCounts{targets: len(p.targets), probesOK: p.probesOK, probesFailed: p.probesFailed}
	if len(p.targets) > limit {
		return c
	}
	c.states = make([]targetState, 0, len(p.targets))
	for id, tg := range p.targets {
		c.states = append(c.states, targetState{id: id, label: tg.label, state: tg.state})
	}
	return c
}

// results is the report to send: every target (full) or those changed.
func (p *prober) results(full bool) wire.HealthReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep := wire.HealthReport{Full: full || p.needFull}
	for id, tg := range p.targets {
		if !rep.Full && !p.dirty[id] {
			continue
		}
		th := wire.TargetHealth{Target: id, State: tg.state, Since: tg.since.UTC(), Reason: truncate(tg.reason, 200), Last: tg.last}
		if tg.state == lb.HealthHeld {
			u := tg.heldUntil.UTC()
			th.HeldUntil = &u
		}
		if th.Last != nil {
			l := *th.Last
			l.Detail = truncate(l.Detail, 200)
			th.Last = &l
		}
		rep.Results = append(rep.Results, th)
	}
	clear(p.dirty)
	p.needFull = false
	return rep
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// runReports sends the states as they change (and all of them every
// fullEvery, and after a failed report), until ctx ends.
func (p *prober) runReports(ctx context.Context, fullEvery time.Duration) {
	if p.report == nil {
		return
	}
	full := time.NewTicker(fullEvery)
	defer full.Stop()
	for {
		all := false
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-full.C:
			all = true
		}
		rep := p.results(all)
		if len(rep.Results) == 0 && !rep.Full {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := p.report(rctx, rep)
		cancel()
		if err != nil {
			p.log.Warn("health report not sent; all states go with the next", "err", err)
			p.mu.Lock()
			p.needFull = true
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			p.signal(p.kick)
		}
	}
}

// resend has the next report carry every state (the controller restarted,
// or the watch reconnected).
func (p *prober) resend() {
	p.mu.Lock()
	p.needFull = true
	p.mu.Unlock()
	p.signal(p.kick)
}

// probeQueue is a min-heap of events by time.
type queued struct {
	at time.Time
	tg *target
}

type probeQueue []queued

func (q probeQueue) Len() int           { return len(q) }
func (q probeQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q probeQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *probeQueue) Push(x any)        { *q = append(*q, x.(queued)) }
func (q *probeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

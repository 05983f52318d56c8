package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

// memberRef names what a member's counters are about: a group, one of its
// VIP ports ("tcp/80") and one of its members (its address, and its own
// port if it has one).
type memberRef struct {
	Group, Port string
	Member      netip.AddrPort
}

// memberLabel is a member as the metrics name it (lb.MemberLabel).
func memberLabel(m netip.AddrPort) string { return lb.MemberLabel(m.Addr(), int(m.Port())) }

// refOf names member m of port p of group g.
func refOf(g *lb.Checked, p, m int) memberRef {
	return memberRef{Group: g.Name, Port: lb.PortLabel(g.Ports[p]),
		Member: netip.AddrPortFrom(g.MemberAddr(m), uint16(g.Members[m].Port))}
}

// commitKey identifies a member's commit flow in DLB_MEMBER: its cookie
// (group and VIP port) and the member index it matches.
type commitKey struct {
	cookie uint64
	index  uint16
}

// memberCount is one commit flow's count, kept as a counter: total only
// grows, across the flow's re-creation (the switch restarted) and changes
// of its actions (the member's MAC). 56 bytes: a host may count 100,000.
type memberCount struct {
	raw   uint64 // the flow's packet count when last read
	total uint64
	sent  uint64 // total as the controller last took it
	seen  uint32 // the read that last saw it
	// gone: the switch removed the flow and sent its final count, kept
	// until the controller took it.
	gone  bool
	index uint16 // the member index the flow matches
	port  uint16 // the member's own port, 0 for none
	addr  [16]byte
}

// member is the member the count is about.
func (c *memberCount) member() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(c.addr).Unmap(), c.port)
}

// portStats are the counts of one VIP port's commit flows (one cookie),
// by member index: 10,000 VIP ports of 10 members are 10,000 of these,
// not 100,000 objects.
type portStats struct {
	group, port string
	members     []memberCount // by index
}

// find returns the count of member index i, nil when there is none.
func (p *portStats) find(i uint16) *memberCount {
	k, ok := slices.BinarySearchFunc(p.members, i, func(m memberCount, i uint16) int { return int(m.index) - int(i) })
	if !ok {
		return nil
	}
	return &p.members[k]
}

// put sets the count of member index m.index.
func (p *portStats) put(m memberCount) {
	k, ok := slices.BinarySearchFunc(p.members, m.index, func(c memberCount, i uint16) int { return int(c.index) - int(i) })
	if ok {
		p.members[k] = m
	} else {
		p.members = slices.Insert(p.members, k, m)
	}
}

// statsSource is what the collector reads: the switch's commit flows
// (an *ofctrl.Conn).
type statsSource interface {
	EachFlowCounter(ctx context.Context, table uint8, cookie, mask uint64, fn func(*ofctrl.FlowCounter)) error
}

// flowCount is one commit flow as a read found it.
type flowCount struct {
	key      commitKey
	packets  uint64
	duration time.Duration // since the flow was made
}

// memberResolver names the members of commit flows as the reconciler last
// installed them (nil for a flow it did not make), and says how many
// changes it installed so far: a member index may stand for another
// member after a change.
type memberResolver interface {
	resolveCommits(keys []commitKey) []memberRef // zero: not the reconciler's
	commitChanges() uint64
}

// memberStats counts, on this host, each member's new connections: the
// packets of its commit flows in DLB_MEMBER, which see the first packet of
// each connection the host sends it (docs/pipeline.md, "Counting new
// connections"). It reads them every interval and keeps them as counters,
// exported on /metrics as dlb_agent_member_new_connections_total.
type memberStats struct {
	table    uint8
	resolver memberResolver
	log      *slog.Logger
	// limit bounds the members exported on /metrics.
	limit int

	fresh  []flowCount   // flows to name, of a read (its room kept)
	dumped time.Duration // how long the last read's dump took
	unread []flowCount   // removed flows never read, to name (under mu)

	mu      sync.Mutex
	ports   map[uint64]*portStats // by cookie
	members int
	reads   uint32
	last    time.Time // of the last read
	changes uint64    // the resolver's, at the last read
	warned  bool      // about the limit
	// report sends the counters after each read (nil: no controller);
	// full says the next report has every member.
	report func(ctx context.Context, r wire.StatsReport) (wire.StatsAnswer, error)
	full   bool
	sent   *prometheus.CounterVec

	polls    *prometheus.CounterVec
	duration prometheus.Gauge
	gauge    prometheus.Gauge // members counted
	desc     *prometheus.Desc
}

func newMemberStats(table uint8, limit int, resolver memberResolver, log *slog.Logger, reg prometheus.Registerer) *memberStats {
	s := &memberStats{table: table, resolver: resolver, log: log, limit: limit, ports: map[uint64]*portStats{}, full: true,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_stats_reports_total",
			Help: "Reports of the members' counters to the controller, by result (ok; refused: the controller took nothing, all are sent again; error: not delivered)."}, []string{"result"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_stats_reads_total",
			Help: "Reads of the members' counters from the switch, by result (ok, error)."}, []string{"result"}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_stats_read_seconds",
			Help: "How long the last read of the members' counters took."}),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_stats_members",
			Help: "Members' commit flows counted on this host (one per group, VIP port and active member)."}),
		desc: prometheus.NewDesc("dlb_agent_member_new_connections_total",
			"New connections this host sent to a member through a VIP port of a group (the packets of the member's commit flow; exported up to member_metrics_limit members).",
			[]string{"group", "port", "member"}, nil),
	}
	s.polls.WithLabelValues("ok")
	s.polls.WithLabelValues("error")
	for _, r := range []string{"ok", "refused", "error"} {
		s.sent.WithLabelValues(r)
	}
	reg.MustRegister(s.polls, s.duration, s.gauge, s.sent, s)
	return s
}

// readShare bounds the time spent reading counters: after a read that
// took d, the next one waits at least readShare*d (a read of 100,000
// commit flows takes ovs-vswitchd and the agent about 0.15 s: they are
// read every 3 s rather than every second).
const readShare = 20

// maxPace bounds the pacing: counters are read at least this often.
const maxPace = 30 * time.Second

// run reads the counters every interval (or, on a host with so many
// members that a read takes more than a twentieth of it, readShare times
// the last read's time) while the switch is connected.
func (s *memberStats) run(ctx context.Context, sw bridgeSwitch, interval time.Duration) {
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = interval
		c, err := sw.TryConn()
		if err != nil {
			continue
		}
		start := time.Now()
		if err := s.read(ctx, c, start); err != nil && ctx.Err() == nil {
			s.log.Debug("members' counters not read", "err", err)
			continue
		}
		// Paced by the dump alone (the switch's and the agent's work per
		// flow), not by waits for the reconciler, and at most maxPace.
		next := max(interval, min(readShare*s.dumped, maxPace))
		if s.report != nil {
			s.send(ctx, next)
		}
		wait = next - time.Since(start)
	}
}

// read takes the commit flows' counters from the switch, at now.
func (s *memberStats) read(ctx context.Context, c statsSource, now time.Time) error {
	start := time.Now()
	changes := s.resolver.commitChanges()
	since, again := s.begin(now, changes)
	// The counts known are taken as the reply comes (no copy of 100,000
	// flows); the others are named after it.
	fresh := s.fresh[:0]
	dumpStart := time.Now()
	defer func() { s.dumped = time.Since(dumpStart) }()
	err := c.EachFlowCounter(ctx, s.table, pipeline.Cookie(pipeline.KindMember, 0, 0), pipeline.CookieKindMask, func(fc *ofctrl.FlowCounter) {
		index, ok := fc.Reg(pipeline.RegMember)
		if !ok {
			return
		}
		f := flowCount{commitKey{fc.Cookie, uint16(index)}, fc.Packets, fc.Duration}
		s.mu.Lock()
		taken := s.take(&f, since, again)
		s.mu.Unlock()
		if !taken {
			fresh = append(fresh, f)
		}
	})
	s.fresh = fresh[:0]
	if cap(fresh) > 4096 {
		s.fresh = nil // a first read's, or after a change: not kept
	}
	if err != nil {
		s.polls.WithLabelValues("error").Inc()
		return err
	}
	s.finish(fresh, now, changes, since)
	s.polls.WithLabelValues("ok").Inc()
	s.duration.Set(time.Since(start).Seconds())
	return nil
}

// observe folds one read of the commit flows, taken at now after the
// resolver's changes-th change, into the counters, as read does with the
// switch's reply (for tests):
//
//   - a flow not counted before brings its whole count (since it was
//     made: at an agent's start, what its flows counted before it);
//   - a flow counted before brings what it gained, or all of its count
//     when it was made again since the last read (its duration is shorter
//     than the time since, or its count went down);
//   - after the reconciler installed a change, every flow is named again:
//     one that stands for another member now (a member that took a
//     departed one's index; a modified flow keeps its count) starts a new
//     counter from its count there;
//   - counters of flows gone are dropped with them.
func (s *memberStats) observe(flows []flowCount, now time.Time, changes uint64) {
	since, again := s.begin(now, changes)
	var fresh []flowCount
	s.mu.Lock()
	for i := range flows {
		if !s.take(&flows[i], since, again) {
			fresh = append(fresh, flows[i])
		}
	}
	s.mu.Unlock()
	s.finish(fresh, now, changes, since)
}

// begin starts a read at now, after the resolver's changes-th change: the
// time since the last read, and whether every flow is to be named again.
func (s *memberStats) begin(now time.Time, changes uint64) (since time.Duration, again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return now.Sub(s.last), changes != s.changes
}

// take counts a flow read if it is known and need not be named again
// (under mu).
func (s *memberStats) take(f *flowCount, since time.Duration, again bool) bool {
	if again {
		return false
	}
	c := s.find(f.key)
	if c == nil {
		return false
	}
	s.count(c, f, since)
	return true
}

// finish ends a read: names the flows read that were not taken and the
// removed ones no read saw, and drops the counts of flows gone.
func (s *memberStats) finish(fresh []flowCount, now time.Time, changes uint64, since time.Duration) {
	s.name(fresh, since)
	s.mu.Lock()
	unread := s.unread
	s.unread = nil
	s.mu.Unlock()
	s.nameRemoved(unread)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.changes = now, changes
	s.sweep()
}

// removed takes a flow removed message: a commit flow the agent took out
// (its member left, drained, or its group went), with its final count.
// It runs on the switch connection's reader (which the reconciler waits
// on while it holds its lock), so it names nothing: a flow made and
// removed between two reads is named at the next read (nameRemoved).
func (s *memberStats) removed(fc *ofctrl.FlowCounter) {
	if pipeline.CookieKind(fc.Cookie) != pipeline.KindMember {
		return
	}
	index, ok := fc.Reg(pipeline.RegMember)
	if !ok {
		return
	}
	s.final(commitKey{fc.Cookie, uint16(index)}, fc.Packets)
}

// final takes a removed commit flow's final count.
func (s *memberStats) final(key commitKey, packets uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.find(key)
	if c == nil {
		// Made and removed between two reads: named at the next read
		// (while the member stays in its group).
		s.unread = append(s.unread, flowCount{key: key, packets: packets})
		return
	}
	if c.gone {
		return
	}
	if packets >= c.raw {
		c.total += packets - c.raw
	}
	c.raw, c.gone = packets, true
}

// find returns the count of a commit flow, nil when there is none.
func (s *memberStats) find(k commitKey) *memberCount {
	if p := s.ports[k.cookie]; p != nil {
		return p.find(k.index)
	}
	return nil
}

// name names flows not counted yet (or all, after a change) and counts
// them.
func (s *memberStats) name(fresh []flowCount, since time.Duration) {
	// In chunks: an agent's first read names every flow (100,000 refs at
	// once were 10 MB more at its peak).
	const chunk = 4096
	for len(fresh) > chunk {
		s.name(fresh[:chunk], since)
		fresh = fresh[chunk:]
	}
	if len(fresh) == 0 {
		return
	}
	refs := s.resolve(fresh)
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := map[*portStats]bool{}
	for i := range fresh {
		fc, ref, key := &fresh[i], refs[i], fresh[i].key
		if ref.Group == "" {
			continue // not the reconciler's (yet): next time
		}
		p := s.portOf(key, ref)
		var c memberCount
		switch old := p.find(key.index); {
		case old == nil:
			c = memberCount{total: fc.packets}
		case old.member() == ref.Member:
			c = *old
			s.count(&c, fc, since)
		case fc.duration < since:
			c = memberCount{total: fc.packets}
		default:
			c = memberCount{} // a flow that counted for another member until now
		}
		c.index, c.addr, c.port, c.raw, c.seen = key.index, ref.Member.Addr().As16(), ref.Member.Port(), fc.packets, s.reads
		p.put(c)
		touched[p] = true
	}
	// Appends left up to twice the room needed: 10,000 ports of 10 members
	// held 16 each.
	for p := range touched {
		if cap(p.members) > len(p.members) {
			p.members = slices.Clone(p.members)
		}
	}
}

// resolve names flows' members (zero for those the reconciler did not
// make), with the resolver's lock, not mu.
func (s *memberStats) resolve(flows []flowCount) []memberRef {
	keys := make([]commitKey, len(flows))
	for i := range flows {
		keys[i] = flows[i].key
	}
	return s.resolver.resolveCommits(keys)
}

// portOf is the counts of a flow's VIP port, made anew when its cookie is
// new or names another group's port now (under mu).
func (s *memberStats) portOf(key commitKey, ref memberRef) *portStats {
	p := s.ports[key.cookie]
	if p == nil || p.group != ref.Group || p.port != ref.Port {
		p = &portStats{group: ref.Group, port: ref.Port}
		s.ports[key.cookie] = p
	}
	return p
}

// nameRemoved names flows the switch removed before any read saw them, and
// keeps their final counts until the controller took them.
func (s *memberStats) nameRemoved(unread []flowCount) {
	if len(unread) == 0 {
		return
	}
	refs := s.resolve(unread)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, u := range unread {
		ref := refs[i]
		if ref.Group == "" || s.find(u.key) != nil {
			continue // its member left its group; or read meanwhile
		}
		s.portOf(u.key, ref).put(memberCount{total: u.packets, raw: u.packets, gone: true, seen: s.reads, index: u.key.index,
			addr: ref.Member.Addr().As16(), port: ref.Member.Port()})
	}
}

// sweep drops the counts of flows the last read did not see, but for
// those the switch removed whose final count the controller has not
// taken yet.
func (s *memberStats) sweep() {
	s.members = 0
	for cookie, p := range s.ports {
		p.members = slices.DeleteFunc(p.members, func(c memberCount) bool {
			return c.seen != s.reads && !(c.gone && s.report != nil && c.sent != c.total)
		})
		if len(p.members) == 0 {
			delete(s.ports, cookie)
		}
		s.members += len(p.members)
	}
	s.gauge.Set(float64(s.members))
}

// count adds what flow fc gained since c last saw it.
func (s *memberStats) count(c *memberCount, fc *flowCount, since time.Duration) {
	if c.gone {
		// Removed since the last read, and made again: all of its count
		// is new.
		c.total += fc.packets
		c.raw, c.seen, c.gone = fc.packets, s.reads, false
		return
	}
	if fc.duration < since || fc.packets < c.raw {
		c.total += fc.packets // made again since the last read
	} else {
		c.total += fc.packets - c.raw
	}
	c.raw, c.seen = fc.packets, s.reads
}

// totals is each member's count, summed over its commit flows.
func (s *memberStats) totals() map[memberRef]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sums := make(map[memberRef]uint64, s.members)
	for _, p := range s.ports {
		for _, c := range p.members {
			sums[memberRef{p.group, p.port, c.member()}] += c.total
		}
	}
	return sums
}

// Describe is the prometheus.Collector's.
func (s *memberStats) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

// Collect is the prometheus.Collector's: one series per (group, port,
// member), unless there are more than limit (then none, and a warning
// once: a host with 10,000 groups of 10 members would export 100,000).
func (s *memberStats) Collect(ch chan<- prometheus.Metric) {
	sums := s.totals()
	if len(sums) > s.limit {
		s.mu.Lock()
		if !s.warned {
			s.log.Warn("members' counters not exported on /metrics: more members than member_metrics_limit", "members", len(sums), "limit", s.limit)
			s.warned = true
		}
		s.mu.Unlock()
		return
	}
	for ref, n := range sums {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(n), ref.Group, ref.Port, memberLabel(ref.Member))
	}
}

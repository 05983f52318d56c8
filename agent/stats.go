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

// commitKey identifies a member's flows of one VIP port: the cookie of its
// commit flow in DLB_MEMBER (group and VIP port; its counting flows'
// cookies differ by kind only: baseCookie) and its member index.
type commitKey struct {
	cookie uint64
	index  uint16
}

// baseCookie is the commit flows' cookie of a member's flow of any role.
func baseCookie(cookie uint64) uint64 {
	return pipeline.Cookie(pipeline.KindMember, pipeline.CookieService(cookie), uint16(cookie))
}

// roleOf is the role of a flow of the DLB by its cookie (ok false for a
// flow that counts nothing of a member).
func roleOf(cookie uint64) (pipeline.Role, bool) {
	switch pipeline.CookieKind(cookie) {
	case pipeline.KindMember:
		return pipeline.RoleCommit, true
	case pipeline.KindCountTo:
		return pipeline.RoleCountTo, true
	case pipeline.KindCountFrom:
		return pipeline.RoleCountFrom, true
	}
	return 0, false
}

// tally is a flow's counters.
type tally struct{ packets, bytes uint64 }

func (t tally) add(o tally) tally { return tally{t.packets + o.packets, t.bytes + o.bytes} }
func (t tally) sub(o tally) tally { return tally{t.packets - o.packets, t.bytes - o.bytes} }

// flowRaw is one of a member's flows as a read last saw it.
type flowRaw struct {
	tally
	seen uint32 // the read that last saw it (0: none)
	// gone: the switch removed the flow and sent its final count, kept
	// until the controller took it.
	gone bool
}

// memberCount is a member's counts on one VIP port, kept as counters: each
// role's total only grows, across its flow's re-creation (the switch
// restarted) and changes of its actions (the member's MAC). The commit
// flow's packets are the member's new connections, its counting flows'
// the packets and bytes of its connections each way. 208 bytes: a
// host may count 100,000.
type memberCount struct {
	raw   [numRoles]flowRaw
	total [numRoles]tally
	sent  [numRoles]tally // total as the controller last took it
	// active is the member's connections open (conntrack entries not
	// closed) as last read, activeSent as the controller last took it.
	active, activeSent uint32
	// newAtDump is the new connections counted when active was read
	// (what a least-connections group adds to the figures since).
	newAtDump uint64
	// reborn: made in place of another member that had the index (its
	// flows' counts until now were that member's).
	reborn bool
	index  uint16 // the member index its flows match
	port   uint16 // the member's own port, 0 for none
	addr   [16]byte
}

// numRoles is how many flows count for a member.
const numRoles = 3

// member is the member the count is about.
func (c *memberCount) member() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(c.addr).Unmap(), c.port)
}

// seenIn reports whether read saw any of its flows.
func (c *memberCount) seenIn(read uint32) bool {
	for _, r := range c.raw {
		if r.seen == read {
			return true
		}
	}
	return false
}

// unsent reports whether a removed flow's final count is still to go.
func (c *memberCount) unsent() bool {
	for r := range c.raw {
		if c.raw[r].gone && c.sent[r] != c.total[r] {
			return true
		}
	}
	return false
}

// counts are a member's counters as reported.
type counts struct {
	New      uint64
	To, From tally
	Active   uint64
}

func (c *memberCount) counts() counts {
	return counts{New: c.total[pipeline.RoleCommit].packets, To: c.total[pipeline.RoleCountTo], From: c.total[pipeline.RoleCountFrom], Active: uint64(c.active)}
}

// portStats are the counts of one VIP port's members (one commit cookie),
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

// flowCount is one of a member's flows as a read found it.
type flowCount struct {
	key  commitKey
	role pipeline.Role
	tally
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

// memberStats counts, on this host, each member's new connections (the
// packets of its commit flows in DLB_MEMBER, which see the first packet of
// each connection the host sends it) and its connections' packets and
// bytes each way (its counting flows in DLB_COUNT): docs/pipeline.md,
// "Counting". It reads them every interval and keeps them as counters,
// exported on /metrics (dlb_agent_member_*_total).
type memberStats struct {
	cfg      pipeline.Config
	resolver memberResolver
	log      *slog.Logger
	// limit bounds the members exported on /metrics.
	limit int

	fresh  []flowCount   // flows to name, of a read (its room kept)
	dumped time.Duration // how long the last read's dump took
	// conntrack is where active connections are read (nil: not read);
	// ctDumped how long the last dump took; ctRoom and ctCounts the last
	// dump's buffer and counts, kept for the next.
	conntrack conntrackDumper
	ctDumped  time.Duration
	ctRoom    []byte
	ctCounts  map[commitKey]uint32
	unread    []flowCount // removed flows never read, to name (under mu)

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
	// bal balances the least-connections groups after each report (nil:
	// none, in tests).
	bal  *balancer
	sent *prometheus.CounterVec

	polls    *prometheus.CounterVec
	duration prometheus.Gauge
	gauge    prometheus.Gauge // members counted
	desc     *prometheus.Desc // new connections
	packets  *prometheus.Desc
	bytes    *prometheus.Desc
	active   *prometheus.Desc
}

func newMemberStats(cfg pipeline.Config, limit int, resolver memberResolver, log *slog.Logger, reg prometheus.Registerer) *memberStats {
	s := &memberStats{cfg: cfg, resolver: resolver, log: log, limit: limit, ports: map[uint64]*portStats{}, full: true,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_stats_reports_total",
			Help: "Reports of the members' counters to the controller, by result (ok; refused: the controller took nothing, all are sent again; error: not delivered)."}, []string{"result"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_stats_reads_total",
			Help: "Reads of the members' counters from the switch, by result (ok, error)."}, []string{"result"}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_stats_read_seconds",
			Help: "How long the last read of the members' counters took."}),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_stats_members",
			Help: "Members counted on this host (one per group, VIP port and member)."}),
		desc: prometheus.NewDesc("dlb_agent_member_new_connections_total",
			"New connections this host sent to a member through a VIP port of a group (the packets of the member's commit flow; exported up to member_metrics_limit members).",
			[]string{"group", "port", "member"}, nil),
		packets: prometheus.NewDesc("dlb_agent_member_packets_total",
			"Packets of the connections this host sent to a member through a VIP port of a group, by direction: to_member, from_member (the member's counting flows; up to member_metrics_limit members).",
			[]string{"group", "port", "member", "direction"}, nil),
		bytes: prometheus.NewDesc("dlb_agent_member_bytes_total",
			"Bytes (Ethernet frames) of the connections this host sent to a member through a VIP port of a group, by direction: to_member, from_member (up to member_metrics_limit members).",
			[]string{"group", "port", "member", "direction"}, nil),
		active: prometheus.NewDesc("dlb_agent_member_active_connections",
			"Connections from this host to a member through a VIP port of a group that are open (conntrack entries not closed), as last read (up to member_metrics_limit members).",
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
func (s *memberStats) run(ctx context.Context, sw bridgeSwitch, interval time.Duration, ready <-chan struct{}) {
	select {
	case <-ctx.Done():
		return
	case <-ready:
	}
	wait := interval
	var ctDue time.Time // of the next conntrack dump
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
		if now := time.Now(); s.conntrack != nil && !now.Before(ctDue) {
			// Conntrack too, by its own dump's time.
			if err := s.readActive(ctx, s.conntrack); err != nil && ctx.Err() == nil {
				s.log.Debug("active connections not read", "err", err)
			}
			ctDue = now.Add(max(interval, min(readShare*s.ctDumped, maxPace)) - interval/2)
		}
		if s.report != nil {
			s.send(ctx, next)
		}
		if s.bal != nil {
			s.bal.recompute(time.Now(), s.ownLoads)
		}
		wait = next - time.Since(start)
	}
}

// read takes the members' flows' counters from the switch, at now.
func (s *memberStats) read(ctx context.Context, c statsSource, now time.Time) error {
	start := time.Now()
	changes := s.resolver.commitChanges()
	since, again := s.begin(now, changes)
	// The counts known are taken as the reply comes (no copy of 300,000
	// flows); the others are named after it.
	fresh := s.fresh[:0]
	dumpStart := time.Now()
	defer func() { s.dumped = time.Since(dumpStart) }()
	each := func(fc *ofctrl.FlowCounter) {
		f, ok := flowCountOf(fc)
		if !ok {
			return
		}
		s.mu.Lock()
		taken := s.take(&f, since, again)
		s.mu.Unlock()
		if !taken {
			fresh = append(fresh, f)
		}
	}
	err := c.EachFlowCounter(ctx, s.cfg.Table(pipeline.TableMember), pipeline.Cookie(pipeline.KindMember, 0, 0), pipeline.CookieKindMask, each)
	if err == nil {
		err = c.EachFlowCounter(ctx, s.cfg.Table(pipeline.TableCount), pipeline.CookieMagic, pipeline.CookieMagicMask, each)
	}
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

// flowCountOf reads a flow's counters as one of a member's flows: a commit
// flow names its member index in RegMember, a counting flow in the label
// it matches. ok is false for any other flow.
func flowCountOf(fc *ofctrl.FlowCounter) (flowCount, bool) {
	role, ok := roleOf(fc.Cookie)
	if !ok {
		return flowCount{}, false
	}
	var index uint16
	if role == pipeline.RoleCommit {
		i, ok := fc.Reg(pipeline.RegMember)
		if !ok || i > 0xffff {
			return flowCount{}, false
		}
		index = uint16(i)
	} else {
		v, _, ok := fc.Label()
		if !ok {
			return flowCount{}, false
		}
		if _, index, ok = pipeline.LabelMember(v); !ok {
			return flowCount{}, false
		}
	}
	return flowCount{key: commitKey{baseCookie(fc.Cookie), index}, role: role,
		tally: tally{fc.Packets, fc.Bytes}, duration: fc.Duration}, true
}

// observe folds one read of the members' flows, taken at now after the
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
//   - counters of members whose flows are all gone are dropped with them.
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
// removed ones no read saw, and drops the counts of members gone.
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

// removed takes a flow removed message: a member's flow the agent took
// out (its member left, drained, or its group went), with its final
// count. It runs on the switch connection's reader (which the reconciler
// waits on while it holds its lock), so it names nothing: a flow made and
// removed between two reads is named at the next read (nameRemoved).
func (s *memberStats) removed(fc *ofctrl.FlowCounter) {
	if f, ok := flowCountOf(fc); ok {
		s.final(f)
	}
}

// final takes a removed flow's final count.
func (s *memberStats) final(f flowCount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.find(f.key)
	if c == nil {
		// Made and removed between two reads: named at the next read
		// (while the member stays in its group).
		s.unread = append(s.unread, f)
		return
	}
	r := &c.raw[f.role]
	if r.gone {
		return
	}
	if f.packets >= r.packets && f.bytes >= r.bytes {
		c.total[f.role] = c.total[f.role].add(f.tally.sub(r.tally))
	}
	r.tally, r.gone = f.tally, true
}

// find returns the count of a member, nil when there is none.
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
		c := p.find(key.index)
		if c == nil || c.member() != ref.Member {
			// A member counted for the first time, or one that took
			// another's index: the flows read from now on are its own.
			p.put(memberCount{reborn: c != nil, index: key.index, addr: ref.Member.Addr().As16(), port: ref.Member.Port()})
			c = p.find(key.index)
			touched[p] = true
		}
		s.count(c, fc, since)
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
		if ref.Group == "" {
			continue // its member left its group
		}
		p := s.portOf(u.key, ref)
		c := p.find(u.key.index)
		if c == nil {
			p.put(memberCount{index: u.key.index, addr: ref.Member.Addr().As16(), port: ref.Member.Port()})
			c = p.find(u.key.index)
		}
		if c.member() != ref.Member || c.raw[u.role].seen != 0 {
			continue // read meanwhile
		}
		c.total[u.role] = c.total[u.role].add(u.tally)
		c.raw[u.role] = flowRaw{tally: u.tally, seen: s.reads, gone: true}
	}
}

// sweep drops the counts of members none of whose flows the last read saw,
// but for those the switch removed whose final counts the controller has
// not taken yet.
func (s *memberStats) sweep() {
	s.members = 0
	for cookie, p := range s.ports {
		p.members = slices.DeleteFunc(p.members, func(c memberCount) bool {
			return !c.seenIn(s.reads) && !(s.report != nil && c.unsent())
		})
		if len(p.members) == 0 {
			delete(s.ports, cookie)
		}
		s.members += len(p.members)
	}
	s.gauge.Set(float64(s.members))
}

// count adds what flow f gained since c last saw it.
func (s *memberStats) count(c *memberCount, f *flowCount, since time.Duration) {
	r := &c.raw[f.role]
	switch {
	case r.seen == 0 && c.reborn && f.duration >= since:
		// The flow counted for the member that had the index until now.
	case r.seen == 0 || r.gone || f.duration < since || f.packets < r.packets || f.bytes < r.bytes:
		// First seen; or removed since the last read, or made again
		// since (the switch restarted): all of its count is new.
		c.total[f.role] = c.total[f.role].add(f.tally)
	default:
		c.total[f.role] = c.total[f.role].add(f.tally.sub(r.tally))
	}
	*r = flowRaw{tally: f.tally, seen: s.reads}
}

// totals is each member's new connections, summed over its commit flows.
func (s *memberStats) totals() map[memberRef]uint64 {
	sums := map[memberRef]uint64{}
	for ref, c := range s.countsOf() {
		sums[ref] = c.New
	}
	return sums
}

// countsOf is each member's counters.
func (s *memberStats) countsOf() map[memberRef]counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	sums := make(map[memberRef]counts, s.members)
	for _, p := range s.ports {
		for i := range p.members {
			c := &p.members[i]
			ref := memberRef{p.group, p.port, c.member()}
			sum, n := sums[ref], c.counts()
			sums[ref] = counts{New: sum.New + n.New, To: sum.To.add(n.To), From: sum.From.add(n.From), Active: sum.Active + n.Active}
		}
	}
	return sums
}

// ownLoads are the host's own figures of the members of groups, summed
// over their VIP ports, for least connections.
func (s *memberStats) ownLoads(groups map[string]bool) map[lcKey]ownLoad {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[lcKey]ownLoad{}
	for _, p := range s.ports {
		if !groups[p.group] {
			continue
		}
		for i := range p.members {
			c := &p.members[i]
			total := c.total[pipeline.RoleCommit].packets
			k := lcKey{p.group, memberLabel(c.member())}
			o := out[k]
			o.active += float64(c.active)
			o.sinceRead += float64(total - min(c.newAtDump, total))
			o.total += float64(total)
			o.unsent += float64(total - min(c.sent[pipeline.RoleCommit].packets, total))
			out[k] = o
		}
	}
	return out
}

// Describe is the prometheus.Collector's.
func (s *memberStats) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.desc
	ch <- s.packets
	ch <- s.bytes
	ch <- s.active
}

// Collect is the prometheus.Collector's: series per (group, port, member),
// unless there are more than limit members (then none, and a warning
// once: a host with 10,000 groups of 10 members would export 600,000).
func (s *memberStats) Collect(ch chan<- prometheus.Metric) {
	sums := s.countsOf()
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
		g, p, m := ref.Group, ref.Port, memberLabel(ref.Member)
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(n.New), g, p, m)
		ch <- prometheus.MustNewConstMetric(s.active, prometheus.GaugeValue, float64(n.Active), g, p, m)
		for _, d := range []struct {
			dir string
			t   tally
		}{{"to_member", n.To}, {"from_member", n.From}} {
			ch <- prometheus.MustNewConstMetric(s.packets, prometheus.CounterValue, float64(d.t.packets), g, p, m, d.dir)
			ch <- prometheus.MustNewConstMetric(s.bytes, prometheus.CounterValue, float64(d.t.bytes), g, p, m, d.dir)
		}
	}
}

package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

// memberRef names what a member's counters are about: a group, one of its
// VIP ports ("tcp/80") and one of its members ("10.0.0.11", or
// "10.0.0.11:8080" for a member with a port of its own).
type memberRef struct {
	Group, Port, Member string
}

// refOf names member m of port p of group g.
func refOf(g *lb.Checked, p, m int) memberRef {
	ps := g.Ports[p]
	member := g.MemberAddr(m).String()
	if port := g.Members[m].Port; port != 0 {
		member = netip.AddrPortFrom(g.MemberAddr(m), uint16(port)).String()
	}
	return memberRef{Group: g.Name, Port: ps.Protocol + "/" + strconv.Itoa(ps.Port), Member: member}
}

// commitKey identifies a member's commit flow in DLB_MEMBER: its cookie
// (group and VIP port) and the member index it matches.
type commitKey struct {
	cookie uint64
	index  uint16
}

// memberCounter is one commit flow's count, kept as a counter: total
// only grows, across the flow's re-creation (the switch restarted) and
// changes of its actions (the member's MAC).
type memberCounter struct {
	ref   memberRef
	raw   uint64 // the flow's packet count when last read
	total uint64
	seen  uint64 // the read that last saw it
}

// statsSource is what the collector reads: the switch's commit flows.
type statsSource interface {
	DumpFlows(ctx context.Context, table uint8, cookie, mask uint64) ([]ofctrl.FlowStats, error)
}

// memberResolver names the members of commit flows as the reconciler last
// installed them (nil for a flow it did not make), and says how many
// changes it installed so far: a member index may stand for another
// member after a change.
type memberResolver interface {
	resolveCommits(keys []commitKey) []*memberRef
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

	mu       sync.Mutex
	counters map[commitKey]*memberCounter
	reads    uint64
	last     time.Time // of the last read
	changes  uint64    // the resolver's, at the last read
	warned   bool      // about the limit

	polls    *prometheus.CounterVec
	duration prometheus.Gauge
	members  prometheus.Gauge
	desc     *prometheus.Desc
}

func newMemberStats(table uint8, limit int, resolver memberResolver, log *slog.Logger, reg prometheus.Registerer) *memberStats {
	s := &memberStats{table: table, resolver: resolver, log: log, limit: limit, counters: map[commitKey]*memberCounter{},
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_stats_reads_total",
			Help: "Reads of the members' counters from the switch, by result (ok, error)."}, []string{"result"}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_stats_read_seconds",
			Help: "How long the last read of the members' counters took."}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_stats_members",
			Help: "Members' commit flows counted on this host (one per group, VIP port and active member)."}),
		desc: prometheus.NewDesc("dlb_agent_member_new_connections_total",
			"New connections this host sent to a member through a VIP port of a group (the packets of the member's commit flow; exported up to member_metrics_limit members).",
			[]string{"group", "port", "member"}, nil),
	}
	s.polls.WithLabelValues("ok")
	s.polls.WithLabelValues("error")
	reg.MustRegister(s.polls, s.duration, s.members, s)
	return s
}

// run reads the counters every interval while the switch is connected.
func (s *memberStats) run(ctx context.Context, sw bridgeSwitch, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c, err := sw.TryConn()
		if err != nil {
			continue
		}
		if err := s.read(ctx, c, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Debug("members' counters not read", "err", err)
		}
	}
}

// read takes the commit flows' counters from the switch, at now.
func (s *memberStats) read(ctx context.Context, c statsSource, now time.Time) error {
	start := time.Now()
	changes := s.resolver.commitChanges()
	flows, err := c.DumpFlows(ctx, s.table, pipeline.Cookie(pipeline.KindMember, 0, 0), pipeline.CookieKindMask)
	if err != nil {
		s.polls.WithLabelValues("error").Inc()
		return err
	}
	s.observe(flows, now, changes)
	s.polls.WithLabelValues("ok").Inc()
	s.duration.Set(time.Since(start).Seconds())
	return nil
}

// observe folds one read of the commit flows, taken at now after the
// resolver's changes-th change, into the counters:
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
func (s *memberStats) observe(flows []ofctrl.FlowStats, now time.Time, changes uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	since := now.Sub(s.last)
	again := changes != s.changes
	s.last, s.changes = now, changes
	var keys []commitKey
	var fresh []int // indexes in flows of the flows to name
	for i := range flows {
		index, ok := memberIndex(flows[i].Flow)
		if !ok {
			continue
		}
		key := commitKey{flows[i].Flow.Cookie, index}
		if c := s.counters[key]; c == nil || again {
			keys, fresh = append(keys, key), append(fresh, i)
			continue
		}
		s.count(s.counters[key], &flows[i], since)
	}
	if len(keys) > 0 {
		refs := s.resolver.resolveCommits(keys)
		for k, key := range keys {
			fs, ref := &flows[fresh[k]], refs[k]
			c := s.counters[key]
			switch {
			case ref == nil:
				continue // not the reconciler's (yet): next time
			case c == nil:
				c = &memberCounter{ref: *ref, total: fs.Packets}
			case c.ref == *ref:
				s.count(c, fs, since)
			case fs.Duration < since:
				c = &memberCounter{ref: *ref, total: fs.Packets}
			default:
				c = &memberCounter{ref: *ref}
			}
			c.raw, c.seen = fs.Packets, s.reads
			s.counters[key] = c
		}
	}
	for k, c := range s.counters {
		if c.seen != s.reads {
			delete(s.counters, k)
		}
	}
	s.members.Set(float64(len(s.counters)))
}

// count adds what flow fs gained since c last saw it.
func (s *memberStats) count(c *memberCounter, fs *ofctrl.FlowStats, since time.Duration) {
	if fs.Duration < since || fs.Packets < c.raw {
		c.total += fs.Packets // made again since the last read
	} else {
		c.total += fs.Packets - c.raw
	}
	c.raw, c.seen = fs.Packets, s.reads
}

// memberIndex is the member index a commit flow matches.
func memberIndex(f *ofctrl.Flow) (uint16, bool) {
	v, _, ok := f.Match.Value(ofctrl.Reg(pipeline.RegMember))
	if !ok || len(v) != 4 {
		return 0, false
	}
	return uint16(v[2])<<8 | uint16(v[3]), true
}

// totals is each member's count, summed over its commit flows.
func (s *memberStats) totals() map[memberRef]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sums := make(map[memberRef]uint64, len(s.counters))
	for _, c := range s.counters {
		sums[c.ref] += c.total
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
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(n), ref.Group, ref.Port, ref.Member)
	}
}

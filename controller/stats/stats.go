// Package stats keeps, in memory, the member statistics the hosts report
// (issue 17): per group, VIP port and member, each host's counters (new
// connections, packets and bytes each way) and active connections, their
// sums over the hosts, and five minutes of history for rates and charts. It is not the store of record: a restarted controller asks every
// host for all its counters again (wire.StatsAnswer.WantFull), and a
// host's counters go on from what its switch counted. It knows neither
// HTTP nor OpenFlow: the API checks a report before it comes here.
package stats

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
)

// staleAfter is how many of its intervals a host may stay silent before
// its counts are marked stale.
const staleAfter = 3

// History (for a chart of the last five minutes): a sample of a member's
// total at most every sampleEvery, historyLen of them.
const (
	sampleEvery = 2 * time.Second
	historyLen  = 160
)

// Stats is every host's reported counters. Safe for concurrent use.
type Stats struct {
	mu     sync.Mutex
	hosts  map[string]*host
	groups map[string]*group
}

// New returns empty statistics.
func New() *Stats {
	return &Stats{hosts: map[string]*host{}, groups: map[string]*group{}}
}

type host struct {
	interval time.Duration
	last     time.Time
}

type group struct {
	members map[memberKey]*member
}

type memberKey struct{ port, member string }

type member struct {
	hosts map[string]*count
	// cur is the totals as of the last report; history the totals at
	// most every sampleEvery (a ring, oldest at next once full).
	cur     sample
	history []sample
	next    int
}

// Counters, in a vec.
const (
	cNew = iota
	cPacketsTo
	cBytesTo
	cPacketsFrom
	cBytesFrom
	numCounters
)

// vec is a member's counters on a host, or summed.
type vec [numCounters]uint64

func vecOf(m *wire.MemberCount) vec {
	return vec{m.NewConnections, m.PacketsToMember, m.BytesToMember, m.PacketsFromMember, m.BytesFromMember}
}

// below reports whether any counter of v is below o's: counting started
// again.
func (v vec) below(o vec) bool {
	for i := range v {
		if v[i] < o[i] {
			return true
		}
	}
	return false
}

// count is one host's counts of a member: raw as last reported, total
// what they add up to across the host's restarts, at when it was last
// reported, rate the counters a second between the host's two last
// reports of it, and active its active connections then.
type count struct {
	raw, total vec
	at         time.Time
	rate       [numCounters]float64
	active     uint64
}

// sample is a member's totals at a time (unix milliseconds): its counters
// over every host and its active connections over the hosts not stale.
type sample struct {
	at     int64
	total  vec
	active uint64
}

// Report takes a host's report, checked by the caller, at now. It says
// whether the host should send all its counters next time: the
// statistics do not know the host (a restarted controller) and the report
// has only what changed.
func (s *Stats) Report(hostName string, r wire.StatsReport, now time.Time) (wantFull bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[hostName]
	if h == nil {
		h = &host{}
		s.hosts[hostName] = h
		wantFull = !r.Full
	}
	h.interval = time.Duration(r.IntervalS * float64(time.Second))
	h.last = now
	touched := map[*member]bool{}
	for i := range r.Members {
		m := &r.Members[i]
		g := s.groups[m.Group]
		if g == nil {
			g = &group{members: map[memberKey]*member{}}
			s.groups[m.Group] = g
		}
		k := memberKey{m.Port, m.Member}
		mem := g.members[k]
		if mem == nil {
			mem = &member{hosts: map[string]*count{}}
			g.members[k] = mem
		}
		v := vecOf(m)
		c := mem.hosts[hostName]
		switch {
		case c == nil:
			c = &count{total: v}
			mem.hosts[hostName] = c
		default:
			added := v
			if !v.below(c.raw) {
				for i := range added {
					added[i] -= c.raw[i]
				}
			} // else the host's agent and switch started again: its
			// counts start from 0, and all of them are new.
			dt := now.Sub(c.at).Seconds()
			for i := range added {
				c.total[i] += added[i]
				if dt > 0 {
					c.rate[i] = float64(added[i]) / dt
				}
			}
		}
		c.raw, c.at, c.active = v, now, m.ActiveConnections
		touched[mem] = true
	}
	for mem := range touched {
		mem.sample(s.hosts, now)
	}
	return wantFull
}

// sample records the member's totals at now, and keeps them in the
// history unless the history's last sample is more recent than
// sampleEvery.
func (m *member) sample(hosts map[string]*host, now time.Time) {
	cur := sample{at: now.UnixMilli()}
	for name, c := range m.hosts {
		for i := range cur.total {
			cur.total[i] += c.total[i]
		}
		if h := hosts[name]; h != nil && !h.stale(now) {
			cur.active += c.active
		}
	}
	m.cur = cur
	switch last := m.latest(); {
	case last != nil && cur.at-last.at < sampleEvery.Milliseconds():
	case len(m.history) < historyLen:
		m.history = append(m.history, cur)
	default:
		m.history[m.next] = cur
		m.next = (m.next + 1) % historyLen
	}
}

// latest is the history's newest sample, nil when there is none.
func (m *member) latest() *sample {
	switch {
	case len(m.history) == 0:
		return nil
	case len(m.history) < historyLen:
		return &m.history[len(m.history)-1]
	default:
		return &m.history[(m.next+historyLen-1)%historyLen]
	}
}

// samples is the history, oldest first.
func (m *member) samples() []sample {
	if len(m.history) < historyLen {
		return m.history
	}
	return append(slices.Clone(m.history[m.next:]), m.history[:m.next]...)
}

// rates are the member's counters a second: the sum of each host's rate
// between its last two reports of the member, for the hosts that reported
// it lately (a host reports a member whose counts changed, so one silent
// about it for two of its intervals had none; a stale one is not
// counted).
func (m *member) rates(hosts map[string]*host, now time.Time) (r [numCounters]float64) {
	for name, c := range m.hosts {
		h := hosts[name]
		if h == nil || h.stale(now) || now.Sub(c.at) > 2*max(h.interval, time.Second) {
			continue
		}
		for i := range r {
			r[i] += c.rate[i]
		}
	}
	return r
}

// stale says whether a host has not reported for staleAfter intervals.
func (h *host) stale(now time.Time) bool {
	return now.Sub(h.last) > staleAfter*max(h.interval, time.Second)
}

// MemberRef is a member of a group's VIP port, as the hosts name it.
type MemberRef struct{ Port, Member string }

// Group is the statistics of a group's members (each once, in the order
// given, those without reports at zero) at now; with history, each
// member's samples of the last five minutes.
func (s *Stats) Group(name string, members []MemberRef, now time.Time, history bool) wire.GroupStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := wire.GroupStats{Group: name, StaleHosts: []string{}, Members: make([]wire.MemberStats, 0, len(members))}
	g := s.groups[name]
	stale := map[string]bool{}
	for _, ref := range members {
		ms := wire.MemberStats{Port: ref.Port, Member: ref.Member, Hosts: []wire.MemberHostCounts{}}
		if g != nil {
			if m := g.members[memberKey{ref.Port, ref.Member}]; m != nil {
				r := m.rates(s.hosts, now)
				ms.NewPerSecond, ms.BytesToPerSecond, ms.BytesFromPerSecond = r[cNew], r[cBytesTo], r[cBytesFrom]
				for name, c := range m.hosts {
					h := s.hosts[name]
					hc := wire.MemberHostCounts{Host: name, Counts: countsOf(c.total, c.active), AgeS: now.Sub(c.at).Seconds(), Stale: h == nil || h.stale(now)}
					if hc.Stale {
						stale[name] = true
						hc.ActiveConnections = 0 // not known now
					}
					ms.Counts = ms.Counts.Add(hc.Counts)
					ms.Hosts = append(ms.Hosts, hc)
				}
				slices.SortFunc(ms.Hosts, func(a, b wire.MemberHostCounts) int { return strings.Compare(a.Host, b.Host) })
				if history {
					ms.History = []wire.StatsSample{}
					for _, x := range m.samples() {
						ms.History = append(ms.History, wire.StatsSample{At: float64(x.at) / 1000, Counts: countsOf(x.total, x.active)})
					}
				}
			}
		}
		out.Members = append(out.Members, ms)
	}
	for h := range stale {
		out.StaleHosts = append(out.StaleHosts, h)
	}
	slices.Sort(out.StaleHosts)
	return out
}

// countsOf is counters as the API shows them.
func countsOf(v vec, active uint64) wire.Counts {
	return wire.Counts{NewConnections: v[cNew], ActiveConnections: active,
		PacketsToMember: v[cPacketsTo], BytesToMember: v[cBytesTo], PacketsFromMember: v[cPacketsFrom], BytesFromMember: v[cBytesFrom]}
}

// Each calls fn with every member's counters over the hosts (active
// connections over the hosts not stale), with the statistics locked: fn
// must be quick. It returns how many hosts report and how many of them
// are stale.
func (s *Stats) Each(now time.Time, fn func(group, port, member string, c wire.Counts)) (hosts, stale int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, g := range s.groups {
		for k, m := range g.members {
			var sum wire.Counts
			for hn, c := range m.hosts {
				hc := countsOf(c.total, c.active)
				if h := s.hosts[hn]; h == nil || h.stale(now) {
					hc.ActiveConnections = 0
				}
				sum = sum.Add(hc)
			}
			fn(name, k.port, k.member, sum)
		}
	}
	for _, h := range s.hosts {
		if h.stale(now) {
			stale++
		}
	}
	return len(s.hosts), stale
}

// Members is how many members the statistics hold.
func (s *Stats) Members() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.groups {
		n += len(g.members)
	}
	return n
}

// Keep drops what the statistics hold of a group's members that keep
// does not name (members gone from the group), and of the group when it
// names none.
func (s *Stats) Keep(group string, keep []MemberRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[group]
	if g == nil {
		return
	}
	want := make(map[memberKey]bool, len(keep))
	for _, r := range keep {
		want[memberKey{r.Port, r.Member}] = true
	}
	for k := range g.members {
		if !want[k] {
			delete(g.members, k)
		}
	}
	if len(g.members) == 0 {
		delete(s.groups, group)
	}
}

// ForgetHost drops a host (deleted): its counts leave every member.
func (s *Stats) ForgetHost(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hosts, name)
	for _, g := range s.groups {
		for _, m := range g.members {
			delete(m.hosts, name)
		}
	}
}

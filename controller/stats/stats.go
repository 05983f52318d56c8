// Package stats keeps, in memory, the member statistics the hosts report
// (issue 17): per group, VIP port and member, each host's count of new
// connections, their sum over the hosts, and five minutes of history for
// rates. It is not the store of record: a restarted controller asks every
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
	// cur is the total as of the last report; history the totals at most
	// every sampleEvery (a ring, oldest at next once full).
	cur     sample
	history []sample
	next    int
}

// count is one host's count of a member: raw as last reported, total
// what it adds up to across the host's restarts, at when it was last
// reported, and rate the new connections a second between the host's two
// last reports of it.
type count struct {
	raw, total uint64
	at         time.Time
	rate       float64
}

type sample struct {
	at    time.Time
	total uint64
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
	for _, m := range r.Members {
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
		c := mem.hosts[hostName]
		switch {
		case c == nil:
			c = &count{total: m.NewConnections}
			mem.hosts[hostName] = c
		default:
			added := m.NewConnections - c.raw
			if m.NewConnections < c.raw {
				// The host's agent and switch started again: its count
				// starts from 0, and all of it is new.
				added = m.NewConnections
			}
			c.total += added
			if dt := now.Sub(c.at); dt > 0 {
				c.rate = float64(added) / dt.Seconds()
			}
		}
		c.raw, c.at = m.NewConnections, now
		touched[mem] = true
	}
	for mem := range touched {
		mem.sample(now)
	}
	return wantFull
}

// sample records the member's total at now, and keeps it in the history
// unless the history's last sample is more recent than sampleEvery.
func (m *member) sample(now time.Time) {
	var total uint64
	for _, c := range m.hosts {
		total += c.total
	}
	m.cur = sample{now, total}
	switch last := m.latest(); {
	case last != nil && now.Sub(last.at) < sampleEvery:
	case len(m.history) < historyLen:
		m.history = append(m.history, m.cur)
	default:
		m.history[m.next] = m.cur
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

// rate is the member's new connections a second: the sum of each host's
// rate between its last two reports of the member, for the hosts that
// reported it lately (a host reports a member whose count changed, so one
// silent about it for two of its intervals had none; a stale one is not
// counted).
func (m *member) rate(hosts map[string]*host, now time.Time) float64 {
	var r float64
	for name, c := range m.hosts {
		h := hosts[name]
		if h == nil || h.stale(now) || now.Sub(c.at) > 2*max(h.interval, time.Second) {
			continue
		}
		r += c.rate
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
// given, those without reports at zero) at now.
func (s *Stats) Group(name string, members []MemberRef, now time.Time) wire.GroupStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := wire.GroupStats{Group: name, StaleHosts: []string{}, Members: make([]wire.MemberStats, 0, len(members))}
	g := s.groups[name]
	stale := map[string]bool{}
	for _, ref := range members {
		ms := wire.MemberStats{Port: ref.Port, Member: ref.Member, Hosts: []wire.MemberHostCounts{}}
		if g != nil {
			if m := g.members[memberKey{ref.Port, ref.Member}]; m != nil {
				ms.NewPerSecond = m.rate(s.hosts, now)
				for name, c := range m.hosts {
					h := s.hosts[name]
					hc := wire.MemberHostCounts{Host: name, NewConnections: c.total, AgeS: now.Sub(c.at).Seconds(), Stale: h == nil || h.stale(now)}
					if hc.Stale {
						stale[name] = true
					}
					ms.NewConnections += c.total
					ms.Hosts = append(ms.Hosts, hc)
				}
				slices.SortFunc(ms.Hosts, func(a, b wire.MemberHostCounts) int { return strings.Compare(a.Host, b.Host) })
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

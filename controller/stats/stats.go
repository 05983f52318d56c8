// Package stats keeps, in memory, the member statistics the hosts report
// (issue 17): per group, VIP port and member, each host's counters (new
// connections, packets and bytes each way) and active connections, their
// sums over the hosts, and five minutes of history for rates and charts. It is not the store of record: a restarted controller asks every
// host for all its counters again (wire.StatsAnswer.WantFull), and a
// host's counters go on from what its switch counted. It knows neither
// HTTP nor OpenFlow: the API checks a report before it comes here.
package stats

import (
	"cmp"
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
//
// A report from each of 100 hosts of 10,000 members each is a million
// host counts: each member keeps its hosts' counts in a slice sorted by
// host id (112 bytes each) and its sums over them, kept as the
// reports come, so that a report costs O(its entries).
type Stats struct {
	mu      sync.Mutex
	hosts   []*host // by id
	hostIDs map[string]uint32
	groups  map[string]*group
	// Loads (loads.go): seq numbers the changes of the members' live
	// active connections and new connections, from start (this process's
	// start, in unix nanoseconds: a restarted controller's seqs are all
	// above an earlier one's, so a host asking from an old seq gets
	// everything); everyChanged is the last seq at which every group's
	// loads changed (a host went stale or came back).
	start, seq, everyChanged uint64
}

// New returns empty statistics.
func New() *Stats {
	start := uint64(time.Now().UnixNano())
	return &Stats{hostIDs: map[string]uint32{}, groups: map[string]*group{}, start: start, seq: start, everyChanged: start}
}

type host struct {
	name     string
	interval time.Duration
	last     time.Time
	gone     bool // forgotten (its id is not reused)
	// dropped: its active connections are out of the members' live sums,
	// it went stale (loads.go).
	dropped bool
	// balancedAt is the host's last recomputation of its
	// least-connections shares (unix milliseconds; 0: none).
	balancedAt int64
}

type group struct {
	members map[memberKey]*member
	// changed is the seq of the last change of its members' loads.
	changed uint64
	// shares are the hosts' shares of a least-connections group, by host
	// id.
	shares map[uint32]*hostShares
}

type memberKey struct{ port, member string }

type member struct {
	hosts []hostCount // by host id
	// sum is the hosts' totals, active the hosts' active connections
	// (stale ones included: Group and Each leave those out), live those
	// of the hosts not stale (as last marked, loads.go).
	sum          vec
	active, live int64
	// history is the sums at most every sampleEvery (a ring, oldest at
	// next once full).
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

// hostCount is one host's counts of a member: raw as last reported,
// total what they add up to across the host's restarts, at when it was
// last reported (unix milliseconds), rate the new connections and bytes
// each way a second between the host's two last reports of it, and
// active its active connections then.
type hostCount struct {
	host       uint32
	active     uint32
	at         int64
	raw, total vec
	rate       [3]float32 // new, bytes to, bytes from
}

// find returns the member's count of host id, nil when there is none.
func (m *member) find(id uint32) *hostCount {
	i, ok := slices.BinarySearchFunc(m.hosts, id, func(c hostCount, id uint32) int { return cmp.Compare(c.host, id) })
	if !ok {
		return nil
	}
	return &m.hosts[i]
}

// add makes the member's count of host id.
func (m *member) add(id uint32) *hostCount {
	i, _ := slices.BinarySearchFunc(m.hosts, id, func(c hostCount, id uint32) int { return cmp.Compare(c.host, id) })
	m.hosts = slices.Insert(m.hosts, i, hostCount{host: id})
	return &m.hosts[i]
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
// has only what changed. A report names each member once.
func (s *Stats) Report(hostName string, r wire.StatsReport, now time.Time) (wantFull bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.hostIDs[hostName]
	if !ok {
		id = uint32(len(s.hosts))
		s.hosts = append(s.hosts, &host{name: hostName})
		s.hostIDs[hostName] = id
		wantFull = !r.Full
	}
	h := s.hosts[id]
	h.interval = time.Duration(r.IntervalS * float64(time.Second))
	h.last = now
	if h.dropped {
		s.revive(id)
	}
	ms := now.UnixMilli()
	if r.BalancedAt > 0 {
		h.balancedAt = int64(r.BalancedAt * 1000)
	}
	changed := false
	var g *group
	for i := range r.Members {
		m := &r.Members[i]
		if g == nil || i == 0 || m.Group != r.Members[i-1].Group {
			if g = s.groups[m.Group]; g == nil {
				g = &group{members: map[memberKey]*member{}}
				s.groups[m.Group] = g
			}
		}
		k := memberKey{m.Port, m.Member}
		mem := g.members[k]
		if mem == nil {
			mem = &member{}
			g.members[k] = mem
		}
		v := vecOf(m)
		c := mem.find(id)
		var added vec
		switch {
		case c == nil:
			c = mem.add(id)
			added = v
		case v.below(c.raw):
			// The host's agent and switch started again: its counts
			// start from 0, and all of them are new.
			added = v
		default:
			for i := range added {
				added[i] = v[i] - c.raw[i]
			}
		}
		if c.at != 0 {
			if dt := float64(ms-c.at) / 1000; dt > 0 {
				c.rate = [3]float32{float32(float64(added[cNew]) / dt), float32(float64(added[cBytesTo]) / dt), float32(float64(added[cBytesFrom]) / dt)}
			}
		}
		for i := range added {
			c.total[i] += added[i]
			mem.sum[i] += added[i]
		}
		active := uint32(min(m.ActiveConnections, 1<<32-1))
		if d := int64(active) - int64(c.active); d != 0 || added[cNew] != 0 {
			mem.active += d
			mem.live += d
			if !changed {
				changed = true
				s.seq++
			}
			g.changed = s.seq
		}
		c.raw, c.at, c.active = v, ms, active
		mem.sample(ms)
	}
	s.balancing(id, r.Balancing)
	return wantFull
}

// sample records the member's sums at now (unix milliseconds) in its
// history, unless the history's last sample is more recent than
// sampleEvery.
func (m *member) sample(now int64) {
	cur := sample{at: now, total: m.sum, active: uint64(max(m.active, 0))}
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

// rates are the member's new connections and bytes each way a second:
// the sum of each host's rate between its last two reports of the member,
// for the hosts that reported it lately (a host reports a member whose
// counts changed, so one silent about it for two of its intervals had
// none; a stale one is not counted).
func (s *Stats) rates(m *member, now time.Time) (r [3]float64) {
	for i := range m.hosts {
		c := &m.hosts[i]
		h := s.hosts[c.host]
		if h.stale(now) || now.Sub(time.UnixMilli(c.at)) > 2*max(h.interval, time.Second) {
			continue
		}
		for k := range r {
			r[k] += float64(c.rate[k])
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
// member's samples of the last five minutes (their active connections
// count stale hosts' too).
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
				r := s.rates(m, now)
				ms.NewPerSecond, ms.BytesToPerSecond, ms.BytesFromPerSecond = r[0], r[1], r[2]
				for i := range m.hosts {
					c := &m.hosts[i]
					h := s.hosts[c.host]
					hc := wire.MemberHostCounts{Host: h.name, Counts: countsOf(c.total, uint64(c.active)), AgeS: now.Sub(time.UnixMilli(c.at)).Seconds(), Stale: h.stale(now)}
					if hc.Stale {
						stale[h.name] = true
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
	staleHost := make([]bool, len(s.hosts))
	for id, h := range s.hosts {
		if h.gone {
			continue
		}
		hosts++
		if staleHost[id] = h.stale(now); staleHost[id] {
			stale++
		}
	}
	for name, g := range s.groups {
		for k, m := range g.members {
			var active uint64
			for i := range m.hosts {
				if !staleHost[m.hosts[i].host] {
					active += uint64(m.hosts[i].active)
				}
			}
			fn(name, k.port, k.member, countsOf(m.sum, active))
		}
	}
	return hosts, stale
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
	id, ok := s.hostIDs[name]
	if !ok {
		return
	}
	delete(s.hostIDs, name)
	s.hosts[id].gone = true
	s.seq++
	s.everyChanged = s.seq
	for _, g := range s.groups {
		delete(g.shares, id)
		for _, m := range g.members {
			c := m.find(id)
			if c == nil {
				continue
			}
			for i := range m.sum {
				m.sum[i] -= c.total[i]
			}
			m.active -= int64(c.active)
			if !s.hosts[id].dropped {
				m.live -= int64(c.active)
			}
			m.hosts = slices.DeleteFunc(m.hosts, func(c hostCount) bool { return c.host == id })
		}
	}
}

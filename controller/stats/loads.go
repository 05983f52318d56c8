package stats

import (
	"slices"
	"strings"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Loads are what least-connections groups with a global view balance by
// (issue 18): each member's active connections over the hosts not stale
// and its new connections over every host, summed over the group's VIP
// ports. Every host asks for them in each of its reports, from the seq of
// the last answer it took, and gets the groups whose loads changed since.
//
// The sums over the live hosts are kept as reports come (member.live);
// a host that goes stale leaves them when a host next asks for loads,
// and comes back with its next report.

// hostShares is a host's shares of a least-connections group.
type hostShares struct {
	view    string
	members []wire.MemberSlots
}

// LoadGroup is a least-connections group whose loads a host may be sent
// (its members' labels are made only for a group the answer carries).
type LoadGroup = *lb.Group

// Loads answers a host's ask for the loads changed since seq since (0:
// all) of groups (each member once, those without counts at zero), at
// now: the seq to ask from next, whether the answer
// holds every group (the host drops what it has of others) and the
// groups' loads.
func (s *Stats) Loads(since uint64, groups []LoadGroup, now time.Time) (seq uint64, full bool, loads []wire.GroupLoad) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markStale(now)
	full = since < s.start || since > s.seq
	for _, lg := range groups {
		g := s.groups[lg.Name]
		if !full && since >= s.everyChanged && (g == nil || g.changed <= since) {
			continue
		}
		labels := lg.MemberLabels()
		gl := wire.GroupLoad{Group: lg.Name, Members: make([]wire.MemberLoad, len(labels))}
		for i, label := range labels {
			gl.Members[i].Member = label
		}
		if g != nil {
			for k, m := range g.members {
				i := slices.Index(labels, k.member)
				if i < 0 {
					continue
				}
				gl.Members[i].ActiveConnections += uint64(max(m.live, 0))
				gl.Members[i].NewConnections += m.sum[cNew]
			}
		}
		loads = append(loads, gl)
	}
	return s.seq, full, loads
}

// markStale takes the hosts that went stale out of the live sums (under
// mu).
func (s *Stats) markStale(now time.Time) {
	for id, h := range s.hosts {
		if h.gone || h.dropped || !h.stale(now) {
			continue
		}
		h.dropped = true
		s.eachCount(uint32(id), func(m *member, c *hostCount) { m.live -= int64(c.active) })
	}
}

// revive puts a host that was stale back into the live sums (under mu).
func (s *Stats) revive(id uint32) {
	s.hosts[id].dropped = false
	s.eachCount(id, func(m *member, c *hostCount) { m.live += int64(c.active) })
}

// eachCount calls fn with every member's count of host id, and marks every
// group's loads changed (under mu).
func (s *Stats) eachCount(id uint32, fn func(m *member, c *hostCount)) {
	s.seq++
	s.everyChanged = s.seq
	for _, g := range s.groups {
		for _, m := range g.members {
			if c := m.find(id); c != nil {
				fn(m, c)
			}
		}
	}
}

// balancing takes a host's report of its shares (under mu).
func (s *Stats) balancing(id uint32, bs []wire.HostBalancing) {
	for _, b := range bs {
		g := s.groups[b.Group]
		if g == nil {
			g = &group{members: map[memberKey]*member{}}
			s.groups[b.Group] = g
		}
		if g.shares == nil {
			g.shares = map[uint32]*hostShares{}
		}
		g.shares[id] = &hostShares{view: b.View, members: slices.Clone(b.Members)}
	}
}

// Shares is each host's shares of a least-connections group whose members
// are labels (each once, in that order; a member a host did not report
// has no slot), by host name, at now.
func (s *Stats) Shares(name string, labels []string, now time.Time) []wire.HostShares {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[name]
	if g == nil {
		return nil
	}
	out := make([]wire.HostShares, 0, len(g.shares))
	for id, hs := range g.shares {
		h := s.hosts[id]
		if h.gone {
			continue
		}
		e := wire.HostShares{Host: h.name, View: hs.view, Stale: h.stale(now), Members: make([]wire.MemberShare, len(labels))}
		if h.balancedAt > 0 {
			at := time.UnixMilli(h.balancedAt).UTC()
			e.RecomputedAt = &at
		}
		for i, l := range labels {
			e.Members[i].Member = l
		}
		for _, ms := range hs.members {
			if i := slices.Index(labels, ms.Member); i >= 0 {
				e.Members[i].Slots = ms.Slots
				e.Members[i].Share = float64(ms.Slots) / 256
			}
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b wire.HostShares) int { return strings.Compare(a.Host, b.Host) })
	return out
}

// LoadStatus sums up how the hosts balance a least-connections group, at
// now; nil when no host reported shares of it.
func (s *Stats) LoadStatus(name string, now time.Time) *wire.LoadStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[name]
	if g == nil || len(g.shares) == 0 {
		return nil
	}
	st := &wire.LoadStatus{}
	var last int64
	for id, hs := range g.shares {
		h := s.hosts[id]
		if h.gone {
			continue
		}
		st.Hosts++
		switch {
		case h.stale(now):
			st.Stale++
		case hs.view == wire.ViewGlobal:
			st.Global++
		case hs.view == wire.ViewLocal:
			st.Local++
		default:
			st.Weights++
		}
		last = max(last, h.balancedAt)
	}
	if last > 0 {
		at := time.UnixMilli(last).UTC()
		st.LastRecomputed = &at
	}
	return st
}

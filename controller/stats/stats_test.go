package stats

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
)

func report(full bool, counts ...wire.MemberCount) wire.StatsReport {
	return wire.StatsReport{Full: full, IntervalS: 1, Members: counts}
}

func web(member string, n uint64) wire.MemberCount {
	return wire.MemberCount{Group: "web", Port: "tcp/80", Member: member, NewConnections: n}
}

var members = []MemberRef{{"tcp/80", "10.0.0.11"}, {"tcp/80", "10.0.0.12"}}

// TestTotalsAcrossRestarts: each host's count adds up across its restarts
// (a count below the last one starts again from 0), the totals sum the
// hosts, a report of what changed leaves the rest, and the statistics ask
// a host they do not know for everything.
func TestTotalsAcrossRestarts(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		host     string
		report   wire.StatsReport
		wantFull bool
		want     map[string]uint64 // member → total over hosts
	}{
		{"h1 starts, everything", "h1", report(true, web("10.0.0.11", 5), web("10.0.0.12", 3)), false, map[string]uint64{"10.0.0.11": 5, "10.0.0.12": 3}},
		{"h1 goes on, what changed", "h1", report(false, web("10.0.0.11", 9)), false, map[string]uint64{"10.0.0.11": 9, "10.0.0.12": 3}},
		{"h2, unknown, what changed: counted, and asked for everything", "h2", report(false, web("10.0.0.12", 4)), true, map[string]uint64{"10.0.0.11": 9, "10.0.0.12": 7}},
		{"h2, everything", "h2", report(true, web("10.0.0.11", 1), web("10.0.0.12", 4)), false, map[string]uint64{"10.0.0.11": 10, "10.0.0.12": 7}},
		{"h1's agent and switch restarted: its counts start again", "h1", report(true, web("10.0.0.11", 2), web("10.0.0.12", 0)), false, map[string]uint64{"10.0.0.11": 12, "10.0.0.12": 7}},
		{"h1 again: no double count", "h1", report(false, web("10.0.0.11", 2)), false, map[string]uint64{"10.0.0.11": 12, "10.0.0.12": 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sharedStats
			assert.Equal(t, tc.wantFull, s.Report(tc.host, tc.report, t0), "want full")
			got := map[string]uint64{}
			for _, m := range s.Group("web", members, t0, false).Members {
				got[m.Member] = m.NewConnections
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

var sharedStats = New()

// TestRatesAndStaleHosts: rates follow the totals over about 10 s; a host
// silent for three of its intervals is marked stale, its counts still in
// the totals; a deleted host's counts leave; members gone are dropped.
func TestRatesAndStaleHosts(t *testing.T) {
	s := New()
	t0 := time.Unix(1000, 0)
	for i := 0; i <= 20; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		s.Report("h1", report(i == 0, web("10.0.0.11", uint64(10*i))), now)
		if i < 5 {
			s.Report("h2", report(i == 0, web("10.0.0.11", uint64(100+2*i))), now)
		}
	}
	now := t0.Add(20 * time.Second)
	g := s.Group("web", members, now, false)
	require.Len(t, g.Members, 2)
	m := g.Members[0]
	assert.Equal(t, uint64(200+108), m.NewConnections)
	assert.InDelta(t, 10, m.NewPerSecond, 0.01, "h1 adds 10 a second; h2 stopped")
	assert.Equal(t, []string{"h2"}, g.StaleHosts)
	require.Len(t, m.Hosts, 2)
	assert.False(t, m.Hosts[0].Stale)
	assert.True(t, m.Hosts[1].Stale)
	assert.InDelta(t, 16, m.Hosts[1].AgeS, 0.01)
	assert.Equal(t, wire.MemberStats{Port: "tcp/80", Member: "10.0.0.12", Hosts: []wire.MemberHostCounts{}}, g.Members[1], "no report: zeros")

	// h1 goes on reporting, but only 10.0.0.12: 10.0.0.11 had nothing new.
	for i := 21; i <= 25; i++ {
		s.Report("h1", report(false, web("10.0.0.12", uint64(i))), t0.Add(time.Duration(i)*time.Second))
	}
	later := s.Group("web", members, t0.Add(25*time.Second), false)
	assert.Zero(t, later.Members[0].NewPerSecond, "quiet for more than two intervals: no rate")
	assert.Equal(t, []string{"h2"}, later.StaleHosts)

	s.ForgetHost("h2")
	g = s.Group("web", members, now, false)
	assert.Equal(t, uint64(200), g.Members[0].NewConnections)
	assert.Empty(t, g.StaleHosts)

	s.Keep("web", members[1:])
	assert.Zero(t, s.Group("web", members, now, false).Members[0].NewConnections, "10.0.0.11 left the group")
	assert.InDelta(t, 0, s.Group("web", members, now.Add(time.Minute), false).Members[0].NewPerSecond, 0, "no recent report: no rate")
}

// TestHistoryIsBounded: five minutes of reports a second keep at most
// historyLen samples a member.
func TestHistoryIsBounded(t *testing.T) {
	s := New()
	t0 := time.Unix(1000, 0)
	for i := 0; i < 600; i++ {
		s.Report("h1", report(i == 0, web("10.0.0.11", uint64(i))), t0.Add(time.Duration(i)*time.Second))
	}
	m := s.groups["web"].members[memberKey{"tcp/80", "10.0.0.11"}]
	assert.Len(t, m.history, historyLen)
	assert.InDelta(t, 1, s.rates(m, t0.Add(599*time.Second))[0], 0.01)
	h := s.Group("web", members[:1], t0.Add(599*time.Second), true).Members[0].History
	require.Len(t, h, historyLen)
	assert.Equal(t, float64(1000+600-2*historyLen), h[0].At, "the oldest first: five minutes and a bit ago")
	assert.Equal(t, uint64(599-2*historyLen+1), h[0].NewConnections)
	assert.Equal(t, uint64(598), h[historyLen-1].NewConnections, "a sample every 2 s")
}

// TestBytesAndActive: packets and bytes add up over hosts and restarts
// like new connections, with their rates; active connections are each
// host's last figure, summed over the hosts not stale (shown as 0 for a
// stale one).
func TestBytesAndActive(t *testing.T) {
	s := New()
	t0 := time.Unix(1000, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	c := func(n, active, bytes uint64) wire.MemberCount {
		m := web("10.0.0.11", n)
		m.ActiveConnections, m.PacketsToMember, m.BytesToMember, m.PacketsFromMember, m.BytesFromMember = active, n*10, bytes, n*8, 2*bytes
		return m
	}
	s.Report("h1", report(true, c(10, 4, 1000)), at(0))
	s.Report("h2", report(true, c(5, 2, 500)), at(0))
	s.Report("h1", report(false, c(20, 6, 3000)), at(1))
	s.Report("h2", report(false, c(7, 1, 800)), at(1))
	m := s.Group("web", members[:1], at(1), false).Members[0]
	assert.Equal(t, wire.Counts{NewConnections: 27, ActiveConnections: 7, PacketsToMember: 270, BytesToMember: 3800, PacketsFromMember: 216, BytesFromMember: 7600}, m.Counts)
	assert.InDelta(t, 12, m.NewPerSecond, 0.01)
	assert.InDelta(t, 2300, m.BytesToPerSecond, 0.01)
	assert.InDelta(t, 4600, m.BytesFromPerSecond, 0.01)
	// h2 restarted: its counts start again.
	s.Report("h2", report(true, c(1, 1, 100)), at(2))
	assert.Equal(t, uint64(3900), s.Group("web", members[:1], at(2), false).Members[0].BytesToMember)
	// h2 silent: stale, its active connections not summed.
	s.Report("h1", report(false, c(21, 6, 3100)), at(6))
	m = s.Group("web", members[:1], at(6), false).Members[0]
	assert.Equal(t, uint64(6), m.ActiveConnections)
	require.Len(t, m.Hosts, 2)
	assert.True(t, m.Hosts[1].Stale)
	assert.Zero(t, m.Hosts[1].ActiveConnections)
	assert.Equal(t, uint64(4000), m.BytesToMember, "a stale host's counts happened: in the totals")
}

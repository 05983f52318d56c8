package stats

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

func active(port, member string, n, a uint64) wire.MemberCount {
	return wire.MemberCount{Group: "web", Port: port, Member: member, NewConnections: n, ActiveConnections: a}
}

// TestLoads: the loads sum a member over the group's ports and the live
// hosts; a host asking from its last seq gets only the groups that
// changed; a stale host leaves the active sums and comes back with its
// next report; an old or future seq gets everything.
func TestLoads(t *testing.T) {
	s := New()
	t0 := time.Unix(1000, 0)
	web := []LoadGroup{{Name: "web", Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12"}, {IP: "10.0.0.13"}}}, {Name: "idle", Members: []lb.Member{{IP: "10.0.1.1"}}}}
	s.Report("h1", report(true, active("tcp/80", "10.0.0.11", 10, 4), active("udp/53", "10.0.0.11", 5, 1), active("tcp/80", "10.0.0.12", 3, 3)), t0)
	s.Report("h2", report(true, active("tcp/80", "10.0.0.11", 2, 2)), t0)

	seq, full, loads := s.Loads(0, web, t0)
	assert.True(t, full)
	require.Len(t, loads, 2)
	assert.Equal(t, wire.GroupLoad{Group: "web", Members: []wire.MemberLoad{{Member: "10.0.0.11", ActiveConnections: 7, NewConnections: 17}, {Member: "10.0.0.12", ActiveConnections: 3, NewConnections: 3}, {Member: "10.0.0.13", ActiveConnections: 0, NewConnections: 0}}}, loads[0])
	assert.Equal(t, wire.GroupLoad{Group: "idle", Members: []wire.MemberLoad{{Member: "10.0.1.1", ActiveConnections: 0, NewConnections: 0}}}, loads[1], "a group without counts: zeros")

	again, full, loads := s.Loads(seq, web, t0)
	assert.False(t, full)
	assert.Empty(t, loads, "nothing changed")
	assert.Equal(t, seq, again)

	// A report that changes nothing changes no load.
	s.Report("h2", report(false), t0.Add(time.Second))
	_, _, loads = s.Loads(seq, web, t0.Add(time.Second))
	assert.Empty(t, loads)
	s.Report("h2", report(false, active("tcp/80", "10.0.0.11", 2, 0)), t0.Add(time.Second))
	seq2, _, loads := s.Loads(seq, web, t0.Add(time.Second))
	require.Len(t, loads, 1)
	assert.Equal(t, uint64(5), loads[0].Members[0].ActiveConnections)
	assert.Greater(t, seq2, seq)

	// h1 goes stale (silent three intervals): out of the active sums.
	s.Report("h2", report(false, active("tcp/80", "10.0.0.11", 3, 1)), t0.Add(4*time.Second))
	seq3, _, loads := s.Loads(seq2, web, t0.Add(4*time.Second))
	require.Len(t, loads, 2, "every group changes when a host goes stale")
	assert.Equal(t, []wire.MemberLoad{{Member: "10.0.0.11", ActiveConnections: 1, NewConnections: 18}, {Member: "10.0.0.12", ActiveConnections: 0, NewConnections: 3}, {Member: "10.0.0.13", ActiveConnections: 0, NewConnections: 0}}, loads[0].Members,
		"a stale host's connections are not active ones; its new connections stay counted")
	// It comes back.
	s.Report("h1", report(false), t0.Add(5*time.Second))
	_, _, loads = s.Loads(seq3, web, t0.Add(5*time.Second))
	require.NotEmpty(t, loads)
	assert.Equal(t, uint64(6), loads[0].Members[0].ActiveConnections)

	for _, since := range []uint64{1, seq3 + 1_000_000} {
		_, full, loads = s.Loads(since, web, t0.Add(5*time.Second))
		assert.True(t, full, "since %d: from another controller: everything", since)
		assert.Len(t, loads, 2)
	}
	// Forgetting a host takes it out of everything.
	s.ForgetHost("h1")
	_, _, loads = s.Loads(0, web, t0.Add(5*time.Second))
	assert.Equal(t, uint64(1), loads[0].Members[0].ActiveConnections)
}

// TestShares: each host's last reported shares of a group, and their sum-up.
func TestShares(t *testing.T) {
	s := New()
	t0 := time.Unix(1000, 0)
	r := report(true)
	r.BalancedAt = 999.5
	r.Balancing = []wire.HostBalancing{{Group: "web", View: wire.ViewGlobal, Members: []wire.MemberSlots{{Member: "10.0.0.12", Slots: 200}, {Member: "10.0.0.11", Slots: 56}}}}
	s.Report("h2", r, t0)
	r.Balancing = []wire.HostBalancing{{Group: "web", View: wire.ViewWeights, Members: []wire.MemberSlots{{Member: "10.0.0.11", Slots: 128}, {Member: "10.0.0.12", Slots: 128}}}}
	s.Report("h1", r, t0)
	r = report(false)
	r.BalancedAt = 1000.5
	s.Report("h1", r, t0)

	sh := s.Shares("web", []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}, t0)
	require.Len(t, sh, 2)
	assert.Equal(t, "h1", sh[0].Host)
	assert.Equal(t, wire.ViewWeights, sh[0].View, "shares not reported again stay")
	assert.Equal(t, time.Unix(1000, 500e6).UTC(), *sh[0].RecomputedAt)
	assert.Equal(t, []wire.MemberShare{{Member: "10.0.0.11", Slots: 56, Share: 56.0 / 256}, {Member: "10.0.0.12", Slots: 200, Share: 200.0 / 256}, {Member: "10.0.0.13", Slots: 0, Share: 0}}, sh[1].Members)

	st := s.LoadStatus("web", t0)
	assert.Equal(t, &wire.LoadStatus{Hosts: 2, Global: 1, Weights: 1, LastRecomputed: sh[0].RecomputedAt}, st)
	st = s.LoadStatus("web", t0.Add(10*time.Second))
	assert.Equal(t, 2, st.Stale)
	assert.Nil(t, s.LoadStatus("other", t0))
}

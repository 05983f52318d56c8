package client

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

func grp(name, vip string, members ...string) lb.Group {
	g := lb.Group{Name: name, VIP: vip, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}}
	for _, m := range members {
		g.Members = append(g.Members, lb.Member{IP: m})
	}
	return g
}

func wg(g lb.Group) wire.Group { return wire.Group{Group: g} }

// TestFollowerKeepsTheSet: a full answer replaces the set, changes and
// deletions are merged into it, an empty answer only moves the index, a
// set the agent cannot use is refused and changes nothing, and a resumed
// follower delivers its checkpoint when the controller confirms it.
func TestFollowerKeepsTheSet(t *testing.T) {
	var got [][]string
	var idx []uint64
	f := &Follower{Deliver: func(groups []lb.Group, index uint64) {
		var names []string
		for _, g := range groups {
			names = append(names, g.Name+"@"+g.VIP)
		}
		got = append(got, names)
		idx = append(idx, index)
	}}
	steps := []struct {
		name string
		c    wire.GroupChanges
		want []string // nil: nothing delivered
		err  bool
	}{
		{"full", wire.GroupChanges{Index: 5, Full: true, Groups: []wire.Group{wg(grp("web", "10.96.0.10", "10.0.0.1")), wg(grp("db", "10.96.0.20", "10.0.0.2"))}},
			[]string{"db@10.96.0.20", "web@10.96.0.10"}, false},
		{"one group changed", wire.GroupChanges{Index: 6, Groups: []wire.Group{wg(grp("web", "10.96.0.11", "10.0.0.1"))}},
			[]string{"db@10.96.0.20", "web@10.96.0.11"}, false},
		{"a deletion", wire.GroupChanges{Index: 7, Deleted: []string{"db"}},
			[]string{"web@10.96.0.11"}, false},
		{"the wait ended", wire.GroupChanges{Index: 7}, nil, false},
		{"an unrelated change moves the index", wire.GroupChanges{Index: 8, Deleted: []string{"not-mine"}},
			[]string{"web@10.96.0.11"}, false},
		{"a conflicting set is refused", wire.GroupChanges{Index: 9, Groups: []wire.Group{wg(grp("web2", "10.96.0.11", "10.0.0.3"))}}, nil, true},
		{"an invalid group is refused", wire.GroupChanges{Index: 9, Groups: []wire.Group{wg(grp("bad", "not-an-ip"))}}, nil, true},
		{"full again drops the rest", wire.GroupChanges{Index: 12, Full: true, Groups: []wire.Group{wg(grp("api", "10.96.0.30", "10.0.0.4"))}},
			[]string{"api@10.96.0.30"}, false},
	}
	for _, s := range steps {
		before := len(got)
		err := f.apply(&s.c)
		if s.err {
			require.Error(t, err, s.name)
		} else {
			require.NoError(t, err, s.name)
		}
		if s.want == nil {
			assert.Len(t, got, before, "%s: nothing delivered", s.name)
			continue
		}
		require.Len(t, got, before+1, s.name)
		assert.Equal(t, s.want, got[before], s.name)
		assert.Equal(t, s.c.Index, idx[before], s.name)
		assert.Equal(t, s.c.Index, f.Index())
	}

	// Resumed from a checkpoint at 12: "nothing since" delivers it.
	r := &Follower{Deliver: f.Deliver}
	r.Resume(12, []lb.Group{grp("api", "10.96.0.30", "10.0.0.4")})
	before := len(got)
	require.NoError(t, r.apply(&wire.GroupChanges{Index: 12}))
	require.Len(t, got, before+1)
	assert.Equal(t, []string{"api@10.96.0.30"}, got[before])
}

package view

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
)

func group(name, vip string) lb.Group {
	return lb.Group{Name: name, VIP: vip, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, Members: []lb.Member{{IP: "10.0.0.11"}}}
}

// upsert applies one group as the store's feed does: at index idx, the row
// created at created.
func upsert(v *View, idx, created uint64, g lb.Group) error {
	return v.Apply(idx, Batch{Groups: []*GroupEntry{{Name: g.Name, VIP: g.VIP, Group: g, CreateIndex: created, ModifyIndex: idx}}})
}

// remove applies one group's deletion at index idx.
func remove(v *View, idx uint64, name string) error {
	return v.Apply(idx, Batch{DeletedGroups: []string{name}})
}

// TestIndexesAndTombstones: rows remember their creation and last change,
// the table its last change; deletions leave tombstones a resuming reader
// sees until they are reaped; an index never goes back.
func TestIndexesAndTombstones(t *testing.T) {
	v, err := New()
	require.NoError(t, err)
	ws := memdb.NewWatchSet()
	idx, list, err := v.Groups(ws)
	require.NoError(t, err)
	assert.Zero(t, idx)
	assert.Empty(t, list)

	require.NoError(t, upsert(v, 10, 10, group("web", "10.96.0.10")))
	require.NoError(t, upsert(v, 11, 11, group("db", "10.96.0.20")))
	g := group("web", "10.96.0.10")
	g.Members[0].State = lb.StateDraining
	require.NoError(t, upsert(v, 12, 10, g))
	idx, e, err := v.Group(ws, "web")
	require.NoError(t, err)
	assert.Equal(t, uint64(12), idx)
	assert.Equal(t, uint64(10), e.CreateIndex)
	assert.Equal(t, uint64(12), e.ModifyIndex)
	assert.Equal(t, lb.StateDraining, e.Group.Members[0].State)

	require.NoError(t, remove(v, 13, "db"))
	require.NoError(t, remove(v, 14, "nothing"), "deleting what is not there changes nothing")
	resync := &GroupEntry{Name: g.Name, VIP: g.VIP, Group: g, CreateIndex: 10, ModifyIndex: 12}
	require.NoError(t, v.Apply(14, Batch{Groups: []*GroupEntry{resync}}), "a resync of a row the view holds at its modify index changes nothing")
	tests := []struct {
		since   uint64
		changed []string
		deleted []string
		full    bool
	}{
		{0, []string{"web"}, nil, true}, // nothing seen: everything
		{10, []string{"web"}, []string{"db"}, false},
		{11, []string{"web"}, []string{"db"}, false},
		{12, nil, []string{"db"}, false},
		{13, nil, nil, false},
	}
	check := func(since uint64, wantChanged, wantDeleted []string, wantFull bool) {
		t.Helper()
		idx, changed, deleted, full, err := v.GroupChanges(ws, since)
		require.NoError(t, err)
		assert.Equal(t, uint64(13), idx)
		var names []string
		for _, c := range changed {
			names = append(names, c.Name)
		}
		assert.Equal(t, wantChanged, names, "since %d", since)
		assert.Equal(t, wantDeleted, deleted, "since %d", since)
		assert.Equal(t, wantFull, full, "since %d", since)
	}
	for _, tt := range tests {
		check(tt.since, tt.changed, tt.deleted, tt.full)
	}
	n, err := v.ReapTombstones(13)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	check(12, []string{"web"}, nil, true) // the deletion at 13 is forgotten: a watcher at 12 starts over
	check(13, nil, nil, false)
	require.NoError(t, v.SetFloor(12), "the floor never goes down")
	check(13, nil, nil, false)

	assert.ErrorContains(t, upsert(v, 5, 5, group("late", "10.96.0.30")), "behind")
	_, e, _ = v.Group(ws, "late")
	assert.Nil(t, e, "a refused write stores nothing")
}

// TestReapTombstonesBefore: the tombstones learnt of before t are reaped,
// with every tombstone at or below the highest of their indexes, and the
// floor rises to it; later ones stay.
func TestReapTombstonesBefore(t *testing.T) {
	v, err := New()
	require.NoError(t, err)
	ws := memdb.NewWatchSet()
	n, err := v.ReapTombstonesBefore(time.Now())
	require.NoError(t, err)
	assert.Zero(t, n, "nothing to reap")

	require.NoError(t, upsert(v, 1, 1, group("web", "10.96.0.10")))
	require.NoError(t, upsert(v, 2, 2, group("db", "10.96.0.20")))
	require.NoError(t, remove(v, 3, "web"))
	time.Sleep(time.Millisecond)
	mark := time.Now()
	time.Sleep(time.Millisecond)
	require.NoError(t, remove(v, 4, "db"))

	n, err = v.ReapTombstonesBefore(mark)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, _, deleted, full, err := v.GroupChanges(ws, 2)
	require.NoError(t, err)
	assert.True(t, full, "the deletion at 3 is forgotten: a watcher at 2 starts over")
	assert.Empty(t, deleted)
	_, _, deleted, full, err = v.GroupChanges(ws, 3)
	require.NoError(t, err)
	assert.False(t, full)
	assert.Equal(t, []string{"db"}, deleted, "the tombstone learnt of after the mark stays")
}

// TestBlockWakesOnChange: a blocking read past the current index returns
// within 50 ms of a write, and at its deadline when nothing changes.
func TestBlockWakesOnChange(t *testing.T) {
	v, err := New()
	require.NoError(t, err)
	require.NoError(t, upsert(v, 1, 1, group("web", "10.96.0.10")))
	query := func(ws memdb.WatchSet) (uint64, error) { idx, _, err := v.Groups(ws); return idx, err }

	var wrote time.Time
	go func() {
		time.Sleep(100 * time.Millisecond)
		wrote = time.Now()
		_ = upsert(v, 2, 2, group("db", "10.96.0.20"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := v.Block(ctx, 1, query)
	woke := time.Since(wrote)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), idx)
	assert.Less(t, woke, 50*time.Millisecond, "woke %v after the write", woke)

	start := time.Now()
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	idx, err = v.Block(short, 2, query)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), idx, "nothing changed: the same index at the deadline")
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
}

// TestReadsWatch: every read adds what it read to the WatchSet, so a
// write to it wakes the reader.
func TestReadsWatch(t *testing.T) {
	tests := []struct {
		name  string
		read  func(v *View, ws memdb.WatchSet) error
		write Batch
	}{
		{"host", func(v *View, ws memdb.WatchSet) error { _, err := v.Host(ws, "h1"); return err },
			Batch{Hosts: []*HostEntry{{Name: "h1", ModifyIndex: 2}}}},
		{"groups by VIP", func(v *View, ws memdb.WatchSet) error { _, err := v.GroupsByVIP(ws, "10.96.0.10"); return err },
			Batch{Groups: []*GroupEntry{{Name: "web", VIP: "10.96.0.10", Group: group("web", "10.96.0.10"), CreateIndex: 2, ModifyIndex: 2}}}},
		{"group", func(v *View, ws memdb.WatchSet) error { _, _, err := v.Group(ws, "web"); return err },
			Batch{Groups: []*GroupEntry{{Name: "web", VIP: "10.96.0.10", Group: group("web", "10.96.0.10"), CreateIndex: 2, ModifyIndex: 2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New()
			require.NoError(t, err)
			ws := memdb.NewWatchSet()
			require.NoError(t, tt.read(v, ws))
			require.NotEmpty(t, ws)
			assert.True(t, ws.Watch(time.After(10*time.Millisecond)), "nothing written: no wake-up")
			require.NoError(t, v.Apply(2, tt.write))
			assert.False(t, ws.Watch(time.After(time.Second)), "the write wakes the reader")
		})
	}
}

func TestLoadGroups(t *testing.T) {
	v, err := New()
	require.NoError(t, err)
	entry := func(name, loadView string, idx uint64) *GroupEntry {
		g := lb.Group{Name: name, VIP: "10.96.0.1"}
		if loadView != "" {
			g.Algorithm, g.LoadView = lb.AlgorithmLeastConnections, loadView
		}
		return &GroupEntry{Name: name, VIP: g.VIP, LoadView: g.LoadViewOf(), Group: g, CreateIndex: 1, ModifyIndex: idx}
	}
	require.NoError(t, v.Apply(1, Batch{Groups: []*GroupEntry{entry("a", lb.LoadViewGlobal, 1), entry("b", "", 1), entry("c", lb.LoadViewLocal, 1), entry("d", lb.LoadViewGlobal, 1)}}))
	ws := memdb.NewWatchSet()
	got, err := v.LoadGroups(ws, lb.LoadViewGlobal)
	require.NoError(t, err)
	names := []string{}
	for _, e := range got {
		names = append(names, e.Name)
	}
	assert.Equal(t, []string{"a", "d"}, names)
	require.NoError(t, v.Apply(2, Batch{Groups: []*GroupEntry{entry("b", lb.LoadViewGlobal, 2)}}))
	assert.False(t, ws.Watch(time.After(time.Second)), "a group that becomes least-connections wakes the watch")
	got, err = v.LoadGroups(nil, lb.LoadViewGlobal)
	require.NoError(t, err)
	assert.Len(t, got, 3)
}

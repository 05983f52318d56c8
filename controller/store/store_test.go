package store

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ovsdb/server"
	"github.com/ovs-dlb/dlb/testbed"
)

// startServer runs an ovsdb-server with the DLB database in dir.
func startServer(ctx context.Context, t *testing.T, dir string) *server.Server {
	t.Helper()
	testbed.Require(t)
	srv, err := server.New(server.Options{Dir: dir, Schema: dlbdb.SchemaFile})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	return srv
}

func put(g lb.Group) func(*lb.Group) (*lb.Group, error) {
	return func(*lb.Group) (*lb.Group, error) { return &g, nil }
}

func del(*lb.Group) (*lb.Group, error) { return nil, nil }

func web(vip string, members ...string) lb.Group {
	g := lb.Group{Name: "web", VIP: vip, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}}
	for _, m := range members {
		g.Members = append(g.Members, lb.Member{IP: m})
	}
	return g
}

// TestWritesCommitAndFeedTheView: each write is one transaction that
// moves DLB_Global's index by one and stamps the group; the view holds it
// when the write returns; If-Match, existence and validation refuse a
// write and store nothing; the index survives a restart of the store.
func TestWritesCommitAndFeedTheView(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startServer(ctx, t, t.TempDir())
	sctx, stop := context.WithCancel(ctx)
	st, err := Open(sctx, Options{Endpoints: []string{srv.Endpoint()}})
	require.NoError(t, err)

	e, idx, err := st.WriteGroup(ctx, GroupWrite{Name: "web", Change: put(web("10.96.0.10", "10.0.0.11"))})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), idx)
	assert.Equal(t, uint64(2), e.CreateIndex)
	assert.Equal(t, uint64(2), e.ModifyIndex)

	e, idx, err = st.WriteGroup(ctx, GroupWrite{Name: "web", IfMatch: 2, Change: func(g *lb.Group) (*lb.Group, error) {
		g.Members = append(g.Members, lb.Member{IP: "10.0.0.12"})
		return g, nil
	}})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), idx)
	assert.Equal(t, uint64(2), e.CreateIndex)
	assert.Len(t, e.Group.Members, 2)

	_, _, err = st.WriteGroup(ctx, GroupWrite{Name: "web", IfMatch: 2, Change: put(web("10.96.0.10"))})
	assert.ErrorIs(t, err, ErrConflict)

	other := web("10.96.0.10", "10.0.0.13")
	other.Name = "web2"
	_, _, err = st.WriteGroup(ctx, GroupWrite{Name: "web2", Change: put(other)})
	var verr *lb.ValidationError
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, "ports[0]", verr.Problems[0].Path, "the VIP:port is served by web already")

	_, _, err = st.WriteGroup(ctx, GroupWrite{Name: "nope", Change: del})
	assert.ErrorIs(t, err, ErrNotFound)

	out, err := exec.Command("ovsdb-client", "dump", srv.Endpoint(), "DLB").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "web")
	t.Logf("ovsdb-client dump:\n%s", out)

	// A blocking reader wakes on the delete and sees a tombstone.
	woke := make(chan uint64)
	go func() {
		idx, _ := st.View().Block(ctx, 3, func(ws memdb.WatchSet) (uint64, error) {
			idx, _, err := st.View().Groups(ws)
			return idx, err
		})
		woke <- idx
	}()
	time.Sleep(50 * time.Millisecond)
	_, idx, err = st.WriteGroup(ctx, GroupWrite{Name: "web", Change: del})
	require.NoError(t, err)
	assert.Equal(t, uint64(4), idx)
	assert.Equal(t, uint64(4), <-woke)
	_, _, deleted, _, err := st.View().GroupChanges(nil, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"web"}, deleted)
	_, _, err = st.WriteGroup(ctx, GroupWrite{Name: "web2", Change: put(other)})
	require.NoError(t, err, "the VIP:port is free again")
	stop()
	<-st.Done()

	st, err = Open(ctx, Options{Endpoints: []string{srv.Endpoint()}})
	require.NoError(t, err)
	assert.Equal(t, uint64(5), st.View().Index())
	_, e, err = st.View().Group(nil, "web2")
	require.NoError(t, err)
	require.NotNil(t, e)
	assert.Equal(t, uint64(5), e.ModifyIndex)
	_, e, _ = st.View().Group(nil, "web")
	assert.Nil(t, e)
}

// TestTwoControllersOnOneDatabase: two stores writing the same database
// at once (as two controllers on a clustered one would) never lose a
// write: the index orders them, the loser of a race retries, and both
// views end equal.
func TestTwoControllersOnOneDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServer(ctx, t, t.TempDir())
	a, err := Open(ctx, Options{Endpoints: []string{srv.Endpoint()}})
	require.NoError(t, err)
	b, err := Open(ctx, Options{Endpoints: []string{srv.Endpoint()}})
	require.NoError(t, err)

	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, st := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				name := fmt.Sprintf("g%d-%d", i, j)
				g := lb.Group{Name: name, VIP: fmt.Sprintf("10.96.%d.%d", i, j+1), Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}}
				if _, _, err := st.WriteGroup(ctx, GroupWrite{Name: name, Change: put(g)}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, a.View().WaitIndex(ctx, 2*n+1))
	require.NoError(t, b.View().WaitIndex(ctx, 2*n+1))
	_, ga, _ := a.View().Groups(nil)
	_, gb, _ := b.View().Groups(nil)
	assert.Len(t, ga, 2*n)
	assert.Equal(t, ga, gb)
	seen := map[uint64]bool{}
	for _, e := range ga {
		assert.False(t, seen[e.ModifyIndex], "index %d given twice", e.ModifyIndex)
		seen[e.ModifyIndex] = true
	}
}

func TestErrorsWrap(t *testing.T) {
	err := fmt.Errorf("group %q: %w", "x", ErrConflict)
	assert.True(t, errors.Is(err, ErrConflict))
}

// TestGapInTheChangeLog: a transaction that moves the index without
// naming what it changed (another client's) makes the feed read
// everything, so the view still gets it; named changes then go on.
func TestGapInTheChangeLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startServer(ctx, t, t.TempDir())
	st, err := Open(ctx, Options{Endpoints: []string{srv.Endpoint()}})
	require.NoError(t, err)
	_, _, err = st.WriteGroup(ctx, GroupWrite{Name: "web", Change: put(web("10.96.0.10", "10.0.0.11"))})
	require.NoError(t, err)

	// Another client: index 2 -> 3, a group stamped 3, no last_change.
	other := `["DLB",
	 {"op":"update","table":"DLB_Global","where":[],"row":{"index":3,"last_change":""}},
	 {"op":"insert","table":"VIP_Port","row":{"protocol":"tcp","port":80,"target_port":0},"uuid-name":"p"},
	 {"op":"insert","table":"Group","row":{"name":"api","vip":"10.96.0.20","mode":"dnat","create_index":3,"modify_index":3,
	   "ports":["set",[["named-uuid","p"]]]}}]`
	out, err := exec.Command("ovsdb-client", "transact", srv.Endpoint(), other).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, st.View().WaitIndex(ctx, 3))
	_, e, err := st.View().Group(nil, "api")
	require.NoError(t, err)
	require.NotNil(t, e, "the unnamed change is read by a full sync")
	assert.Equal(t, uint64(3), e.ModifyIndex)

	_, idx, err := st.WriteGroup(ctx, GroupWrite{Name: "web", Change: del})
	require.NoError(t, err)
	assert.Equal(t, uint64(4), idx)
	_, e, _ = st.View().Group(nil, "web")
	assert.Nil(t, e, "named changes go on after the gap")
}

package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/testbed"
)

// raftCluster is a three-server clustered (Raft) DLB database on
// loopback, as docs/store.md tells an admin to build one.
type raftCluster struct {
	t     *testing.T
	dir   string
	procs []*exec.Cmd
	done  []chan struct{}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
	return string(out)
}

func newRaftCluster(t *testing.T) *raftCluster {
	testbed.Require(t)
	c := &raftCluster{t: t, dir: t.TempDir()}
	schema := filepath.Join(c.dir, "dlb.ovsschema")
	require.NoError(t, os.WriteFile(schema, dlbdb.SchemaFile, 0o640))
	var raft []string
	for i := 0; i < 3; i++ {
		raft = append(raft, "tcp:"+testbed.FreeAddr(t))
	}
	run(t, "ovsdb-tool", "create-cluster", c.db(0), schema, raft[0])
	for i := 1; i < 3; i++ {
		run(t, "ovsdb-tool", "join-cluster", c.db(i), "DLB", raft[i], raft[0])
	}
	for i := 0; i < 3; i++ {
		c.start(i)
	}
	t.Cleanup(func() {
		for i, p := range c.procs {
			if p != nil {
				_ = p.Process.Kill()
				<-c.done[i]
			}
		}
	})
	for i := 0; i < 3; i++ {
		run(t, "timeout", "20", "ovsdb-client", "wait", c.endpoint(i), "DLB", "connected")
	}
	return c
}

func (c *raftCluster) db(i int) string { return filepath.Join(c.dir, fmt.Sprintf("s%d.db", i)) }
func (c *raftCluster) endpoint(i int) string {
	return "unix:" + filepath.Join(c.dir, fmt.Sprintf("s%d.sock", i))
}
func (c *raftCluster) ctl(i int) string { return filepath.Join(c.dir, fmt.Sprintf("s%d.ctl", i)) }

func (c *raftCluster) endpoints() []string {
	return []string{c.endpoint(0), c.endpoint(1), c.endpoint(2)}
}

func (c *raftCluster) start(i int) {
	cmd := exec.Command("ovsdb-server", c.db(i), "--remote=p"+c.endpoint(i), "--unixctl="+c.ctl(i),
		"--log-file="+filepath.Join(c.dir, fmt.Sprintf("s%d.log", i)), "--pidfile="+filepath.Join(c.dir, fmt.Sprintf("s%d.pid", i)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(c.t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	for len(c.procs) <= i {
		c.procs, c.done = append(c.procs, nil), append(c.done, nil)
	}
	c.procs[i], c.done[i] = cmd, done
}

// leader is the index of the server whose role is leader.
func (c *raftCluster) leader() int {
	for attempt := 0; attempt < 100; attempt++ {
		for i := range c.procs {
			if c.procs[i] == nil {
				continue
			}
			out, err := exec.Command("ovs-appctl", "-t", c.ctl(i), "cluster/status", "DLB").CombinedOutput()
			if err == nil && strings.Contains(string(out), "Role: leader") {
				return i
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("no leader in the cluster")
	return -1
}

// TestClusteredDatabase: two stores (two controllers) on a three-server
// Raft cluster write at once; the leader is killed (-9) midway; every
// acknowledged write is there afterwards, in both views, with one index
// per write.
func TestClusteredDatabase(t *testing.T) {
	c := newRaftCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, err := Open(ctx, Options{Endpoints: c.endpoints()})
	require.NoError(t, err)
	b, err := Open(ctx, Options{Endpoints: c.endpoints()})
	require.NoError(t, err)

	const n = 60
	var mu sync.Mutex
	acked := map[string]uint64{}
	var failed int
	var wg sync.WaitGroup
	for w, st := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				name := fmt.Sprintf("c%d-%d", w, j)
				g := lb.Group{Name: name, VIP: fmt.Sprintf("10.96.%d.%d", w, j+1), Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}}
				wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
				_, idx, err := st.WriteGroup(wctx, GroupWrite{Name: name, Change: put(g)})
				wcancel()
				mu.Lock()
				if err == nil {
					acked[name] = idx
				} else {
					if failed < 5 {
						t.Logf("write %s: %v", name, err)
					}
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	// Kill the leader once the writers are under way.
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= n/2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	l := c.leader()
	_ = c.procs[l].Process.Kill()
	<-c.done[l]
	c.procs[l] = nil
	t.Logf("killed the leader, server %d, after %d writes", l, n/2)
	wg.Wait()
	t.Logf("%d writes acknowledged, %d failed; new leader: server %d", len(acked), failed, c.leader())
	// Only a transaction cut off in flight by the kill fails (its outcome
	// unknown to the writer): one per writer, give or take a retry.
	assert.GreaterOrEqual(t, len(acked), 2*n-4, "writes go on after the leader is lost")

	var top uint64
	for _, idx := range acked {
		top = max(top, idx)
	}
	for _, st := range []*Store{a, b} {
		require.NoError(t, st.View().WaitIndex(ctx, top))
		for name, idx := range acked {
			_, e, err := st.View().Group(nil, name)
			require.NoError(t, err)
			if assert.NotNil(t, e, "acknowledged %s is gone", name) {
				assert.Equal(t, idx, e.ModifyIndex, name)
			}
		}
	}
	seen := map[uint64]string{}
	for name, idx := range acked {
		assert.Empty(t, seen[idx], "index %d given to %s and %s", idx, name, seen[idx])
		seen[idx] = name
	}
}

package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/ovsdb/server"
	"github.com/ovs-dlb/dlb/testbed"
)

func client(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ovsdb-client", args...).CombinedOutput()
	require.NoError(t, err, "ovsdb-client %v: %s", args, out)
	return string(out)
}

// schema is a small database for the tests (the server knows no
// particular schema).
var schema = []byte(`{"name": "DLB", "version": "1.0.0", "tables": {
  "Group": {"columns": {"name": {"type": "string"}}, "indexes": [["name"]], "isRoot": true},
  "Host": {"columns": {"name": {"type": "string"},
    "address": {"type": {"key": "string", "min": 0, "max": 1}}}, "isRoot": true}}}`)

const addHost = `["DLB",{"op":"insert","table":"Host","row":{"name":"h1"}}]`

// TestServerLifecycle: a new directory gets a database from the schema;
// a row written survives the server's kill -9 (the supervisor restarts
// it); ending the context stops the server.
func TestServerLifecycle(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := server.New(server.Options{Dir: dir, Schema: schema})
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	assert.Contains(t, client(t, "list-tables", s.Endpoint(), "DLB"), "Group")
	client(t, "transact", s.Endpoint(), addHost)

	pid := s.PID()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		out, err := exec.Command("ovsdb-client", "dump", s.Endpoint(), "DLB", "Host").CombinedOutput()
		return err == nil && strings.Contains(string(out), "h1") && s.PID() != pid
	}, 10*time.Second, 50*time.Millisecond, "restarted with the row")

	cancel()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server not stopped")
	}
	assert.Error(t, syscall.Kill(s.PID(), 0), "the server is gone")
}

// TestServerClearsOrphanAndConverts: a server left running on the
// directory (its parent killed) is replaced, and a database made from an
// older schema is converted, keeping its rows.
func TestServerClearsOrphanAndConverts(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "dlb.db")
	old := strings.Replace(string(schema), `"version": "1.0.0"`, `"version": "0.9.0"`, 1)
	old = strings.Replace(old, `,
    "address": {"type": {"key": "string", "min": 0, "max": 1}}}`, "}", 1)
	require.NotEqual(t, string(schema), old)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.ovsschema"), []byte(old), 0o644))
	out, err := exec.Command("ovsdb-tool", "create", db, filepath.Join(dir, "old.ovsschema")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	orphan := exec.Command("ovsdb-server", db, "--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"), "--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"))
	require.NoError(t, orphan.Start())
	go func() { _ = orphan.Wait() }()
	require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(dir, "ovsdb-server.pid")); return err == nil }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		return exec.Command("ovsdb-client", "transact", "unix:"+filepath.Join(dir, "db.sock"), addHost).Run() == nil
	}, 5*time.Second, 20*time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := server.New(server.Options{Dir: dir, Schema: schema})
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	assert.NotEqual(t, orphan.Process.Pid, s.PID())
	assert.Error(t, syscall.Kill(orphan.Process.Pid, 0), "the orphan is gone")
	assert.Equal(t, "1.0.0", strings.TrimSpace(client(t, "get-schema-version", s.Endpoint(), "DLB")))
	dump := client(t, "dump", s.Endpoint(), "DLB", "Host")
	assert.Contains(t, dump, "h1", "rows survive the conversion")
	assert.Contains(t, dump, "address", "the new column is there")
	assert.Equal(t, strconv.Itoa(s.PID()), strings.TrimSpace(readFile(t, filepath.Join(dir, "ovsdb-server.pid"))))
}

func readFile(t *testing.T, p string) string {
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(data)
}

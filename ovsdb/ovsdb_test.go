package ovsdb_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/ovsdb"
	"github.com/ovs-dlb/dlb/testbed"
)

type env struct {
	tb   *testbed.Testbed
	host *testbed.Host
	c    *ovsdb.Client
	inv  *ovsdb.Inventory
	ctx  context.Context
}

func start(t *testing.T) *env {
	t.Helper()
	topo, err := testbed.Example("one-host")
	require.NoError(t, err)
	tb := testbed.Start(t, topo)
	h := tb.Host("h1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c := ovsdb.New(ovsdb.Options{Endpoint: h.OVSDBSocket(), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	inv := ovsdb.NewInventory(ctx, c, testbed.Bridge)
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, c.WaitConnected(ctx))
	require.NoError(t, inv.WaitSynced(ctx))
	require.True(t, inv.Synced())
	require.NotEmpty(t, inv.Ports(), "the first sync reads the filled cache: the bridge's ports are there")
	e := &env{tb: tb, host: h, c: c, inv: inv, ctx: ctx}
	e.drain()
	return e
}

// drain consumes the events of the first sync (every port added, then
// numbered) until none came for 200 ms.
func (e *env) drain() {
	for {
		select {
		case <-e.inv.Events():
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

func (e *env) vsctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.host.VSCtl(e.ctx, args...)
	require.NoError(t, err)
	return strings.TrimSpace(out)
}

// next waits for an event that matches, failing after limit; it returns
// the event and how long it took.
func (e *env) next(t *testing.T, limit time.Duration, match func(ovsdb.Event) bool) (ovsdb.Event, time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := time.After(limit)
	for {
		select {
		case ev := <-e.inv.Events():
			if match(ev) {
				return ev, time.Since(start)
			}
		case <-deadline:
			t.Fatalf("no matching port event within %s", limit)
			return ovsdb.Event{}, 0
		}
	}
}

func is(kind ovsdb.EventKind, name string) func(ovsdb.Event) bool {
	return func(ev ovsdb.Event) bool { return ev.Kind == kind && ev.Port.Name == name }
}

func TestInventoryMatchesOVSDB(t *testing.T) {
	e := start(t)
	// Ports are known once ovs-vswitchd has given them numbers.
	require.Eventually(t, func() bool {
		for _, p := range e.inv.Ports() {
			if p.OFPort <= 0 {
				return false
			}
		}
		return len(e.inv.Ports()) == 6 // br-int, uplink, c1, s1..s3
	}, 5*time.Second, 10*time.Millisecond, "%v", e.inv.Ports())
	for _, p := range e.inv.Ports() {
		want, err := strconv.Atoi(e.vsctl(t, "get", "Interface", p.Name, "ofport"))
		require.NoError(t, err)
		assert.Equal(t, want, p.OFPort, "ofport of %s", p.Name)
		vm := e.tb.VM(p.Name)
		if vm == nil {
			assert.False(t, p.IsVM(), "%s has no iface-id", p.Name)
			continue
		}
		assert.Equal(t, vm.Name, p.IfaceID)
		assert.Equal(t, vm.HardwareAddr(), p.MAC.String())
		require.Len(t, p.IPs, 2)
		assert.Equal(t, vm.Addr(), p.IPs[0])
		assert.Equal(t, vm.Addr6(), p.IPs[1])
		assert.True(t, p.LinkUp && p.AdminUp, p.Name)
	}
}

// TestInventoryEvents adds, changes, renames and removes VM ports and
// expects each event within 100 ms of the change being committed.
func TestInventoryEvents(t *testing.T) {
	e := start(t)
	const limit = 100 * time.Millisecond
	var worst time.Duration
	see := func(kind ovsdb.EventKind, name string) ovsdb.Event {
		t.Helper()
		ev, took := e.next(t, limit, is(kind, name))
		worst = max(worst, took)
		return ev
	}

	e.vsctl(t, "add-port", testbed.Bridge, "vm1", "--", "set", "Interface", "vm1", "type=internal",
		"external_ids:iface-id=vm-one", "external_ids:attached-mac=02:00:00:00:01:01", "external_ids:ovs-dlb-ips=10.0.0.51")
	ev := see(ovsdb.PortAdded, "vm1")
	assert.Equal(t, "vm-one", ev.Port.IfaceID)
	assert.Equal(t, "02:00:00:00:01:01", ev.Port.MAC.String())
	assert.Equal(t, "10.0.0.51", ev.Port.IPs[0].String())
	// ovs-vswitchd numbers the port a moment later: a change.
	if ev.Port.OFPort <= 0 {
		ev, _ = e.next(t, 2*time.Second, func(ev ovsdb.Event) bool { return is(ovsdb.PortChanged, "vm1")(ev) && ev.Port.OFPort > 0 })
	}
	ofport, _ := strconv.Atoi(e.vsctl(t, "get", "Interface", "vm1", "ofport"))
	assert.Equal(t, ofport, ev.Port.OFPort)

	e.vsctl(t, "set", "Interface", "vm1", "external_ids:iface-id=vm-uno")
	ev = see(ovsdb.PortChanged, "vm1")
	assert.Equal(t, "vm-uno", ev.Port.IfaceID)
	assert.Equal(t, "vm-one", ev.Old.IfaceID)

	// A rename is the port leaving under one name and coming back under
	// another, in one transaction.
	e.vsctl(t, "del-port", "vm1", "--", "add-port", testbed.Bridge, "vm2", "--", "set", "Interface", "vm2", "type=internal",
		"external_ids:iface-id=vm-uno")
	see(ovsdb.PortRemoved, "vm1")
	see(ovsdb.PortAdded, "vm2")

	e.vsctl(t, "del-port", "vm2")
	see(ovsdb.PortRemoved, "vm2")
	_, ok := e.inv.Port("vm2")
	assert.False(t, ok)
	t.Logf("slowest event: %s", worst)
}

// TestInventorySurvivesOVSDBRestart: while ovsdb-server is down the
// inventory keeps what it knew; what changed meanwhile (here, edited into
// the database file) arrives as events once it is back, without spurious
// ones for what did not change.
func TestInventorySurvivesOVSDBRestart(t *testing.T) {
	e := start(t)
	require.Eventually(t, func() bool { p, ok := e.inv.Port("s3"); return ok && p.OFPort > 0 }, 5*time.Second, 10*time.Millisecond)
	before := e.c.Connects()
	s2port := e.vsctl(t, "get", "Port", "s2", "_uuid")
	require.NoError(t, e.host.StopOVSDBServer(e.ctx))
	require.Eventually(t, func() bool { return !e.c.Connected() }, 5*time.Second, 10*time.Millisecond)
	assert.Len(t, e.inv.Ports(), 6, "the last known ports stay while disconnected")

	// Change s3's iface-id and drop s2's port in the file itself.
	txn := `["Open_vSwitch",
	  {"op":"update","table":"Interface","where":[["name","==","s3"]],
	   "row":{"external_ids":["map",[["iface-id","s3-moved"],["attached-mac","02:00:0a:00:00:0d"]]]}},
	  {"op":"mutate","table":"Bridge","where":[["name","==","br-int"]],
	   "mutations":[["ports","delete",["named-uuid","x"]]]}]`
	txn = strings.Replace(txn, `["named-uuid","x"]`, fmt.Sprintf(`["uuid",%q]`, s2port), 1)
	out, err := testbedRun(e.ctx, "ovsdb-tool", "transact", e.host.DBPath(), txn)
	require.NoError(t, err, out)
	require.NoError(t, e.host.StartOVSDBServer(e.ctx))

	ev, _ := e.next(t, 10*time.Second, func(ev ovsdb.Event) bool { return ev.Port.Name == "s2" || ev.Port.Name == "s3" })
	events := []ovsdb.Event{ev}
	ev2, _ := e.next(t, 2*time.Second, func(ev ovsdb.Event) bool { return ev.Port.Name == "s2" || ev.Port.Name == "s3" })
	events = append(events, ev2)
	kinds := map[string]ovsdb.EventKind{}
	for _, ev := range events {
		kinds[ev.Port.Name] = ev.Kind
		if ev.Port.Name == "s3" {
			assert.Equal(t, "s3-moved", ev.Port.IfaceID)
		}
	}
	assert.Equal(t, map[string]ovsdb.EventKind{"s2": ovsdb.PortRemoved, "s3": ovsdb.PortChanged}, kinds)
	assert.Greater(t, e.c.Connects(), before, "the client reconnected")
	// No other port had an event: nothing else changed.
	select {
	case ev := <-e.inv.Events():
		if ev.Port.Name != "s2" && ev.Port.Name != "s3" {
			t.Errorf("spurious event after the restart: %v %s", ev.Kind, ev.Port.Name)
		}
	case <-time.After(300 * time.Millisecond):
	}
	assert.Len(t, e.inv.Ports(), 5)
}

func testbedRun(ctx context.Context, name string, args ...string) (string, error) {
	return runCmd(ctx, name, args...)
}

func TestPrepareBridge(t *testing.T) {
	e := start(t)
	// An admin's bridge: OpenFlow 1.0 and 1.3 only, foreign settings, a
	// table someone else named, and another bridge beside it.
	e.vsctl(t, "set", "Bridge", testbed.Bridge, "protocols=OpenFlow10,OpenFlow13", "external_ids:owner=admin",
		"other_config:mac-aging-time=42", "--", "--id=@ft", "create", "Flow_Table", "name=admins_table",
		"--", "set", "Bridge", testbed.Bridge, "flow_tables:9=@ft")
	e.vsctl(t, "add-br", "br-other", "--", "set", "Bridge", "br-other", "datapath_type=netdev", "protocols=OpenFlow13", "fail_mode=standalone")
	other := e.vsctl(t, "--columns=name,protocols,fail_mode,external_ids,other_config,flow_tables", "list", "Bridge", "br-other")
	require.Eventually(t, func() bool { return e.c.Connected() }, time.Second, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // let the cache see the admin's changes

	cfg := ovsdb.BridgeConfig{Name: testbed.Bridge, Own: true, Tables: map[int]string{0: "dlb_ingress", 1: "dlb_vip", 9: "dlb_wants_nine"}}
	rep, err := e.c.PrepareBridge(e.ctx, cfg)
	require.NoError(t, err)
	t.Logf("changes: %v, notes: %v", rep.Changed, rep.Notes)
	assert.Contains(t, rep.Changed, "added OpenFlow15 to protocols")
	assert.Contains(t, rep.Changed, "set fail_mode=secure")
	require.Len(t, rep.Notes, 1)
	assert.Contains(t, rep.Notes[0], "table 9")

	assert.Equal(t, `[OpenFlow10, OpenFlow13, OpenFlow15]`, e.vsctl(t, "get", "Bridge", testbed.Bridge, "protocols"))
	assert.Equal(t, "secure", e.vsctl(t, "get", "Bridge", testbed.Bridge, "fail_mode"))
	assert.Equal(t, `"true"`, e.vsctl(t, "get", "Bridge", testbed.Bridge, "external_ids:ovs-dlb-managed"))
	assert.Equal(t, "admin", e.vsctl(t, "get", "Bridge", testbed.Bridge, "external_ids:owner"), "foreign external_ids stay")
	assert.Equal(t, `"42"`, e.vsctl(t, "get", "Bridge", testbed.Bridge, "other_config:mac-aging-time"), "foreign other_config stays")
	tables := e.vsctl(t, "--columns=name,external_ids", "list", "Flow_Table")
	assert.Contains(t, tables, "admins_table", "a foreign table name stays")
	assert.Contains(t, tables, "dlb_ingress")
	assert.Contains(t, tables, "dlb_vip")
	assert.NotContains(t, tables, "dlb_wants_nine")
	assert.Equal(t, other, e.vsctl(t, "--columns=name,protocols,fail_mode,external_ids,other_config,flow_tables", "list", "Bridge", "br-other"),
		"another bridge is left alone")

	// Idempotent: a second run changes nothing.
	require.Eventually(t, func() bool {
		rep, err = e.c.PrepareBridge(e.ctx, cfg)
		return err == nil && len(rep.Changed) == 0
	}, 2*time.Second, 20*time.Millisecond, "second preparation changed %v", rep)
	dump := e.vsctl(t, "--columns=protocols,fail_mode,external_ids,flow_tables", "list", "Bridge", testbed.Bridge)
	rep, err = e.c.PrepareBridge(e.ctx, cfg)
	require.NoError(t, err)
	assert.Empty(t, rep.Changed)
	assert.Equal(t, dump, e.vsctl(t, "--columns=protocols,fail_mode,external_ids,flow_tables", "list", "Bridge", testbed.Bridge))

	// ovs-ofctl --names shows the DLB's table by name.
	_, err = e.host.OFCtl(e.ctx, "add-flow", "table=1,priority=5,ip,actions=drop")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		out, err := e.host.OFCtl(e.ctx, "dump-flows", "--names", "--no-stats")
		return err == nil && strings.Contains(out, `table="dlb_vip"`)
	}, 3*time.Second, 50*time.Millisecond)

	// Renaming ours works; a table no longer wanted loses its name.
	cfg.Tables = map[int]string{0: "dlb_ingress", 1: "dlb_vips"}
	require.Eventually(t, func() bool {
		rep, err = e.c.PrepareBridge(e.ctx, cfg)
		return err == nil && len(rep.Changed) > 0
	}, 2*time.Second, 20*time.Millisecond)
	assert.Contains(t, rep.Changed, `renamed table 1 "dlb_vips"`)
}

func TestPrepareBridgeCreatesOrExplains(t *testing.T) {
	e := start(t)
	_, err := e.c.PrepareBridge(e.ctx, ovsdb.BridgeConfig{Name: "br-missing"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ovsdb.ErrNoBridge))
	assert.Contains(t, err.Error(), "ovs-vsctl add-br br-missing")

	rep, err := e.c.PrepareBridge(e.ctx, ovsdb.BridgeConfig{Name: "br-dlb", Create: true, DatapathType: "netdev", Own: true,
		Tables: map[int]string{0: "dlb_ingress"}})
	require.NoError(t, err)
	assert.Equal(t, []string{`created bridge br-dlb (datapath_type="netdev")`}, rep.Changed)
	assert.Equal(t, "secure", e.vsctl(t, "get", "Bridge", "br-dlb", "fail_mode"))
	assert.Equal(t, "netdev", e.vsctl(t, "get", "Bridge", "br-dlb", "datapath_type"))
	// ovs-vswitchd makes it: its OpenFlow socket answers.
	require.Eventually(t, func() bool {
		_, err := runCmd(e.ctx, "ovs-ofctl", "-O", "OpenFlow15", "show", "unix:"+e.host.RunDir+"/br-dlb.mgmt")
		return err == nil
	}, 5*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		rep, err = e.c.PrepareBridge(e.ctx, ovsdb.BridgeConfig{Name: "br-dlb", Create: true, DatapathType: "netdev", Own: true,
			Tables: map[int]string{0: "dlb_ingress"}})
		return err == nil && len(rep.Changed) == 0
	}, 2*time.Second, 20*time.Millisecond)
}

func TestConnectErrorSaysWhatToCheck(t *testing.T) {
	c := ovsdb.New(ovsdb.Options{Endpoint: "unix:/nonexistent/db.sock"})
	_, err := c.PrepareBridge(context.Background(), ovsdb.BridgeConfig{Name: "br-int"})
	assert.ErrorIs(t, err, ovsdb.ErrNotConnected)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = c.WaitConnected(ctx)
	assert.Error(t, err)
	assert.Contains(t, ovsdb.CheckEndpoint("unix:/nonexistent/db.sock").Error(), "is ovsdb-server running")
}

func runCmd(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

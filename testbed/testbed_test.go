package testbed

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func example(t *testing.T, name string) *Topology {
	t.Helper()
	topo, err := Example(name)
	require.NoError(t, err)
	return topo
}

// TestThreeHosts brings up the three-host topology and checks that VMs on
// different hosts reach each other over the underlay: ping, TCP and UDP,
// IPv4 and IPv6, through the bridges' NORMAL forwarding.
func TestThreeHosts(t *testing.T) {
	start := time.Now()
	tb := Start(t, example(t, "three-hosts"))
	t.Logf("three-host testbed up in %s", time.Since(start))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out, err := tb.Exec(ctx, "c1", "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.13")
	require.NoError(t, err)
	assert.Contains(t, out, "2 received")
	out, err = tb.Exec(ctx, "c1", "ping", "-6", "-c", "1", "-W", "2", "fd00::12")
	require.NoError(t, err)
	assert.Contains(t, out, "1 received")

	out, err = tb.Exec(ctx, "c3", "curl", "-s", "--max-time", "5", "http://10.0.0.11:8080/")
	require.NoError(t, err)
	assert.Equal(t, "s1\n", out)

	for _, tc := range []struct {
		vm, target, proto, server string
	}{
		{"c1", "10.0.0.12:8080", "tcp", "s2"},
		{"c1", "10.0.0.13:5353", "udp", "s3"},
		{"c2", "[fd00::11]:8080", "tcp", "s1"},
		{"c3", "[fd00::12]:5353", "udp", "s2"},
	} {
		res, err := tb.Load(ctx, LoadSpec{VM: tc.vm, Target: tc.target, Proto: tc.proto, Count: 300, Concurrency: 4})
		require.NoError(t, err)
		assert.Equal(t, map[string]int{tc.server: 300}, res.Answers, "%s -> %s/%s: %v", tc.vm, tc.target, tc.proto, res.FailureExamples)
		assert.Empty(t, res.Failures)
		assert.Positive(t, res.RatePerSecond)
		t.Logf("%s -> %s/%s: %.0f/s, p50 %.2f ms, p99 %.2f ms", tc.vm, tc.target, tc.proto, res.RatePerSecond, res.LatencyP50Ms, res.LatencyP99Ms)
	}

	// An armed prober waits for Fire, then answers with when and who.
	p, err := tb.StartProbe(ctx, ProbeSpec{VM: "c2", Target: "[fd00::11]:8080", Want: []string{"s1"}})
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	fired := time.Now()
	require.NoError(t, p.Fire())
	pr, err := p.Wait()
	require.NoError(t, err)
	assert.Equal(t, "s1", pr.Server)
	assert.True(t, pr.At.After(fired), "the prober began when fired (answer at %v, fired at %v)", pr.At, fired)
	assert.Less(t, pr.At.Sub(fired), 100*time.Millisecond)
	t.Logf("armed prober c2 -> s1: answered %v after it was fired, %d attempts", pr.At.Sub(fired), pr.Attempts)
	p, err = tb.StartProbe(ctx, ProbeSpec{VM: "c1", Target: "10.0.0.13:9", Max: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = p.Wait()
	require.ErrorContains(t, err, "no connection in 50ms")

	// Held connections keep their server; a closed port is refused.
	res, err := tb.Load(ctx, LoadSpec{VM: "c2", Target: "10.0.0.13:8080", Count: 4, Concurrency: 4, Hold: 300 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"s3": 4}, res.Answers)
	res, err = tb.Load(ctx, LoadSpec{VM: "c2", Target: "10.0.0.13:9", Count: 3})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{FailRefused: 3}, res.Failures)
	res, err = tb.Load(ctx, LoadSpec{VM: "c2", Target: "10.0.0.13:9", Proto: "udp", Count: 3})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{FailRefused: 3}, res.Failures)

	// Each VM port carries the hypervisor conventions, and the bridge is
	// what later issues build on.
	h2 := tb.Host("h2")
	ids, err := h2.VSCtl(ctx, "get", "Interface", "s2", "external_ids")
	require.NoError(t, err)
	assert.Contains(t, ids, `iface-id=s2`)
	assert.Contains(t, ids, `attached-mac="02:00:0a:00:00:0c"`)
	dp, err := h2.VSCtl(ctx, "get", "Bridge", Bridge, "datapath_type", "protocols")
	require.NoError(t, err)
	assert.Contains(t, dp, "netdev")
	assert.Contains(t, dp, "OpenFlow15")
	flows, err := h2.OFCtl(ctx, "dump-flows")
	require.NoError(t, err)
	assert.Contains(t, flows, "actions=NORMAL")
	sysid, err := h2.VSCtl(ctx, "get", "Open_vSwitch", ".", "external_ids:system-id")
	require.NoError(t, err)
	assert.Equal(t, `h2`, strings.Trim(strings.TrimSpace(sysid), `"`))

	// A restarted ovs-vswitchd comes back on the same bridge and forwards.
	pid, _ := h2.VSwitchdPID()
	require.NoError(t, h2.RestartVSwitchd(ctx))
	newPID, ok := h2.VSwitchdPID()
	require.True(t, ok)
	assert.NotEqual(t, pid, newPID)
	res, err = tb.Load(ctx, LoadSpec{VM: "c1", Target: "10.0.0.12:8080", Count: 50})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"s2": 50}, res.Answers)

	require.NoError(t, h2.RestartOVSDBServer(ctx))
	_, err = h2.VSCtl(ctx, "get", "Interface", "s2", "ofport")
	require.NoError(t, err)

	st := tb.Status(ctx)
	require.Len(t, st.Hosts, 3)
	for _, h := range st.Hosts {
		assert.True(t, h.VSwitchdAlive && h.OVSDBAlive, h.Name)
		assert.Empty(t, h.Problem)
		for _, v := range h.VMs {
			assert.NotEmpty(t, v.OFPort, v.Name)
			assert.Equal(t, len(v.Services) > 0, v.ServicesAlive, v.Name)
		}
	}
}

// TestDownLeavesNothing checks teardown, including of a testbed whose
// first run crashed: Up on the same name cleans the leftovers first.
func TestDownLeavesNothing(t *testing.T) {
	Require(t)
	bin, err := ServiceBinary()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := Options{Name: "down-" + newPrefix(), ServiceBinary: bin, owner: ownerTest}
	first, err := Up(ctx, example(t, "one-host"), opts)
	require.NoError(t, err)
	left, err := first.Leftovers(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, left, "a running testbed is visible to Leftovers")

	// No Down: as if the process that made it had crashed.
	second, err := Up(ctx, example(t, "three-hosts"), opts)
	require.NoError(t, err)
	left, err = first.Leftovers(ctx)
	require.NoError(t, err)
	for _, l := range left {
		assert.NotContains(t, l, first.Prefix, "the earlier run was cleaned")
	}
	_, err = second.Exec(ctx, "c1", "ping", "-c", "1", "-W", "2", "10.0.0.13")
	require.NoError(t, err)

	require.NoError(t, second.Down(ctx))
	left, err = second.Leftovers(ctx)
	require.NoError(t, err)
	assert.Empty(t, left)
	out, err := run(ctx, "ip", "netns", "list")
	require.NoError(t, err)
	assert.NotContains(t, out, second.Prefix)
	assert.NotContains(t, out, first.Prefix)
	_, err = Open(opts.Name, "")
	assert.ErrorIs(t, err, ErrNotRunning)
}

// TestDeadVSwitchdIsReported kills an ovs-vswitchd the way an assertion
// does and expects the watcher and the traffic tool to say so, with the
// tail of its log, rather than time out.
func TestDeadVSwitchdIsReported(t *testing.T) {
	Require(t)
	bin, err := ServiceBinary()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tb, err := Up(ctx, example(t, "one-host"), Options{Name: "crash-" + newPrefix(), ServiceBinary: bin, owner: ownerTest})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tb.Down(context.Background())) })

	reports := make(chan error, 4)
	stop := tb.watch(func(err error) { reports <- err })
	defer stop()

	h := tb.Host("h1")
	pid, ok := h.VSwitchdPID()
	require.True(t, ok)
	require.NoError(t, syscall.Kill(pid, syscall.SIGABRT))
	select {
	case err := <-reports:
		assert.ErrorIs(t, err, ErrVSwitchdDied)
		assert.Contains(t, err.Error(), "host h1")
		assert.Contains(t, err.Error(), "bridge br-int", "the report carries the log's last lines")
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher did not report the dead ovs-vswitchd")
	}
	_, err = tb.Load(ctx, LoadSpec{VM: "c1", Target: "10.0.0.11:8080", Count: 2, Timeout: 200 * time.Millisecond})
	assert.ErrorIs(t, err, ErrVSwitchdDied)
	assert.NotEmpty(t, tb.Status(ctx).Hosts[0].Problem)
}

package ofctrl_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	. "github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/testbed"
)

// bridge is one host of a one-host testbed with a connection to its bridge.
type bridge struct {
	tb   *testbed.Testbed
	host *testbed.Host
	conn *Conn
}

func newBridge(t *testing.T) *bridge {
	t.Helper()
	topo, err := testbed.Example("one-host")
	require.NoError(t, err)
	tb := testbed.Start(t, topo)
	h := tb.Host("h1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, h.OpenFlowTarget(), ConnOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	// Start from an empty bridge.
	require.NoError(t, c.Send(ctx, DeleteFlows(TableAll, 0, 0), DeleteGroup(GroupIDAll)))
	return &bridge{tb: tb, host: h, conn: c}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// ovsFlows returns what "ovs-ofctl --no-stats dump-flows" prints, a flow a
// line, sorted.
func (b *bridge) ovsFlows(t *testing.T) []string {
	t.Helper()
	out, err := b.host.OFCtl(ctx(t), "dump-flows", "--no-stats")
	require.NoError(t, err)
	return lines(out, "")
}

func (b *bridge) ovsGroups(t *testing.T) []string {
	t.Helper()
	out, err := b.host.OFCtl(ctx(t), "dump-groups")
	require.NoError(t, err)
	return lines(out, "OFPST_GROUP_DESC")
}

func lines(out, header string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || (header != "" && strings.HasPrefix(l, header)) {
			continue
		}
		ls = append(ls, l)
	}
	sort.Strings(ls)
	return ls
}

// libFlows dumps flows through the library and renders them.
func (b *bridge) libFlows(t *testing.T) []string {
	t.Helper()
	fs, err := b.conn.DumpFlows(ctx(t), TableAll, 0, 0)
	require.NoError(t, err)
	var ls []string
	for _, f := range fs {
		ls = append(ls, f.Flow.String())
	}
	sort.Strings(ls)
	return ls
}

func (b *bridge) libGroups(t *testing.T) []string {
	t.Helper()
	gs, err := b.conn.DumpGroups(ctx(t))
	require.NoError(t, err)
	var ls []string
	for _, g := range gs {
		ls = append(ls, g.String())
	}
	sort.Strings(ls)
	return ls
}

func strs[T interface{ String() string }](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	sort.Strings(out)
	return out
}

// TestBuilderRendersLikeOVS installs every flow and group of the builder
// table in one bundle and checks that ovs-ofctl prints each exactly as its
// String() does, and that the library reads the same back.
func TestBuilderRendersLikeOVS(t *testing.T) {
	b := newBridge(t)
	groups, flows := builderGroups(), builderFlows()
	require.GreaterOrEqual(t, len(groups)+len(flows), 30)
	var mods []Mod
	for _, g := range groups {
		mods = append(mods, g.Add())
	}
	for _, f := range flows {
		mods = append(mods, f.Add())
	}
	require.NoError(t, b.conn.Apply(ctx(t), mods...))

	assert.Equal(t, strs(flows), b.ovsFlows(t), "ovs-ofctl dump-flows prints what String() renders")
	assert.Equal(t, strs(groups), b.ovsGroups(t), "ovs-ofctl dump-groups prints what String() renders")
	assert.Equal(t, b.ovsFlows(t), b.libFlows(t), "the library reads back what ovs-ofctl sees")
	assert.Equal(t, b.ovsGroups(t), b.libGroups(t))
}

func TestFlowModsRoundTrip(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	base := func(prio uint16, cookie uint64, port uint32) *Flow {
		return NewFlow(1, prio).Cookie(cookie).Match(TCP, DstPort(ProtoTCP, uint16(prio))).Actions(OutputPort(port)).Done()
	}
	f1, f2, f3 := base(10, 0x101, 1), base(20, 0x102, 1), base(30, 0x201, 1)
	other := NewFlow(2, 5).Cookie(0x301).Match(UDP).Actions(Normal()).Done()
	require.NoError(t, b.conn.Send(c, f1.Add(), f2.Add(), f3.Add(), other.Add()))
	want := []*Flow{f1, f2, f3, other}
	assert.Equal(t, strs(want), b.ovsFlows(t))
	assert.Equal(t, strs(want), b.libFlows(t))

	// Modify strict: one flow's actions change.
	f1m := base(10, 0x101, 2)
	require.NoError(t, b.conn.Send(c, f1m.ModifyStrict()))
	want = []*Flow{f1m, f2, f3, other}
	assert.Equal(t, strs(want), b.ovsFlows(t))

	// Modify loose with a cookie mask: every TCP flow in table 1 whose
	// cookie is 0x1XX gets the new actions, f3 (0x201) does not.
	loose := NewFlow(1, 0).Cookie(0x100).Match(TCP).Actions(OutputPort(3)).Done()
	require.NoError(t, b.conn.Send(c, ModifyFlows(loose, 0xf00)))
	want = []*Flow{base(10, 0x101, 3), base(20, 0x102, 3), f3, other}
	assert.Equal(t, strs(want), b.ovsFlows(t))
	assert.Equal(t, strs(want), b.libFlows(t))

	// Filtered dumps by table and cookie.
	fs, err := b.conn.DumpFlows(c, 1, 0x200, 0xf00)
	require.NoError(t, err)
	require.Len(t, fs, 1)
	assert.Equal(t, f3.String(), fs[0].Flow.String())
	fs, err = b.conn.DumpFlows(c, 2, 0, 0)
	require.NoError(t, err)
	require.Len(t, fs, 1)

	// Delete strict, then by cookie, then by table.
	require.NoError(t, b.conn.Send(c, f2.DeleteStrict()))
	assert.Equal(t, strs([]*Flow{base(10, 0x101, 3), f3, other}), b.ovsFlows(t))
	require.NoError(t, b.conn.Send(c, DeleteFlows(TableAll, 0x100, 0xf00)))
	assert.Equal(t, strs([]*Flow{f3, other}), b.ovsFlows(t))
	require.NoError(t, b.conn.Send(c, DeleteFlows(1, 0, 0)))
	assert.Equal(t, strs([]*Flow{other}), b.ovsFlows(t))
	assert.Equal(t, strs([]*Flow{other}), b.libFlows(t))
}

func TestGroupModsRoundTrip(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	g := NewGroup(1, GroupSelect).WithSelection("hash", 0, FieldIPv4Src).
		Bucket(0, 10, OutputPort(1)).Bucket(1, 20, OutputPort(2))
	all := NewGroup(2, GroupAll).Bucket(0, 0, OutputPort(1))
	require.NoError(t, b.conn.Send(c, g.Add(), all.Add()))
	assert.Equal(t, strs([]*Group{g, all}), b.ovsGroups(t))
	assert.Equal(t, strs([]*Group{g, all}), b.libGroups(t))

	// Adding an existing group fails and names it.
	err := b.conn.Send(c, g.Add())
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrGroupExists), err.Error())
	assert.Contains(t, err.Error(), "group_mod ADD group_id=1")

	g2 := NewGroup(1, GroupSelect).WithSelection("dp_hash", 0).
		Bucket(0, 10, OutputPort(1)).Bucket(1, 20, OutputPort(2)).Bucket(2, 30, OutputPort(3))
	require.NoError(t, b.conn.Send(c, g2.Modify()))
	assert.Equal(t, strs([]*Group{g2, all}), b.ovsGroups(t))

	// OpenFlow 1.5 bucket commands on an "all" group.
	ins := NewGroup(2, GroupAll).Bucket(7, 0, OutputPort(4))
	require.NoError(t, b.conn.Send(c, InsertBuckets(ins, BucketLast)))
	withBucket := NewGroup(2, GroupAll).Bucket(0, 0, OutputPort(1)).Bucket(7, 0, OutputPort(4))
	assert.Equal(t, strs([]*Group{g2, withBucket}), b.ovsGroups(t))
	require.NoError(t, b.conn.Send(c, RemoveBucket(2, 0)))
	assert.Equal(t, strs([]*Group{g2, NewGroup(2, GroupAll).Bucket(7, 0, OutputPort(4))}), b.libGroups(t))

	require.NoError(t, b.conn.Send(c, g2.Delete()))
	assert.Len(t, b.ovsGroups(t), 1)
	require.NoError(t, b.conn.Send(c, DeleteGroup(GroupIDAll)))
	assert.Empty(t, b.ovsGroups(t))
	assert.Empty(t, b.libGroups(t))
}

// TestBundleIsAtomic: a bundle whose last message is bad changes nothing,
// and the error names the bad message.
func TestBundleIsAtomic(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	keep := NewFlow(0, 1).Cookie(0x1).Actions(Normal()).Done()
	require.NoError(t, b.conn.Send(c, keep.Add()))
	before := b.ovsFlows(t)

	var mods []Mod
	for i := 0; i < 1000; i++ {
		mods = append(mods, NewFlow(3, uint16(i+1)).Cookie(0x2).Match(TCP, DstPort(ProtoTCP, uint16(i+1))).Actions(Normal()).Done().Add())
	}
	mods = append(mods, NewGroup(5, GroupAll).Bucket(0, 0, OutputPort(1)).Add())
	bad := NewFlow(4, 9).Cookie(0xbad).Match(IP).Actions(ToGroup(99)).Done()
	mods = append(mods, bad.Add())
	err := b.conn.Apply(c, mods...)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrBadOutGroup), err.Error())
	assert.Contains(t, err.Error(), "flow_mod ADD table=4")
	assert.Contains(t, err.Error(), "cookie=0xbad")
	assert.Contains(t, err.Error(), bad.String(), "the error quotes the refused flow")
	assert.Contains(t, err.Error(), "OFPBAC_BAD_OUT_GROUP")

	assert.Equal(t, before, b.ovsFlows(t), "no flow of the failed bundle was installed")
	assert.Empty(t, b.ovsGroups(t), "no group of the failed bundle was installed")

	// The connection is still good: the same bundle without the bad flow
	// applies, and a discarded bundle changes nothing.
	require.NoError(t, b.conn.Apply(c, mods[:len(mods)-1]...))
	assert.Len(t, b.ovsFlows(t), 1001)
	bundle, err := b.conn.OpenBundle(c)
	require.NoError(t, err)
	require.NoError(t, bundle.Add(DeleteFlows(TableAll, 0, 0)))
	require.NoError(t, bundle.Discard(c))
	assert.Len(t, b.ovsFlows(t), 1001)
}

// TestSwitchErrorNamesMessage: errors outside bundles name the message too,
// including when the switch's copy is all we have.
func TestSwitchErrorNamesMessage(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	// set_field on ip_dst without an IPv4 match: the switch refuses it.
	f := NewFlow(6, 42).Cookie(0xc0ffee).Match(ARP).Actions(SetAddr(FieldIPv4Dst, FieldIPv6Dst, dcn1)).Done()
	err := b.conn.Send(c, f.Add(), NewFlow(6, 43).Actions(Normal()).Done().Add())
	require.Error(t, err)
	var serr *SwitchError
	require.True(t, errors.As(err, &serr))
	assert.Equal(t, "flow_mod ADD table=6 cookie=0xc0ffee: "+f.String(), serr.Request)
	assert.NotEmpty(t, serr.Name())
	t.Log(err)
	// The good flow after the bad one was still applied (Send is not a bundle).
	assert.Equal(t, []string{"table=6, priority=43 actions=NORMAL"}, b.ovsFlows(t))
}

func TestVersionRefused(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	_, err := b.host.VSCtl(c, "set", "bridge", testbed.Bridge, "protocols=OpenFlow10,OpenFlow13")
	require.NoError(t, err)
	_, err = Dial(c, b.host.OpenFlowTarget(), ConnOptions{})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrVersion), err.Error())
	assert.Contains(t, err.Error(), "OpenFlow 1.3")
	assert.Contains(t, err.Error(), "protocols=")
	_, err = b.host.VSCtl(c, "set", "bridge", testbed.Bridge, "protocols=OpenFlow10,OpenFlow13,OpenFlow15")
	require.NoError(t, err)
}

// TestReconnectAfterRestart: a restarted or killed ovs-vswitchd is noticed,
// the switch reconnects, and OnConnect replays the flows.
func TestReconnectAfterRestart(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	replay := NewFlow(0, 77).Cookie(0x77).Match(UDP).Actions(Normal()).Done()
	var connects atomic.Int32
	lost := make(chan error, 4)
	sw := NewSwitch(b.host.OpenFlowTarget(), SwitchOptions{
		ConnOptions: ConnOptions{EchoInterval: 500 * time.Millisecond, EchoTimeout: 500 * time.Millisecond},
		OnConnect: func(ctx context.Context, c *Conn) error {
			connects.Add(1)
			return c.Apply(ctx, replay.Add())
		},
		OnDisconnect: func(err error) { lost <- err },
		MinBackoff:   20 * time.Millisecond,
	})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	_, err := sw.Conn(c)
	require.NoError(t, err)
	assert.Contains(t, b.ovsFlows(t), replay.String())

	require.NoError(t, b.host.RestartVSwitchd(c))
	select {
	case err := <-lost:
		t.Logf("disconnect noticed: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the restart was not noticed")
	}
	require.Eventually(t, func() bool { return connects.Load() == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		out, err := b.host.OFCtl(c, "dump-flows", "--no-stats")
		return err == nil && strings.Contains(out, replay.String())
	}, 5*time.Second, 20*time.Millisecond, "OnConnect replayed the flow")

	// So is a killed one (kill -9, then started again).
	require.NoError(t, b.host.KillVSwitchd(c))
	select {
	case err := <-lost:
		t.Logf("kill noticed: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the kill was not noticed")
	}
	require.Eventually(t, func() bool { return connects.Load() == 3 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		out, err := b.host.OFCtl(c, "dump-flows", "--no-stats")
		return err == nil && strings.Contains(out, replay.String())
	}, 5*time.Second, 20*time.Millisecond, "OnConnect replayed the flow after the crash")

	// A hung switch (SIGSTOP) is detected by the echo keepalive.
	pid, ok := b.host.VSwitchdPID()
	require.True(t, ok)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	select {
	case err := <-lost:
		assert.Contains(t, err.Error(), "echo")
	case <-time.After(5 * time.Second):
		t.Error("a hung switch was not detected")
	}
	require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
	require.Eventually(t, func() bool { return connects.Load() == 4 }, 10*time.Second, 20*time.Millisecond)
}

// TestPacketOutAndIn sends a packet out through a group to a VM port and
// one to the controller, which comes back as a packet-in; group stats
// count it per bucket.
func TestPacketOutAndIn(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	ports, err := b.conn.Ports(c)
	require.NoError(t, err)
	byName := map[string]Port{}
	for _, p := range ports {
		byName[p.Name] = p
	}
	s1, ok := byName["s1"]
	require.True(t, ok, "port desc lists the VM ports: %v", ports)
	assert.False(t, s1.Down)

	pins := make(chan *PacketIn, 4)
	conn, err := Dial(c, b.host.OpenFlowTarget(), ConnOptions{PacketIn: func(p *PacketIn) { pins <- p }})
	require.NoError(t, err)
	defer conn.Close()

	g := NewGroup(3, GroupAll).Bucket(0, 0, OutputPort(s1.Number)).Bucket(1, 0, Set(Reg(2), 0x42), ResubmitTable(20))
	toController := NewFlow(20, 1).Cookie(0x20).Actions(Controller{Userdata: []byte{7}}).Done()
	require.NoError(t, conn.Send(c, g.Add(), toController.Add()))

	frame := arpRequest(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.11"))
	rxBefore := rxPackets(t, b, "s1")
	require.NoError(t, conn.Send(c, PacketOut{InPort: PortController, Actions: []Action{ToGroup(3)}, Data: frame}))
	select {
	case p := <-pins:
		assert.Equal(t, frame, p.Data[:len(frame)])
		assert.Equal(t, uint64(0x20), p.Cookie)
		assert.Equal(t, uint8(20), p.Table)
		assert.Equal(t, PortController, p.InPort())
		v, _, ok := p.Match.Value(Reg(2))
		assert.True(t, ok, "registers travel with the packet-in")
		assert.Equal(t, []byte{0, 0, 0, 0x42}, v)
	case <-time.After(5 * time.Second):
		t.Fatal("no packet-in")
	}
	require.Eventually(t, func() bool { return rxPackets(t, b, "s1") > rxBefore }, 5*time.Second, 50*time.Millisecond,
		"the VM behind the port received the packet")

	// Posted (no barrier): both come back as packet-ins, in order.
	require.NoError(t, conn.Post(PacketOut{InPort: PortController, Actions: []Action{Set(Reg(2), 0x41), ResubmitTable(20)}, Data: frame},
		PacketOut{InPort: PortController, Actions: []Action{Set(Reg(2), 0x43), ResubmitTable(20)}, Data: frame}))
	for _, want := range []byte{0x41, 0x43} {
		select {
		case p := <-pins:
			v, _, _ := p.Match.Value(Reg(2))
			assert.Equal(t, []byte{0, 0, 0, want}, v)
		case <-time.After(5 * time.Second):
			t.Fatal("no packet-in for a posted packet-out")
		}
	}
	require.Eventually(t, func() bool {
		st, err := conn.GroupStats(c, 3)
		return err == nil && len(st) == 1 && st[0].Packets == 1 && len(st[0].Buckets) == 2 && st[0].Buckets[0].Packets == 1
	}, 3*time.Second, 50*time.Millisecond, "group stats count the packet per bucket")
}

func rxPackets(t *testing.T, b *bridge, vm string) int {
	out, err := b.tb.Exec(ctx(t), vm, "cat", "/sys/class/net/eth0/statistics/rx_packets")
	require.NoError(t, err)
	var n int
	_, _ = fmtSscan(strings.TrimSpace(out), &n)
	return n
}

func arpRequest(src, dst netip.Addr) []byte {
	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0x0a, 0, 0, 1, 0x08, 0x06,
		0, 1, 0x08, 0, 6, 4, 0, 1, 0x02, 0, 0x0a, 0, 0, 1}
	f = append(f, src.AsSlice()...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	return append(f, dst.AsSlice()...)
}

func fmtSscan(s string, n *int) (int, error) { return fmt.Sscan(s, n) }

// TestEachFlowCounter: the light dump reads each flow's table, priority,
// cookie, duration and counters as the full dump does, and the registers
// it matches (reg2 reported as half of a packet register, reg5 masked
// partly: not an exact value), over a reply of several parts.
func TestEachFlowCounter(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	var mods []Mod
	for i := range 3000 {
		f := NewFlow(8, 100).Cookie(0xdb04000000000000|uint64(i)).
			Match(RegEq(0, uint32(0xd0000000+i)), RegEq(2, uint32(i%7+1)), RegMasked(5, 1, 1)).Done()
		mods = append(mods, f.Add())
	}
	mods = append(mods, NewFlow(8, 0).Cookie(0x1).Done().Add())
	require.NoError(t, b.conn.Apply(c, mods...))
	// Count packets in one flow: 3 packet-outs through table 8 with its registers.
	frame, err := hex.DecodeString("ffffffffffff0000000000010800450000140000000040ff00000a0000010a000002")
	require.NoError(t, err)
	require.NoError(t, b.conn.Send(c, PacketOut{InPort: PortController, Data: frame, Actions: []Action{
		Set(Reg(0), 0xd0000005), Set(Reg(2), 6), Set(Reg(5), 1), ResubmitTable(8), ResubmitTable(8), ResubmitTable(8)}}))
	require.NoError(t, b.conn.Barrier(c))
	full, err := b.conn.DumpFlows(c, 8, 0xdb04000000000000, 0xffff000000000000)
	require.NoError(t, err)
	require.Len(t, full, 3000)
	byCookie := map[uint64]FlowStats{}
	for _, fs := range full {
		byCookie[fs.Flow.Cookie] = fs
	}
	n := 0
	require.NoError(t, b.conn.EachFlowCounter(c, 8, 0xdb04000000000000, 0xffff000000000000, func(fc *FlowCounter) {
		n++
		fs, ok := byCookie[fc.Cookie]
		if !assert.True(t, ok, "%#x", fc.Cookie) {
			return
		}
		assert.Equal(t, fs.Flow.Table, fc.Table)
		assert.Equal(t, fs.Flow.Priority, fc.Priority)
		assert.Equal(t, fs.Packets, fc.Packets)
		assert.Equal(t, fs.Bytes, fc.Bytes)
		assert.InDelta(t, fs.Duration.Seconds(), fc.Duration.Seconds(), 1)
		i := int(fc.Cookie & 0xffff)
		r0, ok := fc.Reg(0)
		assert.True(t, ok)
		assert.Equal(t, uint32(0xd0000000+i), r0)
		r2, ok := fc.Reg(2)
		assert.True(t, ok)
		assert.Equal(t, uint32(i%7+1), r2)
		_, ok = fc.Reg(5)
		assert.False(t, ok, "reg5 is matched under a mask")
		_, ok = fc.Reg(3)
		assert.False(t, ok, "reg3 is not matched")
	}))
	assert.Equal(t, 3000, n)
	assert.Equal(t, uint64(3), byCookie[0xdb04000000000005].Packets, "the packet-outs went through flow 5")
}

// TestFlowCounterLabel: a counter reads the ct_label a flow matches,
// masked or exact, from the raw match; not a flow that does not match it.
func TestFlowCounterLabel(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	masked := Label128{Hi: 0xffffffffffff}
	tests := []struct {
		value, mask Label128
		match       bool
	}{
		{Label128{Hi: 0x1dd289a00}, masked, true},
		{Label128{Hi: 0x100d0000001, Lo: 7}, Label128{Hi: ^uint64(0), Lo: ^uint64(0)}, true},
		{Label128{}, Label128{}, false},
	}
	var mods []Mod
	for i, tt := range tests {
		fb := NewFlow(9, uint16(100+i)).Cookie(uint64(i + 1))
		if tt.match {
			v, m := tt.value.Bytes(), tt.mask.Bytes()
			fb = fb.Match(CTState(CTTrk, CTTrk), CTLabel(v, m))
		}
		mods = append(mods, fb.Done().Add())
	}
	require.NoError(t, b.conn.Apply(c, mods...))
	seen := 0
	require.NoError(t, b.conn.EachFlowCounter(c, 9, 0, 0, func(fc *FlowCounter) {
		tt := tests[fc.Cookie-1]
		seen++
		v, m, ok := fc.Label()
		assert.Equal(t, tt.match, ok, "flow %d", fc.Cookie)
		if tt.match {
			assert.Equal(t, tt.value, v)
			assert.Equal(t, tt.mask, m)
		}
	}))
	assert.Equal(t, len(tests), seen)
}

// TestFlowRemovedCounts: a flow with send_flow_rem prints as ovs-ofctl
// prints it, reads back with the flag, and, deleted in a bundle, comes
// back in a flow removed message with its final counters and its
// registers (to a connection on the management socket that asked for
// them).
func TestFlowRemovedCounts(t *testing.T) {
	b := newBridge(t)
	c := ctx(t)
	removed := make(chan FlowCounter, 4)
	var regs []uint32
	conn, err := Dial(c, b.host.OpenFlowTarget(), ConnOptions{FlowRemoved: func(fc *FlowCounter) {
		r, _ := fc.Reg(2)
		regs = append(regs, r)
		removed <- *fc
	}})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	f := NewFlow(8, 100).Cookie(0xdb04000000000001).SendFlowRemoved().Match(RegEq(2, 7)).Done()
	require.NoError(t, conn.Apply(c, f.Add()))
	assert.Equal(t, []string{"cookie=0xdb04000000000001, table=8, send_flow_rem priority=100,reg2=0x7 actions=drop"}, b.ovsFlows(t))
	fs, err := conn.DumpFlows(c, 8, 0, 0)
	require.NoError(t, err)
	require.Len(t, fs, 1)
	assert.Equal(t, f.String(), fs[0].Flow.String(), "the flag reads back")
	frame, err := hex.DecodeString("ffffffffffff0000000000010800450000140000000040ff00000a0000010a000002")
	require.NoError(t, err)
	require.NoError(t, conn.Send(c, PacketOut{InPort: PortController, Data: frame, Actions: []Action{Set(Reg(2), 7), ResubmitTable(8), ResubmitTable(8)}}))
	require.NoError(t, conn.Barrier(c))
	require.NoError(t, conn.Apply(c, f.DeleteStrict())) // in a bundle, as the agent deletes
	select {
	case fc := <-removed:
		assert.Equal(t, uint64(0xdb04000000000001), fc.Cookie)
		assert.Equal(t, uint8(8), fc.Table)
		assert.Equal(t, uint64(2), fc.Packets, "the final count")
		assert.Equal(t, []uint32{7}, regs)
	case <-time.After(15 * time.Second):
		t.Fatal("no flow removed message")
	}
}

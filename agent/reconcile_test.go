package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/ovsdb"
	"github.com/ovs-dlb/dlb/pipeline"
)

// fakeSwitch is a bridge's OpenFlow state: it keeps the flows and groups
// the mods it applies leave, as OVS would, and records every bundle.
type fakeSwitch struct {
	mu      sync.Mutex
	flows   map[string]*ofctrl.Flow
	idle    map[string]time.Duration // idle age by flow key (0 when unset)
	groups  map[uint32]*ofctrl.Group
	bundles [][]ofctrl.Mod
	dumps   int
	refuse  error // Apply fails with it when set
	log     *eventLog
}

func newFakeSwitch() *fakeSwitch {
	return &fakeSwitch{flows: map[string]*ofctrl.Flow{}, idle: map[string]time.Duration{}, groups: map[uint32]*ofctrl.Group{}, log: &eventLog{}}
}

// eventLog records, in order, what the fakes were asked to do.
type eventLog struct {
	mu sync.Mutex
	ev []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

func (l *eventLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ev...)
}

func (f *fakeSwitch) DumpFlows(_ context.Context, table uint8, cookie, mask uint64) ([]ofctrl.FlowStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dumps++
	var out []ofctrl.FlowStats
	for k, fl := range f.flows {
		if (table == ofctrl.TableAll || fl.Table == table) && fl.Cookie&mask == cookie&mask {
			out = append(out, ofctrl.FlowStats{Flow: fl, IdleAge: f.idle[k]})
		}
	}
	return out, nil
}

// EachFlowCounter: the reconciler reads no counters.
func (f *fakeSwitch) EachFlowCounter(context.Context, uint8, uint64, uint64, func(*ofctrl.FlowCounter)) error {
	return errors.New("fakeSwitch: no counters")
}

func (f *fakeSwitch) DumpGroups(context.Context) ([]*ofctrl.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*ofctrl.Group, 0, len(f.groups))
	for _, g := range f.groups {
		out = append(out, g)
	}
	return out, nil
}

func (f *fakeSwitch) Apply(_ context.Context, mods ...ofctrl.Mod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return f.refuse
	}
	f.bundles = append(f.bundles, mods)
	f.log.add("bundle")
	for _, m := range mods {
		if s, ok := m.(ofctrl.SourcedFlowMod); ok {
			m = ofctrl.FlowMod{Command: s.Command, Flow: s.Src.Flow(s.I)}
		}
		switch m := m.(type) {
		case ofctrl.FlowMod:
			switch m.Command {
			case ofctrl.FlowAdd, ofctrl.FlowModifyStrict:
				f.flows[m.Flow.Key()] = m.Flow
			case ofctrl.FlowDeleteStrict:
				delete(f.flows, m.Flow.Key())
			case ofctrl.FlowDelete:
				for k, fl := range f.flows {
					if (m.Flow.Table == ofctrl.TableAll || fl.Table == m.Flow.Table) && fl.Cookie&m.CookieMask == m.Flow.Cookie&m.CookieMask {
						delete(f.flows, k)
					}
				}
			default:
				return errors.New("fake switch: unexpected flow command " + m.String())
			}
		case ofctrl.GroupMod:
			switch m.Command {
			case ofctrl.GroupAdd, ofctrl.GroupModify:
				f.groups[m.Group.ID] = m.Group
			case ofctrl.GroupDelete:
				delete(f.groups, m.Group.ID)
			default:
				return errors.New("fake switch: unexpected group command " + m.String())
			}
		}
	}
	return nil
}

// add puts a flow on the switch as someone else (or an earlier agent) did.
func (f *fakeSwitch) add(fl *ofctrl.Flow, idle time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flows[fl.Key()] = fl
	f.idle[fl.Key()] = idle
}

func (f *fakeSwitch) modsApplied() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, b := range f.bundles {
		n += len(b)
	}
	return n
}

func (f *fakeSwitch) flowStrings() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, fl := range f.flows {
		out = append(out, fl.String())
	}
	sort.Strings(out)
	return out
}

// fakeBridge hands out its current connection (nil: none).
type fakeBridge struct {
	mu   sync.Mutex
	conn *fakeSwitch
}

func (b *fakeBridge) TryConn() (switchConn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil, errors.New("not connected")
	}
	return b.conn, nil
}

// fakePorts is a port inventory.
type fakePorts []ovsdb.Port

func (p fakePorts) Ports() []ovsdb.Port { return p }

// fakeFlusher records the flushes asked of it, in the event log it
// shares with the switch. With release set (before it is used), a flush
// tells entered and waits for release.
type fakeFlusher struct {
	mu      sync.Mutex
	batches [][]lb.Departure
	ctxErrs []error
	log     *eventLog
	release chan struct{}
	entered chan struct{}
}

func (f *fakeFlusher) flush(ctx context.Context, gone []lb.Departure) []error {
	if f.release != nil {
		f.entered <- struct{}{}
		<-f.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, gone)
	f.ctxErrs = append(f.ctxErrs, ctx.Err())
	f.log.add("flush")
	return nil
}

func (f *fakeFlusher) seen() [][]lb.Departure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]lb.Departure(nil), f.batches...)
}

var testCfg = pipeline.Config{Zone: lb.DefaultZone, MAC: net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}, Buckets: 16}

// drainKicks empties the reconciler's pending kick.
func drainKicks(r *reconciler) {
	select {
	case <-r.kick:
	default:
	}
}

// set is groups as a source delivers them: checked.
func set(t *testing.T, groups ...lb.Group) []lb.Checked {
	t.Helper()
	cs, err := lb.CheckAll(groups)
	require.NoError(t, err)
	return cs
}

// webGroup is a VIP with members 10.0.0.1.. (each with a MAC unless noMAC).
func webGroup(members int, noMAC ...string) lb.Group {
	g := lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}}}
	for i := 1; i <= members; i++ {
		ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String()
		m := lb.Member{IP: ip, MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}.String()}
		for _, n := range noMAC {
			if n == ip {
				m.MAC = ""
			}
		}
		g.Members = append(g.Members, m)
	}
	return g
}

func newTestReconciler(t *testing.T) *reconciler {
	t.Helper()
	r := newReconciler(testCfg, fakePorts{{Name: "vm1", OFPort: 5, IfaceID: "vm1", ExternalIDs: map[string]string{"iface-id": "vm1"}}},
		slog.New(slog.DiscardHandler), newMetrics())
	return r
}

// TestAdoptOnConnect: a restarted agent reads what is installed and sends
// nothing when it is right; it removes only stale flows of its own and
// leaves foreign flows and learned affinity entries alone.
func TestAdoptOnConnect(t *testing.T) {
	ctx := context.Background()
	sw := newFakeSwitch()
	sticky := webGroup(3)
	sticky.Affinity = &lb.Affinity{ClientIPTimeoutS: 60}
	groups := []lb.Group{sticky}
	first := newTestReconciler(t)
	first.setGroups(set(t, groups...), 7)
	require.NoError(t, first.onConnect(ctx, sw))
	installed := sw.modsApplied()
	require.Positive(t, installed)
	want := sw.flowStrings()

	foreign := &ofctrl.Flow{Table: 0, Priority: 10, Cookie: 0x77}
	sw.add(foreign, 0)
	svc := pipeline.ServiceIDs([]string{"web"})["web"]
	learned := &ofctrl.Flow{Table: testCfg.Table(pipeline.TableAffinity), Priority: 1, Cookie: pipeline.Cookie(pipeline.KindAffinity, svc, 0)}
	sw.add(learned, 0)
	stale := &ofctrl.Flow{Table: testCfg.Table(pipeline.TableService), Priority: 99, Cookie: pipeline.Cookie(pipeline.KindVIP, 0xabc, 0)}
	sw.add(stale, 0)

	restarted := newTestReconciler(t)
	restarted.setGroups(set(t, groups...), 7)
	require.NoError(t, restarted.onConnect(ctx, sw))
	assert.Equal(t, installed+1, sw.modsApplied(), "one mod: the stale flow's delete")
	assert.Equal(t, []ofctrl.Mod{stale.DeleteStrict()}, sw.bundles[len(sw.bundles)-1])
	assert.ElementsMatch(t, append(want, foreign.String(), learned.String()), sw.flowStrings(),
		"the foreign flow and the learned entry stay")

	// No source has spoken yet: what is installed stays, not even read.
	quiet := newTestReconciler(t)
	dumps, mods := sw.dumps, sw.modsApplied()
	require.NoError(t, quiet.onConnect(ctx, sw))
	assert.Equal(t, dumps, sw.dumps)
	assert.Equal(t, mods, sw.modsApplied())

	// A new connection (ovs-vswitchd restarted, empty): read again and
	// install everything.
	fresh := newFakeSwitch()
	require.NoError(t, restarted.onConnect(ctx, fresh))
	assert.Equal(t, 1, fresh.dumps, "the flows of the new connection are read first")
	assert.Equal(t, want, fresh.flowStrings())
}

// TestAppliedIndexRules: a version is reported applied once installed with
// every member's MAC known, or once the grace for unresolved MACs passed;
// never when the switch refused it, and a refused bundle makes the next
// reconcile read the switch again.
func TestAppliedIndexRules(t *testing.T) {
	ctx := context.Background()
	sw := newFakeSwitch()
	r := newTestReconciler(t)
	r.grace = 300 * time.Millisecond
	var applied []uint64
	r.onApplied = func(v uint64) { applied = append(applied, v) }
	var asked map[netip.Addr]netip.Addr
	r.resolve = func(m map[netip.Addr]netip.Addr) { asked = m }

	r.setGroups(set(t, webGroup(2)), 10)
	require.NoError(t, r.reconcile(ctx, sw))
	assert.Equal(t, []uint64{10}, applied, "every MAC known: applied at once")
	require.NoError(t, r.reconcile(ctx, sw))
	assert.Equal(t, []uint64{10}, applied, "reported once")

	// A member without a MAC: not applied until the resolver learns it.
	member := netip.MustParseAddr("10.0.0.3")
	r.setGroups(set(t, webGroup(3, member.String())), 11)
	require.NoError(t, r.reconcile(ctx, sw))
	assert.Equal(t, []uint64{10}, applied)
	assert.Equal(t, map[netip.Addr]netip.Addr{member: netip.MustParseAddr("10.96.0.10")}, asked, "the resolver asks as the VIP")
	drainKicks(r)
	r.learnMAC(member, net.HardwareAddr{2, 0, 0, 0, 0, 3})
	select {
	case <-r.kick:
	default:
		t.Fatal("a new MAC asks for a reconcile")
	}
	require.NoError(t, r.reconcile(ctx, sw))
	assert.Equal(t, []uint64{10, 11}, applied)
	assert.Empty(t, asked)

	// A member that never answers: applied once the grace passed.
	silent := netip.MustParseAddr("10.0.0.4")
	r.setGroups(set(t, webGroup(4, silent.String())), 12)
	delivered := time.Now()
	require.NoError(t, r.reconcile(ctx, sw))
	assert.Equal(t, []uint64{10, 11}, applied)
	// Reconcile on every kick, as run does (an earlier version's grace
	// timer may kick first), until the grace's end reports the version.
	deadline := time.After(5 * time.Second)
	for len(applied) < 3 {
		select {
		case <-r.kick:
		case <-deadline:
			t.Fatal("the grace's end asks for a reconcile that reports the version")
		}
		require.NoError(t, r.reconcile(ctx, sw))
	}
	assert.Equal(t, []uint64{10, 11, 12}, applied)
	assert.GreaterOrEqual(t, time.Since(delivered), r.grace, "not before the grace ended")

	// The switch refuses the bundle: not applied; the next reconcile
	// reads the switch again before diffing.
	sw.refuse = errors.New("OFPBFC_MSG_FAILED")
	r.setGroups(set(t, webGroup(2)), 13)
	require.Error(t, r.reconcile(ctx, sw))
	assert.Equal(t, []uint64{10, 11, 12}, applied)
	assert.Equal(t, 1.0, testutil.ToFloat64(r.metrics.errors))
	sw.refuse = nil
	dumps := sw.dumps
	require.NoError(t, r.reconcile(ctx, sw))
	assert.Greater(t, sw.dumps, dumps, "read again after a refusal")
	assert.Equal(t, []uint64{10, 11, 12, 13}, applied)
}

// TestAffinityExpiry: learned entries of a group whose timeout OpenFlow
// cannot hold are deleted by the agent once idle for longer than it;
// others stay; a group that drops affinity loses its entries at the next
// reconcile.
func TestAffinityExpiry(t *testing.T) {
	ctx := context.Background()
	sw := newFakeSwitch()
	r := newTestReconciler(t)
	day, short := webGroup(2), webGroup(2)
	day.Affinity = &lb.Affinity{ClientIPTimeoutS: lb.MaxAffinityTimeout}
	short.Name, short.VIP = "short", "10.96.0.11"
	short.Affinity = &lb.Affinity{ClientIPTimeoutS: 60}
	r.setGroups(set(t, day, short), 1)
	require.NoError(t, r.reconcile(ctx, sw))

	ids := pipeline.ServiceIDs([]string{"web", "short"})
	table := testCfg.Table(pipeline.TableAffinity)
	entry := func(svc uint32, client byte, idle time.Duration) *ofctrl.Flow {
		f := &ofctrl.Flow{Table: table, Priority: uint16(client), Cookie: pipeline.Cookie(pipeline.KindAffinity, svc, 0)}
		sw.add(f, idle)
		return f
	}
	idleDay := entry(ids["web"], 1, 25*time.Hour)
	freshDay := entry(ids["web"], 2, time.Hour)
	idleShort := entry(ids["short"], 3, 25*time.Hour) // OpenFlow's idle timeout expires these

	n, err := r.expireAffinity(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	flows := sw.flowStrings()
	assert.NotContains(t, flows, idleDay.String())
	assert.Contains(t, flows, freshDay.String())
	assert.Contains(t, flows, idleShort.String(), "not the agent's to expire")

	// The day-long group drops affinity: its entries go with the next
	// bundle; the other group's stay.
	day.Affinity = nil
	r.setGroups(set(t, day, short), 2)
	require.NoError(t, r.reconcile(ctx, sw))
	flows = sw.flowStrings()
	assert.NotContains(t, flows, freshDay.String())
	assert.Contains(t, flows, idleShort.String())
	n, err = r.expireAffinity(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "no group left with a day-long timeout")
}

// TestDepartedMembersFlushed: a member that leaves is flushed after the
// bundle that stopped new connections to it; a draining member is not; a
// member back before its flush ran is not; and flushes handed over before
// shutdown still run, with a live context, before runFlushes returns.
func TestDepartedMembersFlushed(t *testing.T) {
	ctx := context.Background()
	sw := newFakeSwitch()
	r := newTestReconciler(t)
	fl := &fakeFlusher{log: sw.log}
	r.flusher = fl
	r.setGroups(set(t, webGroup(3)), 1)
	require.NoError(t, r.reconcile(ctx, sw))

	// s2 leaves.
	all := webGroup(3)
	r.setGroups(set(t, lb.Group{Name: "web", VIP: "10.96.0.10", Ports: all.Ports, Members: []lb.Member{all.Members[0], all.Members[2]}}), 2)
	require.NoError(t, r.reconcile(ctx, sw))
	r.flushPending(ctx)
	require.Len(t, fl.seen(), 1)
	assert.Equal(t, []lb.Departure{{Group: "web", VIP: netip.MustParseAddr("10.96.0.10"), Proto: lb.ProtoTCP, Port: 80,
		Member: netip.MustParseAddr("10.0.0.2"), TargetPort: 8080}}, fl.seen()[0])
	assert.Equal(t, []string{"bundle", "bundle", "flush"}, sw.log.get(), "flushed after the bundle that took it out")

	// s1 drains: no flush.
	g := webGroup(3)
	g.Members[0].State = lb.StateDraining
	r.setGroups(set(t, g), 3)
	require.NoError(t, r.reconcile(ctx, sw))
	r.flushPending(ctx)
	assert.Len(t, fl.seen(), 1, "a draining member is not flushed")

	// s3 leaves, and is back before its flush runs: not flushed.
	g2 := g
	g2.Members = []lb.Member{g.Members[0], g.Members[1]}
	r.setGroups(set(t, g2), 4) // s3 gone
	require.NoError(t, r.reconcile(ctx, sw))
	r.setGroups(set(t, g), 5) // s3 back
	require.NoError(t, r.reconcile(ctx, sw))
	r.flushPending(ctx)
	assert.Len(t, fl.seen(), 1, "a member back in its group is not flushed")

	// Shutdown with a departure handed over: flushed first, with a
	// context that shutdown did not cancel.
	fl.release, fl.entered = make(chan struct{}), make(chan struct{}, 1)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.runFlushes(runCtx); close(done) }()
	r.setGroups(nil, 6) // the whole group goes
	require.NoError(t, r.reconcile(ctx, sw))
	select {
	case <-fl.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the flush did not start")
	}
	stop()
	select {
	case <-done:
		t.Fatal("runFlushes returned with a flush in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(fl.release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("runFlushes did not return after its last flush")
	}
	seen := fl.seen()
	require.Len(t, seen, 2)
	assert.Len(t, seen[1], 3, "every member of the group that went")
	assert.NoError(t, fl.ctxErrs[1], "the flush's context outlives the shutdown")
}

// TestRunReconcilesOnChanges drives run against a bridge that connects
// late: a change delivered while disconnected is installed once the
// connection is there.
func TestRunReconcilesOnChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	br := &fakeBridge{}
	r := newTestReconciler(t)
	done := make(chan struct{})
	go func() { r.run(ctx, br); close(done) }()
	r.setGroups(set(t, webGroup(2)), 1)
	time.Sleep(20 * time.Millisecond)
	sw := newFakeSwitch()
	br.mu.Lock()
	br.conn = sw
	br.mu.Unlock()
	require.Eventually(t, func() bool { return sw.modsApplied() > 0 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	<-done
}

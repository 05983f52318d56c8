package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/client"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/pipeline"
)

// fakeResolver names commit flows from a table.
type fakeResolver struct {
	refs map[commitKey]memberRef
}

func (f *fakeResolver) resolveCommits(keys []commitKey) []memberRef {
	out := make([]memberRef, len(keys))
	for i, k := range keys {
		out[i] = f.refs[k]
	}
	return out
}

func (f *fakeResolver) commitChanges() uint64 { return 0 }

func commitFlow(cookie uint64, index uint16, packets uint64, age time.Duration) flowCount {
	return flowCount{key: commitKey{cookie, index}, role: pipeline.RoleCommit, tally: tally{packets: packets, bytes: 70 * packets}, duration: age}
}

// countFlow is a counting flow's read (cookie: the member's commit cookie).
func countFlow(cookie uint64, role pipeline.Role, index uint16, packets, bytes uint64, age time.Duration) flowCount {
	return flowCount{key: commitKey{cookie, index}, role: role, tally: tally{packets, bytes}, duration: age}
}

// TestMemberStatsCountAcrossResets: the counters only grow, whatever the
// flows do between two reads (made again, modified for another member,
// gone), and each read brings what the flows gained, once.
func TestMemberStatsCountAcrossResets(t *testing.T) {
	web := pipeline.Cookie(pipeline.KindMember, 7, 1)
	s1 := memberRef{"web", "tcp/80", netip.MustParseAddrPort("10.0.0.11:0")}
	s2 := memberRef{"web", "tcp/80", netip.MustParseAddrPort("10.0.0.12:0")}
	s4 := memberRef{"web", "tcp/80", netip.MustParseAddrPort("10.0.0.14:0")}
	type read struct {
		name    string
		flows   []flowCount
		refs    map[commitKey]memberRef // nil: as before
		changes uint64
		want    map[memberRef]uint64
	}
	k1, k2 := commitKey{web, 1}, commitKey{web, 2}
	reads := []read{
		{"agent start: the flows' counts since they were made", []flowCount{commitFlow(web, 1, 5, time.Hour), commitFlow(web, 2, 3, time.Hour)},
			map[commitKey]memberRef{k1: s1, k2: s2}, 1, map[memberRef]uint64{s1: 5, s2: 3}},
		{"what they gained", []flowCount{commitFlow(web, 1, 9, time.Hour), commitFlow(web, 2, 3, time.Hour)},
			nil, 1, map[memberRef]uint64{s1: 9, s2: 3}},
		{"the switch restarted: made again since the last read", []flowCount{commitFlow(web, 1, 2, 100*time.Millisecond), commitFlow(web, 2, 1, 100*time.Millisecond)},
			nil, 1, map[memberRef]uint64{s1: 11, s2: 4}},
		{"a count that went down was made again", []flowCount{commitFlow(web, 1, 1, time.Hour), commitFlow(web, 2, 6, time.Hour)},
			nil, 1, map[memberRef]uint64{s1: 12, s2: 9}},
		{"s2 left and s4 took its index: the modified flow keeps s2's count, s4 starts from it", []flowCount{commitFlow(web, 1, 4, time.Hour), commitFlow(web, 2, 10, time.Hour)},
			map[commitKey]memberRef{k1: s1, k2: s4}, 2, map[memberRef]uint64{s1: 15, s4: 0}},
		{"s4's own", []flowCount{commitFlow(web, 1, 4, time.Hour), commitFlow(web, 2, 13, time.Hour)},
			nil, 2, map[memberRef]uint64{s1: 15, s4: 3}},
		{"another change that leaves both (a MAC): counted on", []flowCount{commitFlow(web, 1, 6, time.Hour), commitFlow(web, 2, 14, time.Hour)},
			nil, 3, map[memberRef]uint64{s1: 17, s4: 4}},
		{"s1's flow gone: so is its counter", []flowCount{commitFlow(web, 2, 15, time.Hour)},
			nil, 4, map[memberRef]uint64{s4: 5}},
		{"a flow the reconciler did not make is not counted", []flowCount{commitFlow(web, 2, 15, time.Hour), commitFlow(web, 3, 50, time.Hour)},
			nil, 4, map[memberRef]uint64{s4: 5}},
	}
	res := &fakeResolver{}
	reg := prometheus.NewRegistry()
	s := newMemberStats(testCfg, 100, res, slog.New(slog.DiscardHandler), reg)
	now := time.Unix(1000, 0)
	for _, r := range reads {
		if r.refs != nil {
			res.refs = r.refs
		}
		now = now.Add(time.Second)
		s.observe(r.flows, now, r.changes)
		assert.Equal(t, r.want, s.totals(), r.name)
	}
	assert.Equal(t, 1, testutil.CollectAndCount(s, "dlb_agent_member_new_connections_total"))
	assert.Equal(t, 6, testutil.CollectAndCount(s), "new connections, active ones, and packets and bytes each way")
	assert.NoError(t, testutil.CollectAndCompare(s, strings.NewReader(`
# HELP dlb_agent_member_new_connections_total New connections this host sent to a member through a VIP port of a group (the packets of the member's commit flow; exported up to member_metrics_limit members).
# TYPE dlb_agent_member_new_connections_total counter
dlb_agent_member_new_connections_total{group="web",member="10.0.0.14",port="tcp/80"} 5
`), "dlb_agent_member_new_connections_total"))
}

// TestMemberStatsLimit: past member_metrics_limit, /metrics exports no
// member's counter (and says how many there are).
func TestMemberStatsLimit(t *testing.T) {
	web := pipeline.Cookie(pipeline.KindMember, 7, 1)
	res := &fakeResolver{refs: map[commitKey]memberRef{
		{web, 1}: {"web", "tcp/80", netip.MustParseAddrPort("10.0.0.11:0")}, {web, 2}: {"web", "tcp/80", netip.MustParseAddrPort("10.0.0.12:8080")}}}
	for _, tc := range []struct {
		limit, want int
	}{{2, 2}, {1, 0}, {0, 0}} {
		s := newMemberStats(testCfg, tc.limit, res, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		s.observe([]flowCount{commitFlow(web, 1, 1, time.Hour), commitFlow(web, 2, 1, time.Hour)}, time.Now(), 0)
		assert.Equal(t, tc.want, testutil.CollectAndCount(s, "dlb_agent_member_new_connections_total"), "limit %d", tc.limit)
		assert.Equal(t, 2.0, testutil.ToFloat64(s.gauge))
	}
}

// TestReportsSendWhatChanged: the first report has every member; later
// ones what changed since the controller took it; a report not delivered
// goes with the next; a refused one, or the controller asking, makes the
// next one full.
func TestReportsSendWhatChanged(t *testing.T) {
	web := pipeline.Cookie(pipeline.KindMember, 7, 1)
	res := &fakeResolver{refs: map[commitKey]memberRef{
		{web, 1}: {"web", "tcp/80", netip.MustParseAddrPort("10.0.0.11:0")}, {web, 2}: {"web", "tcp/80", netip.MustParseAddrPort("10.0.0.12:0")}}}
	s := newMemberStats(testCfg, 100, res, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	var got []wire.StatsReport
	var answer wire.StatsAnswer
	var fail error
	s.report = func(_ context.Context, r wire.StatsReport) (wire.StatsAnswer, error) {
		got = append(got, r)
		return answer, fail
	}
	now := time.Unix(1000, 0)
	step := func(a, b uint64) wire.StatsReport {
		now = now.Add(time.Second)
		s.observe([]flowCount{commitFlow(web, 1, a, time.Hour), commitFlow(web, 2, b, time.Hour)}, now, 0)
		n := len(got)
		s.send(context.Background(), time.Second)
		if len(got) == n {
			return wire.StatsReport{}
		}
		return got[len(got)-1]
	}
	count := func(m string, n uint64) wire.MemberCount {
		return wire.MemberCount{Group: "web", Port: "tcp/80", Member: m, NewConnections: n}
	}
	byMember := func(r wire.StatsReport) map[string]uint64 {
		out := map[string]uint64{}
		for _, m := range r.Members {
			out[m.Member] = m.NewConnections
		}
		return out
	}
	r := step(5, 3)
	assert.True(t, r.Full)
	assert.Equal(t, map[string]uint64{"10.0.0.11": 5, "10.0.0.12": 3}, byMember(r))
	r = step(6, 3)
	assert.False(t, r.Full)
	assert.Equal(t, []wire.MemberCount{count("10.0.0.11", 6)}, r.Members, "what changed")
	r = step(6, 3)
	assert.False(t, r.Full)
	assert.Empty(t, r.Members, "nothing changed: an empty report (the host is alive)")
	fail = errors.New("controller down")
	step(7, 3)
	fail = nil
	assert.Equal(t, []wire.MemberCount{count("10.0.0.11", 8)}, step(8, 3).Members, "not delivered: sent with the next")
	fail = &client.APIError{Status: 422, Message: "invalid statistics report"}
	step(8, 4)
	fail = nil
	r = step(8, 4)
	assert.True(t, r.Full, "refused: everything again")
	assert.Len(t, r.Members, 2)
	answer = wire.StatsAnswer{WantFull: true}
	step(9, 4)
	answer = wire.StatsAnswer{}
	assert.True(t, step(9, 4).Full, "asked for everything")
}

// TestRemovedFlowsFinalCount: a commit flow the switch removed brings its
// final count, kept and reported until the controller took it, then
// dropped; made again, it counts anew.
func TestRemovedFlowsFinalCount(t *testing.T) {
	web := pipeline.Cookie(pipeline.KindMember, 7, 1)
	k3 := commitKey{web, 3}
	res := &fakeResolver{refs: map[commitKey]memberRef{k3: {"web", "tcp/80", netip.MustParseAddrPort("10.0.0.13:0")}}}
	s := newMemberStats(testCfg, 100, res, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	got := captureReports(s)
	now := time.Unix(1000, 0)
	s.observe([]flowCount{commitFlow(web, 3, 150, time.Hour)}, now, 0)
	s.send(context.Background(), time.Second)
	s.final(commitFlow(web, 3, 155, time.Hour)) // drained: 5 more since the read
	now = now.Add(time.Second)
	s.observe(nil, now, 1) // the flow is gone
	assert.Equal(t, map[memberRef]uint64{res.refs[k3]: 155}, s.totals(), "kept until reported")
	s.send(context.Background(), time.Second)
	require.Len(t, (*got), 2)
	assert.Equal(t, uint64(155), (*got)[1].Members[0].NewConnections)
	now = now.Add(time.Second)
	s.observe(nil, now, 1)
	assert.Empty(t, s.totals(), "reported: dropped")

	// Made and removed between two reads: named at the next one.
	s.final(commitFlow(web, 3, 7, time.Hour))
	now = now.Add(time.Second)
	s.observe(nil, now, 2)
	assert.Equal(t, map[memberRef]uint64{res.refs[k3]: 7}, s.totals(), "never read, still counted")
	s.send(context.Background(), time.Second)
	require.Len(t, (*got), 3)
	assert.Equal(t, uint64(7), (*got)[2].Members[0].NewConnections)
}

// TestMemberStatsEachWay: a member's packets and bytes each way come from
// its counting flows, kept as counters like its new connections; a
// draining member (its commit flow removed, its counting flows still
// there) keeps its new connections while its connections go on counting;
// a member that takes a departed one's index starts from the flows' counts
// there; the counting flows made again (the switch restarted) count anew.
func TestMemberStatsEachWay(t *testing.T) {
	web := pipeline.Cookie(pipeline.KindMember, 7, 1)
	s1 := memberRef{"web", "tcp/80", netip.MustParseAddrPort("10.0.0.11:0")}
	s4 := memberRef{"web", "tcp/80", netip.MustParseAddrPort("10.0.0.14:0")}
	k1 := commitKey{web, 1}
	res := &fakeResolver{refs: map[commitKey]memberRef{k1: s1}}
	s := newMemberStats(testCfg, 100, res, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	got := captureReports(s)
	now := time.Unix(1000, 0)
	read := func(changes uint64, flows ...flowCount) counts {
		now = now.Add(time.Second)
		s.observe(flows, now, changes)
		s.send(context.Background(), time.Second)
		return s.countsOf()[res.refs[k1]]
	}
	to, from := pipeline.RoleCountTo, pipeline.RoleCountFrom
	h := time.Hour
	assert.Equal(t, counts{New: 4, To: tally{40, 4000}, From: tally{30, 9000}},
		read(1, commitFlow(web, 1, 4, h), countFlow(web, to, 1, 40, 4000, h), countFlow(web, from, 1, 30, 9000, h)), "since the flows were made")
	assert.Equal(t, counts{New: 5, To: tally{50, 5000}, From: tally{35, 9500}},
		read(1, commitFlow(web, 1, 5, h), countFlow(web, to, 1, 50, 5000, h), countFlow(web, from, 1, 35, 9500, h)), "what they gained")
	// Drained: the commit flow goes with its final count; the connections
	// go on.
	s.final(commitFlow(web, 1, 6, h))
	assert.Equal(t, counts{New: 6, To: tally{60, 6000}, From: tally{45, 9900}},
		read(2, countFlow(web, to, 1, 60, 6000, h), countFlow(web, from, 1, 45, 9900, h)), "a draining member keeps its new connections")
	last := (*got)[len((*got))-1].Members
	require.Len(t, last, 1)
	assert.Equal(t, wire.MemberCount{Group: "web", Port: "tcp/80", Member: "10.0.0.11", NewConnections: 6,
		PacketsToMember: 60, BytesToMember: 6000, PacketsFromMember: 45, BytesFromMember: 9900}, last[0], "reported whole")
	assert.Equal(t, counts{New: 6, To: tally{62, 6200}, From: tally{47, 9950}},
		read(2, countFlow(web, to, 1, 2, 200, 100*time.Millisecond), countFlow(web, from, 1, 2, 50, 100*time.Millisecond)), "made again: counted anew")
	// s1 left, s4 took its index: the counting flows (the same match)
	// stay, and counted for s1 until now.
	res.refs = map[commitKey]memberRef{k1: s4}
	now = now.Add(time.Second)
	s.observe([]flowCount{commitFlow(web, 1, 0, 100*time.Millisecond), countFlow(web, to, 1, 3, 300, h), countFlow(web, from, 1, 3, 60, h)}, now, 3)
	assert.Equal(t, map[memberRef]counts{s4: {}}, s.countsOf(), "s4 starts from the flows' counts")
	now = now.Add(time.Second)
	s.observe([]flowCount{commitFlow(web, 1, 1, h), countFlow(web, to, 1, 5, 500, h), countFlow(web, from, 1, 4, 70, h)}, now, 3)
	assert.Equal(t, map[memberRef]counts{s4: {New: 1, To: tally{2, 200}, From: tally{1, 10}}}, s.countsOf())
}

// captureReports makes s report into the slice returned, every report
// taken.
func captureReports(s *memberStats) *[]wire.StatsReport {
	var got []wire.StatsReport
	s.report = func(_ context.Context, r wire.StatsReport) (wire.StatsAnswer, error) {
		got = append(got, r)
		return wire.StatsAnswer{}, nil
	}
	return &got
}

package health

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

func checked(name, vip string, hc *lb.HealthCheck, scope *lb.Scope, ips ...string) lb.Group {
	g := lb.Group{Name: name, VIP: vip, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}}, HealthCheck: hc, Scope: scope}
	for _, ip := range ips {
		g.Members = append(g.Members, lb.Member{IP: ip})
	}
	return g
}

var threeHosts = []Host{
	{Name: "h1", Alive: true, Ports: []wire.HostPort{{Name: "s1", IfaceID: "s1", IPs: []string{"10.0.0.11"}}, {Name: "t1", IfaceID: "t1", IPs: []string{"10.0.0.50"}}}},
	{Name: "h2", Alive: true, Ports: []wire.HostPort{{Name: "s2", IfaceID: "s2", IPs: []string{"10.0.0.12"}}, {Name: "t2", IfaceID: "t2", IPs: []string{"10.0.0.50"}}}},
	{Name: "h3", Ports: []wire.HostPort{{Name: "s3", IfaceID: "s3", IPs: []string{"10.0.0.13"}}}},
}

func TestAssign(t *testing.T) {
	tcp := &lb.HealthCheck{Type: "tcp"}
	where := func(out map[string][]wire.ProbeTarget) map[string]string {
		m := map[string]string{}
		for host, ts := range out {
			for _, tg := range ts {
				for _, ref := range tg.Members {
					m[ref.Group+"/"+ref.Member] = host + ":" + tg.Port
				}
			}
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		groups []lb.Group
		want   map[string]string
	}{
		{name: "each member by the host its port is on",
			groups: []lb.Group{checked("web", "10.96.0.10", tcp, nil, "10.0.0.11", "10.0.0.12", "10.0.0.13")},
			want:   map[string]string{"web/10.0.0.11": "h1:s1", "web/10.0.0.12": "h2:s2", "web/10.0.0.13": "h3:s3"}},
		{name: "no health check, nothing to probe",
			groups: []lb.Group{checked("web", "10.96.0.10", nil, nil, "10.0.0.11")}, want: map[string]string{}},
		{name: "an address on two hosts: the scope's port wins",
			groups: []lb.Group{checked("a", "10.96.0.10", tcp, &lb.Scope{IfaceIDs: []string{"t2"}}, "10.0.0.50")},
			want:   map[string]string{"a/10.0.0.50": "h2:t2"}},
		{name: "an address on two hosts, no scope: the first host",
			groups: []lb.Group{checked("a", "10.96.0.10", tcp, nil, "10.0.0.50")},
			want:   map[string]string{"a/10.0.0.50": "h1:t1"}},
		{name: "a member on no host: an alive host, no port",
			groups: []lb.Group{checked("a", "10.96.0.10", tcp, nil, "192.0.2.7")},
			want:   map[string]string{"a/192.0.2.7": rendezvous([]string{"h1", "h2"}, "192.0.2.7/") + ":"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, where(Assign(tc.groups, threeHosts)))
		})
	}

	t.Run("one target for groups probing alike", func(t *testing.T) {
		out := Assign([]lb.Group{
			checked("a", "10.96.0.10", tcp, nil, "10.0.0.11"),
			checked("b", "10.96.0.10", tcp, nil, "10.0.0.11"),
			checked("c", "10.96.0.10", &lb.HealthCheck{Type: "http"}, nil, "10.0.0.11"),
		}, threeHosts)
		require.Len(t, out["h1"], 2)
		var refs [][]wire.MemberRef
		for _, tg := range out["h1"] {
			refs = append(refs, tg.Members)
			assert.Equal(t, "10.96.0.10", tg.Source)
			assert.Equal(t, 8080, tg.Probe.Port)
		}
		assert.ElementsMatch(t, [][]wire.MemberRef{{{Group: "a", Member: "10.0.0.11"}, {Group: "b", Member: "10.0.0.11"}}, {{Group: "c", Member: "10.0.0.11"}}}, refs)
	})
	t.Run("nobody alive for a member on no host", func(t *testing.T) {
		out := Assign([]lb.Group{checked("a", "10.96.0.10", tcp, nil, "192.0.2.7")}, []Host{{Name: "h3"}})
		assert.Empty(t, out)
	})
}

func TestRegistry(t *testing.T) {
	r := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	r.started = now
	groups := []lb.Group{checked("web", "10.96.0.10", &lb.HealthCheck{Type: "tcp"}, nil, "10.0.0.11", "10.0.0.12", "192.0.2.9")}
	r.Update(groups, []Host{threeHosts[0], threeHosts[1]})

	first, ok, _ := r.Next("h1", 0, true)
	require.True(t, ok)
	assert.True(t, first.Full)
	assert.True(t, first.Settling)
	require.Len(t, first.Targets, 1)
	assert.Equal(t, "s1", first.Targets[0].Port)
	for _, h := range first.Health {
		assert.Equal(t, lb.HealthUnknown, h.State, "fail closed until the first probe")
	}
	assert.Len(t, first.Health, 3)

	// A host may report only its own targets; a bad report changes nothing.
	err := r.Report("h2", &wire.HealthReport{Results: []wire.TargetHealth{{Target: first.Targets[0].ID, State: lb.HealthUp, Since: now}}})
	var re *ReportError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "results[0].target", re.Field)
	err = r.Report("h1", &wire.HealthReport{Results: []wire.TargetHealth{{Target: first.Targets[0].ID, State: lb.HealthHeld, Since: now}}})
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "results[0].held_until", re.Field)
	_, ok, _ = r.Next("h1", first.Index, false)
	assert.False(t, ok, "nothing changed")

	_, _, changed := r.Next("h1", first.Index, false)
	require.NoError(t, r.Report("h1", &wire.HealthReport{Results: []wire.TargetHealth{{Target: first.Targets[0].ID, State: lb.HealthUp, Since: now, Last: &wire.ProbeResult{At: now, OK: true, Detail: "syn-ack"}}}}))
	select {
	case <-changed:
	default:
		t.Fatal("a change wakes the watches")
	}
	line, ok, _ := r.Next("h3", first.Index, false)
	require.True(t, ok)
	assert.Nil(t, line.Targets, "h3's targets did not change")
	assert.Equal(t, []wire.MemberHealth{{Group: "web", Member: "10.0.0.11", State: lb.HealthUp}}, line.Health)

	gh := r.Group("web")
	require.Len(t, gh, 3)
	assert.Equal(t, "h1", gh[0].Prober)
	assert.Equal(t, "syn-ack", gh[0].Last.Detail)

	// The member leaves the group: forgotten.
	groups[0].Members = groups[0].Members[1:]
	r.Update(groups, []Host{threeHosts[0], threeHosts[1]})
	assert.Len(t, r.Group("web"), 2)
	line, _, _ = r.Next("h1", line.Index, false)
	assert.Equal(t, []wire.ProbeTarget{}, line.Targets, "h1 probes nothing now")

	now = now.Add(SettleFor)
	assert.False(t, r.Settling())
}

// TestReportLogsEachChangeOnce: a member's state change is logged once
// (with its group, member, states, reason and prober) and counted; the
// same report again, or one changing only the last probe, logs nothing.
func TestReportLogsEachChangeOnce(t *testing.T) {
	var buf bytes.Buffer
	r := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})))
	groups := []lb.Group{
		checked("web", "10.96.0.10", &lb.HealthCheck{Type: "tcp"}, nil, "10.0.0.11"),
		checked("api", "10.96.0.10", &lb.HealthCheck{Type: "tcp"}, nil, "10.0.0.11"),
	}
	r.Update(groups, []Host{threeHosts[0]})
	first, _, _ := r.Next("h1", 0, true)
	require.Len(t, first.Targets, 1, "both groups' member is one target")
	id := first.Targets[0].ID
	now := time.Now().UTC()
	report := func(state, reason, detail string) *wire.HealthReport {
		res := wire.TargetHealth{Target: id, State: state, Since: now, Reason: reason, Last: &wire.ProbeResult{At: now, OK: state == lb.HealthUp, Detail: detail}}
		if state == lb.HealthHeld {
			until := now.Add(10 * time.Second)
			res.HeldUntil = &until
		}
		return &wire.HealthReport{Results: []wire.TargetHealth{res}}
	}
	for _, tc := range []struct {
		name    string
		rep     *wire.HealthReport
		logged  []string
		changes uint64
	}{
		{name: "up", rep: report(lb.HealthUp, "first probe passed: syn-ack", "syn-ack in 0.2ms"), changes: 1, logged: []string{
			`level=INFO msg="member health" group=api member=10.0.0.11 state=up was=unknown reason="first probe passed: syn-ack" prober=h1`,
			`level=INFO msg="member health" group=web member=10.0.0.11 state=up was=unknown reason="first probe passed: syn-ack" prober=h1`,
		}},
		{name: "the same again", rep: report(lb.HealthUp, "first probe passed: syn-ack", "syn-ack in 0.2ms"), changes: 1},
		{name: "a new last probe, same state", rep: report(lb.HealthUp, "first probe passed: syn-ack", "syn-ack in 0.3ms"), changes: 1},
		{name: "down", rep: report(lb.HealthDown, "2 probes failed: refused (rst)", "refused (rst)"), changes: 2, logged: []string{
			`level=INFO msg="member health" group=api member=10.0.0.11 state=down was=up reason="2 probes failed: refused (rst)" prober=h1`,
			`level=INFO msg="member health" group=web member=10.0.0.11 state=down was=up reason="2 probes failed: refused (rst)" prober=h1`,
		}},
		{name: "down again, in a full report", rep: func() *wire.HealthReport {
			rep := report(lb.HealthDown, "2 probes failed: refused (rst)", "refused (rst)")
			rep.Full = true
			return rep
		}(), changes: 2},
		{name: "held", rep: report(lb.HealthHeld, "flapping", "syn-ack"), changes: 3, logged: []string{
			`level=INFO msg="member health" group=api member=10.0.0.11 state=held was=down reason=flapping prober=h1`,
			`level=INFO msg="member health" group=web member=10.0.0.11 state=held was=down reason=flapping prober=h1`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			require.NoError(t, r.Report("h1", tc.rep))
			var lines []string
			if s := strings.TrimSpace(buf.String()); s != "" {
				lines = strings.Split(s, "\n")
			}
			slices.Sort(lines)
			assert.Equal(t, tc.logged, lines)
			for _, m := range r.States() {
				assert.Equal(t, tc.changes, m.Changes, "%s/%s", m.Group, m.Member)
			}
		})
	}

	t.Run("no host can probe it any more", func(t *testing.T) {
		buf.Reset()
		r.Update(groups[:1], nil)
		assert.Equal(t, `level=INFO msg="member health" group=web member=10.0.0.11 state=unknown was=held reason="no host can probe it: no agent is connected" prober=""`,
			strings.TrimSpace(buf.String()))
		assert.Equal(t, []MemberState{{Group: "web", Member: "10.0.0.11", State: lb.HealthUnknown, Changes: 4}}, r.States(), "api's member is forgotten")
		buf.Reset()
		r.Update(groups[:1], nil)
		assert.Empty(t, buf.String(), "still unknown: nothing to log")
	})
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

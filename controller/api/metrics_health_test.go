package api

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/health"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// TestHealthMetrics: /metrics has each health-checked member's state as a
// state set and its changes, read from the registry at scrape time: a
// member going down shows down 1, a repeated report changes nothing, a
// deleted group's members are gone; past the limit, none.
func TestHealthMetrics(t *testing.T) {
	h := health.New(slog.New(slog.DiscardHandler))
	reg := prometheus.NewRegistry()
	reg.MustRegister(newHealthCollector(h, 10, slog.New(slog.DiscardHandler)))
	web := lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, HealthCheck: &lb.HealthCheck{Type: "tcp"},
		Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12", Port: 8080}}}
	hosts := []health.Host{{Name: "h1", Alive: true, Ports: []wire.HostPort{{Name: "s1", IfaceID: "s1", IPs: []string{"10.0.0.11", "10.0.0.12"}}}}}
	h.Update([]lb.Group{web}, hosts)
	line, _, _ := h.Next("h1", 0, true)
	require.Len(t, line.Targets, 2)
	target := map[string]string{}
	for _, tg := range line.Targets {
		target[tg.Members[0].Member] = tg.ID
	}
	report := func(member, state string) func(t *testing.T) {
		return func(t *testing.T) {
			require.NoError(t, h.Report("h1", &wire.HealthReport{Results: []wire.TargetHealth{{Target: target[member], State: state, Since: time.Now()}}}))
		}
	}
	const head = `
# HELP dlb_controller_member_health A health-checked member's health: 1 for its state (up, down, unknown, held), 0 for the others.
# TYPE dlb_controller_member_health gauge
`
	const changesHead = `
# HELP dlb_controller_member_health_changes_total Changes of a health-checked member's health state since it joined its group (or the controller started).
# TYPE dlb_controller_member_health_changes_total counter
`
	for _, tc := range []struct {
		name    string
		do      func(t *testing.T)
		health  string // the dlb_controller_member_health series
		changes string // the changes' series
	}{
		{name: "new members are unknown", do: func(*testing.T) {},
			health: `
dlb_controller_member_health{group="web",member="10.0.0.11",state="down"} 0
dlb_controller_member_health{group="web",member="10.0.0.11",state="held"} 0
dlb_controller_member_health{group="web",member="10.0.0.11",state="unknown"} 1
dlb_controller_member_health{group="web",member="10.0.0.11",state="up"} 0
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="down"} 0
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="held"} 0
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="unknown"} 1
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="up"} 0
`, changes: `
dlb_controller_member_health_changes_total{group="web",member="10.0.0.11"} 0
dlb_controller_member_health_changes_total{group="web",member="10.0.0.12:8080"} 0
`},
		{name: "one up", do: report("10.0.0.11", lb.HealthUp),
			health: `
dlb_controller_member_health{group="web",member="10.0.0.11",state="down"} 0
dlb_controller_member_health{group="web",member="10.0.0.11",state="held"} 0
dlb_controller_member_health{group="web",member="10.0.0.11",state="unknown"} 0
dlb_controller_member_health{group="web",member="10.0.0.11",state="up"} 1
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="down"} 0
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="held"} 0
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="unknown"} 1
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="up"} 0
`, changes: `
dlb_controller_member_health_changes_total{group="web",member="10.0.0.11"} 1
dlb_controller_member_health_changes_total{group="web",member="10.0.0.12:8080"} 0
`},
		{name: "then down", do: report("10.0.0.11", lb.HealthDown),
			health: `
dlb_controller_member_health{group="web",member="10.0.0.11",state="down"} 1
dlb_controller_member_health{group="web",member="10.0.0.11",state="held"} 0
dlb_controller_member_health{group="web",member="10.0.0.11",state="unknown"} 0
dlb_controller_member_health{group="web",member="10.0.0.11",state="up"} 0
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="down"} 0
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="held"} 0
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="unknown"} 1
dlb_controller_member_health{group="web",member="10.0.0.12:8080",state="up"} 0
`, changes: `
dlb_controller_member_health_changes_total{group="web",member="10.0.0.11"} 2
dlb_controller_member_health_changes_total{group="web",member="10.0.0.12:8080"} 0
`},
		{name: "down again is no change", do: report("10.0.0.11", lb.HealthDown),
			changes: `
dlb_controller_member_health_changes_total{group="web",member="10.0.0.11"} 2
dlb_controller_member_health_changes_total{group="web",member="10.0.0.12:8080"} 0
`},
		{name: "the group deleted: its members are gone", do: func(*testing.T) { h.Update(nil, hosts) }, health: "\n", changes: "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.do(t)
			if tc.health != "" {
				want := head + tc.health
				if strings.TrimSpace(tc.health) == "" {
					want = ""
				}
				assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "dlb_controller_member_health"))
			}
			want := changesHead + tc.changes
			if strings.TrimSpace(tc.changes) == "" {
				want = ""
			}
			assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "dlb_controller_member_health_changes_total"))
		})
	}

	h.Update([]lb.Group{web}, hosts)
	assert.Equal(t, 10, testutil.CollectAndCount(newHealthCollector(h, 2, slog.New(slog.DiscardHandler))), "2 members: 5 series each")
	assert.Zero(t, testutil.CollectAndCount(newHealthCollector(h, 1, slog.New(slog.DiscardHandler))), "past the limit: none")
}

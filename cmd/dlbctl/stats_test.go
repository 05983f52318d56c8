package main

import (
	"bytes"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// TestGroupStatsTable: shares of the port's new connections beside the
// weights' shares (a draining member has none), hosts' parts, stale hosts;
// for a health-checked group, each member's health, the hosts' lines
// keeping the columns aligned.
func TestGroupStatsTable(t *testing.T) {
	w := 300
	g := lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}},
		Members: []lb.Member{{IP: "10.0.0.11", Weight: &w}, {IP: "10.0.0.12"}, {IP: "10.0.0.13", State: "draining"}}}
	st := wire.GroupStats{Group: "web", StaleHosts: []string{"h2"}, Members: []wire.MemberStats{
		{Port: "tcp/80", Member: "10.0.0.11", Counts: wire.Counts{NewConnections: 750, ActiveConnections: 31}, NewPerSecond: 12.5,
			BytesToPerSecond: 12345, BytesFromPerSecond: 4.56e6, Hosts: []wire.MemberHostCounts{
				{Host: "h1", Counts: wire.Counts{NewConnections: 700, ActiveConnections: 31}, AgeS: 0.4},
				{Host: "h2", Counts: wire.Counts{NewConnections: 50}, AgeS: 9.1, Stale: true}}},
		{Port: "tcp/80", Member: "10.0.0.12", Counts: wire.Counts{NewConnections: 250, ActiveConnections: 2}, BytesToPerSecond: 950, Hosts: []wire.MemberHostCounts{}},
		{Port: "tcp/80", Member: "10.0.0.13", Hosts: []wire.MemberHostCounts{}},
	}}
	checked := g
	checked.HealthCheck = &lb.HealthCheck{Type: "tcp"}
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	since := now.Add(-42 * time.Second)
	withHealth := st
	withHealth.Health = []wire.MemberHealth{
		{Member: "10.0.0.11", State: "up", Since: &since, Reason: "first probe passed: syn-ack in 0.3ms", Prober: "h1", Last: &wire.ProbeResult{At: now, OK: true, Detail: "syn-ack in 0.2ms"}},
		{Member: "10.0.0.12", State: "down", Since: &since, Reason: "2 probes failed: refused (rst)", Prober: "h2", Last: &wire.ProbeResult{At: now, Detail: "refused (rst)"}},
	}
	for _, tc := range []struct {
		name string
		g    lb.Group
		st   wire.GroupStats
		want string
	}{
		{name: "no health check", g: g, st: st, want: `PORT    MEMBER     STATE     WEIGHT  CONN/S  NEW CONNS  ACTIVE  B/S IN  B/S OUT  SHARE                      WEIGHT SHARE
tcp/80  10.0.0.11  active    300     12.5    750        31      12.3k   4.56M    75.0 %                     75.0 %
          on h1                              700        31                       (report 0.4 s old)         
          on h2                              50         0                        (report 9.1 s old, stale)  
tcp/80  10.0.0.12  active    100     0.0     250        2       950     0        25.0 %                     25.0 %
tcp/80  10.0.0.13  draining  100     0.0     0          0       0       0        0.0 %                      0.0 %
Stale hosts (no report for three of their intervals; counted in the totals, not in the rates): [h2]
`},
		{name: "no health in the answer: as without a check", g: checked, st: st, want: `PORT    MEMBER     STATE     WEIGHT  CONN/S  NEW CONNS  ACTIVE  B/S IN  B/S OUT  SHARE                      WEIGHT SHARE
tcp/80  10.0.0.11  active    300     12.5    750        31      12.3k   4.56M    75.0 %                     75.0 %
          on h1                              700        31                       (report 0.4 s old)         
          on h2                              50         0                        (report 9.1 s old, stale)  
tcp/80  10.0.0.12  active    100     0.0     250        2       950     0        25.0 %                     25.0 %
tcp/80  10.0.0.13  draining  100     0.0     0          0       0       0        0.0 %                      0.0 %
Stale hosts (no report for three of their intervals; counted in the totals, not in the rates): [h2]
`},
		{name: "health-checked: each member's health, none sent for the last", g: checked, st: withHealth, want: `PORT    MEMBER     STATE     WEIGHT  CONN/S  NEW CONNS  ACTIVE  B/S IN  B/S OUT  SHARE                      WEIGHT SHARE  HEALTH  SINCE    DETAIL
tcp/80  10.0.0.11  active    300     12.5    750        31      12.3k   4.56M    75.0 %                     75.0 %        up      42s ago  syn-ack in 0.2ms
          on h1                              700        31                       (report 0.4 s old)                                        
          on h2                              50         0                        (report 9.1 s old, stale)                                 
tcp/80  10.0.0.12  active    100     0.0     250        2       950     0        25.0 %                     25.0 %        down    42s ago  2 probes failed: refused (rst)
tcp/80  10.0.0.13  draining  100     0.0     0          0       0       0        0.0 %                      0.0 %         -       -        -
Stale hosts (no report for three of their intervals; counted in the totals, not in the rates): [h2]
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
			writeGroupStats(tw, &tc.g, tc.st, true, now)
			tw.Flush()
			assert.Equal(t, tc.want, buf.String())
		})
	}
}

package main

import (
	"bytes"
	"testing"
	"text/tabwriter"

	"github.com/stretchr/testify/assert"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// TestGroupStatsTable: shares of the port's new connections beside the
// weights' shares (a draining member has none), hosts' parts, stale hosts.
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
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	writeGroupStats(tw, &g, st, true)
	tw.Flush()
	want := `PORT    MEMBER     STATE     WEIGHT  CONN/S  NEW CONNS  ACTIVE  B/S IN  B/S OUT  SHARE                      WEIGHT SHARE
tcp/80  10.0.0.11  active    300     12.5    750        31      12.3k   4.56M    75.0 %                     75.0 %
          on h1                              700        31                       (report 0.4 s old)         
          on h2                              50         0                        (report 9.1 s old, stale)  
tcp/80  10.0.0.12  active    100     0.0     250        2       950     0        25.0 %                     25.0 %
tcp/80  10.0.0.13  draining  100     0.0     0          0       0       0        0.0 %                      0.0 %
Stale hosts (no report for three of their intervals; counted in the totals, not in the rates): [h2]
`
	assert.Equal(t, want, buf.String())
}

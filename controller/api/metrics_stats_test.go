package api

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"

	"github.com/ovs-dlb/dlb/controller/stats"
	"github.com/ovs-dlb/dlb/controller/wire"
)

// TestStatsMetrics: /metrics has each member's counters over the hosts,
// with the hosts by state; past the limit, no member's series.
func TestStatsMetrics(t *testing.T) {
	st := stats.New()
	now := time.Now()
	for _, h := range []string{"h1", "h2"} {
		st.Report(h, wire.StatsReport{Full: true, IntervalS: 1, Members: []wire.MemberCount{{Group: "web", Port: "tcp/80", Member: "10.0.0.11",
			NewConnections: 5, ActiveConnections: 2, PacketsToMember: 50, BytesToMember: 5000, PacketsFromMember: 40, BytesFromMember: 8000}}}, now)
	}
	c := newStatsCollector(st, 10, slog.New(slog.DiscardHandler))
	assert.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP dlb_controller_member_active_connections Connections to a member through a VIP port of a group open now, over the hosts whose reports are not stale.
# TYPE dlb_controller_member_active_connections gauge
dlb_controller_member_active_connections{group="web",member="10.0.0.11",port="tcp/80"} 4
# HELP dlb_controller_member_bytes_total Bytes (Ethernet frames) of the connections to a member through a VIP port of a group, from every host, by direction (to_member, from_member).
# TYPE dlb_controller_member_bytes_total counter
dlb_controller_member_bytes_total{direction="from_member",group="web",member="10.0.0.11",port="tcp/80"} 16000
dlb_controller_member_bytes_total{direction="to_member",group="web",member="10.0.0.11",port="tcp/80"} 10000
# HELP dlb_controller_member_new_connections_total New connections to a member through a VIP port of a group, from every host (as the hosts report them).
# TYPE dlb_controller_member_new_connections_total counter
dlb_controller_member_new_connections_total{group="web",member="10.0.0.11",port="tcp/80"} 10
# HELP dlb_controller_stats_hosts Hosts that report member statistics, by state: fresh, or stale (no report for three of their intervals).
# TYPE dlb_controller_stats_hosts gauge
dlb_controller_stats_hosts{state="fresh"} 2
dlb_controller_stats_hosts{state="stale"} 0
`), "dlb_controller_member_active_connections", "dlb_controller_member_bytes_total", "dlb_controller_member_new_connections_total", "dlb_controller_stats_hosts"))
	assert.Equal(t, 9, testutil.CollectAndCount(c), "6 series of the member, its count, the hosts by state")
	assert.Equal(t, 3, testutil.CollectAndCount(newStatsCollector(st, 0, slog.New(slog.DiscardHandler))), "past the limit: the member count and the hosts only")
}

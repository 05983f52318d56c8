package api

import (
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-dlb/dlb/controller/health"
	"github.com/ovs-dlb/dlb/controller/stats"
	"github.com/ovs-dlb/dlb/controller/store"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// metrics are the API's: requests by route and code, their latency, and
// the rows of each table.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry, st *store.Store) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dlb_controller_http_requests_total", Help: "API requests by route (operation id) and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dlb_controller_http_request_seconds", Help: "API request latency by route (Blocking reads included).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}, []string{"route"}),
	}
	rows := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dlb_controller_rows", Help: "Rows in the store.", ConstLabels: prometheus.Labels{"table": "Group"}},
		func() float64 { _, gs, _ := st.View().Groups(nil); return float64(len(gs)) })
	members := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dlb_controller_rows", Help: "Rows in the store.", ConstLabels: prometheus.Labels{"table": "Member"}},
		func() float64 {
			_, gs, _ := st.View().Groups(nil)
			n := 0
			for _, g := range gs {
				n += len(g.Group.Members)
			}
			return float64(n)
		})
	hosts := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dlb_controller_rows", Help: "Rows in the store.", ConstLabels: prometheus.Labels{"table": "Host"}},
		func() float64 { _, hs, _ := st.View().Hosts(nil); return float64(len(hs)) })
	index := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dlb_controller_index", Help: "The store's index the view has caught up with."},
		func() float64 { return float64(st.View().Index()) })
	reg.MustRegister(m.requests, m.latency, rows, members, hosts, index)
	return m
}

func (m *metrics) middleware(ctx huma.Context, next func(huma.Context)) {
	start := time.Now()
	next(ctx)
	route := ctx.Operation().OperationID
	status := ctx.Status()
	if status == 0 {
		status = 200
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

// StoreLatency is a histogram of store commits, for store.Options.OnCommit.
func StoreLatency(reg prometheus.Registerer) func(time.Duration) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "dlb_controller_store_commit_seconds", Help: "Time from sending a transaction to ovsdb-server to its commit.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	reg.MustRegister(h)
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}

// DefaultMemberMetricsLimit is how many members' series /metrics exports
// at most by default.
const DefaultMemberMetricsLimit = 10000

// statsCollector exports the member statistics the hosts report: per
// group, VIP port and member, summed over the hosts, up to limit members
// (beyond, none: 10,000 groups of 10 members would be 600,000 series; the
// API has them all).
type statsCollector struct {
	stats  *stats.Stats
	limit  int
	log    *slog.Logger
	warned sync.Once

	newConns, active, packets, bytes, hosts, members *prometheus.Desc
}

func newStatsCollector(st *stats.Stats, limit int, log *slog.Logger) *statsCollector {
	member := []string{"group", "port", "member"}
	withDir := append(member[:3:3], "direction")
	return &statsCollector{stats: st, limit: limit, log: log,
		newConns: prometheus.NewDesc("dlb_controller_member_new_connections_total",
			"New connections to a member through a VIP port of a group, from every host (as the hosts report them).", member, nil),
		active: prometheus.NewDesc("dlb_controller_member_active_connections",
			"Connections to a member through a VIP port of a group open now, over the hosts whose reports are not stale.", member, nil),
		packets: prometheus.NewDesc("dlb_controller_member_packets_total",
			"Packets of the connections to a member through a VIP port of a group, from every host, by direction (to_member, from_member).", withDir, nil),
		bytes: prometheus.NewDesc("dlb_controller_member_bytes_total",
			"Bytes (Ethernet frames) of the connections to a member through a VIP port of a group, from every host, by direction (to_member, from_member).", withDir, nil),
		hosts: prometheus.NewDesc("dlb_controller_stats_hosts",
			"Hosts that report member statistics, by state: fresh, or stale (no report for three of their intervals).", []string{"state"}, nil),
		members: prometheus.NewDesc("dlb_controller_stats_members",
			"Members (of a group's VIP port) the statistics hold; their series are exported up to member_metrics_limit.", nil, nil),
	}
}

// Describe is the prometheus.Collector's.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.newConns, c.active, c.packets, c.bytes, c.hosts, c.members} {
		ch <- d
	}
}

// Collect is the prometheus.Collector's.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.stats.Members()
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(n))
	export := n <= c.limit
	if !export && n > 0 {
		c.warned.Do(func() {
			c.log.Warn("member statistics not exported on /metrics: more members than member_metrics_limit", "members", n, "limit", c.limit)
		})
	}
	hosts, stale := c.stats.Each(time.Now(), func(group, port, member string, m wire.Counts) {
		if !export {
			return
		}
		ch <- prometheus.MustNewConstMetric(c.newConns, prometheus.CounterValue, float64(m.NewConnections), group, port, member)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(m.ActiveConnections), group, port, member)
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(m.PacketsToMember), group, port, member, "to_member")
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(m.PacketsFromMember), group, port, member, "from_member")
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(m.BytesToMember), group, port, member, "to_member")
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(m.BytesFromMember), group, port, member, "from_member")
	})
	ch <- prometheus.MustNewConstMetric(c.hosts, prometheus.GaugeValue, float64(hosts-stale), "fresh")
	ch <- prometheus.MustNewConstMetric(c.hosts, prometheus.GaugeValue, float64(stale), "stale")
}

// healthCollector exports each health-checked member's health as the
// registry holds it at scrape time (a deleted group's members are gone
// with it): a state set, 1 for the member's state and 0 for the others,
// and its state changes; up to limit members (beyond, none, as the
// statistics).
type healthCollector struct {
	health *health.Registry
	limit  int
	log    *slog.Logger
	warned sync.Once

	state, changes *prometheus.Desc
}

func newHealthCollector(h *health.Registry, limit int, log *slog.Logger) *healthCollector {
	return &healthCollector{health: h, limit: limit, log: log,
		state: prometheus.NewDesc("dlb_controller_member_health",
			"A health-checked member's health: 1 for its state (up, down, unknown, held), 0 for the others.", []string{"group", "member", "state"}, nil),
		changes: prometheus.NewDesc("dlb_controller_member_health_changes_total",
			"Changes of a health-checked member's health state since it joined its group (or the controller started).", []string{"group", "member"}, nil),
	}
}

// Describe is the prometheus.Collector's.
func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.changes
}

// Collect is the prometheus.Collector's.
func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	members := c.health.States()
	if len(members) > c.limit {
		c.warned.Do(func() {
			c.log.Warn("member health not exported on /metrics: more members than member_metrics_limit", "members", len(members), "limit", c.limit)
		})
		return
	}
	states := lb.HealthStates()
	for _, m := range members {
		for _, s := range states {
			v := 0.0
			if m.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, m.Group, m.Member, s)
		}
		ch <- prometheus.MustNewConstMetric(c.changes, prometheus.CounterValue, float64(m.Changes), m.Group, m.Member)
	}
}

package api

import (
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-dlb/dlb/controller/store"
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

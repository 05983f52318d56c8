package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the agent's Prometheus metrics, on their own registry.
type metrics struct {
	reg        *prometheus.Registry
	reconciles prometheus.Counter
	errors     prometheus.Counter
	duration   prometheus.Histogram
	last       prometheus.Gauge
	flows      prometheus.Gauge
	groups     prometheus.Gauge
	mods       *prometheus.CounterVec
	connects   prometheus.Counter
	sourceErrs prometheus.Counter
	flushes    *prometheus.CounterVec
	refusals   *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg:        prometheus.NewRegistry(),
		reconciles: prometheus.NewCounter(prometheus.CounterOpts{Name: "dlb_agent_reconciles_total", Help: "Reconciles that completed."}),
		errors:     prometheus.NewCounter(prometheus.CounterOpts{Name: "dlb_agent_reconcile_errors_total", Help: "Bundles the switch refused."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dlb_agent_reconcile_duration_seconds", Help: "Time to compute and apply a reconcile.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		last:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_last_reconcile_seconds", Help: "Duration of the last reconcile."}),
		flows:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_flows_installed", Help: "DLB flows on the bridge."}),
		groups:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_groups_installed", Help: "DLB select groups on the bridge."}),
		mods:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_mods_total", Help: "Flow and group mods applied, by object and operation."}, []string{"object", "op"}),
		connects:   prometheus.NewCounter(prometheus.CounterOpts{Name: "dlb_agent_switch_connects_total", Help: "OpenFlow connections made to the bridge."}),
		sourceErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "dlb_agent_source_errors_total", Help: "Group documents refused."}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_conntrack_flushes_total",
			Help: "Departed members whose conntrack entries were flushed, by result."}, []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_refusals_total",
			Help: "New connections to VIP ports without an available member, by answer: reset, unreachable, limited (over the rate cap), failed."}, []string{"answer"}),
	}
	m.reg.MustRegister(m.reconciles, m.errors, m.duration, m.last, m.flows, m.groups, m.mods, m.connects, m.sourceErrs, m.flushes, m.refusals,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(st diffStats, took time.Duration, flows, groups int) {
	m.reconciles.Inc()
	m.duration.Observe(took.Seconds())
	m.last.Set(took.Seconds())
	m.flows.Set(float64(flows))
	m.groups.Set(float64(groups))
	for op, n := range map[[2]string]int{
		{"flow", "add"}: st.flowAdd, {"flow", "modify"}: st.flowMod, {"flow", "delete"}: st.flowDel,
		{"group", "add"}: st.groupAdd, {"group", "modify"}: st.groupMod, {"group", "delete"}: st.groupDel,
	} {
		m.mods.WithLabelValues(op[0], op[1]).Add(float64(n))
	}
}

// serve exposes /metrics, and Go's profiles under /debug/pprof/, on addr
// (a local address by default) until ctx ends.
func (m *metrics) serve(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	// A few kilobytes on a local address: not worth a gzip writer (about
	// 1 MB of heap each) per concurrent scrape.
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{DisableCompression: true}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ovs-dlb/dlb/lb"
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

// healthCollector exports, read at scrape time, the prober's targets, its
// probes' results and each target's state (up to limit targets: beyond,
// none, as the members' counters), and the members whose health the
// overlay holds. The prober and the overlay may be nil (no health
// checks): their counts are then 0.
type healthCollector struct {
	p       *prober
	overlay *healthOverlay
	limit   int
	log     *slog.Logger
	warned  sync.Once

	targets, probes, state, known, out *prometheus.Desc
}

func newHealthCollector(p *prober, overlay *healthOverlay, limit int, log *slog.Logger) *healthCollector {
	return &healthCollector{p: p, overlay: overlay, limit: limit, log: log,
		targets: prometheus.NewDesc("dlb_agent_probe_targets", "Health check targets this host probes (members of several groups probed alike are one).", nil, nil),
		probes:  prometheus.NewDesc("dlb_agent_probes_total", "Health probes that ended, by result (ok, fail).", []string{"result"}, nil),
		state: prometheus.NewDesc("dlb_agent_probe_target_state",
			"A probe target's state as this host's probes decide it: 1 for its state (up, down, unknown, held), 0 for the others. target is IP:PORT of the probe; id tells apart targets probed differently (another VIP, check or VM port).",
			[]string{"target", "id", "state"}, nil),
		known: prometheus.NewDesc("dlb_agent_member_health_known", "Members whose health the controller sent this host.", nil, nil),
		out:   prometheus.NewDesc("dlb_agent_member_health_out", "Active members this host takes out of new connections for their health (not up).", nil, nil),
	}
}

// Describe is the prometheus.Collector's.
func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.targets, c.probes, c.state, c.known, c.out} {
		ch <- d
	}
}

// Collect is the prometheus.Collector's. It reads under the prober's and
// the overlay's locks and sends after.
func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	var pc probeCounts
	if c.p != nil {
		pc = c.p.counts(c.limit)
	}
	known, out := 0, 0
	if c.overlay != nil {
		known, out = c.overlay.knownCount(), c.overlay.outCount()
	}
	ch <- prometheus.MustNewConstMetric(c.targets, prometheus.GaugeValue, float64(pc.targets))
	ch <- prometheus.MustNewConstMetric(c.probes, prometheus.CounterValue, float64(pc.probesOK), "ok")
	ch <- prometheus.MustNewConstMetric(c.probes, prometheus.CounterValue, float64(pc.probesFailed), "fail")
	ch <- prometheus.MustNewConstMetric(c.known, prometheus.GaugeValue, float64(known))
	ch <- prometheus.MustNewConstMetric(c.out, prometheus.GaugeValue, float64(out))
	if pc.states == nil && pc.targets > 0 {
		c.warned.Do(func() {
			c.log.Warn("probe targets' states not exported on /metrics: more targets than member_metrics_limit", "targets", pc.targets, "limit", c.limit)
		})
	}
	states := lb.HealthStates()
	for _, t := range pc.states {
		for _, s := range states {
			v := 0.0
			if t.state == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, t.label, t.id, s)
		}
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

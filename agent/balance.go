package agent

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Least connections (issue 18, docs/architecture.md): after each read of
// the members' counters and each report, the balancer recomputes the
// shares of the host's least-connections groups (lb.LoadTracker) from the
// figures of their view and hands the groups whose slots changed to the
// reconciler (setSlots), which deals them over 256 slots (only the slots
// that change member move). The figures:
//
//   - global: every host's, as the controller answered the last report
//     (wire.StatsAnswer.Loads: active connections over the live hosts and
//     new connections), plus the host's own new connections since: those
//     since its last conntrack read to the active connections, those since
//     its last report to the new ones. When the last answer is older than
//     lb.StaleAfter intervals (the controller is unreachable) the group
//     falls back to its weights, and says so (view "weights");
//   - local: the host's own active connections and new connections.
//
// The shares are reported with the counters (changed ones; all in a full
// report), with the time of the last recomputation.

// slotSetter is the reconciler's side: the shares to deal by.
type slotSetter interface {
	setSlots(slots map[string][]int, changed []string)
	lcGroups() []lcGroup
}

// lcKey is a member of a least-connections group: the group and the
// member's label.
type lcKey struct{ group, member string }

// ownLoad is a member's own figures on this host, summed over the group's
// VIP ports.
type ownLoad struct {
	active    float64 // as last read
	sinceRead float64 // new connections since that read
	total     float64 // new connections, a counter
	unsent    float64 // new connections the controller does not have
}

// lcState is a least-connections group's state between recomputations.
type lcState struct {
	tracker *lb.LoadTracker
	keys    []string
	slots   []int // installed
	view    string
	dirty   bool // to report
}

// balancer keeps the least-connections groups' shares.
type balancer struct {
	log      *slog.Logger
	interval time.Duration
	to       slotSetter

	mu sync.Mutex
	// loads are the global figures, by group and member, from the
	// answer of loadsAt; loadsSeq is the seq to ask from next.
	loads    map[string]map[string]wire.MemberLoad
	loadsSeq uint64
	loadsAt  time.Time
	groups   map[string]*lcState
	at       time.Time // of the last recomputation
	full     bool      // the next report has every group's shares
	fellBack bool

	recomputes prometheus.Counter
	changes    prometheus.Counter
	took       prometheus.Gauge
	age        prometheus.GaugeFunc
	views      *prometheus.GaugeVec
	slotsDesc  *prometheus.Desc
	limit      int
}

func newBalancer(to slotSetter, interval time.Duration, limit int, log *slog.Logger, reg prometheus.Registerer) *balancer {
	b := &balancer{log: log, interval: interval, to: to, limit: limit, groups: map[string]*lcState{}, full: true,
		loads: map[string]map[string]wire.MemberLoad{},
		recomputes: prometheus.NewCounter(prometheus.CounterOpts{Name: "dlb_agent_lc_recomputations_total",
			Help: "Recomputations of the least-connections groups' shares (one an interval)."}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "dlb_agent_lc_slot_changes_total",
			Help: "Least-connections groups whose slots changed at a recomputation (each one select group installed)."}),
		took: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_lc_recompute_seconds",
			Help: "How long the last recomputation of the least-connections shares took (the install is the reconciler's)."}),
		views: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dlb_agent_lc_groups",
			Help: "Least-connections groups by the figures their shares follow: global (every host's), local (this host's), weights (fell back: the global figures are older than 3 intervals)."}, []string{"view"}),
		slotsDesc: prometheus.NewDesc("dlb_agent_member_slots",
			"A least-connections group's member's slots of this host's 256 (its share of new connections: slots/256; up to member_metrics_limit members).",
			[]string{"group", "member"}, nil),
	}
	b.age = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dlb_agent_lc_global_age_seconds",
		Help: "Age of the global figures least-connections groups balance by (since the controller's last answer; -1: none yet)."},
		func() float64 {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.loadsAt.IsZero() {
				return -1
			}
			return time.Since(b.loadsAt).Seconds()
		})
	for _, v := range []string{wire.ViewGlobal, wire.ViewLocal, wire.ViewWeights} {
		b.views.WithLabelValues(v)
	}
	reg.MustRegister(b.recomputes, b.changes, b.took, b.age, b.views, b)
	return b
}

// report adds the balancer's part to a report: the seq to ask loads from,
// the last recomputation, the shares that changed (all in a full
// report). sent is called once the controller took it.
func (b *balancer) report(r *wire.StatsReport, full bool) (sent func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r.LoadsSince = b.loadsSeq
	if !b.at.IsZero() {
		r.BalancedAt = float64(b.at.UnixMilli()) / 1000
	}
	all := full || b.full
	var names []string
	for name, st := range b.groups {
		if st.slots == nil || !(all || st.dirty) {
			continue
		}
		e := wire.HostBalancing{Group: name, View: st.view, Members: make([]wire.MemberSlots, 0, len(st.keys))}
		for i, k := range st.keys {
			e.Members = append(e.Members, wire.MemberSlots{Member: k, Slots: st.slots[i]})
		}
		r.Balancing = append(r.Balancing, e)
		names = append(names, name)
	}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if all {
			b.full = false
		}
		for _, name := range names {
			if st := b.groups[name]; st != nil {
				st.dirty = false
			}
		}
	}
}

// answered takes a report's answer at now: the loads that changed.
func (b *balancer) answered(a wire.StatsAnswer, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.LoadsFull {
		clear(b.loads)
	}
	for _, gl := range a.Loads {
		m := make(map[string]wire.MemberLoad, len(gl.Members))
		for _, ml := range gl.Members {
			m[ml.Member] = ml
		}
		b.loads[gl.Group] = m
	}
	b.loadsSeq, b.loadsAt = a.LoadsSeq, now
}

// refused says the controller refused a report: its shares go again.
func (b *balancer) refused() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.full = true
}

// recompute computes every least-connections group's shares at now from
// the host's own figures and the last global ones, and hands those whose
// slots changed to the reconciler.
func (b *balancer) recompute(now time.Time, own func(groups map[string]bool) map[lcKey]ownLoad) {
	groups := b.to.lcGroups()
	start := time.Now()
	names := make(map[string]bool, len(groups))
	for _, g := range groups {
		names[g.name] = true
	}
	mine := own(names)
	b.mu.Lock()
	stale := b.loadsAt.IsZero() || now.Sub(b.loadsAt) > lb.StaleAfter*b.interval
	var changed []string
	counts := map[string]int{}
	for _, g := range groups {
		st := b.groups[g.name]
		if st == nil {
			st = &lcState{tracker: lb.NewLoadTracker()}
			b.groups[g.name] = st
		}
		view := g.view
		if view == lb.LoadViewGlobal && stale {
			view = wire.ViewWeights
		}
		s := lb.LoadSample{At: now, Keys: g.keys, Capacity: g.capacity, Active: make([]float64, len(g.keys)),
			Arrivals: make([]float64, len(g.keys)), Fallback: view == wire.ViewWeights}
		global := b.loads[g.name]
		for i, k := range g.keys {
			o := mine[lcKey{g.name, k}]
			if view == lb.LoadViewLocal {
				s.Active[i], s.Arrivals[i] = o.active+o.sinceRead, o.total
				continue
			}
			gl := global[k]
			s.Active[i] = float64(gl.ActiveConnections) + o.sinceRead
			s.Arrivals[i] = float64(gl.NewConnections) + o.unsent
		}
		shares := st.tracker.Shares(s)
		slots := lb.ShareSlots(shares, sameKeys(st, g.keys))
		counts[view]++
		moved := !slices.Equal(slots, st.slots) || !slices.Equal(st.keys, g.keys)
		if moved {
			changed = append(changed, g.name)
		}
		st.dirty = st.dirty || moved || st.view != view
		st.slots, st.keys, st.view = slots, g.keys, view
	}
	for name := range b.groups {
		if !names[name] {
			delete(b.groups, name)
		}
	}
	if fell := counts[wire.ViewWeights] > 0; fell != b.fellBack {
		if fell {
			age := "none yet"
			if !b.loadsAt.IsZero() {
				age = now.Sub(b.loadsAt).Round(time.Millisecond).String()
			}
			b.log.Warn("least-connections groups fall back to their weights: no global figures from the controller", "groups", counts[wire.ViewWeights], "figures_age", age)
		} else {
			b.log.Info("least-connections groups balance by global figures again")
		}
		b.fellBack = fell
	}
	slots := make(map[string][]int, len(b.groups))
	for name, st := range b.groups {
		if st.slots != nil {
			slots[name] = st.slots
		}
	}
	b.at = now
	b.mu.Unlock()
	for _, v := range []string{wire.ViewGlobal, wire.ViewLocal, wire.ViewWeights} {
		b.views.WithLabelValues(v).Set(float64(counts[v]))
	}
	b.recomputes.Inc()
	b.took.Set(time.Since(start).Seconds())
	if len(changed) > 0 {
		b.changes.Add(float64(len(changed)))
		b.to.setSlots(slots, changed)
	}
}

// sameKeys is a group's installed slots when its members are the same as
// keys, else nil (dealt anew).
func sameKeys(st *lcState, keys []string) []int {
	if slices.Equal(st.keys, keys) {
		return st.slots
	}
	return nil
}

// Describe is the prometheus.Collector's (the members' slots).
func (b *balancer) Describe(ch chan<- *prometheus.Desc) { ch <- b.slotsDesc }

// Collect is the prometheus.Collector's: each least-connections member's
// slots, up to limit members. The series are made under the lock and sent
// after it: a registry's Gather reads b.age (which takes the lock) while
// collectors still send, so sending under the lock deadlocks once the
// series outgrow the registry's channel.
func (b *balancer) Collect(ch chan<- prometheus.Metric) {
	for _, m := range b.slotSeries() {
		ch <- m
	}
}

// slotSeries makes the members' slots series (none above limit members).
func (b *balancer) slotSeries() []prometheus.Metric {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, st := range b.groups {
		if st.slots != nil {
			n += len(st.keys)
		}
	}
	if n > b.limit {
		return nil
	}
	out := make([]prometheus.Metric, 0, n)
	for name, st := range b.groups {
		for i, k := range st.keys {
			if st.slots != nil {
				out = append(out, prometheus.MustNewConstMetric(b.slotsDesc, prometheus.GaugeValue, float64(st.slots[i]), name, k))
			}
		}
	}
	return out
}

package lb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A simulation of hosts balancing one group by least connections, as the
// agents and the controller do it: every host reports its members' active
// connections and new connections once an interval (at its own phase), the
// controller sums the last reports, and each host recomputes its shares
// right after its report from the sums plus its own new connections since.
// Connections pick a member by a uniformly random slot of the host's
// slots, as dp_hash does. It checks the algorithm's behaviour in the
// issue's scenarios; the end-to-end tests check the same on real switches.

type simAlgo int

const (
	simWeighted simAlgo = iota
	simLocal
	simGlobal
)

func (a simAlgo) String() string { return [...]string{"weighted", "local", "global"}[a] }

type simConn struct {
	member int
	end    float64
}

type simHost struct {
	tracker *LoadTracker
	slots   []int // member of each slot
	quotas  []int
	conns   []simConn
	arrived []float64 // counter per member
	// what the controller holds of the host: active and arrivals at its
	// last report
	repActive, repArrived []float64
	phase                 float64
	shares                [][]float64 // given at each recomputation
}

type simCluster struct {
	algo     simAlgo
	rng      *rand.Rand
	capacity []int
	hosts    []*simHost
	life     func(member int) float64 // seconds, +Inf: until the end
	interval float64
	now      float64
	// controllerDown: reports fail in [from, to)
	downFrom, downTo float64
}

func newSimCluster(algo simAlgo, seed uint64, hosts int, capacity []int, life func(int) float64) *simCluster {
	c := &simCluster{algo: algo, rng: rand.New(rand.NewPCG(seed, 7)), capacity: slices.Clone(capacity), life: life, interval: 1, downFrom: -1, downTo: -1}
	for h := 0; h < hosts; h++ {
		n := len(capacity)
		sh := &simHost{tracker: NewLoadTracker(), arrived: make([]float64, n), repActive: make([]float64, n), repArrived: make([]float64, n),
			phase: float64(h) / float64(hosts) * c.interval}
		sh.install(ShareSlots(byCapacity(capacity), nil))
		c.hosts = append(c.hosts, sh)
	}
	return c
}

func byCapacity(capacity []int) []float64 {
	out := make([]float64, len(capacity))
	total := 0
	for _, c := range capacity {
		total += c
	}
	for i, c := range capacity {
		if total > 0 {
			out[i] = float64(c) / float64(total)
		}
	}
	return out
}

// install deals the quotas over the slots as Assign does (slots keep
// their member while it is under quota).
func (h *simHost) install(q []int) {
	h.quotas = q
	prev := h.slots
	h.slots = make([]int, MaxSlots)
	have := make([]int, len(q))
	for s := range h.slots {
		h.slots[s] = -1
		if prev != nil && prev[s] >= 0 && prev[s] < len(q) && have[prev[s]] < q[prev[s]] {
			h.slots[s] = prev[s]
			have[prev[s]]++
		}
	}
	next := 0
	for s := range h.slots {
		if h.slots[s] >= 0 {
			continue
		}
		for have[next%len(q)] >= q[next%len(q)] {
			next++
		}
		h.slots[s] = next % len(q)
		have[h.slots[s]]++
		next++
	}
}

// open opens a connection from host h now.
func (c *simCluster) open(h int) {
	host := c.hosts[h]
	m := host.slots[c.rng.IntN(MaxSlots)]
	host.conns = append(host.conns, simConn{member: m, end: c.now + c.life(m)})
	host.arrived[m]++
}

func (h *simHost) active(n int) []float64 {
	out := make([]float64, n)
	for _, cn := range h.conns {
		out[cn.member]++
	}
	return out
}

// activeAll is every member's open connections over the hosts.
func (c *simCluster) activeAll() []float64 {
	out := make([]float64, len(c.capacity))
	for _, h := range c.hosts {
		for m, v := range h.active(len(out)) {
			out[m] += v
		}
	}
	return out
}

// recompute is host h's interval: report, then new shares.
func (c *simCluster) recompute(h int) {
	host := c.hosts[h]
	n := len(c.capacity)
	own := host.active(n)
	down := c.now >= c.downFrom && c.now < c.downTo
	if !down {
		copy(host.repActive, own)
		copy(host.repArrived, host.arrived)
	}
	if c.algo == simWeighted {
		host.install(ShareSlots(byCapacity(c.capacity), host.quotas))
		return
	}
	s := LoadSample{At: time.Unix(0, 0).Add(time.Duration(c.now * float64(time.Second))), Capacity: c.capacity,
		Active: make([]float64, n), Arrivals: make([]float64, n)}
	for m := range c.capacity {
		s.Keys = append(s.Keys, fmt.Sprint(m))
	}
	if c.algo == simLocal {
		copy(s.Active, own)
		copy(s.Arrivals, host.arrived)
	} else {
		s.Fallback = down
		for _, o := range c.hosts {
			for m := range n {
				s.Active[m] += o.repActive[m]
				s.Arrivals[m] += o.repArrived[m]
			}
		}
		for m := range n { // own connections since the report: none here
			s.Active[m] += host.arrived[m] - host.repArrived[m]
			s.Arrivals[m] += host.arrived[m] - host.repArrived[m]
		}
	}
	shares := host.tracker.Shares(s)
	host.shares = append(host.shares, shares)
	host.install(ShareSlots(shares, host.quotas))
}

// run advances to until, with arrivals(h, t0, t1) connections opened by
// host h in each step.
func (c *simCluster) run(until float64, arrivals func(h int, t0, t1 float64) int) {
	const step = 0.01
	for c.now < until-1e-9 {
		t0, t1 := c.now, c.now+step
		for h, host := range c.hosts {
			// Connections that end.
			host.conns = slices.DeleteFunc(host.conns, func(cn simConn) bool { return cn.end <= t1 })
			// The host's interval falls in this step?
			k := math.Floor((t1 - host.phase) / c.interval)
			if t1-host.phase >= 0 && (t0-host.phase < 0 || math.Floor((t0-host.phase)/c.interval) != k) {
				c.recompute(h)
			}
			for i := arrivals(h, t0, t1); i > 0; i-- {
				c.open(h)
			}
		}
		c.now = t1
	}
}

// steady is a deterministic rate: n connections a second from the hosts
// listed, between from and to.
func steady(rate float64, from, to float64, hosts ...int) func(h int, t0, t1 float64) int {
	return func(h int, t0, t1 float64) int {
		if !slices.Contains(hosts, h) || t1 <= from || t0 >= to {
			return 0
		}
		return int(math.Floor((min(t1, to)-from)*rate+1e-9)) - int(math.Floor((max(t0, from)-from)*rate+1e-9))
	}
}

func maxOverMean(v []float64) float64 {
	mx, sum := 0.0, 0.0
	for _, x := range v {
		mx = max(mx, x)
		sum += x
	}
	return mx / (sum / float64(len(v)))
}

func longLived(int) float64 { return math.Inf(1) }

// simGlobalBeatsLocal is the first scenario: s1 and s2 take h1's
// 400 connections, then s3 and s4 come and h2 opens 400 more.
func simGlobalBeatsLocal(algo simAlgo, seed uint64) []float64 {
	c := newSimCluster(algo, seed, 3, []int{1, 1, 0, 0}, longLived)
	c.run(12, steady(40, 0, 10, 0))
	c.capacity = []int{1, 1, 1, 1}
	c.run(15, steady(0, 0, 0))
	c.run(30, steady(40, 15, 25, 1))
	return c.activeAll()
}

func TestSimGlobalBeatsLocal(t *testing.T) {
	var globals []float64
	for seed := uint64(1); seed <= 20; seed++ {
		w := maxOverMean(simGlobalBeatsLocal(simWeighted, seed))
		l := maxOverMean(simGlobalBeatsLocal(simLocal, seed))
		g := simGlobalBeatsLocal(simGlobal, seed)
		assert.Greater(t, w, 1.3, "seed %d: weighted", seed)
		assert.Greater(t, l, 1.3, "seed %d: local", seed)
		assert.LessOrEqual(t, maxOverMean(g), 1.10, "seed %d: global %v", seed, g)
		globals = append(globals, maxOverMean(g))
		if seed == 1 {
			t.Logf("max/mean: weighted %.2f, local %.2f, global %.2f %v", w, l, maxOverMean(g), g)
		}
	}
	slices.Sort(globals)
	t.Logf("global over 20 seeds: median %.3f, worst %.3f", globals[10], globals[19])
}

// simSlow: one member of four answers four times slower; every host
// opens connections at a steady rate. The members' mean active
// connections over the last minute.
func simSlow(algo simAlgo, seed uint64) ([]float64, *simCluster) {
	life := func(m int) float64 {
		if m == 3 {
			return 8
		}
		return 2
	}
	c := newSimCluster(algo, seed, 3, []int{1, 1, 1, 1}, life)
	arr := func(h int, t0, t1 float64) int { // Poisson, 20 a second a host
		n := 0
		for x := c.rng.ExpFloat64() / 20; x < t1-t0; x += c.rng.ExpFloat64() / 20 {
			n++
		}
		return n
	}
	c.run(60, arr)
	sum := make([]float64, 4)
	samples := 0
	for c.now < 120 {
		c.run(c.now+0.5, arr)
		for m, v := range c.activeAll() {
			sum[m] += v
		}
		samples++
	}
	for m := range sum {
		sum[m] /= float64(samples)
	}
	return sum, c
}

func TestSimSlowMember(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		w, _ := simSlow(simWeighted, seed)
		g, c := simSlow(simGlobal, seed)
		assert.Greater(t, maxOverMean(w), 1.8, "seed %d: weighted %v", seed, w)
		assert.LessOrEqual(t, maxOverMean(g), 1.10, "seed %d: global %v", seed, g)
		// Stability once settled: consecutive shares within 5 pp.
		worst := 0.0
		for _, h := range c.hosts {
			for k := 40; k < len(h.shares); k++ {
				for m := range h.shares[k] {
					worst = max(worst, math.Abs(h.shares[k][m]-h.shares[k-1][m]))
				}
			}
		}
		assert.LessOrEqual(t, worst, 0.05, "seed %d: share swing", seed)
		if seed == 1 {
			t.Logf("mean active: weighted %.1f (max/mean %.2f), global %.1f (max/mean %.2f); largest swing %.1f pp; last shares %.3f",
				w, maxOverMean(w), g, maxOverMean(g), 100*worst, c.hosts[0].shares[len(c.hosts[0].shares)-1])
		}
	}
}

// simHerd: three idle members; every host opens 30 connections within the
// same second.
func simHerd(algo simAlgo, seed uint64) []float64 {
	c := newSimCluster(algo, seed, 3, []int{1, 1, 1}, longLived)
	c.run(5, steady(0, 0, 0))
	c.run(7, steady(30, 5, 6, 0, 1, 2))
	return c.activeAll()
}

func TestSimNoHerd(t *testing.T) {
	worse := 0
	var ratios []float64
	for seed := uint64(1); seed <= 200; seed++ {
		r := maxOverMean(simHerd(simGlobal, seed))
		ratios = append(ratios, r)
		if r > 1.3 {
			worse++
		}
	}
	slices.Sort(ratios)
	t.Logf("max/mean over 200 bursts: median %.2f, p95 %.2f, worst %.2f; above 1.3: %d", ratios[100], ratios[190], ratios[199], worse)
	// Hashing 90 connections over three members at random puts more than
	// 39 on one in 5.5 % of bursts; the hosts' own corrections within the
	// burst do better, and no burst piles onto one member.
	assert.LessOrEqual(t, worse, 6, "bursts above 1.3 of 200")
	assert.Less(t, ratios[199], 1.5)
}

// TestSimStable: constant load of connections of several lifetimes (fixed
// or exponential): once settled, no share moves more than 5 pp from one
// interval to the next, and the load stays even.
func TestSimStable(t *testing.T) {
	for _, tt := range []struct {
		name  string
		life  float64
		exp   bool
		rate  float64 // a host
		swing float64 // the bound
	}{
		{"2 s", 2, false, 20, 0.05}, {"exp 5 s", 5, true, 20, 0.05},
		// Few arrivals of long connections: each interval's arrivals and
		// departures move the counts by more next to the arrivals planned
		// for (docs/architecture.md has the figures).
		{"10 s, 30 a second", 10, false, 10, 0.08}, {"exp 30 s, 15 a second", 30, true, 5, 0.15},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c *simCluster
			life := func(int) float64 {
				if tt.exp {
					return c.rng.ExpFloat64() * tt.life
				}
				return tt.life
			}
			c = newSimCluster(simGlobal, 1, 3, []int{1, 2, 1, 1}, life)
			arr := func(h int, t0, t1 float64) int {
				n := 0
				for x := c.rng.ExpFloat64() / tt.rate; x < t1-t0; x += c.rng.ExpFloat64() / tt.rate {
					n++
				}
				return n
			}
			c.run(40, arr)
			mean := make([]float64, 4)
			for c.now < 100 {
				c.run(c.now+0.5, arr)
				for m, v := range c.activeAll() {
					mean[m] += v / float64(c.capacity[m])
				}
			}
			worst := 0.0
			for _, h := range c.hosts {
				for k := 40; k < len(h.shares); k++ {
					for m := range h.shares[k] {
						worst = max(worst, math.Abs(h.shares[k][m]-h.shares[k-1][m]))
					}
				}
			}
			t.Logf("largest swing %.1f pp; mean active per capacity: max/mean %.2f", 100*worst, maxOverMean(mean))
			assert.LessOrEqual(t, worst, tt.swing)
			assert.LessOrEqual(t, maxOverMean(mean), 1.1)
		})
	}
}

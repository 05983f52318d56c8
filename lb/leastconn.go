package lb

import (
	"math"
	"slices"
	"time"
)

// Least connections: a host deals a least-connections group's new
// connections over its slots like any group's, but sets the members'
// shares of the slots itself, every interval, so that the members' active
// connections follow their capacities (their weights). The figures come
// from every host (LoadViewGlobal: the controller sums the hosts'
// reports) or from the host alone (LoadViewLocal); the host adds its own
// new connections since its last report, which no other host knows yet.
//
// The shares are not "everyone to the least-loaded member": every host
// computes nearly the same shares from the same figures, so a greedy
// choice would send every host's next connections to one member (the herd
// of Mitzenmacher, "How Useful Is Old Information?"). Instead LoadTracker
// predicts each member's active connections a horizon ahead from its
// arrivals and its connections' lifetime (Little's law over the smoothed
// figures), and gives each member the share of the group's expected new
// connections that brings every member to the same load per capacity at
// the horizon (water-filling). A floor keeps every member in the choice,
// and one interval moves the shares a bounded step towards that target.

// Tuning of least connections (docs/architecture.md explains each).
const (
	// Horizon is how far ahead the shares aim to even the load: an
	// imbalance is worked off over this time, not at once.
	Horizon = 3 * time.Second
	// LoadWindow is the time constant of the smoothed arrival rates and
	// active connections.
	LoadWindow = 5 * time.Second
	// LifeWindow is the time constant of the smoothed departures and
	// active connections the members' connection lifetimes are estimated
	// from (a lifetime changes slowly; its estimate is noisy).
	LifeWindow = 20 * time.Second
	// FloorShare is the part of the new connections always dealt by the
	// capacities, so that no member is ever starved of new connections.
	FloorShare = 0.05
	// MaxShareStep is the furthest one recomputation moves any member's
	// share (0.25: 25 percentage points).
	MaxShareStep = 0.25
	// ShareGain is the part of the way to the target shares one
	// recomputation goes (the rest of the way is left to the next ones:
	// a fluctuation of the counts that the next figures undo moves little).
	ShareGain = 1.0
	// MinPlan is, per member, the fewest new connections the shares plan
	// for over the horizon when few are arriving: with none arriving, a
	// small imbalance must not send the next burst to one member.
	MinPlan = 8
	// StaleAfter is how many intervals global figures may go without an
	// update before a host falls back to the weights.
	StaleAfter = 3
)

// LoadSample is one recomputation's figures of a least-connections
// group, one entry a member.
type LoadSample struct {
	// At is when the figures hold.
	At time.Time
	// Keys identify the members (their labels): a member's history
	// follows its key across changes of the group.
	Keys []string
	// Capacity is each member's weight, 0 for one that takes no new
	// connections (draining, disabled).
	Capacity []int
	// Active is each member's open connections as seen now.
	Active []float64
	// Arrivals is each member's new connections, counted since some
	// start: a counter (a value below the last one means counting
	// started again).
	Arrivals []float64
	// Fallback asks for shares by capacity (the figures are too old).
	Fallback bool
}

// LoadTracker is one least-connections group's state on a host between
// recomputations: each member's smoothed figures and the shares last
// given. Not safe for concurrent use.
type LoadTracker struct {
	members map[string]*trackedMember
	last    time.Time
}

type trackedMember struct {
	arrivals float64 // the counter as last seen
	current  float64 // active connections as last seen
	rate     float64 // smoothed arrivals a second
	leaving  float64 // smoothed departures a second (LifeWindow)
	held     float64 // smoothed active connections (LifeWindow)
	active   float64 // smoothed active connections
	share    float64 // last given
	seen     bool
}

// NewLoadTracker returns a tracker with no history.
func NewLoadTracker() *LoadTracker {
	return &LoadTracker{members: map[string]*trackedMember{}}
}

// Shares takes a sample and returns each member's share of the new
// connections (summing to 1 over the members with capacity; all 0 when
// none has any).
func (t *LoadTracker) Shares(s LoadSample) []float64 {
	n := len(s.Keys)
	dt := s.At.Sub(t.last).Seconds()
	first := t.last.IsZero() || dt <= 0
	alpha, slow := 1.0, 1.0
	if !first {
		alpha = 1 - math.Exp(-dt/LoadWindow.Seconds())
		slow = 1 - math.Exp(-dt/LifeWindow.Seconds())
	}
	// Smoothed figures, member by member; members gone are forgotten.
	ms := make([]*trackedMember, n)
	for i, k := range s.Keys {
		m := t.members[k]
		if m == nil {
			m = &trackedMember{}
			t.members[k] = m
		}
		ms[i] = m
		switch {
		case !m.seen || first:
			m.active, m.held = s.Active[i], s.Active[i]
		default:
			got := s.Arrivals[i] - m.arrivals
			if got < 0 {
				got = 0 // counting started again
			}
			// What left: what came, less what the count grew by.
			left := max(0, got-(s.Active[i]-m.current))
			m.rate += alpha * (got/dt - m.rate)
			m.leaving += slow * (left/dt - m.leaving)
			m.held += slow * (s.Active[i] - m.held)
			m.active += alpha * (s.Active[i] - m.active)
		}
		m.arrivals, m.current, m.seen = s.Arrivals[i], s.Active[i], true
	}
	if len(t.members) > n {
		keep := make(map[string]bool, n)
		for _, k := range s.Keys {
			keep[k] = true
		}
		for k := range t.members {
			if !keep[k] {
				delete(t.members, k)
			}
		}
	}
	t.last = s.At

	capTotal := 0
	for _, c := range s.Capacity {
		capTotal += max(c, 0)
	}
	out := make([]float64, n)
	if capTotal == 0 {
		for _, m := range ms {
			m.share = 0
		}
		return out
	}
	byCapacity := make([]float64, n)
	for i, c := range s.Capacity {
		byCapacity[i] = float64(max(c, 0)) / float64(capTotal)
	}
	target := byCapacity
	if !s.Fallback {
		target = t.target(s, ms, byCapacity)
	}
	// The step from the last shares (renormalised over the members that
	// take connections now; by capacity when there are none).
	prev := make([]float64, n)
	sum := 0.0
	for i, m := range ms {
		if s.Capacity[i] > 0 {
			prev[i] = m.share
			sum += m.share
		}
	}
	if sum <= 0 {
		copy(prev, byCapacity)
	} else {
		for i := range prev {
			prev[i] /= sum
		}
	}
	furthest := 0.0
	for i := range target {
		furthest = max(furthest, math.Abs(target[i]-prev[i]))
	}
	step := ShareGain
	if furthest*step > MaxShareStep {
		step = MaxShareStep / furthest
	}
	for i := range out {
		out[i] = prev[i] + step*(target[i]-prev[i])
		ms[i].share = out[i]
	}
	return out
}

// target is the shares that even the members' predicted load per
// capacity at the horizon, with the floor mixed in.
func (t *LoadTracker) target(s LoadSample, ms []*trackedMember, byCapacity []float64) []float64 {
	h := Horizon.Seconds()
	rate, leaving, held, members := 0.0, 0.0, 0.0, 0
	for i, m := range ms {
		rate += m.rate
		leaving += m.leaving
		held += m.held
		if s.Capacity[i] > 0 {
			members++
		}
	}
	// The group's lifetime, for members with too few arrivals of their
	// own to tell theirs.
	groupLife := math.Inf(1)
	if leaving > 1e-9 {
		groupLife = held / leaving
	}
	planned := max(rate*h, float64(MinPlan*members))
	perSecond := planned / h
	// A member m given share x has at the horizon, with exponential
	// lifetimes of mean d: keep(m) + x·gain(m) connections, where keep is
	// what is open now and still open then, and gain what a share of 1
	// would add. Water-filling finds the level λ of load per capacity such
	// that the shares max(0, (λ·c − keep)/gain) sum to 1.
	// A member's count above or below its fair part differs by chance as
	// much as the square root of that part: such a difference is shrunk
	// towards the fair part, by how large it is next to chance (a
	// difference of 4 standard deviations stays 94 %, one of 1 is halved),
	// so that the shares do not chase the counts' own noise.
	sumActive, sumCap := 0.0, 0.0
	for i, c := range s.Capacity {
		if c > 0 {
			sumActive += s.Active[i]
			sumCap += float64(c)
		}
	}
	seen := make([]float64, len(ms))
	for i, c := range s.Capacity {
		seen[i] = s.Active[i]
		if c <= 0 || sumActive <= 0 {
			continue
		}
		fair := sumActive * float64(c) / sumCap
		d := s.Active[i] - fair
		seen[i] = fair + d*d*d/(d*d+max(fair, 1))
	}
	type cand struct {
		i                  int
		keep, gain, weight float64
		threshold          float64 // λ at which its share becomes positive
	}
	var cs []cand
	for i, m := range ms {
		c := float64(max(s.Capacity[i], 0))
		if c == 0 {
			continue
		}
		life := groupLife
		if m.leaving*h >= 1 {
			life = m.held / m.leaving
		}
		keep, gain := seen[i], perSecond*h
		if !math.IsInf(life, 1) && life > 0 && life < 1e3*h {
			e := math.Exp(-h / life)
			// What is open now and still open at the horizon: of a
			// member's count above or below its mean, only the part that
			// lives long enough to matter (the rest is gone by itself).
			w := life / (life + LoadWindow.Seconds())
			now := w*seen[i] + (1-w)*m.active
			keep, gain = now*e, perSecond*life*(1-e)
		} else if life == 0 {
			keep, gain = 0, perSecond*1e-3
		} else {
			// Connections that do not leave: a difference between the
			// counts is no noise that passes but load that stays.
			keep = s.Active[i]
		}
		gain = max(gain, 1e-9)
		cs = append(cs, cand{i: i, keep: keep, gain: gain, weight: c, threshold: keep / c})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		switch {
		case a.threshold < b.threshold:
			return -1
		case a.threshold > b.threshold:
			return 1
		}
		return a.i - b.i
	})
	// Add members by threshold until the level stays below the next one's.
	sumKeep := 0.0
	sumCap = 0
	level := 0.0
	for k, c := range cs {
		sumKeep += c.keep / c.gain
		sumCap += c.weight / c.gain
		level = (1 + sumKeep) / sumCap
		if k+1 == len(cs) || level <= cs[k+1].threshold {
			break
		}
	}
	out := make([]float64, len(ms))
	total := 0.0
	for _, c := range cs {
		if x := (level*c.weight - c.keep) / c.gain; x > 0 {
			out[c.i] = x
			total += x
		}
	}
	for i := range out {
		if total > 0 {
			out[i] /= total
		} else {
			out[i] = byCapacity[i]
		}
		out[i] = (1-FloorShare)*out[i] + FloorShare*byCapacity[i]
	}
	return out
}

// ShareSlots is how many of MaxSlots slots each member gets for shares
// (every member with a positive share at least one). prev, the slots
// installed now (nil for none), is kept while no member's count would
// change by more than one slot: shares that jitter by less than 0.4 pp
// move nothing.
func ShareSlots(shares []float64, prev []int) []int {
	w := make([]int, len(shares))
	for i, s := range shares {
		if s > 0 {
			w[i] = max(1, int(math.Round(s*(1<<20))))
		}
	}
	q := SlotQuotas(MaxSlots, w)
	if q == nil {
		return nil
	}
	if len(prev) == len(q) {
		same, sum := true, 0
		for i := range q {
			sum += prev[i]
			if d := q[i] - prev[i]; d > 1 || d < -1 || (q[i] == 0) != (prev[i] == 0) {
				same = false
			}
		}
		if same && sum == MaxSlots {
			return prev
		}
	}
	return q
}

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/testbed"
)

// heldCounts opens held connections and counts, per server, those that
// got their first answer.
type heldCounts struct {
	mu   sync.Mutex
	open map[string]map[string]int // by target, by server
}

func newHeldCounts() *heldCounts { return &heldCounts{open: map[string]map[string]int{}} }

// start opens count connections from vm to target at rate a second, each
// held for hold after its first answer; the result comes on the channel.
func (h *heldCounts) start(t *testing.T, f *fleet, vm, target string, count int, rate float64, hold time.Duration) <-chan *testbed.LoadResult {
	return startLoad(t, f, testbed.LoadSpec{VM: vm, Target: target, Count: count, Concurrency: count, Rate: rate, Hold: hold,
		Timeout: 5 * time.Second, Opened: func(server string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.open[target] == nil {
				h.open[target] = map[string]int{}
			}
			h.open[target][server]++
		}})
}

// of is the counts of target's servers (each of servers, 0 for none).
func (h *heldCounts) of(target string, servers []string) []float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]float64, len(servers))
	for i, s := range servers {
		out[i] = float64(h.open[target][s])
	}
	return out
}

func (h *heldCounts) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.open {
		for _, v := range m {
			n += v
		}
	}
	return n
}

func maxOverMean(v []float64) float64 {
	mx, sum := 0.0, 0.0
	for _, x := range v {
		mx = max(mx, x)
		sum += x
	}
	return mx / (sum / float64(len(v)))
}

// TestGlobalLeastConnections is the first case, with three groups
// side by side (weighted; least-connections with a local view; with the
// global view): four equal members, s3 and s4 disabled; clients on h1 open
// 400 long-lived connections to each (40 a second); s3 and s4 are enabled;
// clients on h2 open 400 more (20 a second). Only the global view evens
// the members' connections (each host sees its own connections only with
// the local one). No held connection changes member while the shares
// move.
func TestGlobalLeastConnections(t *testing.T) {
	f := newFleet(t)
	servers := []string{"s1", "s2", "s3", "s4"}
	type variant struct{ name, vip, extra string }
	variants := []variant{
		{"weighted", "10.96.0.20", ""},
		{"least-connections, local", "10.96.0.21", `,"algorithm":"least-connections","load_view":"local"`},
		{"least-connections, global", "10.96.0.22", `,"algorithm":"least-connections"`},
	}
	var members []string
	for _, vm := range servers {
		state := "active"
		if vm == "s3" || vm == "s4" {
			state = "disabled"
		}
		members = append(members, fmt.Sprintf(`{"ip":%q,"state":%q}`, f.tb.VM(vm).Addr(), state))
	}
	for i, v := range variants {
		f.ctl.Call("POST", "/v1/groups", fmt.Sprintf(`{"name":"g%d","vip":%q,"ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[%s]%s}`,
			i, v.vip, strings.Join(members, ","), v.extra), 201)
	}
	idx := f.group(t, "g2").ModifyIndex
	f.appliedEverywhere(t, idx, time.Now())
	time.Sleep(3 * time.Second) // a few recomputations

	held := newHeldCounts()
	var done []<-chan *testbed.LoadResult
	for _, v := range variants {
		done = append(done, held.start(t, f, "c1", v.vip+":80", 400, 40, 60*time.Second))
	}
	require.Eventually(t, func() bool { return held.total() == 1200 }, 30*time.Second, 100*time.Millisecond, "phase 1: every connection answered")
	for i := range variants {
		for _, vm := range []string{"s3", "s4"} {
			f.ctl.Call("PATCH", fmt.Sprintf("/v1/groups/g%d/members/%s", i, f.tb.VM(vm).Addr()), `{"state":"active"}`, 200)
		}
	}
	f.appliedEverywhere(t, f.group(t, "g2").ModifyIndex, time.Now())
	time.Sleep(4 * time.Second) // the shares move a bounded step an interval
	for _, v := range variants {
		done = append(done, held.start(t, f, "c2", v.vip+":80", 400, 20, 15*time.Second))
	}
	require.Eventually(t, func() bool { return held.total() == 2400 }, 45*time.Second, 100*time.Millisecond, "phase 2: every connection answered")

	ratios := map[string]float64{}
	for _, v := range variants {
		open := held.of(v.vip+":80", servers)
		ratios[v.name] = maxOverMean(open)
		t.Logf("%-26s active connections s1..s4 %v: max/mean %.2f", v.name, open, ratios[v.name])
	}
	assert.Greater(t, ratios["weighted"], 1.3, "static shares: about 300/300/100/100")
	assert.Greater(t, ratios["least-connections, local"], 1.3, "h2 sees none of h1's connections")
	assert.LessOrEqual(t, ratios["least-connections, global"], 1.10, "the global view evens them")

	// The hosts report their shares: dlbctl shows them.
	out := f.dlbctl(t, "", "group", "stats", "g2")
	t.Logf("dlbctl group stats g2:\n%s", out)
	noneFailed(t, done)
}

// memberList is the JSON members of a group of the VMs, joined.
func memberList(f *fleet, vms []string) string {
	var members []string
	for _, vm := range vms {
		members = append(members, fmt.Sprintf(`{"ip":%q}`, f.tb.VM(vm).Addr()))
	}
	return strings.Join(members, ",")
}

// startLoad runs the traffic tool in the background; its result comes on
// the channel.
func startLoad(t *testing.T, f *fleet, spec testbed.LoadSpec) <-chan *testbed.LoadResult {
	ch := make(chan *testbed.LoadResult, 1)
	go func() {
		res, err := f.tb.Load(f.ctx, spec)
		assert.NoError(t, err)
		ch <- res
	}()
	return ch
}

// noneFailed waits for the runs and checks that none of their exchanges
// failed; it returns how many were answered.
func noneFailed(t *testing.T, done []<-chan *testbed.LoadResult) int {
	t.Helper()
	answered := 0
	for _, d := range done {
		res := <-d
		require.NotNil(t, res)
		answered += res.Answered()
		assert.Zero(t, res.Failed(), "%s to %s: %v %v", res.VM, res.Target, res.Failures, res.FailureExamples)
	}
	return answered
}

// lcGroup creates a least-connections group of the VMs, VIP port 80 to
// their target port, and waits until every host installed it.
func lcGroup(t *testing.T, f *fleet, name, vip string, target uint16, vms []string) {
	t.Helper()
	f.ctl.Call("POST", "/v1/groups", fmt.Sprintf(`{"name":%q,"vip":%q,"ports":[{"protocol":"tcp","port":80,"target_port":%d}],"members":[%s],"algorithm":"least-connections"}`,
		name, vip, target, memberList(f, vms)), 201)
	f.appliedEverywhere(t, f.group(t, name).ModifyIndex, time.Now())
}

// openByPort counts, on each VM, the TCP connections established to each
// of its local ports, as the VM's kernel sees them (ss).
func openByPort(t *testing.T, f *fleet, vms []string, ports ...uint16) map[string]map[uint16]int {
	t.Helper()
	out := map[string]map[uint16]int{}
	for _, vm := range vms {
		text, err := f.tb.Exec(f.ctx, vm, "ss", "-Htn", "state", "established")
		require.NoError(t, err)
		out[vm] = map[uint16]int{}
		for _, line := range strings.Split(text, "\n") {
			fields := strings.Fields(line)
			if len(fields) < 4 {
				continue
			}
			ap, err := netip.ParseAddrPort(fields[2])
			if err != nil {
				continue
			}
			if slices.Contains(ports, ap.Port()) {
				out[vm][ap.Port()]++
			}
		}
	}
	return out
}

// slowMembers gives s1..s4 two slow services: 8082 and 8083 answer each
// line after a second on s1, s2, s3 and after four on s4.
func slowMembers(topo *testbed.Topology) {
	for i := range topo.Hosts {
		for j := range topo.Hosts[i].VMs {
			vm := &topo.Hosts[i].VMs[j]
			if !strings.HasPrefix(vm.Name, "s") {
				continue
			}
			delay := "1s"
			if vm.Name == "s4" {
				delay = "4s"
			}
			vm.Services = append(vm.Services, "tcp:8082:delay="+delay, "tcp:8083:delay="+delay)
		}
	}
}

// TestSlowMember is the second case: four equal members, s4
// answers four times slower than the others, so its connections last four
// times longer; clients on every host open connections at a steady rate,
// each closed once answered. Two groups over the same servers side by
// side, a weighted one to port 8082 and a least-connections one to 8083;
// the members' kernels count the connections open on each. Weighted shares
// leave s4 with four times the others' connections (max/mean 2.29);
// least connections sends s4 a quarter of the others' share.
func TestSlowMember(t *testing.T) {
	f := newFleet(t, slowMembers)
	servers := []string{"s1", "s2", "s3", "s4"}
	members := memberList(f, servers)
	type variant struct {
		name, vip string
		port      uint16
		extra     string
	}
	variants := []variant{
		{"weighted", "10.96.0.30", 8082, ""},
		{"least-connections", "10.96.0.31", 8083, `,"algorithm":"least-connections"`},
	}
	for _, v := range variants {
		f.ctl.Call("POST", "/v1/groups", fmt.Sprintf(`{"name":%q,"vip":%q,"ports":[{"protocol":"tcp","port":80,"target_port":%d}],"members":[%s]%s}`,
			v.name, v.vip, v.port, members, v.extra), 201)
	}
	f.appliedEverywhere(t, f.group(t, "least-connections").ModifyIndex, time.Now())

	const (
		rate    = 25.0 // new connections a second, from each client to each group
		settle  = 45 * time.Second
		measure = 30 * time.Second
	)
	count := int(rate * (settle + measure + 5*time.Second).Seconds())
	var done []<-chan *testbed.LoadResult
	for _, c := range []string{"c1", "c2", "c3"} {
		for _, v := range variants {
			done = append(done, startLoad(t, f, testbed.LoadSpec{VM: c, Target: v.vip + ":80", Count: count, Concurrency: 300, Rate: rate, Timeout: 10 * time.Second}))
		}
	}
	time.Sleep(settle)
	sums := map[uint16][]float64{8082: make([]float64, 4), 8083: make([]float64, 4)}
	samples := 0
	for end := time.Now().Add(measure); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		open := openByPort(t, f, servers, 8082, 8083)
		for i, s := range servers {
			for port, sum := range sums {
				sum[i] += float64(open[s][port])
			}
		}
		samples++
	}
	ratios := map[string]float64{}
	for _, v := range variants {
		mean := sums[v.port]
		for i := range mean {
			mean[i] /= float64(samples)
		}
		ratios[v.name] = maxOverMean(mean)
		t.Logf("%-18s mean open connections s1..s4 over %d samples: %.1f: max/mean %.2f", v.name, samples, mean, ratios[v.name])
	}
	t.Logf("dlbctl group stats least-connections:\n%s", f.dlbctl(t, "", "group", "stats", "least-connections"))
	assert.Greater(t, ratios["weighted"], 1.8, "static shares: s4 holds four times the others' connections")
	assert.LessOrEqual(t, ratios["least-connections"], 1.15, "least connections evens them")
	noneFailed(t, done)
}

// TestNoHerd is the third case: clients on all three hosts each
// open 30 long-lived connections in the same second to a least-connections
// group of three idle members. Every host sees the same (stale) global
// figures; a greedy choice on them would send every host's burst to the
// same member, shares do not.
func TestNoHerd(t *testing.T) {
	f := newFleet(t)
	servers := []string{"s1", "s2", "s3"}
	lcGroup(t, f, "herd", "10.96.0.40", 8080, servers)
	time.Sleep(3 * time.Second) // a few recomputations on idle members

	held := newHeldCounts()
	var done []<-chan *testbed.LoadResult
	for _, c := range []string{"c1", "c2", "c3"} {
		done = append(done, held.start(t, f, c, "10.96.0.40:80", 30, 30, 10*time.Second))
	}
	require.Eventually(t, func() bool { return held.total() == 90 }, 20*time.Second, 50*time.Millisecond, "every connection answered")
	open := held.of("10.96.0.40:80", servers)
	ratio := maxOverMean(open)
	t.Logf("open connections s1..s3 after three bursts of 30: %v: max/mean %.2f", open, ratio)
	assert.LessOrEqual(t, ratio, 1.3)
	noneFailed(t, done)
}

// TestStableShares is the fourth case: constant load (the slow
// member's, from clients on every host) for 60 s once settled; every
// host's shares, read from the controller each of its intervals, swing by
// at most 5 pp between consecutive intervals.
func TestStableShares(t *testing.T) {
	f := newFleet(t, slowMembers)
	servers := []string{"s1", "s2", "s3", "s4"}
	lcGroup(t, f, "stable", "10.96.0.50", 8083, servers)

	const (
		rate    = 25.0
		settle  = 40 * time.Second
		measure = 60 * time.Second
	)
	var done []<-chan *testbed.LoadResult
	for _, c := range []string{"c1", "c2", "c3"} {
		done = append(done, startLoad(t, f, testbed.LoadSpec{VM: c, Target: "10.96.0.50:80", Count: int(rate * (settle + measure + 5*time.Second).Seconds()),
			Concurrency: 300, Rate: rate, Timeout: 10 * time.Second}))
	}
	time.Sleep(settle)

	// Each host's shares (s1..s4) at each of its recomputations.
	series := map[string][][]float64{}
	last := map[string]time.Time{}
	for end := time.Now().Add(measure); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		var st wire.GroupStats
		require.NoError(t, json.Unmarshal(f.ctl.Call("GET", "/v1/groups/stable/stats", "", 200), &st))
		for _, h := range st.Balancing {
			if h.RecomputedAt == nil || h.RecomputedAt.Equal(last[h.Host]) {
				continue
			}
			require.Equal(t, wire.ViewGlobal, h.View, "host %s", h.Host)
			last[h.Host] = *h.RecomputedAt
			shares := make([]float64, len(servers))
			for _, m := range h.Members {
				for i, s := range servers {
					if m.Member == f.tb.VM(s).Addr().String() {
						shares[i] = m.Share
					}
				}
			}
			series[h.Host] = append(series[h.Host], shares)
		}
	}
	require.Len(t, series, 3, "every host reports its shares")
	worst := 0.0
	for host, s := range series {
		hostWorst := 0.0
		for k := 1; k < len(s); k++ {
			for m := range s[k] {
				hostWorst = max(hostWorst, math.Abs(s[k][m]-s[k-1][m]))
			}
		}
		t.Logf("%s: %d intervals, largest swing %.1f pp, shares s1..s4 first %.3f last %.3f", host, len(s), 100*hostWorst, s[0], s[len(s)-1])
		assert.GreaterOrEqual(t, len(s), 30, "%s: one recomputation a second or so", host)
		worst = max(worst, hostWorst)
	}
	assert.LessOrEqual(t, worst, 0.05, "no share swings by more than 5 pp between intervals")
	noneFailed(t, done)
}

// TestLeastConnectionsControllerDown is the fifth case: the
// controller is killed for 10 s while clients on every host keep opening
// held connections to a least-connections group. Every agent falls back to
// the weights once its global figures are three intervals old (its metric
// says so), no connection fails or changes member, and every agent
// balances on the global figures again once the controller is back.
func TestLeastConnectionsControllerDown(t *testing.T) {
	f := newFleet(t)
	servers := []string{"s1", "s2", "s3", "s4"}
	lcGroup(t, f, "lc", "10.96.0.60", 8080, servers)
	views := func(view string) bool {
		for _, a := range f.agents {
			if a.metric(fmt.Sprintf(`dlb_agent_lc_groups{view=%q}`, view)) != 1 {
				return false
			}
		}
		return true
	}
	require.Eventually(t, func() bool { return views(wire.ViewGlobal) }, 10*time.Second, 100*time.Millisecond, "every host balances on the global figures")

	const rate, hold = 15.0, 3 * time.Second
	var done []<-chan *testbed.LoadResult
	for _, c := range []string{"c1", "c2", "c3"} {
		done = append(done, startLoad(t, f, testbed.LoadSpec{VM: c, Target: "10.96.0.60:80", Count: int(rate * 40), Concurrency: 100, Rate: rate, Hold: hold, Timeout: 5 * time.Second}))
	}
	time.Sleep(10 * time.Second)
	killed := time.Now()
	f.ctl.Kill()
	require.Eventually(t, func() bool { return views(wire.ViewWeights) }, 10*time.Second, 100*time.Millisecond, "every host falls back to the weights")
	fellBack := time.Since(killed)
	time.Sleep(10*time.Second - time.Since(killed))
	restarted := time.Now()
	f.ctl.Start()
	require.Eventually(t, func() bool { return views(wire.ViewGlobal) }, 15*time.Second, 100*time.Millisecond, "every host balances on the global figures again")
	t.Logf("controller killed: every host on the weights after %v; restarted after %v: every host global again %v later",
		fellBack.Round(time.Millisecond), restarted.Sub(killed).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	total := noneFailed(t, done)
	t.Logf("%d connections, each asked again after %v on the same member, none failed", total, hold)
	var st wire.GroupStats
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal(f.ctl.Call("GET", "/v1/groups/lc/stats", "", 200), &st))
		n := 0
		for _, h := range st.Balancing {
			if h.View == wire.ViewGlobal {
				n++
			}
		}
		return n == 3
	}, 10*time.Second, 200*time.Millisecond, "the controller shows every host on the global view: %+v", st.Balancing)
}

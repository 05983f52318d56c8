package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/pipeline"
	"github.com/ovs-dlb/dlb/testbed"
)

// commitPackets sums, on a host, the packets of the members' commit flows
// (DLB_MEMBER, cookie kind 4) of the VIP port with index port, by member
// index.
func commitPackets(t *testing.T, c *cluster, host string, port int) map[int]int {
	t.Helper()
	out, err := c.tb.Host(host).OFCtl(c.ctx, "dump-flows", fmt.Sprintf("cookie=%#x/%#x", pipeline.Cookie(pipeline.KindMember, 0, 0), pipeline.CookieKindMask))
	require.NoError(t, err)
	flow := regexp.MustCompile(`cookie=0x([0-9a-f]+),.* n_packets=(\d+),.*reg2=0x([0-9a-f]+)`)
	got := map[int]int{}
	for _, l := range strings.Split(out, "\n") {
		m := flow.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		cookie, _ := strconv.ParseUint(m[1], 16, 64)
		if int(cookie&0xffff) != port+1 {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		idx, _ := strconv.ParseUint(m[3], 16, 32)
		got[int(idx)] += n
	}
	return got
}

func total(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestCommittedFlowChoosesOnce: a connection the DLB committed stays "new"
// in conntrack until its member replies, so until then its packets used to
// go through the select group and a member's commit again (a SYN sent
// again, a UDP flow's later datagrams): another choice, another count in
// the commit flow's counters, and a label written again. Now a new
// connection with a member's MAC in its label goes straight to that member.
// Here the member never replies (nothing listens on the target port): 20
// UDP flows send 5 datagrams each, 0.3 s apart; each flow's commit is
// counted once (the member statistics' new connections), not 5 times; all
// 5 datagrams of a flow go to one member, in the weighted group and with
// session affinity. (Datagrams of one flow that reach the switch in the
// same batch, before the first one's commit, are each committed: the
// counters count those more than once.)
func TestCommittedFlowChoosesOnce(t *testing.T) {
	const flows, datagrams = 20, 5
	for _, tc := range []struct {
		name     string
		affinity string
	}{{"weighted", ""}, {"affinity", "    affinity: {client_ip_timeout_s: 600}\n"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClusterFor(t, func(tb *testbed.Testbed) string {
				s := "groups:\n  - name: silent\n    vip: 10.96.0.10\n" + tc.affinity +
					"    ports: [{protocol: udp, port: 54, target_port: 5454}]\n    members:\n"
				for _, vm := range []string{"s1", "s2", "s3"} {
					s += member(tb, vm, "")
				}
				return s
			})
			src := sources("10.0.0.1", 47000, flows)
			for round := 1; round <= datagrams; round++ {
				res, err := c.tb.Load(c.ctx, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:54", Proto: "udp", Sources: src, Concurrency: flows, Timeout: 300 * time.Millisecond})
				require.NoError(t, err)
				require.Equal(t, flows, res.Failed(), "nobody answers on 5454: %v %v", res.Answers, res.Failures)
				// The switch's flow counters lag its datapath by up to
				// about a second (revalidators): wait for what it counted.
				commits := commitPackets(t, c, "h1", 0)
				for deadline := time.Now().Add(3 * time.Second); total(commits) < flows && time.Now().Before(deadline); commits = commitPackets(t, c, "h1", 0) {
					time.Sleep(100 * time.Millisecond)
				}
				t.Logf("round %d: commits on h1 by member index %v", round, commits)
				assert.Equal(t, flows, total(commits), "round %d: one commit per flow, not per datagram", round)
			}
			// One conntrack entry per flow, each with one member.
			out, err := c.tb.Host("h1").AppCtl(c.ctx, "dpctl/dump-conntrack", "zone=56064")
			require.NoError(t, err)
			assert.Equal(t, flows, strings.Count(out, "dport=54)"), "entries:\n%s", out)
		})
	}
}

// memberConnections reads an agent's count of new connections to a
// member through a VIP port of a group.
func memberConnections(a *agentProc, group, port, member string) float64 {
	return a.metric(fmt.Sprintf(`dlb_agent_member_new_connections_total{group=%q,member=%q,port=%q}`, group, member, port))
}

// memberBytes is an agent's count of the bytes of a member's connections
// one way (direction to_member or from_member).
func memberBytes(a *agentProc, group, port, member, direction string) float64 {
	return a.metric(fmt.Sprintf(`dlb_agent_member_bytes_total{direction=%q,group=%q,member=%q,port=%q}`, direction, group, member, port))
}

// TestMemberNewConnectionsCounted: clients on two hosts (c1 on h1 with
// member s1, c2 on h2 with s2), and s1 itself (its connections to itself
// through the VIP are hairpinned, in NAT mode), open TCP connections and
// UDP flows through the VIP; once the agents read their counters again,
// each member's new connections summed over the hosts equal, exactly, what
// the load tool says the member answered, for a member on the client's
// host and on another alike: in a weighted group, with session affinity,
// and in DSR mode. The bytes each way of the members that are not clients
// equal what their kernels counted.
func TestMemberNewConnectionsCounted(t *testing.T) {
	for _, tc := range []struct {
		name, group, vip string
		ports            map[string]string // counted port → the port the tool connects to
		clients          []string
		dsr              bool
		// over is how many more than answered a member may be counted
		// (0: exactly as many).
		over int
		doc  func(tb *testbed.Testbed) string
	}{
		{name: "weighted", group: "web", vip: "10.96.0.10", ports: map[string]string{"tcp/80": "80", "udp/53": "53"}, clients: []string{"c1", "c2", "s1"},
			doc: func(tb *testbed.Testbed) string {
				return webGroup(tb, member(tb, "s1", ""), member(tb, "s2", ""), member(tb, "s3", ""))
			}},
		// A client's first connection learns its member; the learned flow
		// makes OVS translate cached datapath flows again, and it credits
		// the commit flow a connection's first packet went through
		// anew now and then: 1 to 3 more of 1,060 were seen.
		{name: "affinity", group: "web", vip: "10.96.0.10", ports: map[string]string{"tcp/80": "80", "udp/53": "53"}, clients: []string{"c1", "c2", "s1"}, over: 3,
			doc: func(tb *testbed.Testbed) string { return stickyGroup(tb, 600, nil) }},
		{name: "dsr", group: "direct", vip: "10.96.0.40", ports: map[string]string{"tcp/8080": "8080", "udp/5353": "5353"}, clients: []string{"c1", "c2"}, dsr: true,
			doc: func(tb *testbed.Testbed) string {
				s := "groups:\n  - name: direct\n    vip: 10.96.0.40\n    mode: dsr\n    ports: [{protocol: tcp, port: 8080}, {protocol: udp, port: 5353}]\n    members:\n"
				for _, vm := range []string{"s1", "s2", "s3"} {
					s += member(tb, vm, "")
				}
				return s
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := testbed.Example("three-hosts")
			require.NoError(t, err)
			if tc.dsr {
				for i := range topo.Hosts {
					for j := range topo.Hosts[i].VMs {
						if vm := &topo.Hosts[i].VMs[j]; strings.HasPrefix(vm.Name, "s") {
							vm.VIPOnLo = []string{tc.vip}
						}
					}
				}
			}
			c := newClusterOn(t, topo, tc.doc)
			// The members' kernels count what they receive and send, but
			// for a member that is a client too (its own traffic mixes in).
			var watched []string
			for _, vm := range []string{"s1", "s2", "s3"} {
				if !slices.Contains(tc.clients, vm) {
					require.NoError(t, c.tb.CountL4(c.ctx, vm))
					watched = append(watched, vm)
				}
			}
			want := map[string]map[string]int{}
			for port, vport := range tc.ports {
				want[port] = map[string]int{}
				proto, _, _ := strings.Cut(port, "/")
				for k, vm := range tc.clients {
					count := []int{600, 400, 60}[k]
					if proto == "udp" {
						count /= 2
					}
					res := c.load(t, testbed.LoadSpec{VM: vm, Target: tc.vip + ":" + vport, Proto: proto, Count: count})
					require.Zero(t, res.Failed(), "%s %s: %v %v", vm, port, res.Failures, res.FailureExamples)
					for server, n := range res.Answers {
						want[port][c.tb.VM(server).Addr().String()] += n
					}
				}
			}
			counted := func() map[string]map[string]int {
				got := map[string]map[string]int{}
				for port := range tc.ports {
					got[port] = map[string]int{}
					for _, s := range []string{"s1", "s2", "s3"} {
						ip := c.tb.VM(s).Addr().String()
						for _, a := range c.agents {
							if n := int(memberConnections(a, tc.group, port, ip)); n > 0 {
								got[port][ip] += n
							}
						}
					}
				}
				return got
			}
			var got map[string]map[string]int
			deadline := time.Now().Add(10 * time.Second)
			settled := func(got map[string]map[string]int) bool {
				if tc.over == 0 {
					return assert.ObjectsAreEqual(want, got)
				}
				for port := range want {
					for m, n := range want[port] {
						if got[port][m] < n {
							return false
						}
					}
				}
				return true
			}
			for got = counted(); !settled(got) && time.Now().Before(deadline); got = counted() {
				time.Sleep(200 * time.Millisecond)
			}
			if tc.over == 0 {
				require.Equal(t, want, got, "the agents' counts, summed over hosts, are the tool's answers")
			}
			for port := range want {
				for m, n := range want[port] {
					assert.GreaterOrEqual(t, got[port][m], n, "%s %s: never fewer than answered", port, m)
					assert.LessOrEqual(t, got[port][m], n+max(tc.over, n/100), "%s %s: at most %d or 1 %% more than answered", port, m, tc.over)
				}
			}
			t.Logf("new connections per member, counted by the agents and by the tool: %v", got)
			// Bytes each way, summed over the hosts and the ports, are what
			// the member's kernel received and sent.
			for _, vm := range watched {
				ip := c.tb.VM(vm).Addr().String()
				var to, from float64
				var k testbed.IfCounters
				near := func(a float64, b uint64) bool { return math.Abs(a-float64(b)) <= 0.01*float64(b) }
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(250 * time.Millisecond) {
					to, from = 0, 0
					for port := range tc.ports {
						for _, a := range c.agents {
							to += memberBytes(a, tc.group, port, ip, "to_member")
							from += memberBytes(a, tc.group, port, ip, "from_member")
						}
					}
					var err error
					k, err = c.tb.L4Counters(c.ctx, vm)
					require.NoError(t, err)
					if near(to, k.RxBytes) && near(from, k.TxBytes) || time.Now().After(deadline) {
						break
					}
				}
				assert.InEpsilon(t, float64(k.RxBytes), to, 0.01, "%s: bytes to it %v, its kernel received %d", vm, to, k.RxBytes)
				assert.InEpsilon(t, float64(k.TxBytes), from, 0.01, "%s: bytes from it %v, its kernel sent %d", vm, from, k.TxBytes)
				t.Logf("%s: bytes to it %.0f (its kernel %d), from it %.0f (%d)", vm, to, k.RxBytes, from, k.TxBytes)
			}
		})
	}
}

// TestControllerSumsMemberStats: with a controller, the agents report
// their members' counters and the controller's statistics of the group,
// summed over the hosts, equal what the load tool says each member
// answered (TCP connections and UDP flows from clients on two hosts, to
// members on the clients' hosts and on another), with each host's share
// and no host stale. The bytes each way are within 1 % of what the
// members' own kernels received and sent. Connections held open are
// the members' active connections (within 2) while they are, and none
// once they closed. A member drained keeps its count (its commit flows are
// removed, their final counts sent), the others go on counting.
func TestControllerSumsMemberStats(t *testing.T) {
	f := newFleet(t)
	var members []string
	for _, vm := range []string{"s1", "s2", "s3"} {
		members = append(members, fmt.Sprintf(`{"ip":%q}`, f.tb.VM(vm).Addr()))
	}
	f.ctl.Call("POST", "/v1/groups", `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080},{"protocol":"udp","port":53,"target_port":5353}],"members":[`+strings.Join(members, ",")+`]}`, 201)
	g := f.group(t, "web")
	f.appliedEverywhere(t, g.ModifyIndex, time.Now())
	servers := []string{"s1", "s2", "s3"}
	for _, vm := range servers {
		require.NoError(t, f.tb.CountL4(f.ctx, vm))
	}
	want := map[string]map[string]uint64{"tcp/80": {}, "udp/53": {}}
	for _, run := range []struct {
		vm, proto, port string
		count           int
	}{{"c1", "tcp", "80", 600}, {"c2", "tcp", "80", 400}, {"c1", "udp", "53", 300}, {"c2", "udp", "53", 200}} {
		res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: run.vm, Target: "10.96.0.10:" + run.port, Proto: run.proto, Count: run.count})
		require.NoError(t, err)
		require.Zero(t, res.Failed(), "%v %v", res.Failures, res.FailureExamples)
		for server, n := range res.Answers {
			want[run.proto+"/"+run.port][f.tb.VM(server).Addr().String()] += uint64(n)
		}
	}
	var st wire.GroupStats
	got := func() map[string]map[string]uint64 {
		require.NoError(t, json.Unmarshal(f.ctl.Call("GET", "/v1/groups/web/stats", "", 200), &st))
		out := map[string]map[string]uint64{"tcp/80": {}, "udp/53": {}}
		for _, m := range st.Members {
			if m.NewConnections > 0 {
				out[m.Port][m.Member] = m.NewConnections
			}
			var hosts uint64
			for _, h := range m.Hosts {
				hosts += h.NewConnections
			}
			assert.Equal(t, m.NewConnections, hosts, "%s %s: the hosts' parts add up", m.Port, m.Member)
		}
		return out
	}
	settle := func(what string) {
		var have map[string]map[string]uint64
		deadline := time.Now().Add(15 * time.Second)
		for have = got(); !assert.ObjectsAreEqual(want, have) && time.Now().Before(deadline); have = got() {
			time.Sleep(250 * time.Millisecond)
		}
		require.Equal(t, want, have, "%s: the controller's totals are the tool's answers", what)
	}
	settle("after the traffic")

	// Held open: the members' active connections.
	active := func() map[string]uint64 {
		require.NoError(t, json.Unmarshal(f.ctl.Call("GET", "/v1/groups/web/stats", "", 200), &st))
		out := map[string]uint64{}
		for _, m := range st.Members {
			if m.Port == "tcp/80" {
				out[m.Member] = m.ActiveConnections
			}
		}
		return out
	}
	near := func(want, got map[string]uint64) bool {
		for _, vm := range servers {
			ip := f.tb.VM(vm).Addr().String()
			if d := int64(got[ip]) - int64(want[ip]); d < -2 || d > 2 {
				return false
			}
		}
		return true
	}
	var mu sync.Mutex
	open := map[string]uint64{}
	held := 0
	done := make(chan *testbed.LoadResult, 2)
	for _, run := range []struct {
		vm    string
		count int
	}{{"c1", 90}, {"c2", 60}} {
		held += run.count
		go func() {
			res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: run.vm, Target: "10.96.0.10:80", Count: run.count, Concurrency: run.count, Hold: 12 * time.Second,
				Timeout: 5 * time.Second, Opened: func(server string) {
					mu.Lock()
					defer mu.Unlock()
					open[f.tb.VM(server).Addr().String()]++
				}})
			assert.NoError(t, err)
			done <- res
		}()
	}
	openNow := func() (map[string]uint64, int) {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range open {
			n += int(v)
		}
		return maps.Clone(open), n
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := openNow(); n < held && time.Now().Before(deadline); _, n = openNow() {
		time.Sleep(50 * time.Millisecond)
	}
	wantOpen, n := openNow()
	require.Equal(t, held, n, "every held connection answered")
	time.Sleep(2 * time.Second) // two intervals
	var have map[string]uint64
	for have = active(); !near(wantOpen, have) && time.Now().Before(deadline.Add(2*time.Second)); have = active() {
		time.Sleep(200 * time.Millisecond)
	}
	assert.True(t, near(wantOpen, have), "held open %v, active %v: within 2", wantOpen, have)
	t.Logf("connections held open per member %v; the controller's active connections %v", wantOpen, have)
	for range 2 {
		res := <-done
		require.NotNil(t, res)
		require.Zero(t, res.Failed(), "%v %v", res.Failures, res.FailureExamples)
		for server, n := range res.Answers {
			want["tcp/80"][f.tb.VM(server).Addr().String()] += uint64(n)
		}
	}
	settle("after the held connections")
	closed := map[string]uint64{}
	deadline = time.Now().Add(10 * time.Second)
	for have = active(); !near(closed, have) && time.Now().Before(deadline); have = active() {
		time.Sleep(200 * time.Millisecond)
	}
	assert.True(t, near(closed, have), "closed: active %v", have)

	// Bytes each way, as the members' kernels counted their TCP and UDP
	// packets (they exchange nothing else).
	for _, vm := range servers {
		d, err := f.tb.L4Counters(f.ctx, vm)
		require.NoError(t, err)
		ip := f.tb.VM(vm).Addr().String()
		var to, from, pto, pfrom uint64
		for _, m := range st.Members {
			if m.Member == ip {
				to, from, pto, pfrom = to+m.BytesToMember, from+m.BytesFromMember, pto+m.PacketsToMember, pfrom+m.PacketsFromMember
			}
		}
		assert.InEpsilon(t, d.RxBytes, to, 0.01, "%s: bytes to it, counted %d, its kernel received %d", vm, to, d.RxBytes)
		assert.InEpsilon(t, d.TxBytes, from, 0.01, "%s: bytes from it, counted %d, its kernel sent %d", vm, from, d.TxBytes)
		t.Logf("%s: to it %d packets %d bytes (its kernel: %d, %d); from it %d packets %d bytes (%d, %d)",
			vm, pto, to, d.RxPackets, d.RxBytes, pfrom, from, d.TxPackets, d.TxBytes)
	}
	// s3 drained: its commit flows go (their final counts come in flow
	// removed messages); its count stays, the others go on.
	f.ctl.Call("PATCH", "/v1/groups/web/members/"+f.tb.VM("s3").Addr().String(), `{"state":"draining"}`, 200)
	f.appliedEverywhere(t, f.group(t, "web").ModifyIndex, time.Now())
	res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Count: 200})
	require.NoError(t, err)
	require.Zero(t, res.Failed(), "%v %v", res.Failures, res.FailureExamples)
	require.Zero(t, res.Answers["s3"])
	for server, n := range res.Answers {
		want["tcp/80"][f.tb.VM(server).Addr().String()] += uint64(n)
	}
	settle("after a drain and more traffic")
	assert.Empty(t, st.StaleHosts)
	t.Logf("the controller's statistics of web: %+v", st.Members)
	// dlbctl shows them: a line per port and member with its total, and
	// with --by-host each host's part.
	out := f.dlbctl(t, "", "group", "stats", "web", "--by-host")
	t.Logf("dlbctl group stats web --by-host:\n%s", out)
	for port, members := range want {
		for ip, n := range members {
			assert.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(port)+`\s+`+regexp.QuoteMeta(ip)+`\s+(active|draining)\s+100\s+[0-9.]+\s+`+strconv.FormatUint(n, 10)+`\s`), out)
		}
	}
	assert.Contains(t, out, "on h1")
}

// TestStatsSurviveRestarts: clients on h1 and h2 open connections at a
// steady rate while h1's agent is killed and started again, h2's
// ovs-vswitchd restarts (its flows and their counters start again from
// zero) and the controller is killed and started again (it asks every
// host for all its counters). The controller's statistics, read every
// 200 ms, never show a negative rate, and a member's total never goes
// down but across the controller's restart. Once the traffic stopped,
// h1's counts (its agent and the controller restarted) are c1's answers
// exactly; h2's lost what its switch counted since the agent's last read
// (OVS's counters die with it), and no member is counted more than the
// connections its kernel accepted.
func TestStatsSurviveRestarts(t *testing.T) {
	f := newFleet(t)
	f.dlbctl(t, webGroupYAML(f.tb, "s1", "s2", "s3"), "group", "create", "-f", "-")
	f.appliedEverywhere(t, f.group(t, "web").ModifyIndex, time.Now())
	servers := []string{"s1", "s2", "s3"}
	for _, vm := range servers {
		require.NoError(t, f.tb.CountSYN(f.ctx, vm))
	}
	type result struct {
		res *testbed.LoadResult
		err error
	}
	results := make(chan result, 2)
	for _, c := range []string{"c1", "c2"} {
		go func() {
			res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: c, Target: "10.96.0.10:80", Count: 1200, Concurrency: 16, Rate: 100, Timeout: 3 * time.Second})
			results <- result{res, err}
		}()
	}
	// The controller's view, polled: totals and rates by member.
	type poll struct {
		at       time.Time
		restarts int // controller restarts before it
		totals   map[string]uint64
	}
	var (
		mu       sync.Mutex
		polls    []poll
		restarts int
		negative []string
	)
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			code, body, err := f.ctl.Do("GET", "/v1/groups/web/stats", "")
			if err != nil || code != 200 {
				continue // the controller is down
			}
			var st wire.GroupStats
			if json.Unmarshal(body, &st) != nil {
				continue
			}
			p := poll{at: time.Now(), totals: map[string]uint64{}}
			mu.Lock()
			p.restarts = restarts
			for _, m := range st.Members {
				p.totals[m.Member] = m.NewConnections
				if m.NewPerSecond < 0 || m.BytesToPerSecond < 0 || m.BytesFromPerSecond < 0 {
					negative = append(negative, fmt.Sprintf("%s: %+v", m.Member, m))
				}
			}
			polls = append(polls, p)
			mu.Unlock()
		}
	}()
	time.Sleep(2 * time.Second)
	a := f.agents["h1"]
	a.kill9()
	time.Sleep(300 * time.Millisecond)
	a.start()
	t.Log("agent on h1 killed and started again")
	time.Sleep(2 * time.Second)
	require.NoError(t, f.tb.Host("h2").RestartVSwitchd(f.ctx))
	t.Log("ovs-vswitchd on h2 restarted")
	time.Sleep(2 * time.Second)
	mu.Lock()
	restarts++
	mu.Unlock()
	f.ctl.Kill()
	time.Sleep(500 * time.Millisecond)
	f.ctl.Start()
	t.Log("controller killed and started again")
	answered := map[string]map[string]uint64{} // client → member → answers
	for range 2 {
		r := <-results
		require.NoError(t, r.err)
		t.Logf("%s: answers %v, failures %v %v", r.res.VM, r.res.Answers, r.res.Failures, r.res.FailureExamples)
		answered[r.res.VM] = map[string]uint64{}
		for server, n := range r.res.Answers {
			answered[r.res.VM][f.tb.VM(server).Addr().String()] += uint64(n)
		}
	}
	// Each member's truth: the connections its kernel accepted.
	accepted := map[string]uint64{}
	for _, vm := range servers {
		n, err := f.tb.SYNCount(f.ctx, vm)
		require.NoError(t, err)
		accepted[f.tb.VM(vm).Addr().String()] = n
	}
	// h1 (its agent restarted, the controller too) loses nothing: its
	// part is c1's answers exactly. h2's switch restarted: what it counted
	// since its agent's last read died with it (OVS sends no flow removed
	// messages when it exits), at most an interval's worth, and nothing is
	// counted twice.
	byHost := func() (map[string]map[string]uint64, map[string]uint64) {
		var st wire.GroupStats
		require.NoError(t, json.Unmarshal(f.ctl.Call("GET", "/v1/groups/web/stats", "", 200), &st))
		parts, totals := map[string]map[string]uint64{"h1": {}, "h2": {}}, map[string]uint64{}
		for _, m := range st.Members {
			totals[m.Member] = m.NewConnections
			for _, h := range m.Hosts {
				if parts[h.Host] != nil {
					parts[h.Host][m.Member] = h.NewConnections
				}
			}
		}
		return parts, totals
	}
	var parts map[string]map[string]uint64
	var got map[string]uint64
	deadline := time.Now().Add(15 * time.Second)
	for parts, got = byHost(); !assert.ObjectsAreEqual(answered["c1"], parts["h1"]) && time.Now().Before(deadline); parts, got = byHost() {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // two more reports
	parts, got = byHost()
	close(stop)
	<-polled
	assert.Equal(t, answered["c1"], parts["h1"], "h1: an agent's and a controller's restart lose nothing")
	var lost uint64
	for ip, n := range accepted {
		assert.LessOrEqual(t, got[ip], n, "%s: never more than it accepted", ip)
		assert.LessOrEqual(t, parts["h2"][ip], answered["c2"][ip], "%s: h2 never counts more than c2's answers", ip)
		lost += n - min(n, got[ip])
	}
	assert.LessOrEqual(t, lost, uint64(200), "what h2's switch counted in its last interval (at most 2 s at 100 a second) is all that is lost")
	assert.Empty(t, negative, "no negative rate")
	for i := 1; i < len(polls); i++ {
		if polls[i].restarts != polls[i-1].restarts {
			continue // a restarted controller fills up again
		}
		for m, n := range polls[i-1].totals {
			assert.GreaterOrEqual(t, polls[i].totals[m], n, "%s: its total went down between %s and %s", m, polls[i-1].at.Format("15:04:05.000"), polls[i].at.Format("15:04:05.000"))
		}
	}
	t.Logf("%d polls; the controller's totals %v (h1 %v, h2 %v), the members' kernels %v, the tool's answers %v; lost with h2's switch %d",
		len(polls), got, parts["h1"], parts["h2"], accepted, answered, lost)
}

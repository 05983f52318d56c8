package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/agent"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
	"github.com/ovs-dlb/dlb/testbed"
)

// stickyGroup is the web group with session affinity.
func stickyGroup(tb *testbed.Testbed, timeout int, states map[string]string) string {
	s := fmt.Sprintf("groups:\n  - name: web\n    vip: 10.96.0.10\n    affinity: {client_ip_timeout_s: %d}\n"+
		"    ports: [{protocol: tcp, port: 80, target_port: 8080}, {protocol: udp, port: 53, target_port: 5353}]\n    members:\n", timeout)
	for _, vm := range []string{"s1", "s2", "s3"} {
		extra := ""
		if st := states[vm]; st != "" {
			extra = ", state: " + st
		}
		s += member(tb, vm, extra)
	}
	return s
}

// servers lists who answered, by source address.
func servers(res *testbed.LoadResult) map[netip.Addr]map[string]int {
	out := map[netip.Addr]map[string]int{}
	for _, e := range res.Exchanges {
		if out[e.Source.Addr()] == nil {
			out[e.Source.Addr()] = map[string]int{}
		}
		out[e.Source.Addr()][e.Server]++
	}
	return out
}

// affinityEntries counts the learned affinity flows on a host.
func affinityEntries(t *testing.T, c *cluster, host string) []string {
	out, err := c.tb.Host(host).OFCtl(c.ctx, "dump-flows", fmt.Sprintf("cookie=%#x/%#x", pipeline.Cookie(pipeline.KindAffinity, 0, 0), pipeline.CookieKindMask))
	require.NoError(t, err)
	var flows []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "cookie=") {
			flows = append(flows, strings.TrimSpace(l))
		}
	}
	return flows
}

// TestSessionAffinity: with client_ip_timeout_s, every connection of a
// client, the first ones opened at once included, reaches one member, over
// TCP and UDP, with nothing lost (a dropped first packet would fail the
// 500 ms timeout); clients still spread; a draining member's clients move
// and stay together; the entries idle out; removing affinity removes them.
func TestSessionAffinity(t *testing.T) {
	c := newClusterFor(t, func(tb *testbed.Testbed) string { return stickyGroup(tb, 3, nil) })
	tb := c.tb
	// 20 clients: c1's address and 19 more on c1.
	clients := []netip.Addr{tb.VM("c1").Addr()}
	for i := 0; i < 19; i++ {
		a := netip.AddrFrom4([4]byte{10, 0, 0, byte(150 + i)})
		_, err := tb.Exec(c.ctx, "c1", "ip", "addr", "add", a.String()+"/24", "dev", "eth0")
		require.NoError(t, err)
		clients = append(clients, a)
	}
	for _, proto := range []string{"tcp", "udp"} {
		target, first := "10.96.0.10:80", 2000
		if proto == "udp" {
			target, first = "10.96.0.10:53", 3000
		}
		// One client, 100 connections, 16 at a time from the start.
		one := c.load(t, testbed.LoadSpec{VM: "c1", Target: target, Proto: proto, Concurrency: 16, Timeout: 500 * time.Millisecond,
			Sources: sources(clients[0].String(), first, 100), Record: true})
		assert.Zero(t, one.Failed(), "%s: nothing lost: %v %v", proto, one.Failures, one.FailureExamples)
		assert.Len(t, one.Answers, 1, "%s: one client, one member: %v", proto, one.Answers)

		// 20 clients, 10 connections each, interleaved.
		var srcs []netip.AddrPort
		for p := 0; p < 10; p++ {
			for _, a := range clients {
				srcs = append(srcs, netip.AddrPortFrom(a, uint16(first+200+p)))
			}
		}
		many := c.load(t, testbed.LoadSpec{VM: "c1", Target: target, Proto: proto, Concurrency: 8, Timeout: 500 * time.Millisecond,
			Sources: srcs, Record: true})
		assert.Zero(t, many.Failed(), "%s: %v %v", proto, many.Failures, many.FailureExamples)
		perMember := map[string]int{}
		for client, got := range servers(many) {
			assert.Len(t, got, 1, "%s: client %s reached one member: %v", proto, client, got)
			for s := range got {
				perMember[s]++
			}
		}
		assert.Len(t, perMember, 3, "%s: the 20 clients spread over the three members: %v", proto, perMember)
		t.Logf("%s: one client: %v; 20 clients per member: %v", proto, one.Answers, perMember)
	}
	require.NotEmpty(t, affinityEntries(t, c, "h1"), "the learned entries are on c1's host")

	// The member of the first client drains: its new connections go to
	// one other member, together.
	res := c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Count: 1, Sources: sources(clients[0].String(), 4000, 1), Record: true})
	stuck := res.Exchanges[0].Server
	require.NotEmpty(t, stuck)
	c.setGroups(t, stickyGroup(tb, 3, map[string]string{stuck: lb.StateDraining}))
	moved := c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Concurrency: 8, Timeout: 500 * time.Millisecond,
		Sources: sources(clients[0].String(), 4001, 50), Record: true})
	assert.Zero(t, moved.Failed())
	assert.Len(t, moved.Answers, 1, "re-balanced together: %v", moved.Answers)
	assert.Zero(t, moved.Answers[stuck], "not to the draining member: %v", moved.Answers)
	t.Logf("client stuck to %s moved to %v after draining it", stuck, moved.Answers)

	// Idle for longer than the timeout: the entries are gone.
	require.Eventually(t, func() bool { return len(affinityEntries(t, c, "h1")) == 0 }, 10*time.Second, 200*time.Millisecond,
		"learned entries idle out after 3 s: %v", affinityEntries(t, c, "h1"))

	// Learned again, then the group drops affinity: the agent removes them.
	c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Count: 5, Sources: sources(clients[1].String(), 4100, 5)})
	require.NotEmpty(t, affinityEntries(t, c, "h1"))
	c.setGroups(t, webGroup(tb, member(tb, "s1", ""), member(tb, "s2", ""), member(tb, "s3", "")))
	assert.Empty(t, affinityEntries(t, c, "h1"), "no learned entry outlives its group's affinity")
}

// TestDayLongAffinity: a timeout over OpenFlow's 65,535 s learns entries
// without an idle timeout, which the agent expires itself.
func TestDayLongAffinity(t *testing.T) {
	c := newClusterFor(t, func(tb *testbed.Testbed) string { return stickyGroup(tb, lb.MaxAffinityTimeout, nil) })
	res := c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Timeout: 500 * time.Millisecond,
		Sources: sources(c.tb.VM("c1").Addr().String(), 5000, 20), Record: true})
	assert.Zero(t, res.Failed())
	assert.Len(t, res.Answers, 1, "%v", res.Answers)
	entries := affinityEntries(t, c, "h1")
	require.Len(t, entries, 1)
	assert.NotContains(t, entries[0], "idle_timeout", "OpenFlow cannot say 86400 s: the agent keeps time")

	conn, err := ofctrl.Dial(c.ctx, c.tb.Host("h1").OpenFlowTarget(), ofctrl.ConnOptions{})
	require.NoError(t, err)
	defer conn.Close()
	table := pipeline.Config{}.Table(pipeline.TableAffinity)
	svc := pipeline.ServiceIDs([]string{"web"})["web"]
	n, err := agent.ExpireLearned(c.ctx, conn, table, map[uint32]time.Duration{svc: time.Hour})
	require.NoError(t, err)
	assert.Zero(t, n, "an entry idle for less than its timeout stays")
	time.Sleep(1100 * time.Millisecond)
	n, err = agent.ExpireLearned(c.ctx, conn, table, map[uint32]time.Duration{svc: time.Second})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Empty(t, affinityEntries(t, c, "h1"), "expired by the agent")
}

// TestRefusedWhenNoMemberIsAvailable: a VIP whose members are all disabled
// answers new connections at once: a reset for TCP, port unreachable for
// UDP, over IPv4 and IPv6 (the 100 ms timeout would turn a black hole
// into "timeout" failures).
func TestRefusedWhenNoMemberIsAvailable(t *testing.T) {
	doc := func(tb *testbed.Testbed, state string) string {
		s := "groups:\n"
		for _, g := range []struct{ name, vip string }{{"web", "10.96.0.10"}, {"web6", "fd00::100"}} {
			s += fmt.Sprintf("  - name: %s\n    vip: %q\n    ports: [{protocol: tcp, port: 80, target_port: 8080}, {protocol: udp, port: 53, target_port: 5353}]\n    members:\n", g.name, g.vip)
			for _, vm := range []string{"s1", "s2"} {
				v := tb.VM(vm)
				ip := v.Addr().String()
				if g.name == "web6" {
					ip = v.Addr6().String()
				}
				s += fmt.Sprintf("      - {ip: %q, mac: %q, state: %s}\n", ip, v.HardwareAddr(), state)
			}
		}
		return s
	}
	c := newClusterFor(t, func(tb *testbed.Testbed) string { return doc(tb, lb.StateDisabled) })
	for _, tc := range []struct{ target, proto string }{
		{"10.96.0.10:80", "tcp"}, {"10.96.0.10:53", "udp"}, {"[fd00::100]:80", "tcp"}, {"[fd00::100]:53", "udp"},
	} {
		res := c.load(t, testbed.LoadSpec{VM: "c1", Target: tc.target, Proto: tc.proto, Count: 50, Concurrency: 4, Timeout: 100 * time.Millisecond})
		assert.Equal(t, map[string]int{testbed.FailRefused: 50}, res.Failures, "%s %s: refused within 100 ms: %v", tc.proto, tc.target, res.FailureExamples)
	}
	a := c.agents["h1"]
	assert.Equal(t, 100.0, a.metric(`dlb_agent_refusals_total{answer="reset"}`))
	assert.Equal(t, 100.0, a.metric(`dlb_agent_refusals_total{answer="unreachable"}`))

	c.setGroups(t, doc(c.tb, lb.StateActive))
	res := c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Count: 50})
	assert.Zero(t, res.Failed(), "enabled again, the VIP answers: %v", res.Failures)
}

// TestDirectServerReturn: a DSR group rewrites only the destination MAC;
// members hold the VIP on their loopback and answer the client directly,
// so no host translates anything: the client host's conntrack entries for
// the VIP carry no NAT, and the members' hosts have none.
func TestDirectServerReturn(t *testing.T) {
	const vip = "10.96.0.40"
	topo, err := testbed.Example("three-hosts")
	require.NoError(t, err)
	for i := range topo.Hosts {
		for j := range topo.Hosts[i].VMs {
			if vm := &topo.Hosts[i].VMs[j]; strings.HasPrefix(vm.Name, "s") {
				vm.VIPOnLo = []string{vip}
			}
		}
	}
	c := newClusterOn(t, topo, func(tb *testbed.Testbed) string {
		s := "groups:\n  - name: direct\n    vip: " + vip + "\n    mode: dsr\n    ports: [{protocol: tcp, port: 8080}, {protocol: udp, port: 5353}]\n    members:\n"
		for _, vm := range []string{"s1", "s2", "s3"} {
			s += member(tb, vm, "")
		}
		return s
	})
	tcp := c.load(t, testbed.LoadSpec{VM: "c1", Target: vip + ":8080", Count: 1500, Concurrency: 8})
	assertShares(t, tcp, map[string]int{"s1": 1, "s2": 1, "s3": 1})
	udp := c.load(t, testbed.LoadSpec{VM: "c2", Target: vip + ":5353", Proto: "udp", Count: 1500, Concurrency: 8})
	assertShares(t, udp, map[string]int{"s1": 1, "s2": 1, "s3": 1})
	held := c.load(t, testbed.LoadSpec{VM: "c1", Target: vip + ":8080", Count: 20, Concurrency: 20, Hold: time.Second})
	assert.Zero(t, held.Failed(), "held connections keep their member: %v", held.FailureExamples)

	// c1 (h1) and c2 (h2) were clients; h3 has members only.
	entries := map[string]int{}
	for _, h := range []string{"h1", "h2", "h3"} {
		ct, err := c.tb.Host(h).AppCtl(c.ctx, "dpctl/dump-conntrack", fmt.Sprintf("zone=%d", lb.DefaultZone))
		require.NoError(t, err)
		for _, l := range strings.Split(ct, "\n") {
			if !strings.Contains(l, vip) {
				continue
			}
			entries[h]++
			assert.Contains(t, l, "reply=(src="+vip, "the reply comes from the VIP itself: %s", l)
			for _, m := range []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"} {
				assert.NotContains(t, l, m, "no translation to a member: %s", l)
			}
		}
	}
	assert.Positive(t, entries["h1"], "the client host tracks its DSR connections (so they keep their member)")
	assert.Positive(t, entries["h2"])
	assert.Zero(t, entries["h3"], "a host with members only keeps no state for DSR replies")
	t.Logf("DSR: tcp %v, udp %v; conntrack entries per host %v, none NATed", tcp.Answers, udp.Answers, entries)
}

// TestHairpinAndThreeTiers: a member reaches its own group's VIP and is
// sometimes balanced to itself (TCP and UDP); and a client reaches a web
// tier whose proxies reach an app tier through its VIP, each tier balanced
// in the egress of the host its client runs on, across hosts.
func TestHairpinAndThreeTiers(t *testing.T) {
	topo, err := testbed.Example("three-hosts")
	require.NoError(t, err)
	for i := range topo.Hosts {
		for j := range topo.Hosts[i].VMs {
			if vm := &topo.Hosts[i].VMs[j]; vm.Name == "s1" || vm.Name == "s2" {
				vm.Services = append(vm.Services, "proxy:8081:10.96.0.60:8080")
			}
		}
	}
	c := newClusterOn(t, topo, func(tb *testbed.Testbed) string {
		s := webGroup(tb, member(tb, "s1", ""), member(tb, "s2", ""), member(tb, "s3", ""))
		s += "  - name: front\n    vip: 10.96.0.50\n    ports: [{protocol: tcp, port: 80, target_port: 8081}]\n    members:\n" +
			member(tb, "s1", "") + member(tb, "s2", "")
		s += "  - name: app\n    vip: 10.96.0.60\n    ports: [{protocol: tcp, port: 8080}]\n    members:\n" +
			member(tb, "s3", "") + member(tb, "s4", "")
		return s
	})
	for _, proto := range []string{"tcp", "udp"} {
		target := "10.96.0.10:80"
		if proto == "udp" {
			target = "10.96.0.10:53"
		}
		res := c.load(t, testbed.LoadSpec{VM: "s1", Target: target, Proto: proto, Count: 300, Concurrency: 8})
		assert.Zero(t, res.Failed(), "%s hairpin: %v %v", proto, res.Failures, res.FailureExamples)
		assert.Positive(t, res.Answers["s1"], "%s: s1 is balanced to itself too: %v", proto, res.Answers)
		t.Logf("%s from member s1 to its own VIP: %v", proto, res.Answers)
	}
	ct, err := c.tb.Host("h1").AppCtl(c.ctx, "dpctl/dump-conntrack", fmt.Sprintf("zone=%d", lb.DefaultZone+1))
	require.NoError(t, err)
	assert.Contains(t, ct, "reply=(src=10.0.0.11", "s1's connections to itself are translated to come from the VIP")

	// Only a VIP with a local member gets the hairpin zone's lookup: other
	// traffic from a VM to the DLB's MAC is dropped without conntrack.
	trace := func(port, flow string) string {
		vm := c.tb.VM(port)
		out, err := c.tb.Host("h1").AppCtl(c.ctx, "ofproto/trace", "br-int",
			fmt.Sprintf("in_port=%s,tcp,dl_src=%s,dl_dst=%s,nw_src=%s,%s", port, vm.HardwareAddr(), pipeline.HostMAC("h1"), vm.Addr(), flow))
		require.NoError(t, err)
		return out
	}
	stray := trace("c1", "nw_dst=10.96.0.99,tp_src=40000,tp_dst=80")
	assert.Contains(t, stray, "Datapath actions: drop", stray)
	assert.NotContains(t, stray, "ct(", "no conntrack for traffic to the DLB's MAC that is for no VIP:\n%s", stray)
	answer := trace("s1", "nw_dst=10.96.0.10,tp_src=8080,tp_dst=40000")
	assert.Contains(t, answer, fmt.Sprintf("ct(zone=%d,nat)", lb.DefaultZone+1), "a member's answer to its VIP is looked up in the hairpin zone:\n%s", answer)

	chain := c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.50:80", Count: 200, Concurrency: 8})
	assert.Zero(t, chain.Failed(), "%v %v", chain.Failures, chain.FailureExamples)
	tiers := map[string]int{}
	for answer, n := range chain.Answers {
		web, app, ok := strings.Cut(answer, ">")
		assert.True(t, ok, "answer %q has both tiers", answer)
		tiers[web] += n
		tiers[app] += n
	}
	for _, s := range []string{"s1", "s2", "s3", "s4"} {
		assert.Positive(t, tiers[s], "%s served its tier: %v", s, chain.Answers)
	}
	assert.Positive(t, chain.Answers["s2>s3"], "c1 (h1) → s2 (h2) → s3 (h3) crosses all hosts: %v", chain.Answers)
	t.Logf("client → front → app: %v", chain.Answers)
}

// foreignFlows is a bridge's flows, without statistics, that are not the
// DLB's.
func foreignFlows(t *testing.T, c *cluster, host string) string {
	out, err := c.tb.Host(host).OFCtl(c.ctx, "dump-flows", "--no-stats")
	require.NoError(t, err)
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "cookie=") && !strings.Contains(l, "cookie=0xdb") {
			keep = append(keep, l)
		}
	}
	sort.Strings(keep) // dump order is the switch's, not the flows'
	return strings.Join(keep, "\n")
}

// TestSharedBridge: on a bridge whose owner has its own pipeline (three
// tables, its own cookies, NORMAL at the end), the DLB adds only its hook
// and its tables: installing, changing and removing groups leaves the
// owner's flows byte for byte as they were, and the owner's traffic and
// the VIP both work.
func TestSharedBridge(t *testing.T) {
	topo, err := testbed.Example("three-hosts")
	require.NoError(t, err)
	tb := testbed.Start(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	c := &cluster{tb: tb, file: filepath.Join(t.TempDir(), "groups.yaml"), agents: map[string]*agentProc{}, ctx: ctx}
	foreign := []string{
		"table=0,priority=0,cookie=0x1234,actions=goto_table:1",
		"table=0,priority=50,cookie=0x1234,arp,actions=goto_table:1",
		"table=1,priority=10,cookie=0x1235,ip,actions=goto_table:2",
		"table=1,priority=0,cookie=0x1235,actions=goto_table:2",
		"table=2,priority=0,cookie=0x1236,actions=NORMAL",
	}
	before := map[string]string{}
	for _, h := range tb.Hosts() {
		_, err := h.OFCtl(ctx, "del-flows")
		require.NoError(t, err)
		for _, f := range foreign {
			_, err := h.OFCtl(ctx, "add-flow", f)
			require.NoError(t, err)
		}
		before[h.Name] = foreignFlows(t, c, h.Name)
		require.Len(t, strings.Split(before[h.Name], "\n"), len(foreign))
	}
	web := func(ms ...string) string {
		var s []string
		for _, m := range ms {
			s = append(s, member(tb, m, ""))
		}
		return webGroup(tb, s...)
	}
	require.NoError(t, os.WriteFile(c.file, []byte(web("s1", "s2", "s3")), 0o644))
	for _, h := range tb.Hosts() {
		c.agents[h.Name] = startAgent(t, h, c.file, "--table-base", "20", "--entry-table", "0", "--entry-priority", "1000", "--return-table", "1")
	}
	res := c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Count: 300, Concurrency: 8})
	assertShares(t, res, map[string]int{"s1": 1, "s2": 1, "s3": 1})
	c.setGroups(t, web("s1", "s3"))
	res = c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Count: 100, Concurrency: 8})
	assert.Zero(t, res.Failed())
	assert.Zero(t, res.Answers["s2"])
	c.setGroups(t, "groups: []\n")
	direct := c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.0.0.12:8080", Count: 50})
	assert.Equal(t, map[string]int{"s2": 50}, direct.Answers, "the owner's pipeline still forwards")
	for _, h := range tb.Hosts() {
		assert.Equal(t, before[h.Name], foreignFlows(t, c, h.Name), "%s: the owner's flows are untouched", h.Name)
		hook, err := h.OFCtl(ctx, "dump-flows", "--no-stats", "table=0")
		require.NoError(t, err)
		assert.Contains(t, hook, "priority=1000 actions=goto_table:20", "%s: the DLB's one hook", h.Name)
	}
}

// TestScopesShareAVIP: two groups in different scopes (a list of
// iface-ids; a label in the ports' external_ids) serve the same VIP:port
// with different members; each scope's connections live in its own
// conntrack zone, and a port in neither scope is not served.
func TestScopesShareAVIP(t *testing.T) {
	c := newClusterFor(t, func(tb *testbed.Testbed) string {
		return "groups:\n" +
			"  - name: tenant-a\n    vip: 10.96.0.70\n    scope: {iface_ids: [c1]}\n    ports: [{protocol: tcp, port: 80, target_port: 8080}]\n    members:\n" + member(tb, "s2", "") +
			"  - name: tenant-b\n    vip: 10.96.0.70\n    scope: {labels: {tenant: b}}\n    ports: [{protocol: tcp, port: 80, target_port: 8080}]\n    members:\n" + member(tb, "s3", "")
	})
	h1 := c.tb.Host("h1")
	before := c.agents["h1"].metric("dlb_agent_reconciles_total")
	_, err := h1.VSCtl(c.ctx, "set", "Interface", "s4", "external_ids:tenant=b")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.agents["h1"].metric("dlb_agent_reconciles_total") > before }, 5*time.Second, 20*time.Millisecond,
		"the label change reaches the agent")

	a := c.load(t, testbed.LoadSpec{VM: "c1", Target: "10.96.0.70:80", Count: 100, Concurrency: 8})
	assert.Equal(t, map[string]int{"s2": 100}, a.Answers, "tenant a (c1 by iface-id) reaches its member: %v", a.Failures)
	b := c.load(t, testbed.LoadSpec{VM: "s4", Target: "10.96.0.70:80", Count: 100, Concurrency: 8})
	assert.Equal(t, map[string]int{"s3": 100}, b.Answers, "tenant b (s4 by label) reaches its member: %v", b.Failures)
	none := c.load(t, testbed.LoadSpec{VM: "c2", Target: "10.96.0.70:80", Count: 5, Timeout: 300 * time.Millisecond})
	assert.Empty(t, none.Answers, "a port in neither scope is not served")

	zone := func(scope *lb.Scope) string {
		out, err := h1.AppCtl(c.ctx, "dpctl/dump-conntrack", fmt.Sprintf("zone=%d", lb.ZoneOf(lb.DefaultZone, scope)))
		require.NoError(t, err)
		return out
	}
	za, zb := zone(&lb.Scope{IfaceIDs: []string{"c1"}}), zone(&lb.Scope{Labels: map[string]string{"tenant": "b"}})
	assert.Contains(t, za, "src=10.0.0.1,")
	assert.NotContains(t, za, "src=10.0.0.14,", "tenant b's connections are not in tenant a's zone")
	assert.Contains(t, zb, "src=10.0.0.14,")
	assert.NotContains(t, zb, "src=10.0.0.1,", "tenant a's connections are not in tenant b's zone")
	assert.NotContains(t, zone(nil), "10.96.0.70", "nothing in the default zone")
}

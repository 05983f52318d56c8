package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
				commits := commitPackets(t, c, "h1", 0)
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
// member through a VIP port of the web group.
func memberConnections(a *agentProc, port, member string) float64 {
	return a.metric(fmt.Sprintf(`dlb_agent_member_new_connections_total{group="web",member=%q,port=%q}`, member, port))
}

// TestMemberNewConnectionsCounted: clients on two hosts (c1 on h1 with
// member s1, c2 on h2 with s2), and s1 itself (its connections to itself
// through the VIP are hairpinned), open TCP connections and UDP flows
// through the VIP; once the agents read their counters again, each
// member's new connections summed over the hosts equal, exactly, what the
// load tool says the member answered, for a member on the client's host
// and on another alike.
func TestMemberNewConnectionsCounted(t *testing.T) {
	c := newClusterFor(t, func(tb *testbed.Testbed) string {
		return webGroup(tb, member(tb, "s1", ""), member(tb, "s2", ""), member(tb, "s3", ""))
	})
	want := map[string]map[string]int{"tcp/80": {}, "udp/53": {}}
	for _, run := range []struct {
		vm, port string
		count    int
	}{{"c1", "tcp/80", 600}, {"c2", "tcp/80", 400}, {"s1", "tcp/80", 60}, {"c1", "udp/53", 300}, {"c2", "udp/53", 200}, {"s1", "udp/53", 30}} {
		proto, vport, _ := strings.Cut(run.port, "/")
		res := c.load(t, testbed.LoadSpec{VM: run.vm, Target: "10.96.0.10:" + vport, Proto: proto, Count: run.count})
		require.Zero(t, res.Failed(), "%s %s: %v %v", run.vm, run.port, res.Failures, res.FailureExamples)
		for server, n := range res.Answers {
			want[run.port][c.tb.VM(server).Addr().String()] += n
		}
	}
	counted := func() map[string]map[string]int {
		got := map[string]map[string]int{"tcp/80": {}, "udp/53": {}}
		for port := range got {
			for _, s := range []string{"s1", "s2", "s3"} {
				ip := c.tb.VM(s).Addr().String()
				for _, a := range c.agents {
					if n := int(memberConnections(a, port, ip)); n > 0 {
						got[port][ip] += n
					}
				}
			}
		}
		return got
	}
	var got map[string]map[string]int
	require.Eventually(t, func() bool {
		got = counted()
		return assert.ObjectsAreEqual(want, got)
	}, 10*time.Second, 200*time.Millisecond, "the agents' counts, summed over hosts, are the tool's answers: want %v, have %v", want, got)
	t.Logf("new connections per member, counted by the agents and by the tool: %v", got)
}

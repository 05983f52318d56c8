package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/testbed"
)

// fleet is the three-host testbed with a controller and an agent per host
// following it.
type fleet struct {
	tb     *testbed.Testbed
	ctl    *testbed.Controller
	agents map[string]*agentProc
	state  map[string]string // each agent's state_dir
	ctx    context.Context
}

func newFleet(t testing.TB, edits ...func(*testbed.Topology)) *fleet {
	topo, err := testbed.Example("three-hosts")
	require.NoError(t, err)
	for _, edit := range edits {
		edit(topo)
	}
	tb := testbed.Start(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	// Built now (outside DLB_BIN_DIR, the first use builds it), so that no
	// test times a build.
	_, err = testbed.Binary("dlbctl")
	require.NoError(t, err)
	f := &fleet{tb: tb, ctl: testbed.StartController(t), agents: map[string]*agentProc{}, state: map[string]string{}, ctx: ctx}
	for _, h := range tb.Hosts() {
		f.state[h.Name] = t.TempDir()
		f.agents[h.Name] = startAgent(t, h, "", "--own-bridge", "--controller", f.ctl.URL(), "--state-dir", f.state[h.Name], "--host-id", h.Name)
	}
	return f
}

// dlbctl runs the CLI against the fleet's controller.
func (f *fleet) dlbctl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	bin, err := testbed.Binary("dlbctl")
	require.NoError(t, err)
	cmd := exec.CommandContext(f.ctx, bin, append([]string{"--server", f.ctl.URL()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "dlbctl %v: %s", args, out)
	return string(out)
}

// group reads a group through the API.
func (f *fleet) group(t *testing.T, name string) wire.Group {
	t.Helper()
	var g wire.Group
	require.NoError(t, json.Unmarshal([]byte(f.dlbctl(t, "", "group", "get", name, "-o", "json")), &g))
	return g
}

// appliedEverywhere waits until every agent has installed index idx and
// returns how long that took from start.
func (f *fleet) appliedEverywhere(t *testing.T, idx uint64, start time.Time) time.Duration {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, a := range f.agents {
			if a.metric("dlb_agent_applied_index") < float64(idx) {
				return false
			}
		}
		return true
	}, 5*time.Second, 2*time.Millisecond, "index %d not applied on every host", idx)
	return time.Since(start)
}

// answers sends n connections from each client to target and counts the
// servers that answered, per client.
func (f *fleet) answers(t *testing.T, target string, n int, clients ...string) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, c := range clients {
		res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: c, Target: target, Count: n, Concurrency: 8, Timeout: time.Second})
		require.NoError(t, err)
		require.Zero(t, res.Failed(), "%s -> %s: %v %v", c, target, res.Failures, res.FailureExamples)
		out[c] = res.Answers
	}
	return out
}

func webGroupYAML(tb *testbed.Testbed, members ...string) string {
	s := "name: web\nvip: 10.96.0.10\nports: [{protocol: tcp, port: 80, target_port: 8080}]\nmembers:\n"
	for _, m := range members {
		s += fmt.Sprintf("  - {ip: %s}\n", tb.VM(m).Addr())
	}
	return s
}

// TestAgentsFollowTheController: groups made and changed with dlbctl reach
// every host within a second (installed, and answering real connections);
// a deleted group leaves no flow behind; an agent that was down while
// groups changed catches up when it starts, from its checkpoint.
func TestAgentsFollowTheController(t *testing.T) {
	f := newFleet(t)
	clients := []string{"c1", "c2", "c3"}

	// Create: every client reaches the VIP within a second.
	start := time.Now()
	f.dlbctl(t, webGroupYAML(f.tb, "s1", "s2", "s3"), "group", "create", "-f", "-")
	var reached sync.WaitGroup
	took := map[string]time.Duration{}
	var mu sync.Mutex
	for _, c := range clients {
		reached.Add(1)
		go func() {
			defer reached.Done()
			for time.Since(start) < 5*time.Second {
				res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: c, Target: "10.96.0.10:80", Count: 1, Concurrency: 1, Timeout: 50 * time.Millisecond})
				if err == nil && res.Failed() == 0 {
					mu.Lock()
					took[c] = time.Since(start)
					mu.Unlock()
					return
				}
			}
		}()
	}
	reached.Wait()
	t.Logf("created; first answer through the VIP after %v", took)
	for _, c := range clients {
		require.Contains(t, took, c, "%s never reached the VIP", c)
		assert.LessOrEqual(t, took[c], time.Second, c)
	}

	// Each member change is installed on every host within a second, and
	// the traffic follows it.
	step := func(what string, args ...string) {
		t.Helper()
		start := time.Now()
		f.dlbctl(t, "", args...)
		g := f.group(t, "web")
		d := f.appliedEverywhere(t, g.ModifyIndex, start)
		t.Logf("%s: installed on every host after %v", what, d)
		assert.LessOrEqual(t, d, time.Second, what)
		assert.Equal(t, &wire.Applied{Hosts: 3, Applied: 3}, f.group(t, "web").Applied, "dlbctl sees it applied everywhere")
	}
	step("member add s4", "member", "add", "web", f.tb.VM("s4").Addr().String())
	got := f.answers(t, "10.96.0.10:80", 200, clients...)
	for _, c := range clients {
		assert.Positive(t, got[c]["s4"], "%s: the new member answers: %v", c, got[c])
	}
	step("drain s1", "member", "drain", "web", f.tb.VM("s1").Addr().String())
	got = f.answers(t, "10.96.0.10:80", 100, clients...)
	for _, c := range clients {
		assert.Zero(t, got[c]["s1"], "%s: the draining member gets no new connection: %v", c, got[c])
	}
	step("remove s2", "member", "remove", "web", f.tb.VM("s2").Addr().String())
	step("weight s3 to 300", "member", "set", "web", f.tb.VM("s3").Addr().String(), "--weight", "300")
	got = f.answers(t, "10.96.0.10:80", 200, clients...)
	for _, c := range clients {
		assert.Zero(t, got[c]["s2"], "%s: removed: %v", c, got[c])
		assert.Greater(t, got[c]["s3"], 2*got[c]["s4"], "%s: s3 weighs 3 times s4: %v", c, got[c])
	}
	out := f.dlbctl(t, "", "host", "list")
	t.Logf("dlbctl host list:\n%s", out)
	for _, h := range []string{"h1", "h2", "h3"} {
		assert.Regexp(t, h+`\s+yes\s+[0-9]+\s+c`+h[1:], out, "%s: connected, with its VM ports", h)
	}

	// An agent that is down while groups change catches up when it starts.
	f.agents["h3"].stop()
	f.agents["h3"].cmd = nil
	f.dlbctl(t, "name: api\nvip: 10.96.0.20\nports: [{protocol: tcp, port: 80, target_port: 8080}]\nmembers:\n  - {ip: 10.0.0.12}\n", "group", "create", "-f", "-")
	f.dlbctl(t, "", "member", "enable", "web", f.tb.VM("s1").Addr().String())
	f.agents["h3"].start()
	api := f.group(t, "api")
	f.appliedEverywhere(t, max(api.ModifyIndex, f.group(t, "web").ModifyIndex), time.Now())
	got = f.answers(t, "10.96.0.20:80", 50, "c3")
	assert.Equal(t, map[string]int{"s2": 50}, got["c3"], "the restarted agent installed the group made while it was down")
	assert.Zero(t, f.agents["h3"].metric(`dlb_agent_watch_answers_total{kind="full"}`), "it resumed from its checkpoint, without a full resync")
	assert.Positive(t, f.agents["h3"].metric(`dlb_agent_watch_answers_total{kind="changes"}`))

	// Delete: every flow of the group goes, on every host.
	start = time.Now()
	f.dlbctl(t, "", "group", "delete", "web")
	require.Eventually(t, func() bool {
		for _, h := range f.tb.Hosts() {
			flows, err := h.OFCtl(f.ctx, "dump-flows", "--no-stats")
			if err != nil || strings.Contains(flows, "10.96.0.10") {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond)
	d := time.Since(start)
	t.Logf("delete: no flow of the group left on any host after %v", d)
	assert.LessOrEqual(t, d, time.Second)
	for _, h := range f.tb.Hosts() {
		groups, err := h.OFCtl(f.ctx, "dump-groups")
		require.NoError(t, err)
		assert.Equal(t, 1, strings.Count(groups, "group_id="), "%s: only api's select group is left:\n%s", h.Name, groups)
	}
}

// TestRestartsLoseNoConnection: two clients open connections at 150/s
// each through a VIP while the controller is killed with SIGKILL and
// started again, then an agent is: no connection fails, and the agents
// resume their watches without a full resync.
func TestRestartsLoseNoConnection(t *testing.T) {
	f := newFleet(t)
	f.dlbctl(t, webGroupYAML(f.tb, "s1", "s2", "s3"), "group", "create", "-f", "-")
	g := f.group(t, "web")
	f.appliedEverywhere(t, g.ModifyIndex, time.Now())

	const perClient, rate = 1500, 150.0 // 10 s of traffic
	type result struct {
		client string
		res    *testbed.LoadResult
		err    error
	}
	results := make(chan result, 2)
	for _, c := range []string{"c1", "c2"} {
		go func() {
			res, err := f.tb.Load(f.ctx, testbed.LoadSpec{VM: c, Target: "10.96.0.10:80", Count: perClient, Concurrency: 16, Rate: rate, Timeout: 2 * time.Second})
			results <- result{c, res, err}
		}()
	}
	time.Sleep(2 * time.Second)
	f.ctl.Kill()
	t.Log("controller killed")
	time.Sleep(time.Second)
	f.ctl.Start()
	t.Log("controller started again")
	time.Sleep(time.Second)
	// A change made through the restarted controller reaches every agent.
	f.dlbctl(t, "", "member", "set", "web", f.tb.VM("s3").Addr().String(), "--weight", "200")
	f.appliedEverywhere(t, f.group(t, "web").ModifyIndex, time.Now())
	a := f.agents["h2"]
	a.kill9()
	t.Log("agent on h2 killed")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(a.logPath)
			lines := strings.Split(string(data), "\n")
			t.Logf("h2 agent log, last 40 lines:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	time.Sleep(500 * time.Millisecond)
	a.start()
	t.Log("agent on h2 started again")
	for range 2 {
		r := <-results
		require.NoError(t, r.err)
		t.Logf("%s: %d connections at %.0f/s, answers %v, failures %v", r.client, r.res.Answered()+r.res.Failed(), r.res.RatePerSecond, r.res.Answers, r.res.Failures)
		assert.Zero(t, r.res.Failed(), "%s: %v", r.client, r.res.FailureExamples)
	}
	for name, ag := range f.agents {
		full := ag.metric(`dlb_agent_watch_answers_total{kind="full"}`)
		if name == "h2" {
			assert.Zero(t, full, "the restarted agent resumed from its checkpoint")
		} else {
			assert.Equal(t, 1.0, full, "%s: one full set, at its start; none after the controller's restart", name)
		}
	}
	data, err := os.ReadFile(filepath.Join(f.state["h2"], "groups.json"))
	require.NoError(t, err)
	assert.Contains(t, string(data), `"name":"web"`)
}

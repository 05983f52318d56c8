package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/testbed"
)

// BenchmarkHealthCheckFailover: a member's server fails (stopped: its
// port refuses; silenced: its VM drops everything) with a tcp check of
// interval 1 s, timeout 500 ms, fall and rise 2: the time from the
// failure until no host of three deals it a new connection, and from its
// return until every host does again. 20 trials of each; p50 and p99 (of
// 20: the slowest). Flap damping is set out of the trials' way.
func BenchmarkHealthCheckFailover(b *testing.B) {
	const trials = 20
	f := newFleet(b)
	hcGroup(b, f, "hc", "10.96.0.90", "tcp", 80, 8080, `{"type":"tcp","interval":"1s","timeout":"500ms","rise":2,"fall":2,"flap_changes":100}`)
	s2 := f.tb.VM("s2").Addr().String() + ":8080"
	untilChoosing(b, f, s2, true, time.Now(), 30*time.Second)
	out := map[string][]time.Duration{}
	back := map[string][]time.Duration{}
	for b.Loop() {
		if len(out["stopped"]) >= trials {
			continue // the trials are done in the first iteration
		}
		for range trials {
			for _, fl := range failures(f, "s2") {
				o, bk := healthTrial(b, f, fl, s2, nil)
				out[fl.name], back[fl.name] = append(out[fl.name], o), append(back[fl.name], bk)
				// The next failure at another point of the probe cycle.
				time.Sleep(time.Second + time.Duration(len(out[fl.name])*137%1000)*time.Millisecond)
			}
		}
	}
	for _, name := range []string{"stopped", "silenced"} {
		b.ReportMetric(quantileMs(out[name], 0.5), name+"-out-p50-ms")
		b.ReportMetric(quantileMs(out[name], 0.99), name+"-out-p99-ms")
		b.ReportMetric(quantileMs(back[name], 0.5), name+"-back-p50-ms")
		b.ReportMetric(quantileMs(back[name], 0.99), name+"-back-p99-ms")
		fmt.Printf("health check (tcp, interval 1s, timeout 500ms, fall/rise 2), %s server, %d trials: out of every host's choice p50 %.0f ms, p99 %.0f ms; back p50 %.0f ms, p99 %.0f ms\n",
			name, len(out[name]), quantileMs(out[name], 0.5), quantileMs(out[name], 0.99), quantileMs(back[name], 0.5), quantileMs(back[name], 0.99))
	}
}

// BenchmarkHealthCheck10kMembers: one host probes 10,000 members (100
// groups of 100, tcp, interval 1 s), on three VMs that each take every
// address of a /16 as their own. Reported: the agent's and
// ovs-vswitchd's CPU while probing, and the forwarding rate of a VIP
// (new TCP connections a second from c1 to s2 and s3) with and without
// the probing, in alternate rounds; medians of the rounds.
func BenchmarkHealthCheck10kMembers(b *testing.B) {
	const groups, per = 100, 100
	topo, err := testbed.Example("one-host")
	require.NoError(b, err)
	tb := testbed.Start(b, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ctl := testbed.StartController(b)
	h := tb.Host("h1")
	// Group g's members are on servers[g%3], which answers for the whole
	// of its /16 (a local route) and says so in its port's inventory (a
	// third each: one external_ids value stays under the kernel's 128 KiB
	// limit for a command-line argument).
	servers := []string{"s1", "s2", "s3"}
	member := func(g, k int) string {
		m := g/len(servers)*per + k + 1
		return fmt.Sprintf("10.%d.%d.%d", 128+g%len(servers), m/256, m%256)
	}
	for i, vm := range servers {
		_, err = tb.Exec(ctx, vm, "ip", "route", "add", "local", fmt.Sprintf("10.%d.0.0/16", 128+i), "dev", "lo")
		require.NoError(b, err)
		ips := []string{tb.VM(vm).Addr().String()}
		for g := i; g < groups; g += len(servers) {
			for k := range per {
				ips = append(ips, member(g, k))
			}
		}
		_, err = h.VSCtl(ctx, "set", "Interface", vm, "external_ids:ovs-dlb-ips="+strings.Join(ips, ","))
		require.NoError(b, err)
	}
	put := func(probing bool) {
		check := ""
		if probing {
			check = `,"health_check":{"type":"tcp","interval":"1s","timeout":"500ms"}`
		}
		for g := range groups {
			ms := make([]string, per)
			for k := range per {
				ms[k] = fmt.Sprintf(`{"ip":%q,"mac":%q}`, member(g, k), tb.VM(servers[g%len(servers)]).HardwareAddr())
			}
			ctl.Call("PUT", fmt.Sprintf("/v1/groups/g%d", g), fmt.Sprintf(`{"name":"g%d","vip":"10.96.1.%d","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[%s]%s}`,
				g, g+1, strings.Join(ms, ","), check), 200)
		}
	}
	ctl.Call("PUT", "/v1/groups/web", fmt.Sprintf(`{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[{"ip":%q},{"ip":%q}]}`,
		tb.VM("s2").Addr(), tb.VM("s3").Addr()), 200)
	a := startAgent(b, h, "", "--own-bridge", "--controller", ctl.URL(), "--state-dir", b.TempDir(), "--host-id", h.Name)
	ups := func() int {
		var all struct {
			Members []wire.MemberHealth `json:"members"`
		}
		require.NoError(b, json.Unmarshal(ctl.Call("GET", "/v1/health", "", 200), &all))
		n := 0
		for _, m := range all.Members {
			if m.State == "up" {
				n++
			}
		}
		return n
	}
	vs, ok := h.VSwitchdPID()
	require.True(b, ok)
	rate := func() float64 {
		start := time.Now()
		res, err := tb.Load(ctx, testbed.LoadSpec{VM: "c1", Target: "10.96.0.10:80", Count: 2000, Concurrency: 8})
		require.NoError(b, err)
		require.Empty(b, res.Failures, "%v", res.FailureExamples)
		return 2000 / time.Since(start).Seconds()
	}
	figures := map[string][]float64{}
	for b.Loop() {
		put(false)
		require.Eventually(b, func() bool { return ups() == 0 }, time.Minute, 200*time.Millisecond, "probing off")
		time.Sleep(2 * time.Second)
		off := rate()
		put(true)
		require.Eventually(b, func() bool { return ups() == groups*per }, 2*time.Minute, time.Second, "all 10,000 members up")
		time.Sleep(3 * time.Second)
		on := rate()
		const window = 10 * time.Second
		agent0, switch0 := procCPUSeconds(b, a.cmd.Process.Pid), procCPUSeconds(b, vs)
		reconciles0 := a.metric("dlb_agent_reconciles_total")
		ok0, fail0 := a.metric(`dlb_agent_probes_total{result="ok"}`), a.metric(`dlb_agent_probes_total{result="fail"}`)
		if dir := os.Getenv("DLB_PROFILE_DIR"); dir != "" {
			// The agent's CPU profile over the window, for go tool pprof.
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", a.metrics, int(window.Seconds())))
			require.NoError(b, err)
			prof, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(b, err)
			require.NoError(b, os.WriteFile(filepath.Join(dir, "health-10k-agent.pprof"), prof, 0o644))
		} else {
			time.Sleep(window)
		}
		agentCPU := (procCPUSeconds(b, a.cmd.Process.Pid) - agent0) / window.Seconds() * 100
		switchCPU := (procCPUSeconds(b, vs) - switch0) / window.Seconds() * 100
		reconciles := a.metric("dlb_agent_reconciles_total") - reconciles0
		oks, fails := a.metric(`dlb_agent_probes_total{result="ok"}`)-ok0, a.metric(`dlb_agent_probes_total{result="fail"}`)-fail0
		figures["agent-cpu-%"] = append(figures["agent-cpu-%"], agentCPU)
		figures["vswitchd-cpu-%"] = append(figures["vswitchd-cpu-%"], switchCPU)
		figures["conn/s-off"] = append(figures["conn/s-off"], off)
		figures["conn/s-on"] = append(figures["conn/s-on"], on)
		figures["on/off"] = append(figures["on/off"], on/off)
		fmt.Printf("10,000 members probed by one host (tcp, interval 1s): agent CPU %.1f %% of a core, ovs-vswitchd %.1f %%; %.0f probes/s passed, %.0f/s failed; %.0f reconciles in %v; VIP forwarding %.0f conn/s probing vs %.0f conn/s not (%.2f)\n",
			agentCPU, switchCPU, oks/window.Seconds(), fails/window.Seconds(), reconciles, window, on, off, on/off)
		down := groups*per - ups()
		figures["members-not-up-at-end"] = append(figures["members-not-up-at-end"], float64(down))
		figures["probes-failed/s"] = append(figures["probes-failed/s"], fails/window.Seconds())
		figures["reconciles/s"] = append(figures["reconciles/s"], reconciles/window.Seconds())
		if down > 0 {
			fmt.Printf("%d of the 10,000 members (all serving) were not up at the end of the window: probes lost under the load\n", down)
		}
	}
	for name, v := range figures {
		b.ReportMetric(median(v), name)
	}
}

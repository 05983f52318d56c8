package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/testbed"
)

// BenchmarkLeastConnections1kGroups (issue 18): one host with 1,000
// least-connections groups of 4 members (global view) from a controller;
// a second host, simulated, reports every second its connections to every
// member. Each iteration has two phases of 10 s: its figures at rest (the
// shares settle and stay), then moving (each group's members' connections
// swing, so the host's shares move every interval and are installed
// again). For each: the agent's and ovs-vswitchd's CPU, recomputations
// and their time, groups whose slots changed, group and flow mods a
// second, bytes a second to the controller; and the ratio of the agent's
// CPU moving to at rest. Medians over the iterations are reported.
func BenchmarkLeastConnections1kGroups(b *testing.B) {
	const groups, members = 1000, 4
	topo, err := testbed.Example("one-host")
	require.NoError(b, err)
	tb := testbed.Start(b, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ctl := testbed.StartController(b)
	h := tb.Host("h1")
	mac := tb.VM("s1").HardwareAddr()
	member := func(g, k int) string { m := g*members + k; return fmt.Sprintf("10.128.%d.%d", m/256, m%256) }
	for g := 0; g < groups; g++ {
		var ms []string
		for k := 0; k < members; k++ {
			ms = append(ms, fmt.Sprintf(`{"ip":%q,"mac":%q}`, member(g, k), mac))
		}
		ctl.Call("PUT", fmt.Sprintf("/v1/groups/g%d", g), fmt.Sprintf(`{"name":"g%d","vip":"10.96.%d.%d","ports":[{"protocol":"udp","port":53,"target_port":5353}],"members":[%s],"algorithm":"least-connections"}`,
			g, g/250, g%250+1, strings.Join(ms, ",")), 200)
	}
	ctl.Call("PUT", "/v1/hosts/h9", `{"ports":[]}`, 200)

	// The simulated host: 10 new connections a second to every member;
	// its open connections to member k of group g are level(g, k, t).
	var mu sync.Mutex
	moving := false
	phase0 := time.Now()
	level := func(g, k int, t time.Duration, moving bool) uint64 {
		if !moving {
			return 40
		}
		return uint64(40 + 30*math.Sin(2*math.Pi*(t.Seconds()/20+float64(g+k)/members)))
	}
	reporter := func(ctx context.Context) {
		news := uint64(0)
		for first := true; ctx.Err() == nil; first = false {
			news += 10
			t := time.Since(phase0)
			mu.Lock()
			now := moving
			mu.Unlock()
			r := wire.StatsReport{Full: first, IntervalS: 1}
			for g := 0; g < groups; g++ {
				for k := 0; k < members; k++ {
					r.Members = append(r.Members, wire.MemberCount{Group: fmt.Sprintf("g%d", g), Port: "udp/53", Member: member(g, k),
						NewConnections: news, ActiveConnections: level(g, k, t, now)})
				}
			}
			body, err := json.Marshal(r)
			if err != nil {
				b.Error(err) // not FailNow: this is not the benchmark's goroutine
				return
			}
			resp, err := http.Post(ctl.URL()+"/v1/hosts/h9/stats", "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go reporter(rctx)

	a := startAgent(b, h, "", "--own-bridge", "--controller", ctl.URL(), "--state-dir", b.TempDir(), "--host-id", h.Name)
	require.Eventually(b, func() bool { return a.metric(`dlb_agent_lc_groups{view="global"}`) == groups }, 3*time.Minute, 200*time.Millisecond,
		"1,000 least-connections groups balanced on the global view")
	time.Sleep(10 * time.Second) // settled on the figures at rest
	vs, ok := h.VSwitchdPID()
	require.True(b, ok)
	figures := map[string][]float64{} // by metric, one an iteration
	for b.Loop() {
		var rest float64
		for _, ph := range []string{"at rest", "moving"} {
			mu.Lock()
			moving = ph == "moving"
			mu.Unlock()
			if moving {
				time.Sleep(3 * time.Second) // into the swing
			}
			const window = 10 * time.Second
			agent0, switch0 := procCPUSeconds(b, a.cmd.Process.Pid), procCPUSeconds(b, vs)
			names := []string{"dlb_agent_lc_recomputations_total", "dlb_agent_lc_slot_changes_total", `dlb_agent_mods_total{object="group",op="add"}`, `dlb_agent_mods_total{object="group",op="modify"}`, `dlb_agent_mods_total{object="group",op="delete"}`,
				`dlb_agent_mods_total{object="flow",op="add"}`, `dlb_agent_mods_total{object="flow",op="modify"}`, `dlb_agent_mods_total{object="flow",op="delete"}`,
				"dlb_agent_controller_sent_bytes_total"}
			before := make([]float64, len(names))
			for i, n := range names {
				before[i] = a.metric(n)
			}
			time.Sleep(window)
			agentCPU := (procCPUSeconds(b, a.cmd.Process.Pid) - agent0) / window.Seconds() * 100
			switchCPU := (procCPUSeconds(b, vs) - switch0) / window.Seconds() * 100
			per := make([]float64, len(names))
			for i, n := range names {
				per[i] = (a.metric(n) - before[i]) / window.Seconds()
			}
			tag := strings.ReplaceAll(ph, " ", "-")
			figures["agent-cpu-%-"+tag] = append(figures["agent-cpu-%-"+tag], agentCPU)
			figures["group-mods/s-"+tag] = append(figures["group-mods/s-"+tag], per[2]+per[3]+per[4])
			figures["flow-mods/s-"+tag] = append(figures["flow-mods/s-"+tag], per[5]+per[6]+per[7])
			fmt.Printf("1,000 least-connections groups x 4 members, a second host's figures %s: agent CPU %.1f %% of a core, ovs-vswitchd %.1f %%; %.2f recomputations/s (the last %.1f ms); %.0f groups' slots changed/s, %.0f group mods/s, %.0f flow mods/s; %.1f kB/s to the controller\n",
				ph, agentCPU, switchCPU, per[0], 1000*a.metric("dlb_agent_lc_recompute_seconds"), per[1], per[2]+per[3]+per[4], per[5]+per[6]+per[7], per[8]/1e3)
			if !moving {
				rest = agentCPU
			} else {
				figures["cpu-moving/rest"] = append(figures["cpu-moving/rest"], agentCPU/max(rest, 0.1))
				fmt.Printf("agent CPU moving / at rest: %.2f\n", agentCPU/max(rest, 0.1))
			}
		}
	}
	for name, v := range figures { // medians over the iterations
		b.ReportMetric(median(v), name)
	}
}

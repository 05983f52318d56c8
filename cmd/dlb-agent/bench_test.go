package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
	"github.com/ovs-dlb/dlb/testbed"
)

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkVIPvsDirect: new TCP connections per second from the same
// client through a VIP of three members (on three hosts) and straight to
// the same three members round-robin, in pairs of runs (VIP then direct,
// or direct then VIP, alternately, so that drift favours neither); the
// figure is the median of the pairs' ratios (a pair's two runs are
// seconds apart, while the machine's speed moves by ±20 % over a minute).
// It also reports, per connection, the CPU time of the client host's
// ovs-vswitchd (the VIP's conntrack work happens there and nowhere else)
// and the datapath passes per packet there. And, as the reference, the
// same with the least a stateful NAT balancer can install (minimalNAT) in
// place of the DLB's pipeline on the client host: the client host's agent
// is stopped once its pipeline is installed, which is saved and put back
// in turn with the reference, a pair of runs each, so that both see the
// same machine.
func BenchmarkVIPvsDirect(b *testing.B) {
	c := newClusterFor(b, func(tb *testbed.Testbed) string {
		return webGroup(tb, member(tb, "s1", ""), member(tb, "s2", ""), member(tb, "s3", ""))
	})
	h1 := c.tb.Host("h1")
	pid, ok := h1.VSwitchdPID()
	require.True(b, ok)
	type sample struct{ rate, cpuUs, passes float64 }
	const count = 2000
	run := func(spec testbed.LoadSpec) sample {
		spec.VM, spec.Count, spec.Concurrency = "c1", count, 8
		_, err := h1.AppCtl(c.ctx, "dpif-netdev/pmd-stats-clear")
		require.NoError(b, err)
		cpu := procCPUSeconds(b, pid)
		r, err := c.tb.Load(c.ctx, spec)
		require.NoError(b, err)
		require.Zero(b, r.Failed(), "%v", r.FailureExamples)
		used := procCPUSeconds(b, pid) - cpu
		stats, err := h1.AppCtl(c.ctx, "dpif-netdev/pmd-stats-show")
		require.NoError(b, err)
		return sample{rate: r.RatePerSecond, cpuUs: used / count * 1e6, passes: passesPerPacket(b, stats)}
	}
	viaVIP := testbed.LoadSpec{Target: "10.96.0.10:80"}
	direct3 := testbed.LoadSpec{Targets: []string{"10.0.0.11:8080", "10.0.0.12:8080", "10.0.0.13:8080"}}
	type series struct {
		vip, direct []sample
		ratios      []float64
	}
	pair := func(s *series, vipFirst bool) {
		var v, d sample
		if vipFirst {
			v, d = run(viaVIP), run(direct3)
		} else {
			d, v = run(direct3), run(viaVIP)
		}
		s.vip, s.direct, s.ratios = append(s.vip, v), append(s.direct, d), append(s.ratios, v.rate/d.rate)
	}
	run(viaVIP) // warm up: ARP, megaflows, conntrack tables
	run(direct3)
	c.agents["h1"].kill9()
	dlb := savePipeline(b, c, h1)
	var ours, minimal series
	for i := 0; b.Loop(); i++ {
		for _, v := range []struct {
			s       *series
			install func()
		}{{&ours, func() { dlb.restore(b) }}, {&minimal, func() { minimalNAT(b, c, h1) }}} {
			v.install()
			// The first connections after the swap may meet the flows
			// half replaced: warm up without counting them.
			_, err := c.tb.Load(c.ctx, testbed.LoadSpec{VM: "c1", Target: viaVIP.Target, Count: 200, Concurrency: 8})
			require.NoError(b, err)
			pair(v.s, i%2 == 0)
		}
	}
	of := func(s []sample, f func(sample) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		return median(v)
	}
	rate := func(s sample) float64 { return s.rate }
	cpu := func(s sample) float64 { return s.cpuUs }
	passes := func(s sample) float64 { return s.passes }
	b.ReportMetric(of(ours.vip, rate), "vip-conn/s")
	b.ReportMetric(of(ours.direct, rate), "direct-conn/s")
	b.ReportMetric(median(ours.ratios), "vip/direct")
	b.ReportMetric(median(minimal.ratios), "minimal-nat-vip/direct")
	b.ReportMetric(of(ours.vip, cpu), "vip-h1-cpu-us/conn")
	b.ReportMetric(of(minimal.vip, cpu), "minimal-nat-vip-h1-cpu-us/conn")
	b.ReportMetric(of(ours.direct, cpu), "direct-h1-cpu-us/conn")
	for _, r := range []struct {
		name string
		s    series
	}{{"the DLB's pipeline", ours}, {"the minimal NAT pipeline", minimal}} {
		fmt.Printf("%s: new TCP connections/s, %d pairs of runs of %d: through the VIP %.0f, direct round-robin %.0f (medians, ratio %.2f); VIP/direct median of the pairs' ratios %.2f (from %.2f to %.2f); the client host's ovs-vswitchd per connection: CPU %.0f µs through the VIP, %.0f µs direct, datapath passes per packet %.2f and %.2f\n",
			r.name, len(r.s.ratios), count, of(r.s.vip, rate), of(r.s.direct, rate), of(r.s.vip, rate)/of(r.s.direct, rate), median(r.s.ratios), slices.Min(r.s.ratios), slices.Max(r.s.ratios),
			of(r.s.vip, cpu), of(r.s.direct, cpu), of(r.s.vip, passes), of(r.s.direct, passes))
	}
}

// statsCost reports what reading the members' counters costs an agent
// whose host holds 100,000 commit flows (issue 17): its CPU and
// ovs-vswitchd's over 10 s of reads (paced: see agent.readShare), a
// read's duration, and the agent's peak RSS after them.
func statsCost(b *testing.B, a *agentProc, h *testbed.Host) {
	time.Sleep(3 * time.Second) // reads under way
	vs, ok := h.VSwitchdPID()
	require.True(b, ok)
	agentCPU, switchCPU := procCPUSeconds(b, a.cmd.Process.Pid), procCPUSeconds(b, vs)
	reads := a.metric(`dlb_agent_stats_reads_total{result="ok"}`)
	const window = 10 * time.Second
	time.Sleep(window)
	agentCPU, switchCPU = procCPUSeconds(b, a.cmd.Process.Pid)-agentCPU, procCPUSeconds(b, vs)-switchCPU
	reads = a.metric(`dlb_agent_stats_reads_total{result="ok"}`) - reads
	members, took := a.metric("dlb_agent_stats_members"), a.metric("dlb_agent_stats_read_seconds")
	b.ReportMetric(agentCPU/window.Seconds()*100, "stats-agent-cpu-%")
	b.ReportMetric(switchCPU/window.Seconds()*100, "stats-vswitchd-cpu-%")
	fmt.Printf("reading %.0f members' counters (every stats_interval, 1 s, or 20 times the last read's time if longer: %.0f reads in %v, the last %.0f ms): agent CPU %.1f %% of a core, ovs-vswitchd %.1f %% (nothing else to do); agent peak RSS after them %.0f MiB\n",
		members, reads, window, took*1000, agentCPU/window.Seconds()*100, switchCPU/window.Seconds()*100, peakRSS(b, a.cmd.Process.Pid)/1024)
}

// savedPipeline is what a host's switch held, as ovs-ofctl dumped it.
type savedPipeline struct {
	h             *testbed.Host
	ctx           context.Context
	flows, groups string // files
}

// savePipeline dumps the flows and groups of host h to files.
func savePipeline(b *testing.B, c *cluster, h *testbed.Host) *savedPipeline {
	dir := b.TempDir()
	p := &savedPipeline{h: h, ctx: c.ctx, flows: filepath.Join(dir, "flows"), groups: filepath.Join(dir, "groups")}
	flows, err := h.OFCtl(c.ctx, "dump-flows", "--no-stats")
	require.NoError(b, err)
	groups, err := h.OFCtl(c.ctx, "dump-groups")
	require.NoError(b, err)
	var gl []string
	for _, l := range strings.Split(groups, "\n") {
		if strings.Contains(l, "group_id=") {
			gl = append(gl, strings.TrimSpace(l))
		}
	}
	require.NoError(b, os.WriteFile(p.flows, []byte(flows), 0o644))
	require.NoError(b, os.WriteFile(p.groups, []byte(strings.Join(gl, "\n")+"\n"), 0o644))
	return p
}

// restore puts the saved flows and groups back in place of what is there.
func (p *savedPipeline) restore(b *testing.B) {
	for _, args := range [][]string{{"del-flows"}, {"del-groups"}, {"add-groups", p.groups}, {"add-flows", p.flows}} {
		out, err := p.h.OFCtl(p.ctx, args[0], args[1:]...)
		require.NoError(b, err, "ovs-ofctl %v: %s", args, out)
	}
}

// minimalNAT replaces what host h holds (its agent stopped) with the
// least a stateful NAT balancer for the web group's TCP port can install,
// the reference of BenchmarkVIPvsDirect: the VIP's ARP answer; VIP
// packets through ct(nat), a new connection to a 32-slot dp_hash group
// whose buckets commit with DNAT to a member, the others on; a member's
// MAC set by its address after translation; replies through ct(nat) with
// the DLB MAC as source; everything else NORMAL. No VM-port
// classification, no labels, no hairpin, no per-member counting flows.
func minimalNAT(b *testing.B, c *cluster, h *testbed.Host) {
	flows, err := h.OFCtl(c.ctx, "dump-flows", "--no-stats")
	require.NoError(b, err)
	arp := ""
	for _, l := range strings.Split(flows, "\n") {
		if i := strings.Index(l, "priority="); i >= 0 && strings.Contains(l, "arp_tpa=10.96.0.10") {
			arp = strings.Replace(l[i:], "reg7=0x1/0x1,", "", 1)
		}
	}
	require.NotEmpty(b, arp, "the VIP's ARP answer:\n%s", flows)
	mac := pipeline.HostMAC(h.Name).String()
	text := []string{
		"table=0," + arp,
		"table=0,priority=100,tcp,nw_dst=10.96.0.10,tp_dst=80 actions=ct(zone=56064,nat,table=1)",
		"table=0,priority=100,tcp,tp_src=8080 actions=ct(zone=56064,nat,table=2)",
		"table=0,priority=0 actions=NORMAL",
		"table=1,priority=100,ct_state=+new+trk,tcp actions=group:1",
		"table=1,priority=90,ct_state=+est+trk actions=goto_table:3",
		"table=1,priority=0 actions=drop",
		"table=2,priority=100,ct_state=+rpl+trk actions=set_field:" + mac + "->eth_src,NORMAL",
		"table=2,priority=0 actions=NORMAL",
	}
	group := "group_id=1,type=select,selection_method=dp_hash"
	for k, vm := range []string{"s1", "s2", "s3"} {
		v := c.tb.VM(vm)
		text = append(text, fmt.Sprintf("table=3,priority=100,ip,nw_dst=%s actions=set_field:%s->eth_dst,NORMAL", v.Addr(), v.HardwareAddr()))
		for slot := k; slot < 32; slot += 3 {
			group += fmt.Sprintf(",bucket=bucket_id=%d,actions=ct(commit,zone=56064,nat(dst=%s:8080),table=3)", slot, v.Addr())
		}
	}
	dir := b.TempDir()
	require.NoError(b, os.WriteFile(filepath.Join(dir, "flows"), []byte(strings.Join(text, "\n")+"\n"), 0o644))
	require.NoError(b, os.WriteFile(filepath.Join(dir, "groups"), []byte(group+"\n"), 0o644))
	for _, args := range [][]string{{"del-flows"}, {"del-groups"}, {"add-groups", filepath.Join(dir, "groups")}, {"add-flows", filepath.Join(dir, "flows")}} {
		out, err := h.OFCtl(c.ctx, args[0], args[1:]...)
		require.NoError(b, err, "ovs-ofctl %v: %s", args, out)
	}
}

// procCPUSeconds is a process's user and system CPU time so far.
func procCPUSeconds(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	// Fields after the command (which may hold spaces) in parentheses:
	// utime and stime are the 12th and 13th from there, in clock ticks
	// (100 a second on Linux).
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	require.Greater(b, len(f), 12, "/proc/%d/stat", pid)
	utime, err := strconv.ParseFloat(f[11], 64)
	require.NoError(b, err)
	stime, err := strconv.ParseFloat(f[12], 64)
	require.NoError(b, err)
	return (utime + stime) / 100
}

// passesPerPacket reads "avg. datapath passes per packet" from
// dpif-netdev/pmd-stats-show (the main thread's, which polls the
// testbed's ports).
func passesPerPacket(b *testing.B, stats string) float64 {
	for _, line := range strings.Split(stats, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "avg. datapath passes per packet:"); ok {
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(b, err)
			return x
		}
	}
	b.Fatalf("no datapath passes in:\n%s", stats)
	return 0
}

// BenchmarkInstall10kVIPs: time from starting the agent to the end of its
// first reconcile, its peak RSS and ovs-vswitchd's RSS after it, for
// 10,000 VIPs x 10 equal members (256 slots each, one select group shared
// by all) from a JSON file on one host; then the time for a one-member
// change; and, as the floor, "ovs-ofctl --bundle" adding the very flows
// and groups the agent installed, from files.
func BenchmarkInstall10kVIPs(b *testing.B) {
	benchInstall(b, func(i, k int) int { return 100 })
}

// BenchmarkInstall10kVIPsNoByteCounts: the same without the members'
// counting flows (count_bytes: false), 200,000 flows fewer.
func BenchmarkInstall10kVIPsNoByteCounts(b *testing.B) {
	benchInstall(b, func(i, k int) int { return 100 }, "--own-bridge", "--count-bytes=false")
}

// BenchmarkInstall10kVIPsDistinctSlots: the same with weights that differ
// from group to group, so that no two groups deal their slots alike: the
// worst case of the shared select groups, one group of up to 256 buckets
// per VIP.
func BenchmarkInstall10kVIPsDistinctSlots(b *testing.B) {
	benchInstall(b, func(i, k int) int {
		x := uint32(i*10+k)*2654435761 + 12345 // a multiplicative hash: weights 1..1000 with no pattern
		return 1 + int(x>>8)%1000
	})
}

// benchInstall runs the install benchmark with the agent's args (nil:
// the defaults).
func benchInstall(b *testing.B, weightOf func(i, k int) int, args ...string) {
	topo, err := testbed.Example("one-host")
	require.NoError(b, err)
	tb := testbed.Start(b, topo)
	h := tb.Host("h1")
	dir := b.TempDir()
	file := filepath.Join(dir, "groups.json")
	text := func(weight int) string {
		var s strings.Builder
		s.WriteString(`{"groups":[`)
		for i := 0; i < 10000; i++ {
			if i > 0 {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, `{"name":"g%d","vip":"10.%d.%d.%d","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[`, i, 96+i/65536, i/256%256, i%256)
			for k := 0; k < 10; k++ {
				m := i*10 + k
				w := weightOf(i, k)
				if i == 0 && k == 0 {
					w = weight
				}
				if k > 0 {
					s.WriteByte(',')
				}
				fmt.Fprintf(&s, `{"ip":"10.%d.%d.%d","mac":"02:00:00:00:%02x:01","weight":%d}`, 128+m/65536, m/256%256, m%256, k, w)
			}
			s.WriteString("]}")
		}
		s.WriteString("]}")
		return s.String()
	}
	write := func(text string) {
		tmp := file + ".tmp"
		require.NoError(b, os.WriteFile(tmp, []byte(text), 0o644))
		require.NoError(b, os.Rename(tmp, file))
	}
	write(text(100))
	ctx := context.Background()
	clear := func() {
		_, err := h.OFCtl(ctx, "del-flows")
		require.NoError(b, err)
		_, err = h.OFCtl(ctx, "del-groups")
		require.NoError(b, err)
	}
	var installs, rss, switchRSS, changes, changeReconciles []float64
	flowsFile, groupsFile := filepath.Join(dir, "flows.txt"), filepath.Join(dir, "groups.txt")
	for b.Loop() {
		clear()
		a := &agentProc{t: b, host: h, file: file, metrics: testbed.FreeAddr(b), logPath: filepath.Join(dir, "agent.log"), args: args}
		start := time.Now()
		a.launch()
		for a.metric("dlb_agent_reconciles_total") < 1 {
			time.Sleep(10 * time.Millisecond)
		}
		installs = append(installs, time.Since(start).Seconds())
		rss = append(rss, peakRSS(b, a.cmd.Process.Pid))
		switchRSS = append(switchRSS, vswitchdRSS(b, h))
		for _, l := range strings.Split(a.logTail(), "\n") {
			if strings.Contains(l, "msg=reconciled") {
				b.Logf("install: %s", l[strings.Index(l, "msg="):])
				break
			}
		}
		if len(installs) == 1 {
			dumpFor(b, h, "dump-flows", flowsFile)
			dumpFor(b, h, "dump-groups", groupsFile)
		}
		// One member's weight changes.
		before := a.metric("dlb_agent_reconciles_total")
		changed := text(101 + len(changes))
		start = time.Now()
		write(changed)
		for a.metric("dlb_agent_reconciles_total") <= before {
			time.Sleep(2 * time.Millisecond)
		}
		changes = append(changes, time.Since(start).Seconds())
		changeReconciles = append(changeReconciles, a.metric("dlb_agent_last_reconcile_seconds"))
		b.Logf("reconciles after the change: %v", a.metric("dlb_agent_reconciles_total")-before)
		if len(changes) == 1 {
			statsCost(b, a, h)
		}
		a.stop()
	}
	// The floor: ovs-ofctl adds the same groups and flows in two bundles.
	var floors []float64
	for range len(installs) {
		clear()
		start := time.Now()
		for _, args := range [][]string{{"add-groups", groupsFile}, {"add-flows", flowsFile}} {
			out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "--bundle", args[0], h.OpenFlowTarget(), args[1]).CombinedOutput()
			require.NoError(b, err, "%s", out)
		}
		floors = append(floors, time.Since(start).Seconds())
	}
	clear()
	b.ReportMetric(median(installs), "install-s")
	b.ReportMetric(median(floors), "ovs-ofctl-s")
	b.ReportMetric(median(rss)/1024, "agent-peak-rss-MiB")
	b.ReportMetric(median(switchRSS)/1024, "vswitchd-rss-MiB")
	b.ReportMetric(median(changes)*1000, "one-member-change-ms")
	b.ReportMetric(median(changeReconciles)*1000, "one-member-reconcile-ms")
	fmt.Printf("%s: 10,000 VIPs x 10 members, median of %d: installed %.2f s after agent start (ovs-ofctl --bundle, same flows and groups from files: %.2f s), agent peak RSS %.0f MiB, ovs-vswitchd RSS %.0f MiB; one-member change applied %.0f ms after the file changed (reconcile %.0f ms)\n",
		b.Name(), len(installs), median(installs), median(floors), median(rss)/1024, median(switchRSS)/1024, median(changes)*1000, median(changeReconciles)*1000)
}

// dumpFor writes what ovs-ofctl dumps (dump-flows or dump-groups) to a
// file it can add back.
func dumpFor(b *testing.B, h *testbed.Host, command, path string) {
	args := []string{}
	if command == "dump-flows" {
		args = append(args, "--no-stats")
	}
	out, err := h.OFCtl(context.Background(), command, args...)
	require.NoError(b, err)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, " ") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	require.NoError(b, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
}

// vswitchdRSS is the resident set of a host's ovs-vswitchd, in KiB.
func vswitchdRSS(b *testing.B, h *testbed.Host) float64 {
	data, err := os.ReadFile(filepath.Join(h.RunDir, "ovs-vswitchd.pid"))
	require.NoError(b, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	require.NoError(b, err)
	return procStatusKiB(b, pid, "VmRSS")
}

// convEvent is one convergence run: a group created or a member added at
// at, the REST answer after acked, the last client's answer after
// answered.
type convEvent struct {
	kind            string
	clients         int
	at              time.Time
	acked, answered time.Duration
}

// convBreakdown splits the runs' times into steps from the agents' logs
// (millisecond timestamps): REST request → acknowledged; → the slowest
// agent has the change ("group changes from the controller"); → the
// slowest agent installed it ("reconciled", which also gives its compute
// and switch parts); → every client had its answer. Medians per kind of
// change and number of probing clients.
func convBreakdown(b *testing.B, f *fleet, events []convEvent) {
	type step struct{ recv, applied, compute, sw time.Duration }
	parse := func(line string) (time.Time, bool) {
		v, ok := strings.CutPrefix(line, "time=")
		if !ok {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, strings.Fields(v)[0])
		return t, err == nil
	}
	field := func(line, name string) time.Duration {
		_, v, ok := strings.Cut(line, " "+name+"=")
		if !ok {
			return 0
		}
		d, _ := time.ParseDuration(strings.Fields(v)[0])
		return d
	}
	var logs [][]string
	for _, a := range f.agents {
		data, err := os.ReadFile(a.logPath)
		require.NoError(b, err)
		logs = append(logs, strings.Split(string(data), "\n"))
	}
	steps := map[string][]step{}
	for k, e := range events {
		if e.kind == "delete" {
			continue
		}
		end := time.Now()
		if k+1 < len(events) {
			end = events[k+1].at
		}
		var worst step
		found := 0
		for _, lines := range logs {
			var recv time.Time
			for _, l := range lines {
				t, ok := parse(l)
				if !ok || t.Before(e.at.Truncate(time.Millisecond)) || t.After(end) {
					continue
				}
				if recv.IsZero() && strings.Contains(l, "group changes from the controller") {
					recv = t
				}
				if !recv.IsZero() && strings.Contains(l, "msg=reconciled") {
					worst.recv = max(worst.recv, recv.Sub(e.at))
					worst.applied = max(worst.applied, t.Sub(e.at))
					worst.compute = max(worst.compute, field(l, "computing"))
					worst.sw = max(worst.sw, field(l, "switch"))
					found++
					break
				}
			}
		}
		if found == len(logs) {
			key := fmt.Sprintf("%s/%d", e.kind, e.clients)
			steps[key] = append(steps[key], worst)
		}
	}
	for _, key := range []string{"create/3", "member/3", "create/1", "member/1", "among/3"} {
		var acked, answered, recv, applied, compute, sw []time.Duration
		for _, e := range events {
			if fmt.Sprintf("%s/%d", e.kind, e.clients) == key {
				acked, answered = append(acked, e.acked), append(answered, e.answered)
			}
		}
		for _, st := range steps[key] {
			recv, applied, compute, sw = append(recv, st.recv), append(applied, st.applied), append(compute, st.compute), append(sw, st.sw)
		}
		fmt.Printf("convergence steps, %s (kind/probing clients), medians over %d runs (%d with every agent's log lines): REST answered %.1f ms; slowest agent has the change %.1f ms; slowest agent installed it %.1f ms (its compute %.2f ms, switch %.2f ms); every client answered %.1f ms\n",
			key, len(acked), len(steps[key]), quantileMs(acked, 0.5), quantileMs(recv, 0.5), quantileMs(applied, 0.5), quantileMs(compute, 0.5), quantileMs(sw, 0.5), quantileMs(answered, 0.5))
	}
}

// peakRSS is a process's peak resident set, in KiB.
func peakRSS(b *testing.B, pid int) float64 { return procStatusKiB(b, pid, "VmHWM") }

// procStatusKiB is a "NAME:  N kB" line of a process's /proc status.
func procStatusKiB(b *testing.B, pid int, name string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return f
		}
	}
	return 0
}

func quantileMs(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))]) / float64(time.Millisecond)
}

// BenchmarkConvergence: with a controller and an agent per host, the time
// from a REST request to the first answered connection through the VIP
// from a client on every host (each client, in a process of its own in
// its namespace, tries a new connection every millisecond): for a group
// created (until all three clients have an answer), and for a member
// added (until the new member answers each client). 20 runs each; medians
// and p99 (of 20: the slowest). The same with one client probing. And,
// in the same run, the floor: what the emulated data path alone takes
// under the same probing, with no control plane at all (see floorRuns).
// The clients know the VIPs' MAC (a permanent neighbour entry), so ARP's
// retry timer is not measured.
func BenchmarkConvergence(b *testing.B) {
	f := newFleet(b)
	clients := map[string]string{"c1": "h1", "c2": "h2", "c3": "h3"}
	const runs = 20
	vip := func(i int) string { return fmt.Sprintf("10.96.1.%d", i+1) }
	for c, h := range clients {
		for i := 0; i <= 5*runs+2; i++ {
			_, err := f.tb.Exec(f.ctx, c, "ip", "neigh", "replace", vip(i), "lladdr", pipeline.HostMAC(h).String(), "dev", "eth0", "nud", "permanent")
			require.NoError(b, err)
		}
	}
	doc := func(i int, members ...string) string {
		var m []string
		for _, s := range members {
			m = append(m, fmt.Sprintf(`{"ip":%q}`, f.tb.VM(s).Addr()))
		}
		return fmt.Sprintf(`{"name":"conv%d","vip":%q,"ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[%s]}`, i, vip(i), strings.Join(m, ","))
	}
	// race arms a prober on each client, fires them, sends the request,
	// and returns the time from the request until every client had its
	// answer (from servers named in want, when given).
	var events []convEvent
	kind := "create"
	race := func(i int, want []string, clients []string, request func()) time.Duration {
		ps := make([]*testbed.Prober, len(clients))
		for k, c := range clients {
			p, err := f.tb.StartProbe(f.ctx, testbed.ProbeSpec{VM: c, Target: vip(i) + ":80", Want: want, Max: 2 * time.Second, Timeout: 10 * time.Millisecond})
			require.NoError(b, err)
			ps[k] = p
		}
		for _, p := range ps {
			require.NoError(b, p.Fire())
		}
		t0 := time.Now()
		request()
		acked := time.Since(t0)
		var worst time.Duration
		for _, p := range ps {
			r, err := p.Wait()
			require.NoError(b, err)
			worst = max(worst, r.At.Sub(t0))
		}
		events = append(events, convEvent{kind: kind, clients: len(clients), at: t0, acked: acked, answered: worst})
		return worst
	}
	all, one := []string{"c1", "c2", "c3"}, []string{"c1"}
	base := "/v1/groups"
	// Warm-up: the agents learn the members' MACs once.
	kind = "warm-up"
	race(4*runs+1, nil, all, func() { f.ctl.Call("POST", base, doc(4*runs+1, "s1", "s2", "s3", "s4"), 201) })

	var created, added, alone, aloneAdded, floor, floorAdded, among []time.Duration
	for b.Loop() {
		if len(created) >= runs {
			continue // the runs are done in the first iteration
		}
		// Three clients probing, then (the probing's own load out of the
		// figure, and the reference's conditions) one.
		for _, series := range []struct {
			clients        []string
			first          int
			created, added *[]time.Duration
		}{{all, 0, &created, &added}, {one, runs, &alone, &aloneAdded}} {
			for i := series.first; i < series.first+runs; i++ {
				kind = "create"
				*series.created = append(*series.created, race(i, nil, series.clients, func() {
					f.ctl.Call("POST", base, doc(i, "s1", "s2", "s3"), 201)
				}))
				kind = "member"
				*series.added = append(*series.added, race(i, []string{"s4"}, series.clients, func() {
					f.ctl.Call("POST", fmt.Sprintf("%s/conv%d/members", base, i), fmt.Sprintf(`{"ip":%q}`, f.tb.VM("s4").Addr()), 201)
				}))
				kind = "delete"
				deleteGroup(b, f, fmt.Sprintf("conv%d", i), 4) // s1-s3 and the added s4
			}
		}
		s4 := f.tb.VM("s4").Addr()
		floor = floorRuns(b, f, 2*runs, runs, race, func(i int) string { return doc(i, "s1", "s2", "s3") },
			func(i int) *ofctrl.Flow {
				return ofctrl.NewFlow(0, 1000).Cookie(0x77).Match(ofctrl.IP, ofctrl.IPDst(ofctrl.Host(netip.MustParseAddr(vip(i))))).Done()
			}, nil)
		floorAdded = floorRuns(b, f, 3*runs, runs, race, func(i int) string { return doc(i, "s1", "s2", "s3", "s4") },
			func(i int) *ofctrl.Flow {
				return ofctrl.NewFlow(uint8(pipeline.TableOutput), 1000).Cookie(0x77).Match(ofctrl.TCP, ofctrl.IPDst(ofctrl.Host(s4)), ofctrl.DstPort(ofctrl.ProtoTCP, 8080)).Done()
			}, []string{"s4"})
		// The same creations with 10,000 other groups on every host.
		last := uint64(0)
		loadStart := time.Now()
		for i := range 10000 {
			var g wire.Group
			body := fmt.Sprintf(`{"name":"other%d","vip":"10.97.%d.%d","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[{"ip":%q},{"ip":%q},{"ip":%q}]}`,
				i, i/256, i%256, f.tb.VM("s1").Addr(), f.tb.VM("s2").Addr(), f.tb.VM("s3").Addr())
			require.NoError(b, json.Unmarshal(f.ctl.Call("POST", base, body, 201), &g))
			last = g.ModifyIndex
		}
		b.Logf("10,000 groups written in %v", time.Since(loadStart))
		applied := func() string {
			var out []string
			for h, a := range f.agents {
				out = append(out, fmt.Sprintf("%s: %.0f", h, a.metric("dlb_agent_applied_index")))
			}
			return strings.Join(out, ", ")
		}
		require.Eventually(b, func() bool {
			for _, a := range f.agents {
				if a.metric("dlb_agent_applied_index") < float64(last) {
					return false
				}
			}
			return true
		}, 2*time.Minute, 50*time.Millisecond, "10,000 groups applied on every host: want index %d, have %s", last, applied())
		b.Logf("and applied on every host %v after the first write", time.Since(loadStart))
		gcs := func() string {
			var out []string
			for h, a := range f.agents {
				out = append(out, fmt.Sprintf("%s: heap %.0f MiB, GC cycles %.0f, resident %.0f MiB", h, a.metric("go_memstats_heap_alloc_bytes")/(1<<20),
					a.metric(`go_gc_duration_seconds_count`), a.metric("process_resident_memory_bytes")/(1<<20)))
			}
			return strings.Join(out, "; ")
		}
		b.Logf("agents with 10,000 groups: %s", gcs())
		defer func() { b.Logf("agents after the creations among them: %s", gcs()) }()
		kind = "among"
		for i := 4*runs + 2; i < 5*runs+2; i++ {
			among = append(among, race(i, nil, all, func() { f.ctl.Call("POST", base, doc(i, "s1", "s2", "s3"), 201) }))
			kind = "delete"
			deleteGroup(b, f, fmt.Sprintf("conv%d", i), 3)
			kind = "among"
		}
		convBreakdown(b, f, events)
	}
	b.ReportMetric(quantileMs(among, 0.5), "create-among-10k-p50-ms")
	b.ReportMetric(quantileMs(among, 0.99), "create-among-10k-p99-ms")
	fmt.Printf("convergence with 10,000 other groups on every host, over %d runs: group created p50 %.1f ms, p99 %.1f ms\n", len(among), quantileMs(among, 0.5), quantileMs(among, 0.99))
	b.ReportMetric(quantileMs(created, 0.5), "create-p50-ms")
	b.ReportMetric(quantileMs(created, 0.99), "create-p99-ms")
	b.ReportMetric(quantileMs(added, 0.5), "member-add-p50-ms")
	b.ReportMetric(quantileMs(added, 0.99), "member-add-p99-ms")
	b.ReportMetric(quantileMs(alone, 0.5), "create-1client-p50-ms")
	b.ReportMetric(quantileMs(aloneAdded, 0.5), "member-add-1client-p50-ms")
	b.ReportMetric(quantileMs(floor, 0.5), "floor-p50-ms")
	b.ReportMetric(quantileMs(floor, 0.99), "floor-p99-ms")
	b.ReportMetric(quantileMs(floorAdded, 0.5), "floor-member-add-p50-ms")
	b.ReportMetric(quantileMs(floorAdded, 0.99), "floor-member-add-p99-ms")
	b.ReportMetric(quantileMs(created, 0.5)/quantileMs(floor, 0.5), "create/floor")
	b.ReportMetric(quantileMs(added, 0.5)/quantileMs(floorAdded, 0.5), "member-add/floor")
	fmt.Printf("convergence over %d runs, REST request to an answer through the VIP on all three hosts (clients trying every 1 ms): group created p50 %.1f ms, p99 %.1f ms; member added (until it answers) p50 %.1f ms, p99 %.1f ms; with one client probing: created p50 %.1f ms, p99 %.1f ms, member added p50 %.1f ms, p99 %.1f ms\n",
		len(created), quantileMs(created, 0.5), quantileMs(created, 0.99), quantileMs(added, 0.5), quantileMs(added, 0.99), quantileMs(alone, 0.5), quantileMs(alone, 0.99), quantileMs(aloneAdded, 0.5), quantileMs(aloneAdded, 0.99))
	fmt.Printf("the testbed's floor in the same run (installed beforehand, unblocked by one flow-mod per host, three clients probing): a VIP p50 %.1f ms, p99 %.1f ms; a member p50 %.1f ms, p99 %.1f ms; ours / floor (medians): created %.2f, member added %.2f\n",
		quantileMs(floor, 0.5), quantileMs(floor, 0.99), quantileMs(floorAdded, 0.5), quantileMs(floorAdded, 0.99),
		quantileMs(created, 0.5)/quantileMs(floor, 0.5), quantileMs(added, 0.5)/quantileMs(floorAdded, 0.5))
}

// floorRuns measures what convergence costs with no control plane: each
// run's group is created and installed while a flow that is not the
// DLB's (cookie 0x77, priority 1000) drops what the run waits for on every
// host: the VIP in the first table (a group created), or the new member's
// port in DLB_OUTPUT, after translation (a member added). With the
// probers running, one flow-mod per host, sent at once over connections
// opened beforehand, removes that flow, and the probers time the first
// wanted answer on every client. What is left is OVS taking a flow-mod,
// revalidating its datapath flows and the first connection's trip
// through the emulated hosts, under the probing's load: no controller and
// agent can converge faster on this testbed.
func floorRuns(b *testing.B, f *fleet, first, runs int, race func(int, []string, []string, func()) time.Duration,
	group func(int) string, block func(int) *ofctrl.Flow, want []string) []time.Duration {
	conns := map[string]*ofctrl.Conn{}
	for _, h := range f.tb.Hosts() {
		c, err := ofctrl.Dial(f.ctx, h.OpenFlowTarget(), ofctrl.ConnOptions{})
		require.NoError(b, err)
		b.Cleanup(func() { c.Close() })
		conns[h.Name] = c
	}
	var out []time.Duration
	for i := first; i < first+runs; i++ {
		for _, c := range conns {
			require.NoError(b, c.Apply(f.ctx, block(i).Add()))
		}
		var g wire.Group
		require.NoError(b, json.Unmarshal(f.ctl.Call("POST", "/v1/groups", group(i), 201), &g))
		require.Eventually(b, func() bool {
			for _, a := range f.agents {
				if a.metric("dlb_agent_applied_index") < float64(g.ModifyIndex) {
					return false
				}
			}
			return true
		}, 10*time.Second, 5*time.Millisecond)
		out = append(out, race(i, want, []string{"c1", "c2", "c3"}, func() {
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Add(1)
				go func() { defer wg.Done(); require.NoError(b, c.Apply(f.ctx, block(i).DeleteStrict())) }()
			}
			wg.Wait()
		}))
		deleteGroup(b, f, fmt.Sprintf("conv%d", i), len(g.Members))
	}
	return out
}

// deleteGroup deletes a group of n members (one VIP port) and waits until
// every agent flushed the departed members' conntrack entries: that
// flush waits for a revalidation round and walks the conntrack table, and
// must not run into the next measurement.
func deleteGroup(b *testing.B, f *fleet, name string, n int) {
	flushes := func(a *agentProc) float64 {
		return a.metric(`dlb_agent_conntrack_flushes_total{result="ok"}`) + a.metric(`dlb_agent_conntrack_flushes_total{result="error"}`)
	}
	before := map[string]float64{}
	for h, a := range f.agents {
		before[h] = flushes(a)
	}
	f.ctl.Call("DELETE", "/v1/groups/"+name, "", 204)
	require.Eventually(b, func() bool {
		for h, a := range f.agents {
			if flushes(a) < before[h]+float64(n) {
				return false
			}
		}
		return true
	}, 10*time.Second, 25*time.Millisecond, "agents did not flush %s's %d members", name, n) // not faster: each scrape is garbage for the agents to collect
}

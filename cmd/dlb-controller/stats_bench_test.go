package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/testbed"
)

// BenchmarkStats100Hosts: 100 simulated hosts report the statistics of
// 10,000 members each (1,000 groups of 10 members, every group on every
// host) over the real API, every second, as agents do: a full report at
// the start, then what changed. Two regimes, 8 s each: a tenth of the
// members change every second on every host (100,000 entries a second in
// all), then all of them (1,000,000). Reported: the controller's CPU (% of
// one core), its RSS at the end, the report bytes a second, and report
// latency.
func BenchmarkStats100Hosts(b *testing.B) {
	c := testbed.StartController(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	const groups, members, hosts = 1000, 10, 100
	putGroups(b, hc, c.Addr, groups, members)
	post := func(method, path string, body []byte) (time.Duration, error) {
		req, err := http.NewRequest(method, "http://"+c.Addr+path, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("%s %s: %d", method, path, resp.StatusCode)
		}
		return time.Since(start), nil
	}
	for h := 0; h < hosts; h++ {
		_, err := post("PUT", fmt.Sprintf("/v1/hosts/h%d", h), []byte(`{"ports":[]}`))
		require.NoError(b, err)
	}
	// The members as groupDoc makes them.
	type ref struct{ group, member string }
	refs := make([]ref, 0, groups*members)
	for g := 0; g < groups; g++ {
		for i := 0; i < members; i++ {
			refs = append(refs, ref{fmt.Sprintf("g%d", g), fmt.Sprintf("10.%d.%d.%d", 1+g/65536, g/256%256, i+1)})
		}
	}
	// report builds a host's report at tick t: the members whose index
	// mod every is t mod every changed (every 1: all of them).
	report := func(buf []byte, t, every int, full bool) []byte {
		buf = append(buf[:0], `{"interval_s":1,"full":`...)
		buf = strconv.AppendBool(buf, full)
		buf = append(buf, `,"members":[`...)
		first := true
		for i, r := range refs {
			if !full && i%every != t%every {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			n := uint64(t + i%7)
			buf = append(buf, `{"group":"`...)
			buf = append(buf, r.group...)
			buf = append(buf, `","port":"tcp/80","member":"`...)
			buf = append(buf, r.member...)
			buf = append(buf, `","new_connections":`...)
			buf = strconv.AppendUint(buf, n, 10)
			buf = append(buf, `,"active_connections":`...)
			buf = strconv.AppendUint(buf, n%5, 10)
			buf = append(buf, `,"packets_to_member":`...)
			buf = strconv.AppendUint(buf, 10*n, 10)
			buf = append(buf, `,"bytes_to_member":`...)
			buf = strconv.AppendUint(buf, 700*n, 10)
			buf = append(buf, `,"packets_from_member":`...)
			buf = strconv.AppendUint(buf, 8*n, 10)
			buf = append(buf, `,"bytes_from_member":`...)
			buf = strconv.AppendUint(buf, 5000*n, 10)
			buf = append(buf, '}')
		}
		return append(buf, "]}"...)
	}
	var sent atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	var errs atomic.Int64
	run := func(every int, d time.Duration, tick0 int) {
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for h := 0; h < hosts; h++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var buf []byte
				path := fmt.Sprintf("/v1/hosts/h%d/stats", h)
				// Spread over the second, as independent agents are.
				time.Sleep(time.Duration(h) * time.Second / hosts)
				for t := tick0; time.Now().Before(stop); t++ {
					next := time.Now().Add(time.Second)
					buf = report(buf, t, every, t == 0)
					lat, err := post("POST", path, buf)
					if err != nil {
						errs.Add(1)
					} else {
						sent.Add(int64(len(buf)))
						mu.Lock()
						latencies = append(latencies, lat)
						mu.Unlock()
					}
					time.Sleep(time.Until(next))
				}
			}()
		}
		wg.Wait()
	}
	run(1, 3*time.Second, 0) // every host's first, full report, then all
	for b.Loop() {
		for _, phase := range []struct {
			name  string
			every int
		}{{"a tenth of the members change", 10}, {"every member changes", 1}} {
			sent.Store(0)
			latencies = nil
			errs.Store(0)
			cpu0 := procCPU(b, c.PID())
			start := time.Now()
			run(phase.every, 8*time.Second, 10)
			wall := time.Since(start).Seconds()
			cpu := (procCPU(b, c.PID()) - cpu0) / wall * 100
			entries := float64(hosts*groups*members/phase.every) * float64(len(latencies)) / float64(hosts) / wall
			tag := "tenth"
			if phase.every == 1 {
				tag = "all"
			}
			b.ReportMetric(cpu, "controller-cpu-%-"+tag)
			b.ReportMetric(float64(sent.Load())/wall/1e6, "report-MB/s-"+tag)
			rss := rssMiB(c.PID())
			b.ReportMetric(rss, "controller-MiB-"+tag)
			fmt.Printf("100 hosts x 10,000 members, %s every second: %d reports in %.1f s (%.0f entries/s, %.1f MB/s of JSON, %d failed); controller CPU %.0f %% of a core, RSS %.0f MiB; report latency p50 %.1f ms, p99 %.1f ms\n",
				phase.name, len(latencies), wall, entries, float64(sent.Load())/wall/1e6, errs.Load(), cpu, rss, ms(quantile(latencies, 0.5)), ms(quantile(latencies, 0.99)))
		}
	}
}

// procCPU is a process's user and system CPU seconds so far.
func procCPU(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/controller/store"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/testbed"
)

// quantile of durations (q in 0..1).
func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// groupDoc is a group of n members; k makes its VIP and weights unique.
func groupDoc(name string, k, n int) string {
	var m []string
	for i := 0; i < n; i++ {
		m = append(m, fmt.Sprintf(`{"ip":"10.%d.%d.%d","weight":%d}`, 1+k/65536, k/256%256, i+1, 1+(k+i)%65535))
	}
	return fmt.Sprintf(`{"name":%q,"vip":"10.96.%d.%d","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[%s]}`,
		name, k/250%250, k%250+1, strings.Join(m, ","))
}

// putGroups writes groups g0..g(n-1) of members members each, 4 at a
// time.
func putGroups(b *testing.B, hc *http.Client, addr string, n, members int) {
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				put(b, hc, addr, fmt.Sprintf("g%d", i), groupDoc(fmt.Sprintf("g%d", i), i, members))
			}
		}()
	}
	wg.Wait()
}

func put(b *testing.B, hc *http.Client, addr, name, doc string) time.Duration {
	req, err := http.NewRequest("PUT", "http://"+addr+"/v1/groups/"+name, strings.NewReader(doc))
	require.NoError(b, err)
	start := time.Now()
	resp, err := hc.Do(req)
	require.NoError(b, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(b, 200, resp.StatusCode)
	return time.Since(start)
}

// BenchmarkREST: writes (PUT of a 10-member group, one client, each
// acknowledged once committed in ovsdb-server) and reads (GET of one
// group, 8 clients) on loopback, with p50/p99; and, side by side, the same
// group's rows committed straight to the same ovsdb-server through
// libovsdb, the floor a write cannot go under: write p50 / raw p50 is the
// controller's overhead.
func BenchmarkREST(b *testing.B) {
	c := testbed.StartController(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	const groups = 100
	for i := 0; i < groups; i++ {
		put(b, hc, c.Addr, fmt.Sprintf("g%d", i), groupDoc(fmt.Sprintf("g%d", i), i, 10))
	}
	raw := rawWriter(b, c.OVSDB())
	var writes, rawWrites, reads []time.Duration
	var readWall time.Duration
	for i := 0; b.Loop(); i++ {
		for j := 0; j < 500; j++ {
			k := i*500 + j
			name := fmt.Sprintf("g%d", k%groups)
			writes = append(writes, put(b, hc, c.Addr, name, groupDoc(name, k%groups, 10)))
			rawWrites = append(rawWrites, raw(k))
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var local []time.Duration
				for j := 0; j < 500; j++ {
					t0 := time.Now()
					resp, err := hc.Get(fmt.Sprintf("http://%s/v1/groups/g%d", c.Addr, (w*500+j)%groups))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				reads = append(reads, local...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		readWall += time.Since(start)
	}
	var writeTotal time.Duration
	for _, d := range writes {
		writeTotal += d
	}
	wps := float64(len(writes)) / writeTotal.Seconds()
	rps := float64(len(reads)) / readWall.Seconds()
	b.ReportMetric(wps, "writes/s")
	b.ReportMetric(ms(quantile(writes, 0.5)), "write-p50-ms")
	b.ReportMetric(ms(quantile(writes, 0.99)), "write-p99-ms")
	b.ReportMetric(rps, "reads/s")
	b.ReportMetric(ms(quantile(reads, 0.5)), "read-p50-ms")
	b.ReportMetric(ms(quantile(reads, 0.99)), "read-p99-ms")
	ratio := float64(quantile(writes, 0.5)) / float64(quantile(rawWrites, 0.5))
	b.ReportMetric(ratio, "write/raw-p50")
	fmt.Printf("REST on loopback, %d groups of 10 members: writes %.0f/s (p50 %.2f ms, p99 %.2f ms; raw libovsdb commit of the same rows p50 %.2f ms, ratio %.2f), reads with 8 clients %.0f/s (p50 %.2f ms, p99 %.2f ms)\n",
		groups, wps, ms(quantile(writes, 0.5)), ms(quantile(writes, 0.99)), ms(quantile(rawWrites, 0.5)), ratio,
		rps, ms(quantile(reads, 0.5)), ms(quantile(reads, 0.99)))
}

// rawWriter commits a group's rows straight to the controller's
// ovsdb-server (in a table of its own name space: groups raw-N), the way
// the store does but without the API, the view or the index.
func rawWriter(b *testing.B, endpoint string) func(k int) time.Duration {
	dbm, err := dlbdb.FullDatabaseModel()
	require.NoError(b, err)
	quiet := logr.Discard()
	cl, err := client.NewOVSDBClient(dbm, client.WithEndpoint(endpoint), client.WithLogger(&quiet))
	require.NoError(b, err)
	ctx := context.Background()
	require.NoError(b, cl.Connect(ctx))
	b.Cleanup(cl.Disconnect)
	return func(k int) time.Duration {
		name := fmt.Sprintf("raw-%d", k%100)
		g := lb.Group{Name: name, VIP: fmt.Sprintf("10.97.0.%d", k%100+1), Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}}
		for i := 0; i < 10; i++ {
			w := 1 + (k+i)%65535
			g.Members = append(g.Members, lb.Member{IP: fmt.Sprintf("10.1.0.%d", i+1), Weight: &w})
		}
		r := store.ToRows(g)
		ops := []ovsdb.Operation{{Op: ovsdb.OperationDelete, Table: dlbdb.GroupTable, Where: []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}}}}
		for i := range r.Members {
			o, err := cl.Create(&r.Members[i])
			require.NoError(b, err)
			ops = append(ops, o...)
		}
		for i := range r.Ports {
			o, err := cl.Create(&r.Ports[i])
			require.NoError(b, err)
			ops = append(ops, o...)
		}
		o, err := cl.Create(&r.Group)
		require.NoError(b, err)
		durable := true // as the store's writes: on disk before the answer
		ops = append(append(ops, o...), ovsdb.Operation{Op: ovsdb.OperationCommit, Durable: &durable})
		start := time.Now()
		res, err := cl.Transact(ctx, ops...)
		d := time.Since(start)
		require.NoError(b, err)
		_, err = ovsdb.CheckOperationResults(res, ops)
		require.NoError(b, err)
		return d
	}
}

// BenchmarkMemory10kGroups: the controller's and its ovsdb-server's
// resident memory holding 10,000 groups of 10 members (100,000 member
// rows), and the Go heap in use.
func BenchmarkMemory10kGroups(b *testing.B) {
	c := testbed.StartController(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	const groups = 10000
	start := time.Now()
	putGroups(b, hc, c.Addr, groups, 10)
	load := time.Since(start)
	for b.Loop() {
		time.Sleep(100 * time.Millisecond)
	}
	// A read of the whole list, as an agent's first watch would do.
	t0 := time.Now()
	resp, err := hc.Get("http://" + c.Addr + "/v1/groups")
	require.NoError(b, err)
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	list := time.Since(t0)
	resp, err = hc.Get("http://" + c.Addr + "/metrics")
	require.NoError(b, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	heap := metric(string(metrics), "go_memstats_heap_inuse_bytes")
	ctrl, db := rssMiB(c.PID()), rssMiB(c.OVSDBPID())
	b.ReportMetric(ctrl, "controller-MiB")
	b.ReportMetric(db, "ovsdb-server-MiB")
	b.ReportMetric(heap/(1<<20), "heap-MiB")
	fmt.Printf("10,000 groups x 10 members: loaded in %.1f s (%.0f writes/s, 4 clients); resident memory: controller %.0f MiB (Go heap in use %.0f MiB), ovsdb-server %.0f MiB; GET /v1/groups %.1f MB in %v\n",
		load.Seconds(), groups/load.Seconds(), ctrl, heap/(1<<20), db, float64(n)/1e6, list.Round(time.Millisecond))
}

func metric(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

func rssMiB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTmpControlPath(t *testing.T) {
	f := newFleet(t)
	base := f.ctl.URL() + "/v1/groups"
	doc := func(i int) string {
		return fmt.Sprintf(`{"name":"conv%d","vip":"10.96.1.%d","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12"},{"ip":"10.0.0.13"}]}`, i, i)
	}
	restT(t, "POST", base, doc(99))
	time.Sleep(time.Second)
	var rest, recv, done []time.Duration
	for run := 1; run <= 20; run++ {
		t0 := time.Now()
		restT(t, "POST", base, doc(run))
		rest = append(rest, time.Since(t0))
		time.Sleep(200 * time.Millisecond)
		var maxRecv, maxDone time.Duration
		for _, a := range f.agents {
			data, _ := os.ReadFile(a.logPath)
			for _, l := range strings.Split(string(data), "\n") {
				ts, ok := strings.CutPrefix(l, "time=")
				if !ok || len(ts) < 24 {
					continue
				}
				at, err := time.Parse(time.RFC3339Nano, ts[:24])
				if err != nil || at.Before(t0) || at.After(t0.Add(150*time.Millisecond)) {
					continue
				}
				if strings.Contains(l, "group changes") {
					maxRecv = max(maxRecv, at.Sub(t0))
				}
				if strings.Contains(l, "reconciled") {
					maxDone = max(maxDone, at.Sub(t0))
				}
			}
		}
		recv = append(recv, maxRecv)
		done = append(done, maxDone)
	}
	slices.Sort(rest)
	slices.Sort(recv)
	slices.Sort(done)
	t.Logf("REST p50 %v; last agent received p50 %v p90 %v; last agent reconciled p50 %v p90 %v", rest[10], recv[10], recv[18], done[10], done[18])
}

func restT(t *testing.T, method, url, body string) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

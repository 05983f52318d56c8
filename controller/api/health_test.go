package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
)

// healthStream is an open health watch.
type healthStream struct {
	dec    *json.Decoder
	cancel func()
}

func (e *env) healthWatch(host string) *healthStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/watch/health?host="+host, nil)
	require.NoError(e.t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	require.Equal(e.t, 200, resp.StatusCode)
	require.Equal(e.t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	e.t.Cleanup(func() { cancel(); resp.Body.Close() })
	return &healthStream{dec: json.NewDecoder(resp.Body), cancel: cancel}
}

// next reads lines until one satisfies ok (or 10 s pass).
func (h *healthStream) next(t *testing.T, ok func(wire.HealthLine) bool) wire.HealthLine {
	t.Helper()
	got := make(chan wire.HealthLine)
	go func() {
		for {
			var l wire.HealthLine
			if h.dec.Decode(&l) != nil {
				close(got)
				return
			}
			if ok(l) {
				got <- l
				return
			}
		}
	}()
	select {
	case l, open := <-got:
		require.True(t, open, "the watch ended")
		return l
	case <-time.After(10 * time.Second):
		h.cancel()
		t.Fatal("no such line in 10 s")
	}
	return wire.HealthLine{}
}

// TestHealthFlow: a health-checked group's members are assigned to the
// host their port is on; the host's watch says so, with every member
// unknown; its report brings one up, which every watch sees and the group
// shows; reports about what it does not probe, or from a host not
// registered, change nothing.
func TestHealthFlow(t *testing.T) {
	e := newEnv(t)
	for host, port := range map[string]string{"h1": `{"name":"s1","iface_id":"s1","ips":["10.0.0.11"]}`, "h2": `{"name":"s2","iface_id":"s2","ips":["10.0.0.12"]}`} {
		code, _, body := e.do("PUT", "/v1/hosts/"+host, nil, `{"ports":[`+port+`]}`)
		require.Equal(t, 200, code, string(body))
	}
	code, _, body := e.do("POST", "/v1/groups", nil, `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080}],
		"members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12"}],"health_check":{"type":"tcp","interval":"1s","timeout":"500ms"}}`)
	require.Equal(t, 201, code, string(body))

	w1, w2 := e.healthWatch("h1"), e.healthWatch("h2")
	first := w1.next(t, func(l wire.HealthLine) bool { return len(l.Targets) == 1 })
	tg := first.Targets[0]
	assert.Equal(t, "10.0.0.11", tg.IP)
	assert.Equal(t, "s1", tg.Port)
	assert.Equal(t, "10.96.0.10", tg.Source)
	assert.Equal(t, 8080, tg.Probe.Port)
	assert.Equal(t, 500*time.Millisecond, tg.Probe.Timeout)
	assert.Equal(t, []wire.MemberRef{{Group: "web", Member: "10.0.0.11"}}, tg.Members)
	w2.next(t, func(l wire.HealthLine) bool { return len(l.Targets) == 1 && l.Targets[0].IP == "10.0.0.12" })

	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, bad := range []struct{ host, body, field string }{
		{"h2", fmt.Sprintf(`{"results":[{"target":%q,"state":"up","since":%q}]}`, tg.ID, now.Format(time.RFC3339Nano)), "results[0].target"},
		{"h1", fmt.Sprintf(`{"results":[{"target":%q,"state":"fine","since":%q}]}`, tg.ID, now.Format(time.RFC3339Nano)), "results[0].state"},
		{"h1", fmt.Sprintf(`{"results":[{"target":%q,"state":"up","since":%q}]}`, tg.ID, now.Add(time.Hour).Format(time.RFC3339Nano)), "results[0].since"},
	} {
		code, _, body := e.do("POST", "/v1/hosts/"+bad.host+"/health", nil, bad.body)
		require.Equal(t, 422, code, string(body))
		assert.Contains(t, string(body), bad.field)
	}
	code, _, _ = e.do("POST", "/v1/hosts/h9/health", nil, `{"results":[]}`)
	assert.Equal(t, 404, code)

	code, _, body = e.do("POST", "/v1/hosts/h1/health", nil, fmt.Sprintf(`{"full":true,"results":[{"target":%q,"state":"up","since":%q,"last":{"at":%q,"ok":true,"detail":"syn-ack in 0.2ms"}}]}`,
		tg.ID, now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano)))
	require.Equal(t, 204, code, string(body))
	for _, w := range []*healthStream{w1, w2} {
		w.next(t, func(l wire.HealthLine) bool {
			return len(l.Health) == 1 && l.Health[0] == wire.MemberHealth{Group: "web", Member: "10.0.0.11", State: "up"}
		})
	}

	code, _, body = e.do("GET", "/v1/groups/web", nil, "")
	require.Equal(t, 200, code)
	var g wire.Group
	require.NoError(t, json.Unmarshal(body, &g))
	require.Len(t, g.Health, 2)
	assert.Equal(t, "up", g.Health[0].State)
	assert.Equal(t, "h1", g.Health[0].Prober)
	assert.Equal(t, "syn-ack in 0.2ms", g.Health[0].Last.Detail)
	assert.Equal(t, "unknown", g.Health[1].State)
	assert.Equal(t, "not probed yet", g.Health[1].Reason)
	assert.Zero(t, g.HealthCheck.Rise, "the document keeps what the admin wrote")

	// The health is status: a GET's answer is still a valid PUT body.
	code, _, body = e.do("PUT", "/v1/groups/web", nil, string(body))
	require.Equal(t, 200, code, string(body))

	code, _, body = e.do("GET", "/v1/groups/web/stats", nil, "")
	require.Equal(t, 200, code)
	var st wire.GroupStats
	require.NoError(t, json.Unmarshal(body, &st))
	assert.Len(t, st.Health, 2)
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
)

func (e *env) watch(host string, index uint64, wait string) wire.GroupChanges {
	e.t.Helper()
	code, _, body := e.do("GET", fmt.Sprintf("/v1/watch/groups?host=%s&index=%d&wait=%s", host, index, wait), nil, "")
	require.Equal(e.t, 200, code, "%s", body)
	var c wire.GroupChanges
	require.NoError(e.t, json.Unmarshal(body, &c))
	return c
}

// stream is an open watch stream.
type stream struct {
	t      testing.TB
	resp   *http.Response
	dec    *json.Decoder
	cancel context.CancelFunc
}

// stream opens the watch stream of host from index and checks its answer.
func (e *env) stream(host string, index uint64) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/watch/groups/stream?host=%s&index=%d", e.srv.URL, host, index), nil)
	require.NoError(e.t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	require.Equal(e.t, 200, resp.StatusCode)
	require.Equal(e.t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	s := &stream{t: e.t, resp: resp, dec: json.NewDecoder(resp.Body), cancel: cancel}
	e.t.Cleanup(s.close)
	return s
}

// next reads the stream's next line.
func (s *stream) next() (wire.GroupChanges, error) {
	var c wire.GroupChanges
	err := s.dec.Decode(&c)
	return c, err
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

func names(gs []wire.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

// TestWatch: an agent's watch sends everything for its host first (full),
// then each change alone; groups scoped to other hosts never reach it;
// deletions come as names; an index older than the remembered deletions
// gets everything again. Registrations and heartbeats show in the hosts.
func TestWatch(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"h1", "h2"} {
		code, _, body := e.do("PUT", "/v1/hosts/"+h, nil, `{"version":"test","ports":[{"name":"c1","iface_id":"c1","mac":"02:00:0a:00:00:01","ips":["10.0.0.1"]}]}`)
		require.Equal(t, 200, code, "%s", body)
	}
	code, _, body := e.do("PUT", "/v1/hosts/h3", nil, `{"ports":[{"name":"x","ips":["ten"]}]}`)
	assert.Equal(t, 422, code, "%s", body)
	assert.Contains(t, string(body), "ports[0].ips[0]")

	require.Equal(t, 201, first(e.do("POST", "/v1/groups", nil, webDoc)))
	onlyH2 := `{"name":"h2only","vip":"10.96.0.20","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.21"}],"scope":{"hosts":["h2"]}}`
	require.Equal(t, 201, first(e.do("POST", "/v1/groups", nil, onlyH2)))

	c := e.watch("h1", 0, "1s")
	assert.True(t, c.Full)
	assert.Equal(t, []string{"web"}, names(c.Groups), "h1 gets only the groups for it")
	c2 := e.watch("h2", 0, "1s")
	assert.Equal(t, []string{"h2only", "web"}, names(c2.Groups))

	// A change to one group sends that group only, and wakes the watch.
	woke := make(chan wire.GroupChanges, 1)
	go func() { woke <- e.watch("h1", c.Index, "10s") }()
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, 201, first(e.do("POST", "/v1/groups/web/members", nil, `{"ip":"10.0.0.13"}`)))
	got := <-woke
	assert.False(t, got.Full)
	assert.Equal(t, []string{"web"}, names(got.Groups))
	assert.Len(t, got.Groups[0].Members, 3)

	// A group leaving h1's scope, then a deletion, come as names.
	require.Equal(t, 200, first(e.do("PATCH", "/v1/groups/web", nil, `{"scope":{"hosts":["h2"]}}`)))
	got2 := e.watch("h1", got.Index, "1s")
	assert.Empty(t, got2.Groups)
	assert.Equal(t, []string{"web"}, got2.Deleted)
	require.Equal(t, 204, first(e.do("DELETE", "/v1/groups/h2only", nil, "")))
	got3 := e.watch("h2", got2.Index, "1s")
	assert.Equal(t, []string{"h2only"}, got3.Deleted)

	// Nothing new: the watch waits its wait out and answers the same index.
	start := time.Now()
	same := e.watch("h2", got3.Index, "300ms")
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	assert.Equal(t, got3.Index, same.Index)
	assert.Empty(t, same.Groups)

	// Deletions forgotten: an agent from before them starts over.
	_, err := e.st.View().ReapTombstones(got3.Index)
	require.NoError(t, err)
	old := e.watch("h2", got.Index, "1s")
	assert.True(t, old.Full)
	assert.Equal(t, []string{"web"}, names(old.Groups))

	// Heartbeats and applied indexes.
	code, _, body = e.do("POST", "/v1/hosts/h2/heartbeat", nil, fmt.Sprintf(`{"applied_index":%d}`, got3.Index))
	require.Equal(t, 204, code, "%s", body)
	code, _, _ = e.do("POST", "/v1/hosts/nope/heartbeat", nil, `{"applied_index":1}`)
	assert.Equal(t, 404, code)
	code, _, body = e.do("GET", "/v1/hosts/h2", nil, "")
	require.Equal(t, 200, code)
	var h wire.Host
	require.NoError(t, json.Unmarshal(body, &h))
	assert.True(t, h.Connected)
	assert.Equal(t, got3.Index, h.AppliedIndex)
	require.Len(t, h.Ports, 1)
	assert.Equal(t, wire.HostPort{Name: "c1", IfaceID: "c1", MAC: "02:00:0a:00:00:01", IPs: []string{"10.0.0.1"}}, h.Ports[0])
	code, _, body = e.do("GET", "/v1/groups/web", nil, "")
	require.Equal(t, 200, code)
	var g wire.Group
	require.NoError(t, json.Unmarshal(body, &g))
	assert.Equal(t, &wire.Applied{Hosts: 1, Applied: 1}, g.Applied, "web is for h2 only now, which applied it")

	// The same registration again writes nothing.
	idx := e.st.View().Index()
	code, _, _ = e.do("PUT", "/v1/hosts/h1", nil, `{"version":"test","ports":[{"name":"c1","iface_id":"c1","mac":"02:00:0a:00:00:01","ips":["10.0.0.1"]}]}`)
	require.Equal(t, 200, code)
	assert.Equal(t, idx, e.st.View().Index())
	code, _, body = e.do("GET", "/v1/hosts", nil, "")
	require.Equal(t, 200, code)
	assert.True(t, strings.Contains(string(body), `"name":"h1"`) && strings.Contains(string(body), `"name":"h2"`), "%s", body)
}

func first(code int, _ ...any) int { return code }

// TestWatchStream: the stream's first line comes at once (everything from
// index 0, nothing from a current index), then a line per change: a
// changed group alone, a group for another host and a deleted one as
// names; an idle stream sends keep-alive lines; EndWatches ends streams.
func TestWatchStream(t *testing.T) {
	e := newEnvWith(t, Options{KeepAlive: 200 * time.Millisecond})
	code, _, body := e.do("PUT", "/v1/hosts/h1", nil, `{"version":"test","ports":[]}`)
	require.Equal(t, 200, code, "%s", body)
	require.Equal(t, 201, first(e.do("POST", "/v1/groups", nil, webDoc)))

	s := e.stream("h1", 0)
	c, err := s.next()
	require.NoError(t, err)
	assert.True(t, c.Full)
	assert.Equal(t, []string{"web"}, names(c.Groups))

	start := time.Now()
	require.Equal(t, 200, first(e.do("PATCH", "/v1/groups/web/members/10.0.0.11", nil, `{"weight":7}`)))
	c2, err := s.next()
	require.NoError(t, err)
	assert.Less(t, time.Since(start), time.Second)
	assert.False(t, c2.Full)
	assert.Greater(t, c2.Index, c.Index)
	require.Equal(t, []string{"web"}, names(c2.Groups))
	require.NotNil(t, c2.Groups[0].Members[0].Weight)
	assert.Equal(t, 7, *c2.Groups[0].Members[0].Weight)

	onlyH2 := `{"name":"h2only","vip":"10.96.0.20","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.21"}],"scope":{"hosts":["h2"]}}`
	require.Equal(t, 201, first(e.do("POST", "/v1/groups", nil, onlyH2)))
	c3, err := s.next()
	require.NoError(t, err)
	assert.Empty(t, c3.Groups, "a group for another host is not sent")
	assert.Equal(t, []string{"h2only"}, c3.Deleted)
	require.Equal(t, 204, first(e.do("DELETE", "/v1/groups/web", nil, "")))
	c4, err := s.next()
	require.NoError(t, err)
	assert.Equal(t, []string{"web"}, c4.Deleted)

	// Quiet: keep-alive lines, at the same index.
	start = time.Now()
	c5, err := s.next()
	require.NoError(t, err)
	assert.Equal(t, c4.Index, c5.Index)
	assert.Empty(t, c5.Groups)
	assert.Empty(t, c5.Deleted)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)

	// Resumed from a current index: the first line at once, with nothing.
	r := e.stream("h1", c4.Index)
	start = time.Now()
	c6, err := r.next()
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 150*time.Millisecond)
	assert.Equal(t, c4.Index, c6.Index)
	assert.False(t, c6.Full)

	e.api.EndWatches()
	for _, st := range []*stream{s, r} {
		for {
			if _, err := st.next(); err != nil {
				break // EOF: the stream ended
			}
		}
	}
}

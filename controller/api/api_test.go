package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/controller/store"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/ovsdb/server"
	"github.com/ovs-dlb/dlb/testbed"
)

// env is an API on a store on a real ovsdb-server.
type env struct {
	t   testing.TB
	srv *httptest.Server
	st  *store.Store
	api *Server
}

func newEnv(t testing.TB) *env { return newEnvWith(t, Options{}) }

// newEnvWith is newEnv with options (the store and registry are set here).
func newEnvWith(t testing.TB, opts Options) *env {
	t.Helper()
	testbed.Require(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db, err := server.New(server.Options{Dir: t.TempDir(), Schema: dlbdb.SchemaFile})
	require.NoError(t, err)
	require.NoError(t, db.Start(ctx))
	t.Cleanup(func() { cancel(); <-db.Done() })
	st, err := store.Open(ctx, store.Options{Endpoints: []string{db.Endpoint()}})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	opts.Store, opts.Registry, opts.MaxBodyBytes = st, reg, 64<<10
	a := New(opts)
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	return &env{t: t, srv: hs, st: st, api: a}
}

// do sends a request and returns the status, headers and body.
func (e *env) do(method, path string, header map[string]string, body string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, resp.Header, data
}

// dump is the store's content as the API lists it, and its index.
func (e *env) dump() string {
	e.t.Helper()
	code, _, body := e.do("GET", "/v1/groups", nil, "")
	require.Equal(e.t, 200, code)
	return string(body)
}

const webDoc = `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080}],
 "members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12","weight":50}]}`

// TestBadRequests: every bad request is a 4xx with a JSON error naming
// the field at fault, and the store is unchanged after all of them.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.do("POST", "/v1/groups", nil, webDoc)
	require.Equal(t, 201, code, "%s", body)
	code, _, body = e.do("POST", "/v1/groups", nil, `{"name":"v6","vip":"fd00::10","ports":[{"protocol":"udp","port":53}],"members":[{"ip":"fd00::11"},{"ip":"fd00::11","port":5353}]}`)
	require.Equal(t, 201, code, "%s", body)
	before := e.dump()

	huge := `{"name":"big","vip":"10.96.0.99","ports":[{"protocol":"tcp","port":80}],"members":[` +
		strings.Repeat(`{"ip":"10.0.0.1"},`, 5000) + `{"ip":"10.0.0.2"}]}`
	group := func(mod string) string { // webDoc's twin "api" on another VIP, with one change
		return strings.Replace(`{"name":"api","vip":"10.96.0.20","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.21"}]}`, `"members"`, mod+`"members"`, 1)
	}
	cases := []struct {
		name, method, path string
		header             map[string]string
		body               string
		status             int
		field              string // a field the error must name ("" for none)
	}{
		{"malformed JSON", "POST", "/v1/groups", nil, `{"name":"api",`, 400, "body"},
		{"not an object", "POST", "/v1/groups", nil, `[1,2]`, 422, "body"},
		{"empty body", "POST", "/v1/groups", nil, ``, 400, "body"},
		{"trailing garbage", "POST", "/v1/groups", nil, group("") + `}`, 400, "body"},
		{"unknown field", "POST", "/v1/groups", nil, group(`"colour":"red",`), 422, "colour"},
		{"unknown member field", "POST", "/v1/groups", nil, strings.Replace(group(""), `"ip":"10.0.0.21"`, `"ip":"10.0.0.21","wieght":3`, 1), 422, "members[0].wieght"},
		{"port as string", "POST", "/v1/groups", nil, strings.Replace(group(""), `"port":80`, `"port":"80"`, 1), 422, "ports[0].port"},
		{"name as number", "POST", "/v1/groups", nil, strings.Replace(group(""), `"name":"api"`, `"name":7`, 1), 422, "name"},
		{"members not a list", "POST", "/v1/groups", nil, `{"name":"api","vip":"10.96.0.20","ports":[{"protocol":"tcp","port":80}],"members":{"ip":"10.0.0.21"}}`, 422, "members"},
		{"missing name", "POST", "/v1/groups", nil, strings.Replace(group(""), `"name":"api",`, ``, 1), 422, "name"},
		{"bad name", "POST", "/v1/groups", nil, strings.Replace(group(""), `"name":"api"`, `"name":"-x y"`, 1), 422, "name"},
		{"long name", "POST", "/v1/groups", nil, strings.Replace(group(""), `"name":"api"`, `"name":"`+strings.Repeat("a", 64)+`"`, 1), 422, "name"},
		{"bad VIP", "POST", "/v1/groups", nil, strings.Replace(group(""), `10.96.0.20`, `10.96.0.300`, 1), 422, "vip"},
		{"loopback VIP", "POST", "/v1/groups", nil, strings.Replace(group(""), `10.96.0.20`, `127.0.0.1`, 1), 422, "vip"},
		{"bad member IP", "POST", "/v1/groups", nil, strings.Replace(group(""), `10.0.0.21`, `10.0.0`, 1), 422, "members[0].ip"},
		{"member of another IP version", "POST", "/v1/groups", nil, strings.Replace(group(""), `10.0.0.21`, `fd00::21`, 1), 422, "members[0].ip"},
		{"duplicate member", "POST", "/v1/groups", nil, strings.Replace(group(""), `{"ip":"10.0.0.21"}`, `{"ip":"10.0.0.21"},{"ip":"10.0.0.21"}`, 1), 422, "members[1]"},
		{"weight 0", "POST", "/v1/groups", nil, strings.Replace(group(""), `"ip":"10.0.0.21"`, `"ip":"10.0.0.21","weight":0`, 1), 422, "members[0].weight"},
		{"weight too big", "POST", "/v1/groups", nil, strings.Replace(group(""), `"ip":"10.0.0.21"`, `"ip":"10.0.0.21","weight":70000`, 1), 422, "members[0].weight"},
		{"bad state", "POST", "/v1/groups", nil, strings.Replace(group(""), `"ip":"10.0.0.21"`, `"ip":"10.0.0.21","state":"asleep"`, 1), 422, "members[0].state"},
		{"port 0", "POST", "/v1/groups", nil, strings.Replace(group(""), `"port":80`, `"port":0`, 1), 422, "ports[0].port"},
		{"bad protocol", "POST", "/v1/groups", nil, strings.Replace(group(""), `"tcp"`, `"icmp"`, 1), 422, "ports[0].protocol"},
		{"no ports", "POST", "/v1/groups", nil, strings.Replace(group(""), `[{"protocol":"tcp","port":80}]`, `[]`, 1), 422, "ports"},
		{"bad mode", "POST", "/v1/groups", nil, group(`"mode":"nat",`), 422, "mode"},
		{"affinity out of range", "POST", "/v1/groups", nil, group(`"affinity":{"client_ip_timeout_s":100000},`), 422, "affinity.client_ip_timeout_s"},
		{"duplicate VIP and port", "POST", "/v1/groups", nil, strings.Replace(group(""), `10.96.0.20`, `10.96.0.10`, 1), 422, "ports[0]"},
		{"name exists", "POST", "/v1/groups", nil, strings.Replace(webDoc, `10.96.0.10`, `10.96.0.30`, 1), 409, ""},
		{"huge body", "POST", "/v1/groups", nil, huge, 413, "body"},
		{"PUT name differs from path", "PUT", "/v1/groups/other", nil, group(""), 422, "name"},
		{"conflicting If-Match", "PUT", "/v1/groups/web", map[string]string{"If-Match": `"999"`}, webDoc, 409, ""},
		{"bad If-Match", "PUT", "/v1/groups/web", map[string]string{"If-Match": `"yesterday"`}, webDoc, 400, "header.If-Match"},
		{"stale modify_index in body", "PUT", "/v1/groups/web", nil, strings.Replace(webDoc, `"name"`, `"modify_index":999,"name"`, 1), 409, ""},
		{"patch: rename", "PATCH", "/v1/groups/web", nil, `{"name":"www"}`, 422, "name"},
		{"patch: wrong type", "PATCH", "/v1/groups/web", nil, `{"ports":"80"}`, 422, "ports"},
		{"patch: unknown field", "PATCH", "/v1/groups/web", nil, `{"colour":"red"}`, 422, "colour"},
		{"patch: conflicting If-Match", "PATCH", "/v1/groups/web", map[string]string{"If-Match": `"999"`}, `{"mode":"dsr"}`, 409, ""},
		{"patch: missing group", "PATCH", "/v1/groups/nope", nil, `{"mode":"dsr"}`, 404, ""},
		{"delete: conflicting If-Match", "DELETE", "/v1/groups/web", map[string]string{"If-Match": `"999"`}, "", 409, ""},
		{"delete: missing group", "DELETE", "/v1/groups/nope", nil, "", 404, ""},
		{"get: missing group", "GET", "/v1/groups/nope", nil, "", 404, ""},
		{"blocking: bad wait", "GET", "/v1/groups?index=1&wait=soon", nil, "", 400, "query.wait"},
		{"blocking: bad index", "GET", "/v1/groups?index=-1", nil, "", 422, "query.index"},
		{"member: add existing", "POST", "/v1/groups/web/members", nil, `{"ip":"10.0.0.11"}`, 409, ""},
		{"member: add bad IP", "POST", "/v1/groups/web/members", nil, `{"ip":"ten"}`, 422, "ip"},
		{"member: add weight 0", "POST", "/v1/groups/web/members", nil, `{"ip":"10.0.0.19","weight":0}`, 422, "weight"},
		{"member: add unknown field", "POST", "/v1/groups/web/members", nil, `{"ip":"10.0.0.19","colour":"red"}`, 422, "colour"},
		{"member: add to missing group", "POST", "/v1/groups/nope/members", nil, `{"ip":"10.0.0.19"}`, 404, ""},
		{"member: bad state", "PATCH", "/v1/groups/web/members/10.0.0.11", nil, `{"state":"drainin"}`, 422, "state"},
		{"member: weight as string", "PATCH", "/v1/groups/web/members/10.0.0.11", nil, `{"weight":"5"}`, 422, "weight"},
		{"member: nothing to change", "PATCH", "/v1/groups/web/members/10.0.0.11", nil, `{}`, 422, "body"},
		{"member: not a member", "PATCH", "/v1/groups/web/members/10.0.0.99", nil, `{"weight":5}`, 404, "path.member"},
		{"member: bad address", "PATCH", "/v1/groups/web/members/10.0.0.999", nil, `{"weight":5}`, 400, "path.member"},
		{"member: ambiguous", "PATCH", "/v1/groups/v6/members/fd00::11", nil, `{"weight":5}`, 422, "path.member"},
		{"member: remove missing", "DELETE", "/v1/groups/web/members/10.0.0.99", nil, "", 404, "path.member"},
		{"member: conflicting If-Match", "DELETE", "/v1/groups/web/members/10.0.0.11", map[string]string{"If-Match": "999"}, "", 409, ""},
	}
	require.GreaterOrEqual(t, len(cases), 30)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, body := e.do(c.method, c.path, c.header, c.body)
			assert.Equal(t, c.status, code, "%s", body)
			assert.Equal(t, "application/json", hdr.Get("Content-Type"))
			var got Error
			require.NoError(t, json.Unmarshal(body, &got), "%s", body)
			assert.NotEmpty(t, got.Message)
			if c.field != "" {
				var paths []string
				for _, f := range got.Fields {
					paths = append(paths, f.Path)
					assert.NotEmpty(t, f.Message)
				}
				assert.Contains(t, paths, c.field, "%s", body)
			}
		})
	}
	assert.Equal(t, before, e.dump(), "no bad request changed the store")
}

// TestRoundTrip: create, get, list, patch (merge patch and member calls),
// replace with If-Match, delete; ETags and indexes move as they should.
func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	code, hdr, body := e.do("POST", "/v1/groups", nil, webDoc)
	require.Equal(t, 201, code, "%s", body)
	assert.Equal(t, `"2"`, hdr.Get("ETag"), "the store's first write is index 2")
	var g Group
	require.NoError(t, json.Unmarshal(body, &g))
	assert.Equal(t, uint64(2), g.ModifyIndex)

	code, _, body = e.do("PATCH", "/v1/groups/web/members/10.0.0.12", map[string]string{"If-Match": `"2"`}, `{"state":"draining","weight":7}`)
	require.Equal(t, 200, code, "%s", body)
	require.NoError(t, json.Unmarshal(body, &g))
	assert.Equal(t, "draining", g.Members[1].State)
	assert.Equal(t, 7, *g.Members[1].Weight)

	code, _, body = e.do("POST", "/v1/groups/web/members", nil, `{"ip":"10.0.0.13","port":8443}`)
	require.Equal(t, 201, code, "%s", body)
	code, _, body = e.do("PATCH", "/v1/groups/web", map[string]string{"Content-Type": "application/merge-patch+json"}, `{"affinity":{"client_ip_timeout_s":60},"mode":null}`)
	require.Equal(t, 200, code, "%s", body)
	require.NoError(t, json.Unmarshal(body, &g))
	assert.Equal(t, 60, g.Affinity.ClientIPTimeoutS)
	assert.Len(t, g.Members, 3)
	assert.Equal(t, uint64(5), g.ModifyIndex)

	// A GET's output is a valid PUT input, its modify_index the condition.
	code, _, body = e.do("GET", "/v1/groups/web", nil, "")
	require.Equal(t, 200, code)
	code, _, body2 := e.do("PUT", "/v1/groups/web", nil, string(body))
	require.Equal(t, 200, code, "%s", body2)
	code, _, body2 = e.do("PUT", "/v1/groups/web", nil, string(body))
	require.Equal(t, 409, code, "the same document again is stale now: %s", body2)

	code, _, body = e.do("DELETE", "/v1/groups/web/members/10.0.0.13:8443", nil, "")
	require.Equal(t, 200, code, "%s", body)
	require.NoError(t, json.Unmarshal(body, &g))
	assert.Len(t, g.Members, 2)
	code, _, _ = e.do("DELETE", "/v1/groups/web", nil, "")
	require.Equal(t, 204, code)
	code, _, _ = e.do("GET", "/v1/groups/web", nil, "")
	require.Equal(t, 404, code)
	assert.JSONEq(t, `{"index":8,"groups":[]}`, e.dump())

	code, _, body = e.do("GET", "/metrics", nil, "")
	require.Equal(t, 200, code)
	assert.Contains(t, string(body), `dlb_controller_http_requests_total{code="201",route="create-group"} 1`)
	assert.Contains(t, string(body), `dlb_controller_rows{table="Group"} 0`)
	code, _, _ = e.do("GET", "/readyz", nil, "")
	assert.Equal(t, 200, code)
}

// TestProtocolCase: a protocol in any case ("TCP", "tCp") is valid, and
// stored as the schema spells it (FuzzHandlers found "tCp" answered 503:
// validation took it, ovsdb-server's enum refused it).
func TestProtocolCase(t *testing.T) {
	e := newEnv(t)
	for i, p := range []string{"TCP", "tCp", "Udp"} {
		doc := fmt.Sprintf(`{"name":"g%d","vip":"10.96.0.%d","ports":[{"protocol":%q,"port":80}],"members":[{"ip":"10.0.0.1"}]}`, i, i+1, p)
		code, _, body := e.do("POST", "/v1/groups", nil, doc)
		require.Equal(t, 201, code, "%s: %s", p, body)
		var g Group
		require.NoError(t, json.Unmarshal(body, &g))
		assert.Equal(t, strings.ToLower(p), g.Ports[0].Protocol)
	}
	code, _, body := e.do("PATCH", "/v1/groups/g0", map[string]string{"Content-Type": "application/merge-patch+json"}, `{"ports":[{"protocol":"SCTP","port":9}]}`)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), `"protocol":"sctp"`)
}

// TestBlockingReadWakes: a read blocked at the current index answers
// within 50 ms of a change (of the write's answer), and a read at an old
// index answers at once.
func TestBlockingReadWakes(t *testing.T) {
	e := newEnv(t)
	var worst time.Duration
	for i := 0; i < 20; i++ {
		code, hdr, _ := e.do("GET", "/v1/groups", nil, "")
		require.Equal(t, 200, code)
		idx := hdr.Get("X-Dlb-Index")
		woke := make(chan time.Time, 1)
		go func() {
			code, _, body := e.do("GET", "/v1/groups?index="+idx+"&wait=30s", nil, "")
			assert.Equal(t, 200, code, "%s", body)
			woke <- time.Now()
		}()
		time.Sleep(30 * time.Millisecond) // the reader is blocked
		doc := strings.Replace(strings.Replace(webDoc, `"web"`, fmt.Sprintf(`"g%d"`, i), 1), "10.96.0.10", fmt.Sprintf("10.96.1.%d", i+1), 1)
		code, _, body := e.do("POST", "/v1/groups", nil, doc)
		require.Equal(t, 201, code, "%s", body)
		acked := time.Now()
		select {
		case at := <-woke:
			worst = max(worst, at.Sub(acked))
		case <-time.After(5 * time.Second):
			t.Fatalf("blocked read at index %s did not wake", idx)
		}
	}
	t.Logf("worst wake after the write's answer: %v", worst)
	assert.LessOrEqual(t, worst, 50*time.Millisecond)

	start := time.Now()
	code, _, _ := e.do("GET", "/v1/groups?index=1&wait=30s", nil, "")
	require.Equal(t, 200, code)
	assert.Less(t, time.Since(start), time.Second, "an old index answers at once")
	start = time.Now()
	code, _, _ = e.do("GET", "/v1/groups?index=9999&wait=200ms", nil, "")
	require.Equal(t, 200, code)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "nothing new: it waits its wait out")
}

// TestOpenAPICoversEveryRoute: /openapi.json is OpenAPI 3 and lists every
// route the server serves, and nothing else.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.do("GET", "/openapi.json", nil, "")
	require.Equal(t, 200, code)
	var spec struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(body, &spec))
	assert.True(t, strings.HasPrefix(spec.OpenAPI, "3."), spec.OpenAPI)
	var inSpec []string
	for path, ops := range spec.Paths {
		for method := range ops {
			inSpec = append(inSpec, strings.ToUpper(method)+" "+path)
		}
	}
	served := e.api.Routes()
	sort.Strings(inSpec)
	sort.Strings(served)
	assert.Equal(t, served, inSpec)
	for _, r := range served {
		method, path, _ := strings.Cut(r, " ")
		path = strings.NewReplacer("{name}", "web", "{member}", "10.0.0.11").Replace(path)
		if path == "/v1/watch/groups" {
			path += "?host=h1&wait=10ms"
		}
		if path == "/v1/watch/health" {
			e.healthWatch("h1").next(t, func(wire.HealthLine) bool { return true })
			continue
		}
		if path == "/v1/watch/groups/stream" {
			st := e.stream("h1", 0)
			_, err := st.next()
			assert.NoError(t, err, r)
			st.close()
			continue
		}
		code, _, _ := e.do(method, path, nil, "")
		assert.NotEqual(t, http.StatusMethodNotAllowed, code, r)
		if method == "GET" && !strings.Contains(path, "web") {
			assert.Equal(t, 200, code, r)
		}
	}
	assert.GreaterOrEqual(t, len(served), 12)
}

func TestErrorShape(t *testing.T) {
	err := newError(422, "validation failed", nil)
	data, _ := json.Marshal(err)
	assert.JSONEq(t, `{"error":"validation failed"}`, string(data))
	assert.True(t, bytes.Contains(data, []byte("error")))
}

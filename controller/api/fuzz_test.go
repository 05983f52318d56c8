package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// fuzzRoutes are the writes and reads a fuzzed request goes to; {p} is
// the fuzzed path segment.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/groups"},
	{"PUT", "/v1/groups/{p}"},
	{"PATCH", "/v1/groups/{p}"},
	{"DELETE", "/v1/groups/{p}"},
	{"GET", "/v1/groups/{p}"},
	{"POST", "/v1/groups/web/members"},
	{"PATCH", "/v1/groups/web/members/{p}"},
	{"DELETE", "/v1/groups/web/members/{p}"},
	{"GET", "/v1/groups?index=1&wait={p}"},
	{"GET", "/v1/watch/groups?host={p}&index=1&wait=1ms"},
	{"PUT", "/v1/hosts/{p}"},
	{"POST", "/v1/hosts/{p}/heartbeat"},
}

// FuzzHandlers sends arbitrary group documents, patches, member documents
// and path segments through the whole API on a real store: the server
// never panics, never answers 5xx to input, and always answers JSON.
// `make test` runs it for a short time.
func FuzzHandlers(f *testing.F) {
	e := newEnv(f)
	if code, _, body := e.do("POST", "/v1/groups", nil, webDoc); code != 201 {
		f.Fatalf("seed group: %d %s", code, body)
	}
	seeds := []struct {
		route uint8
		seg   string
		body  string
	}{
		{0, "", webDoc},
		{0, "", `{"name":"api","vip":"fd00::20","ports":[{"protocol":"sctp","port":9}],"members":[{"ip":"fd00::1","port":7,"weight":3,"state":"draining","mac":"02:00:00:00:00:01"}],"affinity":{"client_ip_timeout_s":5},"mode":"dsr","scope":{"iface_ids":["a"],"labels":{"k":"v"},"hosts":["h1"]}}`},
		{1, "web", webDoc},
		{2, "web", `{"members":[{"ip":"10.0.0.9"}],"mode":null}`},
		{2, "web", `{"modify_index":1.5}`},
		{3, "web", ``},
		{4, "x y", ``},
		{5, "", `{"ip":"10.0.0.14","weight":65535}`},
		{6, "10.0.0.11", `{"weight":1,"state":"disabled"}`},
		{6, "[fd00::1]:80", `{"state":"x"}`},
		{7, "10.0.0.12:0", ``},
		{8, "1h", ``},
		{9, "h1", ``},
		{10, "h1", `{"version":"1","ports":[{"name":"c1","iface_id":"c1","mac":"02:00:00:00:00:01","ips":["10.0.0.1"]}]}`},
		{11, "h1", `{"applied_index":3}`},
	}
	for _, s := range seeds {
		f.Add(s.route, s.seg, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, seg string, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := bytes.ReplaceAll([]byte(r.path), []byte("{p}"), []byte(url.PathEscape(seg)))
		if r.method == "GET" && bytes.Contains(path, []byte("?")) {
			path = bytes.ReplaceAll([]byte(r.path), []byte("{p}"), []byte(url.QueryEscape(seg)))
		}
		req := httptest.NewRequest(r.method, "http://dlb"+string(path), bytes.NewReader(body))
		if r.method == "GET" {
			// A blocking read may wait: keep it short.
			q := req.URL.Query()
			if q.Has("wait") {
				q.Set("wait", "1ms")
				req.URL.RawQuery = q.Encode()
			}
		}
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, req) // a panic fails the fuzz
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, path, body, w.Code, w.Body.Bytes())
		}
		redirect := w.Code >= 300 && w.Code < 400 // the mux cleans paths ("/v1/groups/.")
		if w.Code != http.StatusNoContent && !redirect && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: %d, not JSON: %q", r.method, path, w.Code, w.Body.Bytes())
		}
	})
}

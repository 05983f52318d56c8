package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/testbed"
)

// cliResult is what one dlbctl run did.
type cliResult struct {
	code   int
	stdout string
	stderr string
}

// runCLI runs dlbctl in-process, as main does.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// reply is a canned answer of the fake API.
type reply struct {
	status int
	body   string
	// contentType defaults to application/json.
	contentType string
	delay       time.Duration
}

// seen is a request the fake API received.
type seen struct {
	method      string
	path        string // escaped, as sent
	ifMatch     string
	contentType string
	body        string
}

// fakeAPI answers "METHOD /escaped/path" with canned replies and records
// every request.
type fakeAPI struct {
	srv     *httptest.Server
	replies map[string]reply
	mu      sync.Mutex
	reqs    []seen
}

func newFakeAPI(t *testing.T, replies map[string]reply) *fakeAPI {
	f := &fakeAPI{replies: replies}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Method + " " + r.URL.EscapedPath()
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{method: r.Method, path: r.URL.EscapedPath(), ifMatch: r.Header.Get("If-Match"),
			contentType: r.Header.Get("Content-Type"), body: string(body)})
		f.mu.Unlock()
		rep, ok := f.replies[key]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTeapot)
			fmt.Fprintf(w, `{"error":"fake API: no reply for %s"}`, key)
			return
		}
		if rep.delay > 0 {
			select {
			case <-time.After(rep.delay):
			case <-r.Context().Done():
				return
			}
		}
		ct := rep.contentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		if rep.status == 0 {
			rep.status = http.StatusOK
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// want is a request a command must send.
type want struct {
	method      string
	path        string
	ifMatch     string
	contentType string
	// body, when set, is compared as JSON.
	body string
}

const webYAML = `name: web
vip: 10.96.0.10
ports:
  - {protocol: tcp, port: 80, target_port: 8080}
members:
  - {ip: 10.0.0.11}
  - {ip: 10.0.0.12}
`

const webBody = `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080}],"members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12"}]}`

// webHealthStatsJSON is the stats of webHealthJSON's group.
const webHealthStatsJSON = `{"group":"web","stale_hosts":[],"members":[` +
	`{"port":"tcp/80","member":"10.0.0.11","active_connections":3,"new_connections":20,"new_connections_per_second":1,"bytes_to_member_per_second":0,"bytes_from_member_per_second":0,"hosts":[]},` +
	`{"port":"tcp/80","member":"10.0.0.12","active_connections":0,"new_connections":0,"new_connections_per_second":0,"bytes_to_member_per_second":0,"bytes_from_member_per_second":0,"hosts":[]},` +
	`{"port":"tcp/80","member":"10.0.0.13:9090","active_connections":0,"new_connections":20,"new_connections_per_second":1,"bytes_to_member_per_second":0,"bytes_from_member_per_second":0,"hosts":[]},` +
	`{"port":"tcp/80","member":"10.0.0.14","active_connections":0,"new_connections":0,"new_connections_per_second":0,"bytes_to_member_per_second":0,"bytes_from_member_per_second":0,"hosts":[]}],` +
	`"health":` + webHealthListJSON + `}`

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	webFile := write("web.yaml", webYAML)
	twoFile := write("two.yaml", `groups:
  - {name: a, vip: 10.96.0.1, ports: [{protocol: tcp, port: 80}]}
  - {name: b, vip: 10.96.0.2, ports: [{protocol: tcp, port: 80}]}
`)
	badFile := write("bad.yaml", `groups:
  - {name: a, vip: 10.96.0.1, ports: [{protocol: tcp, port: 80}]}
  - {name: b, vip: 10.96.0.300, ports: [{protocol: tcp, port: 0}]}
`)
	typoFile := write("typo.yaml", "name: web\nvip: 10.96.0.10\nport: [{protocol: tcp, port: 80}]\n")
	jsonFile := write("web.json", "{\n\t\"name\": \"web\", \"vip\": \"10.96.0.10\",\n\t\"ports\": [{\"protocol\": \"tcp\", \"port\": 80, \"target_port\": 8080}],\n\t\"members\": [{\"ip\": \"10.0.0.11\"}, {\"ip\": \"10.0.0.12\"}]\n}\n")
	// As "group get web -o yaml" writes it, at modify index 3; then edited.
	webGot := string(must(jsonToYAML([]byte(webJSON))))
	staleFile := write("stale.yaml", strings.NewReplacer("weight: 50", "weight: 60", "modify_index: 7", "modify_index: 3").Replace(webGot))
	sameFile := write("same.yaml", webGot)
	renamed := write("renamed.yaml", strings.Replace(webYAML, "name: web", "name: www", 1))

	aJSON := `{"name":"a","vip":"10.96.0.1","ports":[{"protocol":"tcp","port":80}],"members":[],"create_index":1,"modify_index":1}`
	bJSON := `{"name":"b","vip":"10.96.0.2","ports":[{"protocol":"tcp","port":80}],"members":[],"create_index":2,"modify_index":2}`

	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		replies map[string]reply
		code    int
		stdout  []string
		// exact, when set, is the whole stdout.
		exact  *string
		stderr []string
		// reqs, when not nil, are all the requests sent.
		reqs []want
	}{
		{
			name:    "group create from a YAML file",
			args:    []string{"group", "create", "-f", webFile},
			replies: map[string]reply{"POST /v1/groups": {status: 201, body: webJSON}},
			stdout:  []string{"NAME", "web   10.96.0.10  tcp/80→8080,udp/53  1/2      dnat  7"},
			reqs:    []want{{method: "POST", path: "/v1/groups", contentType: "application/json", body: webBody}},
		},
		{
			name:    "group create from JSON on stdin, printed as JSON",
			args:    []string{"group", "create", "-f", "-", "-o", "json"},
			stdin:   string(must(os.ReadFile(jsonFile))),
			replies: map[string]reply{"POST /v1/groups": {status: 201, body: webJSON}},
			stdout:  []string{"{\n  \"name\": \"web\",\n", "\"modify_index\": 7\n}\n"},
			reqs:    []want{{method: "POST", path: "/v1/groups", body: webBody}},
		},
		{
			name: "group create of a groups: list creates each",
			args: []string{"group", "create", "-f", twoFile, "-o", "json"},
			replies: map[string]reply{
				"POST /v1/groups": {status: 201, body: aJSON},
			},
			stdout: []string{"{\n  \"groups\": [\n    {\n      \"name\": \"a\""},
			reqs: []want{
				{method: "POST", path: "/v1/groups", body: `{"name":"a","vip":"10.96.0.1","ports":[{"protocol":"tcp","port":80}],"members":null}`},
				{method: "POST", path: "/v1/groups", body: `{"name":"b","vip":"10.96.0.2","ports":[{"protocol":"tcp","port":80}],"members":null}`},
			},
		},
		{
			name:    "group create reports a name in use",
			args:    []string{"group", "create", "-f", webFile},
			replies: map[string]reply{"POST /v1/groups": {status: 409, body: `{"error":"group \"web\" exists"}`}},
			code:    1,
			stderr:  []string{`Error: create group "web": group "web" exists`},
			reqs:    []want{{method: "POST", path: "/v1/groups"}},
		},
		{
			name:   "group create checks the whole file before sending anything",
			args:   []string{"group", "create", "-f", badFile},
			code:   1,
			stderr: []string{"Error: " + badFile + ": invalid\n", "  groups[1].vip: \"10.96.0.300\" is not an IP address\n", "  groups[1].ports[0].port: 0 is not a port (1..65535)\n"},
			reqs:   []want{},
		},
		{
			name:   "group create refuses unknown keys",
			args:   []string{"group", "create", "-f", typoFile},
			code:   1,
			stderr: []string{"field port not found"},
			reqs:   []want{},
		},
		{
			name:   "group create needs -f",
			args:   []string{"group", "create"},
			code:   1,
			stderr: []string{`required flag(s) "file" not set`},
			reqs:   []want{},
		},
		{
			name:    "group get lists",
			args:    []string{"group", "get"},
			replies: map[string]reply{"GET /v1/groups": {body: `{"index":9,"groups":[` + webBalancedJSON + `,` + bJSON + `]}`}},
			exact: ptr("" +
				"NAME  VIP         PORTS               MEMBERS  MODE  INDEX  BALANCE\n" +
				"web   10.96.0.10  tcp/80→8080,udp/53  1/2      dnat  7      within, exact\n" +
				"b     10.96.0.2   tcp/80              0/0      dnat  2      -\n"),
			reqs: []want{{method: "GET", path: "/v1/groups"}},
		},
		{
			name:    "group get says when there is none",
			args:    []string{"group", "get"},
			replies: map[string]reply{"GET /v1/groups": {body: `{"index":0,"groups":[]}`}},
			exact:   ptr(""),
			stderr:  []string{"No groups."},
		},
		{
			name:    "group get NAME shows the group and its members",
			args:    []string{"group", "get", "web"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webJSON}},
			stdout:  []string{"Name:       web\n", "IP         PORT  WEIGHT  STATE\n10.0.0.11  -     100     active\n10.0.0.12  9090  50      draining\n"},
		},
		{
			name:    "group get NAME shows the balance",
			args:    []string{"group", "get", "web"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webBalancedJSON}},
			stdout:  []string{"Index:      created 3, modified 7\nBalance:    16 slots, every share exact, within the bound\n\n"},
		},
		{
			name:    "group get NAME -o json carries the balance",
			args:    []string{"-o", "json", "group", "get", "web"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webBalancedJSON}},
			stdout:  []string{"  \"balance\": {\n    \"slots\": 16,\n    \"active_members\": 1,\n", "    \"within_bound\": true\n  },\n"},
		},
		{
			name:    "group get NAME -o yaml",
			args:    []string{"-o", "yaml", "group", "get", "web"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webJSON}},
			stdout:  []string{"name: web\nvip: 10.96.0.10\n", "modify_index: 7\n"},
		},
		{
			name:    "group get NAME of a health-checked group shows the check and each member's health",
			args:    []string{"group", "get", "web"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webHealthJSON}},
			stdout: []string{
				"Scope:         every VM port\nHealth check:  http to each member's target port (GET /healthz, expect 200-399), every 2s (1s while in question), timeout 1s, rise 2, fall 3\n",
				"Members:       3/4 active\nHealth:        1 up, 1 down, 1 held, 1 unknown\n",
				"IP         PORT  WEIGHT  STATE     HEALTH   SINCE",
				"10.0.0.12  -     100     active    down     ",
				"  hv2     3 probes failed: http 503\n",
				"10.0.0.14  -     100     draining  unknown  -  ", "not probed yet\n",
			},
		},
		{
			name:    "group get NAME -o json carries the health",
			args:    []string{"-o", "json", "group", "get", "web"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webHealthJSON}},
			stdout:  []string{"  \"health_check\": {\n    \"type\": \"http\",\n", "  \"health\": [\n    {\n      \"member\": \"10.0.0.11\",\n      \"state\": \"up\",\n", "      \"held_until\": \"2026-12-08T10:00:13Z\",\n"},
		},
		{
			name:    "group get NAME -o yaml carries the health",
			args:    []string{"-o", "yaml", "group", "get", "web"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webHealthJSON}},
			stdout:  []string{"health_check:\n  type: http\n  path: /healthz\n", "health:\n  - member: 10.0.0.11\n    state: up\n    since: \"2026-12-08T09:59:48Z\"\n", "    held_until: \"2026-12-08T10:00:13Z\"\n"},
		},
		{
			name:    "group stats NAME of a health-checked group shows each member's health",
			args:    []string{"group", "stats", "web"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webHealthJSON}, "GET /v1/groups/web/stats": {body: webHealthStatsJSON}},
			stdout:  []string{"  SHARE   WEIGHT SHARE  HEALTH   SINCE", "  33.3 %        up       ", "  33.3 %        down     ", "  0.0 %         unknown  -  ", "hold ends in "},
		},
		{
			name:    "group stats NAME -o json carries the health",
			args:    []string{"group", "stats", "web", "-o", "json"},
			replies: map[string]reply{"GET /v1/groups/web": {body: webHealthJSON}, "GET /v1/groups/web/stats": {body: webHealthStatsJSON}},
			stdout:  []string{"  \"health\": [\n    {\n      \"member\": \"10.0.0.11\",\n      \"state\": \"up\",\n"},
		},
		{
			name:    "group get of a missing group",
			args:    []string{"group", "get", "nope"},
			replies: map[string]reply{"GET /v1/groups/nope": {status: 404, body: `{"error":"group \"nope\" not found"}`}},
			code:    1,
			stderr:  []string{"Error: group \"nope\" not found\n"},
		},
		{
			name:   "unknown output format",
			args:   []string{"group", "get", "-o", "xml"},
			code:   1,
			stderr: []string{`Error: invalid value "xml" for -o/--output: want table, json or yaml`},
			reqs:   []want{},
		},
		{
			name:    "group delete",
			args:    []string{"group", "delete", "web"},
			replies: map[string]reply{"DELETE /v1/groups/web": {status: 204}},
			exact:   ptr("group \"web\" deleted\n"),
			reqs:    []want{{method: "DELETE", path: "/v1/groups/web"}},
		},
		{
			name:    "host delete",
			args:    []string{"host", "delete", "hv1"},
			replies: map[string]reply{"DELETE /v1/hosts/hv1": {status: 204}},
			exact:   ptr("host \"hv1\" deleted\n"),
			reqs:    []want{{method: "DELETE", path: "/v1/hosts/hv1"}},
		},
		{
			name:    "group delete --if-match",
			args:    []string{"group", "delete", "web", "--if-match", "7"},
			replies: map[string]reply{"DELETE /v1/groups/web": {status: 409, body: `{"error":"group \"web\" is at modify index 8, not 7"}`}},
			code:    1,
			stderr:  []string{`Error: group "web" changed meanwhile (it is no longer at modify index 7), so it was not deleted`},
			reqs:    []want{{method: "DELETE", path: "/v1/groups/web", ifMatch: `"7"`}},
		},
		{
			name: "group edit -f takes the file's modify index",
			args: []string{"group", "edit", "web", "-f", staleFile},
			replies: map[string]reply{
				"GET /v1/groups/web": {body: webJSON},
				"PUT /v1/groups/web": {status: 409, body: `{"error":"group \"web\" is at modify index 7, not 3"}`},
			},
			code:   1,
			stderr: []string{`Error: group "web" changed meanwhile (it is no longer at modify index 3), so your edit was not applied: run 'dlbctl group edit web' again`},
			reqs: []want{
				{method: "GET", path: "/v1/groups/web"},
				{method: "PUT", path: "/v1/groups/web", ifMatch: `"3"`, contentType: "application/json"},
			},
		},
		{
			name: "group edit -f without an index uses the fetched one",
			args: []string{"group", "edit", "web", "-f", webFile},
			replies: map[string]reply{
				"GET /v1/groups/web": {body: webJSON},
				"PUT /v1/groups/web": {body: webJSON},
			},
			stdout: []string{"Name:       web\n"},
			reqs: []want{
				{method: "GET", path: "/v1/groups/web"},
				{method: "PUT", path: "/v1/groups/web", ifMatch: `"7"`, body: webBody},
			},
		},
		{
			name: "group edit --if-match wins",
			args: []string{"group", "edit", "web", "-f", staleFile, "--if-match", "5"},
			replies: map[string]reply{
				"GET /v1/groups/web": {body: webJSON},
				"PUT /v1/groups/web": {body: webJSON},
			},
			reqs: []want{{method: "GET", path: "/v1/groups/web"}, {method: "PUT", path: "/v1/groups/web", ifMatch: `"5"`}},
		},
		{
			name:    "group edit -f of the same group changes nothing",
			args:    []string{"group", "edit", "web", "-f", sameFile},
			replies: map[string]reply{"GET /v1/groups/web": {body: webJSON}},
			exact:   ptr(""),
			stderr:  []string{`group "web": no change`},
			reqs:    []want{{method: "GET", path: "/v1/groups/web"}},
		},
		{
			name:    "group edit cannot rename",
			args:    []string{"group", "edit", "web", "-f", renamed},
			replies: map[string]reply{"GET /v1/groups/web": {body: webJSON}},
			code:    1,
			stderr:  []string{`a group cannot be renamed`},
		},
		{
			name:    "member add with a weight",
			args:    []string{"member", "add", "web", "10.0.0.13", "--weight", "50"},
			replies: map[string]reply{"POST /v1/groups/web/members": {status: 201, body: webJSON}},
			stdout:  []string{"member 10.0.0.13 added to group \"web\"\n\nName:       web\n"},
			reqs:    []want{{method: "POST", path: "/v1/groups/web/members", contentType: "application/json", body: `{"ip":"10.0.0.13","weight":50}`}},
		},
		{
			name:    "member add without a weight sends none",
			args:    []string{"member", "add", "web", "[FD00::13]:8080", "--state", "disabled", "-o", "json"},
			replies: map[string]reply{"POST /v1/groups/web/members": {status: 201, body: webJSON}},
			stdout:  []string{"{\n  \"name\": \"web\""},
			reqs:    []want{{method: "POST", path: "/v1/groups/web/members", body: `{"ip":"fd00::13","port":8080,"state":"disabled"}`}},
		},
		{
			name:    "member add of a member already there",
			args:    []string{"member", "add", "web", "10.0.0.11"},
			replies: map[string]reply{"POST /v1/groups/web/members": {status: 409, body: `{"error":"group \"web\": member 10.0.0.11 is members[0]: exists"}`}},
			code:    1,
			stderr:  []string{"Error: group \"web\": member 10.0.0.11 is members[0]: exists\n"},
		},
		{
			name:    "member add with a bad weight shows the fields",
			args:    []string{"member", "add", "web", "10.0.0.13", "--weight", "0"},
			replies: map[string]reply{"POST /v1/groups/web/members": {status: 422, body: `{"error":"invalid group","fields":[{"path":"weight","message":"0 is out of range (1..65535)"}]}`}},
			code:    1,
			stderr:  []string{"Error: invalid group\n  weight: 0 is out of range (1..65535)\n"},
			reqs:    []want{{method: "POST", path: "/v1/groups/web/members", body: `{"ip":"10.0.0.13","weight":0}`}},
		},
		{
			name:    "member drain",
			args:    []string{"member", "drain", "web", "10.0.0.11"},
			replies: map[string]reply{"PATCH /v1/groups/web/members/10.0.0.11": {body: webJSON}},
			stdout:  []string{"member 10.0.0.11 draining in group \"web\""},
			reqs:    []want{{method: "PATCH", path: "/v1/groups/web/members/10.0.0.11", contentType: "application/json", body: `{"state":"draining"}`}},
		},
		{
			name:    "member enable of an IPv6 member with a port",
			args:    []string{"member", "enable", "web", "[fd00::11]:8080"},
			replies: map[string]reply{"PATCH /v1/groups/web/members/%5Bfd00::11%5D:8080": {body: webJSON}},
			reqs:    []want{{method: "PATCH", path: "/v1/groups/web/members/%5Bfd00::11%5D:8080", body: `{"state":"active"}`}},
		},
		{
			name:    "member disable",
			args:    []string{"member", "disable", "web", "10.0.0.11:9090"},
			replies: map[string]reply{"PATCH /v1/groups/web/members/10.0.0.11:9090": {body: webJSON}},
			reqs:    []want{{method: "PATCH", path: "/v1/groups/web/members/10.0.0.11:9090", body: `{"state":"disabled"}`}},
		},
		{
			name:    "member set",
			args:    []string{"member", "set", "web", "10.0.0.11", "--weight", "200"},
			replies: map[string]reply{"PATCH /v1/groups/web/members/10.0.0.11": {body: webJSON}},
			reqs:    []want{{method: "PATCH", path: "/v1/groups/web/members/10.0.0.11", body: `{"weight":200}`}},
		},
		{
			name:   "member set needs something to set",
			args:   []string{"member", "set", "web", "10.0.0.11"},
			code:   1,
			stderr: []string{"give --weight, --state or both"},
			reqs:   []want{},
		},
		{
			name:    "member remove",
			args:    []string{"member", "remove", "web", "10.0.0.12"},
			replies: map[string]reply{"DELETE /v1/groups/web/members/10.0.0.12": {body: webJSON}},
			stdout:  []string{"member 10.0.0.12 removed from group \"web\""},
			reqs:    []want{{method: "DELETE", path: "/v1/groups/web/members/10.0.0.12"}},
		},
		{
			name:   "member with a bad address sends nothing",
			args:   []string{"member", "drain", "web", "10.0.0.11:x"},
			code:   1,
			stderr: []string{`Error: member "10.0.0.11:x": "x" is not a port`},
			reqs:   []want{},
		},
		{
			name:    "host list",
			args:    []string{"host", "list"},
			replies: map[string]reply{"GET /v1/hosts": {body: `{"index":2,"hosts":[{"name":"hv1","address":"192.168.0.1","version":"dev","ports":[{"name":"c1"}],"external_ids":{"az":"a"},"create_index":1,"modify_index":2,"connected":true,"applied_index":7}]}`}},
			exact:   ptr("NAME  CONNECTED  APPLIED  VM PORTS  VERSION  LAST HEARTBEAT\nhv1   yes        7        c1        dev      never\n"),
		},
		{
			name:    "an answer that is not JSON",
			args:    []string{"group", "get"},
			replies: map[string]reply{"GET /v1/groups": {body: "<html>hello</html>", contentType: "text/html"}},
			code:    1,
			stderr:  []string{`answered GET /v1/groups with HTTP 200 but not JSON (Content-Type "text/html"): "<html>hello</html>"; is it dlb-controller?`},
		},
		{
			name:    "an error that is not JSON",
			args:    []string{"group", "get"},
			replies: map[string]reply{"GET /v1/groups": {status: 502, body: "bad gateway", contentType: "text/plain"}},
			code:    1,
			stderr:  []string{`answered GET /v1/groups with HTTP 502 Bad Gateway and no JSON error (Content-Type "text/plain"): "bad gateway"`},
		},
		{
			name:    "an error body not the controller's is shown as it is",
			args:    []string{"group", "get"},
			replies: map[string]reply{"GET /v1/groups": {status: 422, body: `{"title":"Unprocessable Entity"}`}},
			code:    1,
			stderr:  []string{"answered GET /v1/groups with HTTP 422 Unprocessable Entity and no JSON error", `{\"title\":\"Unprocessable Entity\"}`},
		},
		{
			name:    "timeout",
			args:    []string{"group", "get", "--timeout", "100ms"},
			replies: map[string]reply{"GET /v1/groups": {delay: 5 * time.Second}},
			code:    1,
			stderr:  []string{"did not answer GET within 100ms (set a longer --timeout if it is busy)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, tc.replies)
			res := runCLI(t, tc.stdin, append([]string{"--server", api.srv.URL}, tc.args...)...)
			assert.Equal(t, tc.code, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
			if tc.exact != nil {
				assert.Equal(t, *tc.exact, res.stdout)
			}
			for _, s := range tc.stdout {
				assert.Contains(t, res.stdout, s)
			}
			for _, s := range tc.stderr {
				assert.Contains(t, res.stderr, s)
			}
			if tc.code == 0 {
				assert.NotContains(t, res.stderr, "Error")
			}
			if tc.reqs == nil {
				return
			}
			got := api.requests()
			require.Len(t, got, len(tc.reqs), "requests: %+v", got)
			for i, w := range tc.reqs {
				assert.Equal(t, w.method, got[i].method, "request %d", i)
				assert.Equal(t, w.path, got[i].path, "request %d", i)
				assert.Equal(t, w.ifMatch, got[i].ifMatch, "request %d: If-Match", i)
				if w.contentType != "" {
					assert.Equal(t, w.contentType, got[i].contentType, "request %d", i)
				}
				if w.body != "" {
					assert.JSONEq(t, w.body, got[i].body, "request %d", i)
				}
			}
		})
	}
}

func TestGroupEditInEditor(t *testing.T) {
	edited := strings.Replace(webJSON, `"weight":50`, `"weight":70`, 1)
	for _, tc := range []struct {
		name   string
		editor string
		code   int
		put    bool
		stderr string
		putRep reply
	}{
		{name: "a change is PUT with If-Match", editor: `sed -i 's/weight: 50/weight: 70/'`, put: true, putRep: reply{body: edited}},
		{name: "saved unchanged", editor: "true", stderr: `group "web": no change`},
		{name: "comments and layout only", editor: `sed -i -e 's/^name: web/name: web # the name/' -e '1i# mine'`, stderr: `group "web": no change`},
		{name: "emptied", editor: `sh -c ': > "$1"' sh`, stderr: `edit of group "web" cancelled`},
		{name: "the editor fails", editor: "false", code: 1, stderr: `editor "false": exit status 1`},
		{
			name: "someone changed it meanwhile", editor: `sed -i 's/weight: 50/weight: 70/'`, code: 1, put: true,
			putRep: reply{status: 409, body: `{"error":"group \"web\" is at modify index 8, not 7"}`},
			stderr: `group "web" changed meanwhile (it is no longer at modify index 7), so your edit was not applied: run 'dlbctl group edit web' again`,
		},
		{
			name: "refused edits are kept", editor: `sed -i 's/weight: 50/weight: 0/'`, code: 1,
			stderr: "members[1].weight: 0 is out of range (1..65535)\nyour edit is kept in ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("EDITOR", tc.editor)
			t.Setenv("TMPDIR", t.TempDir())
			api := newFakeAPI(t, map[string]reply{"GET /v1/groups/web": {body: webJSON}, "PUT /v1/groups/web": tc.putRep})
			res := runCLI(t, "", "--server", api.srv.URL, "group", "edit", "web")
			assert.Equal(t, tc.code, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
			assert.Contains(t, res.stderr, tc.stderr)
			reqs := api.requests()
			if !tc.put {
				require.Len(t, reqs, 1)
				return
			}
			require.Len(t, reqs, 2)
			assert.Equal(t, `"7"`, reqs[1].ifMatch)
			assert.Contains(t, reqs[1].body, `"weight":70`)
			assert.NotContains(t, reqs[1].body, "modify_index", "the index fields are not part of the document")
			if tc.code == 0 {
				assert.Contains(t, res.stdout, "10.0.0.12  9090  70      draining")
			}
		})
	}
}

func TestServerAddress(t *testing.T) {
	api := newFakeAPI(t, map[string]reply{"GET /v1/hosts": {body: `{"index":0,"hosts":[]}`}})
	hostPort := strings.TrimPrefix(api.srv.URL, "http://")
	dead := "http://" + testbed.FreeAddr(t)
	for _, tc := range []struct {
		name string
		env  string
		args []string
		code int
		err  string
	}{
		{name: "flag", args: []string{"--server", api.srv.URL}},
		{name: "flag without a scheme", args: []string{"--server", hostPort}},
		{name: "flag with a trailing slash", args: []string{"--server", api.srv.URL + "/"}},
		{name: "env", env: api.srv.URL},
		{name: "env without a scheme", env: hostPort},
		{name: "the flag wins over env", env: dead, args: []string{"--server", hostPort}},
		{name: "env is used", env: dead, code: 1, err: "cannot reach the controller at " + dead},
		{name: "bad scheme", args: []string{"--server", "ftp://" + hostPort}, code: 1, err: `scheme "ftp": want http or https`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DLB_SERVER", tc.env)
			res := runCLI(t, "", append(tc.args, "host", "list")...)
			assert.Equal(t, tc.code, res.code, res.stderr)
			if tc.err != "" {
				assert.Contains(t, res.stderr, tc.err)
			} else {
				assert.Equal(t, "No hosts.\n", res.stderr)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	addr := testbed.FreeAddr(t)
	res := runCLI(t, "", "--server", addr, "group", "get")
	assert.Equal(t, 1, res.code)
	assert.Empty(t, res.stdout)
	assert.Equal(t, "Error: cannot reach the controller at http://"+addr+" (connection refused): start it with 'dlb-controller --listen "+addr+
		" --data-dir /var/lib/dlb-controller', or point dlbctl at it with --server or DLB_SERVER\n", res.stderr)
}

func ptr[T any](v T) *T { return &v }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

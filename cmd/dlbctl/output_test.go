package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// webJSON is a group as the controller answers it.
const webJSON = `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080},{"protocol":"udp","port":53}],` +
	`"members":[{"ip":"10.0.0.11","weight":100,"state":"active"},{"ip":"10.0.0.12","port":9090,"weight":50,"state":"draining"}],` +
	`"mode":"dnat","scope":{"labels":{"tier":"front","app":"web"}},"create_index":3,"modify_index":7}`

// webBalancedJSON is webJSON with the balance the controller adds: one
// active member, 16 slots all its own.
var webBalancedJSON = strings.Replace(webJSON, `"create_index"`,
	`"balance":{"slots":16,"active_members":1,"worst_share_error_pp":0,"max_over_mean":1,"within_bound":true},"create_index"`, 1)

// webHealthJSON is a health-checked group as the controller answers GET
// /v1/groups/web at healthNow: a member up, one down (its last probe
// failed too), one held (its last probe passed), one not probed yet.
const webHealthJSON = `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80,"target_port":8080}],` +
	`"members":[{"ip":"10.0.0.11","weight":100,"state":"active"},{"ip":"10.0.0.12","weight":100,"state":"active"},` +
	`{"ip":"10.0.0.13","port":9090,"weight":100,"state":"active"},{"ip":"10.0.0.14","weight":100,"state":"draining"}],` +
	`"mode":"dnat","health_check":{"type":"http","path":"/healthz","interval":"2s","fall":3},"create_index":3,"modify_index":7,"health":` +
	webHealthListJSON + `}`

// webHealthListJSON is its members' health.
const webHealthListJSON = `[` +
	`{"member":"10.0.0.11","state":"up","since":"2026-12-08T09:59:48Z","reason":"first probe passed: http 200 in 0.4ms","prober":"hv1",` +
	`"last":{"at":"2026-12-08T09:59:59Z","ok":true,"detail":"http 200 in 0.3ms"}},` +
	`{"member":"10.0.0.12","state":"down","since":"2026-12-08T09:55:00Z","reason":"3 probes failed: http 503","prober":"hv2",` +
	`"last":{"at":"2026-12-08T09:59:59Z","ok":false,"detail":"http 503"}},` +
	`{"member":"10.0.0.13:9090","state":"held","since":"2026-12-08T09:59:53Z","reason":"flapping: 4 changes in 30s; held down for 20s","prober":"hv1",` +
	`"held_until":"2026-12-08T10:00:13Z","last":{"at":"2026-12-08T09:59:59Z","ok":true,"detail":"http 200 in 0.5ms"}},` +
	`{"member":"10.0.0.14","state":"unknown","reason":"not probed yet"}]`

// healthNow is when webHealthJSON's ages are shown.
var healthNow = time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)

func decodeGroup(t *testing.T, raw string) Group {
	t.Helper()
	var g Group
	require.NoError(t, json.Unmarshal([]byte(raw), &g))
	return g
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want format
		err  bool
	}{
		{in: "table", want: formatTable},
		{in: "json", want: formatJSON},
		{in: "YAML", want: formatYAML},
		{in: "xml", err: true},
		{in: "", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			f, err := parseFormat(tc.in)
			if tc.err {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "-o/--output")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, f)
		})
	}
}

func TestPortsAndMembersStrings(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ports       []lb.PortSpec
		members     []lb.Member
		wantPorts   string
		wantMembers string
	}{
		{name: "empty", wantPorts: "", wantMembers: "0/0"},
		{
			name:        "target port shown only when it differs",
			ports:       []lb.PortSpec{{Protocol: "TCP", Port: 80, TargetPort: 8080}, {Protocol: "udp", Port: 53}, {Protocol: "sctp", Port: 9, TargetPort: 9}},
			wantPorts:   "tcp/80→8080,udp/53,sctp/9",
			wantMembers: "0/0",
		},
		{
			name:        "unset state is active",
			members:     []lb.Member{{IP: "a"}, {IP: "b", State: "active"}, {IP: "c", State: "draining"}, {IP: "d", State: "disabled"}},
			wantMembers: "2/4",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.wantPorts, portsString(tc.ports))
			assert.Equal(t, tc.wantMembers, membersString(tc.members))
		})
	}
}

func TestPrint(t *testing.T) {
	web := decodeGroup(t, webJSON)
	listJSON := `{"index":9,"groups":[` + webBalancedJSON + `,{"name":"dns","vip":"fd00::53","ports":[{"protocol":"udp","port":53}],"members":[],"mode":"dsr","create_index":8,"modify_index":9,` +
		`"balance":{"slots":0,"active_members":0,"worst_share_error_pp":0,"within_bound":true}},` +
		`{"name":"old","vip":"10.96.0.9","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.9"}],"create_index":1,"modify_index":1}]}`
	var list GroupList
	require.NoError(t, json.Unmarshal([]byte(listJSON), &list))
	hostsJSON := `{"index":4,"hosts":[{"name":"hv1","address":"192.168.0.1","version":"v1.2.0","ports":[{"name":"vm1"},{"name":"vm2"}],"external_ids":{"rack":"r1","az":"a"},"create_index":1,"modify_index":4,"connected":true,"applied_index":9},{"name":"hv2","address":"","external_ids":{},"create_index":2,"modify_index":2,"connected":false,"applied_index":0}]}`
	var hosts HostList
	require.NoError(t, json.Unmarshal([]byte(hostsJSON), &hosts))

	for _, tc := range []struct {
		name   string
		format format
		raw    string
		table  func(w io.Writer)
		want   string
	}{
		{
			name: "group list as a table", format: formatTable, raw: listJSON,
			table: func(w io.Writer) { writeGroupsTable(w, list.Groups) },
			want: "" +
				"NAME  VIP         PORTS               MEMBERS  MODE  INDEX  BALANCE\n" +
				"web   10.96.0.10  tcp/80→8080,udp/53  1/2      dnat  7      within, exact\n" +
				"dns   fd00::53    udp/53              0/0      dsr   9      no active member\n" +
				"old   10.96.0.9   tcp/80              1/1      dnat  1      -\n",
		},
		{
			name: "one group as a table", format: formatTable, raw: webJSON,
			table: func(w io.Writer) { writeGroupDetail(w, web, time.Now()) },
			want: "" +
				"Name:       web\n" +
				"VIP:        10.96.0.10\n" +
				"Ports:      tcp/80→8080,udp/53\n" +
				"Mode:       dnat\n" +
				"Algorithm:  weighted\n" +
				"Affinity:   none\n" +
				"Scope:      labels=app=web,tier=front\n" +
				"Members:    1/2 active\n" +
				"Index:      created 3, modified 7\n" +
				"\n" +
				"IP         PORT  WEIGHT  STATE\n" +
				"10.0.0.11  -     100     active\n" +
				"10.0.0.12  9090  50      draining\n",
		},
		{
			name: "one group with its balance as a table", format: formatTable, raw: webBalancedJSON,
			table: func(w io.Writer) { writeGroupDetail(w, decodeGroup(t, webBalancedJSON), time.Now()) },
			want: "" +
				"Name:       web\n" +
				"VIP:        10.96.0.10\n" +
				"Ports:      tcp/80→8080,udp/53\n" +
				"Mode:       dnat\n" +
				"Algorithm:  weighted\n" +
				"Affinity:   none\n" +
				"Scope:      labels=app=web,tier=front\n" +
				"Members:    1/2 active\n" +
				"Index:      created 3, modified 7\n" +
				"Balance:    16 slots, every share exact, within the bound\n" +
				"\n" +
				"IP         PORT  WEIGHT  STATE\n" +
				"10.0.0.11  -     100     active\n" +
				"10.0.0.12  9090  50      draining\n",
		},
		{
			name: "a health-checked group: its check, and each member's health", format: formatTable, raw: webHealthJSON,
			table: func(w io.Writer) { writeGroupDetail(w, decodeGroup(t, webHealthJSON), healthNow) },
			want: "" +
				"Name:          web\n" +
				"VIP:           10.96.0.10\n" +
				"Ports:         tcp/80→8080\n" +
				"Mode:          dnat\n" +
				"Algorithm:     weighted\n" +
				"Affinity:      none\n" +
				"Scope:         every VM port\n" +
				"Health check:  http to each member's target port (GET /healthz, expect 200-399), every 2s (1s while in question), timeout 1s, rise 2, fall 3\n" +
				"               flapping (4 changes in 30s) holds a member down 10s, doubling up to 5m0s\n" +
				"Members:       3/4 active\n" +
				"Health:        1 up, 1 down, 1 held, 1 unknown\n" +
				"Index:         created 3, modified 7\n" +
				"\n" +
				"IP         PORT  WEIGHT  STATE     HEALTH   SINCE     PROBER  DETAIL\n" +
				"10.0.0.11  -     100     active    up       12s ago   hv1     http 200 in 0.3ms\n" +
				"10.0.0.12  -     100     active    down     5m0s ago  hv2     3 probes failed: http 503\n" +
				"10.0.0.13  9090  100     active    held     7s ago    hv1     flapping: 4 changes in 30s; held down for 20s; hold ends in 13s\n" +
				"10.0.0.14  -     100     draining  unknown  -         -       not probed yet\n",
		},
		{
			name: "a health-checked group in a write's answer, without health: the check only", format: formatTable, raw: webHealthJSON,
			table: func(w io.Writer) {
				g := decodeGroup(t, webHealthJSON)
				g.Health = nil
				writeGroupDetail(w, g, healthNow)
			},
			want: "" +
				"Name:          web\n" +
				"VIP:           10.96.0.10\n" +
				"Ports:         tcp/80→8080\n" +
				"Mode:          dnat\n" +
				"Algorithm:     weighted\n" +
				"Affinity:      none\n" +
				"Scope:         every VM port\n" +
				"Health check:  http to each member's target port (GET /healthz, expect 200-399), every 2s (1s while in question), timeout 1s, rise 2, fall 3\n" +
				"               flapping (4 changes in 30s) holds a member down 10s, doubling up to 5m0s\n" +
				"Members:       3/4 active\n" +
				"Index:         created 3, modified 7\n" +
				"\n" +
				"IP         PORT  WEIGHT  STATE\n" +
				"10.0.0.11  -     100     active\n" +
				"10.0.0.12  -     100     active\n" +
				"10.0.0.13  9090  100     active\n" +
				"10.0.0.14  -     100     draining\n",
		},
		{
			name: "hosts as a table", format: formatTable, raw: hostsJSON,
			table: func(w io.Writer) { writeHostsTable(w, hosts.Hosts) },
			want: "" +
				"NAME  CONNECTED  APPLIED  VM PORTS  VERSION  LAST HEARTBEAT\n" +
				"hv1   yes        9        vm1,vm2   v1.2.0   never\n" +
				"hv2   no         0        -         -        never\n",
		},
		{
			name: "json is the answer, indented", format: formatJSON, raw: `{"index":4,"hosts":[{"name":"hv1","external_ids":{"z":"1","a":"2"}}]}`,
			want: "{\n" +
				"  \"index\": 4,\n" +
				"  \"hosts\": [\n" +
				"    {\n" +
				"      \"name\": \"hv1\",\n" +
				"      \"external_ids\": {\n" +
				"        \"z\": \"1\",\n" +
				"        \"a\": \"2\"\n" +
				"      }\n" +
				"    }\n" +
				"  ]\n" +
				"}\n",
		},
		{
			name: "yaml keeps the order of keys and the types of values", format: formatYAML, raw: webJSON,
			want: "" +
				"name: web\n" +
				"vip: 10.96.0.10\n" +
				"ports:\n" +
				"  - protocol: tcp\n" +
				"    port: 80\n" +
				"    target_port: 8080\n" +
				"  - protocol: udp\n" +
				"    port: 53\n" +
				"members:\n" +
				"  - ip: 10.0.0.11\n" +
				"    weight: 100\n" +
				"    state: active\n" +
				"  - ip: 10.0.0.12\n" +
				"    port: 9090\n" +
				"    weight: 50\n" +
				"    state: draining\n" +
				"mode: dnat\n" +
				"scope:\n" +
				"  labels:\n" +
				"    tier: front\n" +
				"    app: web\n" +
				"create_index: 3\n" +
				"modify_index: 7\n",
		},
		{
			name: "yaml quotes strings that would read as something else", format: formatYAML,
			raw:  `{"a":"80","b":"true","c":"","d":null,"e":[],"f":{},"g":"x: y","h":1.5}`,
			want: "a: \"80\"\nb: \"true\"\nc: \"\"\nd: null\ne: []\nf: {}\ng: 'x: y'\nh: 1.5\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := printer{out: &out, format: tc.format}
			table := tc.table
			if table == nil {
				table = func(io.Writer) { t.Error("table printed for format " + string(tc.format)) }
			}
			require.NoError(t, p.print([]byte(tc.raw), table))
			assert.Equal(t, tc.want, out.String())
		})
	}
}

func TestYAMLOutputReadsBackAsTheGroup(t *testing.T) {
	// What "group get -o yaml" prints must be a file "group create -f" and
	// "group edit -f" take, with the fields the controller sets (balance).
	for _, raw := range []string{webJSON, webBalancedJSON, webHealthJSON} {
		data, err := jsonToYAML([]byte(raw))
		require.NoError(t, err)
		f, err := parseGroupFile(data, "web.yaml")
		require.NoError(t, err)
		require.Len(t, f.groups, 1)
		assert.False(t, f.list)
		assert.Equal(t, decodeGroup(t, raw), f.groups[0])
	}
}

func TestJoinRaw(t *testing.T) {
	raw, err := joinRaw([][]byte{[]byte(`{"name":"a"}`), []byte(`{"name":"b"}`)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"groups":[{"name":"a"},{"name":"b"}]}`, string(raw))
}

// TestBalanceLine: the balance as "group get NAME" and the list show it,
// for the controller's figures of weight sets 256 slots can and cannot
// honour (controller/api's TestBalance), naming the bound missed.
func TestBalanceLine(t *testing.T) {
	tests := []struct {
		name        string
		balance     wire.Balance
		line, short string
	}{
		{"1:2:3:4", wire.Balance{Slots: 128, ActiveMembers: 4, WorstShareErrorPP: 0.3125, WorstMember: "10.0.0.2", WithinBound: true},
			"128 slots, worst share error 0.31 points (10.0.0.2), within the bound",
			"within, 0.31 points"},
		{"10 equal", wire.Balance{Slots: 256, ActiveMembers: 10, WorstShareErrorPP: 0.234375, WorstMember: "10.0.0.7", MaxOverMean: 1.015625, WithinBound: true},
			"256 slots, worst share error 0.23 points (10.0.0.7), max/mean 1.016, within the bound",
			"within, 0.23 points"},
		{"50 equal: max/mean missed, each share within 0.5 points", wire.Balance{Slots: 256, ActiveMembers: 50, WorstShareErrorPP: 0.34375, WorstMember: "10.0.0.1", MaxOverMean: 1.171875},
			"256 slots, worst share error 0.34 points (10.0.0.1), max/mean 1.172, NOT within max/mean 1.03 (equal weights): 50 active members on 256 slots",
			"NOT within, max/mean 1.172"},
		{"12 equal: 22 slots over 21.33 just misses", wire.Balance{Slots: 256, ActiveMembers: 12, WorstShareErrorPP: 0.260417, WorstMember: "10.0.0.1", MaxOverMean: 1.03125},
			"256 slots, worst share error 0.26 points (10.0.0.1), max/mean 1.031, NOT within max/mean 1.03 (equal weights): 12 active members on 256 slots",
			"NOT within, max/mean 1.031"},
		{"unequal weights: a share missed", wire.Balance{Slots: 256, ActiveMembers: 151, WorstShareErrorPP: 58.365387, WorstMember: "10.0.0.151"},
			"256 slots, worst share error 58.37 points (10.0.0.151), NOT within max(0.5 points, 3 % of share): 151 active members on 256 slots",
			"NOT within, 58.37 points"},
		{"equal weights, both missed", wire.Balance{Slots: 256, ActiveMembers: 2, WorstShareErrorPP: 10, WorstMember: "10.0.0.1", MaxOverMean: 1.2},
			"256 slots, worst share error 10.00 points (10.0.0.1), max/mean 1.200, NOT within max(0.5 points, 3 % of share) nor max/mean 1.03 (equal weights): 2 active members on 256 slots",
			"NOT within, 10.00 points"},
		{"no active member", wire.Balance{WithinBound: true},
			"no active member: no slots, new connections are refused",
			"no active member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.line, balanceLine(&tt.balance))
			assert.Equal(t, tt.short, balanceShort(&tt.balance))
		})
	}
	assert.Equal(t, "-", balanceShort(nil), "a controller without the field")
}

func TestWriteShares(t *testing.T) {
	g := lb.Group{Name: "lc", Algorithm: lb.AlgorithmLeastConnections, Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12"}}}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.Local)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	writeShares(tw, &g, []wire.HostShares{
		{Host: "h1", View: wire.ViewGlobal, RecomputedAt: &at, Members: []wire.MemberShare{{Member: "10.0.0.11", Slots: 200, Share: 200.0 / 256}, {Member: "10.0.0.12", Slots: 56, Share: 56.0 / 256}}},
		{Host: "h2", View: wire.ViewWeights, Stale: true, Members: []wire.MemberShare{{Member: "10.0.0.11", Slots: 128, Share: 0.5}, {Member: "10.0.0.12", Slots: 128, Share: 0.5}}},
	})
	require.NoError(t, tw.Flush())
	assert.Equal(t, "\nAlgorithm: least-connections, global load; each host's shares of new connections:\n"+
		"HOST  VIEW             RECOMPUTED    10.0.0.11  10.0.0.12\n"+
		"h1    global           10:00:00.000  78.1 %     21.9 %\n"+
		"h2    weights (stale)  -             50.0 %     50.0 %\n", buf.String())
	buf.Reset()
	writeShares(&buf, &lb.Group{}, nil)
	assert.Empty(t, buf.String(), "a weighted group has none")
	assert.Equal(t, "least-connections (local load); 3 hosts: 1 on global figures, 1 on local ones, 0 fell back to the weights, 1 stale",
		algorithmString(Group{Group: lb.Group{Algorithm: lb.AlgorithmLeastConnections, LoadView: lb.LoadViewLocal}, Balancing: &wire.LoadStatus{Hosts: 3, Global: 1, Local: 1, Stale: 1}}))
}

// TestHealthCells: a member's health as the tables show it.
func TestHealthCells(t *testing.T) {
	at := func(s string) *time.Time {
		tm, err := time.Parse(time.TimeOnly, s)
		require.NoError(t, err)
		return &tm
	}
	now := *at("10:00:00")
	last := func(ok bool, detail string) *wire.ProbeResult {
		return &wire.ProbeResult{At: now, OK: ok, Detail: detail}
	}
	for _, tc := range []struct {
		name string
		h    wire.MemberHealth
		ok   bool
		want healthCells
	}{
		{name: "no health sent for the member", want: healthCells{"-", "-", "-", "-"}},
		{name: "up: the last probe", ok: true,
			h:    wire.MemberHealth{State: "up", Since: at("09:58:55"), Reason: "2 probes passed: syn-ack in 0.4ms", Prober: "hv1", Last: last(true, "syn-ack in 0.2ms")},
			want: healthCells{"up", "1m5s ago", "hv1", "syn-ack in 0.2ms"}},
		{name: "up, its last probe failed", ok: true,
			h:    wire.MemberHealth{State: "up", Since: at("09:00:00"), Reason: "first probe passed: syn-ack in 0.4ms", Prober: "hv1", Last: last(false, "refused (rst)")},
			want: healthCells{"up", "1h0m0s ago", "hv1", "first probe passed: syn-ack in 0.4ms; last probe failed: refused (rst)"}},
		{name: "down: the reason", ok: true,
			h:    wire.MemberHealth{State: "down", Since: at("09:59:58"), Reason: "2 probes failed: no answer in 500ms", Prober: "hv2", Last: last(false, "no answer in 500ms")},
			want: healthCells{"down", "2s ago", "hv2", "2 probes failed: no answer in 500ms"}},
		{name: "down, its last probe passed", ok: true,
			h:    wire.MemberHealth{State: "down", Since: at("09:59:58"), Reason: "2 probes failed: refused (rst)", Prober: "hv2", Last: last(true, "syn-ack in 0.3ms")},
			want: healthCells{"down", "2s ago", "hv2", "2 probes failed: refused (rst); last probe passed: syn-ack in 0.3ms"}},
		{name: "held: when the hold ends", ok: true,
			h:    wire.MemberHealth{State: "held", Since: at("09:59:50"), Reason: "flapping", Prober: "hv1", HeldUntil: at("10:00:09.6"), Last: last(true, "syn-ack")},
			want: healthCells{"held", "10s ago", "hv1", "flapping; hold ends in 10s"}},
		{name: "held past its end (a report on its way)", ok: true,
			h:    wire.MemberHealth{State: "held", Since: at("09:59:50"), Reason: "flapping", HeldUntil: at("09:59:59")},
			want: healthCells{"held", "10s ago", "-", "flapping; hold ends in 0s"}},
		{name: "unknown: the reason, not an old probe", ok: true,
			h:    wire.MemberHealth{State: "unknown", Reason: "no host can probe it: no agent is connected", Last: last(true, "syn-ack")},
			want: healthCells{"unknown", "-", "-", "no host can probe it: no agent is connected"}},
		{name: "a since ahead of this clock", ok: true,
			h:    wire.MemberHealth{State: "down", Since: at("10:00:03")},
			want: healthCells{"down", "0s ago", "-", "-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, healthCellsOf(tc.h, tc.ok, now))
		})
	}
	assert.Equal(t, "2 up, 1 held", healthSummary([]wire.MemberHealth{{State: "up"}, {State: "held"}, {State: "up"}}))
}

// TestHealthCheckLines: a health check with its defaults, as "group get
// NAME" shows it.
func TestHealthCheckLines(t *testing.T) {
	flap := "flapping (4 changes in 30s) holds a member down 10s, doubling up to 5m0s"
	for _, tc := range []struct {
		name string
		hc   lb.HealthCheck
		want []string
	}{
		{name: "tcp, every default", hc: lb.HealthCheck{Type: "tcp"},
			want: []string{"tcp to each member's target port, every 1s (500ms while in question), timeout 500ms, rise 2, fall 2", flap}},
		{name: "http with everything set", hc: lb.HealthCheck{Type: "http", Port: 8081, Interval: "500ms", Timeout: "200ms", Rise: 3, Fall: 1, Path: "/ready", Host: "web.example",
			Expect: "200,204-206", FlapChanges: 6, FlapWindow: "1m", Hold: "30s"},
			want: []string{"http to port 8081 (GET /ready, Host web.example, expect 200,204-206), every 500ms (250ms while in question), timeout 200ms, rise 3, fall 1",
				"flapping (6 changes in 1m0s) holds a member down 30s, doubling up to 5m0s"}},
		{name: "udp, silence is up", hc: lb.HealthCheck{Type: "udp", Port: 53, UDPSilenceOK: true},
			want: []string{`udp to port 53 (payload "dlb-health", silence is up), every 1s (500ms while in question), timeout 500ms, rise 2, fall 2`, flap}},
		{name: "not a check this dlbctl reads", hc: lb.HealthCheck{Type: "tcp", Interval: "often"},
			want: []string{`tcp (time: invalid duration "often")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, healthCheckLines(&tc.hc))
		})
	}
}

package api

import (
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

// TestStatsReports: a registered host reports its members' counters and
// the group's statistics sum them; a report that speaks of anything the
// host may not (an unknown host, a group not for it, a port or member the
// group has not, an entry twice, a count past 2^53) is refused whole with
// 4xx naming each entry, and changes nothing; a host the statistics do not
// know is asked for everything.
func TestStatsReports(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"h1", "h2", "h3"} {
		code, _, body := e.do("PUT", "/v1/hosts/"+h, nil, `{"ports":[]}`)
		require.Equal(t, http.StatusOK, code, "%s", body)
	}
	code, _, body := e.do("POST", "/v1/groups", nil, `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12","port":8080}]}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	code, _, body = e.do("POST", "/v1/groups", nil, `{"name":"only-h3","vip":"10.96.0.11","scope":{"hosts":["h3"]},"ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.11"}]}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)

	stats := func() wire.GroupStats {
		code, _, body := e.do("GET", "/v1/groups/web/stats", nil, "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		var g wire.GroupStats
		require.NoError(t, json.Unmarshal(body, &g))
		return g
	}
	totals := func() map[string]uint64 {
		out := map[string]uint64{}
		for _, m := range stats().Members {
			out[m.Member] = m.NewConnections
		}
		return out
	}
	for _, tc := range []struct {
		name, host, report string
		code               int
		fields             []string // paths named in a refusal
		wantFull           bool
		totals             map[string]uint64
	}{
		{"h1, everything", "h1", `{"full":true,"interval_s":1,"members":[{"group":"web","port":"tcp/80","member":"10.0.0.11","new_connections":5},{"group":"web","port":"tcp/80","member":"10.0.0.12:8080","new_connections":3}]}`,
			200, nil, false, map[string]uint64{"10.0.0.11": 5, "10.0.0.12:8080": 3}},
		{"h2, what changed, unknown: asked for everything", "h2", `{"interval_s":1,"members":[{"group":"web","port":"tcp/80","member":"10.0.0.11","new_connections":2}]}`,
			200, nil, true, map[string]uint64{"10.0.0.11": 7, "10.0.0.12:8080": 3}},
		{"an unregistered host", "h9", `{"interval_s":1,"members":[]}`, 404, nil, false, map[string]uint64{"10.0.0.11": 7, "10.0.0.12:8080": 3}},
		{"entries it may not report, with a good one: nothing taken", "h1", `{"interval_s":1,"members":[
			{"group":"web","port":"tcp/80","member":"10.0.0.11","new_connections":50},
			{"group":"only-h3","port":"tcp/80","member":"10.0.0.11","new_connections":1},
			{"group":"gone","port":"tcp/80","member":"10.0.0.11","new_connections":1},
			{"group":"web","port":"udp/53","member":"10.0.0.11","new_connections":1},
			{"group":"web","port":"tcp/80","member":"10.0.0.12","new_connections":1},
			{"group":"web","port":"tcp/80","member":"10.0.0.11","new_connections":60},
			{"group":"web","port":"tcp/80","member":"10.0.0.12:8080","new_connections":9007199254740993,"bytes_from_member":9007199254740993,"active_connections":4294967297}]}`,
			422, []string{"members[1].group", "members[2].group", "members[3].member", "members[4].member", "members[5].member",
				"members[6].new_connections", "members[6].bytes_from_member", "members[6].active_connections"},
			false, map[string]uint64{"10.0.0.11": 7, "10.0.0.12:8080": 3}},
		{"a bad interval", "h1", `{"interval_s":0,"members":[]}`, 422, []string{"interval_s"}, false, map[string]uint64{"10.0.0.11": 7, "10.0.0.12:8080": 3}},
		{"h1 goes on", "h1", `{"interval_s":1,"members":[{"group":"web","port":"tcp/80","member":"10.0.0.11","new_connections":8}]}`,
			200, nil, false, map[string]uint64{"10.0.0.11": 10, "10.0.0.12:8080": 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.do("POST", "/v1/hosts/"+tc.host+"/stats", nil, tc.report)
			require.Equal(t, tc.code, code, "%s", body)
			if code == http.StatusOK {
				var a wire.StatsAnswer
				require.NoError(t, json.Unmarshal(body, &a))
				assert.Equal(t, tc.wantFull, a.WantFull)
			}
			if tc.fields != nil {
				var perr wire.Error
				require.NoError(t, json.Unmarshal(body, &perr))
				var paths []string
				for _, f := range perr.Fields {
					paths = append(paths, f.Path)
				}
				assert.Equal(t, tc.fields, paths, "%s", body)
			}
			assert.Equal(t, tc.totals, totals())
		})
	}
	g := stats()
	require.Len(t, g.Members, 2)
	assert.Len(t, g.Members[0].Hosts, 2, "10.0.0.11 from h1 and h2")
	code, _, _ = e.do("GET", "/v1/groups/nope/stats", nil, "")
	assert.Equal(t, http.StatusNotFound, code)
	// A deleted host's counts leave the totals.
	code, _, body = e.do("DELETE", "/v1/hosts/h2", nil, "")
	require.Equal(t, http.StatusNoContent, code, "%s", body)
	assert.Equal(t, map[string]uint64{"10.0.0.11": 8, "10.0.0.12:8080": 3}, totals())
}

// TestLeastConnectionsLoads: a report is answered with the loads of the
// host's least-connections groups with a global view (all, then what
// changed since the seq it gives); the shares it reports show in the
// group's statistics and status; shares it may not report are refused
// with 422 naming each, and change nothing.
func TestLeastConnectionsLoads(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"h1", "h2"} {
		code, _, body := e.do("PUT", "/v1/hosts/"+h, nil, `{"ports":[]}`)
		require.Equal(t, http.StatusOK, code, "%s", body)
	}
	for _, g := range []string{
		`{"name":"lc","vip":"10.96.0.10","algorithm":"least-connections","ports":[{"protocol":"tcp","port":80},{"protocol":"tcp","port":443}],"members":[{"ip":"10.0.0.11"},{"ip":"10.0.0.12"}]}`,
		`{"name":"local","vip":"10.96.0.11","algorithm":"least-connections","load_view":"local","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.11"}]}`,
		`{"name":"w","vip":"10.96.0.12","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.11"}]}`,
		`{"name":"lc-h2","vip":"10.96.0.13","algorithm":"least-connections","scope":{"hosts":["h2"]},"ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.11"}]}`,
	} {
		code, _, body := e.do("POST", "/v1/groups", nil, g)
		require.Equal(t, http.StatusCreated, code, "%s", body)
	}
	send := func(host, report string) (int, wire.StatsAnswer, []byte) {
		code, _, body := e.do("POST", "/v1/hosts/"+host+"/stats", nil, report)
		var a wire.StatsAnswer
		if code == http.StatusOK {
			require.NoError(t, json.Unmarshal(body, &a))
		}
		return code, a, body
	}
	code, a, body := send("h2", `{"full":true,"interval_s":1,"members":[{"group":"lc","port":"tcp/80","member":"10.0.0.11","new_connections":5,"active_connections":3},{"group":"lc","port":"tcp/443","member":"10.0.0.11","new_connections":2,"active_connections":1}]}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, a, body = send("h1", `{"full":true,"interval_s":1,"members":[{"group":"lc","port":"tcp/80","member":"10.0.0.12","new_connections":1,"active_connections":1}]}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.True(t, a.LoadsFull)
	assert.Equal(t, []wire.GroupLoad{{Group: "lc", Members: []wire.MemberLoad{{Member: "10.0.0.11", ActiveConnections: 4, NewConnections: 7}, {Member: "10.0.0.12", ActiveConnections: 1, NewConnections: 1}}}}, a.Loads,
		"h1's global groups only, every host's counts summed over the ports")
	code, b, body := send("h1", fmt.Sprintf(`{"interval_s":1,"members":[],"loads_since":%d}`, a.LoadsSeq))
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.False(t, b.LoadsFull)
	assert.Empty(t, b.Loads, "nothing changed since")

	// Shares.
	good := `{"interval_s":1,"members":[],"balanced_at":1700000000.25,"balancing":[{"group":"lc","view":"global","members":[{"member":"10.0.0.11","slots":200},{"member":"10.0.0.12","slots":56}]}]}`
	code, _, body = send("h1", good)
	require.Equal(t, http.StatusOK, code, "%s", body)
	for _, bad := range []struct{ report, fields string }{
		{`{"interval_s":1,"members":[],"balanced_at":-1,"balancing":[
			{"group":"w","view":"global","members":[]},
			{"group":"lc-h2","view":"global","members":[]},
			{"group":"lc","view":"fleet","members":[{"member":"10.0.0.13","slots":1},{"member":"10.0.0.11","slots":300}]},
			{"group":"lc","view":"global","members":[{"member":"10.0.0.11","slots":200},{"member":"10.0.0.11","slots":1}]}]}`,
			"balanced_at balancing[0].group balancing[1].group balancing[2].view balancing[2].members[0].member balancing[2].members[1].slots balancing[3].group"},
		{`{"interval_s":1,"members":[],"balancing":[{"group":"lc","view":"global","members":[{"member":"10.0.0.11","slots":200},{"member":"10.0.0.12","slots":57}]}]}`,
			"balancing[0].members"},
	} {
		code, _, body = send("h1", bad.report)
		require.Equal(t, http.StatusUnprocessableEntity, code, "%s", body)
		var perr wire.Error
		require.NoError(t, json.Unmarshal(body, &perr))
		var paths []string
		for _, f := range perr.Fields {
			paths = append(paths, f.Path)
		}
		assert.Equal(t, bad.fields, strings.Join(paths, " "), "%s", body)
	}
	code, _, body = e.do("GET", "/v1/groups/lc/stats", nil, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var gs wire.GroupStats
	require.NoError(t, json.Unmarshal(body, &gs))
	require.Len(t, gs.Balancing, 1, "%s", body)
	assert.Equal(t, "h1", gs.Balancing[0].Host)
	assert.Equal(t, []wire.MemberShare{{Member: "10.0.0.11", Slots: 200, Share: 200.0 / 256}, {Member: "10.0.0.12", Slots: 56, Share: 56.0 / 256}}, gs.Balancing[0].Members, "the refused reports changed nothing")
	code, _, body = e.do("GET", "/v1/groups/lc", nil, "")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var g wire.Group
	require.NoError(t, json.Unmarshal(body, &g))
	require.NotNil(t, g.Balancing, "%s", body)
	assert.Equal(t, 1, g.Balancing.Global)
	assert.Equal(t, time.Unix(1700000000, 250e6).UTC(), *g.Balancing.LastRecomputed)
	// The status is read-only: the answer is a valid PUT body.
	code, _, body = e.do("PUT", "/v1/groups/lc", nil, string(body))
	assert.Equal(t, http.StatusOK, code, "%s", body)
}

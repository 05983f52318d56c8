package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// members makes n members 10.0.0.1... with the weights weight(i) (0 for a
// draining member).
func members(n int, weight func(i int) int) []lb.Member {
	ms := make([]lb.Member, n)
	for i := range ms {
		w := weight(i)
		ms[i] = lb.Member{IP: fmt.Sprintf("10.0.%d.%d", i/200, i%200+1)}
		if w == 0 {
			ms[i].State = lb.StateDraining
			w = 100
		}
		ms[i].Weight = &w
	}
	return ms
}

func equalWeights(int) int { return 100 }

// TestBalance: the balance the answers carry, in the document's units,
// for weight sets 256 slots can and cannot honour.
func TestBalance(t *testing.T) {
	ported := members(3, equalWeights)
	ported[2].Port = 8080
	v6 := []lb.Member{{IP: "fd00::1", Weight: new(1)}, {IP: "fd00::2", Weight: new(1)}, {IP: "fd00::3", Port: 80, Weight: new(1)}}
	tests := []struct {
		name    string
		members []lb.Member
		want    wire.Balance
	}{
		{"1:2:3:4 needs 128 slots", members(4, func(i int) int { return i + 1 }),
			// 13/26/38/51 slots: 10.156/20.3125/29.6875/39.84 %.
			wire.Balance{Slots: 128, ActiveMembers: 4, WorstShareErrorPP: 0.3125, WorstMember: "10.0.0.2", WithinBound: true}},
		{"10 equal need 256", members(10, equalWeights),
			// 26 slots for the first 6, 25 for the last 4 (9.77 %):
			// 26/25.6.
			wire.Balance{Slots: 256, ActiveMembers: 10, WorstShareErrorPP: 0.234375, WorstMember: "10.0.0.7", MaxOverMean: 1.015625, WithinBound: true}},
		{"50 equal are too many for 256", members(50, equalWeights),
			// 6 slots for 6, 5 for 44: 6/5.12, though each share is
			// within 0.5 points.
			wire.Balance{Slots: 256, ActiveMembers: 50, WorstShareErrorPP: 0.34375, WorstMember: "10.0.0.1", MaxOverMean: 1.171875, WithinBound: false}},
		{"12 equal just miss", members(12, equalWeights),
			// 22 slots for the first 4, 21 for the rest: 22/21.33 is
			// 1.031 (from 11 equal members most counts miss 1.03).
			wire.Balance{Slots: 256, ActiveMembers: 12, WorstShareErrorPP: 0.260417, WorstMember: "10.0.0.1", MaxOverMean: 1.03125, WithinBound: false}},
		{"150 light and a heavy one are too many for 256", members(151, func(i int) int { return map[bool]int{true: 65535, false: 1}[i == 150] }),
			// Every member needs a slot of its own: the heavy one gets
			// 106 of 256 (41.4 %) for 99.8 % of the weight.
			wire.Balance{Slots: 256, ActiveMembers: 151, WorstShareErrorPP: 58.365387, WorstMember: "10.0.0.151", WithinBound: false}},
		{"draining and disabled members take no slot", append(members(3, equalWeights), members(6, func(int) int { return 0 })[3:]...),
			// 3 equal: 43/43/42 of 128 (42 is 32.81 %), 43/42.67; 64
			// gives 22/21.33.
			wire.Balance{Slots: 128, ActiveMembers: 3, WorstShareErrorPP: 0.520833, WorstMember: "10.0.0.3", MaxOverMean: 1.007813, WithinBound: true}},
		{"one member", members(1, equalWeights),
			wire.Balance{Slots: 16, ActiveMembers: 1, MaxOverMean: 1, WithinBound: true}},
		{"every share exact names no worst member", members(4, func(i int) int { return []int{1, 1, 2, 4}[i] }),
			wire.Balance{Slots: 16, ActiveMembers: 4, WithinBound: true}},
		{"no active member", members(3, func(int) int { return 0 }),
			wire.Balance{WithinBound: true}},
		{"no member", nil, wire.Balance{WithinBound: true}},
		{"the worst member with its own port", ported,
			wire.Balance{Slots: 128, ActiveMembers: 3, WorstShareErrorPP: 0.520833, WorstMember: "10.0.0.3:8080", MaxOverMean: 1.007813, WithinBound: true}},
		{"an IPv6 member with its own port", v6,
			wire.Balance{Slots: 128, ActiveMembers: 3, WorstShareErrorPP: 0.520833, WorstMember: "[fd00::3]:80", MaxOverMean: 1.007813, WithinBound: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &lb.Group{Name: "g", Members: tt.members}
			got := balance(g)
			require.NotNil(t, got)
			assert.Equal(t, tt.want, *got)
			// The same as lb measures it, in points.
			if got.ActiveMembers > 0 {
				bal := lb.GroupBalance(g)
				assert.InDelta(t, 100*bal.WorstError, got.WorstShareErrorPP, 1e-6)
				assert.Equal(t, bal.Within, got.WithinBound)
			}
		})
	}
}

// decode reads a group answer into a new document (decoding into one
// that held a balance would keep the fields the answer leaves out).
func decode(t *testing.T, body []byte) Group {
	t.Helper()
	var g Group
	require.NoError(t, json.Unmarshal(body, &g), "%s", body)
	return g
}

// TestBalanceInAnswers: the group answers carry the balance (GET, list
// and writes), the agents' watch does not, and bodies that send it back
// are accepted with it ignored, as applied is.
func TestBalanceInAnswers(t *testing.T) {
	e := newEnv(t)
	var ms []string
	for i := 1; i <= 50; i++ {
		ms = append(ms, fmt.Sprintf(`{"ip":"10.0.1.%d"}`, i))
	}
	fifty := `{"name":"fifty","vip":"10.96.0.50","ports":[{"protocol":"tcp","port":80}],"members":[` + strings.Join(ms, ",") + `]}`
	code, _, body := e.do("POST", "/v1/groups", nil, fifty)
	require.Equal(t, 201, code, "%s", body)
	g := decode(t, body)
	want := &wire.Balance{Slots: 256, ActiveMembers: 50, WorstShareErrorPP: 0.34375, WorstMember: "10.0.1.1", MaxOverMean: 1.171875}
	assert.Equal(t, want, g.Balance, "a write's answer")

	code, _, body = e.do("GET", "/v1/groups/fifty", nil, "")
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), `"balance":{"slots":256,"active_members":50,"worst_share_error_pp":0.34375,"worst_member":"10.0.1.1","max_over_mean":1.171875,"within_bound":false}`)
	getBody := string(body)

	// A member drained: 49 equal, still too many.
	code, _, body = e.do("PATCH", "/v1/groups/fifty/members/10.0.1.1", nil, `{"state":"draining"}`)
	require.Equal(t, 200, code, "%s", body)
	g = decode(t, body)
	assert.Equal(t, 49, g.Balance.ActiveMembers)
	assert.False(t, g.Balance.WithinBound)

	// Bodies that carry the balance (or applied): ignored, not refused.
	code, _, body = e.do("PUT", "/v1/groups/fifty", nil, strings.Replace(getBody, `"modify_index":2,`, ``, 1))
	require.Equal(t, 200, code, "a GET's answer is a valid PUT body: %s", body)
	g = decode(t, body)
	assert.Equal(t, 50, g.Balance.ActiveMembers, "10.0.1.1 is active again")
	bogus := `"balance":{"slots":16,"active_members":1,"worst_share_error_pp":99,"within_bound":true},"applied":{"hosts":9,"applied":9},`
	code, _, body = e.do("POST", "/v1/groups", nil, strings.Replace(webDoc, `"name"`, bogus+`"name"`, 1))
	require.Equal(t, 201, code, "%s", body)
	g = decode(t, body)
	assert.Equal(t, &wire.Balance{Slots: 64, ActiveMembers: 2, WorstShareErrorPP: 0.520833, WorstMember: "10.0.0.11", WithinBound: true}, g.Balance,
		"web, 100:50: 43/21 of 64 slots (32 would give 21/11, 1.04 points off for a bound of 1)")
	assert.Nil(t, g.Applied)
	code, _, body = e.do("PATCH", "/v1/groups/web", map[string]string{"Content-Type": "application/merge-patch+json"},
		`{"balance":{"slots":1},"applied":null,"affinity":{"client_ip_timeout_s":60}}`)
	require.Equal(t, 200, code, "%s", body)
	g = decode(t, body)
	assert.Equal(t, 60, g.Affinity.ClientIPTimeoutS)
	assert.Equal(t, 64, g.Balance.Slots)
	code, _, body = e.do("POST", "/v1/groups", nil, `{"name":"empty","vip":"10.96.0.60","ports":[{"protocol":"udp","port":53}],"balance":{},"applied":{}}`)
	require.Equal(t, 201, code, "every field of balance and applied is read-only, none required in a body: %s", body)
	g = decode(t, body)
	assert.Equal(t, &wire.Balance{WithinBound: true}, g.Balance, "no member, nothing to split")

	// The list carries it; the watch does not (agents count their own).
	var list GroupList
	require.NoError(t, json.Unmarshal([]byte(e.dump()), &list))
	require.Len(t, list.Groups, 3)
	for _, g := range list.Groups {
		assert.NotNil(t, g.Balance, g.Name)
	}
	assert.False(t, list.Groups[1].Balance.WithinBound, list.Groups[1].Name)
	changes := e.watch("h1", 0, "10ms")
	require.Len(t, changes.Groups, 3)
	for _, g := range changes.Groups {
		assert.Nil(t, g.Balance, g.Name)
	}

	// The OpenAPI document describes it, read-only.
	code, _, body = e.do("GET", "/openapi.json", nil, "")
	require.Equal(t, 200, code)
	var spec struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					ReadOnly    bool   `json:"readOnly"`
					Description string `json:"description"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(body, &spec))
	prop := spec.Components.Schemas["Group"].Properties["balance"]
	assert.True(t, prop.ReadOnly)
	assert.Contains(t, prop.Description, "active members' weights")
	fields := spec.Components.Schemas["Balance"].Properties
	for _, f := range []string{"slots", "active_members", "worst_share_error_pp", "worst_member", "max_over_mean", "within_bound"} {
		assert.NotEmpty(t, fields[f].Description, f)
	}
	assert.Contains(t, fields["within_bound"].Description, "max(0.5 points, 3 % of its weight's share)")
}

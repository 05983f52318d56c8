package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func intp(i int) *int { return &i }

func TestValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name  string
		group Group
		want  []string
	}{
		{"empty", Group{}, []string{"name: required", "vip: required", "ports: at least one port is required"}},
		{"bad fields", Group{Name: "web", VIP: "10.96.0.300", Ports: []PortSpec{{Protocol: "icmp", Port: 0}, {Protocol: "tcp", Port: 80, TargetPort: 70000}},
			Members: []Member{{IP: "10.0.0.1", Weight: intp(0)}, {IP: "nope"}, {IP: "10.0.0.2", State: "sleeping", MAC: "01:00:00:00:00:01"}, {IP: "10.0.0.1"}}},
			[]string{`vip: "10.96.0.300" is not an IP address`, `ports[0].protocol: "icmp": want tcp, udp or sctp`, "ports[0].port: 0 is not a port",
				"ports[1].target_port: 70000 is not a port", "members[0].weight: 0 is out of range (1..65535)", `members[1].ip: "nope" is not an IP address`,
				`members[2].state: "sleeping"`, `members[2].mac: "01:00:00:00:00:01" is not a unicast`, "members[3]: duplicate of members[0]"}},
		{"mixed families", Group{Name: "v6", VIP: "fd00::100", Ports: []PortSpec{{Protocol: "udp", Port: 53}}, Members: []Member{{IP: "10.0.0.1"}}},
			[]string{"members[0].ip: 10.0.0.1 and the VIP fd00::100 are of different IP versions"}},
		{"weights", Group{Name: "w", VIP: "10.96.0.1", Ports: []PortSpec{{Protocol: "tcp", Port: 80}}, Members: []Member{{IP: "10.0.0.1", Weight: intp(65536)}}},
			[]string{"members[0].weight: 65536 is out of range"}},
		{"affinity and mode", Group{Name: "a", VIP: "10.96.0.1", Ports: []PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}}, Mode: "dsr",
			Affinity: &Affinity{ClientIPTimeoutS: 90000}},
			[]string{"affinity.client_ip_timeout_s: 90000 is out of range (1..86400)", "ports[0].target_port: dsr mode cannot change the port"}},
		{"algorithm", Group{Name: "l", VIP: "10.96.0.1", Ports: []PortSpec{{Protocol: "tcp", Port: 80}}, Algorithm: "round-robin", LoadView: "fleet"},
			[]string{`algorithm: "round-robin": want weighted or least-connections`, `load_view: "fleet": want global or local`}},
		{"load view without least connections", Group{Name: "l", VIP: "10.96.0.1", Ports: []PortSpec{{Protocol: "tcp", Port: 80}}, LoadView: "local"},
			[]string{"load_view: only with algorithm least-connections"}},
		{"duplicate port", Group{Name: "d", VIP: "10.96.0.1", Ports: []PortSpec{{Protocol: "tcp", Port: 80}, {Protocol: "TCP", Port: 80}}},
			[]string{"ports[1]: tcp/80 is listed twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.group.Validate()
			require.Error(t, err)
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Len(t, verr.Problems, len(tt.want), "%v", verr.Problems)
		})
	}
}

func TestValidateAllAcrossGroups(t *testing.T) {
	g := func(name, vip string, port int, scope *Scope) Group {
		return Group{Name: name, VIP: vip, Ports: []PortSpec{{Protocol: "tcp", Port: port}}, Members: []Member{{IP: "10.0.0.1"}}, Scope: scope}
	}
	err := ValidateAll([]Group{g("a", "10.96.0.1", 80, nil), g("b", "10.96.0.1", 80, nil), g("a", "10.96.0.2", 80, nil)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `groups[1].ports[0]: tcp 10.96.0.1:80 is already served by group "a"`)
	assert.Contains(t, err.Error(), `groups[2].name: "a" is already the name of groups[0]`)
	// Different scopes may share a VIP:port; different ports may share a VIP.
	require.NoError(t, ValidateAll([]Group{g("a", "10.96.0.1", 80, nil), g("b", "10.96.0.1", 80, &Scope{IfaceIDs: []string{"c2"}}), g("c", "10.96.0.1", 443, nil)}))
}

func TestParseFile(t *testing.T) {
	groups, err := ParseFile([]byte(`
groups:
  - name: web
    vip: 10.96.0.10
    ports: [{protocol: tcp, port: 80, target_port: 8080}]
    members:
      - {ip: 10.0.0.11, weight: 1}
      - {ip: 10.0.0.12, state: draining}
`))
	require.NoError(t, err)
	require.Len(t, groups, 1)
	assert.Equal(t, 1, groups[0].Members[0].WeightOf())
	assert.Equal(t, DefaultWeight, groups[0].Members[1].WeightOf())
	assert.Equal(t, StateDraining, groups[0].Members[1].StateOf())

	_, err = ParseFile([]byte("groups:\n  - name: web\n    vip: 10.96.0.10\n    colour: red\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 4")
	assert.Contains(t, err.Error(), "colour")

	_, err = ParseFile([]byte(`{"groups":[{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"x"}]}]}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `groups[0].members[0].ip: "x" is not an IP address`)

	groups, err = ParseFile([]byte(""))
	require.NoError(t, err)
	assert.Empty(t, groups)
}

func TestCloneIsDeepAndEqual(t *testing.T) {
	g := Group{Name: "a", VIP: "10.96.0.1", Ports: []PortSpec{{Protocol: "tcp", Port: 80}},
		Members: []Member{{IP: "10.0.0.1", Weight: intp(5)}}, Affinity: &Affinity{ClientIPTimeoutS: 10},
		Scope: &Scope{IfaceIDs: []string{"c1"}, Labels: map[string]string{"t": "x"}}}
	c := g.Clone()
	assert.Equal(t, g, c)
	*c.Members[0].Weight = 6
	c.Scope.Labels["t"] = "y"
	assert.Equal(t, 5, *g.Members[0].Weight)
	assert.Equal(t, "x", g.Scope.Labels["t"])
	assert.Equal(t, Group{Name: "b"}, Group{Name: "b"}.Clone(), "nil slices stay nil")
}

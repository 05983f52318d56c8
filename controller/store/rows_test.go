package store

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
)

func intp(i int) *int { return &i }

// TestRowsRoundTrip: a group comes back from its rows as it went in, up to
// the order of its lists (sorted) and explicit defaults.
func TestRowsRoundTrip(t *testing.T) {
	w100 := 100
	tests := []struct {
		name string
		in   lb.Group
		want lb.Group
	}{
		{
			name: "defaults made explicit, lists sorted",
			in: lb.Group{Name: "web", VIP: "10.96.0.10",
				Ports:   []lb.PortSpec{{Protocol: "udp", Port: 53, TargetPort: 5353}, {Protocol: "tcp", Port: 80, TargetPort: 8080}},
				Members: []lb.Member{{IP: "10.0.0.12"}, {IP: "10.0.0.9", Weight: intp(200), State: lb.StateDraining, MAC: "02:00:0a:00:00:09"}}},
			want: lb.Group{Name: "web", VIP: "10.96.0.10",
				Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}, {Protocol: "udp", Port: 53, TargetPort: 5353}},
				Members: []lb.Member{{IP: "10.0.0.9", Weight: intp(200), State: lb.StateDraining, MAC: "02:00:0a:00:00:09"},
					{IP: "10.0.0.12", Weight: intp(lb.DefaultWeight), State: lb.StateActive}}},
		},
		{
			name: "affinity, scope, IPv6, member ports",
			in: lb.Group{Name: "dns6", VIP: "fd00::53", Affinity: &lb.Affinity{ClientIPTimeoutS: 86400},
				Scope:   &lb.Scope{IfaceIDs: []string{"vm2", "vm1"}, Labels: map[string]string{"tenant": "a"}, Hosts: []string{"h1"}},
				Ports:   []lb.PortSpec{{Protocol: "sctp", Port: 9000}},
				Members: []lb.Member{{IP: "fd00::12", Port: 9001}, {IP: "fd00::12", Port: 9000}}},
			want: lb.Group{Name: "dns6", VIP: "fd00::53", Affinity: &lb.Affinity{ClientIPTimeoutS: 86400},
				Scope: &lb.Scope{IfaceIDs: []string{"vm1", "vm2"}, Labels: map[string]string{"tenant": "a"}, Hosts: []string{"h1"}},
				Ports: []lb.PortSpec{{Protocol: "sctp", Port: 9000}},
				Members: []lb.Member{{IP: "fd00::12", Port: 9000, Weight: intp(lb.DefaultWeight), State: lb.StateActive},
					{IP: "fd00::12", Port: 9001, Weight: intp(lb.DefaultWeight), State: lb.StateActive}}},
		},
		{
			name: "least connections: weighted and global are the defaults",
			in: lb.Group{Name: "lc", VIP: "10.96.0.21", Algorithm: lb.AlgorithmLeastConnections, LoadView: lb.LoadViewGlobal,
				Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}},
			want: lb.Group{Name: "lc", VIP: "10.96.0.21", Algorithm: lb.AlgorithmLeastConnections, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, Members: []lb.Member{}},
		},
		{
			name: "least connections, local",
			in: lb.Group{Name: "lc", VIP: "10.96.0.21", Algorithm: lb.AlgorithmLeastConnections, LoadView: lb.LoadViewLocal,
				Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}},
			want: lb.Group{Name: "lc", VIP: "10.96.0.21", Algorithm: lb.AlgorithmLeastConnections, LoadView: lb.LoadViewLocal,
				Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, Members: []lb.Member{}},
		},
		{
			name: "weighted is the default",
			in:   lb.Group{Name: "w", VIP: "10.96.0.22", Algorithm: lb.AlgorithmWeighted, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}},
			want: lb.Group{Name: "w", VIP: "10.96.0.22", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, Members: []lb.Member{}},
		},
		{
			name: "health check, durations as Go writes them",
			in: lb.Group{Name: "hc", VIP: "10.96.0.23", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}},
				Members:     []lb.Member{{IP: "10.0.0.1", HealthCheckPort: 9000}},
				HealthCheck: &lb.HealthCheck{Type: "http", Interval: "1500ms", FastInterval: "0.25s", Timeout: "0.5s", Rise: 3, Path: "/healthz", Expect: "200", Hold: "60s"}},
			want: lb.Group{Name: "hc", VIP: "10.96.0.23", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}},
				Members:     []lb.Member{{IP: "10.0.0.1", HealthCheckPort: 9000, Weight: &w100, State: "active"}},
				HealthCheck: &lb.HealthCheck{Type: "http", Interval: "1.5s", FastInterval: "250ms", Timeout: "500ms", Rise: 3, Path: "/healthz", Expect: "200", Hold: "1m0s"}},
		},
		{
			name: "dsr, no members",
			in:   lb.Group{Name: "empty", VIP: "10.96.0.20", Mode: lb.ModeDSR, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}},
			want: lb.Group{Name: "empty", VIP: "10.96.0.20", Mode: lb.ModeDSR, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, Members: []lb.Member{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.in.Validate())
			rows := ToRows(tt.in)
			assert.Len(t, rows.Group.Ports, len(tt.in.Ports), "the group refers to each port row")
			assert.Len(t, rows.Group.Members, len(tt.in.Members), "and to each member row")
			got := FromRows(rows)
			assert.Equal(t, tt.want, got)
			again := FromRows(ToRows(got))
			assert.Equal(t, got.Fingerprint(), again.Fingerprint(), "a second round trip changes nothing")
		})
	}
}

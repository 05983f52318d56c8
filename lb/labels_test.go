package lb

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestLabels: ports and members as the statistics name them, the same on
// the agent (from checked groups) and the controller (from documents).
func TestLabels(t *testing.T) {
	g := Group{Name: "web", VIP: "10.96.0.10", Ports: []PortSpec{{Protocol: "TCP", Port: 80}},
		Members: []Member{{IP: "10.0.0.11"}, {IP: "::ffff:10.0.0.12", Port: 8080}, {IP: "10.0.0.13", Port: 9090}}}
	assert.Equal(t, "tcp/80", PortLabel(g.Ports[0]))
	assert.Equal(t, []string{"10.0.0.11", "10.0.0.12:8080", "10.0.0.13:9090"}, g.MemberLabels())
	assert.Equal(t, "[fd00::13]:9090", MemberLabel(netip.MustParseAddr("fd00::13"), 9090))
	c, err := Check(g)
	if assert.NoError(t, err) {
		for i := range g.Members {
			assert.Equal(t, g.MemberLabels()[i], MemberLabel(c.MemberAddr(i), c.Members[i].Port))
		}
	}
}

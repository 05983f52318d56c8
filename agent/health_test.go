package agent

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

func TestHealthOverlay(t *testing.T) {
	var got []lb.Checked
	h := newHealthOverlay(func(gs []lb.Checked, _ uint64) { got = gs }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	states := func() []string {
		var s []string
		for _, m := range got[0].Members {
			s = append(s, m.StateOf())
		}
		return s
	}
	gs, err := lb.CheckAll([]lb.Group{
		{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, HealthCheck: &lb.HealthCheck{Type: "tcp"},
			Members: []lb.Member{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}, {IP: "10.0.0.3", State: lb.StateDraining}}},
		{Name: "plain", VIP: "10.96.0.11", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, Members: []lb.Member{{IP: "10.0.0.1"}}},
	})
	require.NoError(t, err)
	h.setGroups(gs, 7)
	assert.Equal(t, []string{"active", "active", "draining"}, states(), "no health sent yet: as the document says")

	line := func(full, settling bool, hs ...string) *wire.HealthLine {
		l := &wire.HealthLine{Full: full, Settling: settling}
		for i := 0; i < len(hs); i += 2 {
			l.Health = append(l.Health, wire.MemberHealth{Group: "web", Member: hs[i], State: hs[i+1]})
		}
		return l
	}
	h.setHealth(line(true, false, "10.0.0.1", "up", "10.0.0.2", "unknown", "10.0.0.3", "down"))
	assert.Equal(t, []string{"active", "disabled", "draining"}, states(), "unknown takes nothing new; draining stays draining")
	assert.Same(t, &gs[1].Group, &got[1].Group, "a group without health check passes as it is")
	assert.Equal(t, 1, h.outCount())

	h.setHealth(line(false, false, "10.0.0.1", "down", "10.0.0.2", "up"))
	assert.Equal(t, []string{"disabled", "active", "draining"}, states())

	// A restarted controller that does not know yet changes nothing.
	h.setHealth(line(true, true, "10.0.0.1", "unknown", "10.0.0.2", "unknown", "10.0.0.3", "unknown"))
	assert.Equal(t, []string{"disabled", "active", "draining"}, states())
	h.setHealth(line(false, true, "10.0.0.1", "up"))
	assert.Equal(t, []string{"active", "active", "draining"}, states())

	held := line(false, false, "10.0.0.2", "held")
	h.setHealth(held)
	assert.Equal(t, []string{"active", "disabled", "draining"}, states())
	assert.Equal(t, "active", gs[0].Members[1].StateOf(), "the delivered document is never changed")
}

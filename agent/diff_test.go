package agent

import (
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

// TestDiffAgainstInstalled walks the installed state through group sets
// and checks what each diff sends and what it leaves recorded as installed.
func TestDiffAgainstInstalled(t *testing.T) {
	group := func(i, weight int) lb.Group {
		return lb.Group{Name: fmt.Sprintf("g%d", i), VIP: fmt.Sprintf("10.96.0.%d", i),
			Ports:   []lb.PortSpec{{Protocol: "tcp", Port: 80}},
			Members: []lb.Member{{IP: fmt.Sprintf("10.0.%d.1", i), MAC: "02:00:00:00:00:01", Weight: &weight}, {IP: fmt.Sprintf("10.0.%d.2", i), MAC: "02:00:00:00:00:02"}}}
	}
	cfg := pipeline.Config{Zone: lb.DefaultZone, MAC: net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}}
	flows := map[string]*installed{}
	commits := map[pipeline.SetKey]*installedCommits{}
	groups := map[uint32]*ofctrl.Group{}
	var gen uint64
	steps := []struct {
		name   string
		groups []lb.Group
		want   func(t *testing.T, st diffStats, before diffStats)
	}{
		{"three groups from nothing", []lb.Group{group(1, 100), group(2, 100), group(3, 100)}, func(t *testing.T, st, _ diffStats) {
			assert.Equal(t, 1, st.groupAdd, "one select group: the three deal their slots alike")
			assert.Positive(t, st.flowAdd)
			assert.Zero(t, st.flowDel+st.groupDel+st.flowMod+st.groupMod)
		}},
		{"same again: nothing", []lb.Group{group(1, 100), group(2, 100), group(3, 100)}, func(t *testing.T, st, _ diffStats) {
			assert.Zero(t, st.total())
		}},
		{"one weight: its own select group, and its flow sends there", []lb.Group{group(1, 100), group(2, 300), group(3, 100)}, func(t *testing.T, st, _ diffStats) {
			assert.Equal(t, diffStats{groupAdd: 1, flowMod: 1}, st)
		}},
		{"a group removed: its flows and group deleted", []lb.Group{group(1, 100), group(3, 100)}, func(t *testing.T, st, _ diffStats) {
			assert.Equal(t, 1, st.groupDel)
			assert.Positive(t, st.flowDel)
			assert.Zero(t, st.flowAdd+st.groupAdd)
		}},
		{"all removed", nil, func(t *testing.T, st, _ diffStats) {
			assert.Equal(t, 1, st.groupDel)
			assert.Empty(t, groups)
			for _, f := range flows {
				assert.Zero(t, f.flow.Cookie>>24&0xffffff, "only flows of no group stay: %s", f.flow)
			}
		}},
	}
	comp := pipeline.NewCompiler()
	var first diffStats
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			checked, err := lb.CheckAll(s.groups)
			require.NoError(t, err)
			out, err := comp.Compile(pipeline.Input{Config: cfg, Groups: checked})
			require.NoError(t, err)
			gen++
			had := len(flows) + commitCount(commits)
			mods, st := diff(flows, commits, groups, out, gen)
			assert.Equal(t, st.flowDel, had+st.flowAdd-len(flows)-commitCount(commits), "deleted flows left the installed state")
			assert.Len(t, mods, st.total())
			if i == 0 {
				first = st
			}
			s.want(t, st, first)
			assert.Len(t, groups, len(out.Groups), "installed groups are the output's")
			assert.Len(t, flows, len(out.Flows), "installed flows are the output's")
			assert.Len(t, commits, len(out.Commits), "installed commits are the output's")
		})
	}
}

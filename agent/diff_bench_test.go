package agent

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

// BenchmarkCompileAndDiffOneMember is the agent's reconcile without the
// switch: compile 10,000 VIPs x 10 members after one weight changed, and
// diff against what is installed.
func BenchmarkCompileAndDiffOneMember(b *testing.B) {
	groups := make([]lb.Group, 10000)
	for i := range groups {
		g := lb.Group{Name: fmt.Sprintf("g%d", i), VIP: fmt.Sprintf("10.%d.%d.%d", 96+i/65536, i/256%256, i%256),
			Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}}}
		for k := 0; k < 10; k++ {
			m := i*10 + k
			g.Members = append(g.Members, lb.Member{IP: fmt.Sprintf("10.%d.%d.%d", 128+m/65536, m/256%256, m%256), MAC: fmt.Sprintf("02:00:00:00:%02x:01", k)})
		}
		groups[i] = g
	}
	cfg := pipeline.Config{Zone: lb.DefaultZone, MAC: net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}}
	comp := pipeline.NewCompiler()
	flows := map[string]*installed{}
	commits := map[pipeline.SetKey]*installedCommits{}
	ofGroups := map[uint32]*ofctrl.Group{}
	var gen uint64
	var changed map[string]bool // nil the first time: everything is new
	checked, err := lb.CheckAll(groups)
	if err != nil {
		b.Fatal(err)
	}
	step := func() {
		out, err := comp.Compile(pipeline.Input{Config: cfg, Groups: checked, Validated: true, Changed: changed})
		if err != nil {
			b.Fatal(err)
		}
		gen++
		diff(flows, commits, ofGroups, out, gen)
	}
	start := time.Now()
	step()
	b.Logf("first compile and diff (everything new): %v", time.Since(start))
	w := 1
	changed = map[string]bool{groups[5].Name: true}
	for b.Loop() {
		w++
		groups[5].Members[3].Weight = &w
		// The source checks the changed group alone.
		if checked[5], err = lb.Check(groups[5]); err != nil {
			b.Fatal(err)
		}
		step()
	}
}

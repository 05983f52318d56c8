package pipeline

import (
	"fmt"
	"testing"

	"github.com/ovs-dlb/dlb/lb"
)

// bigGroups is 10,000 VIPs of 10 members each.
func bigGroups(n, members int) []lb.Group {
	groups := make([]lb.Group, n)
	for i := range groups {
		g := lb.Group{Name: fmt.Sprintf("g%d", i), VIP: fmt.Sprintf("10.%d.%d.%d", 96+i/65536, i/256%256, i%256),
			Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80, TargetPort: 8080}}}
		for k := 0; k < members; k++ {
			m := i*members + k
			g.Members = append(g.Members, lb.Member{IP: fmt.Sprintf("10.%d.%d.%d", 128+m/65536, m/256%256, m%256), MAC: fmt.Sprintf("02:00:00:00:%02x:01", k)})
		}
		groups[i] = g
	}
	return groups
}

func BenchmarkCompile10kVIPs(b *testing.B) {
	groups := bigGroups(10000, 10)
	cfg := testConfig
	cfg.Buckets = 0
	for b.Loop() {
		out, err := Compile(Input{Config: cfg, Groups: checked(b, groups...)})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(out.Flows)), "flows")
	}
}

// BenchmarkRecompileOneMember: a compile of 10,000 VIPs x 10 members after
// one member's weight changed, against its own previous output.
func BenchmarkRecompileOneMember(b *testing.B) {
	groups := bigGroups(10000, 10)
	cfg := testConfig
	cfg.Buckets = 0
	k := NewCompiler()
	cs := checked(b, groups...)
	_, err := k.Compile(Input{Config: cfg, Groups: cs})
	if err != nil {
		b.Fatal(err)
	}
	w := 1
	for b.Loop() {
		w++
		groups[5].Members[3].Weight = &w
		// The source checks the changed group alone; Compile the set.
		if cs[5], err = lb.Check(groups[5]); err != nil {
			b.Fatal(err)
		}
		if _, err = k.Compile(Input{Config: cfg, Groups: cs}); err != nil {
			b.Fatal(err)
		}
	}
}

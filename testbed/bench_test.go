package testbed

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkUpDownThreeHosts times bringing the three-host example up and
// down again.
func BenchmarkUpDownThreeHosts(b *testing.B) {
	Require(b)
	bin, err := ServiceBinary()
	require.NoError(b, err)
	topo, err := Example("three-hosts")
	require.NoError(b, err)
	ctx := context.Background()
	var ups []time.Duration
	for b.Loop() {
		start := time.Now()
		tb, err := Up(ctx, topo, Options{Name: "bench-" + newPrefix(), ServiceBinary: bin, owner: ownerTest})
		require.NoError(b, err)
		ups = append(ups, time.Since(start))
		require.NoError(b, tb.Down(ctx))
	}
	slices.Sort(ups)
	b.ReportMetric(ups[len(ups)/2].Seconds(), "median-up-s")
}

// BenchmarkCrossHostTCP compares new TCP connections per second between
// VMs on different hosts (through both bridges and the underlay) with VMs
// on the same host, side by side in one run: the ratio is what the
// underlay costs. Medians over the iterations.
func BenchmarkCrossHostTCP(b *testing.B) {
	tb := Start(b, mustExample(b, "three-hosts"))
	ctx := context.Background()
	var same, cross []float64
	for b.Loop() {
		for _, c := range []struct {
			target string
			out    *[]float64
		}{{"10.0.0.11:8080", &same}, {"10.0.0.12:8080", &cross}} {
			res, err := tb.Load(ctx, LoadSpec{VM: "c1", Target: c.target, Count: 1000, Concurrency: 8})
			require.NoError(b, err)
			require.Zero(b, res.Failed())
			*c.out = append(*c.out, res.RatePerSecond)
		}
	}
	ms, mc := median(same), median(cross)
	b.ReportMetric(ms, "same-host-conn/s")
	b.ReportMetric(mc, "cross-host-conn/s")
	b.ReportMetric(mc/ms, "cross/same")
}

func mustExample(b *testing.B, name string) *Topology {
	topo, err := Example(name)
	require.NoError(b, err)
	return topo
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

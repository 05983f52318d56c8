package ofctrl_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	. "github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/testbed"
)

// benchTable builds what a large DLB deployment installs: nGroups select
// groups of nBuckets conntrack/NAT buckets and nFlows VIP flows spread
// over them.
func benchTable(nFlows, nGroups, nBuckets int) ([]*Group, []*Flow) {
	groups := make([]*Group, nGroups)
	for g := range groups {
		grp := NewGroup(uint32(g+1), GroupSelect).WithSelection("dp_hash", 0)
		for k := 0; k < nBuckets; k++ {
			dcn := netip.AddrFrom4([4]byte{10, 1, byte(g >> 4), byte(g&0xf<<4 | k)})
			grp.Bucket(uint32(k), 100, commit(65000, 3, nat(dcn, 8080)))
		}
		groups[g] = grp
	}
	flows := make([]*Flow, nFlows)
	for i := range flows {
		vip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		flows[i] = NewFlow(2, 100).Cookie(0x1).
			Match(CTState(CTNew|CTTrk, CTNew|CTTrk), TCP, IPDst(Host(vip)), DstPort(ProtoTCP, uint16(80+i>>16))).
			Actions(ToGroup(uint32(i%nGroups + 1))).Done()
	}
	return groups, flows
}

// BenchmarkInstallVsOVSOfctl installs 100,000 flows and 1,000 select
// groups of 10 buckets into an empty bridge, through ofctrl bundles and
// through "ovs-ofctl -O OpenFlow15 --bundle add-groups/add-flows" from
// files, alternately on the same bridge, and reports the medians and the
// ratio of rates (ofctrl/ovs-ofctl: above 1 means ofctrl is faster).
func BenchmarkInstallVsOVSOfctl(b *testing.B) {
	const nFlows, nGroups, nBuckets = 100_000, 1_000, 10
	topo, err := testbed.Example("one-host")
	require.NoError(b, err)
	tb := testbed.Start(b, topo)
	h := tb.Host("h1")
	ctx := context.Background()
	conn, err := Dial(ctx, h.OpenFlowTarget(), ConnOptions{})
	require.NoError(b, err)
	defer conn.Close()

	groups, flows := benchTable(nFlows, nGroups, nBuckets)
	dir := b.TempDir()
	groupFile, flowFile := filepath.Join(dir, "groups.txt"), filepath.Join(dir, "flows.txt")
	require.NoError(b, os.WriteFile(groupFile, []byte(strings.Join(strs(groups), "\n")+"\n"), 0o644))
	require.NoError(b, os.WriteFile(flowFile, []byte(strings.Join(strs(flows), "\n")+"\n"), 0o644))

	empty := func() {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		require.NoError(b, conn.Apply(ctx, DeleteFlows(TableAll, 0, 0), DeleteGroup(GroupIDAll)))
	}
	check := func() {
		fs, err := conn.DumpFlows(ctx, 2, 0, 0)
		require.NoError(b, err)
		require.Len(b, fs, nFlows)
	}
	viaOfctrl := func() time.Duration {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		start := time.Now()
		gm := make([]Mod, len(groups))
		for i, g := range groups {
			gm[i] = g.Add()
		}
		require.NoError(b, conn.Apply(ctx, gm...))
		fm := make([]Mod, len(flows))
		for i, f := range flows {
			fm[i] = f.Add()
		}
		require.NoError(b, conn.Apply(ctx, fm...))
		return time.Since(start)
	}
	viaOVSOfctl := func() time.Duration {
		start := time.Now()
		for _, args := range [][]string{{"add-groups", groupFile}, {"add-flows", flowFile}} {
			out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "--bundle", args[0], h.OpenFlowTarget(), args[1]).CombinedOutput()
			require.NoError(b, err, string(out))
		}
		return time.Since(start)
	}

	var ours, theirs []time.Duration
	b.ResetTimer()
	for b.Loop() {
		empty()
		ours = append(ours, viaOfctrl())
		check()
		empty()
		theirs = append(theirs, viaOVSOfctl())
		check()
	}
	b.StopTimer()
	mo, mt := medianDur(ours), medianDur(theirs)
	b.ReportMetric(mo.Seconds(), "ofctrl-s")
	b.ReportMetric(mt.Seconds(), "ovs-ofctl-s")
	b.ReportMetric(mt.Seconds()/mo.Seconds(), "rate-ratio(ofctrl/ovs-ofctl)")
	fmt.Printf("install %d flows + %d groups x %d buckets, median of %d runs each: ofctrl %.2fs, ovs-ofctl --bundle %.2fs, ofctrl rate = %.2fx ovs-ofctl's\n",
		nFlows, nGroups, nBuckets, len(ours), mo.Seconds(), mt.Seconds(), mt.Seconds()/mo.Seconds())
}

func medianDur(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

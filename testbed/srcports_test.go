package testbed

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReserveSourcesNeverRepeatsUntilExhausted(t *testing.T) {
	vm := &VM{VMSpec: VMSpec{Name: "c1", IP: "10.0.0.1/24", IP6: "fd00::1/64",
		ExtraIPs: []string{"10.0.0.101/24", "fd00::101/64"}, Services: []string{"tcp:8080"}}, RunDir: t.TempDir()}
	seen := map[netip.AddrPort]bool{}
	total := 0
	for _, n := range []int{1, 1000, 7, 30000} {
		plan, err := vm.reserveSources(false, n)
		require.NoError(t, err)
		assert.False(t, plan.wrapped)
		assert.Len(t, plan.addrs, 2, "IPv4 primary and extra only")
		for i := 0; i < n; i++ {
			p := plan.pair(i)
			require.False(t, seen[p], "pair %s reused after %d", p, total)
			require.True(t, p.Addr().Is4())
			require.NotEqual(t, uint16(8080), p.Port(), "a service port is never a source")
			require.True(t, p.Port() >= firstSourcePort && p.Port() <= lastSourcePort)
			seen[p] = true
			total++
		}
	}
	capacity := 2 * (lastSourcePort - firstSourcePort + 1 - 1)
	_, err := vm.reserveSources(false, capacity+1)
	require.ErrorContains(t, err, "add extra_ips")
	plan, err := vm.reserveSources(false, capacity-total+1)
	require.NoError(t, err)
	assert.True(t, plan.wrapped, "the cursor went round")

	plan, err = vm.reserveSources(true, 10)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("fd00::1"), plan.pair(0).Addr())
	assert.Equal(t, netip.MustParseAddr("fd00::101"), plan.pair(1).Addr())

	_, err = (&VM{VMSpec: VMSpec{Name: "c2", IP: "10.0.0.2/24"}, RunDir: t.TempDir()}).reserveSources(true, 1)
	require.ErrorContains(t, err, "no IPv6 address")
}

package pipeline

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// TestCommitsReadBack: every commit flow the compiler makes reads back as
// the same commit (what the agent does with the flows it dumps), and other
// flows do not.
func TestCommitsReadBack(t *testing.T) {
	for _, name := range []string{"web-tcp", "dns-udp-ipv6", "dsr", "affinity", "scopes"} {
		groups := goldenGroups(t, name)
		out, err := Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
		require.NoError(t, err)
		require.NotEmpty(t, out.Commits, name)
		for _, set := range out.Commits {
			for i, m := range set.Members {
				head, got, ok := CommitsOf(set.Flow(i), testConfig.Table(TableMember))
				require.True(t, ok, "%s: %s", name, set.Flow(i))
				assert.True(t, head.SameHeader(set), "%s: %s", name, set.Flow(i))
				assert.Equal(t, m.Index, got.Index)
				assert.Equal(t, m.Action.String(), got.Action.String())
			}
		}
		for _, f := range out.Flows {
			_, _, ok := CommitsOf(f, testConfig.Table(TableMember))
			assert.False(t, ok, "not a commit: %s", f)
		}
	}
	other := of.NewFlow(testConfig.Table(TableMember), 100).Cookie(Cookie(KindMember, 1, 1)).
		Match(of.RegEq(RegService, 1), of.RegEq(RegMember, 1), of.L4(false, of.ProtoTCP)).
		Actions(of.CTCommitNAT{Dst: netip.MustParseAddrPort("10.0.0.1:80")}).Goto(3).Done()
	_, _, ok := CommitsOf(other, testConfig.Table(TableMember))
	assert.False(t, ok, "a goto makes it another flow")
}

// goldenGroups are the groups of a golden test case.
func goldenGroups(t *testing.T, name string) []lb.Group {
	t.Helper()
	for _, tt := range goldenCases {
		if tt.name == name {
			groups, err := lb.ParseFile([]byte(tt.file))
			require.NoError(t, err)
			return groups
		}
	}
	t.Fatalf("no golden case %s", name)
	return nil
}

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
				head, got, ok := CommitsOf(set.Flow(i), testConfig)
				require.True(t, ok, "%s: %s", name, set.Flow(i))
				assert.True(t, head.SameHeader(set), "%s: %s", name, set.Flow(i))
				assert.Equal(t, m.Index, got.Index)
				if set.Role == RoleCommit {
					assert.Equal(t, m.Action.String(), got.Action.String())
				}
			}
		}
		for _, f := range out.Flows {
			_, _, ok := CommitsOf(f, testConfig)
			assert.False(t, ok, "not a commit: %s", f)
		}
	}
	other := of.NewFlow(testConfig.Table(TableMember), 100).Cookie(Cookie(KindMember, 1, 1)).
		Match(of.RegEq(RegService, 1), of.RegEq(RegMember, 1), of.L4(false, of.ProtoTCP)).
		Actions(of.CTCommitNAT{Dst: netip.MustParseAddrPort("10.0.0.1:80")}).Goto(3).Done()
	_, _, ok := CommitsOf(other, testConfig)
	assert.False(t, ok, "a goto makes it another flow")
	count := of.NewFlow(testConfig.Table(TableCount), 100).Cookie(Cookie(KindCountTo, 1, 1)).
		Match(of.CTState(of.CTTrk, of.CTRpl|of.CTTrk), of.CTLabel(MemberLabel(PortID(1, 0), 3, nil).Bytes(), labelMemberMask.Bytes()))
	_, m, ok := CommitsOf(count.Done(), testConfig)
	assert.True(t, ok, "a counting flow")
	assert.Equal(t, uint16(3), m.Index)
	_, _, ok = CommitsOf(count.Actions(of.Normal()).Done(), testConfig)
	assert.False(t, ok, "an action makes it another flow")
}

// TestMemberLabel: a label reads back as the port and member index it was
// made of, whatever the MAC; a label without them does not.
func TestMemberLabel(t *testing.T) {
	for _, tc := range []struct {
		port  uint32
		index uint16
	}{{PortID(1, 0), 1}, {PortID(0xfffff, 255), lb.MaxMembers}, {PortID(0x12345, 3), 0x8000}} {
		for _, mac := range [][]byte{nil, {0x02, 0, 0x0a, 0, 0, 0x0b}} {
			l := MemberLabel(tc.port, tc.index, mac)
			port, index, ok := LabelMember(l)
			require.True(t, ok)
			assert.Equal(t, tc.port, port)
			assert.Equal(t, tc.index, index)
			assert.Equal(t, PortCookie(KindMember, port), Cookie(KindMember, tc.port>>8&0xfffff, uint16(tc.port&0xff)+1))
		}
	}
	_, _, ok := LabelMember(of.Label128{Lo: 0x2000a00000b})
	assert.False(t, ok, "a MAC alone")
	_, _, ok = LabelMember(of.Label128{Hi: uint64(PortID(1, 0))})
	assert.False(t, ok, "no member index")
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

// TestNoByteCounts: without byte counts, no counting flows; the commits
// are the same.
func TestNoByteCounts(t *testing.T) {
	groups := goldenGroups(t, "web-tcp")
	with, err := Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
	require.NoError(t, err)
	cfg := testConfig
	cfg.NoByteCounts = true
	without, err := Compile(Input{Config: cfg, Groups: checked(t, groups...), Ports: testPorts})
	require.NoError(t, err)
	roles := func(o *Output) map[Role]int {
		n := map[Role]int{}
		for _, set := range o.Commits {
			n[set.Role] += len(set.Members)
		}
		return n
	}
	w, wo := roles(with), roles(without)
	assert.Positive(t, w[RoleCountTo])
	assert.Equal(t, w[RoleCountTo], w[RoleCountFrom])
	assert.Equal(t, map[Role]int{RoleCommit: w[RoleCommit]}, wo)
}

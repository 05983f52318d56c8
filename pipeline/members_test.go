package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
)

// TestCommitMemberNamesEachCommit: every commit flow of the last compile
// names its group, VIP port and member (the member statistics' labels),
// also after a member left and a new one took its index; other flows and
// indexes name nothing.
func TestCommitMemberNamesEachCommit(t *testing.T) {
	g := lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}, {Protocol: "udp", Port: 53, TargetPort: 5353}},
		Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12"}, {IP: "10.0.0.13"}}}
	k := NewCompiler()
	check := func(g lb.Group) map[uint32]string {
		out, err := k.Compile(Input{Config: testConfig, Groups: checked(t, g), Ports: testPorts})
		require.NoError(t, err)
		byIndex := map[uint32]string{}
		n := 0
		for _, f := range out.AllFlows() {
			if CookieKind(f.Cookie) != KindMember {
				continue
			}
			idx, _ := regOf(f, RegMember)
			dst, ok := natTarget(f.Actions[0])
			require.True(t, ok, "%s", f)
			name, port, m, ok := k.CommitMember(f.Cookie, uint16(idx))
			require.True(t, ok, "%s", f)
			assert.Equal(t, g.Name, name)
			assert.Equal(t, int(f.Cookie&0xffff)-1, port)
			assert.Equal(t, dst.Addr().String(), g.Members[m].IP, "%s", f)
			byIndex[idx] = g.Members[m].IP
			n++
		}
		assert.Equal(t, len(g.Ports)*len(g.Members), n)
		return byIndex
	}
	before := check(g)
	g.Members = []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.14"}, {IP: "10.0.0.13"}}
	after := check(g)
	assert.Equal(t, "10.0.0.12", before[2])
	assert.Equal(t, "10.0.0.14", after[2], "the new member took the index of the one that left")
	id := ServiceIDs([]string{"web"})["web"]
	for _, tc := range []struct {
		cookie uint64
		index  uint16
	}{{Cookie(KindVIP, id, 1), 1}, {Cookie(KindMember, id, 1), 9}, {Cookie(KindMember, id+1, 1), 1}, {Cookie(KindMember, id, 0), 1}} {
		_, _, _, ok := k.CommitMember(tc.cookie, tc.index)
		assert.False(t, ok, "%#x index %d", tc.cookie, tc.index)
	}
}

package lb

import (
	"encoding/json"

	"fmt"
	"net"
	"net/netip"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckParsesOnce: a checked group carries its addresses parsed
// (unmapped) and its MACs; a bad group yields its problems and no form.
func TestCheckParsesOnce(t *testing.T) {
	g := Group{Name: "web", VIP: "::ffff:10.96.0.10", Ports: []PortSpec{{Protocol: "tcp", Port: 80}},
		Members: []Member{{IP: "10.0.0.1", MAC: "02:00:00:00:00:01"}, {IP: "::ffff:10.0.0.2"}}}
	c, err := Check(g)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("10.96.0.10"), c.VIPAddr)
	assert.Equal(t, netip.MustParseAddr("10.0.0.1"), c.MemberAddr(0))
	assert.Equal(t, netip.MustParseAddr("10.0.0.2"), c.MemberAddr(1))
	assert.Equal(t, net.HardwareAddr{2, 0, 0, 0, 0, 1}, c.MAC(0))
	assert.Nil(t, c.MAC(1))
	assert.Equal(t, g.Fingerprint(), c.Fingerprint(), "the document is kept as given")

	noMACs, err := Check(Group{Name: "x", VIP: "10.96.0.1", Ports: g.Ports, Members: []Member{{IP: "10.0.0.1"}}})
	require.NoError(t, err)
	assert.Nil(t, noMACs.MAC(0))

	bad := g
	bad.Members = []Member{{IP: "nope"}}
	_, err = Check(bad)
	assert.ErrorContains(t, err, "members[0].ip")
}

// TestCheckAllAndCheckSet: the checks across groups are the same whether
// the set is checked whole or group by group and then as a set, and a
// SetChecker that checked other sets before (its indexes reused) says the
// same as CheckSet.
func TestCheckAllAndCheckSet(t *testing.T) {
	a := Group{Name: "a", VIP: "10.96.0.10", Ports: []PortSpec{{Protocol: "tcp", Port: 80}}}
	b := a
	b.Name = "b"
	var checker SetChecker
	cases := []struct {
		name   string
		groups []Group
		want   string
	}{
		{"distinct", []Group{a, {Name: "c", VIP: "10.96.0.11", Ports: a.Ports}}, ""},
		{"same VIP port", []Group{a, b}, `groups[1].ports[0]: tcp 10.96.0.10:80 is already served by group "a"`},
		{"same name", []Group{a, {Name: "a", VIP: "10.96.0.11", Ports: a.Ports}}, `groups[1].name: "a" is already the name of groups[0]`},
	}
	for round, tc := range append(cases, cases...) {
		t.Run(fmt.Sprintf("%s/%d", tc.name, round), func(t *testing.T) {
			all, err := CheckAll(tc.groups)
			var set []Checked
			for _, g := range tc.groups {
				c, err := Check(g)
				require.NoError(t, err)
				set = append(set, c)
			}
			setErr := CheckSet(set)
			assert.Equal(t, fmt.Sprint(setErr), fmt.Sprint(checker.Check(set)), "SetChecker")
			if tc.want == "" {
				require.NoError(t, err)
				require.NoError(t, setErr)
				assert.Equal(t, set, all)
				return
			}
			assert.EqualError(t, err, "invalid: "+tc.want)
			assert.EqualError(t, setErr, "invalid: "+tc.want)
		})
	}
}

// TestCheckedEncodesAsItsGroup: JSON and YAML see the group as given, not
// the parsed forms beside it.
func TestCheckedEncodesAsItsGroup(t *testing.T) {
	g := Group{Name: "web", VIP: "10.96.0.10", Ports: []PortSpec{{Protocol: "tcp", Port: 80}}, Members: []Member{{IP: "10.0.0.1"}}}
	c, err := Check(g)
	require.NoError(t, err)
	for _, enc := range []struct {
		name    string
		marshal func(any) ([]byte, error)
	}{{"json", json.Marshal}, {"yaml", yaml.Marshal}} {
		want, err := enc.marshal(g)
		require.NoError(t, err)
		got, err := enc.marshal(c)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), enc.name)
		got, err = enc.marshal([]Checked{c})
		require.NoError(t, err)
		wantList, err := enc.marshal([]Group{g})
		require.NoError(t, err)
		assert.Equal(t, string(wantList), string(got), enc.name)
	}
}

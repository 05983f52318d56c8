package lb

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDeparted(t *testing.T) {
	web := func(vip string, members ...Member) Group {
		return Group{Name: "web", VIP: vip, Ports: []PortSpec{{Protocol: "udp", Port: 53, TargetPort: 5353}}, Members: members}
	}
	m := func(ip string) Member { return Member{IP: ip} }
	gone := func(vip, member string, target uint16) Departure {
		return Departure{Group: "web", VIP: netip.MustParseAddr(vip), Proto: 17, Port: 53, Member: netip.MustParseAddr(member), TargetPort: target}
	}
	tests := []struct {
		name     string
		old, new []Group
		want     []Departure
	}{
		{"nothing changed", []Group{web("10.96.0.1", m("10.0.0.1"))}, []Group{web("10.96.0.1", m("10.0.0.1"))}, nil},
		{"a member added", []Group{web("10.96.0.1", m("10.0.0.1"))}, []Group{web("10.96.0.1", m("10.0.0.1"), m("10.0.0.2"))}, nil},
		{"a member removed", []Group{web("10.96.0.1", m("10.0.0.1"), m("10.0.0.2"))}, []Group{web("10.96.0.1", m("10.0.0.1"))},
			[]Departure{gone("10.96.0.1", "10.0.0.2", 5353)}},
		{"draining is not departing", []Group{web("10.96.0.1", m("10.0.0.1"))}, []Group{web("10.96.0.1", Member{IP: "10.0.0.1", State: StateDraining})}, nil},
		{"a member's port changed", []Group{web("10.96.0.1", m("10.0.0.1"))}, []Group{web("10.96.0.1", Member{IP: "10.0.0.1", Port: 6000})},
			[]Departure{gone("10.96.0.1", "10.0.0.1", 5353)}},
		{"the group removed", []Group{web("10.96.0.1", m("10.0.0.1"), m("10.0.0.2"))}, nil,
			[]Departure{gone("10.96.0.1", "10.0.0.1", 5353), gone("10.96.0.1", "10.0.0.2", 5353)}},
		{"the VIP moved", []Group{web("10.96.0.1", m("10.0.0.1"))}, []Group{web("10.96.0.2", m("10.0.0.1"))},
			[]Departure{gone("10.96.0.1", "10.0.0.1", 5353)}},
		{"IPv6", []Group{web("fd00::10", m("fd00::1"), m("fd00::2"))}, []Group{web("fd00::10", m("fd00::2"))},
			[]Departure{gone("fd00::10", "fd00::1", 5353)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Departed(mustCheck(t, tt.old), mustCheck(t, tt.new)))
		})
	}
}

func mustCheck(t *testing.T, groups []Group) []Checked {
	t.Helper()
	cs, err := CheckAll(groups)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

package pipeline

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProbeAnswers: each probe adds the flow that hands its answers to the
// agent, as ovs-ofctl prints it; a udp probe adds its ICMP errors' flow;
// probes that cannot be (no port, mixed families) add nothing.
func TestProbeAnswers(t *testing.T) {
	out, err := Compile(Input{Config: testConfig, Probes: []Probe{
		{OFPort: 3, Member: netip.MustParseAddr("10.0.0.11"), Source: netip.MustParseAddr("10.96.0.10"), Proto: 6, Port: 8080},
		{OFPort: 3, Member: netip.MustParseAddr("10.0.0.11"), Source: netip.MustParseAddr("10.96.0.10"), Proto: 6, Port: 8080},
		{OFPort: 4, Member: netip.MustParseAddr("fd00::12"), Source: netip.MustParseAddr("fd00::96"), Proto: 17, Port: 5353},
		{OFPort: 0, Member: netip.MustParseAddr("10.0.0.13"), Source: netip.MustParseAddr("10.96.0.10"), Proto: 6, Port: 80},
		{OFPort: 5, Member: netip.MustParseAddr("10.0.0.14"), Source: netip.MustParseAddr("fd00::96"), Proto: 6, Port: 80},
	}})
	require.NoError(t, err)
	var got []string
	for _, f := range out.Flows {
		if s := f.String(); strings.Contains(s, "cookie=0xdb0b") {
			got = append(got, s)
		}
	}
	assert.Equal(t, []string{
		"cookie=0xdb0b000000000000, priority=120,tcp,in_port=3,nw_src=10.0.0.11,nw_dst=10.96.0.10,tp_src=8080,tp_dst=0xf000/0xf000 actions=CONTROLLER:256",
		"cookie=0xdb0b000000000000, priority=120,udp6,in_port=4,ipv6_src=fd00::12,ipv6_dst=fd00::96,tp_src=5353,tp_dst=0xf000/0xf000 actions=CONTROLLER:256",
		"cookie=0xdb0b000000000000, priority=120,icmp6,in_port=4,ipv6_src=fd00::12,ipv6_dst=fd00::96,icmp_type=1 actions=CONTROLLER:256",
	}, got)
}

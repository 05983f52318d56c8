package main

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMemberSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ip   string
		port int
		// name is the member's name in the API's paths.
		name string
		err  string
	}{
		{in: "10.0.0.11", ip: "10.0.0.11", name: "10.0.0.11"},
		{in: "10.0.0.11:8080", ip: "10.0.0.11", port: 8080, name: "10.0.0.11:8080"},
		{in: "fd00::11", ip: "fd00::11", name: "fd00::11"},
		{in: "FD00:0::11", ip: "fd00::11", name: "fd00::11"},
		{in: "[fd00::11]:8080", ip: "fd00::11", port: 8080, name: "[fd00::11]:8080"},
		{in: "[fd00::11]", ip: "fd00::11", name: "fd00::11"},
		// Without brackets the last group is part of the address.
		{in: "fd00::11:8080", ip: "fd00::11:8080", name: "fd00::11:8080"},
		{in: "", err: "empty"},
		{in: "web", err: "not an IP address"},
		{in: "10.0.0.300", err: "not an IP address"},
		{in: "10.0.0.11:", err: "no port after the colon"},
		{in: "10.0.0.11:0", err: `"0" is not a port`},
		{in: "10.0.0.11:65536", err: `"65536" is not a port`},
		{in: "10.0.0.11:http", err: `"http" is not a port`},
		{in: "10.0.0.11:80:90", err: "not an IP address"},
		{in: "[fd00::11", err: "no closing ]"},
		{in: "[fd00::11]8080", err: "unexpected text after ]"},
		{in: "[fd00::11]:", err: "no port after the colon"},
		{in: "[10.0.0.11]:80", err: "brackets hold an IPv6 address"},
		{in: "fe80::1%eth0", err: "zone"},
		{in: "[fe80::1%eth0]:80", err: "zone"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			m, err := parseMemberSpec(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), "want IP, IPv4:PORT or [IPv6]:PORT")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, netip.MustParseAddr(tc.ip), m.IP)
			assert.Equal(t, tc.port, m.Port)
			assert.Equal(t, tc.name, m.String())
		})
	}
}

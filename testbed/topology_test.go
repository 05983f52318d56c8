package testbed

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTopologyExamples(t *testing.T) {
	for _, name := range []string{"one-host", "three-hosts"} {
		topo, err := Example(name)
		require.NoError(t, err, name)
		require.NotEmpty(t, topo.Hosts)
		for _, h := range topo.Hosts {
			for _, v := range h.VMs {
				for _, s := range v.Services {
					_, err := ParseService(s)
					assert.NoError(t, err)
				}
			}
		}
	}
	topo, err := Example("three-hosts")
	require.NoError(t, err)
	assert.Len(t, topo.Hosts, 3)
	v, host, ok := topo.VM("s2")
	require.True(t, ok)
	assert.Equal(t, "h2", host)
	assert.Equal(t, "10.0.0.12", v.Addr().String())
	assert.Equal(t, "fd00::12", v.Addr6().String())
	assert.Equal(t, "02:00:0a:00:00:0c", v.HardwareAddr())
	assert.Equal(t, []Service{{Proto: "tcp", Port: 8080}, {Proto: "udp", Port: 5353}}, v.ParsedServices())
}

func TestParseService(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "tcp:8080", want: "tcp:8080"},
		{in: "proxy:8081:10.96.0.60:8080", want: "proxy:8081:10.96.0.60:8080"},
		{in: "proxy:8081:[fd00::60]:8080", want: "proxy:8081:[fd00::60]:8080"},
		{in: "proxy:8081", err: "upstream"},
		{in: "udp:53:10.0.0.1:53", err: "only a proxy"},
		{in: "sctp:1", err: "not a service"},
		{in: "tcp:0", err: "port must be"},
		{in: "tcp:8082:delay=250ms", want: "tcp:8082:delay=250ms"},
		{in: "tcp:8082:delay=1s", want: "tcp:8082:delay=1s"},
		{in: "tcp:8082:delay=0s", err: "delay must be"},
		{in: "tcp:8082:delay=-1s", err: "delay must be"},
		{in: "tcp:8082:delay=2m", err: "delay must be"},
		{in: "tcp:8082:delay=soon", err: "delay must be"},
		{in: "tcp:8082:slow", err: "only option is delay"},
		{in: "udp:53:delay=1s", err: "only a proxy"},
	}
	for _, tt := range tests {
		s, err := ParseService(tt.in)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, s.String())
	}
}

func TestParseTopologyErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // each must appear in the error
	}{
		{"unknown key", `
hosts:
  - name: h1
    vms:
      - {name: c1, ip: 10.0.0.1/24, colour: red}
`, []string{"line 5", "colour"}},
		{"no hosts", `hosts: []`, []string{"hosts: at least one host"}},
		{"duplicate VM name", `
hosts:
  - name: h1
    vms:
      - {name: c1, ip: 10.0.0.1/24}
  - name: h2
    vms:
      - {name: c1, ip: 10.0.0.2/24}
`, []string{"line 8", "hosts[1].vms[0].name", `"c1" is already used by hosts[0].vms[0]`}},
		{"duplicate address", `
hosts:
  - name: h1
    vms:
      - {name: c1, ip: 10.0.0.1/24}
      - {name: c2, ip: 10.0.0.1/24}
`, []string{"line 6", "hosts[0].vms[1].ip", "10.0.0.1 is already used by hosts[0].vms[0].ip"}},
		{"bad prefix", `
hosts:
  - name: h1
    vms:
      - name: c1
        ip: 10.0.0.300/24
`, []string{"line 6", "hosts[0].vms[0].ip", `"10.0.0.300/24" is not an IPv4 address`}},
		{"missing prefix length", `
hosts: [{name: h1, vms: [{name: c1, ip: 10.0.0.1}]}]
`, []string{"hosts[0].vms[0].ip"}},
		{"network address", `
hosts: [{name: h1, vms: [{name: c1, ip: 10.0.0.0/24}]}]
`, []string{"host address inside a subnet"}},
		{"IPv4 in ip6", `
hosts: [{name: h1, vms: [{name: c1, ip: 10.0.0.1/24, ip6: 10.0.0.2/24}]}]
`, []string{"hosts[0].vms[0].ip6", "not an IPv6 address"}},
		{"bad service", `
hosts: [{name: h1, vms: [{name: s1, ip: 10.0.0.1/24, services: [tcp:8080, sctp:1, udp:0, tcp:8080]}]}]
`, []string{"services[1]", "services[2]", "services[3]: tcp:8080 is listed twice"}},
		{"bad MAC", `
hosts: [{name: h1, vms: [{name: c1, ip: 10.0.0.1/24, mac: "01:00:00:00:00:01"}, {name: c2, ip: 10.0.0.2/24, mac: zz}]}]
`, []string{"multicast", `"zz" is not a MAC`}},
		{"duplicate MAC", `
hosts: [{name: h1, vms: [{name: c1, ip: 10.0.0.1/24}, {name: c2, ip: 10.0.0.2/24, mac: "02:00:0a:00:00:01"}]}]
`, []string{"MAC 02:00:0a:00:00:01 is already used"}},
		{"reserved and bad names", `
hosts: [{name: H1, vms: [{name: uplink, ip: 10.0.0.1/24}, {name: averyveryverylongname, ip: 10.0.0.2/24}]}]
`, []string{"hosts[0].name", `"uplink" is reserved`, "averyveryverylongname"}},
		{"host and VM share a name", `
hosts: [{name: h1, vms: [{name: h1, ip: 10.0.0.1/24}]}]
`, []string{`"h1" is already used by hosts[0]`}},
		{"extra address clash", `
hosts: [{name: h1, vms: [{name: c1, ip: 10.0.0.1/24, extra_ips: [10.0.0.2/24]}, {name: c2, ip: 10.0.0.2/24}]}]
`, []string{"10.0.0.2 is already used by hosts[0].vms[0].extra_ips[0]"}},
		{"tenants sharing an address with derived MACs", `
hosts: [{name: h1, vms: [{name: s1, ip: 10.0.0.11/24}, {name: t1, ip: 10.0.0.11/24, tenant: b}]}]
`, []string{"hosts[0].vms[1].mac", "different tenants with the same address need a mac each"}},
		{"address clash within a tenant", `
hosts: [{name: h1, vms: [{name: s1, ip: 10.0.0.11/24, tenant: b, mac: "02:00:00:00:00:01"}, {name: t1, ip: 10.0.0.11/24, tenant: b, mac: "02:00:00:00:00:02"}]}]
`, []string{"hosts[0].vms[1].ip", "10.0.0.11 is already used"}},
		{"bad tenant", `
hosts: [{name: h1, vms: [{name: s1, ip: 10.0.0.11/24, tenant: "a b"}]}]
`, []string{"hosts[0].vms[0].tenant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTopology([]byte(tt.doc))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	ap, err := ParseTarget("10.0.0.1:80")
	require.NoError(t, err)
	assert.Equal(t, uint16(80), ap.Port())
	ap, err = ParseTarget("[fd00::1]:5353")
	require.NoError(t, err)
	assert.True(t, ap.Addr().Is6())
	for _, bad := range []string{"10.0.0.1", "10.0.0.1:0", "host:80", "[fd00::1]"} {
		_, err := ParseTarget(bad)
		assert.Error(t, err, bad)
	}
}

// TestParseTopologyTenants: VMs of different tenants may share an address
// when their MACs differ.
func TestParseTopologyTenants(t *testing.T) {
	topo, err := ParseTopology([]byte(`
hosts: [{name: h1, vms: [{name: s1, ip: 10.0.0.11/24}, {name: t1, ip: 10.0.0.11/24, tenant: b, mac: "02:00:0b:00:00:0b"}]}]
`))
	require.NoError(t, err)
	v, _, ok := topo.VM("t1")
	require.True(t, ok)
	assert.Equal(t, "b", v.Tenant)
	assert.Equal(t, "02:00:0b:00:00:0b", v.HardwareAddr())
}

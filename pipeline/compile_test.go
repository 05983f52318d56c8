package pipeline

import (
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
	of "github.com/ovs-dlb/dlb/ofctrl"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func mac(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }

var testConfig = Config{Zone: lb.DefaultZone, MAC: mac("0a:db:00:00:00:01"), Buckets: 16}

var testPorts = []LocalPort{
	{Name: "c1", OFPort: 3, IfaceID: "c1", MAC: mac("02:00:0a:00:00:01"), IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
	{Name: "c9", OFPort: 9, IfaceID: "c9", MAC: mac("02:00:0a:00:00:09"), IPs: []netip.Addr{netip.MustParseAddr("10.0.0.9")},
		Labels: map[string]string{"tenant": "b"}},
	{Name: "s1", OFPort: 1, IfaceID: "s1", MAC: mac("02:00:0a:00:00:0b"), IPs: []netip.Addr{netip.MustParseAddr("10.0.0.11"), netip.MustParseAddr("fd00::11")}},
}

func render(out *Output) string {
	var b strings.Builder
	for _, g := range out.Groups {
		b.WriteString(g.String() + "\n")
	}
	for _, f := range out.Flows {
		b.WriteString(f.String() + "\n")
	}
	for _, u := range out.Unresolved {
		b.WriteString("# unresolved member " + u.String() + "\n")
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./lb -update to create %s", path)
	assert.Equal(t, string(want), got, "compiler output differs from %s (go test ./lb -update rewrites it)", path)
}

func TestCompileGolden(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{"web-tcp", `
groups:
  - name: web
    vip: 10.96.0.10
    ports: [{protocol: tcp, port: 80, target_port: 8080}]
    members:
      - {ip: 10.0.0.11}
      - {ip: 10.0.0.12, mac: "02:00:0a:00:00:0c", weight: 200}
      - {ip: 10.0.0.13, port: 9090, state: draining}
`},
		{"dns-udp-ipv6", `
groups:
  - name: dns
    vip: fd00::53
    ports: [{protocol: udp, port: 53, target_port: 5353}, {protocol: tcp, port: 53, target_port: 5353}]
    members:
      - {ip: "fd00::11"}
      - {ip: "fd00::12", mac: "02:00:0a:00:00:0c"}
  - name: db
    vip: 10.96.0.20
    ports: [{protocol: sctp, port: 5000}]
    members: []
`},
		{"dsr", `
groups:
  - name: direct
    vip: 10.96.0.40
    mode: dsr
    ports: [{protocol: tcp, port: 8080}]
    members:
      - {ip: 10.0.0.11}
      - {ip: 10.0.0.12, mac: "02:00:0a:00:00:0c"}
`},
		{"scopes", `
groups:
  - name: tenant-a
    vip: 10.96.0.70
    scope: {iface_ids: [c1]}
    ports: [{protocol: tcp, port: 80, target_port: 8080}]
    members: [{ip: 10.0.0.12, mac: "02:00:0a:00:00:0c"}]
  - name: tenant-b
    vip: 10.96.0.70
    scope: {labels: {tenant: b}}
    ports: [{protocol: tcp, port: 80, target_port: 8080}]
    members: [{ip: 10.0.0.13, mac: "02:00:0a:00:00:0d"}]
`},
		{"affinity", `
groups:
  - name: sticky
    vip: 10.96.0.30
    affinity: {client_ip_timeout_s: 600}
    ports: [{protocol: tcp, port: 443}, {protocol: udp, port: 443}]
    members:
      - {ip: 10.0.0.11}
      - {ip: 10.0.0.12, mac: "02:00:0a:00:00:0c", state: disabled}
  - name: day
    vip: fd00::30
    affinity: {client_ip_timeout_s: 86400}
    ports: [{protocol: sctp, port: 9000}]
    members:
      - {ip: "fd00::11"}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups, err := lb.ParseFile([]byte(tt.file))
			require.NoError(t, err)
			out, err := Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
			require.NoError(t, err)
			golden(t, tt.name, render(out))
			again, err := Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
			require.NoError(t, err)
			assert.Equal(t, render(out), render(again), "the compiler is deterministic")
		})
	}
}

// TestCompileKeepsChoices: compiled against what is installed, adding a
// member changes only the buckets it takes, and the cookie of every flow
// names the DLB and its group.
func TestCompileKeepsChoices(t *testing.T) {
	g := lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}},
		Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12"}, {IP: "10.0.0.13"}}}
	cfg := testConfig
	cfg.Buckets = 64
	first, err := Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts})
	require.NoError(t, err)
	installed := map[uint32]*of.Group{first.Groups[0].ID: first.Groups[0]}
	g.Members = append(g.Members, lb.Member{IP: "10.0.0.14"})
	second, err := Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts, Installed: installed})
	require.NoError(t, err)
	changed := 0
	require.Equal(t, 64, second.Groups[0].NumBuckets())
	for i := 0; i < second.Groups[0].NumBuckets(); i++ {
		b := second.Groups[0].BucketAt(i)
		if b.Actions[0].String() != first.Groups[0].BucketAt(i).Actions[0].String() {
			changed++
			assert.Contains(t, b.Actions[0].String(), "10.0.0.14")
		}
	}
	assert.Equal(t, 16, changed, "a 4th member takes 16 of 64 buckets, and only those move")
	for i := 0; i < second.Groups[0].NumBuckets(); i++ {
		b := second.Groups[0].BucketAt(i)
		if dst, _ := natTarget(b.Actions[0]); dst.Addr().String() == "10.0.0.11" {
			assert.Contains(t, b.Actions[0].String(), "exec(set_field:0x2000a00000b/0xffffffffffff->ct_label)",
				"the bucket writes the member's MAC into the connection's label")
		}
	}

	id := ServiceIDs([]string{"web"})["web"]
	for _, f := range second.Flows {
		assert.Equal(t, CookieMagic, f.Cookie&CookieMagicMask, f.String())
		if f.Cookie>>48&0xff == KindVIP {
			assert.Equal(t, ServiceCookie(id), f.Cookie&CookieServiceMask, f.String())
		}
	}
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("10.0.0.13"), netip.MustParseAddr("10.0.0.14")}, second.Unresolved)
}

func TestCompileRefusesBadInput(t *testing.T) {
	_, err := Compile(Input{Config: Config{MAC: mac("01:00:00:00:00:00"), TableBase: 250, Buckets: 100}})
	require.Error(t, err)
	for _, w := range []string{"table_base", "mac", "buckets"} {
		assert.Contains(t, err.Error(), w)
	}
}

// TestSharedBridgeConfig: on a shared bridge the pipeline adds one hook in
// the owner's entry table and returns to the owner's table instead of
// NORMAL; table ranges that would overlap are refused, naming the setting.
func TestSharedBridgeConfig(t *testing.T) {
	cfg := testConfig
	cfg.TableBase = 20
	cfg.Shared = &Shared{EntryTable: 0, EntryPriority: 1000, ReturnTable: 1}
	out, err := Compile(Input{Config: cfg, Ports: testPorts})
	require.NoError(t, err)
	text := render(out)
	assert.Contains(t, text, "cookie=0xdb01000000000000, priority=1000 actions=goto_table:20\n")
	assert.Contains(t, text, "table=26, priority=0 actions=resubmit(,1)\n")
	assert.NotContains(t, text, "NORMAL")
	for _, f := range out.Flows {
		assert.True(t, f.Table >= 20 || f.Table == 0 && f.Priority == 1000, "only the hook is outside the DLB's tables: %s", f)
	}
	for _, tt := range []struct {
		shared Shared
		want   string
	}{
		{Shared{EntryTable: 20, ReturnTable: 1}, "entry_table"},
		{Shared{EntryTable: 0, ReturnTable: 25}, "return_table"},
	} {
		cfg.Shared = &tt.shared
		_, err := Compile(Input{Config: cfg})
		assert.ErrorContains(t, err, tt.want)
	}
}

// TestCompilerReusesUnchangedGroups: compiled against its own output, an
// unchanged group comes back as the very same objects, and a change to
// one group recompiles that group only; the result equals Compile's.
func TestCompilerReusesUnchangedGroups(t *testing.T) {
	groups := bigGroups(50, 3)
	k := NewCompiler()
	first, err := k.Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
	require.NoError(t, err)
	installed := byID(first.Groups)
	w := 300
	groups[7].Members[1].Weight = &w
	second, err := k.Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts, Installed: installed})
	require.NoError(t, err)
	require.Len(t, second.Groups, len(first.Groups))
	changed := 0
	for i := range second.Groups {
		if second.Groups[i] != first.Groups[i] {
			changed++
		}
	}
	assert.Equal(t, 1, changed, "only the changed group is rebuilt")
	sameFlows := 0
	for i := range second.Flows {
		if second.Flows[i] == first.Flows[i] {
			sameFlows++
		}
	}
	assert.Equal(t, len(first.Flows)-2, sameFlows, "only the changed group's two flows are rebuilt")
	fresh, err := Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts, Installed: installed})
	require.NoError(t, err)
	assert.True(t, render(fresh) == render(second), "the cache changes nothing in the result")
}

// TestCompilerChangedSet: told which groups changed, the compiler skips the
// others, and the result is what a full compile gives.
func TestCompilerChangedSet(t *testing.T) {
	groups := bigGroups(20, 3)
	k := NewCompiler()
	first, err := k.Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
	require.NoError(t, err)
	installed := byID(first.Groups)
	groups[3].Members[0].State = lb.StateDraining
	groups = append(groups, lb.Group{Name: "new", VIP: "10.97.0.1", Ports: []lb.PortSpec{{Protocol: "udp", Port: 53}}, Members: []lb.Member{{IP: "10.1.1.1", MAC: "02:00:00:00:00:01"}}})
	delta, err := k.Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts, Installed: installed,
		Changed: map[string]bool{groups[3].Name: true, "new": true}})
	require.NoError(t, err)
	full, err := Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts, Installed: installed})
	require.NoError(t, err)
	assert.True(t, render(full) == render(delta), "a compile told what changed equals a full one")
	reused := 0
	for i := range first.Groups {
		if delta.Groups[i] == first.Groups[i] {
			reused++
		}
	}
	assert.Equal(t, len(first.Groups)-1, reused, "only the changed group is rebuilt")
}

// TestDSRKeepsChoices: DSR buckets, which translate nothing, are told
// apart by the member key they set, so a new member moves only its share.
func TestDSRKeepsChoices(t *testing.T) {
	g := lb.Group{Name: "direct", VIP: "10.96.0.40", Mode: lb.ModeDSR, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}},
		Members: []lb.Member{{IP: "10.0.0.11", MAC: "02:00:00:00:00:0b"}, {IP: "10.0.0.12", MAC: "02:00:00:00:00:0c"}}}
	cfg := testConfig
	cfg.Buckets = 64
	first, err := Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts})
	require.NoError(t, err)
	g.Members = append(g.Members, lb.Member{IP: "10.0.0.13", MAC: "02:00:00:00:00:0d"})
	second, err := Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts, Installed: byID(first.Groups)})
	require.NoError(t, err)
	moved := 0
	for i := 0; i < 64; i++ {
		before, after := first.Groups[0].BucketAt(i).Actions, second.Groups[0].BucketAt(i).Actions
		assert.NotContains(t, after[1].String(), "nat", "DSR translates nothing")
		if before[0].String() != after[0].String() {
			moved++
			assert.Contains(t, after[1].String(), "0x2000000000d/", "a moved bucket goes to the new member")
		}
	}
	assert.Equal(t, 21, moved, "the third member takes its share and nothing else moves")
}

// byID indexes compiled groups as a switch holds them.
func byID(groups []*of.Group) map[uint32]*of.Group {
	m := make(map[uint32]*of.Group, len(groups))
	for _, g := range groups {
		m[g.ID] = g
	}
	return m
}

// checked is groups as a source delivers them.
func checked(t testing.TB, groups ...lb.Group) []lb.Checked {
	t.Helper()
	cs, err := lb.CheckAll(groups)
	require.NoError(t, err)
	return cs
}

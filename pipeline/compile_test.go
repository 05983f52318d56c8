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
	for _, f := range out.AllFlows() {
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

// goldenCases are the group files of the golden tests.
var goldenCases = []struct {
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

func TestCompileGolden(t *testing.T) {
	for _, tt := range goldenCases {
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

// TestCompileKeepsChoices: compiled again (or by a new compiler taking
// over what is installed), adding a member changes only the slots it
// takes, and the cookie of every flow names the DLB and its group.
func TestCompileKeepsChoices(t *testing.T) {
	g := lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}},
		Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12"}, {IP: "10.0.0.13"}}}
	cfg := testConfig
	cfg.Buckets = 64
	id := ServiceIDs([]string{"web"})["web"]
	k := NewCompiler()
	first, err := k.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts})
	require.NoError(t, err)
	before := slotMembers(t, first, PortID(id, 0))
	g.Members = append(g.Members, lb.Member{IP: "10.0.0.14"})
	second, err := k.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts})
	require.NoError(t, err)
	after := slotMembers(t, second, PortID(id, 0))
	require.Len(t, after, 64)
	changed := 0
	for s := range after {
		if before[s] != after[s] {
			changed++
			assert.Equal(t, "10.0.0.14", after[s])
		}
	}
	assert.Equal(t, 16, changed, "a 4th member takes 16 of 64 slots, and only those move")
	k2 := NewCompiler()
	adopted, err := k2.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts, Installed: installedOf(second)})
	require.NoError(t, err)
	assert.Equal(t, render(second), render(adopted), "a compiler taking over the switch changes nothing")
	// A change of ports recompiles every group: the slots taken over stay.
	again, err := k2.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts[:2]})
	require.NoError(t, err)
	assert.Equal(t, after, slotMembers(t, again, PortID(id, 0)), "slots taken over are kept by the next compiles")
	for _, f := range second.Flows {
		assert.Equal(t, CookieMagic, f.Cookie&CookieMagicMask, f.String())
		if kind := CookieKind(f.Cookie); kind == KindVIP || kind == KindMember {
			assert.Equal(t, ServiceCookie(id), f.Cookie&CookieServiceMask, f.String())
		}
		if strings.Contains(f.String(), "nat(dst=10.0.0.11:80)") {
			assert.Contains(t, f.String(), "exec(set_field:0x2000a00000b/0xffffffffffff->ct_label)",
				"the commit writes the member's MAC into the connection's label")
		}
	}
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("10.0.0.13"), netip.MustParseAddr("10.0.0.14")}, second.Unresolved)
}

// slotMembers is where each slot of a VIP port sends a new connection, as
// the switch would: the port's select group, each bucket's member index,
// and that index's commit for the port (the address it translates to, or
// the commit itself where it translates nothing).
func slotMembers(t *testing.T, out *Output, pid uint32) []string {
	t.Helper()
	var gid uint32
	commits := map[uint32]string{}
	for _, f := range out.AllFlows() {
		if r, ok := regOf(f, RegService); !ok || r != pid {
			continue
		}
		for _, a := range f.Actions {
			if g, ok := a.(of.ToGroup); ok {
				gid = uint32(g)
			}
		}
		if CookieKind(f.Cookie) == KindMember {
			idx, _ := regOf(f, RegMember)
			commits[idx] = f.Actions[0].String()
			if dst, ok := natTarget(f.Actions[0]); ok {
				commits[idx] = dst.Addr().String()
			}
		}
	}
	g := byID(out.Groups)[gid]
	require.NotNil(t, g, "port %#x has a select group", pid)
	slots := make([]string, g.NumBuckets())
	for s := range slots {
		v, ok := memberIndexOf(g.BucketAt(s).Actions[0])
		require.True(t, ok)
		require.Contains(t, commits, uint32(v), "slot %d's member has a commit", s)
		slots[s] = commits[uint32(v)]
	}
	return slots
}

// installedOf is an output as a switch holds it.
func installedOf(out *Output) *Installed {
	return &Installed{Groups: byID(out.Groups), Commits: out.Commits, Flows: out.Flows}
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

// TestCompilerReusesUnchangedGroups: compiled again, an unchanged group
// comes back as the very same objects, and a change to one group
// recompiles that group only; the result equals that of a new compiler
// taking over the switch.
func TestCompilerReusesUnchangedGroups(t *testing.T) {
	groups := bigGroups(50, 3)
	k := NewCompiler()
	first, err := k.Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
	require.NoError(t, err)
	require.Len(t, first.Groups, 1, "50 groups of 3 equal members share one select group")
	w := 300
	groups[7].Members[1].Weight = &w
	second, err := k.Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
	require.NoError(t, err)
	require.Len(t, second.Groups, 2, "the changed group deals its slots otherwise")
	assert.Same(t, first.Groups[0], second.Groups[0], "the shared select group is the same object")
	id7 := ServiceIDs(names(groups))[groups[7].Name]
	rebuilt := 0
	for i := range second.Flows {
		if second.Flows[i] != first.Flows[i] {
			rebuilt++
			assert.Equal(t, id7, CookieService(second.Flows[i].Cookie), "rebuilt: %s", second.Flows[i])
		}
	}
	assert.Equal(t, 2, rebuilt, "the changed group's service and select flows are rebuilt, nothing else")
	same := 0
	for i := range second.Commits {
		if second.Commits[i] == first.Commits[i] {
			same++
		}
	}
	assert.Equal(t, len(first.Commits)-3, same, "and its commits and counting flows")
	fresh, err := Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts, Installed: installedOf(first)})
	require.NoError(t, err)
	assert.True(t, render(fresh) == render(second), "the cache changes nothing in the result")
}

func names(groups []lb.Group) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g.Name)
	}
	return out
}

// TestCompilerChangedSet: told which groups changed, the compiler skips the
// others, and the result is what a full compile gives.
func TestCompilerChangedSet(t *testing.T) {
	groups := bigGroups(20, 3)
	k := NewCompiler()
	first, err := k.Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts})
	require.NoError(t, err)
	groups[3].Members[0].State = lb.StateDraining
	groups = append(groups, lb.Group{Name: "new", VIP: "10.97.0.1", Ports: []lb.PortSpec{{Protocol: "udp", Port: 53}}, Members: []lb.Member{{IP: "10.1.1.1", MAC: "02:00:00:00:00:01"}}})
	delta, err := k.Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts,
		Changed: map[string]bool{groups[3].Name: true, "new": true}})
	require.NoError(t, err)
	full, err := Compile(Input{Config: testConfig, Groups: checked(t, groups...), Ports: testPorts, Installed: installedOf(first)})
	require.NoError(t, err)
	assert.True(t, render(full) == render(delta), "a compile told what changed equals a full one")
	had := map[*of.Flow]bool{}
	for _, f := range first.Flows {
		had[f] = true
	}
	reused := 0
	for _, f := range delta.Flows {
		if had[f] {
			reused++
		}
	}
	assert.Equal(t, len(first.Flows)-2, reused, "only the changed group's flows are rebuilt (its service and select flows)")
	assert.Same(t, first.Groups[0], delta.Groups[0], "the select group the others share is the same object")
}

// TestDSRKeepsChoices: DSR commits, which translate nothing, are told
// apart by the MAC they record, so a new member moves only its share, and
// a compiler taking over the switch keeps every member's index.
func TestDSRKeepsChoices(t *testing.T) {
	g := lb.Group{Name: "direct", VIP: "10.96.0.40", Mode: lb.ModeDSR, Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}},
		Members: []lb.Member{{IP: "10.0.0.11", MAC: "02:00:00:00:00:0b"}, {IP: "10.0.0.12", MAC: "02:00:00:00:00:0c"}}}
	cfg := testConfig
	cfg.Buckets = 64
	id := ServiceIDs([]string{"direct"})["direct"]
	first, err := Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts})
	require.NoError(t, err)
	g.Members = append(g.Members, lb.Member{IP: "10.0.0.13", MAC: "02:00:00:00:00:0d"})
	second, err := Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts, Installed: installedOf(first)})
	require.NoError(t, err)
	before, after := slotMembers(t, first, PortID(id, 0)), slotMembers(t, second, PortID(id, 0))
	moved := 0
	for s := range after {
		assert.NotContains(t, after[s], "nat", "DSR translates nothing")
		if before[s] != after[s] {
			moved++
			assert.Contains(t, after[s], "02000000000d/", "a moved slot goes to the new member")
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

// TestLeastConnectionsSlots: a least-connections group's slots follow the
// shares the agent gives (256 slots), a change of shares moves only the
// slots that change member, and a member with capacity keeps a slot.
func TestLeastConnectionsSlots(t *testing.T) {
	g := lb.Group{Name: "lc", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}, Algorithm: lb.AlgorithmLeastConnections,
		Members: []lb.Member{{IP: "10.0.0.11"}, {IP: "10.0.0.12"}, {IP: "10.0.0.13"}, {IP: "10.0.0.14", State: lb.StateDraining}}}
	cfg := testConfig
	cfg.Buckets = 0
	id := ServiceIDs([]string{"lc"})["lc"]
	count := func(slots []string) map[string]int {
		n := map[string]int{}
		for _, s := range slots {
			n[s]++
		}
		return n
	}
	k := NewCompiler()
	out, err := k.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts})
	require.NoError(t, err)
	byWeight := slotMembers(t, out, PortID(id, 0))
	assert.Len(t, byWeight, 128, "without shares: by weight (lb.SlotCount)")

	out, err = k.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts, Slots: map[string][]int{"lc": {200, 55, 0, 6}},
		Changed: map[string]bool{"lc": true}})
	require.NoError(t, err)
	first := slotMembers(t, out, PortID(id, 0))
	require.Len(t, first, lb.MaxSlots)
	assert.Equal(t, map[string]int{"10.0.0.11": 200, "10.0.0.12": 55, "10.0.0.13": 1}, count(first),
		"the shares' slots; an active member given none keeps one; a draining one gets none")
	for s := range first {
		if byWeight[s%128] == "10.0.0.11" {
			assert.Equal(t, "10.0.0.11", first[s], "slot %d: a member under its new count keeps its slots", s)
		}
	}

	out, err = k.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts, Slots: map[string][]int{"lc": {190, 56, 10, 0}},
		Changed: map[string]bool{"lc": true}})
	require.NoError(t, err)
	second := slotMembers(t, out, PortID(id, 0))
	moved := 0
	for s := range second {
		if second[s] != first[s] {
			moved++
		}
	}
	assert.Equal(t, map[string]int{"10.0.0.11": 190, "10.0.0.12": 56, "10.0.0.13": 10}, count(second))
	assert.Equal(t, 10, moved, "only the slots that change member move")

	// Unchanged (not in Changed): the cached group stays, whatever Slots says.
	out, err = k.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts, Slots: map[string][]int{"lc": {1, 1, 254, 0}},
		Changed: map[string]bool{}})
	require.NoError(t, err)
	assert.Equal(t, second, slotMembers(t, out, PortID(id, 0)))
	// A weighted group ignores shares.
	g.Algorithm = ""
	out, err = k.Compile(Input{Config: cfg, Groups: checked(t, g), Ports: testPorts, Slots: map[string][]int{"lc": {1, 1, 254, 0}}})
	require.NoError(t, err)
	assert.Len(t, slotMembers(t, out, PortID(id, 0)), lb.MaxSlots, "the slots grown to 256 are kept (never halved)")
	assert.Equal(t, map[string]int{"10.0.0.11": 86, "10.0.0.12": 85, "10.0.0.13": 85}, count(slotMembers(t, out, PortID(id, 0))))
}

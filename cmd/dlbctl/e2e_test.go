package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/testbed"
)

// dbMember is a Member row, as ovsdb-server holds it.
type dbMember struct {
	Port   int
	Weight int
	State  string
}

// dbGroups reads the Group and Member tables with ovsdb-client dump and
// returns each group's members by IP.
func dbGroups(t *testing.T, c *testbed.Controller) map[string]map[string]dbMember {
	t.Helper()
	tables := map[string][]map[string]any{}
	for _, table := range []string{"Group", "Member"} {
		out, err := exec.Command("ovsdb-client", "-f", "json", "dump", c.OVSDB(), "DLB", table).Output()
		require.NoError(t, err, "ovsdb-client dump: %s", errOutput(err))
		var tbl struct {
			Headings []string `json:"headings"`
			Data     [][]any  `json:"data"`
		}
		require.NoError(t, json.Unmarshal(out, &tbl), "ovsdb-client dump output:\n%s", out)
		for _, row := range tbl.Data {
			r := map[string]any{}
			for i, h := range tbl.Headings {
				r[h] = row[i]
			}
			tables[table] = append(tables[table], r)
		}
	}
	members := map[string]map[string]any{}
	for _, m := range tables["Member"] {
		members[uuidOf(m["_uuid"])] = m
	}
	groups := map[string]map[string]dbMember{}
	used := map[string]bool{}
	for _, g := range tables["Group"] {
		name, _ := g["name"].(string)
		groups[name] = map[string]dbMember{}
		for _, ref := range setOf(g["members"]) {
			m, ok := members[uuidOf(ref)]
			require.True(t, ok, "group %s refers to a missing Member row", name)
			used[uuidOf(ref)] = true
			groups[name][m["ip"].(string)] = dbMember{Port: int(m["port"].(float64)), Weight: int(m["weight"].(float64)), State: m["state"].(string)}
		}
	}
	assert.Len(t, used, len(members), "every Member row belongs to a group")
	return groups
}

// uuidOf reads ["uuid", "..."].
func uuidOf(v any) string {
	if a, ok := v.([]any); ok && len(a) == 2 {
		s, _ := a[1].(string)
		return s
	}
	return ""
}

// setOf reads an OVSDB set: ["set", [...]] or a single atom.
func setOf(v any) []any {
	if a, ok := v.([]any); ok && len(a) == 2 && a[0] == "set" {
		items, _ := a[1].([]any)
		return items
	}
	return []any{v}
}

func errOutput(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// TestEndToEnd drives dlbctl against a real dlb-controller and checks
// what lands in its ovsdb-server after each command.
func TestEndToEnd(t *testing.T) {
	ctl := testbed.StartController(t)
	server := ctl.URL()
	cli := func(args ...string) cliResult {
		t.Helper()
		res := runCLI(t, "", append([]string{"--server", server}, args...)...)
		t.Logf("dlbctl %s -> %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
		return res
	}
	ok := func(args ...string) string {
		t.Helper()
		res := cli(args...)
		require.Equal(t, 0, res.code, "dlbctl %v failed:\n%s", args, res.stderr)
		return res.stdout
	}
	dir := t.TempDir()
	webFile := filepath.Join(dir, "web.yaml")
	require.NoError(t, os.WriteFile(webFile, []byte(`name: web
vip: 10.96.0.10
ports:
  - protocol: tcp
    port: 80
    target_port: 8080
members:
  - ip: 10.0.0.11
  - ip: 10.0.0.12
`), 0o644))

	// Create.
	out := ok("group", "create", "-f", webFile)
	assert.Regexp(t, `(?m)^web\s+10\.96\.0\.10\s+tcp/80→8080\s+2/2\s+dnat\s+\d+\s+within, exact$`, out)
	assert.Equal(t, map[string]map[string]dbMember{"web": {
		"10.0.0.11": {Weight: 100, State: "active"},
		"10.0.0.12": {Weight: 100, State: "active"},
	}}, dbGroups(t, ctl))
	res := cli("group", "create", "-f", webFile)
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, `Error: create group "web": `)

	// Get: the list, one group, JSON and YAML.
	out = ok("group", "get")
	assert.Regexp(t, `^NAME\s+VIP\s+PORTS\s+MEMBERS\s+MODE\s+INDEX\s+BALANCE\n`, out)
	assert.Regexp(t, `(?m)^web\s+10\.96\.0\.10\s+tcp/80→8080\s+2/2\s+dnat\s+\d+\s+within, exact$`, out)
	out = ok("group", "get", "web")
	assert.Contains(t, out, "\nBalance:    16 slots, every share exact, within the bound\n")
	assert.Regexp(t, `(?m)^10\.0\.0\.11\s+-\s+100\s+active$`, out)
	assert.Regexp(t, `(?m)^10\.0\.0\.12\s+-\s+100\s+active$`, out)
	var got Group
	require.NoError(t, json.Unmarshal([]byte(ok("group", "get", "web", "-o", "json")), &got))
	assert.Equal(t, "web", got.Name)
	assert.Equal(t, "10.96.0.10", got.VIP)
	require.Len(t, got.Members, 2)
	assert.NotZero(t, got.ModifyIndex)
	assert.GreaterOrEqual(t, got.ModifyIndex, got.CreateIndex)
	assert.Equal(t, &wire.Balance{Slots: 16, ActiveMembers: 2, MaxOverMean: 1, WithinBound: true}, got.Balance)
	var list GroupList
	require.NoError(t, json.Unmarshal([]byte(ok("group", "get", "-o", "json")), &list))
	require.Len(t, list.Groups, 1)
	assert.GreaterOrEqual(t, list.Index, got.ModifyIndex)
	// Kept for the stale edit below.
	staleFile := filepath.Join(dir, "stale.yaml")
	stale := ok("group", "get", "web", "-o", "yaml")
	assert.Contains(t, stale, fmt.Sprintf("modify_index: %d\n", got.ModifyIndex))
	require.NoError(t, os.WriteFile(staleFile, []byte(strings.Replace(stale, "port: 80\n", "port: 81\n", 1)), 0o644))

	// Members.
	out = ok("member", "add", "web", "10.0.0.13", "--weight", "50")
	assert.Regexp(t, `(?m)^10\.0\.0\.13\s+-\s+50\s+active$`, out)
	assert.Equal(t, map[string]dbMember{
		"10.0.0.11": {Weight: 100, State: "active"},
		"10.0.0.12": {Weight: 100, State: "active"},
		"10.0.0.13": {Weight: 50, State: "active"},
	}, dbGroups(t, ctl)["web"])
	res = cli("member", "add", "web", "10.0.0.13")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "Error: ")
	assert.Contains(t, res.stderr, "10.0.0.13")

	out = ok("member", "drain", "web", "10.0.0.11")
	assert.Regexp(t, `(?m)^10\.0\.0\.11\s+-\s+100\s+draining$`, out)
	assert.Equal(t, dbMember{Weight: 100, State: "draining"}, dbGroups(t, ctl)["web"]["10.0.0.11"])

	out = ok("member", "remove", "web", "10.0.0.12")
	assert.NotContains(t, out, "10.0.0.12  ")
	assert.Equal(t, map[string]dbMember{
		"10.0.0.11": {Weight: 100, State: "draining"},
		"10.0.0.13": {Weight: 50, State: "active"},
	}, dbGroups(t, ctl)["web"])

	res = cli("member", "enable", "web", "10.0.0.99")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "Error: ")
	assert.Contains(t, res.stderr, "10.0.0.99")

	out = ok("member", "set", "web", "10.0.0.13", "--weight", "70")
	assert.Regexp(t, `(?m)^10\.0\.0\.13\s+-\s+70\s+active$`, out)
	assert.Equal(t, dbMember{Weight: 70, State: "active"}, dbGroups(t, ctl)["web"]["10.0.0.13"])

	// A bad weight is refused with the field at fault.
	res = cli("member", "set", "web", "10.0.0.13", "--weight", "0")
	assert.Equal(t, 1, res.code)
	assert.Regexp(t, `(?m)^  \S*weight: `, res.stderr)

	// Edit with a stale If-Match: refused, nothing changes.
	before := dbGroups(t, ctl)
	res = cli("group", "edit", "web", "-f", staleFile)
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, fmt.Sprintf(`Error: group "web" changed meanwhile (it is no longer at modify index %d), so your edit was not applied: run 'dlbctl group edit web' again`, got.ModifyIndex))
	assert.Equal(t, before, dbGroups(t, ctl))
	assert.Contains(t, ok("group", "get", "web"), "tcp/80→8080")

	// Edit from the current version: applied.
	cur := ok("group", "get", "web", "-o", "yaml")
	freshFile := filepath.Join(dir, "fresh.yaml")
	require.NoError(t, os.WriteFile(freshFile, []byte(strings.Replace(cur, "state: draining", "state: disabled", 1)), 0o644))
	out = ok("group", "edit", "web", "-f", freshFile)
	assert.Regexp(t, `(?m)^10\.0\.0\.11\s+-\s+100\s+disabled$`, out)
	assert.Equal(t, dbMember{Weight: 100, State: "disabled"}, dbGroups(t, ctl)["web"]["10.0.0.11"])
	res = cli("group", "edit", "web", "-f", freshFile)
	assert.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, `group "web": no change`, "the file's modify_index is stale, but the group is as the file says")
	same := ok("group", "get", "web", "-o", "yaml")
	require.NoError(t, os.WriteFile(freshFile, []byte(same), 0o644))
	res = cli("group", "edit", "web", "-f", freshFile)
	assert.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "group \"web\": no change\n", res.stderr)
	assert.Empty(t, res.stdout)

	// Edit in $EDITOR.
	t.Setenv("EDITOR", `sed -i 's/weight: 70/weight: 80/'`)
	t.Setenv("TMPDIR", t.TempDir())
	out = ok("group", "edit", "web")
	assert.Regexp(t, `(?m)^10\.0\.0\.13\s+-\s+80\s+active$`, out)
	assert.Equal(t, dbMember{Weight: 80, State: "active"}, dbGroups(t, ctl)["web"]["10.0.0.13"])
	t.Setenv("EDITOR", "true")
	res = cli("group", "edit", "web")
	assert.Equal(t, "group \"web\": no change\n", res.stderr)

	res = cli("group", "edit", "web", "-f", webFile, "--if-match", "1")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "changed meanwhile")

	// The balance of weight sets 256 slots can and cannot honour, as
	// "group get NAME" says it (created from the YAML "get -o yaml" gives).
	balanced := func(name string, n int, weight func(i int) int) string {
		t.Helper()
		doc := fmt.Sprintf("name: %s\nvip: 10.96.1.%d\nports: [{protocol: tcp, port: 80}]\nmembers:\n", name, n)
		for i := range n {
			doc += fmt.Sprintf("  - {ip: 10.0.1.%d, weight: %d}\n", i+1, weight(i))
		}
		f := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(f, []byte(doc), 0o644))
		ok("group", "create", "-f", f)
		out := ok("group", "get", name)
		line := regexp.MustCompile(`(?m)^Balance:\s+(.*)$`).FindStringSubmatch(out)
		require.Len(t, line, 2, "group get %s:\n%s", name, out)
		var g Group
		require.NoError(t, json.Unmarshal([]byte(ok("group", "get", name, "-o", "json")), &g))
		require.NotNil(t, g.Balance)
		assert.Equal(t, n, g.Balance.ActiveMembers)
		return line[1]
	}
	assert.Equal(t, "128 slots, worst share error 0.31 points (10.0.1.2), within the bound",
		balanced("w1234", 4, func(i int) int { return i + 1 }))
	assert.Equal(t, "256 slots, worst share error 0.23 points (10.0.1.7), max/mean 1.016, within the bound",
		balanced("eq10", 10, func(int) int { return 100 }))
	assert.Equal(t, "256 slots, worst share error 0.34 points (10.0.1.1), max/mean 1.172, NOT within max/mean 1.03 (equal weights): 50 active members on 256 slots",
		balanced("eq50", 50, func(int) int { return 100 }))
	out = ok("group", "get")
	assert.Regexp(t, `(?m)^eq50\s.*\s50/50\s+dnat\s+\d+\s+NOT within, max/mean 1\.172$`, out)
	assert.Regexp(t, `(?m)^eq10\s.*\s10/10\s+dnat\s+\d+\s+within, 0\.23 points$`, out)
	for _, name := range []string{"w1234", "eq10", "eq50"} {
		ok("group", "delete", name)
	}

	// Hosts: no agent has registered.
	res = cli("host", "list")
	assert.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "No hosts.\n", res.stderr)

	// Delete: with a stale If-Match refused, then done.
	res = cli("group", "delete", "web", "--if-match", "1")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "changed meanwhile")
	assert.Contains(t, dbGroups(t, ctl), "web")
	assert.Equal(t, "group \"web\" deleted\n", ok("group", "delete", "web"))
	assert.Empty(t, dbGroups(t, ctl))
	res = cli("group", "get", "web")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "Error: ")
	res = cli("group", "get")
	assert.Equal(t, "No groups.\n", res.stderr)
}

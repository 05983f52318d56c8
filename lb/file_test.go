package lb

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func groupsJSON(n int, weight0 int) string {
	var s strings.Builder
	s.WriteString(`{"groups":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			s.WriteByte(',')
		}
		fmt.Fprintf(&s, `{"name":"g%d","vip":"10.96.%d.%d","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.%d.%d","weight":%d},{"ip":"10.1.%d.%d"}]}`,
			i, i/256, i%256, i/256, i%256, weight0+i, i/256, i%256)
	}
	s.WriteString("]}")
	return s.String()
}

func TestFileReaderReusesUnchangedGroups(t *testing.T) {
	var r FileReader
	v1, err := r.Parse([]byte(groupsJSON(3, 1)))
	require.NoError(t, err)
	require.Len(t, v1, 3)
	for _, g := range v1 {
		assert.Equal(t, len(g.Members), cap(g.Members), "decoded lists hold no spare room")
	}

	// One group's text changes: the others are the very same values.
	text := strings.Replace(groupsJSON(3, 1), `"weight":2`, `"weight":7`, 1)
	v2, err := r.Parse([]byte(text))
	require.NoError(t, err)
	assert.Equal(t, 7, v2[1].Members[0].WeightOf())
	assert.Same(t, &v1[0].Members[0], &v2[0].Members[0], "unchanged group reused")
	assert.Same(t, &v1[2].Members[0], &v2[2].Members[0], "unchanged group reused")
	assert.NotSame(t, &v1[1].Members[0], &v2[1].Members[0])
	assert.Same(t, &v1[0].members[0], &v2[0].members[0], "unchanged group not parsed again")
	assert.Equal(t, netip.MustParseAddr("10.1.0.0"), v2[0].MemberAddr(1), "delivered checked")

	// A refused version leaves the memory of v2 alone: v2's groups are
	// reused again afterwards, and a duplicate of a known group is still
	// caught by the checks across groups.
	_, err = r.Parse([]byte(strings.Replace(text, `"ip":"10.1.0.0"`, `"ip":"nope"`, 1)))
	require.ErrorContains(t, err, `groups[0].members[1].ip: "nope" is not an IP address`)
	v3, err := r.Parse([]byte(text))
	require.NoError(t, err)
	assert.Same(t, &v2[0].Members[0], &v3[0].Members[0])
	one := groupsJSON(1, 1)
	one = one[len(`{"groups":[`) : len(one)-len(`]}`)]
	dup := `{"groups":[` + one + "," + one + `]}`
	_, err = r.Parse([]byte(dup))
	require.ErrorContains(t, err, `is already the name of groups[0]`)
}

func TestFileReaderErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"unknown top-level key", `{"groups":[],"colour":1}`, `unknown field "colour"`},
		{"unknown group key", `{"groups":[{"name":"a","colour":1}]}`, `groups[0]: json: unknown field "colour"`},
		{"groups not a list", `{"groups":{}}`, `groups: want a list`},
		{"groups twice", `{"groups":[],"groups":[]}`, `"groups" given twice`},
		{"wrong type", `{"groups":[{"name":"a","ports":[{"port":"80"}]}]}`, `groups[0]: json: cannot unmarshal string`},
		{"truncated", `{"groups":[{"name":"a"}`, `groups file`},
		{"trailing data", `{"groups":[]} {}`, `data after the top-level object`},
		{"missing comma", `{"groups":[{"name":"a"} {"name":"b"}]}`, `groups[1]: json: offset 24: want ','`},
		{"unterminated string", `{"groups":[{"name":"a}]}`, `unterminated string`},
		{"bad literal", `{"groups":[nul]}`, `groups[0]: `},
		{"stray close", `{"groups":[{"name":"a"}}]}`, `want ','`},
		{"not an object", `{"groups":[1]}`, `groups[0]: json: cannot unmarshal number`},
		{"invalid group", `{"groups":[{"name":"a","vip":"10.96.0.1","ports":[{"protocol":"tcp","port":80}],"members":[{"ip":"10.0.0.1","weight":0}]}]}`, `groups[0].members[0].weight`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r FileReader
			_, err := r.Parse([]byte(tt.file))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	var r FileReader
	for _, empty := range []string{`{}`, `{"groups":null}`, `{"groups":[]}`, ``, `groups: []`} {
		g, err := r.Parse([]byte(empty))
		require.NoError(t, err, empty)
		assert.Empty(t, g, empty)
	}
}

// BenchmarkParseOneGroupChanged: parse a 10,000-group file again after one
// member's weight changed, the way the agent's file source does.
func BenchmarkParseOneGroupChanged(b *testing.B) {
	var r FileReader
	texts := []string{groupsJSON(10000, 1), groupsJSON(10000, 1)}
	texts[1] = strings.Replace(texts[1], `"weight":5000,`, `"weight":5001,`, 1)
	_, err := r.Parse([]byte(texts[0]))
	require.NoError(b, err)
	i := 0
	for b.Loop() {
		i++
		if _, err := r.Parse([]byte(texts[i%2])); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseWhole: the same file through a fresh reader every time.
func BenchmarkParseWhole(b *testing.B) {
	text := []byte(groupsJSON(10000, 1))
	for b.Loop() {
		if _, err := ParseFile(text); err != nil {
			b.Fatal(err)
		}
	}
}

// indexed is a group document with a field of its own, as
// controller/wire.Group is.
type indexed struct {
	Group `yaml:",inline"`
	Index uint64 `json:"index,omitempty" yaml:"index,omitempty"`
}

func indexedGroup(d *indexed) *Group { return &d.Group }

func TestParseFileShapes(t *testing.T) {
	const (
		a  = `{"name":"a","vip":"10.96.0.1","ports":[{"protocol":"tcp","port":80}]}`
		b  = `{"name":"b","vip":"10.96.0.2","ports":[{"protocol":"tcp","port":80}]}`
		ya = "name: a\nvip: 10.96.0.1\nports: [{protocol: tcp, port: 80}]\n"
		yb = "name: b\nvip: 10.96.0.2\nports: [{protocol: tcp, port: 80}]\n"
	)
	tests := []struct {
		name  string
		file  string
		names []string
		list  bool
	}{
		{"JSON groups list", `{"groups":[` + a + `,` + b + `]}`, []string{"a", "b"}, true},
		{"JSON groups list of one", ` {"groups":[` + a + `]}`, []string{"a"}, true},
		{"JSON empty groups list", `{"groups":[]}`, nil, true},
		{"JSON groups null", `{"groups":null}`, nil, true},
		{"JSON empty object", `{}`, nil, false},
		{"JSON group", "\n" + a + "\n", []string{"a"}, false},
		{"JSON list", `[` + a + `, ` + b + `]`, []string{"a", "b"}, true},
		{"JSON empty list", `[]`, nil, true},
		{"YAML groups list", "groups:\n  - " + strings.ReplaceAll(ya, "\n", "\n    ") + "\n  - " + strings.ReplaceAll(yb, "\n", "\n    "), []string{"a", "b"}, true},
		{"YAML group", ya, []string{"a"}, false},
		{"YAML documents", ya + "---\n" + yb, []string{"a", "b"}, true},
		{"YAML documents with a list", ya + "---\ngroups: [" + b + "]\n", []string{"a", "b"}, true},
		{"YAML empty documents are skipped", "---\n" + ya + "---\n# nothing\n", []string{"a"}, false},
		{"YAML empty groups list", "groups: []\n", nil, true},
		{"YAML groups null", "groups:\n", nil, false},
		{"empty", "", nil, false},
		{"white space", " \n  \n", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := func(groups []Group) []string {
				var out []string
				for _, g := range groups {
					out = append(out, g.Name)
				}
				return out
			}
			groups, err := ParseFile([]byte(tt.file))
			require.NoError(t, err)
			assert.Equal(t, tt.names, names(groups), "ParseFile")
			// Nothing (nil) is not an empty set: a list, even empty, is one.
			assert.Equal(t, tt.list || len(tt.names) > 0, groups != nil, "a set, not nil")

			var r FileReader
			cs, err := r.Parse([]byte(tt.file))
			require.NoError(t, err)
			groups = nil
			for _, c := range cs {
				groups = append(groups, c.Group)
			}
			assert.Equal(t, tt.names, names(groups), "FileReader")
			assert.Equal(t, tt.list || len(tt.names) > 0, cs != nil, "a set, not nil")

			docs, list, err := ParseFileOf([]byte(tt.file), indexedGroup)
			require.NoError(t, err)
			groups = nil
			for _, d := range docs {
				groups = append(groups, d.Group)
			}
			assert.Equal(t, tt.names, names(groups), "ParseFileOf")
			assert.Equal(t, tt.list, list)
		})
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"JSON group with an unknown key", `{"name":"a","colour":1}`, `json: unknown field "colour"`},
		{"JSON list with an unknown key", `[{"name":"a","colour":1}]`, `groups[0]: json: unknown field "colour"`},
		{"JSON list and group", `{"name":"a","groups":[]}`, `has both a groups list and the fields of a group`},
		{"JSON list and group, list first", `{"groups":[],"vip":"10.96.0.1"}`, `has both a groups list and the fields of a group`},
		{"JSON list and an unknown key", `{"colour":1,"groups":[]}`, `unknown field "colour"`},
		{"JSON list then data", `[] []`, `data after the top-level list`},
		{"JSON list truncated", `[{"name":"a"}`, `unexpected end of input`},
		{"YAML list and group", "name: a\ngroups: []\n", `document 1 has both a groups: list and the fields of a group`},
		{"YAML unknown key, second document", "name: a\n---\nname: b\ncolour: red\n", `line 4: field colour not found`},
		{"YAML top-level list", "- name: a\n", `cannot unmarshal !!seq`},
		{"one group: paths relative to it", `{"name":"a","vip":"10.96.0.300","ports":[{"protocol":"tcp","port":80}]}`, `invalid: vip: "10.96.0.300" is not an IP address`},
		{"list: paths from groups[i]", `[{"name":"a","vip":"10.96.0.300","ports":[{"protocol":"tcp","port":80}]}]`, `invalid: groups[0].vip: "10.96.0.300"`},
		{"documents: checked together", "name: a\nvip: 10.96.0.1\nports: [{protocol: tcp, port: 80}]\n---\nname: a\nvip: 10.96.0.2\nports: [{protocol: tcp, port: 80}]\n",
			`groups[1].name: "a" is already the name of groups[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tt.file))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			_, _, err = ParseFileOf([]byte(tt.file), indexedGroup)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	// The type the file is decoded into stays out of yaml's messages.
	_, err := ParseFile([]byte("name: a\ncolour: red\n"))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "in type")
}

func TestParseFileOfKeepsTheDocumentsFields(t *testing.T) {
	docs, list, err := ParseFileOf([]byte("name: a\nvip: 10.96.0.1\nports: [{protocol: tcp, port: 80}]\nindex: 7\n"), indexedGroup)
	require.NoError(t, err)
	assert.False(t, list)
	require.Len(t, docs, 1)
	assert.Equal(t, uint64(7), docs[0].Index)
	assert.Equal(t, "a", docs[0].Name)

	docs, list, err = ParseFileOf([]byte(`{"groups":[{"name":"a","vip":"10.96.0.1","ports":[{"protocol":"tcp","port":80}],"index":8}]}`), indexedGroup)
	require.NoError(t, err)
	assert.True(t, list)
	require.Len(t, docs, 1)
	assert.Equal(t, uint64(8), docs[0].Index)

	// A plain Group has no such field.
	_, err = ParseFile([]byte("name: a\nvip: 10.96.0.1\nports: [{protocol: tcp, port: 80}]\nindex: 7\n"))
	assert.ErrorContains(t, err, "line 4: field index not found")
}

func TestFileReaderReusesGroupsOfAJSONList(t *testing.T) {
	var r FileReader
	list := func(weight int) string {
		text := groupsJSON(3, weight)
		return "[" + text[len(`{"groups":[`):len(text)-len(`]}`)] + "]"
	}
	v1, err := r.Parse([]byte(list(1)))
	require.NoError(t, err)
	require.Len(t, v1, 3)
	v2, err := r.Parse([]byte(strings.Replace(list(1), `"weight":2`, `"weight":7`, 1)))
	require.NoError(t, err)
	assert.Same(t, &v1[0].Members[0], &v2[0].Members[0], "unchanged group reused")
	assert.NotSame(t, &v1[1].Members[0], &v2[1].Members[0])
	assert.Equal(t, 7, v2[1].Members[0].WeightOf())

	// A YAML version in between: decoded whole, and the next JSON version
	// too (nothing kept from before the YAML one).
	y, err := r.Parse([]byte("groups: []\n"))
	require.NoError(t, err)
	assert.Empty(t, y)
	v3, err := r.Parse([]byte(list(1)))
	require.NoError(t, err)
	assert.NotSame(t, &v1[0].Members[0], &v3[0].Members[0])
	assert.Equal(t, v1, v3)
}

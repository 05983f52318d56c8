package lb

import (
	"fmt"
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

package view

import (
	"testing"

	"github.com/hashicorp/go-memdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchema: the schema builds, has each table under its own name, and
// every table has a unique indexID (go-memdb's primary key).
func TestSchema(t *testing.T) {
	s := schema()
	require.NoError(t, s.Validate())
	_, err := memdb.NewMemDB(s)
	require.NoError(t, err)
	tests := []struct {
		table   string
		indexes []string
	}{
		{TableGroups, []string{indexID, indexVIP, indexLoadView}},
		{TableHosts, []string{indexID}},
		{TableIndex, []string{indexID}},
		{TableTombstones, []string{indexID}},
	}
	require.Len(t, s.Tables, len(tests))
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			ts, ok := s.Tables[tt.table]
			require.True(t, ok)
			assert.Equal(t, tt.table, ts.Name)
			var names []string
			for name, ix := range ts.Indexes {
				assert.Equal(t, name, ix.Name)
				names = append(names, name)
			}
			assert.ElementsMatch(t, tt.indexes, names)
			id := ts.Indexes[indexID]
			require.NotNil(t, id)
			assert.True(t, id.Unique, "%s's %q index is unique", tt.table, indexID)
		})
	}
}

package dlbdb

import (
	"encoding/json"
	"testing"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModelsMatchSchema: the embedded schema file is the one the models
// were generated from (run go generate ./controller/dlbdb/ after editing
// it), and every model fits its table.
func TestModelsMatchSchema(t *testing.T) {
	var file ovsdb.DatabaseSchema
	require.NoError(t, json.Unmarshal(SchemaFile, &file))
	gen := Schema()
	assert.Equal(t, gen.Version, file.Version, "dlb.ovsschema changed since go generate")
	assert.Equal(t, len(gen.Tables), len(file.Tables))
	for name, table := range file.Tables {
		require.Contains(t, gen.Tables, name)
		assert.Equal(t, len(table.Columns), len(gen.Tables[name].Columns), "table %s", name)
	}
	cm, err := FullDatabaseModel()
	require.NoError(t, err)
	_, errs := model.NewDatabaseModel(file, cm)
	assert.Empty(t, errs)
}

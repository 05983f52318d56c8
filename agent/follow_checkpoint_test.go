package agent

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
)

// TestEncodeCheckpoint: the checkpoint written a group at a time reads
// back as what json.Marshal writes.
func TestEncodeCheckpoint(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		var groups []lb.Group
		for i := range n {
			groups = append(groups, lb.Group{Name: string(rune('a' + i)), VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80 + i}},
				Members: []lb.Member{{IP: "10.0.0.1"}}})
		}
		checked, err := lb.CheckAll(groups)
		require.NoError(t, err)
		doc := &checkpointDoc[lb.Checked]{Server: "http://c:1", Index: 42, Groups: checked}
		var buf bytes.Buffer
		require.NoError(t, encodeCheckpoint(&buf, doc))
		var got, want checkpointDoc[lb.Group]
		require.NoError(t, json.Unmarshal(buf.Bytes(), &got), buf.String())
		whole, err := json.Marshal(doc)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(whole, &want))
		if n == 0 {
			want.Groups = []lb.Group{} // an empty set is [] here, null there: both read as no groups
		}
		assert.Equal(t, want, got)
	}
}

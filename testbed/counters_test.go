package testbed

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseL4Counters(t *testing.T) {
	const out = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "dlbtestbed_acct", "handle": 1}}, {"chain": {"family": "inet", "table": "dlbtestbed_acct", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": -300, "policy": "accept"}}, {"chain": {"family": "inet", "table": "dlbtestbed_acct", "name": "out", "handle": 3, "type": "filter", "hook": "output", "prio": -300, "policy": "accept"}}, {"rule": {"family": "inet", "table": "dlbtestbed_acct", "chain": "in", "handle": 2, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["tcp", "udp"]}}}, {"counter": {"packets": 10, "bytes": 600}}]}}, {"rule": {"family": "inet", "table": "dlbtestbed_acct", "chain": "out", "handle": 4, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["tcp", "udp"]}}}, {"counter": {"packets": 8, "bytes": 500}}]}}]}`
	c, err := parseL4Counters(out)
	require.NoError(t, err)
	assert.Equal(t, IfCounters{RxPackets: 10, RxBytes: 740, TxPackets: 8, TxBytes: 612}, c)
	_, err = parseL4Counters(`{"nftables": []}`)
	assert.Error(t, err)
}

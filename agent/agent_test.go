package agent

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/lb"
)

// TestNewRefusesBadConfig: New names the setting at fault before anything
// starts.
func TestNewRefusesBadConfig(t *testing.T) {
	good := Config{OVSDB: "unix:/run/ovs/db.sock", Bridge: "br-int", GroupsFile: "/etc/g.yaml",
		EntryTable: -1, ReturnTable: -1, Zone: lb.DefaultZone}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no source", func(c *Config) { c.GroupsFile = "" }, "controller or groups_file"},
		{"two sources", func(c *Config) { c.Controller = "h:1" }, "controller and groups_file"},
		{"no openflow", func(c *Config) { c.OVSDB = "tcp:127.0.0.1:6640" }, "openflow"},
		{"table", func(c *Config) { c.TableBase = 300 }, "table_base"},
		{"zone", func(c *Config) { c.Zone = 70000 }, "zone"},
		{"mac", func(c *Config) { c.MAC = "nope" }, "mac"},
		{"multicast mac", func(c *Config) { c.MAC = "01:00:00:00:00:01" }, "mac"},
		{"buckets", func(c *Config) { c.Buckets = 100 }, "buckets"},
		{"shared and owned", func(c *Config) { c.EntryTable, c.ReturnTable, c.OwnBridge = 0, 1, true }, "entry_table"},
		{"return table", func(c *Config) { c.EntryTable = 0 }, "return_table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New(cfg, slog.New(slog.DiscardHandler))
			assert.ErrorContains(t, err, tc.want)
		})
	}
	a, err := New(good, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Equal(t, "unix:/run/ovs/br-int.mgmt", a.cfg.OpenFlow, "the bridge's socket beside OVSDB's")
}

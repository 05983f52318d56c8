// Package view is the controller's in-process, indexed and watchable view
// of its store (go-memdb), in the manner of Consul's and Nomad's state
// stores: one schema declaring the tables and their indexes; every write a
// transaction at a raft-like index that it records in the "index" table;
// rows remember the index of their creation and last change; deletions
// leave tombstones, so that a watcher resuming from an index learns of
// them, until they are reaped; readers pass a memdb.WatchSet and block on
// it until something they read changes.
//
// It owns: the view and its indexes. It must not touch: ovsdb-server (the
// store feeds it what ovsdb-server committed) or HTTP.
package view

import "github.com/hashicorp/go-memdb"

// Table names.
const (
	TableGroups     = "groups"
	TableHosts      = "hosts"
	TableIndex      = "index"
	TableTombstones = "tombstones"
)

// schema declares every table and index of the view.
func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		TableGroups: {
			Name: TableGroups,
			Indexes: map[string]*memdb.IndexSchema{
				"id":  {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
				"vip": {Name: "vip", Indexer: &memdb.StringFieldIndex{Field: "VIP"}},
			},
		},
		TableHosts: {
			Name: TableHosts,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		TableIndex: {
			Name: TableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
			},
		},
		TableTombstones: {
			Name: TableTombstones,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
			},
		},
	}}
}

// Package view is the controller's in-process, indexed and watchable view
// of its store (go-memdb), in the manner of Consul's and Nomad's state
// stores: one schema function per table, declaring its indexes; every write
// a transaction at a raft-like index that it records in the "index" table;
// rows remember the index of their creation and last change; deletions
// leave tombstones, so that a watcher resuming from an index learns of
// them, until they are reaped; readers pass a memdb.WatchSet and block on
// it until something they read changes.
//
// Every write has one shape: the public method opens a write transaction
// (WriteTxn), defers its Abort, does its work in an unexported xxxTxn
// helper that takes the transaction and the index, and commits. Reads open
// a ReadTxn and add what they read to the caller's memdb.WatchSet.
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

// Index names: every table has indexID, unique.
const (
	indexID       = "id"
	indexVIP      = "vip"
	indexLoadView = "load_view"
)

// schema declares every table and index of the view: one function per
// table.
func schema() *memdb.DBSchema {
	db := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for _, table := range []func() *memdb.TableSchema{
		groupsTableSchema,
		hostsTableSchema,
		indexTableSchema,
		tombstonesTableSchema,
	} {
		t := table()
		db.Tables[t.Name] = t
	}
	return db
}

// groupsTableSchema is the groups table: one *GroupEntry per group, by
// name (indexID), by VIP (indexVIP, not unique: a VIP has a group per
// set of ports) and, for least-connections groups, by load view
// (indexLoadView: the groups whose figures agents are sent).
func groupsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableGroups,
		Indexes: map[string]*memdb.IndexSchema{
			indexID:  {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			indexVIP: {Name: indexVIP, Indexer: &memdb.StringFieldIndex{Field: "VIP"}},
			// Least-connections groups by load view (others have none).
			indexLoadView: {Name: indexLoadView, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "LoadView"}},
		},
	}
}

// hostsTableSchema is the hosts table: one *HostEntry per agent's host,
// by name (indexID).
func hostsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableHosts,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		},
	}
}

// indexTableSchema is the index table: one *IndexEntry per table, by the
// table's name (indexID), holding the index of its last change; the entry
// keyed TableIndex holds the index of the last batch applied, and
// keyFloor's the tombstone floor.
func indexTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableIndex,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
		},
	}
}

// tombstonesTableSchema is the tombstones table: one *Tombstone per
// deleted row until it is reaped, by "table/name" (indexID).
func tombstonesTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableTombstones,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
		},
	}
}

package view

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// GroupEntry is a group as the view holds it.
type GroupEntry struct {
	Name string
	VIP  string
	// LoadView is the group's lb.LoadViewOf: global or local for a
	// least-connections group, "" for others (indexLoadView).
	LoadView    string
	Group       lb.Group
	CreateIndex uint64
	ModifyIndex uint64
}

// HostEntry is an agent's host.
type HostEntry struct {
	Name        string
	Address     string
	Version     string
	Ports       []wire.HostPort
	ExternalIDs map[string]string
	CreateIndex uint64
	ModifyIndex uint64
}

// IndexEntry records the index of a table's last change.
type IndexEntry struct {
	Key   string
	Value uint64
}

// Tombstone marks a deleted row until it is reaped.
type Tombstone struct {
	Key   string // table/name
	Table string
	Name  string
	Index uint64
	At    time.Time // when the view learnt of the deletion
}

// View is the controller's indexed, watchable view of the store of record
// (store.Store): every read and watch is served from it.
type View struct{ db viewDB }

// viewDB is the view's go-memdb, opened only through ReadTxn and WriteTxn
// (as Consul's changeTrackerDB is).
type viewDB struct{ db *memdb.MemDB }

// ReadTxn opens a read transaction: a snapshot.
func (d viewDB) ReadTxn() *memdb.Txn { return d.db.Txn(false) }

// WriteTxn opens the write transaction (one at a time); the caller defers
// its Abort and commits when its xxxTxn helper succeeded.
func (d viewDB) WriteTxn() *memdb.Txn { return d.db.Txn(true) }

// New returns an empty view.
func New() (*View, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("view schema: %w", err)
	}
	return &View{db: viewDB{db: db}}, nil
}

// bump records idx as the latest change of table, refusing to go back.
func bump(txn *memdb.Txn, table string, idx uint64) error {
	raw, err := txn.First(TableIndex, indexID, table)
	if err != nil {
		return err
	}
	if raw != nil && raw.(*IndexEntry).Value > idx {
		return fmt.Errorf("index %d is behind %s's %d", idx, table, raw.(*IndexEntry).Value)
	}
	return txn.Insert(TableIndex, &IndexEntry{Key: table, Value: idx})
}

// tableIndex is the index of a table's last change (0: never changed).
func tableIndex(txn *memdb.Txn, tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		if raw, _ := txn.First(TableIndex, indexID, t); raw != nil && raw.(*IndexEntry).Value > max {
			max = raw.(*IndexEntry).Value
		}
	}
	return max
}

// Group reads one group (nil when absent) and the groups table's index,
// adding what to watch to ws.
func (v *View) Group(ws memdb.WatchSet, name string) (uint64, *GroupEntry, error) {
	txn := v.db.ReadTxn()
	ch, raw, err := txn.FirstWatch(TableGroups, indexID, name)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	idx := tableIndex(txn, TableGroups)
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*GroupEntry), nil
}

// Groups lists every group, by name, and the table's index.
func (v *View) Groups(ws memdb.WatchSet) (uint64, []*GroupEntry, error) {
	return groups(v.db.ReadTxn(), ws)
}

func groups(txn *memdb.Txn, ws memdb.WatchSet) (uint64, []*GroupEntry, error) {
	it, err := txn.Get(TableGroups, indexID)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	var out []*GroupEntry
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*GroupEntry))
	}
	return tableIndex(txn, TableGroups), out, nil
}

// LoadGroups lists the least-connections groups with a load view (lb.LoadViewGlobal
// or lb.LoadViewLocal), by name.
func (v *View) LoadGroups(ws memdb.WatchSet, loadView string) ([]*GroupEntry, error) {
	return v.groupsBy(ws, indexLoadView, loadView)
}

// keyFloor is the index-table key of the tombstone floor: deletions at or
// below it are not all remembered (reaped, or before the view was built).
const keyFloor = "tombstone-floor"

// GroupChanges lists, from one snapshot, the groups changed after index
// since, and the names of those deleted after it: what a watcher that saw
// since needs. When the view cannot say what was deleted after since
// (since is 0, below the tombstone floor, or past this view's index) it
// lists every group and
// full is true: the watcher must drop what it has that is not listed.
func (v *View) GroupChanges(ws memdb.WatchSet, since uint64) (idx uint64, changed []*GroupEntry, deleted []string, full bool, err error) {
	txn := v.db.ReadTxn()
	idx, all, err := groups(txn, ws)
	if err != nil {
		return 0, nil, nil, false, err
	}
	// Indexes served start at 1 (the store's first write is 2), so that a
	// watcher that got the empty set of a new store has an index to wait
	// from that is not 0 ("give me everything").
	idx = max(idx, 1)
	// Also full when since is past the table's index: the store is not
	// the one the watcher saw (a new database).
	if since == 0 || since < tableIndex(txn, keyFloor) || since > idx {
		return idx, all, nil, true, nil
	}
	for _, e := range all {
		if e.ModifyIndex > since {
			changed = append(changed, e)
		}
	}
	it, err := txn.Get(TableTombstones, indexID)
	if err != nil {
		return 0, nil, nil, false, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if t := raw.(*Tombstone); t.Table == TableGroups && t.Index > since {
			deleted = append(deleted, t.Name)
		}
	}
	sort.Strings(deleted)
	return idx, changed, deleted, false, nil
}

// SetFloor raises the tombstone floor to index: the view was built at
// index from a store whose earlier deletions it never saw.
func (v *View) SetFloor(index uint64) error {
	txn := v.db.WriteTxn()
	defer txn.Abort()
	if err := setFloorTxn(txn, index); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// setFloorTxn raises the tombstone floor to index, never lowering it.
func setFloorTxn(txn *memdb.Txn, index uint64) error {
	if tableIndex(txn, keyFloor) >= index {
		return nil
	}
	return txn.Insert(TableIndex, &IndexEntry{Key: keyFloor, Value: index})
}

// ReapTombstonesBefore reaps the tombstones the view learnt of before t.
// It reads and reaps in one transaction.
func (v *View) ReapTombstonesBefore(t time.Time) (int, error) {
	txn := v.db.WriteTxn()
	defer txn.Abort()
	n, err := reapTombstonesBeforeTxn(txn, t)
	if err != nil {
		return 0, err
	}
	txn.Commit()
	return n, nil
}

// reapTombstonesBeforeTxn reaps up to the highest index of the tombstones
// learnt of before t (nothing when there are none).
func reapTombstonesBeforeTxn(txn *memdb.Txn, t time.Time) (int, error) {
	it, err := txn.Get(TableTombstones, indexID)
	if err != nil {
		return 0, err
	}
	var upTo uint64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if ts := raw.(*Tombstone); ts.At.Before(t) {
			upTo = max(upTo, ts.Index)
		}
	}
	if upTo == 0 {
		return 0, nil
	}
	return reapTombstonesTxn(txn, upTo)
}

// ReapTombstones removes tombstones at or below index and raises the
// floor to it: a watcher that saw less then gets everything again.
func (v *View) ReapTombstones(index uint64) (int, error) {
	txn := v.db.WriteTxn()
	defer txn.Abort()
	n, err := reapTombstonesTxn(txn, index)
	if err != nil {
		return 0, err
	}
	txn.Commit()
	return n, nil
}

// reapTombstonesTxn removes the tombstones at or below index, records the
// change at the groups table's index and raises the floor to index.
func reapTombstonesTxn(txn *memdb.Txn, index uint64) (int, error) {
	it, err := txn.Get(TableTombstones, indexID)
	if err != nil {
		return 0, err
	}
	var gone []any
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if raw.(*Tombstone).Index <= index {
			gone = append(gone, raw)
		}
	}
	for _, raw := range gone {
		if err := txn.Delete(TableTombstones, raw); err != nil {
			return 0, err
		}
	}
	if err := bump(txn, TableTombstones, tableIndex(txn, TableGroups)); err != nil {
		return 0, err
	}
	if err := setFloorTxn(txn, index); err != nil {
		return 0, err
	}
	return len(gone), nil
}

// Query is a read that reports its index and what to watch.
type Query func(ws memdb.WatchSet) (uint64, error)

// Block runs query until its index passes minIndex, waking when something
// it read changes, or until ctx ends (then it returns the last result's
// index, as Consul's blocking queries do at their wait time).
func (v *View) Block(ctx context.Context, minIndex uint64, query Query) (uint64, error) {
	for {
		ws := memdb.NewWatchSet()
		idx, err := query(ws)
		if err != nil || idx > minIndex {
			return idx, err
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return idx, nil // waited long enough: answer with what is there
		}
	}
}

// Batch is what one sync of the store brings into the view: rows as the
// store holds them (with their own create and modify indexes) and the
// names of rows gone.
type Batch struct {
	Groups        []*GroupEntry
	DeletedGroups []string
	Hosts         []*HostEntry
	DeletedHosts  []string
}

// Apply brings a batch into the view in one transaction at index idx, the
// store's index once the batch's changes are all in: rows are taken with
// their own indexes (an entry whose ModifyIndex the view has already is
// left alone, so a resync wakes nobody), deletions leave tombstones at
// idx. A table's index moves only when one of its rows changed.
func (v *View) Apply(idx uint64, b Batch) error {
	txn := v.db.WriteTxn()
	defer txn.Abort()
	if err := applyTxn(txn, idx, b); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// applyTxn brings b in at idx: rows, tombstones, then the changed tables'
// indexes and the view's.
func applyTxn(txn *memdb.Txn, idx uint64, b Batch) error {
	changed := map[string]bool{}
	for _, e := range b.Groups {
		raw, err := txn.First(TableGroups, indexID, e.Name)
		if err != nil {
			return err
		}
		if raw != nil && raw.(*GroupEntry).ModifyIndex == e.ModifyIndex {
			continue
		}
		if err := txn.Insert(TableGroups, e); err != nil {
			return err
		}
		if _, err := txn.DeleteAll(TableTombstones, indexID, TableGroups+"/"+e.Name); err != nil {
			return err
		}
		changed[TableGroups] = true
	}
	for _, e := range b.Hosts {
		raw, err := txn.First(TableHosts, indexID, e.Name)
		if err != nil {
			return err
		}
		if raw != nil && raw.(*HostEntry).ModifyIndex == e.ModifyIndex {
			continue
		}
		if err := txn.Insert(TableHosts, e); err != nil {
			return err
		}
		if _, err := txn.DeleteAll(TableTombstones, indexID, TableHosts+"/"+e.Name); err != nil {
			return err
		}
		changed[TableHosts] = true
	}
	for table, names := range map[string][]string{TableGroups: b.DeletedGroups, TableHosts: b.DeletedHosts} {
		for _, name := range names {
			raw, err := txn.First(table, indexID, name)
			if err != nil {
				return err
			}
			if raw == nil {
				continue
			}
			if err := txn.Delete(table, raw); err != nil {
				return err
			}
			if err := txn.Insert(TableTombstones, &Tombstone{Key: table + "/" + name, Table: table, Name: name, Index: idx, At: time.Now()}); err != nil {
				return err
			}
			changed[table] = true
		}
	}
	for table := range changed {
		if err := bump(txn, table, idx); err != nil {
			return err
		}
	}
	return bump(txn, TableIndex, idx)
}

// Index is the index of the last batch applied: the store's index the view
// has caught up with.
func (v *View) Index() uint64 {
	return tableIndex(v.db.ReadTxn(), TableIndex)
}

// WaitIndex blocks until the view has caught up with idx or ctx ends.
func (v *View) WaitIndex(ctx context.Context, idx uint64) error {
	for {
		txn := v.db.ReadTxn()
		ch, raw, err := txn.FirstWatch(TableIndex, indexID, TableIndex)
		if err != nil {
			return err
		}
		if raw != nil && raw.(*IndexEntry).Value >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("view behind the store (at %d, want %d): %w", tableIndex(txn, TableIndex), idx, ctx.Err())
		}
	}
}

// Hosts lists every host, by name, and the table's index.
func (v *View) Hosts(ws memdb.WatchSet) (uint64, []*HostEntry, error) {
	txn := v.db.ReadTxn()
	it, err := txn.Get(TableHosts, indexID)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	var out []*HostEntry
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*HostEntry))
	}
	return tableIndex(txn, TableHosts), out, nil
}

// Host reads one host (nil when absent), adding what to watch to ws.
func (v *View) Host(ws memdb.WatchSet, name string) (*HostEntry, error) {
	ch, raw, err := v.db.ReadTxn().FirstWatch(TableHosts, indexID, name)
	if err != nil {
		return nil, err
	}
	ws.Add(ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*HostEntry), nil
}

// GroupsByVIP lists the groups on one VIP, adding what to watch to ws.
func (v *View) GroupsByVIP(ws memdb.WatchSet, vip string) ([]*GroupEntry, error) {
	return v.groupsBy(ws, indexVIP, vip)
}

// groupsBy lists the groups an index finds for a value, adding what to
// watch to ws.
func (v *View) groupsBy(ws memdb.WatchSet, index, value string) ([]*GroupEntry, error) {
	it, err := v.db.ReadTxn().Get(TableGroups, index, value)
	if err != nil {
		return nil, err
	}
	ws.Add(it.WatchCh())
	var out []*GroupEntry
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*GroupEntry))
	}
	return out, nil
}

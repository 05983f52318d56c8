package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/controller/view"
)

// Options configure a Store.
type Options struct {
	// Endpoints are the ovsdb-server remotes ("unix:PATH", "tcp:H:P",
	// "ssl:H:P"); several name the members of a clustered database, of
	// which the store talks to the leader.
	Endpoints []string
	Log       *slog.Logger
	// OnCommit, when set, is told how long each committed transaction took.
	OnCommit func(time.Duration)
	// NotDurable skips the fsync each write waits for (OVSDB's durable
	// commit): faster, and an acknowledged write then survives a kill -9
	// of the server but not a power cut.
	NotDurable bool
}

// Store is the controller's store of record: the DLB database of an
// ovsdb-server, written one transaction per change, and the view
// (view.View, controller/view) that its monitor keeps, which serves every
// read.
//
// Every transaction moves DLB_Global's index up by one, on the condition
// (an OVSDB "wait") that nobody moved it meanwhile, and stamps the rows it
// writes with the new index: the index is durable, totally ordered across
// controllers sharing a clustered database, and the view's index is the
// store's.
type Store struct {
	opts Options
	log  *slog.Logger
	cl   client.Client
	view *view.View

	writeMu sync.Mutex // one writer at a time in this process

	poke chan struct{}

	logMu   sync.Mutex // guards changed, full, logged
	changed map[change]struct{}
	full    bool   // read everything at the next sync
	logged  uint64 // the index of the last DLB_Global update seen in order

	// appliedGroups and appliedHosts are the modify index of each row
	// the view holds (the feed's own).
	appliedGroups, appliedHosts map[string]uint64

	done chan struct{}
}

// Errors a write returns (wrapped, with the detail).
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed meanwhile")
)

// Open connects to the database, starts its monitor and the feed of the
// view, and returns once the view holds what the database holds. The
// store runs until ctx ends.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("store: no ovsdb-server endpoint")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	v, err := view.New()
	if err != nil {
		return nil, err
	}
	dbm, err := dlbdb.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("dlb database model: %w", err)
	}
	quiet := logr.Discard()
	clOpts := []client.Option{
		client.WithLogger(&quiet),
		client.WithLeaderOnly(true),
		client.WithReconnect(5*time.Second, &backoff.ExponentialBackOff{
			InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2,
			MaxInterval: 2 * time.Second, Clock: backoff.SystemClock,
		}),
	}
	for _, e := range opts.Endpoints {
		clOpts = append(clOpts, client.WithEndpoint(e))
	}
	cl, err := client.NewOVSDBClient(dbm, clOpts...)
	if err != nil {
		return nil, fmt.Errorf("ovsdb client: %w", err)
	}
	s := &Store{opts: opts, log: opts.Log, cl: cl, view: v, poke: make(chan struct{}, 1), done: make(chan struct{}),
		changed: map[change]struct{}{}, full: true, appliedHosts: map[string]uint64{}}
	// Open's own steps have a deadline; the store lives until ctx ends.
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	defer ocancel()
	if err := cl.Connect(octx); err != nil {
		return nil, fmt.Errorf("connect to ovsdb-server %v: %w", opts.Endpoints, err)
	}
	// The cache exists once connected, and lasts across reconnections.
	cl.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(table string, _ model.Model) { s.note(table, nil, nil) },
		UpdateFunc: func(table string, old, m model.Model) { s.note(table, old, m) },
		DeleteFunc: func(table string, _ model.Model) { s.note(table, nil, nil) },
	})
	if _, err := cl.MonitorAll(octx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("monitor the DLB database: %w", err)
	}
	if err := s.ensureGlobal(octx); err != nil {
		cl.Close()
		return nil, err
	}
	go s.feed(ctx)
	go func() { <-s.done; cl.Close() }() // after the feed's last read
	s.kick()
	if err := v.WaitIndex(octx, s.cachedIndex()); err != nil {
		return nil, err
	}
	return s, nil
}

// View is the indexed, watchable view every read is served from.
func (s *Store) View() *view.View { return s.view }

// Connected says whether the store's connection to ovsdb-server is up.
func (s *Store) Connected() bool { return s.cl.Connected() }

// Done is closed when the feed has stopped (its ctx ended).
func (s *Store) Done() <-chan struct{} { return s.done }

// ensureGlobal creates the DLB_Global row when the database has none. The
// table holds one row at most (maxRows): of two controllers starting on
// one new clustered database, the second one's insert is refused.
func (s *Store) ensureGlobal(ctx context.Context) error {
	if s.cl.Cache().Table(dlbdb.DLBGlobalTable).Len() > 0 {
		return nil
	}
	// Index 1: the first write is 2, and 1 is what the view serves for a
	// store without groups (view.GroupChanges).
	ops := []ovsdb.Operation{{Op: ovsdb.OperationInsert, Table: dlbdb.DLBGlobalTable, Row: ovsdb.Row{"index": 1}}}
	res, err := s.cl.Transact(ctx, ops...)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(res, ops)
	}
	if err != nil && (len(res) == 0 || res[len(res)-1].Error != "constraint violation") {
		return fmt.Errorf("create the DLB_Global row: %w", opErrors(res, err))
	}
	return nil
}

// cachedGroupsIndex is the index of the last group change, as the monitor
// last saw it.
func (s *Store) cachedGroupsIndex() uint64 {
	for _, m := range s.cl.Cache().Table(dlbdb.DLBGlobalTable).RowsShallow() {
		return uint64(m.(*dlbdb.DLBGlobal).GroupsIndex)
	}
	return 0
}

// cachedIndex is DLB_Global's index as the monitor last saw it.
func (s *Store) cachedIndex() uint64 {
	for _, m := range s.cl.Cache().Table(dlbdb.DLBGlobalTable).RowsShallow() {
		return uint64(m.(*dlbdb.DLBGlobal).Index)
	}
	return 0
}

// change names a row a transaction changed: "Group:web", "Host:h1".
type change struct{ table, name string }

func changeOf(table, name string) string { return table + ":" + name }

func parseChange(s string) (change, bool) {
	table, name, ok := strings.Cut(s, ":")
	if !ok || name == "" || (table != dlbdb.GroupTable && table != dlbdb.HostTable) {
		return change{}, false
	}
	return change{table, name}, true
}

// note keeps the change log from the monitor's events. Every write moves
// DLB_Global.index by one and names the row it changed in last_change;
// libovsdb delivers each update of that row in order, so the updates are
// a complete log of what changed, and a sync reads just those rows. When
// the log has a gap (the cache was refilled after a reconnection, a
// transaction by another client, updates folded together) the next sync
// reads everything.
func (s *Store) note(table string, old, m model.Model) {
	if table == dlbdb.DLBGlobalTable {
		s.logMu.Lock()
		if old == nil || m == nil {
			s.full = true
		} else {
			o, n := old.(*dlbdb.DLBGlobal), m.(*dlbdb.DLBGlobal)
			c, ok := parseChange(n.LastChange)
			switch {
			case n.Index == o.Index:
			case ok && n.Index == o.Index+1 && uint64(o.Index) == s.logged:
				s.changed[c] = struct{}{}
			default:
				s.full = true
			}
			s.logged = max(s.logged, uint64(n.Index))
		}
		s.logMu.Unlock()
	}
	s.kick()
}

func (s *Store) kick() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// feed brings what the monitor saw into the view, until ctx ends.
func (s *Store) feed(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.poke:
		}
		for {
			err := s.sync()
			if err == nil {
				break
			}
			wait := 200 * time.Millisecond
			if errors.Is(err, errTorn) {
				wait = time.Millisecond
			} else {
				s.log.Warn("view sync failed; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// errTorn is a sync that read across a transaction; it is read again.
var errTorn = errors.New("the database changed while it was read")

// sync brings the monitor's cache into the view. Normally it reads the
// rows the change log names, and applies them at the log's index; after a
// gap in the log it compares every row's modify index with what it
// applied, and applies at the cache's index. The cache is read table by
// table while updates may land, so the full read checks DLB_Global's
// index before and after and reads again when a transaction landed in
// between. (Monitor events may lag the cache: a row read may be newer
// than the log's index; its own event then finds nothing more to do.)
func (s *Store) sync() error {
	s.logMu.Lock()
	changed, full, logged := s.changed, s.full, s.logged
	s.changed, s.full = map[change]struct{}{}, false
	s.logMu.Unlock()
	var err error
	if full || s.appliedGroups == nil {
		err = s.syncAll()
	} else if len(changed) > 0 {
		err = s.syncChanged(changed, logged)
	}
	if err != nil {
		s.logMu.Lock()
		for c := range changed {
			s.changed[c] = struct{}{}
		}
		s.full = s.full || full
		s.logMu.Unlock()
	}
	return err
}

// syncChanged applies the rows the log named, at the log's index.
func (s *Store) syncChanged(changed map[change]struct{}, logged uint64) error {
	c := s.cl.Cache()
	ports, members, checks := c.Table(dlbdb.VIPPortTable), c.Table(dlbdb.MemberTable), c.Table(dlbdb.HealthCheckTable)
	var b view.Batch
	groups, hosts := map[string]uint64{}, map[string]uint64{}
	deletedGroups, deletedHosts := map[string]bool{}, map[string]bool{}
	for ch := range changed {
		switch ch.table {
		case dlbdb.GroupTable:
			_, m, err := c.Table(dlbdb.GroupTable).RowByModel(&dlbdb.Group{Name: ch.name})
			if err != nil || m == nil {
				b.DeletedGroups = append(b.DeletedGroups, ch.name)
				deletedGroups[ch.name] = true
				continue
			}
			g := m.(*dlbdb.Group)
			e, err := groupEntry(g, ports, members, checks)
			if err != nil {
				return err
			}
			b.Groups = append(b.Groups, e)
			groups[g.Name] = uint64(g.ModifyIndex)
		case dlbdb.HostTable:
			_, m, err := c.Table(dlbdb.HostTable).RowByModel(&dlbdb.Host{Name: ch.name})
			if err != nil || m == nil {
				b.DeletedHosts = append(b.DeletedHosts, ch.name)
				deletedHosts[ch.name] = true
				continue
			}
			h := m.(*dlbdb.Host)
			b.Hosts = append(b.Hosts, hostEntry(h))
			hosts[h.Name] = uint64(h.ModifyIndex)
		}
	}
	if err := s.view.Apply(logged, b); err != nil {
		return fmt.Errorf("apply to the view: %w", err)
	}
	for name, idx := range groups {
		s.appliedGroups[name] = idx
	}
	for name := range deletedGroups {
		delete(s.appliedGroups, name)
	}
	for name, idx := range hosts {
		s.appliedHosts[name] = idx
	}
	for name := range deletedHosts {
		delete(s.appliedHosts, name)
	}
	return nil
}

// syncAll compares every row with what was applied, at the cache's index.
func (s *Store) syncAll() error {
	before := s.cachedIndex()
	c := s.cl.Cache()
	ports, members, checks := c.Table(dlbdb.VIPPortTable), c.Table(dlbdb.MemberTable), c.Table(dlbdb.HealthCheckTable)
	var b view.Batch
	seenGroups := map[string]uint64{}
	for _, m := range c.Table(dlbdb.GroupTable).RowsShallow() {
		g := m.(*dlbdb.Group)
		seenGroups[g.Name] = uint64(g.ModifyIndex)
		if at, ok := s.appliedGroups[g.Name]; ok && at == uint64(g.ModifyIndex) {
			continue
		}
		e, err := groupEntry(g, ports, members, checks)
		if err != nil {
			return err
		}
		b.Groups = append(b.Groups, e)
	}
	for name := range s.appliedGroups {
		if _, ok := seenGroups[name]; !ok {
			b.DeletedGroups = append(b.DeletedGroups, name)
		}
	}
	seenHosts := map[string]uint64{}
	for _, m := range c.Table(dlbdb.HostTable).RowsShallow() {
		h := m.(*dlbdb.Host)
		seenHosts[h.Name] = uint64(h.ModifyIndex)
		if at, ok := s.appliedHosts[h.Name]; ok && at == uint64(h.ModifyIndex) {
			continue
		}
		b.Hosts = append(b.Hosts, hostEntry(h))
	}
	for name := range s.appliedHosts {
		if _, ok := seenHosts[name]; !ok {
			b.DeletedHosts = append(b.DeletedHosts, name)
		}
	}
	if after := s.cachedIndex(); after != before {
		return errTorn
	}
	if err := s.view.Apply(before, b); err != nil {
		// The view never goes back: a reconnection to a cluster member
		// that is behind is waited out.
		return fmt.Errorf("apply to the view: %w", err)
	}
	first := s.appliedGroups == nil
	s.appliedGroups, s.appliedHosts = seenGroups, seenHosts
	if first {
		// The view starts here: group deletions up to the last group
		// change were never seen by it.
		if err := s.view.SetFloor(s.cachedGroupsIndex()); err != nil {
			return err
		}
	}
	s.logMu.Lock()
	s.logged = max(s.logged, before)
	s.logMu.Unlock()
	return nil
}

func hostEntry(h *dlbdb.Host) *view.HostEntry {
	e := &view.HostEntry{Name: h.Name, Version: h.Version, Ports: hostPorts(h.Ports), ExternalIDs: h.ExternalIDs,
		CreateIndex: uint64(h.CreateIndex), ModifyIndex: uint64(h.ModifyIndex)}
	if h.Address != nil {
		e.Address = *h.Address
	}
	return e
}

// groupEntry reads a Group row's ports and members from the cache.
func groupEntry(g *dlbdb.Group, ports, members, checks *cache.RowCache) (*view.GroupEntry, error) {
	r := Rows{Group: *g}
	for _, id := range g.Ports {
		m := ports.Row(id)
		if m == nil {
			return nil, fmt.Errorf("group %s: VIP_Port %s: %w", g.Name, id, errTorn)
		}
		r.Ports = append(r.Ports, *m.(*dlbdb.VIPPort))
	}
	for _, id := range g.Members {
		m := members.Row(id)
		if m == nil {
			return nil, fmt.Errorf("group %s: Member %s: %w", g.Name, id, errTorn)
		}
		r.Members = append(r.Members, *m.(*dlbdb.Member))
	}
	if id := g.HealthCheck; id != nil {
		m := checks.Row(*id)
		if m == nil {
			return nil, fmt.Errorf("group %s: Health_Check %s: %w", g.Name, *id, errTorn)
		}
		r.HealthCheck = m.(*dlbdb.HealthCheck)
	}
	doc := FromRows(r)
	return &view.GroupEntry{Name: g.Name, VIP: canonicalIP(g.Vip), LoadView: doc.LoadViewOf(), Group: doc,
		CreateIndex: uint64(g.CreateIndex), ModifyIndex: uint64(g.ModifyIndex)}, nil
}

// canonicalIP is an address's one spelling (text that is not one stays).
func canonicalIP(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return s
}

// Sync waits until the view holds what the monitor has brought so far.
func (s *Store) Sync(ctx context.Context) error {
	return s.view.WaitIndex(ctx, s.cachedIndex())
}

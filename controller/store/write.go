package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/controller/view"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// GroupWrite is one change of one group.
type GroupWrite struct {
	Name string
	// IfMatch, when not 0, is the modify index the writer saw: the write
	// fails with ErrConflict when the group is at another one (or gone).
	IfMatch uint64
	// Change computes the group's next document from the current one (nil
	// when there is none); nil deletes the group. Change may run more than
	// once (again after a concurrent write) and must not keep cur.
	Change func(cur *lb.Group) (*lb.Group, error)
}

// maxAttempts bounds the retries of a write that lost a race.
const maxAttempts = 100

// WriteGroup validates and commits one change in one transaction, and
// returns once the view holds it: the group as stored (nil when deleted)
// and the index of the change. Errors: ErrNotFound, ErrExists, ErrConflict
// (wrapped), *lb.ValidationError, or the store's.
func (s *Store) WriteGroup(ctx context.Context, w GroupWrite) (*view.GroupEntry, uint64, error) {
	idx, err := s.write(ctx, dlbdb.GroupTable, w.Name, w.IfMatch, func() (*rowState, error) {
		_, cur, err := s.view.Group(nil, w.Name)
		if err != nil || cur == nil && w.IfMatch != 0 {
			return nil, err
		}
		if cur != nil && w.IfMatch != 0 && cur.ModifyIndex != w.IfMatch {
			return &rowState{exists: true, modify: cur.ModifyIndex}, nil // a conflict: no change computed
		}
		var curDoc *lb.Group
		if cur != nil {
			g := cur.Group.Clone()
			curDoc = &g
		}
		next, err := w.Change(curDoc)
		if err != nil {
			return nil, err
		}
		if next != nil {
			if next.Name != w.Name {
				return nil, &lb.ValidationError{Problems: []lb.Problem{{Path: "name", Msg: fmt.Sprintf("%q does not match the group written (%q)", next.Name, w.Name)}}}
			}
			if err := s.validate(next); err != nil {
				return nil, err
			}
		}
		st := &rowState{}
		if cur != nil {
			st.exists, st.create, st.modify = true, cur.CreateIndex, cur.ModifyIndex
		}
		if next != nil {
			st.insert = func(idx, create int) ([]ovsdb.Operation, error) {
				r := ToRows(*next)
				r.Group.ModifyIndex, r.Group.CreateIndex = idx, create
				return s.createOps(r)
			}
		}
		return st, nil
	})
	if err != nil || idx == 0 {
		return nil, idx, err
	}
	_, e, err := s.view.Group(nil, w.Name)
	return e, idx, err
}

// WriteHost registers a host, or changes its registration; a registration
// equal to the stored one writes nothing. reg nil deletes the host.
func (s *Store) WriteHost(ctx context.Context, name string, reg *wire.HostRegistration) (*view.HostEntry, uint64, error) {
	if reg != nil {
		if err := validHost(name, reg); err != nil {
			return nil, 0, err
		}
	}
	var unchanged *view.HostEntry
	idx, err := s.write(ctx, dlbdb.HostTable, name, 0, func() (*rowState, error) {
		cur, err := s.view.Host(nil, name)
		if err != nil {
			return nil, err
		}
		st := &rowState{}
		if cur != nil {
			st.exists, st.create, st.modify = true, cur.CreateIndex, cur.ModifyIndex
		}
		if reg == nil {
			return st, nil
		}
		row := HostRow(name, *reg)
		if cur != nil && cur.Version == row.Version && cur.Address == reg.Address && slices.EqualFunc(cur.Ports, hostPorts(row.Ports), portEqual) {
			unchanged = cur
			return nil, errUnchanged
		}
		st.insert = func(idx, create int) ([]ovsdb.Operation, error) {
			row.ModifyIndex, row.CreateIndex = idx, create
			return s.cl.Create(&row)
		}
		return st, nil
	})
	if errors.Is(err, errUnchanged) {
		return unchanged, unchanged.ModifyIndex, nil
	}
	if err != nil || reg == nil {
		return nil, idx, err
	}
	e, err := s.view.Host(nil, name)
	return e, idx, err
}

var errUnchanged = errors.New("unchanged")

func portEqual(a, b wire.HostPort) bool {
	return a.Name == b.Name && a.IfaceID == b.IfaceID && a.MAC == b.MAC && slices.Equal(a.IPs, b.IPs)
}

// validHost checks a registration, naming the field at fault.
func validHost(name string, reg *wire.HostRegistration) error {
	var problems []lb.Problem
	if !lb.ValidName(name) {
		problems = append(problems, lb.Problem{Path: "path.name", Msg: fmt.Sprintf("%q: use 1..63 letters, digits, '-', '_' or '.', starting with a letter or digit", name)})
	}
	seen := map[string]bool{}
	for i, p := range reg.Ports {
		switch {
		case p.Name == "":
			problems = append(problems, lb.Problem{Path: fmt.Sprintf("ports[%d].name", i), Msg: "required"})
		case seen[p.Name]:
			problems = append(problems, lb.Problem{Path: fmt.Sprintf("ports[%d].name", i), Msg: fmt.Sprintf("%q is listed twice", p.Name)})
		case strings.ContainsAny(p.IfaceID+p.MAC, " ="):
			problems = append(problems, lb.Problem{Path: fmt.Sprintf("ports[%d]", i), Msg: "iface_id and mac cannot hold spaces or '='"})
		}
		seen[p.Name] = true
		for j, ip := range p.IPs {
			if _, err := netip.ParseAddr(ip); err != nil {
				problems = append(problems, lb.Problem{Path: fmt.Sprintf("ports[%d].ips[%d]", i, j), Msg: fmt.Sprintf("%q is not an IP address", ip)})
			}
		}
	}
	if len(problems) > 0 {
		return &lb.ValidationError{Problems: problems}
	}
	return nil
}

// rowState is a row as a write found it in the view, and what it puts in
// its place (insert nil: it deletes the row).
type rowState struct {
	exists         bool
	create, modify uint64
	insert         func(idx, create int) ([]ovsdb.Operation, error)
}

// write is every write's loop: read the row from the view at the store's
// index, let prepare decide (nil state: the row is absent and must be),
// commit one transaction conditioned on the index and on the row, retry
// when another writer won the race, and return the change's index once
// the view holds it.
func (s *Store) write(ctx context.Context, table, name string, ifMatch uint64, prepare func() (*rowState, error)) (uint64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	what := fmt.Sprintf("%s %q", strings.ToLower(table), name)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		base := s.cachedIndex()
		if err := s.view.WaitIndex(ctx, base); err != nil {
			return 0, err
		}
		cur, err := prepare()
		if err != nil {
			return 0, err
		}
		if cur == nil {
			cur = &rowState{}
		}
		if ifMatch != 0 && (!cur.exists || cur.modify != ifMatch) {
			at := "is gone"
			if cur.exists {
				at = fmt.Sprintf("is at index %d", cur.modify)
			}
			return 0, fmt.Errorf("%s: If-Match %d but it %s: %w", what, ifMatch, at, ErrConflict)
		}
		if cur.insert == nil && !cur.exists {
			return 0, fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		ops, err := s.rowOps(base, table, name, cur)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		res, err := s.cl.Transact(ctx, ops...)
		if err == nil {
			_, err = ovsdb.CheckOperationResults(res, ops)
		}
		if err != nil {
			if isWaitFailure(res) {
				// Another writer moved the index first: read again.
				s.waitCacheChange(ctx, base)
				continue
			}
			if errors.Is(err, client.ErrNotConnected) || notSent(err) {
				// Not sent: the client is reconnecting (to the cluster's
				// new leader, say), or the server was gone before the
				// request was written (the client learns it a little
				// later). Wait for it, within ctx. (A transaction cut off
				// in flight is not retried: it may have committed; the
				// caller is told it failed.)
				attempt--
				select {
				case <-ctx.Done():
					return 0, fmt.Errorf("commit %s: %w (%w)", what, err, ctx.Err())
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			return 0, fmt.Errorf("commit %s: %w", what, opErrors(res, err))
		}
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(time.Since(start))
		}
		idx := base + 1
		if err := s.view.WaitIndex(ctx, idx); err != nil {
			// Committed: the change is stored even if the view is slow.
			return idx, err
		}
		return idx, nil
	}
	return 0, fmt.Errorf("%s: %d attempts lost to concurrent writers", what, maxAttempts)
}

// validate checks a group on its own and against the other groups on its
// VIP; problem paths are the document's ("ports[0].port").
func (s *Store) validate(g *lb.Group) error {
	if err := g.Validate(); err != nil {
		return err
	}
	others, err := s.view.GroupsByVIP(nil, canonicalIP(g.VIP))
	if err != nil {
		return err
	}
	var all []lb.Group
	for _, e := range others {
		if e.Name != g.Name {
			all = append(all, e.Group)
		}
	}
	all = append(all, *g)
	err = lb.ValidateAll(all)
	var verr *lb.ValidationError
	if !errors.As(err, &verr) {
		return err
	}
	prefix := fmt.Sprintf("groups[%d]", len(all)-1)
	var mine []lb.Problem
	for _, p := range verr.Problems {
		if rest, ok := strings.CutPrefix(p.Path, prefix); ok {
			mine = append(mine, lb.Problem{Path: strings.TrimPrefix(rest, "."), Msg: p.Msg})
		}
	}
	if len(mine) == 0 {
		return nil
	}
	return &lb.ValidationError{Problems: mine}
}

// rowOps is the transaction of one change: move DLB_Global's index from
// base to base+1 (on the condition that it is at base) and name the row
// in last_change, check that the row is as read (absent, or at its modify
// index), then delete it and insert the new one (a group's ports and
// members, not root rows, go with the deleted row).
func (s *Store) rowOps(base uint64, table, name string, cur *rowState) ([]ovsdb.Operation, error) {
	zero := 0
	idx := int(base + 1)
	byName := []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}}
	global := ovsdb.Row{"index": idx, "last_change": changeOf(table, name)}
	if table == dlbdb.GroupTable {
		// The index of the last group change: a controller that starts
		// knows every group deletion after it (docs/store.md, the floor).
		global["groups_index"] = idx
	}
	ops := []ovsdb.Operation{
		{Op: ovsdb.OperationWait, Table: dlbdb.DLBGlobalTable, Where: allRows, Columns: []string{"index"},
			Until: string(ovsdb.WaitConditionEqual), Rows: []ovsdb.Row{{"index": int(base)}}, Timeout: &zero},
		{Op: ovsdb.OperationUpdate, Table: dlbdb.DLBGlobalTable, Where: allRows, Row: global},
	}
	create := idx
	if !cur.exists {
		// Absent: the rows named so are not [that row] (OVSDB's JSON has
		// no way to say "are []" through this client's encoder).
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationWait, Table: table, Where: byName, Columns: []string{"name"},
			Until: string(ovsdb.WaitConditionNotEqual), Rows: []ovsdb.Row{{"name": name}}, Timeout: &zero})
	} else {
		create = int(cur.create)
		ops = append(ops,
			ovsdb.Operation{Op: ovsdb.OperationWait, Table: table, Where: byName, Columns: []string{"modify_index"},
				Until: string(ovsdb.WaitConditionEqual), Rows: []ovsdb.Row{{"modify_index": int(cur.modify)}}, Timeout: &zero},
			ovsdb.Operation{Op: ovsdb.OperationDelete, Table: table, Where: byName})
	}
	if cur.insert != nil {
		more, err := cur.insert(idx, create)
		if err != nil {
			return nil, err
		}
		ops = append(ops, more...)
	}
	if !s.opts.NotDurable {
		// The server answers only once the transaction is on disk
		// (fsync), not just written: an acknowledged write survives a
		// power cut, not only a kill -9.
		durable := true
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationCommit, Durable: &durable})
	}
	return ops, nil
}

// createOps inserts a group's rows.
func (s *Store) createOps(r Rows) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	for i := range r.Ports {
		o, err := s.cl.Create(&r.Ports[i])
		if err != nil {
			return nil, fmt.Errorf("VIP_Port row: %w", err)
		}
		ops = append(ops, o...)
	}
	for i := range r.Members {
		o, err := s.cl.Create(&r.Members[i])
		if err != nil {
			return nil, fmt.Errorf("Member row: %w", err)
		}
		ops = append(ops, o...)
	}
	if r.HealthCheck != nil {
		o, err := s.cl.Create(r.HealthCheck)
		if err != nil {
			return nil, fmt.Errorf("Health_Check row: %w", err)
		}
		ops = append(ops, o...)
	}
	o, err := s.cl.Create(&r.Group)
	if err != nil {
		return nil, fmt.Errorf("Group row: %w", err)
	}
	return append(ops, o...), nil
}

// allRows is a condition every row meets (OVSDB requires a "where" on
// wait, update and delete, and the JSON encoder drops an empty one).
var allRows = []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"}}}

// isWaitFailure says whether a transaction failed on one of its "wait"
// conditions (someone else wrote first), not on its own content.
func isWaitFailure(res []ovsdb.OperationResult) bool {
	for _, r := range res {
		if r.Error == "timed out" {
			return true
		}
	}
	return false
}

// opErrors describes the failed operations of a transaction.
func opErrors(res []ovsdb.OperationResult, err error) error {
	var parts []string
	for i, r := range res {
		if r.Error != "" {
			parts = append(parts, fmt.Sprintf("op %d: %s: %s", i, r.Error, r.Details))
		}
	}
	if len(parts) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s", err, strings.Join(parts, "; "))
}

// waitCacheChange waits, briefly, for the monitor to bring an index past
// base.
func (s *Store) waitCacheChange(ctx context.Context, base uint64) {
	deadline := time.Now().Add(time.Second)
	for s.cachedIndex() <= base && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}

// notSent says err is the failure to write a request to the server's
// socket: the server cannot have read it, let alone committed it. (A
// failure to read the answer is not one: the request may have been
// committed.)
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write"
}

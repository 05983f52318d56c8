package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/controller/state"
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
func (s *Store) WriteGroup(ctx context.Context, w GroupWrite) (*state.GroupEntry, uint64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		base := s.cachedIndex()
		if err := s.view.WaitIndex(ctx, base); err != nil {
			return nil, 0, err
		}
		_, cur, err := s.view.Group(nil, w.Name)
		if err != nil {
			return nil, 0, err
		}
		if w.IfMatch != 0 && (cur == nil || cur.ModifyIndex != w.IfMatch) {
			at := "is gone"
			if cur != nil {
				at = fmt.Sprintf("is at index %d", cur.ModifyIndex)
			}
			return nil, 0, fmt.Errorf("group %q: If-Match %d but it %s: %w", w.Name, w.IfMatch, at, ErrConflict)
		}
		var curDoc *lb.Group
		if cur != nil {
			g := cur.Group.Clone()
			curDoc = &g
		}
		next, err := w.Change(curDoc)
		if err != nil {
			return nil, 0, err
		}
		if next == nil && cur == nil {
			return nil, 0, fmt.Errorf("group %q: %w", w.Name, ErrNotFound)
		}
		if next != nil {
			if next.Name != w.Name {
				return nil, 0, &lb.ValidationError{Problems: []lb.Problem{{Path: "name", Msg: fmt.Sprintf("%q does not match the group written (%q)", next.Name, w.Name)}}}
			}
			if err := s.validate(next); err != nil {
				return nil, 0, err
			}
		}
		ops, err := s.groupOps(base, w.Name, cur, next)
		if err != nil {
			return nil, 0, err
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
			if errors.Is(err, client.ErrNotConnected) {
				// Not sent: the client is reconnecting (to the cluster's
				// new leader, say). Wait for it, within ctx. (A
				// transaction cut off in flight is not retried: it may
				// have committed; the caller is told it failed.)
				attempt--
				select {
				case <-ctx.Done():
					return nil, 0, fmt.Errorf("commit group %q: %w (%w)", w.Name, err, ctx.Err())
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			return nil, 0, fmt.Errorf("commit group %q: %w", w.Name, opErrors(res, err))
		}
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(time.Since(start))
		}
		idx := base + 1
		if err := s.view.WaitIndex(ctx, idx); err != nil {
			// Committed: the change is stored even if the view is slow.
			return nil, idx, err
		}
		if next == nil {
			return nil, idx, nil
		}
		_, e, err := s.view.Group(nil, w.Name)
		return e, idx, err
	}
	return nil, 0, fmt.Errorf("group %q: %d attempts lost to concurrent writers", w.Name, maxAttempts)
}

// validate checks a group on its own and against the other groups on its
// VIP; problem paths are the document's ("ports[0].port").
func (s *Store) validate(g *lb.Group) error {
	if err := g.Validate(); err != nil {
		return err
	}
	others, err := s.view.GroupsByVIP(canonicalIP(g.VIP))
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

// groupOps is the transaction of one change: move DLB_Global's index from
// base to base+1 (on the condition that it is at base), check that the
// group is as read (absent, or at its modify index), then delete its row
// and insert the new one with its ports and members (which the deleted
// row's go with it: they are not root rows).
func (s *Store) groupOps(base uint64, name string, cur *state.GroupEntry, next *lb.Group) ([]ovsdb.Operation, error) {
	zero := 0
	idx := int(base + 1)
	byName := []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}}
	ops := []ovsdb.Operation{
		{Op: ovsdb.OperationWait, Table: dlbdb.DLBGlobalTable, Where: allRows, Columns: []string{"index"},
			Until: string(ovsdb.WaitConditionEqual), Rows: []ovsdb.Row{{"index": int(base)}}, Timeout: &zero},
		{Op: ovsdb.OperationUpdate, Table: dlbdb.DLBGlobalTable, Where: allRows, Row: ovsdb.Row{"index": idx, "last_change": changeOf(dlbdb.GroupTable, name)}},
	}
	if cur == nil {
		// Absent: the rows named so are not [that row] (OVSDB's JSON has
		// no way to say "are []" through this client's encoder).
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationWait, Table: dlbdb.GroupTable, Where: byName, Columns: []string{"name"},
			Until: string(ovsdb.WaitConditionNotEqual), Rows: []ovsdb.Row{{"name": name}}, Timeout: &zero})
	} else {
		ops = append(ops,
			ovsdb.Operation{Op: ovsdb.OperationWait, Table: dlbdb.GroupTable, Where: byName, Columns: []string{"modify_index"},
				Until: string(ovsdb.WaitConditionEqual), Rows: []ovsdb.Row{{"modify_index": int(cur.ModifyIndex)}}, Timeout: &zero},
			ovsdb.Operation{Op: ovsdb.OperationDelete, Table: dlbdb.GroupTable, Where: byName})
	}
	if next == nil {
		return ops, nil
	}
	r := ToRows(*next)
	r.Group.ModifyIndex, r.Group.CreateIndex = idx, idx
	if cur != nil {
		r.Group.CreateIndex = int(cur.CreateIndex)
	}
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

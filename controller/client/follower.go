package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Follower keeps the host's group set from the watch: the first answer
// (or one after a gap the controller cannot bridge) is the whole set,
// later ones change single groups. It resumes from the index it last
// applied, across reconnections and, through Resume, restarts.
type Follower struct {
	// Client is the controller's client for the host the set is for.
	Client *HostClient
	// Wait is how long one long poll waits for a change (default 30 s),
	// with a controller that has no watch stream.
	Wait time.Duration
	// Idle is how long the watch stream may stay silent before it is taken
	// for broken and opened again (default 3 × wire.StreamKeepAlive).
	Idle time.Duration
	// Deliver is called with every new valid set, checked (lb.Checked:
	// the agent's edge, where the groups are parsed once), and its index,
	// in order. The set is shared with the follower: read-only.
	Deliver func(groups []lb.Checked, index uint64)
	// Observe, when set, is told of every answer (full or not) and of
	// every failed watch (err != nil): for metrics and logs.
	Observe func(c *wire.GroupChanges, err error)
	// Refused, when set, is told of an answer whose set the agent cannot
	// use (nothing is delivered; everything is asked for again).
	Refused func(err error)
	// LongPolls, when set, is told why the follower turned to long polls
	// (the controller has no watch stream, or something on the way holds
	// it); it keeps to them until it is started again.
	LongPolls func(reason error)

	index     uint64
	set       []lb.Checked // the last set delivered (or resumed), sorted by name
	delivered bool         // a set was delivered since the start
	longPoll  bool         // the controller has no watch stream
	pending   *pending     // answers taken but not delivered yet
	checker   lb.SetChecker
}

// pending is what answers taken together changed: checked groups by name,
// names deleted, and the last answer's index.
type pending struct {
	full    bool
	changed map[string]lb.Checked
	deleted map[string]bool
	index   uint64
}

// refusedError is a set from the controller that the agent cannot use.
type refusedError struct{ error }

// Resume starts from a set applied before (a checkpoint) instead of from
// nothing: the first watch asks for what changed after index. The set is
// checked as any other (a checkpoint is a file: input like the rest); an
// invalid one is refused and the follower starts from nothing.
func (f *Follower) Resume(index uint64, groups []lb.Group) error {
	set, err := lb.CheckAll(groups)
	if err != nil {
		return fmt.Errorf("resumed groups: %w", err)
	}
	f.index = index
	slices.SortFunc(set, func(a, b lb.Checked) int { return strings.Compare(a.Name, b.Name) })
	f.set = set
	return nil
}

// Index is the index of the set last delivered.
func (f *Follower) Index() uint64 { return f.index }

// Run watches until ctx ends: through the watch stream, or long polls
// from a controller without it. While the controller is unreachable it
// retries (0.1 s, doubling to 2 s) and delivers nothing: what is
// installed stays. Each new connection resumes from the index last
// applied.
func (f *Follower) Run(ctx context.Context) error {
	idle := f.Idle
	if idle == 0 {
		idle = 3 * wire.StreamKeepAlive
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if f.longPoll {
			err = f.poll(ctx)
		} else {
			f.pending = nil
			err = f.Client.Stream(ctx, f.index, idle, func(c *wire.GroupChanges, more bool) error {
				backoff = 100 * time.Millisecond
				return f.answer(c, more)
			})
			f.pending = nil // a broken stream resumes from the index delivered
			if errors.Is(err, ErrNoStream) {
				f.longPoll = true
				if f.LongPolls != nil {
					f.LongPolls(err)
				}
				continue
			}
		}
		var refused *refusedError
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &refused):
			// A set the agent cannot use (the controller validates, so
			// this is a bug somewhere): keep what is installed, and ask
			// for everything after a pause.
			if f.Refused != nil {
				f.Refused(refused.error)
			}
			f.index = 0
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		case err != nil:
			if f.Observe != nil {
				f.Observe(nil, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		default:
			backoff = 100 * time.Millisecond
		}
	}
	return nil
}

// answer takes one answer of the watch; with more, others are already
// here and the set is delivered after the last of them.
func (f *Follower) answer(c *wire.GroupChanges, more bool) error {
	if f.Observe != nil {
		f.Observe(c, nil)
	}
	if err := f.take(c); err != nil {
		f.pending = nil
		return &refusedError{err}
	}
	if more {
		return nil
	}
	if err := f.flush(); err != nil {
		return &refusedError{err}
	}
	return nil
}

// take checks one answer's groups and adds the answer to what is pending.
func (f *Follower) take(c *wire.GroupChanges) error {
	p := f.pending
	if p == nil || c.Full {
		p = &pending{full: c.Full, changed: map[string]lb.Checked{}, deleted: map[string]bool{}}
	}
	for _, name := range c.Deleted {
		delete(p.changed, name)
		p.deleted[name] = true
	}
	for _, g := range c.Groups {
		checked, err := lb.Check(g.Group)
		if err != nil {
			return fmt.Errorf("group %q from the controller: %w", g.Name, err)
		}
		p.changed[g.Name] = checked
		delete(p.deleted, g.Name)
	}
	p.index = c.Index
	f.pending = p
	return nil
}

// poll is one long poll.
func (f *Follower) poll(ctx context.Context) error {
	wait := f.Wait
	if wait == 0 {
		wait = 30 * time.Second
	}
	if !f.delivered && f.set != nil {
		// Resumed: ask what changed since the checkpoint and have the
		// answer now, even "nothing", to deliver the set at once.
		wait = 0
	}
	pctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	c, err := f.Client.Watch(pctx, f.index, wait)
	if err != nil {
		return err
	}
	return f.answer(c, false)
}

// flush merges what is pending into the set and delivers it with the last
// answer's index (the same set when nothing in it changed: the index still
// moves, and the agent reports it as applied).
func (f *Follower) flush() error {
	p := f.pending
	f.pending = nil
	if p == nil {
		return nil
	}
	if p.index == f.index && !p.full && len(p.changed) == 0 && len(p.deleted) == 0 && f.delivered {
		return nil // the wait ended without a change
	}
	gone := false
	for name := range p.deleted {
		_, ok := slices.BinarySearchFunc(f.set, name, func(g lb.Checked, name string) int { return strings.Compare(g.Name, name) })
		gone = gone || ok
	}
	if !p.full && len(p.changed) == 0 && !gone && f.set != nil {
		f.index, f.delivered = p.index, true
		if f.Deliver != nil {
			f.Deliver(f.set, p.index)
		}
		return nil
	}
	// The changed groups, sorted by name, are merged into the previous set
	// (sorted by name too): a change at 10,000 groups costs a copy of the
	// set, not a sort of it.
	changed := make([]lb.Checked, 0, len(p.changed))
	for _, g := range p.changed {
		changed = append(changed, g)
	}
	slices.SortFunc(changed, func(a, b lb.Checked) int { return strings.Compare(a.Name, b.Name) })
	var base []lb.Checked
	if !p.full {
		base = f.set
	}
	set := make([]lb.Checked, 0, len(base)+len(changed))
	for i, j := 0, 0; i < len(base) || j < len(changed); {
		switch {
		case j < len(changed) && (i == len(base) || changed[j].Name <= base[i].Name):
			if i < len(base) && base[i].Name == changed[j].Name {
				i++ // replaced
			}
			set = append(set, changed[j])
			j++
		default:
			if !p.deleted[base[i].Name] {
				set = append(set, base[i])
			}
			i++
		}
	}
	if err := f.checker.Check(set); err != nil {
		return fmt.Errorf("groups from the controller: %w", err)
	}
	f.index, f.set, f.delivered = p.index, set, true
	if f.Deliver != nil {
		f.Deliver(set, p.index)
	}
	return nil
}

// Package health keeps, in the controller's memory, who probes which
// member (Assign) and every health-checked member's health as its prober
// reports it (issue 19). Health is status, not the admin's document: it
// is never written to the store. A restarted controller settles: for its
// first SettleFor it tells agents so (wire.HealthLine.Settling), and they
// keep what they had for members it does not know yet, while every
// prober, which keeps its results, sends them all again.
//
// It owns: assignments and member health. It must not touch: HTTP (the
// API checks a report's shape before it comes here), the store, or any
// switch.
package health

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// SettleFor is how long a started controller waits for its probers before
// it calls members it has heard nothing of unknown.
const SettleFor = 10 * time.Second

// Registry is the assignments and the members' health. Safe for
// concurrent use.
type Registry struct {
	mu      sync.Mutex
	log     *slog.Logger
	started time.Time
	now     func() time.Time
	version uint64
	// changed is closed (and replaced) on every change.
	changed chan struct{}
	// members is every member of a health-checked group, by reference.
	members map[wire.MemberRef]*member
	// targets are the assignments by id, and their host.
	targets map[string]*assigned
	// hostTargets is each host's target list and the version it last
	// changed at.
	hostTargets map[string]hostList
	// streams counts each host's open health watches; aliveChanged is
	// closed (and replaced) when a host gets its first or loses its last.
	streams      map[string]int
	aliveChanged chan struct{}
}

type member struct {
	wire.MemberHealth
	target  string
	version uint64
	// heard: a prober reported this member since the controller started.
	heard bool
	// changes counts its state changes since it joined the registry.
	changes uint64
}

type assigned struct {
	host string
	t    wire.ProbeTarget
}

type hostList struct {
	targets []wire.ProbeTarget
	version uint64
}

// New is an empty registry, settling from now.
func New(log *slog.Logger) *Registry {
	return &Registry{log: log, now: time.Now, started: time.Now(), changed: make(chan struct{}),
		members: map[wire.MemberRef]*member{}, targets: map[string]*assigned{}, hostTargets: map[string]hostList{}, streams: map[string]int{}, aliveChanged: make(chan struct{})}
}

func (r *Registry) bump() uint64 {
	r.version++
	close(r.changed)
	r.changed = make(chan struct{})
	return r.version
}

// Settling reports whether the registry is still waiting for its
// probers' first reports.
func (r *Registry) Settling() bool { return r.now().Before(r.SettledAt()) }

// SettledAt is when settling ends.
func (r *Registry) SettledAt() time.Time { return r.started.Add(SettleFor) }

// AliveChanged is closed when a host opens its first health watch or
// loses its last one (some seconds after, so that a reconnection does not
// move its probes).
func (r *Registry) AliveChanged() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.aliveChanged
}

// GoneAfter is how long a host without a health watch keeps the members
// on no agent's host it probes.
const GoneAfter = 5 * time.Second

func (r *Registry) aliveChange() {
	close(r.aliveChanged)
	r.aliveChanged = make(chan struct{})
}

// Update takes the groups and hosts as they are now and reassigns: each
// member of a health-checked group gets a target; members new to the
// registry start unknown ("not probed yet"); members gone are forgotten.
func (r *Registry) Update(groups []lb.Group, hosts []Host) {
	byHost := Assign(groups, hosts)
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	targets := map[string]*assigned{}
	for host, ts := range byHost {
		for _, t := range ts {
			targets[t.ID] = &assigned{host: host, t: t}
		}
		if old := r.hostTargets[host]; !slices.EqualFunc(old.targets, ts, func(a, b wire.ProbeTarget) bool { return a.ID == b.ID && slices.Equal(a.Members, b.Members) }) {
			r.hostTargets[host] = hostList{targets: ts, version: r.version + 1}
			changed = true
		}
	}
	for host, hl := range r.hostTargets {
		if _, ok := byHost[host]; !ok && hl.targets != nil {
			// Kept, empty: the host's watch says it probes nothing now.
			r.hostTargets[host] = hostList{version: r.version + 1}
			changed = true
		}
	}
	r.targets = targets
	seen := map[wire.MemberRef]bool{}
	for id, a := range targets {
		for _, ref := range a.t.Members {
			seen[ref] = true
			m := r.members[ref]
			if m == nil {
				m = &member{MemberHealth: wire.MemberHealth{Group: ref.Group, Member: ref.Member, State: lb.HealthUnknown, Reason: "not probed yet"}}
				r.members[ref] = m
				changed = true
				m.version = r.version + 1
			}
			if m.target != id || m.Prober != a.host {
				m.target, m.Prober = id, a.host
				m.version = r.version + 1
				changed = true
			}
		}
	}
	// Members of health-checked groups that nobody can probe stay
	// unknown, with the reason.
	for _, g := range groups {
		if g.HealthCheck == nil {
			continue
		}
		for _, gm := range g.Members {
			ref := wire.MemberRef{Group: g.Name, Member: memberLabel(gm)}
			if seen[ref] {
				continue
			}
			seen[ref] = true
			m := r.members[ref]
			if m == nil || m.target != "" {
				nm := &member{MemberHealth: wire.MemberHealth{Group: g.Name, Member: ref.Member, State: lb.HealthUnknown, Reason: "no host can probe it: no agent is connected"}, version: r.version + 1}
				if m != nil {
					nm.changes = m.changes
					r.logChange(nm, m.State, "")
				}
				r.members[ref] = nm
				changed = true
			}
		}
	}
	for ref := range r.members {
		if !seen[ref] {
			delete(r.members, ref)
			changed = true
		}
	}
	if changed {
		r.bump()
	}
}

func memberLabel(m lb.Member) string {
	a, _ := netip.ParseAddr(m.IP)
	return lb.MemberLabel(a.Unmap(), m.Port)
}

// ReportError is a report naming a target its host does not probe, or a
// result that cannot be: Field is the path of the value at fault.
type ReportError struct{ Field, Msg string }

func (e *ReportError) Error() string { return e.Field + ": " + e.Msg }

// Report takes a prober's report. Every result must name a target
// assigned to host and be sane, or nothing changes. Members whose state
// changes are logged, once each.
func (r *Registry) Report(host string, rep *wire.HealthReport) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for i, res := range rep.Results {
		a := r.targets[res.Target]
		switch {
		case a == nil || a.host != host:
			return &ReportError{fmt.Sprintf("results[%d].target", i), fmt.Sprintf("%q is not a target of host %s", res.Target, host)}
		case res.Since.After(now.Add(time.Minute)):
			return &ReportError{fmt.Sprintf("results[%d].since", i), "in the future"}
		case res.State == lb.HealthHeld && res.HeldUntil == nil:
			return &ReportError{fmt.Sprintf("results[%d].held_until", i), "required for held"}
		case res.HeldUntil != nil && res.HeldUntil.After(now.Add(lb.MaxHold+time.Minute)):
			return &ReportError{fmt.Sprintf("results[%d].held_until", i), "further than the longest hold"}
		}
	}
	changed := false
	for _, res := range rep.Results {
		for _, ref := range r.targets[res.Target].t.Members {
			m := r.members[ref]
			if m == nil {
				continue
			}
			m.heard = true
			since := res.Since
			was := m.State
			m.State, m.Since, m.Reason, m.HeldUntil, m.Last = res.State, &since, res.Reason, res.HeldUntil, res.Last
			if was != res.State {
				r.logChange(m, was, host)
				m.version = r.version + 1
				changed = true
			}
		}
	}
	if changed {
		r.bump()
	}
	return nil
}

// logChange logs, once, that m went from state was to its state, and
// counts it.
func (r *Registry) logChange(m *member, was, prober string) {
	if was == m.State {
		return
	}
	m.changes++
	r.log.Info("member health", "group", m.Group, "member", m.Member, "state", m.State, "was", was, "reason", m.Reason, "prober", prober)
}

// Group is the health of a group's members, by member label order; nil
// for a group without health check.
func (r *Registry) Group(name string) []wire.MemberHealth {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.MemberHealth
	for ref, m := range r.members {
		if ref.Group == name {
			h := m.MemberHealth
			h.Group = ""
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b wire.MemberHealth) int { return strings.Compare(a.Member, b.Member) })
	return out
}

// All is every member's health, by group and member.
func (r *Registry) All() []wire.MemberHealth {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]wire.MemberHealth, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m.MemberHealth)
	}
	slices.SortFunc(out, func(a, b wire.MemberHealth) int {
		return strings.Compare(a.Group+"\x00"+a.Member, b.Group+"\x00"+b.Member)
	})
	return out
}

// MemberState is a member's health state and how often it changed, for
// the metrics.
type MemberState struct {
	Group, Member, State string
	// Changes counts its state changes since it joined the registry.
	Changes uint64
}

// States is every member's state, in no order: what a scrape reads (All
// sorts and copies much more).
func (r *Registry) States() []MemberState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]MemberState, 0, len(r.members))
	for ref, m := range r.members {
		out = append(out, MemberState{Group: ref.Group, Member: ref.Member, State: m.State, Changes: m.changes})
	}
	return out
}

// Open counts a host's open health watch; the function it returns closes
// it. A host with a watch open is alive (it can probe members on no
// agent's host).
func (r *Registry) Open(host string) (closeFn func()) {
	r.mu.Lock()
	r.streams[host]++
	if r.streams[host] == 1 {
		r.aliveChange()
	}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.streams[host]--
		r.mu.Unlock()
		time.AfterFunc(GoneAfter, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.streams[host] == 0 {
				delete(r.streams, host)
				r.aliveChange()
			}
		})
	}
}

// Alive reports whether host has a health watch open.
func (r *Registry) Alive(host string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.streams[host]
	return ok
}

// Next is the line for a host's watch: everything when full, else what
// changed after version since; and a channel closed at the next change.
// ok is false when nothing changed.
func (r *Registry) Next(host string, since uint64, full bool) (line wire.HealthLine, ok bool, changed <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line = wire.HealthLine{Index: r.version, Full: full, Settling: r.Settling()}
	if hl := r.hostTargets[host]; full || hl.version > since {
		line.Targets = hl.targets
		if line.Targets == nil {
			line.Targets = []wire.ProbeTarget{}
		}
	}
	for _, m := range r.members {
		if full || m.version > since {
			line.Health = append(line.Health, wire.MemberHealth{Group: m.Group, Member: m.Member, State: m.State})
		}
	}
	slices.SortFunc(line.Health, func(a, b wire.MemberHealth) int {
		return strings.Compare(a.Group+"\x00"+a.Member, b.Group+"\x00"+b.Member)
	})
	return line, full || line.Targets != nil || len(line.Health) > 0, r.changed
}

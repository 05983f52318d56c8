package agent

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// healthOverlay sits between the groups' source and the reconciler: it
// takes members that are not up out of new-connection selection, as a
// disabled member is (their established connections are kept), and hands
// the reconciler the groups so changed. The document is never changed:
// the overlay is remade from the delivered groups and the members' health
// whenever either changes.
//
// A member whose health the agent was never sent (no line from the
// controller yet: a restarted agent, a controller that is down) keeps
// what the document says, so that an agent's restart takes no member out;
// one the controller calls unknown (added and not probed yet) takes no new
// connection. While a restarted controller settles, an unknown it sends
// does not replace a state the agent knows. The agent keeps the last
// health it was sent while the controller is away.
type healthOverlay struct {
	deliver func([]lb.Checked, uint64)
	log     *slog.Logger

	mu      sync.Mutex
	groups  []lb.Checked
	version uint64
	have    bool
	health  map[wire.MemberRef]string
	// cache is each health-checked group's last overlay, by name.
	cache map[string]overlaid
	// out counts the members taken out, for the metrics.
	out int
}

type overlaid struct {
	print uint64
	mask  string
	c     lb.Checked
}

func newHealthOverlay(deliver func([]lb.Checked, uint64), log *slog.Logger) *healthOverlay {
	return &healthOverlay{deliver: deliver, log: log, health: map[wire.MemberRef]string{}, cache: map[string]overlaid{}}
}

// setGroups is the source's delivery.
func (h *healthOverlay) setGroups(groups []lb.Checked, version uint64) {
	h.mu.Lock()
	h.groups, h.version, h.have = groups, version, true
	out := h.overlay()
	h.mu.Unlock()
	h.deliver(out, version)
}

// setHealth takes a line of the controller's health watch.
func (h *healthOverlay) setHealth(l *wire.HealthLine) {
	h.mu.Lock()
	changed := false
	if l.Full {
		seen := make(map[wire.MemberRef]bool, len(l.Health))
		for _, m := range l.Health {
			seen[wire.MemberRef{Group: m.Group, Member: m.Member}] = true
		}
		for ref := range h.health {
			if !seen[ref] {
				delete(h.health, ref)
				changed = true
			}
		}
	}
	for _, m := range l.Health {
		ref := wire.MemberRef{Group: m.Group, Member: m.Member}
		old, known := h.health[ref]
		if l.Settling && m.State == lb.HealthUnknown && known {
			continue // the controller does not know yet; the agent does
		}
		if !known || old != m.State {
			h.health[ref] = m.State
			changed = true
		}
	}
	if !changed || !h.have {
		h.mu.Unlock()
		return
	}
	out, version := h.overlay(), h.version
	h.mu.Unlock()
	h.deliver(out, version)
}

// overlay is the groups with the members that are not up taken out.
func (h *healthOverlay) overlay() []lb.Checked {
	out := make([]lb.Checked, len(h.groups))
	seen := map[string]bool{}
	h.out = 0
	var mask strings.Builder
	for i, g := range h.groups {
		out[i] = g
		if g.HealthCheck == nil {
			continue
		}
		seen[g.Name] = true
		mask.Reset()
		any := false
		for j, m := range g.Members {
			state, ok := h.health[wire.MemberRef{Group: g.Name, Member: lb.MemberLabel(g.MemberAddr(j), m.Port)}]
			if ok && !lb.HealthTakesNew(state) && m.StateOf() == lb.StateActive {
				mask.WriteByte('1')
				any = true
				h.out++
			} else {
				mask.WriteByte('0')
			}
		}
		if !any {
			delete(h.cache, g.Name)
			continue
		}
		p := g.Fingerprint()
		if c, ok := h.cache[g.Name]; ok && c.print == p && c.mask == mask.String() {
			out[i] = c.c
			continue
		}
		doc := g.Group.Clone()
		for j, bit := range mask.String() {
			if bit == '1' {
				doc.Members[j].State = lb.StateDisabled
			}
		}
		c, err := lb.Check(doc)
		if err != nil {
			// Cannot be: only states changed in a valid group.
			h.log.Error("health overlay", "group", g.Name, "err", err)
			continue
		}
		h.cache[g.Name] = overlaid{print: p, mask: mask.String(), c: c}
		out[i] = c
	}
	for name := range h.cache {
		if !seen[name] {
			delete(h.cache, name)
		}
	}
	return out
}

// outCount is how many members the overlay takes out now.
func (h *healthOverlay) outCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out
}

// knownCount is how many members the overlay holds health for.
func (h *healthOverlay) knownCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.health)
}

// healthFullEvery is how often a prober sends every state, changed or not
// (the last probes' results stay fresh in the API).
const healthFullEvery = 30 * time.Second

// healthWatcher is the controller's health watch, as the agent follows it.
type healthWatcher interface {
	WatchHealth(ctx context.Context, idle time.Duration, each func(l *wire.HealthLine, more bool) error) error
}

// followHealth follows the controller's health watch until ctx ends: each
// line goes to the overlay (members' health) and the prober (its
// targets); after each (re)connection the prober sends all its states.
// While the controller is away both keep what they have.
func followHealth(ctx context.Context, c healthWatcher, overlay *healthOverlay, p *prober, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.WatchHealth(ctx, 2*wire.StreamKeepAlive+5*time.Second, func(l *wire.HealthLine, _ bool) error {
			backoff = 100 * time.Millisecond
			if l.Targets != nil {
				p.setTargets(l.Targets)
			}
			if l.Full {
				p.resend()
			}
			overlay.setHealth(l)
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("health watch broke; keeping the last health", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

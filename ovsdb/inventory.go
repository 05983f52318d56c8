package ovsdb

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ovs-dlb/dlb/ovsdb/vswitchd"
)

// External ids the DLB reads on interfaces (see docs/ovsdb.md).
const (
	// KeyIfaceID names the VM (or logical port) behind an interface, as
	// hypervisors set it.
	KeyIfaceID = "iface-id"
	// KeyAttachedMAC is the VM's MAC address, as hypervisors set it.
	KeyAttachedMAC = "attached-mac"
	// KeyIPs lists the VM's IP addresses, comma-separated.
	KeyIPs = "ovs-dlb-ips"
)

// Port is one interface of the bridge, as the inventory sees it.
type Port struct {
	// Name is the interface's name (and the port's).
	Name string
	// OFPort is the OpenFlow port number; 0 until ovs-vswitchd assigns
	// one, -1 if it could not open the interface.
	OFPort int
	// IfaceID is external_ids:iface-id; a port without one is not a VM's.
	IfaceID string
	// MAC is external_ids:attached-mac (the VM's MAC), else the interface's
	// own mac_in_use.
	MAC net.HardwareAddr
	// IPs are the VM's addresses from external_ids:ovs-dlb-ips.
	IPs []netip.Addr
	// LinkUp and AdminUp are link_state and admin_state.
	LinkUp, AdminUp bool
	Type            string
	// Error is ovs-vswitchd's complaint about the interface, if any.
	Error       string
	ExternalIDs map[string]string
}

// IsVM reports whether the port belongs to a VM (it has an iface-id).
func (p Port) IsVM() bool { return p.IfaceID != "" }

func (p Port) equal(o Port) bool {
	return p.Name == o.Name && p.OFPort == o.OFPort && p.IfaceID == o.IfaceID && p.MAC.String() == o.MAC.String() &&
		slices.Equal(p.IPs, o.IPs) && p.LinkUp == o.LinkUp && p.AdminUp == o.AdminUp && p.Type == o.Type &&
		p.Error == o.Error && maps.Equal(p.ExternalIDs, o.ExternalIDs)
}

// EventKind says what happened to a port.
type EventKind int

// Event kinds.
const (
	PortAdded EventKind = iota
	PortRemoved
	PortChanged
)

func (k EventKind) String() string {
	return [...]string{"added", "removed", "changed"}[k]
}

// Event is a change to the bridge's ports. Port is the port as it is now
// (as it was, for PortRemoved); Old is its previous state for PortChanged.
type Event struct {
	Kind EventKind
	Port Port
	Old  *Port
}

// Inventory is a live view of one bridge's interfaces, kept from the
// OVSDB monitor. After a reconnection it compares the fresh database with
// what it knew and reports the differences as events, so nothing that
// changed while the database was away is missed.
type Inventory struct {
	c      *Client
	bridge string

	mu         sync.Mutex
	ports      map[string]Port // by name; guarded by mu
	synced     bool            // guarded by mu
	syncedOnce chan struct{}   // closed at the first sync

	queue *eventQueue
}

// NewInventory starts watching bridge's ports until ctx ends. Make it
// before Run, or it misses the first sync.
func NewInventory(ctx context.Context, c *Client, bridge string) *Inventory {
	inv := &Inventory{c: c, bridge: bridge, ports: map[string]Port{}, queue: newEventQueue(ctx), syncedOnce: make(chan struct{})}
	c.OnChange(inv.refresh)
	return inv
}

// Events delivers port events in order. The channel is never closed; a
// consumer that falls behind is not lost: events queue up.
func (inv *Inventory) Events() <-chan Event { return inv.queue.out }

// Ports returns the ports as last seen (also while disconnected), sorted
// by name.
func (inv *Inventory) Ports() []Port {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := make([]Port, 0, len(inv.ports))
	for _, p := range inv.ports {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Port looks a port up by interface name.
func (inv *Inventory) Port(name string) (Port, bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	p, ok := inv.ports[name]
	return p, ok
}

// Synced reports whether the inventory has read the database at least once.
func (inv *Inventory) Synced() bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.synced
}

// WaitSynced blocks until the inventory has read the database once (a
// connected client's filled cache), or ctx ends. A consumer that acts on
// Ports before then would see a bridge without ports.
func (inv *Inventory) WaitSynced(ctx context.Context) error {
	select {
	case <-inv.syncedOnce:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresh recomputes the ports from the cache and queues the differences.
func (inv *Inventory) refresh() {
	cl, err := inv.c.current()
	if err != nil {
		return
	}
	ctx := context.Background()
	var bridges []vswitchd.Bridge
	if err := cl.WhereCache(func(b *vswitchd.Bridge) bool { return b.Name == inv.bridge }).List(ctx, &bridges); err != nil {
		return
	}
	now := map[string]Port{}
	if len(bridges) == 1 {
		for _, pu := range bridges[0].Ports {
			port := &vswitchd.Port{UUID: pu}
			if cl.Get(ctx, port) != nil {
				continue
			}
			for _, iu := range port.Interfaces {
				iface := &vswitchd.Interface{UUID: iu}
				if cl.Get(ctx, iface) != nil {
					continue
				}
				p := portFrom(iface)
				carryEphemeral(&p, iface, inv.ports[p.Name])
				now[p.Name] = p
			}
		}
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	var events []Event
	for name, p := range now {
		old, ok := inv.ports[name]
		switch {
		case !ok:
			events = append(events, Event{Kind: PortAdded, Port: p})
		case !old.equal(p):
			o := old
			events = append(events, Event{Kind: PortChanged, Port: p, Old: &o})
		}
	}
	for name, p := range inv.ports {
		if _, ok := now[name]; !ok {
			events = append(events, Event{Kind: PortRemoved, Port: p})
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].Port.Name < events[j].Port.Name })
	inv.ports = now
	if !inv.synced {
		inv.synced = true
		close(inv.syncedOnce)
	}
	inv.queue.push(events...)
}

func portFrom(i *vswitchd.Interface) Port {
	p := Port{Name: i.Name, Type: i.Type, ExternalIDs: i.ExternalIDs, IfaceID: i.ExternalIDs[KeyIfaceID]}
	if i.Ofport != nil {
		p.OFPort = *i.Ofport
	}
	if mac, err := net.ParseMAC(i.ExternalIDs[KeyAttachedMAC]); err == nil {
		p.MAC = mac
	} else if i.MACInUse != nil {
		p.MAC, _ = net.ParseMAC(*i.MACInUse)
	}
	for _, s := range strings.Split(i.ExternalIDs[KeyIPs], ",") {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
			p.IPs = append(p.IPs, a)
		}
	}
	p.LinkUp = i.LinkState != nil && *i.LinkState == vswitchd.InterfaceLinkStateUp
	p.AdminUp = i.AdminState != nil && *i.AdminState == vswitchd.InterfaceAdminStateUp
	if i.Error != nil {
		p.Error = *i.Error
	}
	return p
}

// carryEphemeral keeps what was known of the columns ovs-vswitchd reports
// (link and admin state, mac_in_use) while they are empty: ovsdb-server
// does not store them, so they read empty for a moment after it restarts,
// which means "not reported yet", not "down".
func carryEphemeral(p *Port, i *vswitchd.Interface, old Port) {
	if old.Name == "" {
		return
	}
	if i.LinkState == nil {
		p.LinkUp = old.LinkUp
	}
	if i.AdminState == nil {
		p.AdminUp = old.AdminUp
	}
	if p.MAC == nil {
		p.MAC = old.MAC
	}
}

// eventQueue is an unbounded FIFO in front of a channel, so the monitor
// never waits for a slow consumer.
type eventQueue struct {
	mu      sync.Mutex
	pending []Event
	wake    chan struct{}
	out     chan Event
}

func newEventQueue(ctx context.Context) *eventQueue {
	q := &eventQueue{wake: make(chan struct{}, 1), out: make(chan Event)}
	go q.pump(ctx)
	return q
}

func (q *eventQueue) push(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	q.pending = append(q.pending, evs...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) pump(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for {
			q.mu.Lock()
			if len(q.pending) == 0 {
				q.mu.Unlock()
				break
			}
			ev := q.pending[0]
			q.pending = q.pending[1:]
			q.mu.Unlock()
			select {
			case q.out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}
}

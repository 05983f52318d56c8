package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	ovsdbproto "github.com/ovn-org/libovsdb/ovsdb"

	"github.com/ovs-dlb/dlb/ovsdb/vswitchd"
)

// ErrNotConnected is returned while the database is unreachable.
var ErrNotConnected = errors.New("not connected to OVSDB")

// Options tune a Client.
type Options struct {
	// Endpoint is "unix:PATH", "tcp:HOST:PORT" or "ssl:HOST:PORT".
	Endpoint string
	Logger   *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts (defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
}

// Client keeps a connection to the local Open_vSwitch database and a
// monitored cache of the tables and columns the agent needs. It
// reconnects by itself; after each (re)connection the cache is filled
// afresh and listeners are told, so they can resynchronise.
type Client struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex    // guards cur and ready
	cur   client.Client // nil while disconnected
	ready chan struct{} // closed while cur is set

	listenMu  sync.Mutex // guards listeners
	listeners []func()
	changed   chan struct{}

	connects atomic.Uint64
}

// New prepares a client; Run connects it.
func New(opts Options) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	return &Client{opts: opts, log: opts.Logger.With("ovsdb", opts.Endpoint), ready: make(chan struct{}), changed: make(chan struct{}, 1)}
}

// dbModel is the part of the Open_vSwitch schema the agent uses.
func dbModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		vswitchd.OpenvSwitchTable: &vswitchd.OpenvSwitch{},
		vswitchd.BridgeTable:      &vswitchd.Bridge{},
		vswitchd.PortTable:        &vswitchd.Port{},
		vswitchd.InterfaceTable:   &vswitchd.Interface{},
		vswitchd.FlowTableTable:   &vswitchd.FlowTable{},
	})
}

// OnChange registers fn to run after the cache changes and after every
// (re)connection. Calls are serialised and coalesced: fn sees the cache
// as it is when it runs, not each intermediate state.
func (c *Client) OnChange(fn func()) {
	c.listenMu.Lock()
	c.listeners = append(c.listeners, fn)
	c.listenMu.Unlock()
}

func (c *Client) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Run connects and stays connected until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	go c.dispatch(ctx)
	backoff := c.opts.MinBackoff
	for {
		cl, err := c.connect(ctx)
		if err == nil {
			backoff = c.opts.MinBackoff
			c.connects.Add(1)
			c.publish(cl)
			c.log.Info("connected to OVSDB")
			c.signal()
			select {
			case <-ctx.Done():
				c.unpublish()
				cl.Close()
				return ctx.Err()
			case <-cl.DisconnectNotify():
			}
			c.unpublish()
			cl.Close()
			c.log.Warn("OVSDB connection lost; reconnecting")
		} else {
			c.log.Warn("cannot connect to OVSDB", "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

// dispatch runs the listeners when the cache changed, a few milliseconds
// after the first change so that one transaction's rows arrive together.
func (c *Client) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.changed:
		}
		time.Sleep(2 * time.Millisecond)
		select {
		case <-c.changed:
		default:
		}
		c.listenMu.Lock()
		ls := append([]func(){}, c.listeners...)
		c.listenMu.Unlock()
		for _, fn := range ls {
			fn()
		}
	}
}

func (c *Client) connect(ctx context.Context) (client.Client, error) {
	if err := checkEndpoint(c.opts.Endpoint); err != nil {
		return nil, err
	}
	dbm, err := dbModel()
	if err != nil {
		return nil, err
	}
	lg := logr.FromSlogHandler(c.log.Handler())
	cl, err := client.NewOVSDBClient(dbm, client.WithEndpoint(c.opts.Endpoint), client.WithLogger(&lg))
	if err != nil {
		return nil, fmt.Errorf("ovsdb client: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Connect(cctx); err != nil {
		return nil, fmt.Errorf("connect to OVSDB at %s: %w", c.opts.Endpoint, err)
	}
	onChange := func(string, model.Model) { c.signal() }
	cl.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    onChange,
		DeleteFunc: onChange,
		UpdateFunc: func(string, model.Model, model.Model) { c.signal() },
	})
	ovs, br, port, iface, ft := &vswitchd.OpenvSwitch{}, &vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{}, &vswitchd.FlowTable{}
	mon := cl.NewMonitor(
		client.WithTable(ovs, &ovs.Bridges, &ovs.ExternalIDs, &ovs.OVSVersion, &ovs.DatapathTypes),
		client.WithTable(br, &br.Name, &br.Ports, &br.Protocols, &br.FailMode, &br.ExternalIDs, &br.DatapathType,
			&br.FlowTables, &br.Controller, &br.OtherConfig),
		client.WithTable(port, &port.Name, &port.Interfaces, &port.ExternalIDs),
		client.WithTable(iface, &iface.Name, &iface.Ofport, &iface.ExternalIDs, &iface.LinkState, &iface.AdminState,
			&iface.Type, &iface.MACInUse, &iface.Error),
		client.WithTable(ft, &ft.Name, &ft.ExternalIDs),
	)
	if _, err := cl.Monitor(cctx, mon); err != nil {
		cl.Close()
		return nil, fmt.Errorf("monitor OVSDB at %s: %w", c.opts.Endpoint, err)
	}
	return cl, nil
}

// checkEndpoint turns the commonest misconfiguration, a unix socket that
// is not there, into a message that says what to check.
func checkEndpoint(ep string) error {
	path, ok := strings.CutPrefix(ep, "unix:")
	if !ok {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("OVSDB socket %s: %w: is ovsdb-server running, and is the agent's ovsdb endpoint right?", path, err)
	}
	return nil
}

func (c *Client) publish(cl client.Client) {
	c.mu.Lock()
	c.cur = cl
	close(c.ready)
	c.mu.Unlock()
}

func (c *Client) unpublish() {
	c.mu.Lock()
	c.cur = nil
	c.ready = make(chan struct{})
	c.mu.Unlock()
}

// current returns the connected client or ErrNotConnected.
func (c *Client) current() (client.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return nil, fmt.Errorf("%w at %s", ErrNotConnected, c.opts.Endpoint)
	}
	return c.cur, nil
}

// WaitConnected waits until the database is connected and its cache filled.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		cur, ready := c.cur, c.ready
		c.mu.Unlock()
		if cur != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for OVSDB at %s: %w", c.opts.Endpoint, ctx.Err())
		case <-ready:
		}
	}
}

// Connected reports whether the database is reachable now.
func (c *Client) Connected() bool {
	_, err := c.current()
	return err == nil
}

// Connects counts the connections made so far.
func (c *Client) Connects() uint64 { return c.connects.Load() }

// transact runs operations as one transaction and checks every result,
// returning an error that names the failed operation.
func (c *Client) transact(ctx context.Context, ops []ovsdbproto.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	cl, err := c.current()
	if err != nil {
		return err
	}
	results, err := cl.Transact(ctx, ops...)
	if err != nil {
		return fmt.Errorf("ovsdb transaction: %w", err)
	}
	if opErrs, err := ovsdbproto.CheckOperationResults(results, ops); err != nil {
		return fmt.Errorf("ovsdb transaction failed: %w (%v; operations %v)", err, opErrs, ops)
	}
	return nil
}

// SystemID returns the host's OVS system-id (external_ids:system-id of the
// Open_vSwitch row), or "" when it has none.
func (c *Client) SystemID(ctx context.Context) (string, error) {
	cl, err := c.current()
	if err != nil {
		return "", err
	}
	var rows []vswitchd.OpenvSwitch
	if err := cl.List(ctx, &rows); err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "", nil
	}
	return rows[0].ExternalIDs["system-id"], nil
}

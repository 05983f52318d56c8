package ofctrl

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// SwitchOptions tune a Switch.
type SwitchOptions struct {
	ConnOptions
	// OnConnect runs on every new connection before anyone else may use
	// it: this is where the caller replays its state after the switch
	// restarted. An error drops the connection and retries.
	OnConnect func(ctx context.Context, c *Conn) error
	// OnDisconnect learns why a connection ended.
	OnDisconnect func(err error)
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// (defaults 100ms and 5s); it doubles after each failure.
	MinBackoff, MaxBackoff time.Duration
}

// Switch keeps a connection to one switch: it reconnects with backoff when
// the connection dies and runs OnConnect each time one is established.
type Switch struct {
	target string
	opts   SwitchOptions

	mu    sync.Mutex // guards conn and ready
	conn  *Conn
	ready chan struct{} // closed while conn is set

	connects atomic.Uint64
}

// NewSwitch prepares a Switch; Run connects it.
func NewSwitch(target string, opts SwitchOptions) *Switch {
	opts.ConnOptions.defaults()
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	return &Switch{target: target, opts: opts, ready: make(chan struct{})}
}

// Run connects and stays connected until ctx ends.
func (s *Switch) Run(ctx context.Context) error {
	log := s.opts.Logger.With("switch", s.target)
	backoff := s.opts.MinBackoff
	for {
		c, err := s.connect(ctx)
		if err == nil {
			backoff = s.opts.MinBackoff
			s.connects.Add(1)
			s.publish(c)
			log.Info("connected to switch", "datapath_id", c.DatapathID)
			select {
			case <-ctx.Done():
				s.unpublish()
				c.Close()
				return ctx.Err()
			case <-c.Done():
			}
			s.unpublish()
			err = c.Err()
			log.Warn("switch connection lost", "err", err)
			if s.opts.OnDisconnect != nil {
				s.opts.OnDisconnect(err)
			}
		} else {
			log.Warn("cannot connect to switch", "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

func (s *Switch) connect(ctx context.Context) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := Dial(dctx, s.target, s.opts.ConnOptions)
	if err != nil {
		return nil, err
	}
	if s.opts.OnConnect != nil {
		if err := s.opts.OnConnect(ctx, c); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (s *Switch) publish(c *Conn) {
	s.mu.Lock()
	s.conn = c
	close(s.ready)
	s.mu.Unlock()
}

func (s *Switch) unpublish() {
	s.mu.Lock()
	s.conn = nil
	s.ready = make(chan struct{})
	s.mu.Unlock()
}

// ErrNotConnected is returned by TryConn while the switch is unreachable.
var ErrNotConnected = errors.New("not connected to the switch")

// Conn waits until the switch is connected and returns the connection.
func (s *Switch) Conn(ctx context.Context) (*Conn, error) {
	for {
		s.mu.Lock()
		c, ready := s.conn, s.ready
		s.mu.Unlock()
		if c != nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ready:
		}
	}
}

// TryConn returns the current connection or ErrNotConnected.
func (s *Switch) TryConn() (*Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil, ErrNotConnected
	}
	return s.conn, nil
}

// Connects counts the connections established so far.
func (s *Switch) Connects() uint64 { return s.connects.Load() }

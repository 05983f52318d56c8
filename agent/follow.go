package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-dlb/dlb/controller/client"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ovsdb"
)

// controllerSource follows the controller: it registers the host and its
// VM ports, reports heartbeats with the index it has installed, and
// watches the groups for the host from the index it last applied. The
// set it last received is checkpointed in state_dir, so a restarted agent
// resumes the watch from there instead of asking for everything. While
// the controller is unreachable nothing is delivered: what is installed
// stays and keeps forwarding.
type controllerSource struct {
	c          *client.HostClient
	inv        *ovsdb.Inventory
	checkpoint string // file; "" for none
	log        *slog.Logger
	metrics    *followMetrics

	applied  atomic.Uint64 // the index the reconciler installed
	appliedC chan struct{}
	portsC   chan struct{}
}

type followMetrics struct {
	answers   *prometheus.CounterVec
	failures  prometheus.Counter
	index     prometheus.Gauge
	applied   prometheus.Gauge
	connected prometheus.Gauge
}

func newFollowMetrics(reg *prometheus.Registry) *followMetrics {
	m := &followMetrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dlb_agent_watch_answers_total",
			Help: "Watch answers from the controller, by kind: full (the whole set: a first start without checkpoint, or a gap the controller could not bridge), changes, none (a long poll whose wait ended, or a stream's keep-alive)."}, []string{"kind"}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "dlb_agent_watch_failures_total", Help: "Watches that failed (controller unreachable, or an answer refused)."}),
		index:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_groups_index", Help: "The groups index last received from the controller."}),
		applied:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_applied_index", Help: "The groups index installed in the switch."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dlb_agent_controller_connected", Help: "1 when the last watch answered."}),
	}
	reg.MustRegister(m.answers, m.failures, m.index, m.applied, m.connected)
	for _, k := range []string{"full", "changes", "none"} {
		m.answers.WithLabelValues(k)
	}
	return m
}

func newControllerSource(server, host, stateDir string, inv *ovsdb.Inventory, log *slog.Logger, reg *prometheus.Registry) (*controllerSource, error) {
	// No overall timeout: the watch is a stream; each request has its own
	// deadline (registration and heartbeats 10 s).
	cl, err := client.New(server, client.Options{Program: "dlb-agent", AddressFrom: "--controller (DLB_CONTROLLER, controller: in the config file)"})
	if err != nil {
		return nil, err
	}
	c, err := cl.ForHost(host)
	if err != nil {
		return nil, err
	}
	s := &controllerSource{c: c, inv: inv, log: log, metrics: newFollowMetrics(reg),
		appliedC: make(chan struct{}, 1), portsC: make(chan struct{}, 1)}
	if stateDir != "" {
		if err := os.MkdirAll(stateDir, 0o750); err != nil {
			return nil, fmt.Errorf("state_dir: %w", err)
		}
		s.checkpoint = filepath.Join(stateDir, "groups.json")
	}
	return s, nil
}

// setApplied is the reconciler's report: index is installed.
func (s *controllerSource) setApplied(index uint64) {
	s.applied.Store(index)
	s.metrics.applied.Set(float64(index))
	select {
	case s.appliedC <- struct{}{}:
	default:
	}
}

// portsChanged says the VM ports changed: register them again.
func (s *controllerSource) portsChanged() {
	select {
	case s.portsC <- struct{}{}:
	default:
	}
}

// checkpointDoc is the state_dir file: the set last received and its
// index, written together. It is written from the checked groups (G is
// lb.Checked, which encodes as its Group) and read as plain groups (G is
// lb.Group), which the follower checks again when it resumes.
type checkpointDoc[G any] struct {
	Server string `json:"server"`
	Index  uint64 `json:"index"`
	Groups []G    `json:"groups"`
}

func (s *controllerSource) Run(ctx context.Context, deliver func([]lb.Checked, uint64)) error {
	f := &client.Follower{Client: s.c, Wait: 30 * time.Second}
	doc, err := s.readCheckpoint()
	if err == nil && doc != nil {
		err = f.Resume(doc.Index, doc.Groups)
	}
	switch {
	case err != nil:
		s.log.Warn("checkpoint not used; asking the controller for everything", "checkpoint", s.checkpoint, "err", err)
	case doc != nil:
		s.log.Info("resuming from checkpoint", "index", doc.Index, "groups", len(doc.Groups))
	}
	var (
		mu      sync.Mutex
		pending *checkpointDoc[lb.Checked]
		saved   = make(chan struct{}, 1)
	)
	f.Deliver = func(groups []lb.Checked, index uint64) {
		s.metrics.index.Set(float64(index))
		deliver(groups, index)
		mu.Lock()
		pending = &checkpointDoc[lb.Checked]{Server: s.c.Server(), Index: index, Groups: groups}
		mu.Unlock()
		select {
		case saved <- struct{}{}:
		default:
		}
	}
	reachable := true // logged once per change, not per retry
	f.Observe = func(c *wire.GroupChanges, err error) {
		switch {
		case err != nil:
			s.metrics.failures.Inc()
			s.metrics.connected.Set(0)
			if reachable {
				s.log.Warn("controller unreachable; keeping what is installed and retrying", "controller", s.c.Server(), "err", err)
			}
			reachable = false
			return
		case !reachable:
			s.log.Info("controller reachable again", "controller", s.c.Server())
		}
		reachable = true
		switch {
		case c.Full:
			s.metrics.answers.WithLabelValues("full").Inc()
			s.metrics.connected.Set(1)
			s.log.Info("full group set from the controller", "index", c.Index, "groups", len(c.Groups))
		case len(c.Groups)+len(c.Deleted) == 0:
			s.metrics.answers.WithLabelValues("none").Inc()
			s.metrics.connected.Set(1)
		default:
			s.metrics.answers.WithLabelValues("changes").Inc()
			s.metrics.connected.Set(1)
			s.log.Info("group changes from the controller", "index", c.Index, "changed", len(c.Groups), "deleted", len(c.Deleted))
		}
	}
	f.LongPolls = func(reason error) {
		s.log.Warn("following the controller by long polls, not its watch stream", "reason", reason)
	}
	f.Refused = func(err error) {
		s.metrics.failures.Inc()
		s.log.Error("groups from the controller refused; keeping what is installed and asking for everything again", "err", err)
	}
	go s.report(ctx)
	// The checkpoint is written at most once a second (a set of 10,000
	// groups is megabytes), and once more on the way out.
	go func() {
		write := func() {
			mu.Lock()
			doc := pending
			pending = nil
			mu.Unlock()
			if doc != nil {
				if err := s.writeCheckpoint(doc); err != nil {
					s.log.Warn("cannot write the checkpoint", "err", err)
				}
			}
		}
		for {
			select {
			case <-ctx.Done():
				write()
				return
			case <-saved:
				write()
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	return f.Run(ctx)
}

// report registers the host (again whenever its VM ports change or the
// controller forgot it) and sends heartbeats: every wire.HeartbeatInterval, and
// at once when a new index is installed.
func (s *controllerSource) report(ctx context.Context) {
	registered := false
	tick := time.NewTicker(wire.HeartbeatInterval)
	defer tick.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		if !registered {
			reg := wire.HostRegistration{Version: version(), Ports: s.ports()}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := s.c.Register(rctx, reg)
			cancel()
			if err == nil {
				registered = true
				s.log.Info("registered with the controller", "controller", s.c.Server(), "host", s.c.Host(), "ports", len(reg.Ports))
			} else if ctx.Err() == nil {
				s.log.Warn("cannot register with the controller; retrying", "controller", s.c.Server(), "err", err)
				retry.Reset(time.Second)
			}
		}
		if registered {
			hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := s.c.Heartbeat(hctx, s.applied.Load())
			cancel()
			if errors.Is(err, client.ErrNotRegistered) {
				registered = false
				retry.Reset(0)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.appliedC:
		case <-retry.C:
		case <-s.portsC:
			registered = false
			// Ports come and go in bursts (a VM with several ports).
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// ports lists the bridge's VM ports for the registration.
func (s *controllerSource) ports() []wire.HostPort {
	out := []wire.HostPort{}
	for _, p := range s.inv.Ports() {
		if !p.IsVM() {
			continue
		}
		hp := wire.HostPort{Name: p.Name, IfaceID: p.IfaceID}
		if p.MAC != nil {
			hp.MAC = p.MAC.String()
		}
		for _, a := range p.IPs {
			hp.IPs = append(hp.IPs, a.String())
		}
		out = append(out, hp)
	}
	return out
}

func (s *controllerSource) readCheckpoint() (*checkpointDoc[lb.Group], error) {
	if s.checkpoint == "" {
		return nil, nil
	}
	data, err := os.ReadFile(s.checkpoint)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc checkpointDoc[lb.Group]
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", s.checkpoint, err)
	}
	if doc.Server != s.c.Server() {
		return nil, fmt.Errorf("%s is from controller %s, not %s", s.checkpoint, doc.Server, s.c.Server())
	}
	return &doc, nil
}

func (s *controllerSource) writeCheckpoint(doc *checkpointDoc[lb.Checked]) error {
	if s.checkpoint == "" {
		return nil
	}
	tmp := s.checkpoint + ".tmp"
	file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if err := encodeCheckpoint(file, doc); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, s.checkpoint)
}

// encodeCheckpoint writes doc as json.Marshal would, a group at a time:
// marshalling 10,000 groups whole made megabytes of garbage a second for
// an agent close to its memory limit.
func encodeCheckpoint(w io.Writer, doc *checkpointDoc[lb.Checked]) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	head, err := json.Marshal(checkpointDoc[lb.Checked]{Server: doc.Server, Index: doc.Index})
	if err != nil {
		return err
	}
	// head ends in "groups":null}: the groups go in its place.
	head = bytes.TrimSuffix(head, []byte(`null}`))
	bw.Write(head)
	bw.WriteByte('[')
	enc := json.NewEncoder(bw)
	for i := range doc.Groups {
		if i > 0 {
			bw.WriteByte(',')
		}
		if err := enc.Encode(&doc.Groups[i]); err != nil {
			return err
		}
	}
	bw.WriteString("]}")
	return bw.Flush()
}

// version is the agent's module version (or "dev").
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

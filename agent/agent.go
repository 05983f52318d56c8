package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/ovsdb"
	"github.com/ovs-dlb/dlb/pipeline"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is the agent's configuration, as cmd/dlb-agent reads it from
// flags, DLB_ environment variables and a YAML file (keys as the flags,
// with _ for -). deploy/agent.yaml documents every key.
type Config struct {
	OVSDB        string `mapstructure:"ovsdb"`
	Bridge       string `mapstructure:"bridge"`
	OpenFlow     string `mapstructure:"openflow"`
	VSwitchdCtl  string `mapstructure:"vswitchd_ctl"`
	CreateBridge bool   `mapstructure:"create_bridge"`
	DatapathType string `mapstructure:"datapath_type"`
	OwnBridge    bool   `mapstructure:"own_bridge"`
	TableBase    int    `mapstructure:"table_base"`
	EntryTable   int    `mapstructure:"entry_table"`
	EntryPrio    int    `mapstructure:"entry_priority"`
	ReturnTable  int    `mapstructure:"return_table"`
	Zone         int    `mapstructure:"zone"`
	MAC          string `mapstructure:"mac"`
	Buckets      int    `mapstructure:"buckets"`
	HostID       string `mapstructure:"host_id"`
	GroupsFile   string `mapstructure:"groups_file"`
	Controller   string `mapstructure:"controller"`
	StateDir     string `mapstructure:"state_dir"`
	MetricsAddr  string `mapstructure:"metrics_addr"`
	MemoryLimit  string `mapstructure:"memory_limit"`
	LogLevel     string `mapstructure:"log_level"`
	// StatsInterval is how often the members' counters are read (0: 1 s).
	StatsInterval time.Duration `mapstructure:"stats_interval"`
	// MemberMetricsLimit bounds the members whose counters, and
	// (separately) the probe targets whose states, /metrics exports
	// (above it, none are).
	MemberMetricsLimit int `mapstructure:"member_metrics_limit"`
	// CountBytes installs each member's counting flows (packets and
	// bytes each way; nil: true).
	CountBytes *bool `mapstructure:"count_bytes"`
}

// DefaultStatsInterval is stats_interval's default.
const DefaultStatsInterval = time.Second

// DefaultMemberMetricsLimit is member_metrics_limit's default.
const DefaultMemberMetricsLimit = 10000

// Agent is one hypervisor's dlb-agent: it installs and reconciles the DLB
// pipeline on the local bridge from the groups of its source (the
// controller's watch, or a file).
type Agent struct {
	cfg Config
	log *slog.Logger
	// vswitchdCtl finds ovs-vswitchd's control socket (for conntrack
	// flushes); it is looked up at each use, as its name carries a pid.
	vswitchdCtl func() (string, error)
}

// New checks cfg and returns an agent that Run starts.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	switch {
	case cfg.GroupsFile == "" && cfg.Controller == "":
		return nil, errors.New("controller or groups_file: one is required (the dlb-controller to follow, or a YAML or JSON file with a top-level groups: list)")
	case cfg.GroupsFile != "" && cfg.Controller != "":
		return nil, errors.New("controller and groups_file: give one, not both")
	}
	if cfg.OpenFlow == "" {
		sock, ok := strings.CutPrefix(cfg.OVSDB, "unix:")
		if !ok {
			return nil, errors.New("openflow: required when ovsdb is not a unix socket")
		}
		cfg.OpenFlow = "unix:" + filepath.Join(filepath.Dir(sock), cfg.Bridge+".mgmt")
	}
	switch {
	case cfg.StatsInterval == 0:
		cfg.StatsInterval = DefaultStatsInterval
	case cfg.StatsInterval < 100*time.Millisecond:
		return nil, fmt.Errorf("stats_interval: %v is below the minimum, 100ms", cfg.StatsInterval)
	}
	if cfg.MemberMetricsLimit < 0 {
		return nil, fmt.Errorf("member_metrics_limit: %d is negative", cfg.MemberMetricsLimit)
	}
	// The pipeline settings are checked before anything starts (the host
	// id, known later, only derives the default MAC).
	if _, err := pipelineConfig(cfg, "check"); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log}
	switch sock, ok := strings.CutPrefix(cfg.OVSDB, "unix:"); {
	case cfg.VSwitchdCtl != "":
		a.vswitchdCtl = func() (string, error) { return cfg.VSwitchdCtl, nil }
	case ok:
		a.vswitchdCtl = func() (string, error) { return vswitchdCtl(filepath.Dir(sock)) }
	default:
		a.vswitchdCtl = func() (string, error) {
			return "", errors.New("vswitchd_ctl: required when ovsdb is not a unix socket")
		}
	}
	return a, nil
}

// pipelineConfig turns the agent's settings into the pipeline's.
func pipelineConfig(cfg Config, hostID string) (pipeline.Config, error) {
	pc := pipeline.Config{TableBase: uint8(cfg.TableBase), Zone: uint16(cfg.Zone), Buckets: cfg.Buckets, MAC: pipeline.HostMAC(hostID),
		NoByteCounts: cfg.CountBytes != nil && !*cfg.CountBytes}
	if cfg.TableBase < 0 || cfg.TableBase > 255 {
		return pc, fmt.Errorf("table_base: %d is not a table", cfg.TableBase)
	}
	switch {
	case cfg.EntryTable == -1 && cfg.ReturnTable == -1:
	case cfg.EntryTable < 0 || cfg.EntryTable > 254:
		return pc, fmt.Errorf("entry_table: %d is not a table (0..254), or -1 with return_table -1 for an owned bridge", cfg.EntryTable)
	case cfg.ReturnTable < 0 || cfg.ReturnTable > 254:
		return pc, fmt.Errorf("return_table: %d is not a table (0..254); a shared bridge needs entry_table and return_table", cfg.ReturnTable)
	case cfg.EntryPrio < 0 || cfg.EntryPrio > 65535:
		return pc, fmt.Errorf("entry_priority: %d is not a priority (0..65535)", cfg.EntryPrio)
	case cfg.OwnBridge || cfg.CreateBridge:
		return pc, errors.New("entry_table: a shared bridge cannot also be owned (own_bridge, create_bridge)")
	default:
		pc.Shared = &pipeline.Shared{EntryTable: uint8(cfg.EntryTable), EntryPriority: uint16(cfg.EntryPrio), ReturnTable: uint8(cfg.ReturnTable)}
	}
	if cfg.Zone < 0 || cfg.Zone > 65535 {
		return pc, fmt.Errorf("zone: %d is not a conntrack zone (0..65535)", cfg.Zone)
	}
	if cfg.MAC != "" {
		mac, err := net.ParseMAC(cfg.MAC)
		if err != nil {
			return pc, fmt.Errorf("mac: %w", err)
		}
		pc.MAC = mac
	}
	return pc, pc.Validate()
}

// PrintFlows writes the flows and groups cfg.GroupsFile compiles to, as
// ovs-ofctl prints them, without OVS (dlb-agent --print-flows).
func PrintFlows(w io.Writer, cfg Config) error {
	if cfg.GroupsFile == "" {
		return errors.New("--print-flows needs --groups-file")
	}
	src := &fileSource{path: cfg.GroupsFile}
	groups, err := src.load()
	if err != nil {
		return err
	}
	pc, err := pipelineConfig(cfg, cfg.HostID)
	if err != nil {
		return err
	}
	out, err := pipeline.Compile(pipeline.Input{Config: pc, Groups: groups})
	if err != nil {
		return err
	}
	flows := out.AllFlows()
	fmt.Fprintf(w, "# %d groups, %d flows (VM port classification flows are added per port on a host)\n", len(out.Groups), len(flows))
	for _, g := range out.Groups {
		fmt.Fprintln(w, g.String())
	}
	for _, f := range flows {
		fmt.Fprintln(w, f.String())
	}
	for _, u := range out.Unresolved {
		fmt.Fprintf(w, "# member %s: MAC not given; the agent takes it from the VM port with that address, if local\n", u)
	}
	return nil
}

// Run connects to the local OVS, prepares the bridge and reconciles until
// ctx ends. Every goroutine it starts runs under one errgroup and is done
// when Run returns, conntrack flushes in flight included. What is
// installed stays on the switch.
func (a *Agent) Run(ctx context.Context) error {
	cfg, log := a.cfg, a.log
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	g, ctx := errgroup.WithContext(ctx)
	db := ovsdb.New(ovsdb.Options{Endpoint: cfg.OVSDB, Logger: log})
	inv := ovsdb.NewInventory(ctx, db, cfg.Bridge)
	g.Go(func() error { _ = db.Run(ctx); return nil })
	err := a.run(ctx, g, db, inv)
	stop() // whatever ended run ends the rest
	if werr := g.Wait(); err == nil || errors.Is(err, context.Canceled) {
		err = werr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("dlb-agent stopped; what is installed stays")
	return nil
}

func (a *Agent) run(ctx context.Context, g *errgroup.Group, db *ovsdb.Client, inv *ovsdb.Inventory) error {
	cfg, log := a.cfg, a.log
	log.Info("waiting for OVSDB", "endpoint", cfg.OVSDB)
	if err := db.WaitConnected(ctx); err != nil {
		return err
	}
	// The first reconcile must see the bridge's ports: one that ran on an
	// empty inventory would delete the installed port flows of a
	// restarted agent (seen in CI under load) instead of adopting them.
	if err := inv.WaitSynced(ctx); err != nil {
		return err
	}
	hostID := cfg.HostID
	if hostID == "" {
		hostID, _ = db.SystemID(ctx)
	}
	if hostID == "" {
		hostID, _ = os.Hostname()
	}
	pc, err := pipelineConfig(cfg, hostID)
	if err != nil {
		return err
	}
	for {
		rep, err := db.PrepareBridge(ctx, ovsdb.BridgeConfig{Name: cfg.Bridge, Create: cfg.CreateBridge,
			DatapathType: cfg.DatapathType, Own: cfg.OwnBridge || cfg.CreateBridge, Tables: pc.TableNameMap()})
		if err == nil {
			for _, c := range rep.Changed {
				log.Info("prepared bridge", "bridge", cfg.Bridge, "change", c)
			}
			for _, n := range rep.Notes {
				log.Warn("bridge", "bridge", cfg.Bridge, "note", n)
			}
			break
		}
		log.Error("cannot prepare the bridge; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	log.Info("dlb-agent starting", "host", hostID, "bridge", cfg.Bridge, "openflow", cfg.OpenFlow, "zone", pc.Zone, "mac", pc.MAC.String())

	m := newMetrics()
	r := newReconciler(pc, inv, log, m)
	r.flusher = &conntrackFlusher{ctl: a.vswitchdCtl, zone: pc.Zone}
	nd := &responder{mac: pc.MAC, log: log, refusals: m.refusals, limit: &limiter{perSec: refusalsPerSecond}}
	stats := newMemberStats(pc, cfg.MemberMetricsLimit, r, log, m.reg)
	sw := ofctrl.NewSwitch(cfg.OpenFlow, ofctrl.SwitchOptions{
		ConnOptions: ofctrl.ConnOptions{Logger: log, PacketIn: nd.packetIn, FlowRemoved: stats.removed},
		OnConnect:   func(ctx context.Context, c *ofctrl.Conn) error { return r.onConnect(ctx, c) },
		MinBackoff:  50 * time.Millisecond,
		MaxBackoff:  time.Second,
	})
	nd.sw = sw
	nd.res = newResolver(sw, pc.MAC, log, r.learnMAC)
	r.resolve = nd.res.want
	g.Go(func() error { nd.res.run(ctx); return nil })
	overlay := newHealthOverlay(r.setGroups, log)
	prober := newProber(switchSender{sw}, inv, pc.MAC, log)
	prober.onProbes = r.setProbes
	m.reg.MustRegister(newHealthCollector(prober, overlay, cfg.MemberMetricsLimit, log))
	nd.probe = prober.answer
	g.Go(func() error { prober.run(ctx); return nil })
	var src Source = &fileSource{path: cfg.GroupsFile, log: log, refused: m.sourceErrs.Inc}
	var follow *controllerSource
	if cfg.Controller != "" {
		follow, err = newControllerSource(cfg.Controller, hostID, cfg.StateDir, inv, log, m.reg)
		if err != nil {
			return err
		}
		r.onApplied = follow.setApplied
		src = follow
	}
	g.Go(func() error {
		if err := src.Run(ctx, overlay.setGroups); err != nil {
			log.Error("groups source stopped", "err", err)
		}
		return nil
	})
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev := <-inv.Events():
				if ev.Port.IsVM() || (ev.Old != nil && ev.Old.IsVM()) {
					r.trigger()
					prober.portsChanged()
					if follow != nil {
						follow.portsChanged()
					}
				}
			}
		}
	})
	if cfg.MetricsAddr != "" {
		g.Go(func() error {
			if err := m.serve(ctx, cfg.MetricsAddr, log); err != nil {
				log.Error("metrics server", "err", err)
			}
			return nil
		})
	}
	if follow != nil {
		prober.report = follow.c.ReportHealth
		g.Go(func() error { prober.runReports(ctx, healthFullEvery); return nil })
		g.Go(func() error { followHealth(ctx, follow.c, overlay, prober, log); return nil })
		stats.report = follow.c.ReportStats
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dlb_agent_controller_sent_bytes_total",
			Help: "Bytes of request bodies the agent sent the controller (the members' statistics, mostly)."},
			func() float64 { return float64(follow.c.SentBytes()) }))
	}
	stats.conntrack = unixctlDumper{ctl: a.vswitchdCtl}
	stats.bal = newBalancer(r, cfg.StatsInterval, cfg.MemberMetricsLimit, log, m.reg)
	g.Go(func() error { stats.run(ctx, switchOf{sw}, cfg.StatsInterval, r.first); return nil })
	g.Go(func() error { r.run(ctx, switchOf{sw}); return nil })
	g.Go(func() error { r.runAffinityExpiry(ctx); return nil })
	g.Go(func() error { r.runFlushes(ctx); return nil })
	return sw.Run(ctx)
}

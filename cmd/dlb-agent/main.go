// Command dlb-agent runs on each hypervisor: it installs and reconciles the
// DLB pipeline on the local Open vSwitch bridge, from groups it gets from a
// file (and, later, from the controller). See docs/pipeline.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/ovsdb"
	"github.com/ovs-dlb/dlb/pipeline"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dlb-agent:", err)
		os.Exit(1)
	}
}

// config is the agent's configuration: flags, DLB_ environment variables
// (DLB_OVSDB, DLB_BRIDGE, ...) and an optional YAML file (--config).
type config struct {
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
}

func newRoot() *cobra.Command {
	v := viper.New()
	var configFile string
	var printFlows bool
	cmd := &cobra.Command{
		Use:           "dlb-agent",
		Short:         "Balance VM traffic to virtual IPs in this hypervisor's Open vSwitch",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				v.SetConfigFile(configFile)
				if err := v.ReadInConfig(); err != nil {
					return fmt.Errorf("config file: %w", err)
				}
			}
			var cfg config
			if err := v.Unmarshal(&cfg); err != nil {
				return fmt.Errorf("config: %w", err)
			}
			if printFlows {
				return printPipeline(cfg)
			}
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML config file (keys as the flags, with _ for -)")
	f.BoolVar(&printFlows, "print-flows", false, "print the flows and groups for --groups-file and exit, without OVS")
	f.String("ovsdb", "unix:/var/run/openvswitch/db.sock", "OVSDB endpoint of the local ovsdb-server")
	f.String("bridge", "br-int", "bridge the VMs are on")
	f.String("openflow", "", "OpenFlow endpoint of the bridge (default: BRIDGE.mgmt beside the OVSDB socket)")
	f.String("vswitchd-ctl", "", "ovs-vswitchd's unixctl socket, to flush departed members' connections (default: found beside the OVSDB socket)")
	f.Bool("create-bridge", false, "create the bridge if it does not exist")
	f.String("datapath-type", "", `datapath of a created bridge ("netdev" for the userspace datapath)`)
	f.Bool("own-bridge", false, "the DLB owns the bridge: fail_mode=secure")
	f.Int("table-base", 0, "first OpenFlow table of the DLB pipeline")
	f.Int("entry-table", -1, "shared bridge: the table of the owner's pipeline the DLB hooks into (-1: the DLB owns the bridge)")
	f.Int("entry-priority", 1000, "shared bridge: priority of the DLB's hook flow in entry_table")
	f.Int("return-table", -1, "shared bridge: the owner's table packets continue in after the DLB's tables")
	f.Int("zone", lb.DefaultZone, "conntrack zone of DLB connections")
	f.String("mac", "", "MAC that answers for VIPs (default: derived from the host id)")
	f.Int("buckets", 0, "select-group buckets per VIP port (power of two 16..256; default chosen per group)")
	f.String("host-id", "", "this host's id (default: the OVS system-id, else the hostname)")
	f.StringP("groups-file", "f", "", "YAML or JSON file with a top-level groups: list; watched for changes")
	f.String("controller", "", "dlb-controller to follow, e.g. http://10.0.0.1:8470 (instead of --groups-file)")
	f.String("state-dir", "/var/lib/dlb-agent", "where the agent checkpoints the groups it follows from the controller")
	f.String("metrics-addr", "127.0.0.1:9476", `address of /metrics ("" to disable)`)
	f.String("memory-limit", "82MiB", `soft limit of the Go heap, e.g. 82MiB (raise it above ~15,000 VIPs; "off" for none); GOMEMLIMIT wins`)
	f.String("log-level", "info", "debug, info, warn or error")
	v.SetEnvPrefix("DLB")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	f.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != "config" && fl.Name != "print-flows" {
			_ = v.BindPFlag(strings.ReplaceAll(fl.Name, "-", "_"), fl)
		}
	})
	return cmd
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// pipelineConfig turns the agent's settings into the pipeline's.
func pipelineConfig(cfg config, hostID string) (pipeline.Config, error) {
	pc := pipeline.Config{TableBase: uint8(cfg.TableBase), Zone: uint16(cfg.Zone), Buckets: cfg.Buckets, MAC: pipeline.HostMAC(hostID)}
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

func printPipeline(cfg config) error {
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
	fmt.Printf("# %d groups, %d flows (VM port classification flows are added per port on a host)\n", len(out.Groups), len(out.Flows))
	for _, g := range out.Groups {
		fmt.Println(g.String())
	}
	for _, f := range out.Flows {
		fmt.Println(f.String())
	}
	for _, u := range out.Unresolved {
		fmt.Printf("# member %s: MAC not given; the agent takes it from the VM port with that address, if local\n", u)
	}
	return nil
}

func run(ctx context.Context, cfg config) error {
	log := newLogger(cfg.LogLevel)
	if err := setMemoryLimit(cfg.MemoryLimit); err != nil {
		return err
	}
	switch {
	case cfg.GroupsFile == "" && cfg.Controller == "":
		return errors.New("controller or groups_file: one is required (the dlb-controller to follow, or a YAML or JSON file with a top-level groups: list)")
	case cfg.GroupsFile != "" && cfg.Controller != "":
		return errors.New("controller and groups_file: give one, not both")
	}
	if cfg.OpenFlow == "" {
		sock, ok := strings.CutPrefix(cfg.OVSDB, "unix:")
		if !ok {
			return errors.New("openflow: required when ovsdb is not a unix socket")
		}
		cfg.OpenFlow = "unix:" + filepath.Join(filepath.Dir(sock), cfg.Bridge+".mgmt")
	}
	var ctl func() (string, error)
	switch sock, ok := strings.CutPrefix(cfg.OVSDB, "unix:"); {
	case cfg.VSwitchdCtl != "":
		ctl = func() (string, error) { return cfg.VSwitchdCtl, nil }
	case ok:
		ctl = func() (string, error) { return vswitchdCtl(filepath.Dir(sock)) }
	default:
		ctl = func() (string, error) {
			return "", errors.New("vswitchd_ctl: required when ovsdb is not a unix socket")
		}
	}
	db := ovsdb.New(ovsdb.Options{Endpoint: cfg.OVSDB, Logger: log})
	inv := ovsdb.NewInventory(ctx, db, cfg.Bridge)
	go func() { _ = db.Run(ctx) }()
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
	r.flusher = &conntrackFlusher{ctl: ctl, zone: pc.Zone}
	nd := &responder{mac: pc.MAC, log: log, refusals: m.refusals, limit: &limiter{perSec: refusalsPerSecond}}
	sw := ofctrl.NewSwitch(cfg.OpenFlow, ofctrl.SwitchOptions{
		ConnOptions: ofctrl.ConnOptions{Logger: log, PacketIn: nd.packetIn},
		OnConnect:   r.onConnect,
		MinBackoff:  50 * time.Millisecond,
		MaxBackoff:  time.Second,
	})
	nd.sw = sw
	nd.res = newResolver(sw, pc.MAC, log, r.learnMAC)
	r.resolve = nd.res.want
	go nd.res.run(ctx)
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
	go func() {
		if err := src.Run(ctx, r.setGroups); err != nil {
			log.Error("groups source stopped", "err", err)
		}
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-inv.Events():
				if ev.Port.IsVM() || (ev.Old != nil && ev.Old.IsVM()) {
					r.trigger()
					if follow != nil {
						follow.portsChanged()
					}
				}
			}
		}
	}()
	if cfg.MetricsAddr != "" {
		go func() {
			if err := m.serve(ctx, cfg.MetricsAddr, log); err != nil {
				log.Error("metrics server", "err", err)
			}
		}()
	}
	go r.run(ctx, sw)
	go r.runAffinityExpiry(ctx)
	err = sw.Run(ctx)
	if errors.Is(err, context.Canceled) {
		log.Info("dlb-agent stopping; what is installed stays")
		return nil
	}
	return err
}

// setMemoryLimit applies memory_limit unless GOMEMLIMIT is set: it makes
// the garbage collector work harder near the limit instead of letting the
// heap grow to twice what is live (a host with 10,000 VIPs keeps about
// 50 MiB live).
func setMemoryLimit(s string) error {
	if os.Getenv("GOMEMLIMIT") != "" || s == "" || s == "off" {
		return nil
	}
	units := map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "B": 1}
	for suffix, mult := range units {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err == nil && v > 0 {
				debug.SetMemoryLimit(v * mult)
				return nil
			}
		}
	}
	return fmt.Errorf("memory_limit: %q: want a size like 96MiB, or off", s)
}

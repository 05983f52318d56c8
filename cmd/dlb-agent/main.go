// Command dlb-agent runs on each hypervisor: it installs and reconciles the
// DLB pipeline on the local Open vSwitch bridge, from the groups it follows
// from dlb-controller (or reads from a file). This file reads the flags,
// DLB_ environment variables and the config file; package agent does the
// work. See docs/architecture.md and docs/pipeline.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/ovs-dlb/dlb/agent"
	"github.com/ovs-dlb/dlb/cmd/internal/cli"
	"github.com/ovs-dlb/dlb/lb"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dlb-agent:", err)
		os.Exit(1)
	}
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
			var cfg agent.Config
			if err := cli.Load(v, configFile, &cfg); err != nil {
				return err
			}
			if printFlows {
				return agent.PrintFlows(os.Stdout, cfg)
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
	f.Int("buckets", 0, "slots (select-group buckets) of every VIP port, a power of two 16..256; default: the fewest that honour the weights (see docs/pipeline.md)")
	f.String("host-id", "", "this host's id (default: the OVS system-id, else the hostname)")
	f.StringP("groups-file", "f", "", "YAML or JSON file with a top-level groups: list; watched for changes")
	f.String("controller", "", "dlb-controller to follow, e.g. http://10.0.0.1:8470 (instead of --groups-file)")
	f.String("state-dir", "/var/lib/dlb-agent", "where the agent checkpoints the groups it follows from the controller")
	f.String("metrics-addr", "127.0.0.1:9476", `address of /metrics ("" to disable)`)
	f.String("memory-limit", "82MiB", `soft limit of the Go heap, e.g. 82MiB (raise it above ~15,000 VIPs; "off" for none); GOMEMLIMIT wins`)
	f.String("log-level", "info", "debug, info, warn or error")
	f.Duration("stats-interval", agent.DefaultStatsInterval, "how often the members' counters are read from the switch (at least 100ms)")
	f.Bool("count-bytes", true, "install each member's counting flows (2 per VIP port and member): packets and bytes each way; false: only new and active connections are counted")
	f.Int("member-metrics-limit", agent.DefaultMemberMetricsLimit, "export each member's counters on /metrics while there are at most this many (group, port, member) on the host")
	cli.Bind(v, f, "config", "print-flows")
	return cmd
}

func run(ctx context.Context, cfg agent.Config) error {
	log, err := cli.Logger(cfg.LogLevel)
	if err != nil {
		return err
	}
	if err := setMemoryLimit(cfg.MemoryLimit); err != nil {
		return err
	}
	a, err := agent.New(cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
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

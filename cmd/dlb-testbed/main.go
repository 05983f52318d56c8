// Command dlb-testbed emulates hypervisors on one machine: each host is a
// network namespace with its own ovsdb-server and ovs-vswitchd (userspace
// datapath), each VM a namespace on a veth port of its host's bridge, and
// the hosts share an L2 underlay. It also carries the traffic tool that
// the tests, benchmarks and the demo use. See README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/ovs-dlb/dlb/testbed"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		var exit *exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "dlb-testbed:", err)
		os.Exit(1)
	}
}

// exitError carries a command's exit status through cobra.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRoot() *cobra.Command {
	v := viper.New()
	v.SetEnvPrefix("DLB_TESTBED")
	v.AutomaticEnv()
	root := &cobra.Command{
		Use:           "dlb-testbed",
		Short:         "Emulate hypervisors with Open vSwitch in network namespaces",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("name", "default", "testbed name; its state lives in BASE-DIR/NAME (env DLB_TESTBED_NAME)")
	root.PersistentFlags().String("base-dir", testbed.DefaultBaseDir, "directory of testbed run directories (env DLB_TESTBED_BASE_DIR)")
	_ = v.BindPFlag("name", root.PersistentFlags().Lookup("name"))
	_ = v.BindPFlag("base_dir", root.PersistentFlags().Lookup("base-dir"))
	open := func() (*testbed.Testbed, error) { return testbed.Open(v.GetString("name"), v.GetString("base_dir")) }
	root.AddCommand(upCmd(v), downCmd(open), statusCmd(open), execCmd(open), loadCmd(open), probeCmd(open), serveCmd())
	return root
}

func upCmd(v *viper.Viper) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "up -f TOPOLOGY.yaml",
		Short: "Bring a testbed up (an earlier run of the same name is removed first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := testbed.LoadTopologyFile(file)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			start := time.Now()
			tb, err := testbed.Up(cmd.Context(), topo, testbed.Options{
				Name: v.GetString("name"), BaseDir: v.GetString("base_dir"), ServiceBinary: self,
				Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
			})
			if err != nil {
				return err
			}
			fmt.Printf("testbed %q is up in %.2f s\n", tb.Name, time.Since(start).Seconds())
			tb.Status(cmd.Context()).WriteTable(os.Stdout)
			fmt.Printf("\nTry:  dlb-testbed exec VM -- ping -c1 IP    dlb-testbed load VM IP:PORT    dlb-testbed down\n")
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file (YAML)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func downCmd(open func() (*testbed.Testbed, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, process and interface of the testbed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tb, err := open()
			if err != nil {
				return err
			}
			if err := tb.Down(cmd.Context()); err != nil {
				return err
			}
			fmt.Printf("testbed %q is down\n", tb.Name)
			return nil
		},
	}
}

func statusCmd(open func() (*testbed.Testbed, error)) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show hosts, VMs, OVS sockets and whether every daemon is alive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tb, err := open()
			if err != nil {
				return err
			}
			st := tb.Status(cmd.Context())
			if output == "json" {
				return printJSON(st)
			}
			st.WriteTable(os.Stdout)
			for _, h := range st.Hosts {
				if h.Problem != "" {
					return &exitError{code: 1}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func execCmd(open func() (*testbed.Testbed, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "exec VM -- COMMAND [ARG...]",
		Short: "Run a command inside a VM's namespace",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tb, err := open()
			if err != nil {
				return err
			}
			c, err := tb.Command(cmd.Context(), args[0], args[1], args[2:]...)
			if err != nil {
				return err
			}
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return &exitError{code: ee.ExitCode()}
				}
				return err
			}
			return nil
		},
	}
}

func loadCmd(open func() (*testbed.Testbed, error)) *cobra.Command {
	var spec testbed.LoadSpec
	var output string
	cmd := &cobra.Command{
		Use:   "load VM TARGET:PORT [TARGET:PORT...]",
		Short: "Open new connections (or send datagrams) from a VM and count who answers",
		Long: `Opens --count new connections (or sends --count datagrams) from inside VM to
TARGET:PORT (several targets: taken round-robin), each from a source (address,
port) pair never used before on this testbed, and prints the answers per server
name, failures by kind, the rate and the latency. Exits 2 when any exchange
failed.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tb, err := open()
			if err != nil {
				return err
			}
			spec.VM = args[0]
			if len(args) == 2 {
				spec.Target = args[1]
			} else {
				spec.Targets = args[1:]
			}
			res, err := tb.Load(cmd.Context(), spec)
			if res != nil {
				if output == "json" {
					if jerr := printJSON(res); jerr != nil {
						return jerr
					}
				} else {
					res.WriteTable(os.Stdout)
				}
			}
			if err != nil {
				return err
			}
			if res.Failed() > 0 {
				return &exitError{code: 2}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Proto, "proto", "tcp", "tcp or udp")
	f.IntVarP(&spec.Count, "count", "n", 100, "connections (or datagrams) to make")
	f.IntVarP(&spec.Concurrency, "concurrency", "c", 8, "how many at once")
	f.DurationVar(&spec.Hold, "hold", 0, "keep each connection open this long, then check it still reaches the same server")
	f.DurationVar(&spec.Timeout, "timeout", 2*time.Second, "limit for each connect and each answer")
	f.Float64Var(&spec.Rate, "rate", 0, "new connections per second (0: as fast as possible)")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func probeCmd(open func() (*testbed.Testbed, error)) *cobra.Command {
	var spec testbed.ProbeSpec
	var output string
	var armed bool
	cmd := &cobra.Command{
		Use:   "probe VM TARGET:PORT",
		Short: "Try a new TCP connection from a VM every millisecond until one is answered",
		Long: `Opens a new TCP connection from inside VM to TARGET:PORT every --every (each
from a source pair never used before on this testbed) until one is
established, or, with --want, until one of the named servers answers, and
prints when and after how many attempts: how long a VIP or a new member
takes to work, to the millisecond. Exits 2 when nothing answered in --max.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tb, err := open()
			if err != nil {
				return err
			}
			spec.VM, spec.Target = args[0], args[1]
			var ready func()
			var start chan struct{}
			if armed {
				// Ready on stdout, then wait for a line on stdin.
				start = make(chan struct{})
				ready = func() {
					fmt.Println("ready")
					go func() {
						_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
						close(start)
					}()
				}
			}
			res, err := tb.ProbeOn(cmd.Context(), spec, ready, start)
			if err != nil {
				fmt.Fprintln(os.Stderr, "dlb-testbed:", err)
				return &exitError{code: 2}
			}
			if output == "json" {
				return printJSON(res)
			}
			fmt.Printf("%s answered %s after %v (%d attempts)\n", spec.Target, orDash(res.Server), res.At.Sub(res.Started).Round(time.Microsecond), res.Attempts)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&spec.Every, "every", time.Millisecond, "time between attempts")
	f.DurationVar(&spec.Timeout, "timeout", 50*time.Millisecond, "limit for one attempt")
	f.DurationVar(&spec.Max, "max", 5*time.Second, "give up after this long")
	f.StringArrayVar(&spec.Want, "want", nil, "count only answers from this server (repeatable)")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	f.BoolVar(&armed, "armed", false, "print \"ready\" and start on a line from stdin (for tests)")
	_ = f.MarkHidden("armed")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func serveCmd() *cobra.Command {
	var vm, pidfile, statusFile string
	var listen []string
	cmd := &cobra.Command{
		Use:    "serve --vm NAME --listen tcp:PORT [--listen udp:PORT]",
		Short:  "Run a VM's built-in servers (started by 'up' inside the VM)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var services []testbed.Service
			for _, l := range listen {
				s, err := testbed.ParseService(l)
				if err != nil {
					return err
				}
				services = append(services, s)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("vm", vm)
			ready := func() {
				if pidfile != "" {
					if err := os.WriteFile(pidfile, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
						log.Error("write pidfile", "err", err)
					}
				}
				log.Info("serving", "services", listen)
			}
			err := testbed.Serve(cmd.Context(), testbed.ServeConfig{Name: vm, Services: services, HTTPStatusFile: statusFile, Log: log, Ready: ready})
			if pidfile != "" {
				_ = os.Remove(pidfile)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&vm, "vm", "", "the VM's name: every answer carries it")
	cmd.Flags().StringArrayVar(&listen, "listen", nil, "tcp:PORT or udp:PORT")
	cmd.Flags().StringVar(&pidfile, "pidfile", "", "written once every listener is bound")
	cmd.Flags().StringVar(&statusFile, "http-status-file", "", "holds the status code HTTP requests get (200 while missing)")
	return cmd
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

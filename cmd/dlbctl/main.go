// Command dlbctl is the admin CLI of dlb-controller: it creates, shows,
// edits and deletes DCN groups, changes their members (add, drain,
// enable, disable, remove, set weight) and lists the hosts, over the
// controller's REST API.
//
// The controller's address comes from --server, else DLB_SERVER, else
// http://127.0.0.1:8470; "host:port" without a scheme means http.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/ovs-dlb/dlb/cmd/internal/cli"
	"github.com/ovs-dlb/dlb/controller/client"
	"github.com/ovs-dlb/dlb/controller/wire"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// run executes one command line and returns the exit status: errors are
// printed as "Error: ..." on stderr, with status 1.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetIn(stdin)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	return 0
}

// app is what every command shares: the configuration and the writers.
type app struct {
	v      *viper.Viper
	stdout io.Writer
	stderr io.Writer
}

// DefaultServer is the controller's address when neither --server nor
// DLB_SERVER says otherwise.
const DefaultServer = "http://127.0.0.1:8470"

// The API's documents (controller/wire) and its client (controller/client).
type (
	Group       = wire.Group
	GroupList   = wire.GroupList
	Host        = wire.Host
	HostList    = wire.HostList
	MemberPatch = wire.MemberChange
	FieldError  = wire.FieldError
	Client      = client.Client
	APIError    = client.APIError
)

// client returns a client of the configured controller.
func (a *app) client() (*Client, error) {
	log := slog.New(slog.DiscardHandler)
	if a.v.GetBool("debug") {
		log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return client.New(a.v.GetString("server"), client.Options{Timeout: a.v.GetDuration("timeout"), Log: log,
		Program: "dlbctl", AddressFrom: "--server or DLB_SERVER", TimeoutFrom: "--timeout"})
}

// printer returns a printer in the configured format.
func (a *app) printer() (printer, error) {
	f, err := parseFormat(a.v.GetString("output"))
	if err != nil {
		return printer{}, err
	}
	return printer{out: a.stdout, format: f}, nil
}

// printerAndClient is what a command that calls the API and prints its
// answer needs, output format first (a bad -o fails before any request).
func (a *app) printerAndClient() (printer, *Client, error) {
	p, err := a.printer()
	if err != nil {
		return printer{}, nil, err
	}
	c, err := a.client()
	return p, c, err
}

// newRoot builds the command tree, writing to stdout and stderr.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	v := viper.New()
	a := &app{v: v, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "dlbctl",
		Short: "Manage the DCN groups of dlb-controller",
		Long: `dlbctl manages the DCN groups of dlb-controller over its REST API: groups
(a virtual IP and ports in front of member servers), their members, and the
hosts whose agents serve them.

The controller's address is --server, else $DLB_SERVER, else ` + DefaultServer + `.`,
		Example: `  dlbctl group create -f web.yaml
  dlbctl group get
  dlbctl group get web -o yaml
  dlbctl member drain web 10.0.0.11
  dlbctl --server 10.1.0.5:8470 host list`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if _, err := parseFormat(v.GetString("output")); err != nil {
				return err
			}
			if _, err := client.ParseServer(v.GetString("server")); err != nil {
				return fmt.Errorf("controller address %q (--server or DLB_SERVER): %w", v.GetString("server"), err)
			}
			if v.GetDuration("timeout") < 0 {
				return fmt.Errorf("--timeout %s: must not be negative", v.GetDuration("timeout"))
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.String("server", DefaultServer, "controller address, URL or host:port (env DLB_SERVER)")
	pf.StringP("output", "o", string(formatTable), "output format: table, json or yaml (env DLB_OUTPUT)")
	pf.Duration("timeout", 30*time.Second, "time limit of each request to the controller, 0 for none (env DLB_TIMEOUT)")
	pf.Bool("debug", false, "log each request to stderr")
	cli.Bind(v, pf)
	root.AddCommand(groupCmd(a), memberCmd(a), hostCmd(a))
	return root
}

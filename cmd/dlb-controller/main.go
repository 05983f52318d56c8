// Command dlb-controller is the DLB's central store and admin API: groups
// of servers behind virtual IPs, kept in an ovsdb-server (its own, started
// on its data directory, unless pointed at an existing one, clustered or
// not) and served over REST to admins and dlbctl.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/ovs-dlb/dlb/cmd/internal/cli"
	"github.com/ovs-dlb/dlb/controller/api"
	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/controller/store"
	"github.com/ovs-dlb/dlb/ovsdb/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dlb-controller:", err)
		os.Exit(1)
	}
}

type config struct {
	Listen       string   `mapstructure:"listen"`
	DataDir      string   `mapstructure:"data_dir"`
	OVSDB        []string `mapstructure:"ovsdb"`
	MaxBodyBytes int64    `mapstructure:"max_body_bytes"`
	Retention    string   `mapstructure:"tombstone_retention"`
	Durable      bool     `mapstructure:"durable_commits"`
	LogLevel     string   `mapstructure:"log_level"`
	PprofAddr    string   `mapstructure:"pprof_addr"`
	// MemberMetricsLimit bounds the members whose statistics (and
	// health) /metrics exports.
	MemberMetricsLimit int `mapstructure:"member_metrics_limit"`
}

func newRoot() *cobra.Command {
	v := viper.New()
	var configFile string
	cmd := &cobra.Command{
		Use:           "dlb-controller",
		Short:         "Store DLB groups in ovsdb-server and serve them over REST",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg config
			if err := cli.Load(v, configFile, &cfg); err != nil {
				return err
			}
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML config file (keys as the flags, with _ for -)")
	f.String("listen", "127.0.0.1:8470", "address of the REST API")
	f.String("data-dir", "/var/lib/dlb-controller", "directory of the embedded ovsdb-server's database (unused with --ovsdb)")
	f.StringSlice("ovsdb", nil, "an existing ovsdb-server holding the DLB database, e.g. tcp:10.0.0.1:6641; repeat (or comma-separate) for the members of a cluster. Default: start one on --data-dir")
	f.Int64("max-body-bytes", api.DefaultMaxBodyBytes, "largest request body accepted")
	f.Bool("durable-commits", true, "acknowledge a write only once ovsdb-server has it on disk (fsync): it survives a power cut; false: only a crash or kill -9")
	f.Int("member-metrics-limit", api.DefaultMemberMetricsLimit, "export the member statistics (and, apart, the members' health) on /metrics only while there are at most this many members (each is 6 series; 5 for health); 0 or less: never")
	f.String("pprof-addr", "", "serve Go's profiles (/debug/pprof/) on this address, apart from the API; empty: not at all")
	f.String("tombstone-retention", "1h", "how long deletions are remembered for agents' watches; an agent away longer gets a full resync")
	f.String("log-level", "info", "debug, info, warn or error")
	cli.Bind(v, f, "config")
	return cmd
}

func run(ctx context.Context, cfg config) error {
	log, err := cli.Logger(cfg.LogLevel)
	if err != nil {
		return err
	}
	retention, err := time.ParseDuration(cfg.Retention)
	if err != nil || retention <= 0 {
		return fmt.Errorf("tombstone_retention: %q: want a duration, e.g. 1h", cfg.Retention)
	}
	if cfg.MaxBodyBytes < 1024 {
		return fmt.Errorf("max_body_bytes: %d is too small (at least 1024)", cfg.MaxBodyBytes)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var pl net.Listener
	if cfg.PprofAddr != "" {
		if pl, err = net.Listen("tcp", cfg.PprofAddr); err != nil {
			ln.Close()
			return fmt.Errorf("pprof_addr: %w", err)
		}
		defer pl.Close()
	}
	defer ln.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	endpoints := cfg.OVSDB
	var embedded *server.Server
	if len(endpoints) == 0 {
		if cfg.DataDir == "" {
			return errors.New("data_dir: required without ovsdb")
		}
		unlock, err := lockDir(cfg.DataDir)
		if err != nil {
			return err
		}
		defer unlock()
		embedded, err = server.New(server.Options{Dir: cfg.DataDir, Schema: dlbdb.SchemaFile, Log: log.With("component", "ovsdb-server")})
		if err != nil {
			return err
		}
		if err := embedded.Start(ctx); err != nil {
			return fmt.Errorf("embedded ovsdb-server: %w", err)
		}
		endpoints = []string{embedded.Endpoint()}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, err := store.Open(ctx, store.Options{Endpoints: endpoints, Log: log.With("component", "store"), OnCommit: api.StoreLatency(reg), NotDurable: !cfg.Durable})
	if err != nil {
		if embedded == nil {
			return fmt.Errorf("ovsdb: %w", err)
		}
		return err
	}
	limit := cfg.MemberMetricsLimit
	if limit <= 0 {
		limit = -1 // none
	}
	handler := api.New(api.Options{Store: st, Registry: reg, Log: log, MaxBodyBytes: cfg.MaxBodyBytes, MemberMetricsLimit: limit})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	srv.RegisterOnShutdown(handler.EndWatches)
	if pl != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.Serve(pl) }()
		defer ps.Close()
		log.Info("profiles served", "pprof_addr", pl.Addr().String())
	}
	go reap(ctx, st, retention, log)
	log.Info("dlb-controller serving", "listen", ln.Addr().String(), "ovsdb", endpoints)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	_ = srv.Shutdown(shutCtx)
	cancel()
	<-st.Done()
	if embedded != nil {
		<-embedded.Done()
	}
	return nil
}

// reap forgets deletions older than retention, every minute (or every
// retention, when shorter).
func reap(ctx context.Context, st *store.Store, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(min(time.Minute, retention))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := st.View().ReapTombstonesBefore(time.Now().Add(-retention)); err != nil {
			log.Error("reaping tombstones", "err", err)
		} else if n > 0 {
			log.Debug("reaped tombstones", "count", n)
		}
	}
}

// lockDir takes the data directory for this process: two controllers on
// one directory would fight over its ovsdb-server. The lock is a flock,
// which the kernel drops when the process dies, even by kill -9.
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	path := filepath.Join(dir, "dlb-controller.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("data_dir: %s is in use by another dlb-controller (pid %s)", dir, strings.TrimSpace(string(owner)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// Package server runs a standalone ovsdb-server on a database file in a
// data directory, for a program that keeps its state in OVSDB and has no
// server of its own to point at (the controller's embedded mode). It
// creates the database from a schema, converts it when the schema changes,
// restarts the server when it dies, and clears away a server left running
// by an earlier process that was killed.
//
// It owns: the server process and the files of its directory. It must not
// touch: the database's contents (clients do that).
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a Server.
type Options struct {
	// Dir is the data directory: the database, the schema it was made
	// from, the socket, pidfile and log live there.
	Dir string
	// Schema is the database schema (an .ovsschema document).
	Schema []byte
	// DBFile is the database's file name in Dir; default "<name>.db" with
	// the schema's name in lower case.
	DBFile string
	Log    *slog.Logger
}

// Server is one supervised ovsdb-server.
type Server struct {
	opts   Options
	name   string // the database's name, from the schema
	log    *slog.Logger
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	done   chan struct{}
}

// New checks the options and returns a Server that is not running yet.
func New(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("data_dir: required")
	}
	name := schemaName(opts.Schema)
	if name == "" {
		return nil, errors.New("schema: no database name in it")
	}
	if opts.DBFile == "" {
		opts.DBFile = strings.ToLower(name) + ".db"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, name: name, log: opts.Log, done: make(chan struct{})}, nil
}

// Endpoint is where clients connect: unix:DIR/db.sock.
func (s *Server) Endpoint() string { return "unix:" + s.path("db.sock") }

// Database is the database's name.
func (s *Server) Database() string { return s.name }

// DBPath is the database file.
func (s *Server) DBPath() string { return s.path(s.opts.DBFile) }

func (s *Server) path(f string) string { return filepath.Join(s.opts.Dir, f) }

// PID is the running server's process id, 0 when none.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Start prepares the database, starts the server, converts the database
// if its schema changed, and supervises the server until ctx ends, when it
// stops it (Done closes then). It returns once the server answers.
func (s *Server) Start(ctx context.Context) error {
	if err := os.MkdirAll(s.opts.Dir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	schema := s.path(strings.ToLower(s.name) + ".ovsschema")
	if err := os.WriteFile(schema, s.opts.Schema, 0o640); err != nil {
		return fmt.Errorf("write schema: %w", err)
	}
	if err := s.stopOrphan(); err != nil {
		return err
	}
	if _, err := os.Stat(s.DBPath()); errors.Is(err, os.ErrNotExist) {
		if out, err := run(ctx, "ovsdb-tool", "create", s.DBPath(), schema); err != nil {
			return fmt.Errorf("ovsdb-tool create: %w: %s", err, out)
		}
		s.log.Info("created database", "file", s.DBPath())
	}
	if err := s.launch(); err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return err
	}
	out, err := run(ctx, "ovsdb-client", "needs-conversion", s.Endpoint(), schema)
	if err != nil {
		s.stop()
		return fmt.Errorf("ovsdb-client needs-conversion: %w: %s", err, out)
	}
	if strings.TrimSpace(out) == "yes" {
		if out, err := run(ctx, "ovsdb-client", "convert", s.Endpoint(), schema); err != nil {
			s.stop()
			return fmt.Errorf("ovsdb-client convert: %w: %s", err, out)
		}
		s.log.Info("converted database to the new schema", "file", s.DBPath())
	}
	go s.supervise(ctx)
	return nil
}

// Done is closed once the server has stopped after Start's ctx ended.
func (s *Server) Done() <-chan struct{} { return s.done }

func (s *Server) launch() error {
	cmd := exec.Command("ovsdb-server", s.DBPath(),
		"--remote=punix:"+s.path("db.sock"),
		"--pidfile="+s.path("ovsdb-server.pid"),
		"--unixctl="+s.path("ovsdb-server.ctl"),
		"--log-file="+s.path("ovsdb-server.log"))
	// The server goes when its parent does, even by kill -9; stopOrphan
	// covers what this misses.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ovsdb-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	s.log.Info("started ovsdb-server", "pid", cmd.Process.Pid, "endpoint", s.Endpoint())
	return nil
}

// waitReady waits until the server accepts connections.
func (s *Server) waitReady(ctx context.Context) error {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", s.path("db.sock")); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("ovsdb-server exited at start; its log:\n%s", s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("ovsdb-server did not open %s in 10 s", s.path("db.sock"))
}

// supervise restarts the server when it dies, until ctx ends.
func (s *Server) supervise(ctx context.Context) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	for {
		s.mu.Lock()
		exited := s.exited
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.stop()
			return
		case <-exited:
		}
		s.log.Error("ovsdb-server exited; restarting", "in", backoff, "log", s.logTail())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
		if err := s.launch(); err != nil {
			s.log.Error("restarting ovsdb-server", "err", err)
			continue
		}
		if err := s.waitReady(ctx); err == nil {
			backoff = 100 * time.Millisecond
		}
	}
}

// stop terminates the running server and waits for it.
func (s *Server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// stopOrphan ends an ovsdb-server that an earlier process left running on
// this directory's database (its pidfile names it and its command line
// holds the database's path).
func (s *Server) stopOrphan() error {
	data, err := os.ReadFile(s.path("ovsdb-server.pid"))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return nil
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(s.DBPath())) {
		return nil // gone, or another process reuses the pid
	}
	s.log.Warn("stopping an ovsdb-server left running on this data directory", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("an ovsdb-server (pid %d) left on %s does not stop", pid, s.opts.Dir)
}

func (s *Server) logTail() string {
	data, _ := os.ReadFile(s.path("ovsdb-server.log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, "\n")
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// schemaName reads the "name" of an .ovsschema document.
func schemaName(schema []byte) string {
	var doc struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(schema, &doc); err != nil {
		return ""
	}
	return doc.Name
}

package testbed

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Start brings a testbed up for a test and registers its teardown (which
// also checks that nothing is left behind). Without root or Open vSwitch
// the test is skipped with a message, except under CI=true, where it fails:
// end-to-end tests must run in CI.
//
// While the test runs, a watcher reports any ovs-vswitchd that dies without
// the testbed stopping it, with the last lines of its log, so a crash does
// not show up as a timeout.
func Start(t testing.TB, topo *Topology) *Testbed {
	t.Helper()
	Require(t)
	bin, err := ServiceBinary()
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	ReapStale(context.Background())
	name := fmt.Sprintf("t%d-%s", os.Getpid(), newPrefix())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tb, err := Up(ctx, topo, Options{
		Name: name, ServiceBinary: bin, owner: ownerTest,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("testbed up: %v", err)
	}
	stop := tb.watch(func(err error) { t.Errorf("testbed %s: %v", tb.Name, err) })
	t.Cleanup(func() {
		stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := tb.Down(ctx); err != nil {
			t.Errorf("testbed down: %v", err)
		}
		if left, err := tb.Leftovers(ctx); err != nil || len(left) > 0 {
			t.Errorf("testbed %s left behind %v (%v)", tb.Name, left, err)
		}
	})
	return tb
}

// Require skips the test when the testbed cannot run here (not root, or
// Open vSwitch missing), or fails it under CI=true. With -short (make unit)
// it always skips: unit tests only, no root, no OVS, no processes.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short (make unit)")
	}
	if err := checkTools(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("end-to-end test cannot run under CI=true: %v", err)
		}
		t.Skipf("skipping end-to-end test: %v", err)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

// Binary finds one of the project's commands (e.g. "dlb-agent") for a
// test: $DLB_BIN_DIR/NAME when DLB_BIN_DIR is set (the Makefile sets it
// to bin/), otherwise it is built once per process with "go build".
func Binary(name string) (string, error) {
	if dir := os.Getenv("DLB_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DLB_BIN_DIR: %w", err)
		}
		return p, nil
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[name]; ok {
		return p, nil
	}
	dir, err := os.MkdirTemp("", "dlb-bin-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", p, "github.com/ovs-dlb/dlb/cmd/"+name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build %s (or set DLB_BIN_DIR): %w: %s", name, err, out)
	}
	buildCache[name] = p
	return p, nil
}

// ServiceBinary finds the dlb-testbed executable that runs VM services.
func ServiceBinary() (string, error) { return Binary("dlb-testbed") }

// ReapStale tears down testbeds left by test processes that no longer run
// (a test binary killed by its timeout, say). Testbeds made with the CLI
// are left alone.
func ReapStale(ctx context.Context) {
	entries, _ := os.ReadDir(DefaultBaseDir)
	for _, e := range entries {
		st, err := readState(filepath.Join(DefaultBaseDir, e.Name()))
		if err != nil || st.Owner != ownerTest || alive(st.OwnerPID) {
			continue
		}
		tb := newTestbed(filepath.Join(DefaultBaseDir, e.Name()), st, slog.New(slog.DiscardHandler))
		_ = tb.Down(ctx)
	}
}

// watch polls every host's ovs-vswitchd and calls report once per death
// that the testbed did not cause. The returned function stops it.
func (tb *Testbed) watch(report func(error)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		reported := map[string]bool{}
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for _, h := range tb.hosts {
				err := h.checkVSwitchd()
				if err == nil {
					delete(reported, h.Name)
					continue
				}
				if !reported[h.Name] {
					reported[h.Name] = true
					report(err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

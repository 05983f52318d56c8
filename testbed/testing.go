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
// Open vSwitch missing), or fails it under CI=true.
func Require(t testing.TB) {
	t.Helper()
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
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// ServiceBinary finds the dlb-testbed executable that runs VM services:
// $DLB_TESTBED_BIN if set (the Makefile sets it to bin/dlb-testbed),
// otherwise it is built once per process with "go build".
func ServiceBinary() (string, error) {
	if p := os.Getenv("DLB_TESTBED_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DLB_TESTBED_BIN: %w", err)
		}
		return p, nil
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dlb-testbed-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "dlb-testbed")
		out, err := exec.Command("go", "build", "-o", buildPath, "github.com/ovs-dlb/dlb/cmd/dlb-testbed").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build dlb-testbed (or set DLB_TESTBED_BIN): %w: %s", err, out)
		}
	})
	return buildPath, buildErr
}

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

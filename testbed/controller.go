package testbed

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Controller is a dlb-controller process for a test, with its embedded
// ovsdb-server on a data directory of the test's, listening on a free
// loopback port.
type Controller struct {
	t    testing.TB
	bin  string
	args []string
	// Addr is the REST API's host:port; Dir the data directory.
	Addr, Dir string
	logPath   string
	cmd       *exec.Cmd
	done      chan struct{}
}

// NewController prepares a controller (Start runs it); at the end of the
// test it is stopped with SIGTERM, and the test fails if a process is left
// running on its data directory. Extra args go to every start.
func NewController(t testing.TB, args ...string) *Controller {
	t.Helper()
	Require(t)
	bin, err := Binary("dlb-controller")
	if err != nil {
		t.Fatal(err)
	}
	c := &Controller{t: t, bin: bin, args: args, Addr: FreeAddr(t), Dir: t.TempDir(), logPath: filepath.Join(t.TempDir(), "dlb-controller.log")}
	t.Cleanup(c.cleanup)
	return c
}

// StartController is NewController and Start.
func StartController(t testing.TB, args ...string) *Controller {
	t.Helper()
	c := NewController(t, args...)
	c.Start()
	return c
}

// FreeAddr is a loopback host:port nothing listens on (for a server a test
// starts, or to see a client fail to connect).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// URL is the API's base URL.
func (c *Controller) URL() string { return "http://" + c.Addr }

// OVSDB is the embedded ovsdb-server's endpoint.
func (c *Controller) OVSDB() string { return "unix:" + filepath.Join(c.Dir, "db.sock") }

// PID is the controller's process id (0 when not running).
func (c *Controller) PID() int {
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Start runs the controller (again, on the same data directory, after a
// Kill) and waits until /readyz answers 200.
func (c *Controller) Start() {
	c.t.Helper()
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	c.cmd = exec.Command(c.bin, append([]string{"--listen", c.Addr, "--data-dir", c.Dir, "--log-level", "warn"}, c.args...)...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); logf.Close(); close(done) }(c.cmd)
	c.done = done
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(c.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			c.t.Fatalf("dlb-controller exited at start; its log:\n%s", c.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("dlb-controller not ready in 20 s (last: %v); its log:\n%s", err, c.Log())
		}
	}
}

// Exited says whether the process has ended.
func (c *Controller) Exited() bool {
	if c.done == nil {
		return true
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Kill ends the controller with SIGKILL and waits for it.
func (c *Controller) Kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.done
	c.cmd = nil
}

// Stop ends the controller with SIGTERM (SIGKILL after 10 s, failing the
// test) and waits for it.
func (c *Controller) Stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Errorf("dlb-controller did not stop in 10 s after SIGTERM; killing it")
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// OVSDBPID is the embedded ovsdb-server's pid, from its pidfile.
func (c *Controller) OVSDBPID() int {
	data, err := os.ReadFile(filepath.Join(c.Dir, "ovsdb-server.pid"))
	if err != nil {
		c.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		c.t.Fatal(err)
	}
	return pid
}

// Log is what the controller wrote, every start of it.
func (c *Controller) Log() string {
	data, _ := os.ReadFile(c.logPath)
	return string(data)
}

func (c *Controller) cleanup() {
	c.Stop()
	// Its ovsdb-server goes with it (it may take a moment).
	var left []int
	for range 50 {
		if left = processesOn(c.Dir); len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		c.t.Errorf("processes left running on %s after the controller stopped: %v", c.Dir, left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if c.t.Failed() {
		c.t.Logf("dlb-controller log:\n%s", c.Log())
	}
}

// processesOn lists the live processes whose command line names dir.
func processesOn(dir string) []int {
	var pids []int
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte(dir)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil && Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Alive says whether a process runs (a zombie does not).
func Alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// Do sends one request to the controller's API and returns the answer's
// status and body (an error when there is no answer: the controller is
// down, say).
func (c *Controller) Do(method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, c.URL()+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// Call sends one request to the controller's API and fails the test unless
// the answer has status want; it returns the answer's body.
func (c *Controller) Call(method, path, body string, want int) []byte {
	c.t.Helper()
	req, err := http.NewRequest(method, c.URL()+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	return data
}

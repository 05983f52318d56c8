package testbed

import (
	"context"
	"errors"
	"fmt"
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

// Bridge is the name of every host's integration bridge.
const Bridge = "br-int"

// UplinkPort is the name of every host's port to the underlay fabric.
const UplinkPort = "uplink"

// vswitchSchema is the OVSDB schema Debian's openvswitch-common ships.
const vswitchSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// Host is one emulated hypervisor: a network namespace with its own
// ovsdb-server and ovs-vswitchd (userspace datapath) and bridge br-int.
type Host struct {
	Name      string
	Namespace string
	// RunDir holds the host's OVS database, sockets, pidfiles and logs.
	RunDir string

	mu sync.Mutex
	// restarting is set while the testbed itself stops ovs-vswitchd, so
	// the crash watcher does not report it. Guarded by mu.
	restarting bool
}

// OpenFlowTarget is the bridge's OpenFlow endpoint, "unix:RUNDIR/br-int.mgmt".
func (h *Host) OpenFlowTarget() string { return "unix:" + filepath.Join(h.RunDir, Bridge+".mgmt") }

// OVSDBSocket is the OVSDB endpoint of the host's ovsdb-server,
// "unix:RUNDIR/db.sock".
func (h *Host) OVSDBSocket() string { return "unix:" + h.dbSock() }

func (h *Host) dbSock() string               { return filepath.Join(h.RunDir, "db.sock") }
func (h *Host) pidfile(daemon string) string { return filepath.Join(h.RunDir, daemon+".pid") }
func (h *Host) ctlSock(daemon string) string { return filepath.Join(h.RunDir, daemon+".ctl") }
func (h *Host) logFile(daemon string) string { return filepath.Join(h.RunDir, daemon+".log") }

func (h *Host) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+h.RunDir, "OVS_LOGDIR="+h.RunDir, "OVS_DBDIR="+h.RunDir, "OVS_SYSCONFDIR="+h.RunDir)
}

// inHost runs an OVS command inside the host's namespace with its rundir.
func (h *Host) inHost(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Namespace, name}, args...)...)
	cmd.Env = h.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("host %s: %s %s: %w: %s", h.Name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// VSCtl runs ovs-vsctl against the host's database.
func (h *Host) VSCtl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ovs-vsctl", append([]string{"--timeout=10", "--db=" + h.OVSDBSocket()}, args...)...)
}

// OFCtl runs ovs-ofctl with OpenFlow 1.5 on the host's bridge: the command
// comes first, e.g. OFCtl(ctx, "dump-flows", "--names").
func (h *Host) OFCtl(ctx context.Context, command string, args ...string) (string, error) {
	return run(ctx, "ovs-ofctl", append([]string{"-O", "OpenFlow15", command, h.OpenFlowTarget()}, args...)...)
}

// AppCtl runs ovs-appctl against the host's ovs-vswitchd.
func (h *Host) AppCtl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "ovs-appctl", append([]string{"-t", h.ctlSock("ovs-vswitchd")}, args...)...)
}

func (h *Host) startOVSDB(ctx context.Context) error {
	db := h.DBPath()
	if _, err := os.Stat(db); os.IsNotExist(err) {
		if _, err := run(ctx, "ovsdb-tool", "create", db, vswitchSchema); err != nil {
			return err
		}
	}
	_, err := h.inHost(ctx, "ovsdb-server", db,
		"--remote=punix:"+h.dbSock(),
		"--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
		"--pidfile="+h.pidfile("ovsdb-server"),
		"--unixctl="+h.ctlSock("ovsdb-server"),
		"--log-file="+h.logFile("ovsdb-server"),
		"-vconsole:off", "--detach", "--no-chdir")
	return err
}

func (h *Host) startVSwitchd(ctx context.Context) error {
	// A daemon just killed or stopped may still hold its pidfile's lock
	// for a moment after its pid is gone from /proc (seen once under load:
	// "already running as pid N, aborting"): try again for a while.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := h.inHost(ctx, "ovs-vswitchd", "unix:"+h.dbSock(),
			"--pidfile="+h.pidfile("ovs-vswitchd"),
			"--unixctl="+h.ctlSock("ovs-vswitchd"),
			"--log-file="+h.logFile("ovs-vswitchd"),
			"-vconsole:off", "--detach", "--no-chdir")
		if err == nil || !strings.Contains(out, "already running") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitOpenFlow waits until the bridge's OpenFlow socket accepts connections.
func (h *Host) waitOpenFlow(ctx context.Context) error {
	path := filepath.Join(h.RunDir, Bridge+".mgmt")
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		if err := h.checkVSwitchd(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("host %s: bridge %s never opened %s: %w", h.Name, Bridge, path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RestartVSwitchd stops ovs-vswitchd gracefully and starts it again on the
// same database, waiting until the bridge answers OpenFlow again. Flows
// and (on the userspace datapath) conntrack state are lost, as on a real
// hypervisor.
func (h *Host) RestartVSwitchd(ctx context.Context) error {
	h.setRestarting(true)
	defer h.setRestarting(false)
	pid, _ := readPID(h.pidfile("ovs-vswitchd"))
	if _, err := h.AppCtl(ctx, "exit"); err != nil {
		return err
	}
	if err := waitGone(ctx, pid); err != nil {
		return fmt.Errorf("host %s: ovs-vswitchd: %w", h.Name, err)
	}
	if err := h.startVSwitchd(ctx); err != nil {
		return err
	}
	return h.waitOpenFlow(ctx)
}

// KillVSwitchd kills ovs-vswitchd with SIGKILL, as a crash would, and
// starts it again on the same database, waiting until the bridge answers
// OpenFlow. The crash watcher does not report it.
func (h *Host) KillVSwitchd(ctx context.Context) error {
	h.setRestarting(true)
	defer h.setRestarting(false)
	pid, ok := h.VSwitchdPID()
	if !ok {
		return fmt.Errorf("host %s: ovs-vswitchd is not running", h.Name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("host %s: kill ovs-vswitchd: %w", h.Name, err)
	}
	if err := waitGone(ctx, pid); err != nil {
		return fmt.Errorf("host %s: ovs-vswitchd: %w", h.Name, err)
	}
	if err := h.startVSwitchd(ctx); err != nil {
		return err
	}
	return h.waitOpenFlow(ctx)
}

// RestartOVSDBServer stops ovsdb-server and starts it again on the same
// database file.
func (h *Host) RestartOVSDBServer(ctx context.Context) error {
	if err := h.StopOVSDBServer(ctx); err != nil {
		return err
	}
	return h.StartOVSDBServer(ctx)
}

// StopOVSDBServer stops the host's ovsdb-server. While it is stopped the
// database file (DBPath) may be changed with ovsdb-tool.
func (h *Host) StopOVSDBServer(ctx context.Context) error {
	pid, _ := readPID(h.pidfile("ovsdb-server"))
	if _, err := run(ctx, "ovs-appctl", "-t", h.ctlSock("ovsdb-server"), "exit"); err != nil {
		return err
	}
	if err := waitGone(ctx, pid); err != nil {
		return fmt.Errorf("host %s: ovsdb-server: %w", h.Name, err)
	}
	return nil
}

// StartOVSDBServer starts the host's ovsdb-server on its database file.
func (h *Host) StartOVSDBServer(ctx context.Context) error { return h.startOVSDB(ctx) }

// DBPath is the host's Open_vSwitch database file.
func (h *Host) DBPath() string { return filepath.Join(h.RunDir, "conf.db") }

func (h *Host) setRestarting(v bool) {
	h.mu.Lock()
	h.restarting = v
	h.mu.Unlock()
}

// VSwitchdPID returns the pid of the host's ovs-vswitchd and whether it is
// alive.
func (h *Host) VSwitchdPID() (int, bool) {
	pid, err := readPID(h.pidfile("ovs-vswitchd"))
	if err != nil {
		return 0, false
	}
	return pid, alive(pid)
}

// ErrVSwitchdDied is wrapped by errors that report a dead ovs-vswitchd.
var ErrVSwitchdDied = errors.New("ovs-vswitchd died")

// checkVSwitchd returns an error with the tail of the log when the host's
// ovs-vswitchd is not running and the testbed did not stop it.
func (h *Host) checkVSwitchd() error {
	h.mu.Lock()
	restarting := h.restarting
	h.mu.Unlock()
	if restarting {
		return nil
	}
	pid, ok := h.VSwitchdPID()
	if ok {
		return nil
	}
	return fmt.Errorf("host %s: %w (pid %d); last lines of %s:\n%s", h.Name, ErrVSwitchdDied, pid,
		h.logFile("ovs-vswitchd"), h.LogTail("ovs-vswitchd", 15))
}

// LogTail returns the last n lines of a daemon's log ("ovs-vswitchd" or
// "ovsdb-server").
func (h *Host) LogTail(daemon string, n int) string {
	return tail(h.logFile(daemon), n)
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func waitGone(ctx context.Context, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for alive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("pid %d did not exit: %w", pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// stopPID sends SIGTERM, waits a little, then SIGKILL.
func stopPID(pid int) {
	if !alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

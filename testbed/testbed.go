package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Testbed is a running emulation: one namespace per host and per VM, and
// a fabric namespace holding the underlay bridge.
type Testbed struct {
	Name   string
	Prefix string
	// RunDir holds the state file, each host's OVS files and VM logs.
	RunDir   string
	Topology Topology

	st    *state
	hosts []*Host
	vms   map[string]*VM
	log   *slog.Logger
}

// VM is one emulated VM.
type VM struct {
	VMSpec
	Host      string
	Namespace string
	// RunDir holds the VM's service pidfile and log.
	RunDir string
}

// Options tune Up.
type Options struct {
	// Name of the testbed; its run directory is BaseDir/Name. Default "default".
	Name string
	// BaseDir holds run directories. Default DefaultBaseDir.
	BaseDir string
	// ServiceBinary is the dlb-testbed executable that runs VM services;
	// required when a VM lists services.
	ServiceBinary string
	Logger        *slog.Logger

	owner string
}

func (o *Options) defaults() {
	if o.Name == "" {
		o.Name = "default"
	}
	if o.BaseDir == "" {
		o.BaseDir = DefaultBaseDir
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.owner == "" {
		o.owner = ownerCLI
	}
}

// Up creates the testbed described by topo. If the run directory holds an
// earlier testbed (say, after a crash) that one is torn down first. On
// failure everything created so far is removed again.
func Up(ctx context.Context, topo *Topology, opts Options) (*Testbed, error) {
	opts.defaults()
	if err := topo.Validate(); err != nil {
		return nil, err
	}
	if err := checkTools(); err != nil {
		return nil, err
	}
	needBinary := false
	for _, h := range topo.Hosts {
		for _, v := range h.VMs {
			needBinary = needBinary || len(v.Services) > 0
		}
	}
	if needBinary && opts.ServiceBinary == "" {
		return nil, errors.New("testbed: VMs have services but no ServiceBinary (the dlb-testbed executable) was given")
	}
	dir := filepath.Join(opts.BaseDir, opts.Name)
	if old, err := Open(opts.Name, opts.BaseDir); err == nil {
		opts.Logger.Info("removing the leftovers of an earlier run", "testbed", opts.Name, "prefix", old.Prefix)
		if err := old.Down(ctx); err != nil {
			return nil, fmt.Errorf("clean earlier run in %s: %w", dir, err)
		}
	} else if !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	var prefix string
	for {
		prefix = newPrefix()
		if ns, _ := namespacesWithPrefix(prefix); len(ns) == 0 {
			break
		}
	}
	st := &state{
		Name: opts.Name, Prefix: prefix, Owner: opts.owner, OwnerPID: os.Getpid(),
		Created: time.Now().UTC(), Topology: *topo, ServiceBinary: opts.ServiceBinary,
	}
	// The state goes to disk before anything is created, so that Down
	// finds whatever a crash in the middle leaves behind.
	if err := writeState(dir, st); err != nil {
		return nil, err
	}
	tb := newTestbed(dir, st, opts.Logger)
	if err := tb.create(ctx); err != nil {
		if derr := tb.Down(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", derr))
		}
		return nil, err
	}
	return tb, nil
}

// Open finds a running testbed by name.
func Open(name, baseDir string) (*Testbed, error) {
	if baseDir == "" {
		baseDir = DefaultBaseDir
	}
	if name == "" {
		name = "default"
	}
	dir := filepath.Join(baseDir, name)
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	return newTestbed(dir, st, slog.New(slog.DiscardHandler)), nil
}

func newTestbed(dir string, st *state, log *slog.Logger) *Testbed {
	tb := &Testbed{Name: st.Name, Prefix: st.Prefix, RunDir: dir, Topology: st.Topology, st: st, vms: map[string]*VM{}, log: log}
	for _, hs := range st.Topology.Hosts {
		h := &Host{Name: hs.Name, Namespace: st.Prefix + "-" + hs.Name, RunDir: filepath.Join(dir, hs.Name)}
		tb.hosts = append(tb.hosts, h)
		for _, vs := range hs.VMs {
			tb.vms[vs.Name] = &VM{VMSpec: vs, Host: hs.Name, Namespace: st.Prefix + "-" + vs.Name, RunDir: filepath.Join(dir, "vms", vs.Name)}
		}
	}
	return tb
}

func checkTools() error {
	if os.Geteuid() != 0 {
		return errors.New("testbed: must run as root (it creates network namespaces)")
	}
	for _, t := range []string{"ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ovs-ofctl", "ethtool"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("testbed: %s not found (run 'make deps' to install Open vSwitch, iproute2 and ethtool)", t)
		}
	}
	if _, err := os.Stat(vswitchSchema); err != nil {
		return fmt.Errorf("testbed: %s missing: is openvswitch-common installed?", vswitchSchema)
	}
	return nil
}

// Hosts returns the hosts in topology order.
func (tb *Testbed) Hosts() []*Host { return tb.hosts }

// Host returns a host by name, or nil.
func (tb *Testbed) Host(name string) *Host {
	for _, h := range tb.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// VM returns a VM by name, or nil.
func (tb *Testbed) VM(name string) *VM { return tb.vms[name] }

func (tb *Testbed) fabricNS() string { return tb.Prefix + "-fabric" }

func (tb *Testbed) create(ctx context.Context) error {
	fab := tb.fabricNS()
	if err := ip(ctx, "netns", "add", fab); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", fab, "link", "set", "lo", "up"},
		{"-n", fab, "link", "add", "fabric", "type", "bridge", "stp_state", "0", "mcast_snooping", "0"},
		{"-n", fab, "link", "set", "fabric", "up"},
	} {
		if err := ip(ctx, args...); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(tb.hosts))
	for i, h := range tb.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tb.createHost(ctx, h, tb.Topology.Hosts[i])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (tb *Testbed) createHost(ctx context.Context, h *Host, spec HostSpec) error {
	if err := ip(ctx, "netns", "add", h.Namespace); err != nil {
		return err
	}
	if err := ip(ctx, "-n", h.Namespace, "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := os.MkdirAll(h.RunDir, 0o755); err != nil {
		return err
	}
	if err := h.startOVSDB(ctx); err != nil {
		return err
	}
	if _, err := run(ctx, "ovs-vsctl", "--no-wait", "--db="+h.OVSDBSocket(), "init",
		"--", "set", "Open_vSwitch", ".", "external_ids:system-id="+h.Name, "external_ids:hostname="+h.Name); err != nil {
		return err
	}
	if err := h.startVSwitchd(ctx); err != nil {
		return err
	}
	fab := tb.fabricNS()
	for _, args := range [][]string{
		{"-n", fab, "link", "add", h.Name, "type", "veth", "peer", "name", UplinkPort, "netns", h.Namespace},
		{"-n", fab, "link", "set", h.Name, "master", "fabric", "up"},
		{"-n", h.Namespace, "link", "set", UplinkPort, "up"},
	} {
		if err := ip(ctx, args...); err != nil {
			return err
		}
	}
	vsctl := []string{
		"add-br", Bridge, "--", "set", "Bridge", Bridge, "datapath_type=netdev",
		"protocols=OpenFlow10,OpenFlow13,OpenFlow14,OpenFlow15", "fail-mode=standalone",
		"other_config:disable-in-band=true",
		"--", "add-port", Bridge, UplinkPort,
	}
	for _, vs := range spec.VMs {
		vm := tb.vms[vs.Name]
		if err := tb.createVM(ctx, h, vm); err != nil {
			return err
		}
		vsctl = append(vsctl, "--", "add-port", Bridge, vm.Name, "--", "set", "Interface", vm.Name,
			"external_ids:iface-id="+vm.Name, "external_ids:attached-mac="+vm.HardwareAddr(),
			"external_ids:ovs-dlb-ips="+vm.addrList())
		if vm.Tenant != "" {
			vsctl = append(vsctl, "external_ids:tenant="+vm.Tenant)
		}
	}
	if _, err := h.VSCtl(ctx, vsctl...); err != nil {
		return err
	}
	if err := h.waitOpenFlow(ctx); err != nil {
		return err
	}
	for _, vs := range spec.VMs {
		if err := tb.startServices(ctx, tb.vms[vs.Name]); err != nil {
			return err
		}
	}
	return nil
}

func (tb *Testbed) createVM(ctx context.Context, h *Host, vm *VM) error {
	ns := vm.Namespace
	if err := ip(ctx, "netns", "add", ns); err != nil {
		return err
	}
	cmds := [][]string{
		{"-n", h.Namespace, "link", "add", vm.Name, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "eth0", "address", vm.HardwareAddr()},
		{"-n", ns, "addr", "add", vm.IP, "dev", "eth0"},
	}
	if vm.IP6 != "" {
		cmds = append(cmds, []string{"-n", ns, "addr", "add", vm.IP6, "dev", "eth0", "nodad"})
	}
	for _, e := range vm.ExtraIPs {
		cmds = append(cmds, []string{"-n", ns, "addr", "add", e, "dev", "eth0", "nodad"})
	}
	for _, v := range vm.VIPOnLo {
		a := netip.MustParseAddr(v)
		cmds = append(cmds, []string{"-n", ns, "addr", "add", netip.PrefixFrom(a, a.BitLen()).String(), "dev", "lo", "nodad"})
	}
	// On-link default routes: a VM reaches any address, a VIP included,
	// by resolving it on eth0 itself, as on a flat hypervisor network.
	cmds = append(cmds,
		[]string{"-n", ns, "link", "set", "eth0", "up"},
		[]string{"-n", ns, "route", "add", "default", "dev", "eth0"},
		[]string{"-n", h.Namespace, "link", "set", vm.Name, "up"})
	if vm.IP6 != "" {
		cmds = append(cmds, []string{"-n", ns, "-6", "route", "add", "default", "dev", "eth0"})
	}
	for _, args := range cmds {
		if err := ip(ctx, args...); err != nil {
			return fmt.Errorf("VM %s: %w", vm.Name, err)
		}
	}
	// The userspace datapath does not complete checksums that the VM's
	// kernel leaves to offload, so the VM computes them itself.
	if _, err := inNetns(ctx, ns, "ethtool", "-K", "eth0", "tx", "off"); err != nil {
		return fmt.Errorf("VM %s: %w", vm.Name, err)
	}
	if len(vm.VIPOnLo) > 0 {
		// A DSR member answers for its VIPs but never claims them on the
		// network: only the DLB answers ARP for a VIP.
		for _, kv := range []string{"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"} {
			if _, err := inNetns(ctx, ns, "sysctl", "-qw", kv); err != nil {
				return fmt.Errorf("VM %s: %w", vm.Name, err)
			}
		}
	}
	return os.MkdirAll(vm.RunDir, 0o755)
}

// addrList is the VM's primary addresses, comma-separated, as the DLB reads
// them from external_ids:ovs-dlb-ips.
func (vm *VM) addrList() string {
	s := vm.Addr().String()
	if vm.IP6 != "" {
		s += "," + vm.Addr6().String()
	}
	return s
}

func (vm *VM) servicePidfile() string { return filepath.Join(vm.RunDir, "serve.pid") }
func (vm *VM) serviceLog() string     { return filepath.Join(vm.RunDir, "serve.log") }
func (vm *VM) httpStatusFile() string { return filepath.Join(vm.RunDir, "http-status") }

// SetHTTPStatus makes a VM's TCP services answer HTTP requests with code
// from now on (as a server whose application fails while its port still
// accepts connections); 0 restores 200.
func (tb *Testbed) SetHTTPStatus(vm string, code int) error {
	v := tb.vms[vm]
	if v == nil {
		return fmt.Errorf("no VM %q", vm)
	}
	if code == 0 {
		if err := os.Remove(v.httpStatusFile()); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	if code < 100 || code > 999 {
		return fmt.Errorf("VM %s: %d is not an HTTP status code", vm, code)
	}
	tmp := v.httpStatusFile() + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d\n", code), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, v.httpStatusFile())
}

// StopServices stops a VM's services (as a crashed server: its ports then
// refuse connections); StartServices starts them again.
func (tb *Testbed) StopServices(vm string) error {
	v := tb.vms[vm]
	if v == nil {
		return fmt.Errorf("no VM %q", vm)
	}
	pid, err := readPID(v.servicePidfile())
	if err != nil {
		return fmt.Errorf("VM %s: services: %w", vm, err)
	}
	stopPID(pid)
	if alive(pid) {
		return fmt.Errorf("VM %s: services (pid %d) did not stop", vm, pid)
	}
	if err := os.Remove(v.servicePidfile()); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// StartServices starts a VM's services again after StopServices, and
// waits until they listen.
func (tb *Testbed) StartServices(ctx context.Context, vm string) error {
	v := tb.vms[vm]
	if v == nil {
		return fmt.Errorf("no VM %q", vm)
	}
	return tb.startServices(ctx, v)
}

// startServices runs "dlb-testbed serve" inside the VM and waits until its
// listeners are bound (it writes its pidfile then).
func (tb *Testbed) startServices(ctx context.Context, vm *VM) error {
	if len(vm.Services) == 0 {
		return nil
	}
	args := []string{"netns", "exec", vm.Namespace, tb.st.ServiceBinary, "serve", "--vm", vm.Name, "--pidfile", vm.servicePidfile(),
		"--http-status-file", vm.httpStatusFile()}
	for _, s := range vm.Services {
		args = append(args, "--listen", s)
	}
	logf, err := os.OpenFile(vm.serviceLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("VM %s: start services: %w", vm.Name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(10 * time.Second)
	for {
		if _, err := readPID(vm.servicePidfile()); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("VM %s: services exited: %v; log:\n%s", vm.Name, err, tail(vm.serviceLog(), 10))
		case <-deadline:
			return fmt.Errorf("VM %s: services not ready after 10s; log:\n%s", vm.Name, tail(vm.serviceLog(), 10))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Command returns a command that runs inside a VM's namespace.
func (tb *Testbed) Command(ctx context.Context, vm string, name string, args ...string) (*exec.Cmd, error) {
	v := tb.vms[vm]
	if v == nil {
		return nil, fmt.Errorf("no VM %q in testbed %s", vm, tb.Name)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", v.Namespace, name}, args...)...), nil
}

// Exec runs a command inside a VM and returns its combined output.
func (tb *Testbed) Exec(ctx context.Context, vm string, name string, args ...string) (string, error) {
	cmd, err := tb.Command(ctx, vm, name, args...)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("in VM %s: %s %s: %w: %s", vm, name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Down removes everything the testbed created: its processes (found by
// pidfile and by their command lines naming the run directory), its
// namespaces (which takes their veths and taps along) and its run
// directory. It touches nothing else.
func (tb *Testbed) Down(ctx context.Context) error {
	var errs []error
	for _, vm := range tb.vms {
		if pid, err := readPID(vm.servicePidfile()); err == nil {
			stopPID(pid)
		}
	}
	for _, h := range tb.hosts {
		h.setRestarting(true)
		for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
			if pid, err := readPID(h.pidfile(d)); err == nil {
				stopPID(pid)
			}
		}
	}
	for _, pid := range processesMentioning(tb.RunDir + "/") {
		stopPID(pid)
	}
	nss, err := namespacesWithPrefix(tb.Prefix)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if err := ip(ctx, "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if left := processesMentioning(tb.RunDir + "/"); len(left) > 0 {
		errs = append(errs, fmt.Errorf("processes %v of testbed %s survived", left, tb.Name))
	}
	if err := os.RemoveAll(tb.RunDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// processesMentioning lists live processes whose command line contains s.
func processesMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) || !alive(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// Leftovers lists what of the testbed still exists: namespaces with its
// prefix, processes naming its run directory, and interfaces of the root
// namespace with its prefix. Empty after Down.
func (tb *Testbed) Leftovers(ctx context.Context) ([]string, error) {
	var out []string
	nss, err := namespacesWithPrefix(tb.Prefix)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		out = append(out, "namespace "+ns)
	}
	for _, pid := range processesMentioning(tb.RunDir + "/") {
		out = append(out, fmt.Sprintf("process %d", pid))
	}
	links, err := run(ctx, "ip", "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(links, "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.Contains(f[1], tb.Prefix) {
			out = append(out, "interface "+strings.TrimSuffix(f[1], ":"))
		}
	}
	if _, err := os.Stat(tb.RunDir); err == nil {
		out = append(out, "run directory "+tb.RunDir)
	}
	return out, nil
}

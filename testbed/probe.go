package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ProbeSpec asks a VM to try a target again and again until it answers.
type ProbeSpec struct {
	VM, Target string
	// Every is the time between attempts (default 1 ms); attempts overlap.
	Every time.Duration
	// Timeout bounds one attempt (default 50 ms).
	Timeout time.Duration
	// Max bounds the whole probe (default 500 ms).
	Max time.Duration
	// Want, when set, names the servers whose answer counts, e.g. to wait
	// for a new member; the first connection of each attempt is then asked
	// who it reached. Without Want, any established connection is the
	// answer.
	Want []string
}

// ProbeResult is the first wanted connection: when it was established
// (the handshake done: the client can send) and who answered on it.
type ProbeResult struct {
	// Started is when the first attempt began.
	Started  time.Time `json:"started"`
	At       time.Time `json:"at"`
	Server   string    `json:"server,omitempty"`
	Attempts int       `json:"attempts"`
}

func (spec *ProbeSpec) defaults() {
	if spec.Every == 0 {
		spec.Every = time.Millisecond
	}
	if spec.Timeout == 0 {
		spec.Timeout = 50 * time.Millisecond
	}
	if spec.Max == 0 {
		spec.Max = 500 * time.Millisecond
	}
}

// Probe starts a new TCP connection to the target every spec.Every, each
// from a fresh source, until one is established (and, with Want, answered
// as wanted), and says when: convergence measured to the millisecond. It
// fails after spec.Max.
//
// One thread in the VM's namespace does it all with non-blocking sockets
// and epoll, so that the prober itself costs little CPU beside what it
// measures (on a 2-core machine, a goroutine and thread per attempt
// delayed everything it measured). It runs in the calling process: to
// measure something that starts at a given moment, StartProbe arms one in
// a process of its own.
func (tb *Testbed) Probe(ctx context.Context, spec ProbeSpec) (*ProbeResult, error) {
	return tb.ProbeOn(ctx, spec, nil, nil)
}

// ProbeOn is Probe that gets ready (sources reserved, a thread in the VM's
// namespace), calls ready, and begins when start is closed (nil: at
// once). The 'dlb-testbed probe' command runs it for StartProbe.
func (tb *Testbed) ProbeOn(ctx context.Context, spec ProbeSpec, ready func(), start <-chan struct{}) (*ProbeResult, error) {
	spec.defaults()
	vm := tb.vms[spec.VM]
	if vm == nil {
		return nil, fmt.Errorf("no VM %q in testbed %s", spec.VM, tb.Name)
	}
	target, err := ParseTarget(spec.Target)
	if err != nil {
		return nil, err
	}
	n := int(spec.Max/spec.Every) + 1
	plan, err := vm.reserveSources(target.Addr().Is6(), n)
	if err != nil {
		return nil, err
	}
	type out struct {
		res *ProbeResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		// The thread ends with this goroutine, and the namespace with it.
		if err := enterNetns(vm.Namespace); err != nil {
			done <- out{nil, err}
			return
		}
		if ready != nil {
			ready()
		}
		if start != nil {
			select {
			case <-start:
			case <-ctx.Done():
				done <- out{nil, ctx.Err()}
				return
			}
		}
		res, err := probeLoop(ctx, spec, n, plan.pair, target)
		done <- out{res, err}
	}()
	o := <-done
	if o.err != nil {
		return nil, o.err
	}
	if o.res.Server == "" && len(spec.Want) > 0 {
		return nil, fmt.Errorf("%s -> %s: no answer from %s in %v", spec.VM, spec.Target, strings.Join(spec.Want, " or "), spec.Max)
	}
	if o.res.At.IsZero() {
		return nil, fmt.Errorf("%s -> %s: no connection in %v (%d attempts)", spec.VM, spec.Target, spec.Max, o.res.Attempts)
	}
	return o.res, nil
}

// A Prober is a probe armed in a process of its own inside the VM's
// namespace (the 'dlb-testbed probe' command): started ahead, it begins
// when fired. Neither starting it nor the caller's own work is then in
// what it measures, and its probing competes with the caller for the CPU
// only as a VM's client would.
type Prober struct {
	spec  ProbeSpec
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	errs  strings.Builder
	fired bool
}

// StartProbe starts a prober for spec and returns once it is ready to fire.
func (tb *Testbed) StartProbe(ctx context.Context, spec ProbeSpec) (*Prober, error) {
	spec.defaults()
	if tb.vms[spec.VM] == nil {
		return nil, fmt.Errorf("no VM %q in testbed %s", spec.VM, tb.Name)
	}
	bin, err := ServiceBinary()
	if err != nil {
		return nil, err
	}
	args := []string{"--name", tb.Name, "--base-dir", filepath.Dir(tb.RunDir), "probe", spec.VM, spec.Target,
		"--armed", "-o", "json", "--every", spec.Every.String(), "--timeout", spec.Timeout.String(), "--max", spec.Max.String()}
	for _, w := range spec.Want {
		args = append(args, "--want", w)
	}
	p := &Prober{spec: spec, cmd: exec.CommandContext(ctx, bin, args...)}
	p.cmd.Stderr = &p.errs
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start prober: %w", err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		return nil, fmt.Errorf("prober %s -> %s did not get ready: %q %v: %s", spec.VM, spec.Target, line, err, strings.TrimSpace(p.errs.String()))
	}
	return p, nil
}

// Fire starts the probing.
func (p *Prober) Fire() error {
	p.fired = true
	_, err := io.WriteString(p.stdin, "go\n")
	return err
}

// Wait returns the probe's result (firing it if nobody did).
func (p *Prober) Wait() (*ProbeResult, error) {
	if !p.fired {
		_ = p.Fire()
	}
	data, rerr := io.ReadAll(p.out)
	werr := p.cmd.Wait()
	if werr != nil || rerr != nil {
		return nil, fmt.Errorf("prober %s -> %s: %w: %s", p.spec.VM, p.spec.Target, errors.Join(werr, rerr), strings.TrimSpace(p.errs.String()))
	}
	var res ProbeResult
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("prober %s -> %s: %w: %q", p.spec.VM, p.spec.Target, err, data)
	}
	return &res, nil
}

// attempt is one connection in flight: connecting, then (with Want)
// asking who answered.
type attempt struct {
	started   time.Time
	connected time.Time // zero while connecting
	line      []byte
}

// probeLoop runs in the VM's namespace: a non-blocking connect every
// spec.Every, and epoll for the handshakes and the answers. Connections
// are reset once done with (SO_LINGER 0): fewer packets per attempt, and
// no TIME_WAIT, so the probing loads the hosts less.
func probeLoop(ctx context.Context, spec ProbeSpec, n int, source func(int) netip.AddrPort, target netip.AddrPort) (*ProbeResult, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	defer unix.Close(ep)
	inflight := map[int]*attempt{}
	drop := func(fd int) {
		_ = unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil)
		delete(inflight, fd)
		abort(fd)
	}
	defer func() {
		for fd := range inflight {
			abort(fd)
		}
	}()
	start := time.Now()
	res := &ProbeResult{Started: start}
	next := start
	events := make([]unix.EpollEvent, 64)
	buf := make([]byte, 128)
	for {
		now := time.Now()
		if now.Sub(start) > spec.Max+spec.Timeout || ctx.Err() != nil {
			break
		}
		if !res.At.IsZero() && (len(spec.Want) == 0 || res.Server != "" && !askedBefore(inflight, res.At)) {
			break
		}
		if !now.Before(next) && res.Attempts < n && now.Sub(start) <= spec.Max {
			fd, err := dialNonBlocking(source(res.Attempts), target)
			res.Attempts++
			next = next.Add(spec.Every)
			if err == nil {
				if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}); err != nil {
					unix.Close(fd)
				} else {
					inflight[fd] = &attempt{started: now}
				}
			}
		}
		wait := time.Until(next)
		if wait < 0 || res.Attempts >= n {
			wait = time.Millisecond
		}
		k, err := unix.EpollWait(ep, events, max(1, int(wait/time.Millisecond)))
		if err != nil && err != unix.EINTR {
			return nil, fmt.Errorf("epoll_wait: %w", err)
		}
		at := time.Now()
		for _, ev := range events[:max(k, 0)] {
			fd := int(ev.Fd)
			a := inflight[fd]
			if a == nil {
				continue
			}
			if a.connected.IsZero() {
				if soerr, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); soerr != 0 {
					drop(fd)
					continue
				}
				a.connected = at
				if len(spec.Want) == 0 {
					if res.At.IsZero() {
						res.At = at
					}
					drop(fd)
					continue
				}
				// Ask who answered; the answer comes back on EPOLLIN while
				// the next attempts go on.
				if _, err := unix.Write(fd, probe); err != nil {
					drop(fd)
					continue
				}
				if err := unix.EpollCtl(ep, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
					drop(fd)
				}
				continue
			}
			k, err := unix.Read(fd, buf)
			if err == unix.EAGAIN {
				continue
			}
			if err != nil || k <= 0 {
				drop(fd)
				continue
			}
			a.line = append(a.line, buf[:k]...)
			i := slices.Index(a.line, '\n')
			if i < 0 && len(a.line) < 128 {
				continue
			}
			if i >= 0 && slices.Contains(spec.Want, string(a.line[:i])) && (res.At.IsZero() || a.connected.Before(res.At)) {
				res.At, res.Server = a.connected, string(a.line[:i])
			}
			drop(fd)
		}
		for fd, a := range inflight {
			since := a.started
			if !a.connected.IsZero() {
				since = a.connected
			}
			if at.Sub(since) > spec.Timeout {
				drop(fd)
			}
		}
	}
	return res, nil
}

// askedBefore says whether an attempt connected before t still waits for
// its answer (which, if wanted, is the earlier one).
func askedBefore(inflight map[int]*attempt, t time.Time) bool {
	for _, a := range inflight {
		if !a.connected.IsZero() && a.connected.Before(t) {
			return true
		}
	}
	return false
}

// abort closes a socket with a reset (SO_LINGER 0).
func abort(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}

// dialNonBlocking starts a TCP connection from src to dst.
func dialNonBlocking(src, dst netip.AddrPort) (int, error) {
	family := unix.AF_INET
	if dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sockaddr(src)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Connect(fd, sockaddr(dst)); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is6() {
		return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
}

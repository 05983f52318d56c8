package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
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
	// Want, when set, accepts only some answers (the server's name), e.g.
	// to wait for a new member.
	Want func(server string) bool
}

// ProbeResult is the first wanted connection: when it was established
// (the handshake done: the client can send) and who answered on it.
type ProbeResult struct {
	At       time.Time
	Server   string
	Attempts int
}

// Probe starts a new TCP connection to the target every spec.Every, each
// from a fresh source, until one is answered as wanted, and says when that
// connection was established: convergence measured to the millisecond. It
// fails after spec.Max.
func (tb *Testbed) Probe(ctx context.Context, spec ProbeSpec) (*ProbeResult, error) {
	if spec.Every == 0 {
		spec.Every = time.Millisecond
	}
	if spec.Timeout == 0 {
		spec.Timeout = 50 * time.Millisecond
	}
	if spec.Max == 0 {
		spec.Max = 500 * time.Millisecond
	}
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
	ctx, cancel := context.WithTimeout(ctx, spec.Max+spec.Timeout)
	defer cancel()
	ls := LoadSpec{Proto: "tcp", Timeout: spec.Timeout}
	attempts := make(chan int)
	var (
		mu       sync.Mutex
		result   *ProbeResult
		enterErr error
		wg       sync.WaitGroup
	)
	workers := int(spec.Timeout/spec.Every) + 2
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The thread ends with this goroutine, and the namespace with it.
			if err := enterNetns(vm.Namespace); err != nil {
				mu.Lock()
				enterErr = err
				mu.Unlock()
				cancel()
				return
			}
			for i := range attempts {
				var connected time.Time
				var name string
				var err error
				if spec.Want == nil {
					// Any connection will do: the handshake is the answer.
					name, err = "", connectOnly(ctx, ls, plan.pair(i), target)
					connected = time.Now()
				} else {
					name, err = exchangeAt(ctx, ls, plan.pair(i), target, &connected)
				}
				if err != nil || (spec.Want != nil && !spec.Want(name)) {
					continue
				}
				mu.Lock()
				if result == nil || connected.Before(result.At) {
					result = &ProbeResult{At: connected, Server: name}
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(spec.Every)
	sent := 0
loop:
	for i := 0; i < n; i++ {
		select {
		case attempts <- i:
			sent++
		case <-ctx.Done():
			break loop
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			break loop
		}
	}
	tick.Stop()
	close(attempts)
	wg.Wait()
	if enterErr != nil {
		return nil, enterErr
	}
	if result == nil {
		return nil, fmt.Errorf("%s -> %s: no wanted answer in %v (%d attempts): %w", spec.VM, spec.Target, spec.Max, sent, errors.New("probe timed out"))
	}
	result.Attempts = sent
	return result, nil
}

// connectOnly makes one TCP connection and closes it.
func connectOnly(ctx context.Context, spec LoadSpec, src, dst netip.AddrPort) error {
	d := net.Dialer{LocalAddr: addrFor("tcp", src), Timeout: spec.Timeout}
	c, err := d.DialContext(ctx, "tcp", dst.String())
	if err != nil {
		return err
	}
	return c.Close()
}

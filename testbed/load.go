package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// LoadSpec describes a run of the traffic tool.
type LoadSpec struct {
	// VM sends the traffic.
	VM string
	// Target is "IP:PORT" or "[IPv6]:PORT".
	Target string
	// Targets, when set, are used round-robin instead of Target (which
	// then only labels the result).
	Targets []string
	// Proto is "tcp" (default) or "udp".
	Proto string
	// Count is the number of new connections (TCP) or of datagrams from
	// distinct source ports (UDP). Default 100.
	Count int
	// Concurrency is how many run at once. Default 8.
	Concurrency int
	// Hold keeps each connection open this long after its first answer,
	// then asks again on it: the second answer must come from the same
	// server.
	Hold time.Duration
	// Timeout bounds each connect and each answer. Default 2s.
	Timeout time.Duration
	// Rate caps new connections per second; 0 means as fast as possible.
	Rate float64
	// Sources, when set, are the source (address, port) pairs to use, one
	// per exchange (Count is then their number), instead of fresh ones. Use
	// it only to replay the 5-tuples of an earlier run after flushing their
	// conntrack entries: OVS 3.1.0 aborts when a NATed 5-tuple comes back
	// while its entry is in TIME_WAIT.
	Sources []netip.AddrPort
	// Record keeps, in the result, which server answered each source.
	Record bool
	// Opened, when set, is called with the server's name as each
	// exchange gets its first answer (before Hold): with Hold, the
	// connections open at a time (called from the tool's goroutines).
	Opened func(server string)
}

// Exchange is one recorded connection or datagram exchange.
type Exchange struct {
	Source netip.AddrPort `json:"source"`
	// Server is who answered, or "" when the exchange failed.
	Server string `json:"server"`
}

// Failure kinds.
const (
	FailRefused     = "refused"       // TCP RST to the SYN, ICMP port unreachable for UDP
	FailTimeout     = "timeout"       // no connect or no answer in time
	FailReset       = "reset"         // connection reset after it was up
	FailClosed      = "closed"        // closed by the peer without an answer
	FailUnreachable = "unreachable"   // ICMP host or network unreachable
	FailChanged     = "changed"       // after Hold, a different server answered
	FailSource      = "source-in-use" // the local (address, port) could not be bound
	FailOther       = "other"
)

// LoadResult is what a run saw.
type LoadResult struct {
	VM     string `json:"vm"`
	Target string `json:"target"`
	Proto  string `json:"proto"`
	Count  int    `json:"count"`
	// Answers counts answers by the name of the server that gave them.
	Answers map[string]int `json:"answers"`
	// Failures counts failed connections by kind.
	Failures map[string]int `json:"failures"`
	// FailureExamples holds the first few error messages.
	FailureExamples []string `json:"failure_examples,omitempty"`
	ElapsedSeconds  float64  `json:"elapsed_s"`
	// RatePerSecond is new connections (or datagrams) per second.
	RatePerSecond float64 `json:"rate_per_s"`
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	// SourcesReused is set when the VM's source pairs ran out and pairs of
	// earlier runs were used again.
	SourcesReused bool `json:"sources_reused,omitempty"`
	// Exchanges is filled when LoadSpec.Record is set, in source order.
	Exchanges []Exchange `json:"exchanges,omitempty"`
}

// Answered is the number of successful exchanges.
func (r *LoadResult) Answered() int {
	n := 0
	for _, c := range r.Answers {
		n += c
	}
	return n
}

// Failed is the number of failed exchanges.
func (r *LoadResult) Failed() int {
	n := 0
	for _, c := range r.Failures {
		n += c
	}
	return n
}

func (s *LoadSpec) defaults() error {
	if s.Proto == "" {
		s.Proto = "tcp"
	}
	if s.Proto != "tcp" && s.Proto != "udp" {
		return fmt.Errorf("proto %q: want tcp or udp", s.Proto)
	}
	if len(s.Sources) > 0 {
		s.Count = len(s.Sources)
	}
	if s.Count == 0 {
		s.Count = 100
	}
	if s.Count < 0 {
		return fmt.Errorf("count %d: must be positive", s.Count)
	}
	if s.Concurrency == 0 {
		s.Concurrency = 8
	}
	if s.Concurrency < 0 {
		return fmt.Errorf("concurrency %d: must be positive", s.Concurrency)
	}
	s.Concurrency = min(s.Concurrency, s.Count)
	if s.Timeout == 0 {
		s.Timeout = 2 * time.Second
	}
	if s.Rate < 0 || s.Hold < 0 || s.Timeout < 0 {
		return errors.New("rate, hold and timeout must not be negative")
	}
	return nil
}

// Load runs the traffic tool from inside a VM: Count new connections (or
// datagrams), each from a source (address, port) pair never used before on
// this testbed. It returns an error wrapping ErrVSwitchdDied if any host's
// ovs-vswitchd died meanwhile.
func (tb *Testbed) Load(ctx context.Context, spec LoadSpec) (*LoadResult, error) {
	if err := spec.defaults(); err != nil {
		return nil, err
	}
	vm := tb.vms[spec.VM]
	if vm == nil {
		return nil, fmt.Errorf("no VM %q in testbed %s", spec.VM, tb.Name)
	}
	if spec.Target == "" && len(spec.Targets) > 0 {
		spec.Target = spec.Targets[0]
	}
	target, err := ParseTarget(spec.Target)
	if err != nil {
		return nil, err
	}
	targets := []netip.AddrPort{target}
	if len(spec.Targets) > 0 {
		targets = targets[:0]
		for _, t := range spec.Targets {
			ap, err := ParseTarget(t)
			if err != nil {
				return nil, err
			}
			if ap.Addr().Is6() != target.Addr().Is6() {
				return nil, fmt.Errorf("targets %v mix IPv4 and IPv6", spec.Targets)
			}
			targets = append(targets, ap)
		}
	}
	source := func(i int) netip.AddrPort { return spec.Sources[i] }
	wrapped := false
	if len(spec.Sources) == 0 {
		plan, err := vm.reserveSources(target.Addr().Is6(), spec.Count)
		if err != nil {
			return nil, err
		}
		source, wrapped = plan.pair, plan.wrapped
	}
	res := &LoadResult{
		VM: vm.Name, Target: target.String(), Proto: spec.Proto, Count: spec.Count,
		Answers: map[string]int{}, Failures: map[string]int{}, SourcesReused: wrapped,
	}
	if spec.Record {
		res.Exchanges = make([]Exchange, spec.Count)
	}
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, spec.Count)
		next      atomic.Int64
		wg        sync.WaitGroup
		enterErr  error
	)
	start := time.Now()
	for w := 0; w < spec.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The thread ends with this goroutine, and the namespace with it.
			if err := enterNetns(vm.Namespace); err != nil {
				mu.Lock()
				enterErr = err
				mu.Unlock()
				return
			}
			for {
				i := int(next.Add(1) - 1)
				if i >= spec.Count || ctx.Err() != nil {
					return
				}
				if spec.Rate > 0 {
					at := start.Add(time.Duration(float64(i) / spec.Rate * float64(time.Second)))
					if d := time.Until(at); d > 0 {
						time.Sleep(d)
					}
				}
				t0 := time.Now()
				src := source(i)
				name, err := exchange(ctx, spec, src, targets[i%len(targets)])
				lat := time.Since(t0)
				mu.Lock()
				if spec.Record {
					res.Exchanges[i] = Exchange{Source: src, Server: name}
				}
				if err != nil {
					kind := classify(err)
					res.Failures[kind]++
					if len(res.FailureExamples) < 5 {
						res.FailureExamples = append(res.FailureExamples, err.Error())
					}
				} else {
					res.Answers[name]++
					latencies = append(latencies, lat-spec.Hold)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if enterErr != nil {
		return nil, enterErr
	}
	res.ElapsedSeconds = elapsed.Seconds()
	res.RatePerSecond = float64(spec.Count) / elapsed.Seconds()
	res.LatencyP50Ms, res.LatencyP99Ms = percentileMs(latencies, 0.50), percentileMs(latencies, 0.99)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, tb.CheckVSwitchd()
}

// CheckVSwitchd returns an error, with the tail of its log, for each host
// whose ovs-vswitchd died without the testbed stopping it.
func (tb *Testbed) CheckVSwitchd() error {
	var errs []error
	for _, h := range tb.hosts {
		errs = append(errs, h.checkVSwitchd())
	}
	return errors.Join(errs...)
}

func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(p * float64(len(d)-1))
	return float64(d[i].Microseconds()) / 1000
}

// probe is the request line; any line gets the server's name back.
var probe = []byte("who\n")

// exchange makes one connection (or datagram exchange) and returns the name
// of the server that answered.
func exchange(ctx context.Context, spec LoadSpec, src, dst netip.AddrPort) (string, error) {
	d := net.Dialer{
		LocalAddr: addrFor(spec.Proto, src),
		Timeout:   spec.Timeout,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			})
			return errors.Join(err, serr)
		},
	}
	c, err := d.DialContext(ctx, spec.Proto, dst.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	ask := func() (string, error) {
		_ = c.SetDeadline(time.Now().Add(spec.Timeout))
		if _, err := c.Write(probe); err != nil {
			return "", err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(line), nil
	}
	name, err := ask()
	if err == nil && spec.Opened != nil {
		spec.Opened(name)
	}
	if err != nil || spec.Hold == 0 {
		return name, err
	}
	select {
	case <-time.After(spec.Hold):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	again, err := ask()
	if err != nil {
		return "", fmt.Errorf("after holding %s: %w", spec.Hold, err)
	}
	if again != name {
		return "", &changedError{first: name, then: again}
	}
	return name, nil
}

type changedError struct{ first, then string }

func (e *changedError) Error() string {
	return fmt.Sprintf("connection first answered by %s, then by %s", e.first, e.then)
}

func addrFor(proto string, ap netip.AddrPort) net.Addr {
	if proto == "udp" {
		return net.UDPAddrFromAddrPort(ap)
	}
	return net.TCPAddrFromAddrPort(ap)
}

func classify(err error) string {
	var changed *changedError
	var nerr net.Error
	switch {
	case errors.As(err, &changed):
		return FailChanged
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return FailReset
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return FailTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return FailUnreachable
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return FailClosed
	case errors.Is(err, syscall.EADDRINUSE), errors.Is(err, syscall.EADDRNOTAVAIL):
		return FailSource
	}
	return FailOther
}

// WriteTable prints the result for people.
func (r *LoadResult) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%s -> %s/%s: %d %s, %d answered, %d failed\n", r.VM, r.Target, r.Proto, r.Count, unit(r.Proto), r.Answered(), r.Failed())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tANSWERS\tSHARE")
	for _, name := range sortedKeys(r.Answers) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\n", name, r.Answers[name], 100*float64(r.Answers[name])/float64(r.Count))
	}
	for _, kind := range sortedKeys(r.Failures) {
		fmt.Fprintf(tw, "(failed: %s)\t%d\t%.1f%%\n", kind, r.Failures[kind], 100*float64(r.Failures[kind])/float64(r.Count))
	}
	tw.Flush()
	fmt.Fprintf(w, "rate %.0f %s/s over %.2f s; latency p50 %.2f ms, p99 %.2f ms\n", r.RatePerSecond, unit(r.Proto), r.ElapsedSeconds, r.LatencyP50Ms, r.LatencyP99Ms)
	for _, e := range r.FailureExamples {
		fmt.Fprintf(w, "  e.g. %s\n", e)
	}
	if r.SourcesReused {
		fmt.Fprintln(w, "note: this VM's source (address, port) pairs ran out and were reused; add extra_ips to the VM")
	}
}

func unit(proto string) string {
	if proto == "udp" {
		return "datagrams"
	}
	return "connections"
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

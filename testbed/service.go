package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ServeConfig is what Serve runs: a VM's name, its services and options.
type ServeConfig struct {
	// Name is the VM's name: every answer carries it.
	Name     string
	Services []Service
	// HTTPStatusFile, when set, holds the status code HTTP requests are
	// answered with (200 while it is missing or empty): a test makes a
	// member's server answer 500 by writing it (Testbed.SetHTTPStatus).
	HTTPStatusFile string
	Log            *slog.Logger
	// Ready is called once every listener is bound.
	Ready func()
}

// Serve runs a VM's built-in servers until ctx ends. Every TCP line and
// every UDP datagram is answered with the VM's name and a newline; a TCP
// connection that starts with an HTTP request gets an HTTP response whose
// body is the name (status 200, or the one in HTTPStatusFile), so curl
// works too; a TCP service with a delay waits that long before each
// answer. UDP answers leave from the address the datagram was sent to (a
// VIP on lo in DSR mode, say).
func Serve(ctx context.Context, cfg ServeConfig) error {
	name, services, log := cfg.Name, cfg.Services, cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var closers []io.Closer
	var wg sync.WaitGroup
	defer func() {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	}()
	reply := []byte(name + "\n")
	for _, s := range services {
		switch s.Proto {
		case "tcp", "proxy":
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d", s.Port))
			if err != nil {
				return fmt.Errorf("listen %s: %w", s, err)
			}
			closers = append(closers, ln)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.Proto == "proxy" {
					serveProxy(ln, name, s.Upstream, log)
				} else {
					serveTCP(ln, reply, s.Delay, cfg.HTTPStatusFile, log)
				}
			}()
		case "udp":
			c4, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", s.Port))
			if err != nil {
				return fmt.Errorf("listen %s (IPv4): %w", s, err)
			}
			closers = append(closers, c4)
			p4 := ipv4.NewPacketConn(c4)
			if err := p4.SetControlMessage(ipv4.FlagDst, true); err != nil {
				return fmt.Errorf("%s: IP_PKTINFO: %w", s, err)
			}
			wg.Add(1)
			go func() { defer wg.Done(); serveUDP4(p4, reply, log) }()
			c6, err := net.ListenPacket("udp6", fmt.Sprintf("[::]:%d", s.Port))
			if err != nil {
				// A VM without IPv6 still serves IPv4.
				log.Warn("no IPv6 UDP listener", "service", s, "err", err)
				continue
			}
			closers = append(closers, c6)
			p6 := ipv6.NewPacketConn(c6)
			if err := p6.SetControlMessage(ipv6.FlagDst, true); err != nil {
				return fmt.Errorf("%s: IPV6_PKTINFO: %w", s, err)
			}
			wg.Add(1)
			go func() { defer wg.Done(); serveUDP6(p6, reply, log) }()
		}
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}
	<-ctx.Done()
	return nil
}

// serveTCP answers every line (or HTTP request) of every connection with
// reply, each after delay.
func serveTCP(ln net.Listener, reply []byte, delay time.Duration, statusFile string, log *slog.Logger) {
	accept(ln, log, func(c net.Conn) { handleTCP(c, reply, delay, statusFile) })
}

// httpStatus is the status HTTP requests get: the code in file, else 200.
func httpStatus(file string) int {
	if file == "" {
		return http.StatusOK
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return http.StatusOK
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || code < 100 || code > 999 {
		return http.StatusOK
	}
	return code
}

// accept hands each connection to handle, in its own goroutine, until the
// listener closes.
func accept(ln net.Listener, log *slog.Logger, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Error("accept", "err", err)
			}
			return
		}
		go handle(c)
	}
}

// serveProxy relays each line of each connection to upstream, over one
// upstream connection per connection, and answers "NAME>ANSWER".
func serveProxy(ln net.Listener, name string, upstream netip.AddrPort, log *slog.Logger) {
	accept(ln, log, func(c net.Conn) { relay(c, name, upstream) })
}

// relay serves one proxy connection.
func relay(c net.Conn, name string, upstream netip.AddrPort) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", upstream.String(), 2*time.Second)
	if err != nil {
		fmt.Fprintf(c, "%s>error: %v\n", name, err)
		return
	}
	defer up.Close()
	down, upr := bufio.NewReader(c), bufio.NewReader(up)
	for {
		_ = c.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := down.ReadString('\n')
		if err != nil {
			return
		}
		_ = up.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(up, line); err != nil {
			return
		}
		answer, err := upr.ReadString('\n')
		if err != nil {
			fmt.Fprintf(c, "%s>error: %v\n", name, err)
			return
		}
		if _, err := fmt.Fprintf(c, "%s>%s", name, answer); err != nil {
			return
		}
	}
}

// idleTimeout ends TCP connections nobody speaks on for this long.
const idleTimeout = 10 * time.Minute

func handleTCP(c net.Conn, reply []byte, delay time.Duration, statusFile string) {
	defer c.Close()
	r := bufio.NewReader(c)
	first := true
	for {
		_ = c.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		if first && isHTTPRequest(line) {
			for {
				h, err := r.ReadString('\n')
				if err != nil || strings.TrimSpace(h) == "" {
					break
				}
			}
			code := httpStatus(statusFile)
			fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", code, http.StatusText(code), len(reply), reply)
			return
		}
		first = false
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

func isHTTPRequest(line string) bool {
	method, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.Contains(rest, " HTTP/1.") {
		return false
	}
	switch method {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH":
		return true
	}
	return false
}

func serveUDP4(p *ipv4.PacketConn, reply []byte, log *slog.Logger) {
	buf := make([]byte, 65536)
	for {
		_, cm, src, err := p.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Error("udp read", "err", err)
			}
			return
		}
		var out *ipv4.ControlMessage
		if cm != nil && cm.Dst != nil && !cm.Dst.IsMulticast() {
			out = &ipv4.ControlMessage{Src: cm.Dst}
		}
		_, _ = p.WriteTo(reply, out, src)
	}
}

func serveUDP6(p *ipv6.PacketConn, reply []byte, log *slog.Logger) {
	buf := make([]byte, 65536)
	for {
		_, cm, src, err := p.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Error("udp read", "err", err)
			}
			return
		}
		var out *ipv6.ControlMessage
		if cm != nil && cm.Dst != nil && !cm.Dst.IsMulticast() {
			out = &ipv6.ControlMessage{Src: cm.Dst}
		}
		_, _ = p.WriteTo(reply, out, src)
	}
}

// ParseTarget parses "IP:PORT" or "[IPv6]:PORT".
func ParseTarget(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("target %q: want IP:PORT or [IPv6]:PORT", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("target %q: port must be 1..65535", s)
	}
	return ap, nil
}

package testbed

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freePort returns a TCP port free on loopback just now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// TestServeTCPDelay: a server with a delay answers every line that long
// after it came; one without answers at once.
func TestServeTCPDelay(t *testing.T) {
	fast, slow := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeConfig{Name: "s9", Services: []Service{{Proto: "tcp", Port: fast}, {Proto: "tcp", Port: slow, Delay: 300 * time.Millisecond}},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func() { close(ready) }})
	}()
	defer func() { cancel(); require.NoError(t, <-done) }()
	<-ready

	ask := func(port uint16) time.Duration {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		require.NoError(t, err)
		defer c.Close()
		r := bufio.NewReader(c)
		var took time.Duration
		for range 2 { // each answer waits
			start := time.Now()
			_, err = io.WriteString(c, "who\n")
			require.NoError(t, err)
			line, err := r.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "s9\n", line)
			took = time.Since(start)
		}
		return took
	}
	assert.Less(t, ask(fast), 250*time.Millisecond)
	got := ask(slow)
	assert.GreaterOrEqual(t, got, 300*time.Millisecond)
	assert.Less(t, got, 5*time.Second)
}

// TestServeHTTPStatus: HTTP requests get 200 until the status file says
// otherwise, and again once it is gone.
func TestServeHTTPStatus(t *testing.T) {
	port := freePort(t)
	file := filepath.Join(t.TempDir(), "http-status")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeConfig{Name: "s9", Services: []Service{{Proto: "tcp", Port: port}}, HTTPStatusFile: file, Ready: func() { close(ready) }})
	}()
	defer func() { cancel(); require.NoError(t, <-done) }()
	<-ready
	get := func() int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "s9\n", string(body))
		return resp.StatusCode
	}
	assert.Equal(t, 200, get())
	require.NoError(t, os.WriteFile(file, []byte("500\n"), 0o644))
	assert.Equal(t, 500, get())
	require.NoError(t, os.WriteFile(file, []byte("not a code"), 0o644))
	assert.Equal(t, 200, get(), "an unreadable status is 200")
	require.NoError(t, os.Remove(file))
	assert.Equal(t, 200, get())
}

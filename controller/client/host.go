package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
)

// ErrNotRegistered is a heartbeat for a host the controller does not know
// (it lost it, or an admin deleted it): register again.
var ErrNotRegistered = errors.New("host not registered")

// RegisterHost registers a host, or updates its registration
// (PUT /v1/hosts/{name}): what an agent does for its host.
func (c *Client) RegisterHost(ctx context.Context, host string, reg wire.HostRegistration) (*Answer[wire.Host], error) {
	return call[wire.Host](ctx, c, request{method: http.MethodPut, url: c.url("v1", "hosts", host), body: reg})
}

// Heartbeat reports that the host's agent runs and which groups index it
// has installed (POST /v1/hosts/{name}/heartbeat). A host the controller
// does not know is ErrNotRegistered.
func (c *Client) Heartbeat(ctx context.Context, host string, applied uint64) error {
	_, _, err := c.do(ctx, request{method: http.MethodPost, url: c.url("v1", "hosts", host, "heartbeat"), body: wire.Heartbeat{AppliedIndex: applied}}, nil)
	if IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%w: %v", ErrNotRegistered, err)
	}
	return err
}

// ReportStats sends a host's members' counters (POST
// /v1/hosts/{host}/stats); the answer says whether the controller wants
// all of them next time.
func (c *Client) ReportStats(ctx context.Context, host string, r wire.StatsReport) (wire.StatsAnswer, error) {
	var a wire.StatsAnswer
	_, _, err := c.do(ctx, request{method: http.MethodPost, url: c.url("v1", "hosts", host, "stats"), body: r}, &a)
	if IsStatus(err, http.StatusNotFound) {
		return a, fmt.Errorf("%w: %v", ErrNotRegistered, err)
	}
	return a, err
}

// Watch asks for the host's groups that changed after index, waiting up to
// wait for a change (GET /v1/watch/groups, a long poll).
func (c *Client) Watch(ctx context.Context, host string, index uint64, wait time.Duration) (*wire.GroupChanges, error) {
	q := url.Values{"host": {host}, "index": {strconv.FormatUint(index, 10)}, "wait": {wait.String()}}
	a, err := call[wire.GroupChanges](ctx, c, request{method: http.MethodGet, url: c.url("v1", "watch", "groups"), query: q, wait: wait})
	if err != nil {
		return nil, err
	}
	return &a.Doc, nil
}

// ErrNoStream is a controller without the watch stream (an older one),
// or a stream whose first line never came (a proxy that holds responses
// until they end): use Watch.
var ErrNoStream = errors.New("no watch stream")

// firstLine bounds the wait for a stream's first line, which the
// controller sends at once.
const firstLine = 10 * time.Second

// Stream follows the host's groups from index through the watch stream
// (GET /v1/watch/groups/stream), calling each with every answer in order,
// until ctx ends, the stream ends or breaks (no line for idle: the
// controller sends one every wire.StreamKeepAlive), or each fails; it
// returns why (each's error as it is). A stream without a first line
// within 10 s (or idle, when shorter) is ErrNoStream. Options.Timeout
// does not bound it.
func (c *Client) Stream(ctx context.Context, host string, index uint64, idle time.Duration, each func(c *wire.GroupChanges, more bool) error) error {
	q := url.Values{"host": {host}, "index": {strconv.FormatUint(index, 10)}}
	return streamLines(ctx, c, c.url("v1", "watch", "groups", "stream")+"?"+q.Encode(), "watch stream", idle, each)
}

// WatchHealth follows the host's health watch (GET /v1/watch/health): its
// probe targets and the members' health, a line per change, calling each
// with every line in order; as Stream, until ctx ends, the stream breaks
// (no line for idle) or each fails.
func (c *Client) WatchHealth(ctx context.Context, host string, idle time.Duration, each func(l *wire.HealthLine, more bool) error) error {
	q := url.Values{"host": {host}}
	return streamLines(ctx, c, c.url("v1", "watch", "health")+"?"+q.Encode(), "health watch", idle, each)
}

// ReportHealth sends a prober's results (POST /v1/hosts/{host}/health).
func (c *Client) ReportHealth(ctx context.Context, host string, r wire.HealthReport) error {
	_, _, err := c.do(ctx, request{method: http.MethodPost, url: c.url("v1", "hosts", host, "health"), body: r}, nil)
	if IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%w: %v", ErrNotRegistered, err)
	}
	return err
}

// streamLines reads an ndjson stream of T at u (what for: its name in
// errors) and calls each with every line.
func streamLines[T any](ctx context.Context, c *Client, u, what string, idle time.Duration, each func(*T, bool) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	req.Header.Set("User-Agent", c.opts.Program)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(http.MethodGet, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("controller at %s: %w", c.Server(), ErrNoStream)
	case resp.StatusCode >= 300:
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return c.statusError(resp, data)
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson"):
		return fmt.Errorf("controller at %s: the %s is %q, not application/x-ndjson", c.Server(), what, resp.Header.Get("Content-Type"))
	}
	silent := errors.New("silent")
	timer := time.AfterFunc(min(idle, firstLine), func() { cancel(silent) })
	defer timer.Stop()
	br := bufio.NewReaderSize(resp.Body, 256<<10)
	dec := json.NewDecoder(br)
	for lines := 0; ; lines++ {
		var ch T
		if err := dec.Decode(&ch); err != nil {
			switch {
			case lines == 0 && errors.Is(context.Cause(ctx), silent):
				return fmt.Errorf("controller at %s: no line on the %s in %v (a proxy holding it?): %w", c.Server(), what, min(idle, firstLine), ErrNoStream)
			case errors.Is(context.Cause(ctx), silent):
				return fmt.Errorf("controller at %s: the %s was silent for %v", c.Server(), what, idle)
			case errors.Is(err, io.EOF):
				return fmt.Errorf("controller at %s: the %s ended", c.Server(), what)
			}
			return fmt.Errorf("controller at %s: %s: %w", c.Server(), what, err)
		}
		timer.Reset(idle)
		// More lines already here: a reader that fell behind takes them
		// together (the follower delivers once for all of them).
		more := br.Buffered() > 0 || hasData(dec.Buffered())
		if err := each(&ch, more); err != nil {
			return err
		}
	}
}

// hasData reports whether r (a decoder's buffered bytes) holds anything
// but white space.
func hasData(r io.Reader) bool {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = bufio.NewReader(r)
	}
	for {
		c, err := br.ReadByte()
		if err != nil {
			return false
		}
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			return true
		}
	}
}

// HostClient is the view of a Client for one host: the calls an agent
// makes for its host, the host given once. Follower uses it.
type HostClient struct {
	c    *Client
	host string
}

// SentBytes is how many bytes of request bodies the client sent so far.
func (h *HostClient) SentBytes() int64 { return h.c.SentBytes() }

// ForHost returns the view of c for host.
func (c *Client) ForHost(host string) (*HostClient, error) {
	if host == "" {
		return nil, errors.New("host id: required")
	}
	return &HostClient{c: c, host: host}, nil
}

// Host is the host this client speaks for.
func (h *HostClient) Host() string { return h.host }

// Server is the controller's base URL.
func (h *HostClient) Server() string { return h.c.Server() }

// Client is the whole API's client the view is of.
func (h *HostClient) Client() *Client { return h.c }

// Register registers the host, or updates its registration.
func (h *HostClient) Register(ctx context.Context, reg wire.HostRegistration) error {
	_, err := h.c.RegisterHost(ctx, h.host, reg)
	return err
}

// Heartbeat reports that the agent runs and which groups index it has
// installed; ErrNotRegistered when the controller does not know the host.
func (h *HostClient) Heartbeat(ctx context.Context, applied uint64) error {
	return h.c.Heartbeat(ctx, h.host, applied)
}

// ReportStats is Client.ReportStats for the host.
func (h *HostClient) ReportStats(ctx context.Context, r wire.StatsReport) (wire.StatsAnswer, error) {
	return h.c.ReportStats(ctx, h.host, r)
}

// Watch is Client.Watch for the host.
func (h *HostClient) Watch(ctx context.Context, index uint64, wait time.Duration) (*wire.GroupChanges, error) {
	return h.c.Watch(ctx, h.host, index, wait)
}

// Stream is Client.Stream for the host.
func (h *HostClient) Stream(ctx context.Context, index uint64, idle time.Duration, each func(c *wire.GroupChanges, more bool) error) error {
	return h.c.Stream(ctx, h.host, index, idle, each)
}

// WatchHealth is Client.WatchHealth for the host.
func (h *HostClient) WatchHealth(ctx context.Context, idle time.Duration, each func(l *wire.HealthLine, more bool) error) error {
	return h.c.WatchHealth(ctx, h.host, idle, each)
}

// ReportHealth is Client.ReportHealth for the host.
func (h *HostClient) ReportHealth(ctx context.Context, r wire.HealthReport) error {
	return h.c.ReportHealth(ctx, h.host, r)
}

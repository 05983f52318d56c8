// Package client is an agent's side of the controller's API: it registers
// the host, reports heartbeats, and follows the groups for the host with
// the watch (GET /v1/watch/groups/stream, a line per change; or, from a
// controller without it, GET /v1/watch/groups, a long poll), keeping the
// whole set from the changes the watch sends.
//
// It owns: HTTP to the controller. It must not touch: any switch (the
// agent applies what it delivers).
package client

import (
	"bytes"
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

// Client talks to one controller for one host.
type Client struct {
	base *url.URL
	host string
	http *http.Client
}

// New makes a client of the controller at server ("http://h:8470", or
// "h:8470") for host.
func New(server, host string, hc *http.Client) (*Client, error) {
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("controller: %q is not an http(s) URL or host:port", server)
	}
	if host == "" {
		return nil, errors.New("host_id: required")
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, host: host, http: hc}, nil
}

// Host is the host this client speaks for.
func (c *Client) Host() string { return c.host }

// Server is the controller's base URL.
func (c *Client) Server() string { return c.base.String() }

// Register registers the host, or updates its registration.
func (c *Client) Register(ctx context.Context, reg wire.HostRegistration) error {
	return c.do(ctx, http.MethodPut, "/v1/hosts/"+url.PathEscape(c.host), reg, nil)
}

// Heartbeat reports that the agent runs and which groups index it has
// installed.
func (c *Client) Heartbeat(ctx context.Context, applied uint64) error {
	err := c.do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(c.host)+"/heartbeat", wire.Heartbeat{AppliedIndex: applied}, nil)
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return fmt.Errorf("%w: %v", ErrNotRegistered, err)
	}
	return err
}

// Watch asks for the host's groups that changed after index, waiting up to
// wait for a change.
func (c *Client) Watch(ctx context.Context, index uint64, wait time.Duration) (*wire.GroupChanges, error) {
	q := url.Values{"host": {c.host}, "index": {strconv.FormatUint(index, 10)}, "wait": {wait.String()}}
	var out wire.GroupChanges
	if err := c.do(ctx, http.MethodGet, "/v1/watch/groups?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
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
// within 10 s (or idle, when shorter) is ErrNoStream.
func (c *Client) Stream(ctx context.Context, index uint64, idle time.Duration, each func(*wire.GroupChanges) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	q := url.Values{"host": {c.host}, "index": {strconv.FormatUint(index, 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/v1/watch/groups/stream?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("controller at %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("controller at %s: %w", c.base.Host, ErrNoStream)
	case resp.StatusCode >= 300:
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		se := &StatusError{Status: resp.StatusCode}
		if json.Unmarshal(data, &se.Body) != nil || se.Body.Message == "" {
			se.Body.Message = strings.TrimSpace(string(data))
		}
		return se
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson"):
		return fmt.Errorf("controller at %s: the watch stream is %q, not application/x-ndjson", c.base.Host, resp.Header.Get("Content-Type"))
	}
	silent := errors.New("silent")
	timer := time.AfterFunc(min(idle, firstLine), func() { cancel(silent) })
	defer timer.Stop()
	dec := json.NewDecoder(resp.Body)
	for lines := 0; ; lines++ {
		var ch wire.GroupChanges
		if err := dec.Decode(&ch); err != nil {
			switch {
			case lines == 0 && errors.Is(context.Cause(ctx), silent):
				return fmt.Errorf("controller at %s: no line on the watch stream in %v (a proxy holding it?): %w", c.base.Host, min(idle, firstLine), ErrNoStream)
			case errors.Is(context.Cause(ctx), silent):
				return fmt.Errorf("controller at %s: the watch stream was silent for %v", c.base.Host, idle)
			case errors.Is(err, io.EOF):
				return fmt.Errorf("controller at %s: the watch stream ended", c.base.Host)
			}
			return fmt.Errorf("controller at %s: watch stream: %w", c.base.Host, err)
		}
		timer.Reset(idle)
		if err := each(&ch); err != nil {
			return err
		}
	}
}

// StatusError is an error answer of the controller.
type StatusError struct {
	Status int
	Body   wire.Error
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("controller answered %d: %s", e.Status, e.Body.Message)
	for _, f := range e.Body.Fields {
		msg += fmt.Sprintf("; %s: %s", f.Path, f.Message)
	}
	return msg
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("controller at %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return fmt.Errorf("controller at %s: %s %s: %w", c.base.Host, method, path, err)
	}
	if resp.StatusCode >= 300 {
		se := &StatusError{Status: resp.StatusCode}
		if json.Unmarshal(data, &se.Body) != nil || se.Body.Message == "" {
			se.Body.Message = strings.TrimSpace(string(data))
		}
		return se
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("controller at %s: %s %s: %w", c.base.Host, method, path, err)
		}
	}
	return nil
}

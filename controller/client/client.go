// Package client is the Go client of the controller's REST API
// (docs/api.md), the one dlbctl and the agents use: typed calls for every
// route (groups, their members, hosts; an agent's registration, heartbeat
// and watch), and Follower, which keeps a host's group set from the
// changes the watch sends.
//
// A Client talks to one controller. The calls an agent makes for its host
// take the host as an argument; HostClient (Client.ForHost) is the view
// of one host that the agent and Follower use. Error answers are
// *APIError (status, message, field errors); a request that got no answer
// fails with a message that names the controller's address (and, when the
// connection is refused, says how to start it).
//
// It owns: HTTP to the controller. It must not touch: any switch, or
// OpenFlow (it imports lb's group model and controller/wire, nothing of
// the pipeline; the agent applies what it delivers).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
)

// maxBody bounds what the client reads of one answer (10,000 groups of
// 10 members are a few MB).
const maxBody = 1 << 30

// APIError is an error answer of the controller: its HTTP status, its
// message and the fields at fault. An error answer that is not the API's
// (a proxy's, say) is one too, its message saying what came.
type APIError struct {
	Status  int
	Message string
	Fields  []wire.FieldError
}

// Error is the message, then a line per field at fault.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f.Path, f.Message)
	}
	return b.String()
}

// IsStatus tells whether err is an APIError with the given HTTP status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// Options configure a Client. The zero value is ready to use.
type Options struct {
	// HTTP sends the requests (default: a new http.Client). Its own
	// Timeout, if any, bounds the watch too: leave it 0 for an agent.
	HTTP *http.Client
	// Timeout bounds each request but the watch, a Blocking read's wait
	// added (0: none).
	Timeout time.Duration
	// Log receives a debug line per request (default: none).
	Log *slog.Logger
	// Program is who sends the requests: the User-Agent, and who is to be
	// pointed at the right controller in the message of a refused
	// connection (default "dlb-client").
	Program string
	// AddressFrom says where Program takes the controller's address from
	// ("--server or DLB_SERVER"), for the messages of a refused
	// connection and of a host that does not resolve.
	AddressFrom string
	// TimeoutFrom names the setting of Timeout ("--timeout"), for the
	// message of a request that got no answer in time.
	TimeoutFrom string
}

// Client is a client of one controller's REST API. It is safe for
// concurrent use.
type Client struct {
	base *url.URL
	http *http.Client
	opts Options
	log  *slog.Logger
	sent atomic.Int64 // request body bytes
}

// SentBytes is how many bytes of request bodies the client sent so far.
func (c *Client) SentBytes() int64 { return c.sent.Load() }

// ParseServer turns a controller address into the API's base URL:
// "host:port" is taken as http://host:port, and a trailing slash is
// dropped ("http://h:8470/" is "http://h:8470"; a path, as behind a
// proxy, is kept).
func ParseServer(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty address")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("a query or fragment has no place in the address")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// New returns a client of the controller at server (a URL, or
// host:port; see ParseServer).
func New(server string, opts Options) (*Client, error) {
	base, err := ParseServer(server)
	if err != nil {
		if opts.AddressFrom != "" {
			return nil, fmt.Errorf("controller address %q (%s): %w", server, opts.AddressFrom, err)
		}
		return nil, fmt.Errorf("controller address %q: %w", server, err)
	}
	if opts.Program == "" {
		opts.Program = "dlb-client"
	}
	hc := opts.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: base, http: hc, opts: opts, log: log}, nil
}

// Server is the controller's base URL, without a trailing slash.
func (c *Client) Server() string { return c.base.String() }

// url builds the address of an API path from its segments, each escaped:
// url("v1", "groups", name) is Server()+"/v1/groups/"+name.
func (c *Client) url(segments ...string) string {
	esc := make([]string, len(segments))
	for i, s := range segments {
		esc[i] = url.PathEscape(s)
	}
	u := *c.base
	u.RawPath = c.base.EscapedPath() + "/" + strings.Join(esc, "/")
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		p = u.RawPath // cannot happen: every segment was escaped above
	}
	u.Path = p
	return u.String()
}

// request is one API call.
type request struct {
	method      string
	url         string
	query       url.Values
	body        any
	contentType string
	ifMatch     *uint64
	// wait is a Blocking read's wait, added to the timeout.
	wait time.Duration
}

// Answer is a document the controller answered with: decoded (Doc), as
// it was sent (Raw: dlbctl prints it as it is), and the index the answer
// is at (the X-Dlb-Index header: where a Blocking read waits from next; 0
// when the answer has none).
type Answer[T any] struct {
	Doc   T
	Raw   []byte
	Index uint64
}

// call sends req and decodes its answer's document.
func call[T any](ctx context.Context, c *Client, req request) (*Answer[T], error) {
	a := &Answer[T]{}
	raw, hdr, err := c.do(ctx, req, &a.Doc)
	if err != nil {
		return nil, err
	}
	a.Raw = raw
	a.Index, _ = strconv.ParseUint(hdr.Get("X-Dlb-Index"), 10, 64)
	return a, nil
}

// do sends req and returns the answer's body and headers when its status
// is 2xx; out, when not nil, receives the decoded JSON.
func (c *Client) do(ctx context.Context, req request, out any) ([]byte, http.Header, error) {
	var body io.Reader
	if req.body != nil {
		data, err := json.Marshal(req.body)
		if err != nil {
			return nil, nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(data)
		c.sent.Add(int64(len(data)))
	}
	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout+req.wait)
		defer cancel()
	}
	target := req.url
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, target, body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", req.method, target, err)
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", c.opts.Program)
	if req.body != nil {
		ct := req.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if req.ifMatch != nil {
		hr.Header.Set("If-Match", strconv.Quote(strconv.FormatUint(*req.ifMatch, 10)))
	}
	start := time.Now()
	resp, err := c.http.Do(hr)
	if err != nil {
		c.log.Debug("request failed", "method", req.method, "url", target, "err", err)
		return nil, nil, c.transportError(req.method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.log.Debug("request", "method", req.method, "url", target, "status", resp.StatusCode,
		"bytes", len(data), "duration", time.Since(start).Round(time.Microsecond))
	if err != nil {
		return nil, nil, c.transportError(req.method, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, nil, c.statusError(resp, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return data, resp.Header, nil
	}
	if !json.Valid(data) {
		return nil, nil, fmt.Errorf("the server at %s answered %s %s with HTTP %d but not JSON (Content-Type %q): %s; is it dlb-controller?",
			c.Server(), req.method, hr.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), snippet(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, nil, fmt.Errorf("decode the answer to %s %s: %w", req.method, hr.URL.Path, err)
	}
	return data, resp.Header, nil
}

// transportError explains a request that got no answer.
func (c *Client) transportError(method string, err error) error {
	addr := c.Server()
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		msg := fmt.Sprintf("cannot reach the controller at %s (connection refused): start it with 'dlb-controller --listen %s --data-dir /var/lib/dlb-controller'",
			addr, listenAddr(c.base))
		if c.opts.AddressFrom != "" {
			msg += fmt.Sprintf(", or point %s at it with %s", c.opts.Program, c.opts.AddressFrom)
		}
		return errors.New(msg)
	case errors.As(err, &dnsErr):
		check := "the controller address"
		if c.opts.AddressFrom != "" {
			check = c.opts.AddressFrom
		}
		return fmt.Errorf("cannot reach the controller at %s: cannot resolve host %q: %s; check %s", addr, dnsErr.Name, dnsErr.Err, check)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s %s: interrupted", method, addr)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		msg := fmt.Sprintf("the controller at %s did not answer %s in time", addr, method)
		if c.opts.Timeout > 0 {
			msg = fmt.Sprintf("the controller at %s did not answer %s within %s", addr, method, c.opts.Timeout)
		}
		if c.opts.TimeoutFrom != "" {
			msg += fmt.Sprintf(" (set a longer %s if it is busy)", c.opts.TimeoutFrom)
		}
		return errors.New(msg)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the controller at %s closed the connection without answering %s (is it an HTTP server? is it https?): %w", addr, method, err)
	default:
		return fmt.Errorf("cannot reach the controller at %s: %w", addr, err)
	}
}

// listenAddr is the --listen argument that would make the controller
// answer at u.
func listenAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// statusError turns a 4xx or 5xx answer into an APIError, explaining an
// answer that is not the API's.
func (c *Client) statusError(resp *http.Response, data []byte) error {
	var eb wire.Error
	if json.Unmarshal(data, &eb) != nil || eb.Message == "" {
		return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("the server at %s answered %s %s with HTTP %s and no JSON error (Content-Type %q): %s",
			c.Server(), resp.Request.Method, resp.Request.URL.Path, resp.Status, resp.Header.Get("Content-Type"), snippet(data))}
	}
	return &APIError{Status: resp.StatusCode, Message: eb.Message, Fields: eb.Fields}
}

// snippet shows the start of a body in an error message.
func snippet(data []byte) string {
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "(empty body)"
	}
	const n = 200
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strconv.Quote(s)
}

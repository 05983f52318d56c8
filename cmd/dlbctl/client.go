package main

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
	"syscall"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// DefaultServer is the controller's address when neither --server nor
// DLB_SERVER says otherwise.
const DefaultServer = "http://127.0.0.1:8470"

// maxBody bounds what the client reads of one answer (10,000 groups of
// 10 members are a few MB).
const maxBody = 256 << 20

// The API's documents (controller/wire).
type (
	Group       = wire.Group
	GroupList   = wire.GroupList
	Host        = wire.Host
	HostList    = wire.HostList
	MemberPatch = wire.MemberChange
	FieldError  = wire.FieldError
)

// APIError is an error answer of the controller.
type APIError struct {
	Status  int
	Message string
	Fields  []FieldError
}

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

// Client is a typed client of the controller's REST API.
type Client struct {
	base    *url.URL
	http    *http.Client
	timeout time.Duration
	log     *slog.Logger
}

// ParseServer turns --server into a base URL: "host:port" is taken as
// http://host:port.
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

// NewClient returns a client of the controller at server, each request
// bounded by timeout (0: none).
func NewClient(server string, timeout time.Duration, log *slog.Logger) (*Client, error) {
	base, err := ParseServer(server)
	if err != nil {
		return nil, fmt.Errorf("controller address %q (--server or DLB_SERVER): %w", server, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: base, http: &http.Client{Timeout: timeout}, timeout: timeout, log: log}, nil
}

// Server is the controller's base URL.
func (c *Client) Server() string { return c.base.String() }

// url builds the address of an API path from its segments, each escaped.
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
	body        any
	contentType string
	ifMatch     *uint64
}

// do sends req and returns the answer's body when its status is 2xx;
// out, when not nil, receives the decoded JSON.
func (c *Client) do(ctx context.Context, req request, out any) ([]byte, error) {
	var body io.Reader
	if req.body != nil {
		data, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.method, req.url, err)
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "dlbctl")
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
		c.log.Debug("request failed", "method", req.method, "url", req.url, "err", err)
		return nil, c.transportError(req, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.log.Debug("request", "method", req.method, "url", req.url, "status", resp.StatusCode,
		"bytes", len(data), "duration", time.Since(start).Round(time.Microsecond))
	if err != nil {
		return nil, c.transportError(req, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusError(req, resp, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return data, nil
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("the server at %s answered %s %s with HTTP %d but not JSON (Content-Type %q): %s; is it dlb-controller?",
			c.Server(), req.method, hr.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), snippet(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("decode the answer to %s %s: %w", req.method, hr.URL.Path, err)
	}
	return data, nil
}

// transportError explains a request that got no answer.
func (c *Client) transportError(req request, err error) error {
	addr := c.Server()
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the controller at %s (connection refused): start it with 'dlb-controller --listen %s --data-dir /var/lib/dlb-controller', or point dlbctl at it with --server or DLB_SERVER",
			addr, listenAddr(c.base))
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot reach the controller at %s: cannot resolve host %q: %s; check --server or DLB_SERVER", addr, dnsErr.Name, dnsErr.Err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s %s: interrupted", req.method, addr)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("the controller at %s did not answer %s within %s (set a longer --timeout if it is busy)", addr, req.method, c.timeout)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the controller at %s closed the connection without answering %s (is it an HTTP server? is it https?): %w", addr, req.method, err)
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

// statusError turns a 4xx or 5xx answer into an APIError, or explains an
// answer that is not the API's.
func (c *Client) statusError(req request, resp *http.Response, data []byte) error {
	var eb wire.Error
	if json.Unmarshal(data, &eb) != nil || eb.Message == "" {
		return fmt.Errorf("the server at %s answered %s %s with HTTP %s and no JSON error (Content-Type %q): %s",
			c.Server(), req.method, resp.Request.URL.Path, resp.Status, resp.Header.Get("Content-Type"), snippet(data))
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

// ListGroups returns every group, sorted by name, and the raw answer.
func (c *Client) ListGroups(ctx context.Context) (*GroupList, []byte, error) {
	var out GroupList
	raw, err := c.do(ctx, request{method: http.MethodGet, url: c.url("v1", "groups")}, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, raw, nil
}

// GetGroup returns one group and the raw answer.
func (c *Client) GetGroup(ctx context.Context, name string) (*Group, []byte, error) {
	return c.group(ctx, request{method: http.MethodGet, url: c.url("v1", "groups", name)})
}

// CreateGroup creates a group; the controller refuses (409) a name in use.
func (c *Client) CreateGroup(ctx context.Context, g lb.Group) (*Group, []byte, error) {
	return c.group(ctx, request{method: http.MethodPost, url: c.url("v1", "groups"), body: g})
}

// PutGroup creates or replaces a group; with ifMatch, only if its modify
// index is still *ifMatch (else a 409).
func (c *Client) PutGroup(ctx context.Context, g lb.Group, ifMatch *uint64) (*Group, []byte, error) {
	return c.group(ctx, request{method: http.MethodPut, url: c.url("v1", "groups", g.Name), body: g, ifMatch: ifMatch})
}

// DeleteGroup removes a group; with ifMatch, only if its modify index is
// still *ifMatch.
func (c *Client) DeleteGroup(ctx context.Context, name string, ifMatch *uint64) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, url: c.url("v1", "groups", name), ifMatch: ifMatch}, nil)
	return err
}

// DeleteHost forgets a host.
func (c *Client) DeleteHost(ctx context.Context, name string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, url: c.url("v1", "hosts", name)}, nil)
	return err
}

// AddMember adds a member to a group and returns the group after it.
func (c *Client) AddMember(ctx context.Context, group string, m lb.Member) (*Group, []byte, error) {
	return c.group(ctx, request{method: http.MethodPost, url: c.url("v1", "groups", group, "members"), body: m})
}

// PatchMember changes a member's weight or state; member is IP or
// IP:PORT ([IP]:PORT for IPv6).
func (c *Client) PatchMember(ctx context.Context, group, member string, p MemberPatch) (*Group, []byte, error) {
	return c.group(ctx, request{method: http.MethodPatch, url: c.url("v1", "groups", group, "members", member), body: p})
}

// RemoveMember takes a member out of a group.
func (c *Client) RemoveMember(ctx context.Context, group, member string) (*Group, []byte, error) {
	return c.group(ctx, request{method: http.MethodDelete, url: c.url("v1", "groups", group, "members", member)})
}

// ListHosts returns the hypervisors the controller knows.
func (c *Client) ListHosts(ctx context.Context) (*HostList, []byte, error) {
	var out HostList
	raw, err := c.do(ctx, request{method: http.MethodGet, url: c.url("v1", "hosts")}, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, raw, nil
}

func (c *Client) group(ctx context.Context, req request) (*Group, []byte, error) {
	var out Group
	raw, err := c.do(ctx, req, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, raw, nil
}

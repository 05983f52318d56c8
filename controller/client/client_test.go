package client

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/testbed"
)

// dlbctl is how dlbctl makes its client.
var dlbctl = Options{Program: "dlbctl", AddressFrom: "--server or DLB_SERVER", TimeoutFrom: "--timeout"}

func TestURL(t *testing.T) {
	tests := []struct {
		base     string
		server   string
		segments []string
		want     string
	}{
		{"http://h:1", "http://h:1", []string{"v1", "groups"}, "http://h:1/v1/groups"},
		{"http://h:1/", "http://h:1", []string{"v1", "hosts", "h1", "heartbeat"}, "http://h:1/v1/hosts/h1/heartbeat"},
		{"h:1", "http://h:1", []string{"v1", "groups", "web"}, "http://h:1/v1/groups/web"},
		{" https://h:1// ", "https://h:1", []string{"v1", "groups"}, "https://h:1/v1/groups"},
		{"http://h:1/prefix/", "http://h:1/prefix", []string{"v1", "watch", "groups", "stream"}, "http://h:1/prefix/v1/watch/groups/stream"},
		{"10.1.0.5:8470/prefix/", "http://10.1.0.5:8470/prefix", []string{"v1", "groups", "web", "members", "[fd00::1]:80"},
			"http://10.1.0.5:8470/prefix/v1/groups/web/members/%5Bfd00::1%5D:80"},
		{"10.1.0.5:8470/prefix/", "http://10.1.0.5:8470/prefix", []string{"v1", "groups", "a/b?c"}, "http://10.1.0.5:8470/prefix/v1/groups/a%2Fb%3Fc"},
		{"http://h:1/", "http://h:1", []string{"v1", "groups", "a b%#"}, "http://h:1/v1/groups/a%20b%25%23"},
		{"http://[fd00::1]:8470/", "http://[fd00::1]:8470", []string{"v1", "hosts", "hv-1.example"}, "http://[fd00::1]:8470/v1/hosts/hv-1.example"},
	}
	for _, tt := range tests {
		t.Run(tt.base+" "+tt.want, func(t *testing.T) {
			c, err := New(tt.base, Options{})
			require.NoError(t, err)
			assert.Equal(t, tt.server, c.Server())
			assert.Equal(t, tt.want, c.url(tt.segments...))
		})
	}
}

func TestParseServerRefuses(t *testing.T) {
	for _, tc := range []struct{ server, want string }{
		{"", "empty address"},
		{"ftp://h:1", `scheme "ftp": want http or https`},
		{"http://", "no host"},
		{"http://h:1/?x=1", "a query or fragment has no place in the address"},
		{"http://h:1/#top", "a query or fragment has no place in the address"},
	} {
		_, err := ParseServer(tc.server)
		assert.ErrorContains(t, err, tc.want, tc.server)
	}
	_, err := New("ftp://h:1", dlbctl)
	assert.EqualError(t, err, `controller address "ftp://h:1" (--server or DLB_SERVER): scheme "ftp": want http or https`)
}

// seen is a request the fake API received.
type seen struct {
	method, path, query, ifMatch, contentType, accept, userAgent, body string
}

// fakeAPI answers every request with status and body, and records it.
func fakeAPI(t *testing.T, status int, body string, header http.Header) (string, func() []seen) {
	var mu sync.Mutex
	var reqs []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, seen{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, ifMatch: r.Header.Get("If-Match"),
			contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept"), userAgent: r.Header.Get("User-Agent"), body: string(data)})
		mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []seen { mu.Lock(); defer mu.Unlock(); return append([]seen(nil), reqs...) }
}

// TestCalls: every call sends its route's method, path, query, headers
// and body, through a base URL with a trailing slash.
func TestCalls(t *testing.T) {
	web := lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}}
	webBody := `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80}],"members":null}`
	seven := uint64(7)
	w := 5
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func(c *Client) error
		status int
		answer string
		want   seen
	}{
		{"list groups", func(c *Client) error { _, err := c.ListGroups(ctx, Blocking{}); return err }, 200, `{"index":1,"groups":[]}`,
			seen{method: "GET", path: "/v1/groups"}},
		{"list groups, blocking", func(c *Client) error {
			_, err := c.ListGroups(ctx, Blocking{Index: 41, Wait: 30 * time.Second})
			return err
		}, 200, `{"index":42,"groups":[]}`, seen{method: "GET", path: "/v1/groups", query: "index=41&wait=30s"}},
		{"get group", func(c *Client) error { _, err := c.GetGroup(ctx, "web", Blocking{}); return err }, 200, webBody,
			seen{method: "GET", path: "/v1/groups/web"}},
		{"get group, blocking", func(c *Client) error { _, err := c.GetGroup(ctx, "web", Blocking{Index: 9}); return err }, 200, webBody,
			seen{method: "GET", path: "/v1/groups/web", query: "index=9"}},
		{"create group", func(c *Client) error { _, err := c.CreateGroup(ctx, web); return err }, 201, webBody,
			seen{method: "POST", path: "/v1/groups", contentType: "application/json", body: webBody}},
		{"put group", func(c *Client) error { _, err := c.PutGroup(ctx, web, nil); return err }, 200, webBody,
			seen{method: "PUT", path: "/v1/groups/web", contentType: "application/json", body: webBody}},
		{"put group if-match", func(c *Client) error { _, err := c.PutGroup(ctx, web, &seven); return err }, 200, webBody,
			seen{method: "PUT", path: "/v1/groups/web", ifMatch: `"7"`, contentType: "application/json", body: webBody}},
		{"merge patch", func(c *Client) error {
			_, err := c.PatchGroup(ctx, "web", map[string]any{"affinity": nil}, &seven)
			return err
		}, 200, webBody, seen{method: "PATCH", path: "/v1/groups/web", ifMatch: `"7"`, contentType: "application/merge-patch+json", body: `{"affinity":null}`}},
		{"merge patch, raw", func(c *Client) error {
			_, err := c.PatchGroup(ctx, "web", json.RawMessage(`{"mode":"dsr"}`), nil)
			return err
		}, 200, webBody, seen{method: "PATCH", path: "/v1/groups/web", contentType: "application/merge-patch+json", body: `{"mode":"dsr"}`}},
		{"delete group", func(c *Client) error { return c.DeleteGroup(ctx, "web", nil) }, 204, "", seen{method: "DELETE", path: "/v1/groups/web"}},
		{"delete group if-match", func(c *Client) error { return c.DeleteGroup(ctx, "web", &seven) }, 204, "",
			seen{method: "DELETE", path: "/v1/groups/web", ifMatch: `"7"`}},
		{"add member", func(c *Client) error {
			_, err := c.AddMember(ctx, "web", lb.Member{IP: "10.0.0.1", Weight: &w})
			return err
		}, 201, webBody,
			seen{method: "POST", path: "/v1/groups/web/members", contentType: "application/json", body: `{"ip":"10.0.0.1","weight":5}`}},
		{"patch member", func(c *Client) error {
			_, err := c.PatchMember(ctx, "web", "[fd00::1]:80", wire.MemberChange{Weight: &w})
			return err
		}, 200, webBody, seen{method: "PATCH", path: "/v1/groups/web/members/%5Bfd00::1%5D:80", contentType: "application/json", body: `{"weight":5}`}},
		{"remove member", func(c *Client) error { _, err := c.RemoveMember(ctx, "web", "10.0.0.1"); return err }, 200, webBody,
			seen{method: "DELETE", path: "/v1/groups/web/members/10.0.0.1"}},
		{"list hosts", func(c *Client) error { _, err := c.ListHosts(ctx, Blocking{Wait: time.Minute}); return err }, 200, `{"index":1,"hosts":[]}`,
			seen{method: "GET", path: "/v1/hosts", query: "wait=1m0s"}},
		{"get host", func(c *Client) error { _, err := c.GetHost(ctx, "h1"); return err }, 200, `{"name":"h1","ports":[]}`,
			seen{method: "GET", path: "/v1/hosts/h1"}},
		{"delete host", func(c *Client) error { return c.DeleteHost(ctx, "h1") }, 204, "", seen{method: "DELETE", path: "/v1/hosts/h1"}},
		{"register", func(c *Client) error {
			_, err := c.RegisterHost(ctx, "h1", wire.HostRegistration{Version: "dev", Ports: []wire.HostPort{}})
			return err
		}, 200, `{"name":"h1","ports":[]}`, seen{method: "PUT", path: "/v1/hosts/h1", contentType: "application/json", body: `{"version":"dev","ports":[]}`}},
		{"register through the host's view", func(c *Client) error {
			h, err := c.ForHost("h 1")
			require.NoError(t, err)
			return h.Register(ctx, wire.HostRegistration{Ports: []wire.HostPort{}})
		}, 200, `{"name":"h 1","ports":[]}`, seen{method: "PUT", path: "/v1/hosts/h%201", contentType: "application/json", body: `{"ports":[]}`}},
		{"heartbeat", func(c *Client) error {
			h, err := c.ForHost("h1")
			require.NoError(t, err)
			return h.Heartbeat(ctx, 12)
		}, 204, "", seen{method: "POST", path: "/v1/hosts/h1/heartbeat", contentType: "application/json", body: `{"applied_index":12}`}},
		{"watch", func(c *Client) error {
			h, err := c.ForHost("h&1")
			require.NoError(t, err)
			_, err = h.Watch(ctx, 41, 30*time.Second)
			return err
		}, 200, `{"index":41,"groups":[]}`, seen{method: "GET", path: "/v1/watch/groups", query: "host=h%261&index=41&wait=30s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, reqs := fakeAPI(t, tt.status, tt.answer, nil)
			c, err := New(server+"/", Options{Program: "test"})
			require.NoError(t, err)
			require.NoError(t, tt.call(c))
			got := reqs()
			require.Len(t, got, 1)
			want := tt.want
			want.accept, want.userAgent = "application/json", "test"
			if want.body != "" {
				assert.JSONEq(t, want.body, got[0].body)
				want.body = got[0].body
			}
			assert.Equal(t, want, got[0])
		})
	}
}

func TestAnswer(t *testing.T) {
	body := `{"name":"web","vip":"10.96.0.10","ports":[{"protocol":"tcp","port":80}],"members":[],"create_index":3,"modify_index":7}`
	server, _ := fakeAPI(t, 200, body, http.Header{"X-Dlb-Index": {"12"}})
	c, err := New(server, Options{})
	require.NoError(t, err)
	a, err := c.GetGroup(context.Background(), "web", Blocking{})
	require.NoError(t, err)
	assert.Equal(t, body, string(a.Raw), "the answer as sent")
	assert.Equal(t, uint64(12), a.Index)
	assert.Equal(t, uint64(7), a.Doc.ModifyIndex)
	assert.Equal(t, "10.96.0.10", a.Doc.VIP)
}

func TestErrorAnswers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		ctype  string
		want   *APIError
		msg    string
	}{
		{name: "the API's error", status: 422, body: `{"error":"invalid group","fields":[{"path":"members[0].weight","message":"0 is out of range (1..65535)"}]}`,
			want: &APIError{Status: 422, Message: "invalid group", Fields: []wire.FieldError{{Path: "members[0].weight", Message: "0 is out of range (1..65535)"}}},
			msg:  "invalid group\n  members[0].weight: 0 is out of range (1..65535)"},
		{name: "not found", status: 404, body: `{"error":"group \"nope\": not found"}`, want: &APIError{Status: 404, Message: `group "nope": not found`},
			msg: `group "nope": not found`},
		{name: "a proxy's error", status: 502, body: "bad gateway", ctype: "text/plain",
			msg: `answered GET /v1/groups/nope with HTTP 502 Bad Gateway and no JSON error (Content-Type "text/plain"): "bad gateway"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ct := tc.ctype
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := New(srv.URL, Options{})
			require.NoError(t, err)
			_, err = c.GetGroup(ctx, "nope", Blocking{})
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.status, ae.Status)
			assert.True(t, IsStatus(err, tc.status))
			if tc.want != nil {
				assert.Equal(t, tc.want, ae)
			}
			assert.Contains(t, err.Error(), tc.msg)
		})
	}

	// A heartbeat for a host the controller does not know.
	server, _ := fakeAPI(t, 404, `{"error":"host \"h1\": not registered (PUT /v1/hosts/h1 first)"}`, nil)
	c, err := New(server, Options{})
	require.NoError(t, err)
	h, err := c.ForHost("h1")
	require.NoError(t, err)
	err = h.Heartbeat(ctx, 1)
	assert.ErrorIs(t, err, ErrNotRegistered)
	assert.Contains(t, err.Error(), "not registered (PUT /v1/hosts/h1 first)")
	_, err = c.ForHost("")
	assert.Error(t, err)
}

// TestAgainstTheController: the calls against a real controller, through
// an address with a trailing slash.
func TestAgainstTheController(t *testing.T) {
	ctl := testbed.StartController(t)
	ctx := context.Background()
	c, err := New(ctl.URL()+"/", Options{Timeout: 10 * time.Second})
	require.NoError(t, err)
	h, err := c.ForHost("h1")
	require.NoError(t, err)
	require.NoError(t, h.Register(ctx, wire.HostRegistration{Version: "test"}))
	require.NoError(t, h.Heartbeat(ctx, 0))

	g, err := c.CreateGroup(ctx, lb.Group{Name: "web", VIP: "10.96.0.10", Ports: []lb.PortSpec{{Protocol: "tcp", Port: 80}}})
	require.NoError(t, err)
	_, err = c.CreateGroup(ctx, g.Doc.Group)
	assert.True(t, IsStatus(err, http.StatusConflict), "%v", err)
	_, err = c.PatchGroup(ctx, "web", map[string]any{"mode": "dsr"}, &g.Doc.ModifyIndex)
	require.NoError(t, err)
	_, err = c.PatchGroup(ctx, "web", map[string]any{"mode": "dnat"}, &g.Doc.ModifyIndex)
	assert.True(t, IsStatus(err, http.StatusConflict), "a stale If-Match: %v", err)
	m, err := c.AddMember(ctx, "web", lb.Member{IP: "10.0.0.1"})
	require.NoError(t, err)
	assert.Equal(t, lb.ModeDSR, m.Doc.Mode)
	_, err = c.PatchMember(ctx, "web", "10.0.0.1", wire.MemberChange{State: ptr(lb.StateDraining)})
	require.NoError(t, err)

	// A Blocking read answers with the next change.
	list, err := c.ListGroups(ctx, Blocking{})
	require.NoError(t, err)
	require.Len(t, list.Doc.Groups, 1)
	next := make(chan *Answer[wire.Group], 1)
	go func() {
		a, err := c.GetGroup(ctx, "web", Blocking{Index: list.Index, Wait: 30 * time.Second})
		assert.NoError(t, err)
		next <- a
	}()
	time.Sleep(100 * time.Millisecond)
	_, err = c.RemoveMember(ctx, "web", "10.0.0.1")
	require.NoError(t, err)
	select {
	case a := <-next:
		assert.Empty(t, a.Doc.Members)
		assert.Greater(t, a.Index, list.Index)
	case <-time.After(20 * time.Second):
		t.Fatal("the Blocking read did not answer the change")
	}

	changes, err := h.Watch(ctx, 0, 0)
	require.NoError(t, err)
	assert.True(t, changes.Full)
	require.Len(t, changes.Groups, 1)

	hosts, err := c.ListHosts(ctx, Blocking{})
	require.NoError(t, err)
	require.Len(t, hosts.Doc.Hosts, 1)
	host, err := c.GetHost(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, "test", host.Doc.Version)
	require.NoError(t, c.DeleteHost(ctx, "h1"))
	assert.ErrorIs(t, h.Heartbeat(ctx, 0), ErrNotRegistered)
	require.NoError(t, c.DeleteGroup(ctx, "web", nil))
	_, err = c.GetGroup(ctx, "web", Blocking{})
	assert.True(t, IsStatus(err, http.StatusNotFound), "%v", err)
}

func ptr[T any](v T) *T { return &v }

func TestConnectionRefused(t *testing.T) {
	addr := testbed.FreeAddr(t)
	c, err := New(addr+"/", dlbctl)
	require.NoError(t, err)
	_, err = c.ListGroups(context.Background(), Blocking{})
	assert.EqualError(t, err, "cannot reach the controller at http://"+addr+" (connection refused): start it with 'dlb-controller --listen "+addr+
		" --data-dir /var/lib/dlb-controller', or point dlbctl at it with --server or DLB_SERVER")

	c, err = New(addr, Options{})
	require.NoError(t, err)
	h, err := c.ForHost("h1")
	require.NoError(t, err)
	err = h.Stream(context.Background(), 0, time.Second, func(*wire.GroupChanges, bool) error { return nil })
	assert.EqualError(t, err, "cannot reach the controller at http://"+addr+" (connection refused): start it with 'dlb-controller --listen "+addr+
		" --data-dir /var/lib/dlb-controller'")
}

// TestTransportErrors (moved from dlbctl) explains each way a request gets
// no answer.
func TestTransportErrors(t *testing.T) {
	opts := dlbctl
	opts.Timeout = time.Second
	c, err := New("https://controller.example", opts)
	require.NoError(t, err)
	u := "https://controller.example/v1/groups"
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{
			name: "DNS failure",
			err:  &url.Error{Op: "Get", URL: u, Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "controller.example", IsNotFound: true}}},
			want: `cannot reach the controller at https://controller.example: cannot resolve host "controller.example": no such host; check --server or DLB_SERVER`,
		},
		{
			name: "refused, default https port",
			err:  &url.Error{Op: "Get", URL: u, Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
			want: "cannot reach the controller at https://controller.example (connection refused): start it with 'dlb-controller --listen controller.example:443",
		},
		{
			name: "deadline",
			err:  &url.Error{Op: "Get", URL: u, Err: context.DeadlineExceeded},
			want: "the controller at https://controller.example did not answer GET within 1s (set a longer --timeout if it is busy)",
		},
		{
			name: "closed",
			err:  &url.Error{Op: "Get", URL: u, Err: io.EOF},
			want: "the controller at https://controller.example closed the connection without answering GET",
		},
		{
			name: "interrupted",
			err:  &url.Error{Op: "Get", URL: u, Err: context.Canceled},
			want: "GET https://controller.example: interrupted",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, c.transportError("GET", tc.err).Error(), tc.want)
		})
	}

	// Without the settings' names (the agent's deadlines are its own).
	c, err = New("h:1", Options{})
	require.NoError(t, err)
	assert.Equal(t, "the controller at http://h:1 did not answer POST in time",
		c.transportError("POST", &url.Error{Op: "Post", URL: "http://h:1/v1/hosts/h1/heartbeat", Err: context.DeadlineExceeded}).Error())
	assert.Equal(t, `cannot reach the controller at http://h:1: cannot resolve host "h": no such host; check the controller address`,
		c.transportError("GET", &net.DNSError{Err: "no such host", Name: "h", IsNotFound: true}).Error())
}

// TestTimeout: Options.Timeout bounds a request, not a Blocking read's
// wait.
func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		took := 2 * time.Second // beyond Timeout
		if r.URL.Query().Get("wait") != "" {
			took = 500 * time.Millisecond // beyond Timeout, within the wait
		}
		select {
		case <-time.After(took):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"index":1,"groups":[]}`)
	}))
	defer srv.Close()
	opts := dlbctl
	opts.Timeout = 200 * time.Millisecond
	c, err := New(srv.URL, opts)
	require.NoError(t, err)
	_, err = c.ListGroups(context.Background(), Blocking{})
	assert.EqualError(t, err, "the controller at "+srv.URL+" did not answer GET within 200ms (set a longer --timeout if it is busy)")
	_, err = c.ListGroups(context.Background(), Blocking{Index: 1, Wait: 10 * time.Second})
	assert.NoError(t, err)
}

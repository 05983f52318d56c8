package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Blocking makes a read a Blocking one: with Index, the controller
// answers once something changed after Index (an Answer's Index), or at
// the end of Wait (the controller's default when 0: 5 minutes). The zero
// value is a plain read, answered at once.
type Blocking struct {
	Index uint64
	Wait  time.Duration
}

func (b Blocking) query() url.Values {
	q := url.Values{}
	if b.Index != 0 {
		q.Set("index", strconv.FormatUint(b.Index, 10))
	}
	if b.Wait != 0 {
		q.Set("wait", b.Wait.String())
	}
	return q
}

// read is a GET of path, Blocking when b says so.
func (c *Client) read(b Blocking, segments ...string) request {
	return request{method: http.MethodGet, url: c.url(segments...), query: b.query(), wait: b.Wait}
}

// ListGroups returns every group, sorted by name (GET /v1/groups).
func (c *Client) ListGroups(ctx context.Context, b Blocking) (*Answer[wire.GroupList], error) {
	return call[wire.GroupList](ctx, c, c.read(b, "v1", "groups"))
}

// GetGroup returns one group, with on how many hosts it is installed and
// how closely its slots follow its weights (GET /v1/groups/{name}).
func (c *Client) GetGroup(ctx context.Context, name string, b Blocking) (*Answer[wire.Group], error) {
	return call[wire.Group](ctx, c, c.read(b, "v1", "groups", name))
}

// GroupStats reads a group's members' statistics over every host (GET
// /v1/groups/{name}/stats).
func (c *Client) GroupStats(ctx context.Context, name string) (*Answer[wire.GroupStats], error) {
	return call[wire.GroupStats](ctx, c, request{method: http.MethodGet, url: c.url("v1", "groups", name, "stats")})
}

// CreateGroup creates a group; the controller refuses (409) a name in use
// (POST /v1/groups).
func (c *Client) CreateGroup(ctx context.Context, g lb.Group) (*Answer[wire.Group], error) {
	return call[wire.Group](ctx, c, request{method: http.MethodPost, url: c.url("v1", "groups"), body: g})
}

// PutGroup creates or replaces a group; with ifMatch, only if its modify
// index is still *ifMatch, else the controller answers 409
// (PUT /v1/groups/{name}).
func (c *Client) PutGroup(ctx context.Context, g lb.Group, ifMatch *uint64) (*Answer[wire.Group], error) {
	return call[wire.Group](ctx, c, request{method: http.MethodPut, url: c.url("v1", "groups", g.Name), body: g, ifMatch: ifMatch})
}

// PatchGroup changes a group with a JSON merge patch (RFC 7386: the
// fields given replace the group's, null removes one): patch is anything
// that encodes to a JSON object, such as a map or a json.RawMessage.
// With ifMatch, only if the group's modify index is still *ifMatch
// (PATCH /v1/groups/{name}).
func (c *Client) PatchGroup(ctx context.Context, name string, patch any, ifMatch *uint64) (*Answer[wire.Group], error) {
	return call[wire.Group](ctx, c, request{method: http.MethodPatch, url: c.url("v1", "groups", name), body: patch,
		contentType: "application/merge-patch+json", ifMatch: ifMatch})
}

// DeleteGroup removes a group; with ifMatch, only if its modify index is
// still *ifMatch (DELETE /v1/groups/{name}).
func (c *Client) DeleteGroup(ctx context.Context, name string, ifMatch *uint64) error {
	_, _, err := c.do(ctx, request{method: http.MethodDelete, url: c.url("v1", "groups", name), ifMatch: ifMatch}, nil)
	return err
}

// AddMember adds a member to a group and returns the group after it
// (POST /v1/groups/{name}/members).
func (c *Client) AddMember(ctx context.Context, group string, m lb.Member) (*Answer[wire.Group], error) {
	return call[wire.Group](ctx, c, request{method: http.MethodPost, url: c.url("v1", "groups", group, "members"), body: m})
}

// PatchMember changes a member's weight or state; member is IP or
// IP:PORT ([IP]:PORT for IPv6) (PATCH /v1/groups/{name}/members/{member}).
func (c *Client) PatchMember(ctx context.Context, group, member string, p wire.MemberChange) (*Answer[wire.Group], error) {
	return call[wire.Group](ctx, c, request{method: http.MethodPatch, url: c.url("v1", "groups", group, "members", member), body: p})
}

// RemoveMember takes a member out of a group and returns the group after
// it (DELETE /v1/groups/{name}/members/{member}).
func (c *Client) RemoveMember(ctx context.Context, group, member string) (*Answer[wire.Group], error) {
	return call[wire.Group](ctx, c, request{method: http.MethodDelete, url: c.url("v1", "groups", group, "members", member)})
}

// ListHosts returns the hypervisors the controller knows (GET /v1/hosts).
func (c *Client) ListHosts(ctx context.Context, b Blocking) (*Answer[wire.HostList], error) {
	return call[wire.HostList](ctx, c, c.read(b, "v1", "hosts"))
}

// GetHost returns one host: its registration and how its agent is doing
// (GET /v1/hosts/{name}).
func (c *Client) GetHost(ctx context.Context, name string) (*Answer[wire.Host], error) {
	return call[wire.Host](ctx, c, c.read(Blocking{}, "v1", "hosts", name))
}

// DeleteHost forgets a host; one whose agent still runs registers again
// (DELETE /v1/hosts/{name}).
func (c *Client) DeleteHost(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, request{method: http.MethodDelete, url: c.url("v1", "hosts", name)}, nil)
	return err
}

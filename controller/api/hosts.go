package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/hashicorp/go-memdb"

	"github.com/ovs-dlb/dlb/controller/view"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Host and HostList are the wire documents.
type (
	Host     = wire.Host
	HostList = wire.HostList
)

// hostStatus keeps, in memory, how each agent is doing: its last report,
// the index it applied, its open watches. (It is not stored: after a
// controller restart the agents' next requests fill it again.)
type hostStatus struct {
	mu    sync.Mutex
	hosts map[string]*agentStatus
}

type agentStatus struct {
	lastSeen time.Time
	applied  uint64
	watches  int
}

func (h *hostStatus) get(name string) *agentStatus {
	if h.hosts == nil {
		h.hosts = map[string]*agentStatus{}
	}
	a := h.hosts[name]
	if a == nil {
		a = &agentStatus{}
		h.hosts[name] = a
	}
	return a
}

// seen records a report; applied 0 leaves the applied index as it was.
func (h *hostStatus) seen(name string, applied uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.get(name)
	a.lastSeen = time.Now()
	if applied != 0 {
		a.applied = applied
	}
}

// watching counts an open watch; the returned func ends it.
func (h *hostStatus) watching(name string) func() {
	h.mu.Lock()
	h.get(name).watches++
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		a := h.get(name)
		a.watches--
		a.lastSeen = time.Now()
		h.mu.Unlock()
	}
}

// forget drops a deleted host's status.
func (h *hostStatus) forget(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.hosts, name)
}

func (h *hostStatus) status(name string) wire.HostStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.hosts[name]
	if !ok {
		return wire.HostStatus{}
	}
	st := wire.HostStatus{AppliedIndex: a.applied,
		Connected: a.watches > 0 || time.Since(a.lastSeen) < 3*wire.HeartbeatInterval}
	if !a.lastSeen.IsZero() {
		t := a.lastSeen.UTC()
		st.LastHeartbeat = &t
	}
	return st
}

type listHostsInput struct{ Blocking }

type listHostsOutput struct {
	Index uint64 `header:"X-Dlb-Index"`
	Body  HostList
}

// HostParam is the host named in the path.
type HostParam struct {
	Name string `path:"name" maxLength:"63" doc:"The host's id (its agent's host_id: the OVS system-id, else the hostname)"`
}

type getHostInput struct{ HostParam }

type hostOutput struct {
	Index uint64 `header:"X-Dlb-Index"`
	Body  Host
}

type registerInput struct {
	HostParam
	Body wire.HostRegistration
}

type heartbeatInput struct {
	HostParam
	Body wire.Heartbeat
}

func (s *Server) hostRoutes() {
	huma.Register(s.api, s.op("list-hosts", http.MethodGet, "/v1/hosts", "List hosts (a blocking read with index and wait)", http.StatusOK),
		func(ctx context.Context, in *listHostsInput) (*listHostsOutput, error) {
			var list []*view.HostEntry
			idx, err := s.block(ctx, in.Blocking, func(ws memdb.WatchSet) (uint64, error) {
				var idx uint64
				var err error
				idx, list, err = s.st.View().Hosts(ws)
				return idx, err
			})
			if err != nil {
				return nil, err
			}
			out := &listHostsOutput{Index: idx, Body: HostList{Index: idx, Hosts: make([]Host, 0, len(list))}}
			for _, h := range list {
				out.Body.Hosts = append(out.Body.Hosts, s.hostDoc(h))
			}
			return out, nil
		})
	huma.Register(s.api, s.op("get-host", http.MethodGet, "/v1/hosts/{name}", "Get a host: its registration and how its agent is doing", http.StatusOK),
		func(ctx context.Context, in *getHostInput) (*hostOutput, error) {
			h, err := s.st.View().Host(nil, in.Name)
			if err != nil {
				return nil, fromStore(err)
			}
			if h == nil {
				return nil, errorf(http.StatusNotFound, "host %q: not found", in.Name)
			}
			return &hostOutput{Index: h.ModifyIndex, Body: s.hostDoc(h)}, nil
		})
	huma.Register(s.api, s.op("register-host", http.MethodPut, "/v1/hosts/{name}", "Register a host, or change its registration (agents do this)", http.StatusOK),
		func(ctx context.Context, in *registerInput) (*hostOutput, error) {
			h, idx, err := s.st.WriteHost(ctx, in.Name, &in.Body)
			if err != nil {
				return nil, fromStore(err)
			}
			s.hosts.seen(in.Name, 0)
			return &hostOutput{Index: idx, Body: s.hostDoc(h)}, nil
		})
	huma.Register(s.api, s.op("delete-host", http.MethodDelete, "/v1/hosts/{name}", "Forget a host (its agent registers it again if it runs)", http.StatusNoContent),
		func(ctx context.Context, in *getHostInput) (*struct{}, error) {
			if _, _, err := s.st.WriteHost(ctx, in.Name, nil); err != nil {
				return nil, fromStore(err)
			}
			s.hosts.forget(in.Name)
			s.stats.ForgetHost(in.Name)
			return nil, nil
		})
	huma.Register(s.api, s.op("host-heartbeat", http.MethodPost, "/v1/hosts/{name}/heartbeat", "An agent's report: alive, and the groups index it has installed", http.StatusNoContent),
		func(ctx context.Context, in *heartbeatInput) (*struct{}, error) {
			h, err := s.st.View().Host(nil, in.Name)
			if err != nil {
				return nil, fromStore(err)
			}
			if h == nil {
				return nil, errorf(http.StatusNotFound, "host %q: not registered (PUT /v1/hosts/%s first)", in.Name, in.Name)
			}
			s.hosts.seen(in.Name, in.Body.AppliedIndex)
			return nil, nil
		})
}

func (s *Server) hostDoc(h *view.HostEntry) Host {
	ports := h.Ports
	if ports == nil {
		ports = []wire.HostPort{}
	}
	return Host{Name: h.Name, Address: h.Address, Version: h.Version, Ports: ports, ExternalIDs: h.ExternalIDs,
		CreateIndex: h.CreateIndex, ModifyIndex: h.ModifyIndex, HostStatus: s.hosts.status(h.Name)}
}

// concerns says whether a group is for a host: every host unless its
// scope names hosts.
func concerns(g *lb.Group, host string) bool {
	if g.Scope == nil || len(g.Scope.Hosts) == 0 {
		return true
	}
	for _, h := range g.Scope.Hosts {
		if h == host {
			return true
		}
	}
	return false
}

// applied counts the hosts a group concerns and those that installed its
// latest version.
func (s *Server) applied(e *view.GroupEntry) *wire.Applied {
	_, hosts, err := s.st.View().Hosts(nil)
	if err != nil {
		return nil
	}
	a := &wire.Applied{}
	for _, h := range hosts {
		if !concerns(&e.Group, h.Name) {
			continue
		}
		a.Hosts++
		if s.hosts.status(h.Name).AppliedIndex >= e.ModifyIndex {
			a.Applied++
		}
	}
	return a
}

package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/hashicorp/go-memdb"

	"github.com/ovs-dlb/dlb/controller/state"
	"github.com/ovs-dlb/dlb/controller/wire"
)

// Host and HostList are the wire documents.
type (
	Host     = wire.Host
	HostList = wire.HostList
)

type listHostsInput struct{ Blocking }

type listHostsOutput struct {
	Index uint64 `header:"X-Dlb-Index"`
	Body  HostList
}

func (s *Server) hostRoutes() {
	huma.Register(s.api, s.op("list-hosts", http.MethodGet, "/v1/hosts", "List hosts (a Blocking read with index and wait)", http.StatusOK),
		func(ctx context.Context, in *listHostsInput) (*listHostsOutput, error) {
			var list []*state.HostEntry
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
				out.Body.Hosts = append(out.Body.Hosts, Host{Name: h.Name, Address: h.Address, ExternalIDs: h.ExternalIDs,
					CreateIndex: h.CreateIndex, ModifyIndex: h.ModifyIndex})
			}
			return out, nil
		})
}

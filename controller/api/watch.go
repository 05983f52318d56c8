package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/hashicorp/go-memdb"

	"github.com/ovs-dlb/dlb/controller/state"
	"github.com/ovs-dlb/dlb/controller/wire"
)

type watchInput struct {
	Host string `query:"host" required:"true" maxLength:"63" doc:"The agent's host: only the groups for it are sent"`
	Blocking
}

type watchOutput struct {
	Index uint64 `header:"X-Dlb-Index"`
	Body  wire.GroupChanges
}

// watchRoutes declares the agents' watch: a long poll, plain HTTP, that
// any proxy passes and curl reads:
//
//	GET /v1/watch/groups?host=h1&index=0          everything for h1 (full)
//	GET /v1/watch/groups?host=h1&index=41&wait=30s  what changed after 41
//
// An agent asks again from the answer's index. A change to one group
// sends that group only. The answer is full (every group for the host;
// drop the others) when index is 0 or older than the deletions the
// controller remembers (tombstones are kept for tombstone_retention, and a
// controller remembers none from before it started).
func (s *Server) watchRoutes() {
	huma.Register(s.api, s.op("watch-groups", http.MethodGet, "/v1/watch/groups", "An agent's watch: the groups for its host that changed after index (a long poll)", http.StatusOK),
		func(ctx context.Context, in *watchInput) (*watchOutput, error) {
			// Only registered hosts are tracked: any name may watch, and the
			// status map must not grow with every name asked for.
			if h, _ := s.st.View().Host(in.Host); h != nil {
				done := s.hosts.watching(in.Host)
				defer done()
			}
			var (
				changed []*state.GroupEntry
				deleted []string
				full    bool
			)
			query := func(ws memdb.WatchSet) (uint64, error) {
				idx, c, d, f, err := s.st.View().GroupChanges(ws, in.Index)
				changed, deleted, full = c, d, f
				if f {
					// Nothing to wait for: the agent needs everything now.
					return max(idx, in.Index+1), err
				}
				return idx, err
			}
			b := in.Blocking
			if b.Wait == "" {
				b.Wait = "5m"
			}
			idx, err := s.block(ctx, b, query)
			if err != nil {
				return nil, err
			}
			if full {
				idx, _, _, _, _ = s.st.View().GroupChanges(nil, in.Index)
			}
			out := &watchOutput{Index: idx, Body: wire.GroupChanges{Index: idx, Full: full, Groups: []wire.Group{}, Deleted: deleted}}
			for _, e := range changed {
				if concerns(&e.Group, in.Host) {
					out.Body.Groups = append(out.Body.Groups, doc(e))
				} else if !full {
					out.Body.Deleted = append(out.Body.Deleted, e.Name) // no longer (or never) for this host
				}
			}
			return out, nil
		})
}

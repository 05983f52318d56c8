package api

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
	"github.com/hashicorp/go-memdb"

	"github.com/ovs-dlb/dlb/controller/view"
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

type streamInput struct {
	Host  string `query:"host" required:"true" maxLength:"63" doc:"The agent's host: only the groups for it are sent"`
	Index uint64 `query:"index" doc:"The index the agent has: the first line says at once what changed after it (possibly nothing), the next ones each change after that"`
}

// watchRoutes declares the agents' watch, plain HTTP that any proxy
// passes and curl reads, as a long poll:
//
//	GET /v1/watch/groups?host=h1&index=0            everything for h1 (full)
//	GET /v1/watch/groups?host=h1&index=41&wait=30s  what changed after 41
//
// where an agent asks again from the answer's index, or as a stream of
// the same answers, one JSON document per line (application/x-ndjson):
//
//	GET /v1/watch/groups/stream?host=h1&index=41
//
// whose first line comes at once and the next ones with each change (and
// every wire.StreamKeepAlive without one). A change to one group sends that
// group only. An answer is full (every group for the host; drop the
// others) when index is 0 or older than the deletions the controller
// remembers (tombstones are kept for tombstone_retention, and a
// controller remembers none from before it started).
func (s *Server) watchRoutes() {
	huma.Register(s.api, s.op("watch-groups", http.MethodGet, "/v1/watch/groups", "An agent's watch: the groups for its host that changed after index (a long poll)", http.StatusOK),
		func(ctx context.Context, in *watchInput) (*watchOutput, error) {
			defer s.watching(in.Host)()
			b := in.Blocking
			if b.Wait == "" {
				b.Wait = "5m"
			}
			c, err := s.changes(ctx, in.Host, b)
			if err != nil {
				return nil, err
			}
			return &watchOutput{Index: c.Index, Body: *c}, nil
		})

	op := s.op("stream-groups", http.MethodGet, "/v1/watch/groups/stream", "An agent's watch as a stream: a line (JSON) per change of the groups for its host, from index on", http.StatusOK)
	op.Responses = map[string]*huma.Response{"200": {
		Description: "One GroupChanges document per line: the first at once, then one per change, and one without changes every 25 s of quiet",
		Content:     map[string]*huma.MediaType{"application/x-ndjson": {Schema: s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[wire.GroupChanges](), true, "")}},
	}}
	huma.Register(s.api, op, func(ctx context.Context, in *streamInput) (*huma.StreamResponse, error) {
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			defer s.watching(in.Host)()
			ctx, cancel := context.WithCancel(hc.Context())
			defer cancel()
			defer context.AfterFunc(s.closing, cancel)()
			hc.SetHeader("Content-Type", "application/x-ndjson")
			hc.SetHeader("Cache-Control", "no-store")
			hc.SetHeader("X-Accel-Buffering", "no") // nginx: pass each line on
			hc.SetStatus(http.StatusOK)
			w := hc.BodyWriter()
			enc := json.NewEncoder(w)
			b := Blocking{Index: in.Index, Wait: "0s"} // the first line at once
			for {
				c, err := s.changes(ctx, in.Host, b)
				if err != nil || ctx.Err() != nil {
					return
				}
				if err := enc.Encode(c); err != nil {
					return
				}
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
				b = Blocking{Index: c.Index, Wait: s.opts.KeepAlive.String()}
			}
		}}, nil
	})
}

// watching tracks a registered host's open watch until the returned
// function is called. Only registered hosts are tracked: any name may
// watch, and the status map must not grow with every name asked for.
func (s *Server) watching(host string) func() {
	if h, _ := s.st.View().Host(nil, host); h != nil {
		return s.hosts.watching(host)
	}
	return func() {}
}

// changes is one watch answer: the groups for host that changed after
// b.Index, once there are any or at the end of b.Wait.
func (s *Server) changes(ctx context.Context, host string, b Blocking) (*wire.GroupChanges, error) {
	var (
		changed []*view.GroupEntry
		deleted []string
		full    bool
	)
	query := func(ws memdb.WatchSet) (uint64, error) {
		idx, c, d, f, err := s.st.View().GroupChanges(ws, b.Index)
		changed, deleted, full = c, d, f
		if f {
			// Nothing to wait for: the agent needs everything now.
			return max(idx, b.Index+1), err
		}
		return idx, err
	}
	idx, err := s.block(ctx, b, query)
	if err != nil {
		return nil, err
	}
	if full {
		idx, _, _, _, _ = s.st.View().GroupChanges(nil, b.Index)
	}
	out := &wire.GroupChanges{Index: idx, Full: full, Groups: []wire.Group{}, Deleted: deleted}
	for _, e := range changed {
		if concerns(&e.Group, host) {
			out.Groups = append(out.Groups, doc(e))
		} else if !full {
			out.Deleted = append(out.Deleted, e.Name) // no longer (or never) for this host
		}
	}
	return out, nil
}

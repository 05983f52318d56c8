package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/hashicorp/go-memdb"

	"github.com/ovs-dlb/dlb/controller/health"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

type reportHealthInput struct {
	HostParam
	Body wire.HealthReport
}

type healthWatchInput struct {
	Host string `query:"host" required:"true" maxLength:"63" doc:"The agent's host: its probe targets, and every health-checked member's health"`
}

type listHealthOutput struct {
	Body struct {
		Members []wire.MemberHealth `json:"members"`
	}
}

// maxHealthBody bounds a health report: 10,000 targets of some 300 bytes.
const maxHealthBody = 8 << 20

// healthRoutes declares the probers' reports and the agents' health
// watch:
//
//	POST /v1/hosts/{name}/health       a prober's results (wire.HealthReport)
//	GET  /v1/watch/health?host=h1      the host's targets and every member's
//	                                   health, a line (wire.HealthLine) per change
//	GET  /v1/health                    every health-checked member's health
func (s *Server) healthRoutes() {
	op := s.op("report-health", http.MethodPost, "/v1/hosts/{name}/health", "A prober's report: the state of the targets it probes (those that changed, or all)", http.StatusNoContent)
	op.MaxBodyBytes = maxHealthBody
	huma.Register(s.api, op, func(ctx context.Context, in *reportHealthInput) (*struct{}, error) {
		h, err := s.st.View().Host(nil, in.Name)
		if err != nil {
			return nil, fromStore(err)
		}
		if h == nil {
			return nil, errorf(http.StatusNotFound, "host %q: not registered (PUT /v1/hosts/%s first)", in.Name, in.Name)
		}
		if err := s.health.Report(in.Name, &in.Body); err != nil {
			var re *health.ReportError
			if errors.As(err, &re) {
				return nil, fieldError(http.StatusUnprocessableEntity, re.Field, "%s", re.Msg)
			}
			return nil, err
		}
		return nil, nil
	})

	huma.Register(s.api, s.op("list-health", http.MethodGet, "/v1/health", "Every health-checked member's health, by group", http.StatusOK),
		func(ctx context.Context, _ *struct{}) (*listHealthOutput, error) {
			out := &listHealthOutput{}
			out.Body.Members = s.health.All()
			return out, nil
		})

	wop := s.op("watch-health", http.MethodGet, "/v1/watch/health", "An agent's health watch: its probe targets and the members' health, a line (JSON) per change", http.StatusOK)
	wop.Responses = map[string]*huma.Response{"200": {
		Description: "One HealthLine per line: the first (full) at once, then one per change, and one without changes every 25 s of quiet",
		Content:     map[string]*huma.MediaType{"application/x-ndjson": {Schema: s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[wire.HealthLine](), true, "")}},
	}}
	huma.Register(s.api, wop, func(ctx context.Context, in *healthWatchInput) (*huma.StreamResponse, error) {
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			defer s.health.Open(in.Host)()
			ctx, cancel := context.WithCancel(hc.Context())
			defer cancel()
			defer context.AfterFunc(s.closing, cancel)()
			hc.SetHeader("Content-Type", "application/x-ndjson")
			hc.SetHeader("Cache-Control", "no-store")
			hc.SetHeader("X-Accel-Buffering", "no")
			hc.SetStatus(http.StatusOK)
			w := hc.BodyWriter()
			enc := json.NewEncoder(w)
			var since uint64
			full, settling := true, true
			keep := time.NewTimer(s.opts.KeepAlive)
			defer keep.Stop()
			for {
				line, ok, changed := s.health.Next(in.Host, since, full)
				if ok || settling != line.Settling || !keep.Stop() {
					if err := enc.Encode(line); err != nil {
						return
					}
					if f, ok := w.(http.Flusher); ok {
						f.Flush()
					}
				}
				since, settling, full = line.Index, line.Settling, false
				keep.Reset(s.opts.KeepAlive)
				var settled <-chan time.Time
				if settling {
					settled = time.After(time.Until(s.health.SettledAt()))
				}
				select {
				case <-ctx.Done():
					return
				case <-changed:
				case <-keep.C:
				case <-settled:
				}
			}
		}}, nil
	})
}

// runHealth reassigns the probes whenever a group or a host changes or a
// host's health watch opens or closes, until ctx ends.
func (s *Server) runHealth(ctx context.Context) {
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		_, groups, err := s.st.View().Groups(ws)
		if err != nil {
			s.log.Error("health assignment: read groups", "err", err)
			return
		}
		_, hosts, err := s.st.View().Hosts(ws)
		if err != nil {
			s.log.Error("health assignment: read hosts", "err", err)
			return
		}
		var checked []lb.Group
		for _, g := range groups {
			if g.Group.HealthCheck != nil {
				checked = append(checked, g.Group)
			}
		}
		hs := make([]health.Host, len(hosts))
		for i, h := range hosts {
			hs[i] = health.Host{Name: h.Name, Ports: h.Ports, Alive: s.health.Alive(h.Name)}
		}
		s.health.Update(checked, hs)
		ws.Add(s.health.AliveChanged())
		if err := ws.WatchCtx(ctx); err != nil {
			return
		}
		// A burst of changes (a bulk load) is one reassignment.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

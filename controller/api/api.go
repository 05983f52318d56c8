// Package api is the controller's REST API for admins: groups and their
// members under /v1, hosts, Blocking reads, /healthz, /readyz, /metrics
// and /openapi.json. Routes are declared with huma from Go types, and the
// OpenAPI document is generated from those same declarations, so spec and
// code cannot drift apart (docs/api.md says why huma).
//
// It owns: HTTP, request decoding and answers. It must not touch:
// ovsdb-server (the store does) or any switch.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ovs-dlb/dlb/controller/health"
	"github.com/ovs-dlb/dlb/controller/stats"
	"github.com/ovs-dlb/dlb/controller/store"
	"github.com/ovs-dlb/dlb/controller/wire"
)

// Options configure the API.
type Options struct {
	Store *store.Store
	// Registry receives the API's metrics; /metrics serves it (and
	// whatever else was registered there).
	Registry *prometheus.Registry
	Log      *slog.Logger
	// MaxBodyBytes limits request bodies (default 1 MiB: a group of some
	// 10,000 members).
	MaxBodyBytes int64
	// MaxWait caps a Blocking read's wait (default 10 minutes).
	MaxWait time.Duration
	// KeepAlive is how often an idle watch stream sends a line without
	// changes (default wire.StreamKeepAlive).
	KeepAlive time.Duration
	// Version is reported in the OpenAPI document.
	Version string
	// MemberMetricsLimit bounds the members whose statistics, and
	// (separately) the health-checked members whose health, /metrics
	// exports (default DefaultMemberMetricsLimit; negative: none).
	MemberMetricsLimit int
}

// Server is the API's handler.
type Server struct {
	opts   Options
	log    *slog.Logger
	st     *store.Store
	mux    *http.ServeMux
	api    huma.API
	routes []string // "METHOD /path" of every route, for the OpenAPI test
	hosts  hostStatus
	stats  *stats.Stats     // the hosts' member statistics (in memory)
	health *health.Registry // probe assignments and member health (in memory)
	// reports bounds the statistics reports read and taken at once.
	reports chan struct{}
	metrics *metrics
	// closing ends when the server shuts down: long polls answer, streams
	// end (EndWatches).
	closing    context.Context
	endWatches context.CancelFunc
}

// EndWatches answers the long polls and ends the watch streams that are
// open, so that http.Server.Shutdown need not wait for them: give it to
// http.Server.RegisterOnShutdown.
func (s *Server) EndWatches() { s.endWatches() }

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 1 << 20

// New declares every route.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 10 * time.Minute
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = wire.StreamKeepAlive
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Version == "" {
		opts.Version = "1"
	}
	// huma builds its validation errors through this hook (a package
	// variable of huma's); every API in the process answers in one shape.
	huma.NewError = newError

	cfg := huma.DefaultConfig("dlb-controller", opts.Version)
	cfg.Info.Description = "Groups of servers (DCNs) behind virtual IPs, balanced by each hypervisor's dlb-agent."
	cfg.OpenAPIPath = "/openapi" // serves /openapi.json and /openapi.yaml
	cfg.DocsPath = ""            // the docs page loads scripts from a CDN
	cfg.CreateHooks = nil        // no $schema links in bodies: a GET's output is a valid PUT input
	s := &Server{opts: opts, log: opts.Log, st: opts.Store, mux: http.NewServeMux(), stats: stats.New()}
	s.closing, s.endWatches = context.WithCancel(context.Background())
	s.health = health.New(opts.Log)
	s.api = humago.New(s.mux, cfg)
	s.metrics = newMetrics(opts.Registry, opts.Store)
	if opts.MemberMetricsLimit == 0 {
		opts.MemberMetricsLimit = DefaultMemberMetricsLimit
	}
	opts.Registry.MustRegister(newStatsCollector(s.stats, opts.MemberMetricsLimit, opts.Log), newHealthCollector(s.health, opts.MemberMetricsLimit, opts.Log))
	s.api.UseMiddleware(s.metrics.middleware)
	s.reports = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	s.api.UseMiddleware(s.oneReportAtATime)
	s.groupRoutes()
	s.memberRoutes()
	s.hostRoutes()
	s.statsRoutes()
	s.watchRoutes()
	s.healthRoutes()
	if opts.Store != nil {
		go s.runHealth(s.closing)
	}
	s.plain("/healthz", "Liveness: the process serves", "ok", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	}))
	s.plain("/readyz", "Readiness: connected to ovsdb-server, and the view caught up (else 503)", "ok", http.HandlerFunc(s.readyz))
	s.plain("/metrics", "Prometheus metrics", "# HELP ...", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", s.noRoute)
	return s
}

// noRoute answers, in JSON, what matches no route: 405 with Allow when the
// path has routes for other methods, else 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := s.mux.Handler(r2); pattern != "/" {
			allow = append(allow, m)
		}
	}
	e := errorf(http.StatusNotFound, "no route %s %s (see /openapi.json)", r.Method, r.URL.Path)
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		e = errorf(http.StatusMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(e)
}

// plain serves a GET route outside huma (text, not JSON) and declares it in
// the OpenAPI document with the same call.
func (s *Server) plain(path, summary, example string, h http.Handler) {
	s.mux.Handle("GET "+path, h)
	s.routes = append(s.routes, "GET "+path)
	s.api.OpenAPI().AddOperation(&huma.Operation{
		OperationID: strings.Trim(path, "/"), Method: http.MethodGet, Path: path, Summary: summary,
		Responses: map[string]*huma.Response{"200": {Description: "OK", Content: map[string]*huma.MediaType{
			"text/plain": {Schema: &huma.Schema{Type: huma.TypeString, Examples: []any{example}}}}}},
	})
}

// Routes lists every route served, as "METHOD /path".
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// ServeHTTP serves the API. Bodies are JSON whatever they are labelled
// with when the label is curl's default (form) or missing.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Header.Get("Content-Type") {
	case "", "application/x-www-form-urlencoded":
		r.Header.Set("Content-Type", "application/json")
	}
	s.mux.ServeHTTP(w, r)
}

// readyz answers 200 once the store is connected and its view has caught
// up with what the monitor brought.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if !s.st.Connected() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not connected to ovsdb-server\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Sync(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// op declares an operation's common parts.
func (s *Server) op(id, method, path, summary string, status int) huma.Operation {
	s.routes = append(s.routes, method+" "+path)
	return huma.Operation{
		OperationID:   id,
		Method:        method,
		Path:          path,
		Summary:       summary,
		DefaultStatus: status,
		MaxBodyBytes:  s.opts.MaxBodyBytes,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}
}

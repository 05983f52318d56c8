package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ovs-dlb/dlb/controller/stats"
	"github.com/ovs-dlb/dlb/controller/view"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// maxStatsBody bounds a statistics report: 262,144 members of some 100
// bytes (a host with 10,000 groups of 10 members sends 100,000 in full).
const maxStatsBody = 32 << 20

// maxReportMembers bounds a report's entries.
const maxReportMembers = 262144

// maxCount bounds a reported counter: what JSON carries exactly (2^53).
const maxCount = 1 << 53

// maxActive bounds a host's reported active connections of a member: more
// than a switch's conntrack table holds (OVS's default is 3,000,000).
const maxActive = 1 << 32

type reportStatsInput struct {
	HostParam
	Body wire.StatsReport
}

type reportStatsOutput struct {
	Body wire.StatsAnswer
}

type groupStatsInput struct {
	NameParam
	History bool `query:"history" doc:"Also each member's totals every 2 s over the last five minutes"`
}

type groupStatsOutput struct {
	Body wire.GroupStats
}

// statsRoutes declares the member statistics (issue 17): hosts report
// their members' counters, admins read them per group.
func (s *Server) statsRoutes() {
	op := s.op("report-stats", http.MethodPost, "/v1/hosts/{name}/stats", "An agent's report of its members' counters (those that changed, or all)", http.StatusOK)
	op.MaxBodyBytes = maxStatsBody
	// Checked by checkReport: huma's schema validation decodes the body a
	// second time, into maps (a third of a 10,000-member report's cost).
	op.SkipValidateBody = true
	huma.Register(s.api, op, func(ctx context.Context, in *reportStatsInput) (*reportStatsOutput, error) {
		h, err := s.st.View().Host(nil, in.Name)
		if err != nil {
			return nil, fromStore(err)
		}
		if h == nil {
			return nil, errorf(http.StatusNotFound, "host %q: not registered (PUT /v1/hosts/%s first)", in.Name, in.Name)
		}
		if err := s.checkReport(in.Name, &in.Body); err != nil {
			return nil, err
		}
		now := time.Now()
		want := s.stats.Report(in.Name, in.Body, now)
		ans := wire.StatsAnswer{WantFull: want}
		groups, err := s.loadGroups(in.Name)
		if err != nil {
			return nil, err
		}
		ans.LoadsSeq, ans.LoadsFull, ans.Loads = s.stats.Loads(in.Body.LoadsSince, groups, now)
		return &reportStatsOutput{Body: ans}, nil
	})
	huma.Register(s.api, s.op("group-stats", http.MethodGet, "/v1/groups/{name}/stats", "A group's members' statistics, over every host", http.StatusOK),
		func(ctx context.Context, in *groupStatsInput) (*groupStatsOutput, error) {
			_, e, err := s.st.View().Group(nil, in.Name)
			if err != nil {
				return nil, fromStore(err)
			}
			if e == nil {
				return nil, errorf(http.StatusNotFound, "group %q: not found", in.Name)
			}
			refs := memberRefs(&e.Group)
			s.stats.Keep(in.Name, refs)
			now := time.Now()
			out := &groupStatsOutput{Body: s.stats.Group(in.Name, refs, now, in.History)}
			if e.Group.LeastConnections() {
				out.Body.Balancing = s.stats.Shares(in.Name, e.Group.MemberLabels(), now)
			}
			if e.Group.HealthCheck != nil {
				out.Body.Health = s.health.Group(e.Name)
			}
			return out, nil
		})
}

// loadGroups are the least-connections groups with a global view that
// concern a host, whose loads its reports are answered with.
func (s *Server) loadGroups(host string) ([]stats.LoadGroup, error) {
	entries, err := s.st.View().LoadGroups(nil, lb.LoadViewGlobal)
	if err != nil {
		return nil, fromStore(err)
	}
	out := make([]stats.LoadGroup, 0, len(entries))
	for _, e := range entries {
		if concerns(&e.Group, host) {
			out = append(out, &e.Group)
		}
	}
	return out, nil
}

// memberRefs are a group's (port, member) pairs as the hosts name them,
// port by port.
func memberRefs(g *lb.Group) []stats.MemberRef {
	labels := g.MemberLabels()
	refs := make([]stats.MemberRef, 0, len(g.Ports)*len(labels))
	for _, ps := range g.Ports {
		port := lb.PortLabel(ps)
		for _, m := range labels {
			refs = append(refs, stats.MemberRef{Port: port, Member: m})
		}
	}
	return refs
}

// checkReport checks a report against what the host may speak of: groups
// for it, their ports and members, each once, counts JSON carries. A
// report with a problem is refused whole (422, naming each entry at fault)
// and changes nothing.
func (s *Server) checkReport(host string, r *wire.StatsReport) error {
	e := &Error{status: http.StatusUnprocessableEntity, Message: "invalid statistics report"}
	if !(r.IntervalS >= 0.1 && r.IntervalS <= 3600) {
		e.Fields = append(e.Fields, FieldError{Path: "interval_s", Message: fmt.Sprintf("%g: want 0.1 to 3600 seconds", r.IntervalS)})
	}
	if len(r.Members) > maxReportMembers {
		e.Fields = append(e.Fields, FieldError{Path: "members", Message: fmt.Sprintf("%d entries: at most %d", len(r.Members), maxReportMembers)})
		return e
	}
	known := map[string]map[stats.MemberRef]bool{} // group → its members, nil for one not for this host
	seen := make(map[wire.MemberCount]bool, len(r.Members))
	for i, m := range r.Members {
		at := func(field string) string { return fmt.Sprintf("members[%d].%s", i, field) }
		refs, ok := known[m.Group]
		if !ok {
			_, g, err := s.st.View().Group(nil, m.Group)
			if err != nil {
				return fromStore(err)
			}
			refs = groupRefs(g, host)
			known[m.Group] = refs
		}
		key := wire.MemberCount{Group: m.Group, Port: m.Port, Member: m.Member}
		switch {
		case len(m.Group) > 63:
			e.Fields = append(e.Fields, FieldError{Path: at("group"), Message: "longer than 63 characters"})
		case len(m.Port) > 16:
			e.Fields = append(e.Fields, FieldError{Path: at("port"), Message: "longer than 16 characters"})
		case len(m.Member) > 64:
			e.Fields = append(e.Fields, FieldError{Path: at("member"), Message: "longer than 64 characters"})
		case refs == nil:
			e.Fields = append(e.Fields, FieldError{Path: at("group"), Message: fmt.Sprintf("%q is no group of host %q", m.Group, host)})
		case !refs[stats.MemberRef{Port: m.Port, Member: m.Member}]:
			e.Fields = append(e.Fields, FieldError{Path: at("member"), Message: fmt.Sprintf("%s on %s is not a member of group %q on that port", m.Member, m.Port, m.Group)})
		case seen[key]:
			e.Fields = append(e.Fields, FieldError{Path: at("member"), Message: fmt.Sprintf("%s on %s of group %q is reported twice", m.Member, m.Port, m.Group)})
		default:
			for _, f := range []struct {
				name     string
				v, bound uint64
			}{{"new_connections", m.NewConnections, maxCount}, {"packets_to_member", m.PacketsToMember, maxCount},
				{"bytes_to_member", m.BytesToMember, maxCount}, {"packets_from_member", m.PacketsFromMember, maxCount},
				{"bytes_from_member", m.BytesFromMember, maxCount}, {"active_connections", m.ActiveConnections, maxActive}} {
				if f.v > f.bound {
					e.Fields = append(e.Fields, FieldError{Path: at(f.name), Message: fmt.Sprintf("%d is more than %d", f.v, f.bound)})
				}
			}
		}
		seen[key] = true
		if len(e.Fields) >= 20 {
			break // enough to go on
		}
	}
	if len(e.Fields) < 20 {
		s.checkBalancing(host, r, e)
	}
	if len(e.Fields) > 0 {
		return e
	}
	return nil
}

// checkBalancing checks a report's shares: groups of the host that
// balance by least connections, each once; their members, each once;
// slots that a host's 256 hold.
func (s *Server) checkBalancing(host string, r *wire.StatsReport, e *Error) {
	if !(r.BalancedAt >= 0 && r.BalancedAt < 1e11) {
		e.Fields = append(e.Fields, FieldError{Path: "balanced_at", Message: fmt.Sprintf("%g is not a time (unix seconds)", r.BalancedAt)})
	}
	if len(r.Balancing) > maxReportMembers {
		e.Fields = append(e.Fields, FieldError{Path: "balancing", Message: fmt.Sprintf("%d entries: at most %d", len(r.Balancing), maxReportMembers)})
		return
	}
	seen := map[string]bool{}
	for i, b := range r.Balancing {
		at := func(field string) string { return fmt.Sprintf("balancing[%d].%s", i, field) }
		if len(e.Fields) >= 20 {
			return
		}
		if len(b.Group) > 63 {
			e.Fields = append(e.Fields, FieldError{Path: at("group"), Message: "longer than 63 characters"})
			continue
		}
		_, g, err := s.st.View().Group(nil, b.Group)
		switch {
		case err != nil:
			e.Fields = append(e.Fields, FieldError{Path: at("group"), Message: err.Error()})
			continue
		case g == nil || !concerns(&g.Group, host):
			e.Fields = append(e.Fields, FieldError{Path: at("group"), Message: fmt.Sprintf("%q is no group of host %q", b.Group, host)})
			continue
		case !g.Group.LeastConnections():
			e.Fields = append(e.Fields, FieldError{Path: at("group"), Message: fmt.Sprintf("group %q does not balance by least connections", b.Group)})
			continue
		case seen[b.Group]:
			e.Fields = append(e.Fields, FieldError{Path: at("group"), Message: fmt.Sprintf("group %q is reported twice", b.Group)})
			continue
		}
		seen[b.Group] = true
		switch b.View {
		case wire.ViewGlobal, wire.ViewLocal, wire.ViewWeights:
		default:
			e.Fields = append(e.Fields, FieldError{Path: at("view"), Message: fmt.Sprintf("%q: want global, local or weights", b.View)})
		}
		labels := g.Group.MemberLabels()
		if len(b.Members) > len(labels) {
			e.Fields = append(e.Fields, FieldError{Path: at("members"), Message: fmt.Sprintf("%d entries: the group has %d members", len(b.Members), len(labels))})
			continue
		}
		total, members := 0, map[string]bool{}
		for j, m := range b.Members {
			switch {
			case !slices.Contains(labels, m.Member):
				e.Fields = append(e.Fields, FieldError{Path: fmt.Sprintf("balancing[%d].members[%d].member", i, j), Message: fmt.Sprintf("%.64q is not a member of group %q", m.Member, b.Group)})
			case members[m.Member]:
				e.Fields = append(e.Fields, FieldError{Path: fmt.Sprintf("balancing[%d].members[%d].member", i, j), Message: fmt.Sprintf("%s is reported twice", m.Member)})
			case m.Slots < 0 || m.Slots > lb.MaxSlots:
				e.Fields = append(e.Fields, FieldError{Path: fmt.Sprintf("balancing[%d].members[%d].slots", i, j), Message: fmt.Sprintf("%d: want 0 to %d", m.Slots, lb.MaxSlots)})
			default:
				total += m.Slots
			}
			members[m.Member] = true
		}
		if total > lb.MaxSlots {
			e.Fields = append(e.Fields, FieldError{Path: at("members"), Message: fmt.Sprintf("%d slots: a host has %d", total, lb.MaxSlots)})
		}
	}
}

// groupRefs are the members a host may report of a group: nil when the
// group is gone or not for the host.
func groupRefs(g *view.GroupEntry, host string) map[stats.MemberRef]bool {
	if g == nil || !concerns(&g.Group, host) {
		return nil
	}
	refs := map[stats.MemberRef]bool{}
	for _, r := range memberRefs(&g.Group) {
		refs[r] = true
	}
	return refs
}

// oneReportAtATime lets as many statistics reports in at once as there
// are CPUs, the others wait before their body is read: a burst of 100
// hosts' reports of 10,000 members each would otherwise hold 100 decoded
// reports (some 5 MB each) at once.
func (s *Server) oneReportAtATime(ctx huma.Context, next func(huma.Context)) {
	if ctx.Operation().OperationID != "report-stats" {
		next(ctx)
		return
	}
	select {
	case s.reports <- struct{}{}:
	case <-ctx.Context().Done():
		return
	}
	defer func() { <-s.reports }()
	next(ctx)
}

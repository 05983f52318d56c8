package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/hashicorp/go-memdb"

	"github.com/ovs-dlb/dlb/controller/store"
	"github.com/ovs-dlb/dlb/controller/view"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Group and GroupList are the wire documents.
type (
	Group     = wire.Group
	GroupList = wire.GroupList
)

// Blocking is a read's blocking parameters (exported, as the other
// parameter sets, for huma to fill them in the inputs that embed them).
type Blocking struct {
	Index uint64 `query:"index" doc:"Answer only once something changed after this index (from X-Dlb-Index), or at the end of wait"`
	Wait  string `query:"wait" doc:"How long a Blocking read may wait, e.g. 30s (default 5m, at most 10m)" example:"30s"`
}

type listGroupsInput struct{ Blocking }

type listGroupsOutput struct {
	Index uint64 `header:"X-Dlb-Index"`
	Body  GroupList
}

// NameParam is the group named in the path.
type NameParam struct {
	Name string `path:"name" maxLength:"63" doc:"The group's name"`
}

// IfMatchHeader is a write's condition.
type IfMatchHeader struct {
	IfMatch string `header:"If-Match" doc:"The modify index the change is based on (an ETag): the write fails with 409 when the group is at another one"`
}

type getGroupInput struct {
	NameParam
	Blocking
}

type groupOutput struct {
	ETag  string `header:"ETag"`
	Index uint64 `header:"X-Dlb-Index"`
	Body  Group
}

type createGroupInput struct {
	Body Group
}

type putGroupInput struct {
	NameParam
	IfMatchHeader
	Body Group
}

type patchGroupInput struct {
	NameParam
	IfMatchHeader
	RawBody []byte `contentType:"application/merge-patch+json"`
}

type deleteGroupInput struct {
	NameParam
	IfMatchHeader
}

func (s *Server) groupRoutes() {
	huma.Register(s.api, s.op("list-groups", http.MethodGet, "/v1/groups", "List groups (a Blocking read with index and wait)", http.StatusOK),
		func(ctx context.Context, in *listGroupsInput) (*listGroupsOutput, error) {
			var list []*view.GroupEntry
			idx, err := s.block(ctx, in.Blocking, func(ws memdb.WatchSet) (uint64, error) {
				var idx uint64
				var err error
				idx, list, err = s.st.View().Groups(ws)
				return idx, err
			})
			if err != nil {
				return nil, err
			}
			out := &listGroupsOutput{Index: idx, Body: GroupList{Index: idx, Groups: make([]Group, 0, len(list))}}
			for _, e := range list {
				// The balance costs about 1 µs for 10 members (0.13 ms for
				// 256) here: the list is where groups out of the bound are
				// found.
				g := doc(e)
				g.Balance = balance(&e.Group)
				out.Body.Groups = append(out.Body.Groups, g)
			}
			return out, nil
		})
	huma.Register(s.api, s.op("get-group", http.MethodGet, "/v1/groups/{name}", "Get a group (a Blocking read with index and wait)", http.StatusOK),
		func(ctx context.Context, in *getGroupInput) (*groupOutput, error) {
			var e *view.GroupEntry
			idx, err := s.block(ctx, in.Blocking, func(ws memdb.WatchSet) (uint64, error) {
				var idx uint64
				var err error
				idx, e, err = s.st.View().Group(ws, in.Name)
				return idx, err
			})
			if err != nil {
				return nil, err
			}
			if e == nil {
				return nil, errorf(http.StatusNotFound, "group %q: not found", in.Name)
			}
			out := groupOut(e, idx)
			out.Body.Applied = s.applied(e)
			if e.Group.LeastConnections() {
				out.Body.Balancing = s.stats.LoadStatus(e.Name, time.Now())
			}
			if e.Group.HealthCheck != nil {
				out.Body.Health = s.health.Group(e.Name)
			}
			return out, nil
		})
	huma.Register(s.api, s.op("create-group", http.MethodPost, "/v1/groups", "Create a group", http.StatusCreated),
		func(ctx context.Context, in *createGroupInput) (*groupOutput, error) {
			g := in.Body.Group
			if g.Name == "" {
				return nil, fieldError(http.StatusUnprocessableEntity, "name", "required")
			}
			return s.write(ctx, store.GroupWrite{Name: g.Name, Change: func(cur *lb.Group) (*lb.Group, error) {
				if cur != nil {
					return nil, fmt.Errorf("group %q: %w (PUT replaces it)", g.Name, store.ErrExists)
				}
				return &g, nil
			}})
		})
	huma.Register(s.api, s.op("put-group", http.MethodPut, "/v1/groups/{name}", "Create or replace a group", http.StatusOK),
		func(ctx context.Context, in *putGroupInput) (*groupOutput, error) {
			g := in.Body.Group
			if g.Name == "" {
				g.Name = in.Name
			}
			if g.Name != in.Name {
				return nil, fieldError(http.StatusUnprocessableEntity, "name", "%q differs from the name in the path (%q)", g.Name, in.Name)
			}
			match, err := ifMatchIndex(in.IfMatch, in.Body.ModifyIndex)
			if err != nil {
				return nil, err
			}
			return s.write(ctx, store.GroupWrite{Name: in.Name, IfMatch: match, Change: func(*lb.Group) (*lb.Group, error) {
				return &g, nil
			}})
		})
	huma.Register(s.api, s.op("patch-group", http.MethodPatch, "/v1/groups/{name}", "Change a group with a JSON merge patch (RFC 7386)", http.StatusOK),
		func(ctx context.Context, in *patchGroupInput) (*groupOutput, error) {
			var patch map[string]any
			if err := decodeStrict(in.RawBody, &patch); err != nil {
				return nil, err
			}
			var bodyIndex uint64
			if v, ok := patch["modify_index"]; ok {
				f, ok := v.(float64)
				if !ok || f < 0 || f != float64(uint64(f)) {
					return nil, fieldError(http.StatusUnprocessableEntity, "modify_index", "want an index (a whole number)")
				}
				bodyIndex = uint64(f)
			}
			delete(patch, "modify_index")
			// The fields the controller sets are ignored in a patch as in
			// a PUT body, so that a GET's answer can be sent back whole.
			for _, k := range []string{"create_index", "applied", "balance"} {
				delete(patch, k)
			}
			match, err := ifMatchIndex(in.IfMatch, bodyIndex)
			if err != nil {
				return nil, err
			}
			return s.write(ctx, store.GroupWrite{Name: in.Name, IfMatch: match, Change: func(cur *lb.Group) (*lb.Group, error) {
				if cur == nil {
					return nil, fmt.Errorf("group %q: %w", in.Name, store.ErrNotFound)
				}
				return applyMergePatch(*cur, patch)
			}})
		})
	huma.Register(s.api, s.op("delete-group", http.MethodDelete, "/v1/groups/{name}", "Delete a group", http.StatusNoContent),
		func(ctx context.Context, in *deleteGroupInput) (*struct{}, error) {
			match, err := ifMatchIndex(in.IfMatch, 0)
			if err != nil {
				return nil, err
			}
			if _, err := s.write(ctx, store.GroupWrite{Name: in.Name, IfMatch: match, Change: func(*lb.Group) (*lb.Group, error) {
				return nil, nil
			}}); err != nil {
				return nil, err
			}
			s.stats.Keep(in.Name, nil) // its members' statistics go with it
			return nil, nil
		})
}

// write runs a group write and answers with the group as stored.
func (s *Server) write(ctx context.Context, w store.GroupWrite) (*groupOutput, error) {
	e, idx, err := s.st.WriteGroup(ctx, w)
	if err != nil {
		return nil, fromStore(err)
	}
	if e == nil {
		return nil, nil
	}
	return groupOut(e, idx), nil
}

// block runs a read, Blocking it when the request carries an index.
func (s *Server) block(ctx context.Context, b Blocking, query view.Query) (uint64, error) {
	if b.Index == 0 && b.Wait == "" {
		return query(nil)
	}
	wait := 5 * time.Minute
	if b.Wait != "" {
		d, err := time.ParseDuration(b.Wait)
		if err != nil || d < 0 {
			return 0, fieldError(http.StatusBadRequest, "query.wait", "%q is not a duration (e.g. 30s)", b.Wait)
		}
		wait = d
	}
	wait = min(wait, s.opts.MaxWait)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	return s.st.View().Block(ctx, b.Index, query)
}

// doc is the group document as stored, without the fields computed for
// people (the watch sends it so: agents count their own slots).
func doc(e *view.GroupEntry) Group {
	return Group{Group: e.Group.Clone(), CreateIndex: e.CreateIndex, ModifyIndex: e.ModifyIndex}
}

// groupOut answers with a group: a GET's, and a write's, so that whoever
// adds the member too many sees it in the answer.
func groupOut(e *view.GroupEntry, idx uint64) *groupOutput {
	out := &groupOutput{ETag: strconv.Quote(strconv.FormatUint(e.ModifyIndex, 10)), Index: idx, Body: doc(e)}
	out.Body.Balance = balance(&e.Group)
	return out
}

// balance is the split a host installing the group from nothing deals
// (lb.GroupBalance), in the document's units: percentage points, the worst
// member by name. A host that has the group installed keeps its slot
// count while that count is within the bound (so that a change moves
// fewer hashes), so it may deal more slots than this.
func balance(g *lb.Group) *wire.Balance {
	w := lb.ActiveWeights(g)
	b := &wire.Balance{WithinBound: true}
	first, equal := 0, true
	for _, x := range w {
		if x <= 0 {
			continue
		}
		if b.ActiveMembers == 0 {
			first = x
		}
		equal = equal && x == first
		b.ActiveMembers++
	}
	if b.ActiveMembers == 0 {
		// Nothing to split: no slot is installed and new connections
		// are refused, which the member counts already say.
		return b
	}
	bal := lb.GroupBalance(g)
	b.Slots = bal.Slots
	b.WorstShareErrorPP = round6(100 * bal.WorstError)
	if bal.WorstMember >= 0 && b.WorstShareErrorPP > 0 {
		// With every share exact no member is worse than another.
		b.WorstMember = memberName(g.Members[bal.WorstMember])
	}
	if equal {
		// lb reports 1 for unequal weights, where the ratio means
		// nothing: the field is left out then.
		b.MaxOverMean = round6(bal.MaxOverMean)
	}
	b.WithinBound = bal.Within
	return b
}

// round6 drops the float noise of the arithmetic (0.23437500000000056)
// and keeps six decimals, as many as a share of k/256 slots in points
// has (1/256 is 0.390625 points).
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// ifMatchIndex reads If-Match ("12", 12 or W/"12"), or else the body's
// modify_index; 0 means unconditional.
func ifMatchIndex(header string, body uint64) (uint64, error) {
	h := strings.TrimSpace(header)
	if h == "" {
		return body, nil
	}
	h = strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	n, err := strconv.ParseUint(h, 10, 64)
	if err != nil || n == 0 {
		return 0, fieldError(http.StatusBadRequest, "header.If-Match", "%q: want the modify index the change is based on, e.g. \"12\"", header)
	}
	if body != 0 && body != n {
		return 0, fieldError(http.StatusBadRequest, "modify_index", "%d differs from If-Match %d", body, n)
	}
	return n, nil
}

// decodeStrict decodes one JSON value, refusing unknown fields and
// trailing data, with the field at fault named.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fieldError(http.StatusBadRequest, "body", "empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldError(http.StatusBadRequest, "body", "data after the JSON value")
	}
	return nil
}

// jsonError names the field of a JSON decoding error.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		path := te.Field
		if path == "" {
			path = "body"
		}
		return fieldError(http.StatusUnprocessableEntity, path, "want %s, not a JSON %s", te.Type, te.Value)
	case errors.As(err, &se):
		return fieldError(http.StatusBadRequest, "body", "malformed JSON at byte %d: %v", se.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError(http.StatusUnprocessableEntity, field, "unknown field")
	}
	return fieldError(http.StatusBadRequest, "body", "%v", err)
}

// applyMergePatch applies an RFC 7386 merge patch to a group.
func applyMergePatch(g lb.Group, patch map[string]any) (*lb.Group, error) {
	data, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	var target map[string]any
	if err := json.Unmarshal(data, &target); err != nil {
		return nil, err
	}
	merged, err := json.Marshal(mergePatch(target, patch))
	if err != nil {
		return nil, err
	}
	var next lb.Group
	if err := decodeStrict(merged, &next); err != nil {
		return nil, err
	}
	if next.Name != g.Name {
		return nil, fieldError(http.StatusUnprocessableEntity, "name", "a group cannot be renamed (create the new one, delete the old)")
	}
	return &next, nil
}

func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

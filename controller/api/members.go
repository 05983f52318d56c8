package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ovs-dlb/dlb/controller/store"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// MemberParam is the member named in the path.
type MemberParam struct {
	Member string `path:"member" doc:"The member: IP, or IP:PORT for a member with its own port ([IPv6]:PORT)" example:"10.0.0.11"`
}

type addMemberInput struct {
	NameParam
	IfMatchHeader
	Body lb.Member
}

// MemberChange is the wire document of a member PATCH.
type MemberChange = wire.MemberChange

type patchMemberInput struct {
	NameParam
	MemberParam
	IfMatchHeader
	Body MemberChange
}

type removeMemberInput struct {
	NameParam
	MemberParam
	IfMatchHeader
}

func (s *Server) memberRoutes() {
	huma.Register(s.api, s.op("add-member", http.MethodPost, "/v1/groups/{name}/members", "Add a member to a group", http.StatusCreated),
		func(ctx context.Context, in *addMemberInput) (*groupOutput, error) {
			m := in.Body
			return s.memberWrite(ctx, in.Name, in.IfMatch, func(g *lb.Group) (int, error) {
				for i, old := range g.Members {
					if sameMember(old, m.IP, m.Port) {
						return 0, fmt.Errorf("group %q: member %s is members[%d]: %w", g.Name, memberName(old), i, store.ErrExists)
					}
				}
				g.Members = append(g.Members, m)
				return len(g.Members) - 1, nil
			})
		})
	huma.Register(s.api, s.op("patch-member", http.MethodPatch, "/v1/groups/{name}/members/{member}", "Change a member's weight or state", http.StatusOK),
		func(ctx context.Context, in *patchMemberInput) (*groupOutput, error) {
			if in.Body.Weight == nil && in.Body.State == nil {
				return nil, fieldError(http.StatusUnprocessableEntity, "body", "nothing to change: give weight or state")
			}
			return s.memberWrite(ctx, in.Name, in.IfMatch, func(g *lb.Group) (int, error) {
				i, err := findMember(g, in.Member)
				if err != nil {
					return 0, err
				}
				if in.Body.Weight != nil {
					w := *in.Body.Weight
					g.Members[i].Weight = &w
				}
				if in.Body.State != nil {
					g.Members[i].State = *in.Body.State
				}
				return i, nil
			})
		})
	huma.Register(s.api, s.op("remove-member", http.MethodDelete, "/v1/groups/{name}/members/{member}", "Remove a member from a group", http.StatusOK),
		func(ctx context.Context, in *removeMemberInput) (*groupOutput, error) {
			return s.memberWrite(ctx, in.Name, in.IfMatch, func(g *lb.Group) (int, error) {
				i, err := findMember(g, in.Member)
				if err != nil {
					return 0, err
				}
				g.Members = append(g.Members[:i], g.Members[i+1:]...)
				return -1, nil
			})
		})
}

// memberWrite changes one member of a group; change returns the member's
// index, so that problems with it are reported at its own fields
// ("weight", not "members[3].weight").
func (s *Server) memberWrite(ctx context.Context, name, header string, change func(*lb.Group) (int, error)) (*groupOutput, error) {
	match, err := ifMatchIndex(header, 0)
	if err != nil {
		return nil, err
	}
	at := -1
	out, err := s.write(ctx, store.GroupWrite{Name: name, IfMatch: match, Change: func(cur *lb.Group) (*lb.Group, error) {
		if cur == nil {
			return nil, fmt.Errorf("group %q: %w", name, store.ErrNotFound)
		}
		i, err := change(cur)
		at = i
		return cur, err
	}})
	var e *Error
	if errors.As(err, &e) && at >= 0 {
		prefix := fmt.Sprintf("members[%d]", at)
		for i, f := range e.Fields {
			if rest, ok := strings.CutPrefix(f.Path, prefix); ok {
				e.Fields[i].Path = strings.TrimPrefix(rest, ".")
				if e.Fields[i].Path == "" {
					e.Fields[i].Path = "body"
				}
			}
		}
	}
	return out, err
}

// findMember finds the member a path names: IP, IP:PORT or [IPv6]:PORT.
// A bare IP names the member with that address when there is one only.
func findMember(g *lb.Group, spec string) (int, error) {
	ip, port, err := parseMember(spec)
	if err != nil {
		return 0, err
	}
	found := -1
	for i, m := range g.Members {
		a, err := netip.ParseAddr(m.IP)
		if err != nil || a.Unmap() != ip || (port != 0 && m.Port != port) {
			continue
		}
		if port == 0 && found >= 0 {
			return 0, fieldError(http.StatusUnprocessableEntity, "path.member", "%s names members[%d] and members[%d]: give the port too (IP:PORT)", spec, found, i)
		}
		found = i
	}
	if found < 0 {
		return 0, &Error{status: http.StatusNotFound, Message: fmt.Sprintf("group %q has no member %s", g.Name, spec),
			Fields: []FieldError{{Path: "path.member", Message: "not a member of the group"}}}
	}
	return found, nil
}

// parseMember reads IP, IP:PORT or [IPv6]:PORT.
func parseMember(spec string) (netip.Addr, int, error) {
	bad := func() (netip.Addr, int, error) {
		return netip.Addr{}, 0, fieldError(http.StatusBadRequest, "path.member", "%q: want IP, IP:PORT or [IPv6]:PORT", spec)
	}
	if ip, err := netip.ParseAddr(spec); err == nil && ip.Zone() == "" {
		return ip.Unmap(), 0, nil
	}
	ap, err := netip.ParseAddrPort(spec)
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return bad()
	}
	if _, err := strconv.Atoi(spec[strings.LastIndexByte(spec, ':')+1:]); err != nil {
		return bad()
	}
	return ap.Addr().Unmap(), int(ap.Port()), nil
}

func sameMember(m lb.Member, ip string, port int) bool {
	a, errA := netip.ParseAddr(m.IP)
	b, errB := netip.ParseAddr(ip)
	if errA != nil || errB != nil {
		return m.IP == ip && m.Port == port
	}
	return a.Unmap() == b.Unmap() && m.Port == port
}

func memberName(m lb.Member) string {
	if m.Port == 0 {
		return m.IP
	}
	a, err := netip.ParseAddr(m.IP)
	if err != nil {
		return m.IP + ":" + strconv.Itoa(m.Port)
	}
	return netip.AddrPortFrom(a, uint16(m.Port)).String()
}

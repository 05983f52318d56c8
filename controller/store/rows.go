// Package store keeps the controller's groups in the DLB database of an
// ovsdb-server (controller/dlbdb) and feeds the in-process view
// (controller/view). This file maps the lb model to rows and back.
//
// It owns: the mapping between documents and rows, and the transactions.
// It must not touch: HTTP, or any switch.
package store

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovs-dlb/dlb/controller/dlbdb"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Rows is one group as rows: the Group row refers to its VIP_Port and
// Member rows by the named UUIDs they carry (for an insert in one
// transaction).
type Rows struct {
	Group   dlbdb.Group
	Ports   []dlbdb.VIPPort
	Members []dlbdb.Member
	// HealthCheck is the group's Health_Check row, nil for none.
	HealthCheck *dlbdb.HealthCheck
}

// ToRows maps a valid group to rows with named UUIDs.
func ToRows(g lb.Group) Rows {
	r := Rows{Group: dlbdb.Group{UUID: "group", Name: g.Name, Vip: g.VIP, Mode: dlbdb.GroupModeDNAT}}
	if g.Mode == lb.ModeDSR {
		r.Group.Mode = dlbdb.GroupModeDsr
	}
	if g.Affinity != nil {
		t := g.Affinity.ClientIPTimeoutS
		r.Group.AffinityTimeout = &t
	}
	if g.LeastConnections() {
		a := dlbdb.GroupAlgorithmLeastConnections
		r.Group.Algorithm = &a
		if g.LoadView == lb.LoadViewLocal {
			v := dlbdb.GroupLoadViewLocal
			r.Group.LoadView = &v
		}
	}
	if s := g.Scope; s != nil {
		r.Group.ScopeIfaceIDs = slices.Clone(s.IfaceIDs)
		r.Group.ScopeHosts = slices.Clone(s.Hosts)
		if len(s.Labels) > 0 {
			r.Group.ScopeLabels = make(map[string]string, len(s.Labels))
			for k, v := range s.Labels {
				r.Group.ScopeLabels[k] = v
			}
		}
	}
	for i, p := range g.Ports {
		id := "port" + strconv.Itoa(i)
		r.Ports = append(r.Ports, dlbdb.VIPPort{UUID: id, Protocol: strings.ToLower(p.Protocol), Port: p.Port, TargetPort: p.TargetPort})
		r.Group.Ports = append(r.Group.Ports, id)
	}
	for i, m := range g.Members {
		id := "member" + strconv.Itoa(i)
		row := dlbdb.Member{UUID: id, IP: m.IP, Port: m.Port, Weight: m.WeightOf(), State: m.StateOf(), HealthCheckPort: m.HealthCheckPort}
		if m.MAC != "" {
			mac := m.MAC
			row.MAC = &mac
		}
		r.Members = append(r.Members, row)
		r.Group.Members = append(r.Group.Members, id)
	}
	if hc := g.HealthCheck; hc != nil {
		r.HealthCheck = healthCheckRow(hc)
		id := r.HealthCheck.UUID
		r.Group.HealthCheck = &id
	}
	return r
}

// healthCheckRow is a valid health check as a Health_Check row: durations
// in milliseconds (validation takes whole ones only), fields left out as
// empty sets.
func healthCheckRow(hc *lb.HealthCheck) *dlbdb.HealthCheck {
	row := &dlbdb.HealthCheck{UUID: "health", Type: hc.Type, Port: hc.Port, UDPSilenceOk: hc.UDPSilenceOK}
	ms := func(s string) *int {
		if s == "" {
			return nil
		}
		d, _ := time.ParseDuration(s)
		v := int(d / time.Millisecond)
		return &v
	}
	opt := func(v int) *int {
		if v == 0 {
			return nil
		}
		return &v
	}
	text := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	row.IntervalMs, row.TimeoutMs, row.FlapWindowMs, row.HoldMs = ms(hc.Interval), ms(hc.Timeout), ms(hc.FlapWindow), ms(hc.Hold)
	row.FastIntervalMs = ms(hc.FastInterval)
	row.Rise, row.Fall, row.FlapChanges = opt(hc.Rise), opt(hc.Fall), opt(hc.FlapChanges)
	row.Path, row.Host, row.Expect, row.Payload = text(hc.Path), text(hc.Host), text(hc.Expect), text(hc.Payload)
	return row
}

// healthCheckOf is a Health_Check row as the document's health check:
// durations as Go writes them ("1s", "1.5s", "500ms").
func healthCheckOf(row *dlbdb.HealthCheck) *lb.HealthCheck {
	hc := &lb.HealthCheck{Type: row.Type, Port: row.Port, UDPSilenceOK: row.UDPSilenceOk}
	dur := func(ms *int) string {
		if ms == nil {
			return ""
		}
		return (time.Duration(*ms) * time.Millisecond).String()
	}
	val := func(v *int) int {
		if v == nil {
			return 0
		}
		return *v
	}
	text := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	hc.Interval, hc.Timeout, hc.FlapWindow, hc.Hold = dur(row.IntervalMs), dur(row.TimeoutMs), dur(row.FlapWindowMs), dur(row.HoldMs)
	hc.FastInterval = dur(row.FastIntervalMs)
	hc.Rise, hc.Fall, hc.FlapChanges = val(row.Rise), val(row.Fall), val(row.FlapChanges)
	hc.Path, hc.Host, hc.Expect, hc.Payload = text(row.Path), text(row.Host), text(row.Expect), text(row.Payload)
	return hc
}

// FromRows maps rows back to a group. OVSDB sets have no order, so ports
// come back sorted by protocol and port, and members by address and port;
// weights and states come back explicit.
func FromRows(r Rows) lb.Group {
	g := lb.Group{Name: r.Group.Name, VIP: r.Group.Vip, Ports: []lb.PortSpec{}, Members: []lb.Member{}}
	if r.Group.Mode == dlbdb.GroupModeDsr {
		g.Mode = lb.ModeDSR
	}
	if t := r.Group.AffinityTimeout; t != nil {
		g.Affinity = &lb.Affinity{ClientIPTimeoutS: *t}
	}
	if a := r.Group.Algorithm; a != nil && *a == dlbdb.GroupAlgorithmLeastConnections {
		g.Algorithm = lb.AlgorithmLeastConnections
		if v := r.Group.LoadView; v != nil && *v == dlbdb.GroupLoadViewLocal {
			g.LoadView = lb.LoadViewLocal
		}
	}
	if len(r.Group.ScopeIfaceIDs)+len(r.Group.ScopeLabels)+len(r.Group.ScopeHosts) > 0 {
		g.Scope = &lb.Scope{IfaceIDs: slices.Sorted(slices.Values(r.Group.ScopeIfaceIDs)), Hosts: slices.Sorted(slices.Values(r.Group.ScopeHosts))}
		if len(r.Group.ScopeLabels) > 0 {
			g.Scope.Labels = map[string]string{}
			for k, v := range r.Group.ScopeLabels {
				g.Scope.Labels[k] = v
			}
		}
	}
	if r.HealthCheck != nil {
		g.HealthCheck = healthCheckOf(r.HealthCheck)
	}
	for _, p := range r.Ports {
		g.Ports = append(g.Ports, lb.PortSpec{Protocol: p.Protocol, Port: p.Port, TargetPort: p.TargetPort})
	}
	slices.SortFunc(g.Ports, func(a, b lb.PortSpec) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
	})
	for _, m := range r.Members {
		w := m.Weight
		mem := lb.Member{IP: m.IP, Port: m.Port, Weight: &w, State: m.State, HealthCheckPort: m.HealthCheckPort}
		if m.MAC != nil {
			mem.MAC = *m.MAC
		}
		g.Members = append(g.Members, mem)
	}
	slices.SortFunc(g.Members, func(a, b lb.Member) int {
		return cmp.Or(compareAddrs(a.IP, b.IP), cmp.Compare(a.Port, b.Port))
	})
	return g
}

// compareAddrs orders addresses numerically (text that is not one sorts
// as text, after them).
func compareAddrs(a, b string) int {
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	switch {
	case errA != nil && errB != nil:
		return cmp.Compare(a, b)
	case errA != nil:
		return 1
	case errB != nil:
		return -1
	}
	return x.Compare(y)
}

// portValue encodes a VM port as a Host row's ports value, readable in
// ovsdb-client dump: "iface_id=vm1 mac=02:00:0a:00:00:01 ips=10.0.0.1,fd00::1".
func portValue(p wire.HostPort) string {
	var parts []string
	if p.IfaceID != "" {
		parts = append(parts, "iface_id="+p.IfaceID)
	}
	if p.MAC != "" {
		parts = append(parts, "mac="+p.MAC)
	}
	if len(p.IPs) > 0 {
		parts = append(parts, "ips="+strings.Join(p.IPs, ","))
	}
	return strings.Join(parts, " ")
}

// hostPorts decodes a Host row's ports, sorted by name.
func hostPorts(m map[string]string) []wire.HostPort {
	out := make([]wire.HostPort, 0, len(m))
	for name, v := range m {
		p := wire.HostPort{Name: name}
		for _, f := range strings.Fields(v) {
			k, val, _ := strings.Cut(f, "=")
			switch k {
			case "iface_id":
				p.IfaceID = val
			case "mac":
				p.MAC = val
			case "ips":
				p.IPs = strings.Split(val, ",")
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b wire.HostPort) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// HostRow maps a registration to a Host row.
func HostRow(name string, reg wire.HostRegistration) dlbdb.Host {
	h := dlbdb.Host{UUID: "host", Name: name, Version: reg.Version, Ports: map[string]string{}}
	if reg.Address != "" {
		a := reg.Address
		h.Address = &a
	}
	for _, p := range reg.Ports {
		h.Ports[p.Name] = portValue(p)
	}
	return h
}

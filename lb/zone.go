package lb

import (
	"hash/fnv"
	"sort"
	"strings"
)

// DefaultZone is the default conntrack zone of a host's DLB connections.
const DefaultZone = 0xdb00

// ScopeZones is how many conntrack zones, after the base zone and the
// hairpin zone (base+1), scoped groups are spread over.
const ScopeZones = 4096

// Key identifies a scope, so that groups in different scopes may share a
// VIP:port; "" for no scope (nil, or one that selects every VM port).
func (s *Scope) Key() string {
	if s == nil {
		return ""
	}
	if len(s.IfaceIDs) == 0 && len(s.Labels) == 0 {
		return ""
	}
	ids := append([]string(nil), s.IfaceIDs...)
	sort.Strings(ids)
	var labels []string
	for k, v := range s.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	return strings.Join(ids, ",") + "|" + strings.Join(labels, ",")
}

// ZoneOf is the conntrack zone of a group's connections on a host whose
// DLB zone is base: base for a group without scope, else one of the
// ScopeZones zones after the hairpin zone, by a hash of the scope, so
// that groups of different scopes (tenants) may use the same VIP:port
// without seeing each other's entries. It depends on the scope alone, so
// it never moves while the scope stays.
func ZoneOf(base uint16, s *Scope) uint16 {
	k := s.Key()
	if k == "" {
		return base
	}
	h := fnv.New32a()
	h.Write([]byte(k))
	return base + 2 + uint16(h.Sum32()%ScopeZones)
}

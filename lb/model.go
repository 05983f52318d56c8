package lb

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Group is a DCN group: a virtual IP in front of member servers. It is the
// document the agent's file, the REST API and dlbctl all take.
type Group struct {
	Name     string     `json:"name" yaml:"name"`
	VIP      string     `json:"vip" yaml:"vip"`
	Ports    []PortSpec `json:"ports" yaml:"ports"`
	Members  []Member   `json:"members" yaml:"members" required:"false"`
	Affinity *Affinity  `json:"affinity,omitempty" yaml:"affinity,omitempty"`
	Mode     string     `json:"mode,omitempty" yaml:"mode,omitempty"`
	Scope    *Scope     `json:"scope,omitempty" yaml:"scope,omitempty"`
	// Algorithm is how new connections are shared: weighted (the
	// default: by the members' weights) or least-connections (the weights
	// are capacities, and each host moves its shares so that the members'
	// active connections follow them: docs/architecture.md).
	Algorithm string `json:"algorithm,omitempty" yaml:"algorithm,omitempty"`
	// LoadView is whose connections least-connections counts: global (the
	// default: every host's, from the controller) or local (the host's
	// own). Only with least-connections.
	LoadView string `json:"load_view,omitempty" yaml:"load_view,omitempty"`
	// HealthCheck, when set, probes every member; those that fail take no
	// new connections (lb/health.go).
	HealthCheck *HealthCheck `json:"health_check,omitempty" yaml:"health_check,omitempty"`
}

// PortSpec is one port of the VIP.
type PortSpec struct {
	Protocol string `json:"protocol" yaml:"protocol"`
	Port     int    `json:"port" yaml:"port"`
	// TargetPort is the members' port; 0 means the same as Port.
	TargetPort int `json:"target_port,omitempty" yaml:"target_port,omitempty"`
}

// Member is one DCN.
type Member struct {
	IP string `json:"ip" yaml:"ip"`
	// Port, when set, overrides every PortSpec's target port for this member.
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// Weight is 1..65535; nil means DefaultWeight.
	Weight *int `json:"weight,omitempty" yaml:"weight,omitempty"`
	// State is active (default), draining or disabled.
	State string `json:"state,omitempty" yaml:"state,omitempty"`
	// MAC is the member's MAC address, when the agent should not look it up.
	MAC string `json:"mac,omitempty" yaml:"mac,omitempty"`
	// HealthCheckPort, when set, is the port the group's health check
	// probes on this member.
	HealthCheckPort int `json:"health_check_port,omitempty" yaml:"health_check_port,omitempty"`
}

// Affinity keeps a client on one member.
type Affinity struct {
	ClientIPTimeoutS int `json:"client_ip_timeout_s" yaml:"client_ip_timeout_s"`
}

// Scope selects the VM ports a group applies to. Empty means every VM port
// of the bridge.
type Scope struct {
	// IfaceIDs lists VM ports by external_ids:iface-id.
	IfaceIDs []string `json:"iface_ids,omitempty" yaml:"iface_ids,omitempty"`
	// Labels selects VM ports whose external_ids have all these pairs.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Hosts limits the group to these hosts (used by the controller).
	Hosts []string `json:"hosts,omitempty" yaml:"hosts,omitempty"`
}

// Member states.
const (
	StateActive   = "active"
	StateDraining = "draining"
	StateDisabled = "disabled"
)

// Modes.
const (
	ModeDNAT = "dnat"
	ModeDSR  = "dsr"
)

// Algorithms.
const (
	AlgorithmWeighted         = "weighted"
	AlgorithmLeastConnections = "least-connections"
)

// Load views of least-connections.
const (
	LoadViewGlobal = "global"
	LoadViewLocal  = "local"
)

// DefaultWeight is a member's weight when none is given.
const DefaultWeight = 100

// MaxAffinityTimeout is the longest client_ip_timeout_s (a day, as
// Kubernetes allows).
const MaxAffinityTimeout = 86400

// WeightOf returns the member's weight, DefaultWeight when unset.
func (m Member) WeightOf() int {
	if m.Weight == nil {
		return DefaultWeight
	}
	return *m.Weight
}

// StateOf returns the member's state, active when unset.
func (m Member) StateOf() string {
	if m.State == "" {
		return StateActive
	}
	return m.State
}

// AlgorithmOf is the group's algorithm, weighted when unset.
func (g *Group) AlgorithmOf() string {
	if g.Algorithm == "" {
		return AlgorithmWeighted
	}
	return g.Algorithm
}

// LeastConnections reports whether the group balances by least
// connections.
func (g *Group) LeastConnections() bool { return g.Algorithm == AlgorithmLeastConnections }

// LoadViewOf is the group's load view: global when unset, "" for a group
// that does not balance by least connections.
func (g *Group) LoadViewOf() string {
	switch {
	case !g.LeastConnections():
		return ""
	case g.LoadView == "":
		return LoadViewGlobal
	}
	return g.LoadView
}

// Problem is one thing wrong with a document, at a field path.
type Problem struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// ValidationError lists every problem of a document.
type ValidationError struct {
	Problems []Problem `json:"problems"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid: " + strings.Join(parts, "; ")
}

type checker struct{ problems []Problem }

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: c.problems}
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// Validate checks one group; paths are relative to the group ("vip",
// "members[2].ip").
func (g *Group) Validate() error {
	var c checker
	g.check(&c, "")
	return c.err()
}

// ValidateAll checks a set of groups, each on its own and together (names
// and VIP+protocol+port in the same scope must be unique). Paths start
// with "groups[i]".
func ValidateAll(groups []Group) error { return validateGroups(groups, nil) }

// validateGroups is ValidateAll, skipping the checks of each group on its
// own for those known (by fingerprint) to be valid already.
func validateGroups(groups []Group, known func(i int) bool) error {
	var c checker
	crossCheck(&c, len(groups), func(i int) (*Group, netip.Addr) {
		if known == nil || !known(i) {
			groups[i].check(&c, fmt.Sprintf("groups[%d]", i))
		}
		vip, _ := netip.ParseAddr(groups[i].VIP)
		return &groups[i], vip
	})
	return c.err()
}

// crossCheck adds the problems of n groups taken together: names, and
// VIP+protocol+port within a scope (and the scopes' conntrack zones), are
// unique. group returns the i-th group and its parsed VIP (invalid when
// the VIP is not an address: that group's own check reports it); it may
// check the group on its own first, so that each group's problems come
// together.
func crossCheck(c *checker, n int, group func(i int) (*Group, netip.Addr)) {
	var x setIndex
	x.check(c, n, group)
}

// setIndex is what crossCheck indexes a set by; a SetChecker keeps one
// between sets.
type setIndex struct {
	names map[string]int
	used  map[portKey]string
	zones map[zoneKey]string
}

type portKey struct {
	vip   netip.Addr
	proto string
	port  int
	scope string
}

type zoneKey struct {
	vip   netip.Addr
	proto string
	port  int
	zone  uint16
}

// check is crossCheck over x's maps, emptied first (their room kept).
func (x *setIndex) check(c *checker, n int, group func(i int) (*Group, netip.Addr)) {
	if x.names == nil {
		x.names, x.used, x.zones = make(map[string]int, n), make(map[portKey]string, n), map[zoneKey]string{}
	} else {
		clear(x.names)
		clear(x.used)
		clear(x.zones)
	}
	names, used, zones := x.names, x.used, x.zones
	for i := 0; i < n; i++ {
		g, vip := group(i)
		p := func() string { return fmt.Sprintf("groups[%d]", i) }
		if j, ok := names[g.Name]; ok && g.Name != "" {
			c.add(join(p(), "name"), "%q is already the name of groups[%d]", g.Name, j)
		}
		names[g.Name] = i
		if !vip.IsValid() {
			continue
		}
		scope := g.Scope.Key()
		for k, ps := range g.Ports {
			kk := portKey{vip.Unmap(), strings.ToLower(ps.Protocol), ps.Port, scope}
			if other, ok := used[kk]; ok {
				c.add(fmt.Sprintf("%s.ports[%d]", p(), k), "%s %s:%d is already served by group %q", ps.Protocol, g.VIP, ps.Port, other)
				continue
			}
			used[kk] = g.Name
			// Two scopes sharing a VIP:port must not share a zone (groups
			// without scope all use the base zone, and the check above
			// already keeps their VIP:ports apart).
			if scope != "" {
				zk := zoneKey{vip.Unmap(), strings.ToLower(ps.Protocol), ps.Port, ZoneOf(0, g.Scope)}
				if other, ok := zones[zk]; ok {
					c.add(join(p(), "scope"), "hashes to the conntrack zone of group %q's scope, which serves %s %s:%d too: change either scope (add a label, say)", other, ps.Protocol, g.VIP, ps.Port)
				}
				zones[zk] = g.Name
			}
		}
	}
}

func (g *Group) check(c *checker, p string) {
	if g.Name == "" {
		c.add(join(p, "name"), "required")
	} else if !validName(g.Name) {
		c.add(join(p, "name"), "%q: use 1..63 letters, digits, '-', '_' or '.', starting with a letter or digit", g.Name)
	}
	vip, err := netip.ParseAddr(g.VIP)
	switch {
	case g.VIP == "":
		c.add(join(p, "vip"), "required")
	case err != nil || vip.Zone() != "":
		c.add(join(p, "vip"), "%q is not an IP address", g.VIP)
	case vip.IsUnspecified() || vip.IsMulticast() || vip.IsLoopback():
		c.add(join(p, "vip"), "%s cannot be a virtual IP (unspecified, multicast or loopback)", g.VIP)
	}
	if len(g.Ports) == 0 {
		c.add(join(p, "ports"), "at least one port is required")
	}
	seenPort := map[string]int{}
	for i, ps := range g.Ports {
		// Paths are only built for problems: validation runs on every
		// reconcile of thousands of groups.
		pp := lazyPath{p, "ports", i}
		switch strings.ToLower(ps.Protocol) {
		case "tcp", "udp", "sctp":
		case "":
			c.add(pp.at(".protocol"), "required (tcp, udp or sctp)")
		default:
			c.add(pp.at(".protocol"), "%q: want tcp, udp or sctp", ps.Protocol)
		}
		if ps.Port < 1 || ps.Port > 65535 {
			c.add(pp.at(".port"), "%d is not a port (1..65535)", ps.Port)
		}
		if ps.TargetPort != 0 && (ps.TargetPort < 1 || ps.TargetPort > 65535) {
			c.add(pp.at(".target_port"), "%d is not a port (1..65535)", ps.TargetPort)
		}
		k := fmt.Sprintf("%s/%d", strings.ToLower(ps.Protocol), ps.Port)
		if j, ok := seenPort[k]; ok {
			c.add(pp.at(""), "%s is listed twice (also ports[%d])", k, j)
		}
		seenPort[k] = i
	}
	type memberKey struct {
		ip   netip.Addr
		port int
	}
	seenMember := map[memberKey]int{}
	if len(g.Members) > MaxMembers {
		c.add(join(p, "members"), "%d members: at most %d (each active member needs one of %d slots)", len(g.Members), MaxMembers, MaxSlots)
	}
	for i, m := range g.Members {
		mp := lazyPath{p, "members", i}
		ip, err := netip.ParseAddr(m.IP)
		switch {
		case m.IP == "":
			c.add(mp.at(".ip"), "required")
		case err != nil || ip.Zone() != "":
			c.add(mp.at(".ip"), "%q is not an IP address", m.IP)
		case vip.IsValid() && vip.Unmap().Is4() != ip.Unmap().Is4():
			c.add(mp.at(".ip"), "%s and the VIP %s are of different IP versions", m.IP, g.VIP)
		case ip.IsUnspecified() || ip.IsMulticast():
			c.add(mp.at(".ip"), "%s cannot be a member", m.IP)
		}
		if m.Port != 0 && (m.Port < 1 || m.Port > 65535) {
			c.add(mp.at(".port"), "%d is not a port (1..65535)", m.Port)
		}
		switch {
		case m.HealthCheckPort == 0:
		case m.HealthCheckPort < 1 || m.HealthCheckPort > 65535:
			c.add(mp.at(".health_check_port"), "%d is not a port (1..65535)", m.HealthCheckPort)
		case g.HealthCheck == nil:
			c.add(mp.at(".health_check_port"), "the group has no health_check")
		}
		if m.Weight != nil && (*m.Weight < 1 || *m.Weight > 65535) {
			c.add(mp.at(".weight"), "%d is out of range (1..65535)", *m.Weight)
		}
		switch m.State {
		case "", StateActive, StateDraining, StateDisabled:
		default:
			c.add(mp.at(".state"), "%q: want active, draining or disabled", m.State)
		}
		if m.MAC != "" {
			if hw, err := net.ParseMAC(m.MAC); err != nil || len(hw) != 6 || hw[0]&1 == 1 {
				c.add(mp.at(".mac"), "%q is not a unicast Ethernet address", m.MAC)
			}
		}
		if err == nil {
			k := memberKey{ip.Unmap(), m.Port}
			if j, ok := seenMember[k]; ok {
				c.add(mp.at(""), "duplicate of members[%d] (%s)", j, m.IP)
			}
			seenMember[k] = i
		}
	}
	if a := g.Affinity; a != nil && (a.ClientIPTimeoutS < 1 || a.ClientIPTimeoutS > MaxAffinityTimeout) {
		c.add(join(p, "affinity.client_ip_timeout_s"), "%d is out of range (1..%d)", a.ClientIPTimeoutS, MaxAffinityTimeout)
	}
	switch g.Mode {
	case "", ModeDNAT, ModeDSR:
	default:
		c.add(join(p, "mode"), "%q: want dnat or dsr", g.Mode)
	}
	switch g.Algorithm {
	case "", AlgorithmWeighted, AlgorithmLeastConnections:
	default:
		c.add(join(p, "algorithm"), "%q: want weighted or least-connections", g.Algorithm)
	}
	switch {
	case g.LoadView != "" && g.LoadView != LoadViewGlobal && g.LoadView != LoadViewLocal:
		c.add(join(p, "load_view"), "%q: want global or local", g.LoadView)
	case g.LoadView != "" && !g.LeastConnections():
		c.add(join(p, "load_view"), "only with algorithm least-connections")
	}
	if g.HealthCheck != nil {
		g.HealthCheck.check(c, join(p, "health_check"), g)
	}
	if g.Mode == ModeDSR {
		for i, ps := range g.Ports {
			if ps.TargetPort != 0 && ps.TargetPort != ps.Port {
				c.add(fmt.Sprintf("%s[%d].target_port", join(p, "ports"), i), "dsr mode cannot change the port (the member answers directly)")
			}
		}
		for i, m := range g.Members {
			if m.Port != 0 {
				c.add(fmt.Sprintf("%s[%d].port", join(p, "members"), i), "dsr mode cannot change the port (the member answers directly)")
			}
		}
	}
}

// lazyPath is a field path built only when a problem is reported.
type lazyPath struct {
	prefix, list string
	index        int
}

func (l lazyPath) at(field string) string {
	return fmt.Sprintf("%s[%d]%s", join(l.prefix, l.list), l.index, field)
}

// ValidName says whether s can name a group (or a host): 1..63 letters,
// digits, '-', '_' or '.', starting with a letter or digit.
func ValidName(s string) bool { return validName(s) }

func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '-' || r == '_' || r == '.'))
		if !ok {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of the group.
func (g Group) Clone() Group {
	c := g
	if g.Ports != nil {
		c.Ports = append(make([]PortSpec, 0, len(g.Ports)), g.Ports...)
	}
	if g.Members != nil {
		c.Members = make([]Member, len(g.Members))
	}
	for i, m := range g.Members {
		if m.Weight != nil {
			w := *m.Weight
			m.Weight = &w
		}
		c.Members[i] = m
	}
	if g.Affinity != nil {
		a := *g.Affinity
		c.Affinity = &a
	}
	if g.Scope != nil {
		s := Scope{IfaceIDs: clonedStrings(g.Scope.IfaceIDs), Hosts: clonedStrings(g.Scope.Hosts)}
		if g.Scope.Labels != nil {
			s.Labels = make(map[string]string, len(g.Scope.Labels))
			for k, v := range g.Scope.Labels {
				s.Labels[k] = v
			}
		}
		c.Scope = &s
	}
	if g.HealthCheck != nil {
		hc := *g.HealthCheck
		c.HealthCheck = &hc
	}
	return c
}

func clonedStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append(make([]string, 0, len(s)), s...)
}

// Fingerprint is a 64-bit FNV-1a hash of everything in the group: equal
// groups have equal fingerprints, and different ones (all but certainly)
// not. It allocates nothing: it runs over every group on every reconcile.
func (g *Group) Fingerprint() uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
		h = (h ^ 0xff) * prime
	}
	num := func(n int) {
		for k := 0; k < 64; k += 8 {
			h = (h ^ uint64(n>>k)&0xff) * prime
		}
	}
	str(g.Name)
	str(g.VIP)
	str(g.Mode)
	str(g.Algorithm)
	str(g.LoadView)
	num(len(g.Ports))
	for _, p := range g.Ports {
		str(p.Protocol)
		num(p.Port)
		num(p.TargetPort)
	}
	num(len(g.Members))
	for _, m := range g.Members {
		str(m.IP)
		num(m.Port)
		num(m.WeightOf())
		str(m.StateOf())
		str(m.MAC)
		num(m.HealthCheckPort)
	}
	if g.Affinity != nil {
		num(g.Affinity.ClientIPTimeoutS)
	} else {
		num(-1)
	}
	if hc := g.HealthCheck; hc != nil {
		str(hc.Type)
		num(hc.Port)
		str(hc.Interval)
		str(hc.Timeout)
		num(hc.Rise)
		num(hc.Fall)
		str(hc.Path)
		str(hc.Host)
		str(hc.Expect)
		str(strconv.FormatBool(hc.UDPSilenceOK))
		str(hc.Payload)
		num(hc.FlapChanges)
		str(hc.FlapWindow)
		str(hc.Hold)
	} else {
		num(-2)
	}
	if sc := g.Scope; sc != nil {
		str(sc.Key())
		for _, host := range sc.Hosts {
			str(host)
		}
	}
	return h
}

// IP protocol numbers of the protocols a PortSpec may name.
const (
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoSCTP = 132
)

// ProtocolNumber is the IP protocol number of a valid PortSpec.Protocol.
func ProtocolNumber(p string) uint8 {
	switch strings.ToLower(p) {
	case "udp":
		return ProtoUDP
	case "sctp":
		return ProtoSCTP
	}
	return ProtoTCP
}

// TargetPort is where a member listens for a VIP port: the member's own
// port, else the port's target port, else the VIP's port.
func TargetPort(ps PortSpec, m Member) uint16 {
	switch {
	case m.Port != 0:
		return uint16(m.Port)
	case ps.TargetPort != 0:
		return uint16(ps.TargetPort)
	}
	return uint16(ps.Port)
}

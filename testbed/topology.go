package testbed

import (
	"bytes"
	"time"

	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Topology is a testbed description: hypervisors and the VMs on each.
// It is what a topology YAML file holds; see README.md for the format.
type Topology struct {
	Hosts []HostSpec `yaml:"hosts" json:"hosts"`
}

// HostSpec is one emulated hypervisor.
type HostSpec struct {
	Name string   `yaml:"name" json:"name"`
	VMs  []VMSpec `yaml:"vms" json:"vms"`
}

// VMSpec is one emulated VM: a network namespace with eth0 on a port of its
// host's bridge.
type VMSpec struct {
	Name string `yaml:"name" json:"name"`
	// IP is the VM's IPv4 address with prefix length, e.g. 10.0.0.1/24.
	IP string `yaml:"ip" json:"ip"`
	// IP6 is an optional IPv6 address with prefix length.
	IP6 string `yaml:"ip6,omitempty" json:"ip6,omitempty"`
	// MAC is optional; by default it is derived from IP (02:00 + the four
	// address bytes).
	MAC string `yaml:"mac,omitempty" json:"mac,omitempty"`
	// Tenant, when set, puts the VM in a tenant address space: addresses
	// are unique within a tenant, so VMs of different tenants may share
	// one (overlapping tenant addresses; give them different MACs). The
	// VM's port gets external_ids:tenant=TENANT, which a group's scope
	// can select by label.
	Tenant string `yaml:"tenant,omitempty" json:"tenant,omitempty"`
	// Services lists built-in servers to run: "tcp:PORT", "udp:PORT",
	// "tcp:PORT:delay=DURATION" (each answer waits DURATION: a slow
	// server) or "proxy:PORT:UPSTREAM".
	Services []string `yaml:"services,omitempty" json:"services,omitempty"`
	// ExtraIPs are further addresses (with prefix) put on eth0. The traffic
	// tool spreads source ports over IP and these when one address's ports
	// are not enough for a run.
	ExtraIPs []string `yaml:"extra_ips,omitempty" json:"extra_ips,omitempty"`
	// VIPOnLo are virtual IPs (no prefix) the VM holds on its loopback, as
	// a member of a direct-server-return group does; the VM then also
	// stops answering ARP for them on eth0 (arp_ignore=1, arp_announce=2).
	VIPOnLo []string `yaml:"vip_on_lo,omitempty" json:"vip_on_lo,omitempty"`
}

// Service is one parsed entry of VMSpec.Services.
type Service struct {
	Proto string // "tcp", "udp" or "proxy"
	Port  uint16
	// Upstream is where a proxy relays each of its connections' lines
	// (a VIP, say, for a chain of tiers).
	Upstream netip.AddrPort
	// Delay is how long a TCP server waits before each answer (a slow
	// server: its connections last longer).
	Delay time.Duration
}

func (s Service) String() string {
	out := s.Proto + ":" + strconv.Itoa(int(s.Port))
	switch {
	case s.Proto == "proxy":
		out += ":" + s.Upstream.String()
	case s.Delay > 0:
		out += ":delay=" + s.Delay.String()
	}
	return out
}

// maxServiceDelay bounds a slow server's delay (the client tools time out
// long before).
const maxServiceDelay = time.Minute

// ParseService parses "tcp:8080", "udp:5353", "tcp:8082:delay=1s" (a TCP
// server that waits a second before each answer) or
// "proxy:8081:10.96.0.20:80" (a TCP server that relays each line to the
// upstream address over one connection per client connection and answers
// "NAME>ANSWER").
func ParseService(s string) (Service, error) {
	proto, rest, ok := strings.Cut(s, ":")
	if !ok || (proto != "tcp" && proto != "udp" && proto != "proxy") {
		return Service{}, fmt.Errorf("%q is not a service (want tcp:PORT, udp:PORT, tcp:PORT:delay=DURATION or proxy:PORT:UPSTREAM)", s)
	}
	port, opt, _ := strings.Cut(rest, ":")
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Service{}, fmt.Errorf("%q: port must be 1..65535", s)
	}
	svc := Service{Proto: proto, Port: uint16(p)}
	switch {
	case proto == "proxy":
		if svc.Upstream, err = netip.ParseAddrPort(opt); err != nil {
			return Service{}, fmt.Errorf("%q: upstream %q is not IP:PORT or [IPv6]:PORT", s, opt)
		}
	case proto == "tcp" && strings.HasPrefix(opt, "delay="):
		d, err := time.ParseDuration(strings.TrimPrefix(opt, "delay="))
		if err != nil || d <= 0 || d > maxServiceDelay {
			return Service{}, fmt.Errorf("%q: delay must be a duration above 0 and at most %s (like 250ms or 1s)", s, maxServiceDelay)
		}
		svc.Delay = d
	case opt != "" && proto == "tcp":
		return Service{}, fmt.Errorf("%q: a TCP server's only option is delay=DURATION", s)
	case opt != "":
		return Service{}, fmt.Errorf("%q: only a proxy has an upstream", s)
	}
	return svc, nil
}

// Addr returns the VM's IPv4 address.
func (v VMSpec) Addr() netip.Addr { return mustPrefix(v.IP).Addr() }

// Addr6 returns the VM's IPv6 address, or the zero Addr if it has none.
func (v VMSpec) Addr6() netip.Addr {
	if v.IP6 == "" {
		return netip.Addr{}
	}
	return mustPrefix(v.IP6).Addr()
}

// HardwareAddr returns the VM's MAC: the configured one or the derived one.
func (v VMSpec) HardwareAddr() string {
	if v.MAC != "" {
		hw, _ := net.ParseMAC(v.MAC)
		return hw.String()
	}
	a := v.Addr().As4()
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3])
}

// ParsedServices returns the VM's services; the topology must be valid.
func (v VMSpec) ParsedServices() []Service {
	out := make([]Service, 0, len(v.Services))
	for _, s := range v.Services {
		svc, _ := ParseService(s)
		out = append(out, svc)
	}
	return out
}

func mustPrefix(s string) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		panic(fmt.Sprintf("testbed: unvalidated prefix %q", s))
	}
	return p
}

// VM looks a VM up by name.
func (t *Topology) VM(name string) (VMSpec, string, bool) {
	for _, h := range t.Hosts {
		for _, v := range h.VMs {
			if v.Name == name {
				return v, h.Name, true
			}
		}
	}
	return VMSpec{}, "", false
}

// LoadTopologyFile reads and validates a topology file.
func LoadTopologyFile(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	topo, err := ParseTopology(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return topo, nil
}

// ParseTopology decodes and validates a topology document. Unknown keys are
// refused; every problem is reported with its line and field path.
func ParseTopology(data []byte) (*Topology, error) {
	var topo Topology
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&topo); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	if err := topo.validate(&root); err != nil {
		return nil, err
	}
	return &topo, nil
}

// Validate checks a topology built in Go (no line numbers in errors).
func (t *Topology) Validate() error { return t.validate(nil) }

var (
	hostNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)
	vmNameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,14}$`)
	labelRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// Names the testbed itself uses for interfaces or namespaces.
	reservedNames = map[string]bool{"uplink": true, "br-int": true, "fabric": true, "ovs-netdev": true, "lo": true, "eth0": true}
)

// ValidationError lists every problem found in a topology.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	return "invalid topology:\n  " + strings.Join(e.Problems, "\n  ")
}

func (t *Topology) validate(root *yaml.Node) error {
	var problems []string
	add := func(path []any, format string, args ...any) {
		loc := ""
		if l := lineOf(root, path); l > 0 {
			loc = fmt.Sprintf("line %d: ", l)
		}
		problems = append(problems, loc+fieldPath(path)+": "+fmt.Sprintf(format, args...))
	}
	if len(t.Hosts) == 0 {
		add([]any{"hosts"}, "at least one host is required")
	}
	names := map[string]string{} // host and VM names → where first seen
	type addrKey struct {
		tenant string
		addr   netip.Addr
	}
	addrs := map[addrKey]string{} // every address, by tenant → where first seen
	type macUse struct {
		path     string
		explicit bool
		tenant   string
	}
	macs := map[string]macUse{}
	for i, h := range t.Hosts {
		hp := []any{"hosts", i}
		switch {
		case !hostNameRE.MatchString(h.Name):
			add(append(hp, "name"), "%q is not a host name (lower-case letter, then up to 9 letters or digits)", h.Name)
		case reservedNames[h.Name]:
			add(append(hp, "name"), "%q is reserved", h.Name)
		case names[h.Name] != "":
			add(append(hp, "name"), "%q is already used by %s", h.Name, names[h.Name])
		default:
			names[h.Name] = fieldPath(hp)
		}
		for j, v := range h.VMs {
			vp := []any{"hosts", i, "vms", j}
			switch {
			case !vmNameRE.MatchString(v.Name):
				add(append(vp, "name"), "%q is not a VM name (lower-case letter, then up to 14 letters, digits or '-')", v.Name)
			case reservedNames[v.Name]:
				add(append(vp, "name"), "%q is reserved", v.Name)
			case names[v.Name] != "":
				add(append(vp, "name"), "%q is already used by %s", v.Name, names[v.Name])
			default:
				names[v.Name] = fieldPath(vp)
			}
			claim := func(field []any, a netip.Addr) {
				k := addrKey{v.Tenant, a}
				if prev, ok := addrs[k]; ok {
					add(field, "address %s is already used by %s", a, prev)
					return
				}
				addrs[k] = fieldPath(field)
			}
			ip := append(vp, "ip")
			if v.IP == "" {
				add(ip, "an IPv4 address with prefix length is required (e.g. 10.0.0.1/24)")
			} else if p, err := netip.ParsePrefix(v.IP); err != nil || !p.Addr().Is4() {
				add(ip, "%q is not an IPv4 address with prefix length (e.g. 10.0.0.1/24)", v.IP)
			} else if p.Bits() == 32 || p.Addr() == p.Masked().Addr() {
				add(ip, "%q: the address must be a host address inside a subnet", v.IP)
			} else {
				claim(ip, p.Addr())
			}
			if v.IP6 != "" {
				ip6 := append(vp, "ip6")
				if p, err := netip.ParsePrefix(v.IP6); err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
					add(ip6, "%q is not an IPv6 address with prefix length (e.g. fd00::1/64)", v.IP6)
				} else {
					claim(ip6, p.Addr())
				}
			}
			for k, e := range v.ExtraIPs {
				ep := append(vp, "extra_ips", k)
				if p, err := netip.ParsePrefix(e); err != nil {
					add(ep, "%q is not an address with prefix length", e)
				} else {
					claim(ep, p.Addr())
				}
			}
			for k, e := range v.VIPOnLo {
				if a, err := netip.ParseAddr(e); err != nil || a.Zone() != "" {
					add(append(vp, "vip_on_lo", k), "%q is not an IP address (give it without prefix length)", e)
				}
			}
			if v.MAC != "" {
				hw, err := net.ParseMAC(v.MAC)
				switch {
				case err != nil || len(hw) != 6:
					add(append(vp, "mac"), "%q is not a MAC address", v.MAC)
				case hw[0]&1 == 1:
					add(append(vp, "mac"), "%q is a multicast address", v.MAC)
				}
			}
			// A derived MAC only clashes where addresses do, which is
			// reported already within a tenant; an explicit one, or one
			// derived from an address another tenant uses too, may clash
			// with any.
			if mac := safeMAC(v); mac != "" {
				if prev, ok := macs[mac]; ok && (v.MAC != "" || prev.explicit || prev.tenant != v.Tenant) {
					add(append(vp, "mac"), "MAC %s is already used by %s (VMs of different tenants with the same address need a mac each)", mac, prev.path)
				} else if !ok {
					macs[mac] = macUse{fieldPath(vp), v.MAC != "", v.Tenant}
				}
			}
			if v.Tenant != "" && !labelRE.MatchString(v.Tenant) {
				add(append(vp, "tenant"), "%q is not a tenant name (letters, digits, '-', '_' or '.', up to 63)", v.Tenant)
			}
			seen := map[Service]bool{}
			for k, s := range v.Services {
				sp := append(vp, "services", k)
				svc, err := ParseService(s)
				if err != nil {
					add(sp, "%v", err)
				} else if seen[svc] {
					add(sp, "%s is listed twice", svc)
				}
				seen[svc] = true
			}
		}
	}
	if len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	return nil
}

// safeMAC is HardwareAddr for a VM whose fields may be invalid: "" when
// the MAC cannot be known.
func safeMAC(v VMSpec) string {
	if v.MAC != "" {
		hw, err := net.ParseMAC(v.MAC)
		if err != nil {
			return ""
		}
		return hw.String()
	}
	if p, err := netip.ParsePrefix(v.IP); err != nil || !p.Addr().Is4() {
		return ""
	}
	return v.HardwareAddr()
}

func fieldPath(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

// lineOf finds the line of path in a decoded YAML document, or 0.
func lineOf(root *yaml.Node, path []any) int {
	if root == nil {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
			if next == nil {
				return line
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || p >= len(n.Content) {
				return line
			}
			n = n.Content[p]
			line = n.Line
		}
	}
	return line
}

package lb

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	of "github.com/ovs-dlb/dlb/ofctrl"
)

// LocalPort is a VM port of the bridge, from the agent's inventory.
type LocalPort struct {
	Name    string
	OFPort  uint32
	IfaceID string
	MAC     net.HardwareAddr
	IPs     []netip.Addr
	Labels  map[string]string
}

// Input is everything the pipeline is computed from.
type Input struct {
	Config Config
	// Groups must be valid (ValidateAll).
	Groups []Group
	Ports  []LocalPort
	// MACs are members' MAC addresses the agent knows (resolved, or from
	// its inventory); a member's own mac field wins.
	MACs map[netip.Addr]net.HardwareAddr
	// Installed are the select groups on the switch now, so that member
	// choices stay where they are (see Assign).
	Installed map[uint32]*of.Group
	// Validated says Groups passed ValidateAll already (a source that
	// validates what it delivers sets it, to spare a second pass over
	// thousands of groups on every change).
	Validated bool
	// Changed, when not nil, names the groups that may have changed since
	// the previous Compile on the same Compiler (added ones included); the
	// others are taken as they were.
	Changed map[string]bool
}

// Output is the desired state of the bridge.
type Output struct {
	Flows  []*of.Flow
	Groups []*of.Group
	// Unresolved lists members whose MAC is unknown: their traffic cannot
	// be delivered until the agent resolves it.
	Unresolved []netip.Addr
	// Affinity maps the service id of each group with session affinity to
	// its client_ip_timeout_s: the owners of the learned flows in
	// DLB_AFFINITY (cookie Cookie(KindAffinity, id, 0)). Learned flows of
	// other ids are left over from groups that went.
	Affinity map[uint32]int
}

// Compile computes the flows and groups of the pipeline. It is a pure
// function of its input.
func Compile(in Input) (*Output, error) { return NewCompiler().Compile(in) }

// Compiler compiles again and again, reusing what did not change: a group
// whose document and id are the same as last time, and whose select groups
// on the switch are the very ones it produced, keeps its flows and groups
// (the same pointers, so a reconciler can skip them without comparing).
// The result is the same as Compile's.
type Compiler struct {
	ids    map[string]uint32    // service ids of the last set of names
	idsKey uint64               // hash of that set
	key    string               // config, ports and MACs the cache is valid for
	groups map[string]*groupOut // by group name
	shared map[string]*sharedOut
	gen    uint64 // compile generation, stamping the shared flows emitted
	// Scratch space kept between compiles, so that a one-group change at
	// 10,000 groups allocates little more than its output.
	prints []uint64
	names  []string
}

// sharedOut is a flow several groups or the pipeline share, and the last
// compile that emitted it.
type sharedOut struct {
	flow *of.Flow
	gen  uint64
}

// groupOut is what one group compiled to.
type groupOut struct {
	gen        uint64 // last compile that had the group
	print      uint64 // the group's fingerprint
	id         uint32
	groups     []*of.Group
	flows      []*of.Flow
	unresolved []netip.Addr
	affinity   int // client_ip_timeout_s, 0 without affinity
	// shared are the flows it shares with other groups, by key, until the
	// compile resolves them to cache entries, refs (so a reused group
	// emits them without map lookups).
	shared []sharedFlow
	refs   []*sharedOut
}

type sharedFlow struct {
	key   string
	build func() *of.Flow
}

// NewCompiler returns a Compiler with an empty cache.
func NewCompiler() *Compiler {
	return &Compiler{groups: map[string]*groupOut{}, shared: map[string]*sharedOut{}}
}

// Compile computes the pipeline for in. With in.Changed set, groups not
// named in it are taken as unchanged since the previous Compile (their
// fingerprints are not even computed), which makes a one-group change cost
// little more than a pass over pointers.
func (k *Compiler) Compile(in Input) (*Output, error) {
	if err := in.Config.Validate(); err != nil {
		return nil, err
	}
	if key := fmt.Sprintf("%+v|%+v|%v", in.Config, in.Ports, in.MACs); key != k.key {
		k.key, k.groups, k.shared = key, map[string]*groupOut{}, map[string]*sharedOut{}
	}
	k.gen++
	// print computes a group's fingerprint, or returns the cached one for a
	// group the caller says did not change.
	print := func(g *Group) uint64 {
		if in.Changed != nil && !in.Changed[g.Name] {
			if e := k.groups[g.Name]; e != nil {
				return e.print
			}
		}
		return g.Fingerprint()
	}
	k.prints = slices.Grow(k.prints[:0], len(in.Groups))[:len(in.Groups)]
	prints := k.prints
	for i := range in.Groups {
		prints[i] = print(&in.Groups[i])
	}
	if !in.Validated {
		// A group compiled before with the same fingerprint was valid then.
		known := func(i int) bool {
			e := k.groups[in.Groups[i].Name]
			return e != nil && e.print == prints[i]
		}
		if err := validateGroups(in.Groups, known); err != nil {
			return nil, err
		}
	}
	c := &compiler{in: in, cfg: in.Config, unresolved: map[netip.Addr]bool{}, cache: k,
		out: &Output{Flows: make([]*of.Flow, 0, len(k.shared)+3*len(in.Groups)), Groups: make([]*of.Group, 0, len(in.Groups)),
			Affinity: map[uint32]int{}}}
	c.pipeline()
	k.names = k.names[:0]
	for i := range in.Groups {
		k.names = append(k.names, in.Groups[i].Name)
	}
	ids := k.serviceIDs(k.names)
	// Groups in input order: the output is the same for the same input.
	// The cache is updated in place; entries of groups no longer there are
	// swept by generation afterwards.
	for i := range in.Groups {
		g := &in.Groups[i]
		e := k.groups[g.Name]
		if e == nil || !e.valid(prints[i], ids[g.Name], in.Installed) {
			e = c.service(*g, ids[g.Name])
			k.groups[g.Name] = e
		}
		e.gen = k.gen
		c.out.Groups = append(c.out.Groups, e.groups...)
		c.out.Flows = append(c.out.Flows, e.flows...)
		if e.affinity > 0 {
			c.out.Affinity[e.id] = e.affinity
		}
		for _, u := range e.unresolved {
			if !c.unresolved[u] {
				c.unresolved[u] = true
				c.out.Unresolved = append(c.out.Unresolved, u)
			}
		}
		if e.refs == nil {
			for _, sf := range e.shared {
				e.refs = append(e.refs, c.sharedEntry(sf.key, sf.build))
			}
			// The builders capture this compile's state (its input and
			// output); a cached group must not keep that alive.
			e.shared = nil
		}
		for _, ref := range e.refs {
			c.emit(ref)
		}
	}
	if len(k.groups) != len(in.Groups) {
		for name, e := range k.groups {
			if e.gen != k.gen {
				delete(k.groups, name)
			}
		}
	}
	for key, sh := range k.shared {
		if sh.gen != k.gen {
			delete(k.shared, key)
		}
	}
	sort.Slice(c.out.Unresolved, func(i, j int) bool { return c.out.Unresolved[i].Less(c.out.Unresolved[j]) })
	return c.out, nil
}

// serviceIDs is ServiceIDs, reused while the set of names is the same.
func (k *Compiler) serviceIDs(names []string) map[string]uint32 {
	const prime = 1099511628211
	h := uint64(14695981039346656037) ^ uint64(len(names))
	sum := uint64(0)
	for _, n := range names {
		x := h
		for i := 0; i < len(n); i++ {
			x = (x ^ uint64(n[i])) * prime
		}
		sum += x // order does not matter
	}
	if k.ids != nil && k.idsKey == sum {
		return k.ids
	}
	k.ids, k.idsKey = ServiceIDs(names), sum
	return k.ids
}

// valid reports whether a cached group output still stands for a group
// with this fingerprint and id.
func (e *groupOut) valid(print uint64, id uint32, installed map[uint32]*of.Group) bool {
	if e.id != id || e.print != print {
		return false
	}
	for _, og := range e.groups {
		if installed[og.ID] != og {
			return false
		}
	}
	return true
}

type compiler struct {
	in         Input
	cfg        Config
	out        *Output
	unresolved map[netip.Addr]bool
	cache      *Compiler
	fixed      int // fixed flows emitted so far
	arpHead    []of.Action
}

// sharedEntry finds or builds the cache entry of a shared flow.
func (c *compiler) sharedEntry(key string, build func() *of.Flow) *sharedOut {
	sh := c.cache.shared[key]
	if sh == nil {
		sh = &sharedOut{flow: build()}
		c.cache.shared[key] = sh
	}
	return sh
}

// emit outputs a shared flow once per compile.
func (c *compiler) emit(sh *sharedOut) {
	if sh.gen == c.cache.gen {
		return
	}
	sh.gen = c.cache.gen
	c.out.Flows = append(c.out.Flows, sh.flow)
}

// shared emits a flow that several groups or the pipeline share, once,
// reusing the cached one.
func (c *compiler) shared(key string, build func() *of.Flow) { c.emit(c.sharedEntry(key, build)) }

func (c *compiler) t(table int) uint8 { return c.cfg.Table(table) }

func (c *compiler) flow(table int, prio uint16, cookie uint64) *of.FlowBuilder {
	return of.NewFlow(c.t(table), prio).Cookie(cookie)
}

// add emits a fixed flow of the pipeline (cached by its position).
func (c *compiler) add(b *of.FlowBuilder) {
	c.shared(fmt.Sprintf("fixed/%d", c.fixed), b.Done)
	c.fixed++
}

// pipeline adds the fixed flows and the VM port classification.
func (c *compiler) pipeline() {
	fixed := Cookie(KindPipeline, 0, 0)
	c.add(c.flow(TableClassify, 0, fixed).Goto(c.t(TableService)))
	for _, p := range c.in.Ports {
		if p.OFPort == 0 || p.OFPort >= of.PortInPort {
			continue
		}
		c.shared(fmt.Sprintf("port/%d", p.OFPort), c.flow(TableClassify, 100, Cookie(KindPort, 0, uint16(p.OFPort))).
			Match(of.InPort(p.OFPort)).
			Actions(of.SetMasked(of.Reg(RegPortClass), portClassVM, portClassVM)).
			Goto(c.t(TableService)).Done)
	}
	c.add(c.flow(TableService, 0, fixed).Goto(c.t(TableReply)))
	// After the conntrack lookup of VIP traffic: new connections were sent
	// to their group by the per-service flows; established and related
	// ones were already translated by ct(nat); invalid ones are dropped.
	c.add(c.flow(TableSelect, 50, fixed).Match(of.CTState(of.CTEst|of.CTTrk, of.CTEst|of.CTTrk)).Goto(c.t(TableToMember)))
	c.add(c.flow(TableSelect, 50, fixed).Match(of.CTState(of.CTRel|of.CTTrk, of.CTRel|of.CTTrk)).Goto(c.t(TableToMember)))
	c.add(c.flow(TableSelect, 40, fixed).Match(of.CTState(of.CTInv|of.CTTrk, of.CTInv|of.CTTrk)))
	c.add(c.flow(TableSelect, 0, fixed))
	// The member's MAC rides in the connection's label (bits 0-47), set by
	// the bucket that committed it, so one flow serves every member.
	c.add(c.flow(TableToMember, 0, fixed).Actions(toMemberMAC).Goto(c.t(TableOutput)))
	c.add(c.flow(TableReply, 0, fixed).Goto(c.t(TableOutput)))
	// Replies of DLB connections leave from the DLB's MAC, as the VIP.
	c.add(c.flow(TableUnNAT, 100, fixed).Match(of.CTState(of.CTRpl|of.CTTrk, of.CTRpl|of.CTTrk)).
		Actions(of.SetBytes(of.FieldEthSrc, c.cfg.MAC)).Goto(c.t(TableOutput)))
	c.add(c.flow(TableUnNAT, 0, fixed).Goto(c.t(TableOutput)))
	if sh := c.cfg.Shared; sh != nil {
		// Shared bridge: the one hook, and back to the owner's pipeline.
		c.add(of.NewFlow(sh.EntryTable, sh.EntryPriority).Cookie(fixed).Goto(c.t(TableClassify)))
		c.add(c.flow(TableOutput, 0, fixed).Actions(of.ResubmitTable(sh.ReturnTable)))
	} else {
		c.add(c.flow(TableOutput, 0, fixed).Actions(of.Normal()))
	}
	// A client with no learned entry leaves RegMember at 0.
	c.add(c.flow(TableAffinity, 0, fixed))
	c.add(c.flow(TableSticky, 0, fixed))
	// Answers to the agent's own ARP requests and neighbour solicitations
	// for members' MACs come to the DLB's MAC: the agent reads them.
	c.add(c.flow(TableClassify, 110, fixed).Match(of.ARP, of.ARPOp(2), of.EthDst(c.cfg.MAC)).Actions(of.Controller{MaxLen: 128}))
	c.add(c.flow(TableClassify, 110, fixed).Match(of.ICMPv6, of.ICMPv6Type(136), of.EthDst(c.cfg.MAC)).Actions(of.Controller{MaxLen: 128}))
	// Traffic from VMs to the DLB's MAC that no VIP port took goes nowhere
	// rather than flooding.
	fromVM := of.RegMasked(RegPortClass, portClassVM, portClassVM)
	c.add(c.flow(TableService, 40, fixed).Match(fromVM, of.IP, of.EthDst(c.cfg.MAC)))
	c.add(c.flow(TableService, 40, fixed).Match(fromVM, of.IPv6, of.EthDst(c.cfg.MAC)))

	// Hairpin: a member that reached itself through its VIP gets the
	// connection with the VIP as source (DLB_OUTPUT's per-member flows, in
	// the hairpin zone), so it answers to the VIP, at the DLB's MAC. Its
	// answer (looked up in the hairpin zone by a flow per VIP with a local
	// member: sharedFlows) is un-SNATed, then un-DNATed, and goes back out
	// of its port.
	for _, ipm := range []of.MatchOption{of.IP, of.IPv6} {
		c.add(c.flow(TableHairpinReply, 100, fixed).Match(of.CTState(of.CTRpl|of.CTTrk, of.CTRpl|of.CTTrk), ipm).
			Actions(natLookup(c.cfg.Zone, c.t(TableHairpin))))
	}
	c.add(c.flow(TableHairpinReply, 0, fixed))
	c.add(c.flow(TableHairpin, 0, fixed).Actions(
		of.Move{Src: of.All(of.FieldEthSrc), Dst: of.All(of.FieldEthDst)},
		of.SetBytes(of.FieldEthSrc, c.cfg.MAC), of.OutInPort()))
}

func protoNumber(p string) uint8 {
	switch strings.ToLower(p) {
	case "udp":
		return of.ProtoUDP
	case "sctp":
		return of.ProtoSCTP
	}
	return of.ProtoTCP
}

// targetPort is where a member listens for a VIP port.
func targetPort(ps PortSpec, m Member) uint16 {
	switch {
	case m.Port != 0:
		return uint16(m.Port)
	case ps.TargetPort != 0:
		return uint16(ps.TargetPort)
	}
	return uint16(ps.Port)
}

// service compiles one group's select groups and per-port flows.
func (c *compiler) service(g Group, id uint32) *groupOut {
	e := &groupOut{print: g.Fingerprint(), id: id}
	vip := netip.MustParseAddr(g.VIP).Unmap()
	zone := c.cfg.ZoneOf(g.Scope)
	scope := c.portsInScope(g.Scope) // nil: every VM port
	v6 := vip.Is6()
	fromVM := of.RegMasked(RegPortClass, portClassVM, portClassVM)

	// New-connection choice: every port's group uses the same slots.
	weights := make([]int, len(g.Members))
	for i, m := range g.Members {
		if m.StateOf() == StateActive {
			weights[i] = m.WeightOf()
		}
	}
	macs := make([]net.HardwareAddr, len(g.Members))
	for i, m := range g.Members {
		ip := netip.MustParseAddr(m.IP).Unmap()
		if macs[i] = c.memberMAC(ip, m); macs[i] == nil {
			e.unresolved = append(e.unresolved, ip)
		}
	}
	available := false
	for _, w := range weights {
		available = available || w > 0
	}
	var keys []uint32
	if g.Affinity != nil || g.Mode == ModeDSR {
		keys = MemberKeys(g.Members)
	}
	if g.Affinity != nil {
		e.affinity = g.Affinity.ClientIPTimeoutS
	}
	for k, ps := range g.Ports {
		gid := GroupID(id, k)
		proto := protoNumber(ps.Protocol)
		prev := c.previous(gid, g, ps, keys)
		b := c.cfg.Buckets
		if b == 0 {
			b = BucketCount(weights, len(prev))
		}
		slots := Assign(b, weights, prev)
		grp := of.NewGroup(gid, of.GroupSelect).WithSelection("dp_hash", 0)
		if slots[0] >= 0 {
			// Bucket i translates to member slots[i]: stored as slots over
			// one action list per member.
			grp.SlotActions = make([][]of.Action, len(g.Members))
			grp.Slots = make([]uint16, len(slots))
			for s, m := range slots {
				if grp.SlotActions[m] == nil {
					grp.SlotActions[m] = c.bucketActions(g, m, keys, ps, macs[m])
				}
				grp.Slots[s] = uint16(m)
			}
		}
		e.groups = append(e.groups, grp)
		isNew := of.CTState(of.CTNew|of.CTTrk, of.CTNew|of.CTTrk)
		if scope == nil {
			e.flows = append(e.flows,
				c.flow(TableService, 100, Cookie(KindVIP, id, uint16(k+1))).
					Match(fromVM, of.L4(v6, proto), of.IPDst(of.Host(vip)), of.DstPort(proto, uint16(ps.Port))).
					Actions(of.Set(of.Reg(RegService), uint64(gid)), natLookup(zone, c.t(TableSelect))).Done())
		}
		// A scoped group serves only its ports, ahead of any unscoped
		// group with the same VIP:port.
		for _, p := range scope {
			e.flows = append(e.flows,
				c.flow(TableService, 110, Cookie(KindVIP, id, uint16(k+1))).
					Match(of.InPort(p.OFPort), of.L4(v6, proto), of.IPDst(of.Host(vip)), of.DstPort(proto, uint16(ps.Port))).
					Actions(of.Set(of.Reg(RegService), uint64(gid)), natLookup(zone, c.t(TableSelect))).Done())
		}
		switch {
		case !available:
			// Refused by the agent: a TCP reset or an ICMP port
			// unreachable, built from the packet (OVS cannot make either).
			e.flows = append(e.flows, c.flow(TableSelect, 100, Cookie(KindReject, id, uint16(k+1))).
				Match(isNew, of.RegEq(RegService, gid)).
				Actions(of.Controller{MaxLen: RejectMaxLen}).Done())
		case g.Affinity != nil:
			// A learned entry for the client (DLB_AFFINITY) loads its
			// member's key; DLB_STICKY commits to that member while it is
			// active, else hands the connection to the group, whose bucket
			// learns the new choice. Copying the source port keeps each
			// new connection its own datapath flow, so the second of two
			// back-to-back connections is translated after the first one's
			// learn, not by the first one's cached datapath flow.
			// (The protocol in the matches is what the actions need.)
			e.flows = append(e.flows, c.flow(TableSelect, 100, Cookie(KindVIP, id, uint16(k+1))).
				Match(isNew, of.RegEq(RegService, gid), of.L4(v6, proto)).
				Actions(of.Move{Src: of.All(of.L4PortField(proto, true)), Dst: of.Sub(of.Reg(RegSrcPort), 0, 15)},
					of.ResubmitTable(c.t(TableAffinity))).
				Goto(c.t(TableSticky)).Done())
			for m, mem := range g.Members {
				if weights[m] == 0 {
					continue
				}
				e.flows = append(e.flows, c.flow(TableSticky, 100, Cookie(KindVIP, id, uint16(k+1))).
					Match(of.RegEq(RegService, gid), of.RegEq(RegMember, keys[m]), of.L4(v6, proto)).
					Actions(c.commitActions(g, mem, ps, macs[m])...).Done())
			}
			e.flows = append(e.flows, c.flow(TableSticky, 50, Cookie(KindVIP, id, uint16(k+1))).
				Match(of.RegEq(RegService, gid)).Actions(of.ToGroup(gid)).Done())
			if k == 0 {
				// Committed, the connection's first packet records the
				// choice (a bucket's or DLB_STICKY's: refreshing it).
				e.flows = append(e.flows, c.flow(TableToMember, 100, Cookie(KindVIP, id, 0)).
					Match(isNew, ofService(id), ipOf(v6)).
					Actions(c.learnAffinity(g, id), toMemberMAC).Goto(c.t(TableOutput)).Done())
			}
		default:
			e.flows = append(e.flows, c.flow(TableSelect, 100, Cookie(KindVIP, id, uint16(k+1))).
				Match(isNew, of.RegEq(RegService, gid)).
				Actions(of.ToGroup(gid)).Done())
		}
	}
	if g.Mode != ModeDSR && scope == nil { // a DSR member holds the VIP: its kernel answers itself
		e.flows = append(e.flows, c.hairpinFlows(g, id, vip)...)
	}
	e.shared = c.sharedFlows(g, id)
	return e
}

// hairpinFlows give the connections a local member made to its own group
// and got itself for the VIP as their source, so that its kernel accepts
// them (a packet from its own address is a martian) and answers through
// the DLB. They match on the group's id bits of RegService and the
// member's address as source and destination, after the DNAT.
func (c *compiler) hairpinFlows(g Group, id uint32, vip netip.Addr) []*of.Flow {
	var out []*of.Flow
	for _, mp := range c.localMemberPorts(g) {
		ip, p := mp.ip, mp.port
		ct := of.ConnTrack(c.cfg.HairpinZone())
		ct.Commit, ct.Table = true, c.t(TableHairpin)
		ct.NAT = &of.NAT{Src: true, AddrMin: vip}
		out = append(out, c.flow(TableOutput, 100, Cookie(KindHairpin, id, uint16(p.OFPort))).
			Match(of.InPort(p.OFPort), ipOf(ip.Is6()), ofService(id),
				of.IPSrc(of.Host(ip)), of.IPDst(of.Host(ip))).
			Actions(ct).Done())
	}
	return out
}

// memberPort is a VM port of this host that holds a member's address.
type memberPort struct {
	ip   netip.Addr
	port LocalPort
}

// localMemberPorts lists the VM ports of this host that hold one of g's
// member addresses (each address once), in member order.
func (c *compiler) localMemberPorts(g Group) []memberPort {
	var out []memberPort
	seen := map[netip.Addr]bool{}
	for _, m := range g.Members {
		ip := netip.MustParseAddr(m.IP).Unmap()
		if seen[ip] {
			continue
		}
		seen[ip] = true
		for _, p := range c.in.Ports {
			if p.OFPort != 0 && p.OFPort < of.PortInPort && containsAddr(p.IPs, ip) {
				out = append(out, memberPort{ip, p})
			}
		}
	}
	return out
}

// portsInScope lists the local VM ports a scope selects (by iface-id, or by
// all of its labels in external_ids); nil for no scope, and an empty,
// non-nil list when the scope selects none of this host's ports.
func (c *compiler) portsInScope(s *Scope) []LocalPort {
	if s.key() == "" {
		return nil
	}
	out := []LocalPort{}
	for _, p := range c.in.Ports {
		if p.OFPort == 0 || p.OFPort >= of.PortInPort {
			continue
		}
		if slices.Contains(s.IfaceIDs, p.IfaceID) && p.IfaceID != "" {
			out = append(out, p)
			continue
		}
		if len(s.Labels) == 0 {
			continue
		}
		all := true
		for k, v := range s.Labels {
			all = all && p.Labels[k] == v
		}
		if all {
			out = append(out, p)
		}
	}
	return out
}

// sharedFlows lists the flows a group shares with others: the answer to
// ARP or ND for its VIP, and the reply lookups of its members' ports.
func (c *compiler) sharedFlows(g Group, id uint32) []sharedFlow {
	vip := netip.MustParseAddr(g.VIP).Unmap()
	v6 := vip.Is6()
	var out []sharedFlow
	seen := map[string]bool{}
	for _, ps := range g.Ports {
		proto := protoNumber(ps.Protocol)
		for _, m := range g.Members {
			port := targetPort(ps, m)
			if g.Scope.key() != "" {
				// Replies to a scoped group's clients are looked up in its
				// zone, told apart by the client port's MAC.
				zone := c.cfg.ZoneOf(g.Scope)
				for _, p := range c.portsInScope(g.Scope) {
					key := fmt.Sprintf("sreply/%d/%t/%d/%d", p.OFPort, v6, proto, port)
					if seen[key] || p.MAC == nil {
						continue
					}
					seen[key] = true
					mac := p.MAC
					out = append(out, sharedFlow{key, func() *of.Flow {
						return c.flow(TableReply, 110, Cookie(KindReply, 0, port)).
							Match(of.EthDst(mac), of.L4(v6, proto), of.SrcPort(proto, port)).
							Actions(natLookup(zone, c.t(TableUnNAT))).Done()
					}})
				}
				continue
			}
			key := fmt.Sprintf("reply/%t/%d/%d", v6, proto, port)
			if !seen[key] {
				seen[key] = true
				out = append(out, sharedFlow{key, func() *of.Flow {
					return c.flow(TableReply, 100, Cookie(KindReply, 0, port)).
						Match(of.L4(v6, proto), of.SrcPort(proto, port)).
						Actions(natLookup(c.cfg.Zone, c.t(TableUnNAT))).Done()
				}})
			}
		}
	}
	fromVM := of.RegMasked(RegPortClass, portClassVM, portClassVM)
	if g.Mode != ModeDSR && g.Scope.key() == "" && len(c.localMemberPorts(g)) > 0 {
		// Answers of a local member to a hairpin connection come to the
		// VIP (the source it got); only those VIPs get the hairpin zone's
		// lookup, so other traffic to the DLB's MAC (a VIP port not
		// configured, say) is dropped without touching conntrack.
		out = append(out, sharedFlow{"hairpin-reply/" + vip.String(), func() *of.Flow {
			return c.flow(TableService, 45, Cookie(KindHairpin, id, 0)).Match(fromVM, ipOf(v6), of.EthDst(c.cfg.MAC), of.IPDst(of.Host(vip))).
				Actions(natLookup(c.cfg.HairpinZone(), c.t(TableHairpinReply))).Done()
		}})
	}
	out = append(out, sharedFlow{"neigh/" + vip.String(), func() *of.Flow {
		cookie := Cookie(KindVIP, id, 0)
		if v6 {
			// The agent answers neighbour solicitations (a packet-in).
			return c.flow(TableService, 100, cookie).Match(fromVM, of.ICMPv6, of.ICMPv6Type(135), of.NDTarget(vip)).
				Actions(of.Controller{MaxLen: 128}).Done()
		}
		return c.flow(TableService, 100, cookie).Match(fromVM, of.ARP, of.ARPTPA(vip), of.ARPOp(1)).Actions(c.arpReply(vip)...).Done()
	}})
	return out
}

// ofService matches RegService on a group's id bits, whichever of its VIP
// ports the packet is for.
func ofService(id uint32) of.MatchOption {
	return of.RegMasked(RegService, GroupID(id, 0), GroupIDMask|(1<<serviceBits-1)<<8)
}

// toMemberMAC writes the member's MAC from the connection's label.
var toMemberMAC = of.Move{Src: of.Sub(of.FieldCTLabel, 0, 47), Dst: of.All(of.FieldEthDst)}

// RejectMaxLen is how much of a refused packet the agent gets: enough
// for its headers and the 8 bytes of transport header an ICMP error quotes.
const RejectMaxLen = 128

// bucketActions is what a group's bucket does with a new connection: the
// member's commit, after noting the member's key (for DLB_TO_MEMBER to
// learn when the group has affinity, and to tell DSR buckets apart). OVS
// 3.1 does not run a learn action inside a select group's bucket, so the
// learning is done by a flow.
func (c *compiler) bucketActions(g Group, m int, keys []uint32, ps PortSpec, mac net.HardwareAddr) []of.Action {
	commit := c.commitActions(g, g.Members[m], ps, mac)
	if keys == nil {
		return commit
	}
	return append([]of.Action{of.Set(of.Reg(RegMember), uint64(keys[m]))}, commit...)
}

// commitActions send a new connection to a member: the commit, recording
// the member's MAC in the connection's label, with DNAT to the member
// (mode dnat) or none (mode dsr: the member holds the VIP), then on to
// DLB_TO_MEMBER, which writes the MAC from the label. (A ct action with no
// table, followed by output in the same bucket, is dropped from the
// datapath actions by OVS 3.1: the recirculation is needed.)
func (c *compiler) commitActions(g Group, m Member, ps PortSpec, mac net.HardwareAddr) []of.Action {
	if g.Mode == ModeDSR {
		ct := of.ConnTrack(c.cfg.ZoneOf(g.Scope))
		ct.Commit, ct.Table = true, c.t(TableToMember)
		if mac != nil {
			ct.Exec = []of.Action{of.LoadBits(of.FieldCTLabel, 0, 47, labelMAC(mac))}
		}
		return []of.Action{ct}
	}
	a := of.CTCommitNAT{Zone: c.cfg.ZoneOf(g.Scope), Table: c.t(TableToMember),
		Dst: netip.AddrPortFrom(netip.MustParseAddr(m.IP).Unmap(), targetPort(ps, m))}
	if mac != nil {
		a.Label, a.LabelBits = labelMAC(mac), 48
	}
	return []of.Action{a}
}

// labelMAC is a MAC as the value of the connection label's bits 0..47.
func labelMAC(mac net.HardwareAddr) uint64 {
	var b [6]byte
	copy(b[:], mac)
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// MaxLearnedIdle is the longest idle timeout OpenFlow gives a flow; the
// agent expires learned affinity entries with longer timeouts itself.
const MaxLearnedIdle = 65535

// learnAffinity records, in DLB_AFFINITY, that the packet's source address
// goes to the member whose key is in RegMember, for every port of the
// group (the learned flow matches the group's id bits of RegService).
func (c *compiler) learnAffinity(g Group, id uint32) of.Learn {
	et, src := of.EthTypeIPv4, of.FieldIPv4Src
	if netip.MustParseAddr(g.VIP).Unmap().Is6() {
		et, src = of.EthTypeIPv6, of.FieldIPv6Src
	}
	idle := 0 // kept by the switch until the agent expires it
	if t := g.Affinity.ClientIPTimeoutS; t <= MaxLearnedIdle {
		idle = t
	}
	return of.Learn{Table: c.t(TableAffinity), IdleTimeout: uint16(idle), Priority: 100, Cookie: Cookie(KindAffinity, id, 0),
		Specs: []of.LearnSpec{
			of.LearnMatchValue(of.All(of.FieldEthType), uint64(et)),
			of.LearnMatchField(of.Sub(of.Reg(RegService), 8, 8+serviceBits-1)),
			of.LearnMatchField(of.All(src)),
			of.LearnLoadField(of.All(of.Reg(RegMember)), of.All(of.Reg(RegMember))),
		}}
}

// MemberKeys gives each member of a group the non-zero 32-bit key that
// affinity entries record: a hash of its address and port, so that it stays
// the same while other members come and go (a collision within the group,
// all but impossible, moves the later member to the next free key).
func MemberKeys(ms []Member) []uint32 {
	keys := make([]uint32, len(ms))
	used := make(map[uint32]bool, len(ms))
	for i, m := range ms {
		h := fnv.New32a()
		fmt.Fprintf(h, "%s/%d", netip.MustParseAddr(m.IP).Unmap(), m.Port)
		k := h.Sum32()
		for k == 0 || used[k] {
			k++
		}
		used[k] = true
		keys[i] = k
	}
	return keys
}

// Reply lookups key on protocol and port only (one flow per target port,
// not per member, which keeps a 10,000-VIP host at a few flows per VIP):
// other traffic from such a port gets a conntrack lookup, which commits
// nothing.

func ipOf(v6 bool) of.MatchOption {
	if v6 {
		return of.IPv6
	}
	return of.IP
}

// natLookup sends a packet through conntrack in the DLB's zone, applying
// the NAT of its connection, and continues in table.
func natLookup(zone uint16, table uint8) of.CT {
	ct := of.ConnTrack(zone)
	ct.Table = table
	ct.NAT = &of.NAT{}
	return ct
}

// arpReply turns an ARP request for vip into the reply, sent back out of
// the port it came from. The actions but the last two are shared.
func (c *compiler) arpReply(vip netip.Addr) []of.Action {
	if c.arpHead == nil {
		mac := c.cfg.MAC
		c.arpHead = []of.Action{
			of.Move{Src: of.All(of.FieldEthSrc), Dst: of.All(of.FieldEthDst)},
			of.SetBytes(of.FieldEthSrc, mac),
			of.Set(of.FieldARPOp, 2),
			of.Move{Src: of.All(of.FieldARPSHA), Dst: of.All(of.FieldARPTHA)},
			of.SetBytes(of.FieldARPSHA, mac),
			of.Move{Src: of.All(of.FieldARPSPA), Dst: of.All(of.FieldARPTPA)},
		}
	}
	out := make([]of.Action, 0, len(c.arpHead)+2)
	out = append(out, c.arpHead...)
	return append(out, of.SetBytes(of.FieldARPSPA, vip.AsSlice()), of.OutInPort())
}

// memberMAC finds a member's MAC: its own mac field, else the agent's
// table, else a local VM port with its address; nil when unknown.
func (c *compiler) memberMAC(ip netip.Addr, m Member) net.HardwareAddr {
	if m.MAC != "" {
		mac, _ := net.ParseMAC(m.MAC)
		return mac
	}
	if mac, ok := c.in.MACs[ip]; ok {
		return mac
	}
	for _, p := range c.in.Ports {
		if p.MAC != nil && containsAddr(p.IPs, ip) {
			return p.MAC
		}
	}
	return nil
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x.Unmap() == a {
			return true
		}
	}
	return false
}

// previous returns the member index of each bucket of the installed group
// gid, by the address and port its bucket translates to, or by the member
// key it sets (DSR), or nil.
func (c *compiler) previous(gid uint32, g Group, ps PortSpec, keys []uint32) []int {
	inst := c.in.Installed[gid]
	if inst == nil {
		return nil
	}
	idx := map[netip.AddrPort]int{}
	for i, m := range g.Members {
		idx[netip.AddrPortFrom(netip.MustParseAddr(m.IP).Unmap(), targetPort(ps, m))] = i
	}
	byKey := make(map[uint64]int, len(keys))
	for i, k := range keys {
		byKey[uint64(k)] = i
	}
	prev := make([]int, inst.NumBuckets())
	for s := range prev {
		b := inst.BucketAt(s)
		prev[s] = -1
		for _, a := range b.Actions {
			if dst, ok := natTarget(a); ok {
				if i, ok := idx[dst]; ok {
					prev[s] = i
				}
			} else if k, ok := memberKeyOf(a); ok && g.Mode == ModeDSR {
				if i, ok := byKey[k]; ok {
					prev[s] = i
				}
			}
		}
	}
	return prev
}

// memberKeyOf is the member key a bucket action sets, if it is one.
func memberKeyOf(a of.Action) (uint64, bool) {
	sf, ok := a.(of.SetField)
	if !ok || sf.Field != of.Reg(RegMember) || sf.Mask != nil {
		return 0, false
	}
	var k uint64
	for _, b := range sf.Value {
		k = k<<8 | uint64(b)
	}
	return k, true
}

// natTarget is the address a bucket's commit translates to: a CTCommitNAT
// that the compiler made, or the CT the switch reported.
func natTarget(a of.Action) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case of.CTCommitNAT:
		return a.Dst, true
	case of.CT:
		if a.NAT != nil && a.NAT.AddrMin.IsValid() {
			return netip.AddrPortFrom(a.NAT.AddrMin.Unmap(), a.NAT.PortMin), true
		}
	}
	return netip.AddrPort{}, false
}

package pipeline

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"

	"github.com/ovs-dlb/dlb/lb"
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
	// Groups are checked groups (lb.Check): their addresses are parsed
	// already, and Compile never parses them again.
	Groups []lb.Checked
	Ports  []LocalPort
	// MACs are members' MAC addresses the agent knows (resolved, or from
	// its inventory); a member's own mac field wins.
	MACs map[netip.Addr]net.HardwareAddr
	// Installed, when set, is what the switch holds now: the agent passes
	// it after it (re)read the switch, and the compiler takes the members'
	// indexes and slots from it (see Assign), so that a restarted agent
	// moves nothing. Otherwise the compiler goes on from its last output.
	Installed *Installed
	// Validated says Groups passed lb.CheckSet (or lb.CheckAll) as a set
	// already (a source that checks what it delivers sets it, to spare a
	// second pass over thousands of groups on every change); otherwise
	// Compile checks the set.
	Validated bool
	// Slots are the shares least-connections groups deal their new
	// connections by (lb.ShareSlots), by group name: how many of
	// lb.MaxSlots slots each member gets, in the group's member order. A
	// group without them (or with a list that does not fit its members)
	// is dealt by weight. A group whose slots changed must be named in
	// Changed.
	Slots map[string][]int
	// Probes are the health probes this host sends, whose answers the
	// pipeline hands to the agent.
	Probes []Probe
	// Changed, when not nil, names the groups that may have changed since
	// the previous Compile on the same Compiler (added ones included); the
	// others are taken as they were.
	Changed map[string]bool
}

// Output is the desired state of the bridge.
type Output struct {
	Flows  []*of.Flow
	Groups []*of.Group
	// Commits are the members' commit flows in DLB_MEMBER, by VIP port
	// (each port once), in a compact form (Commits.Flow gives each flow).
	Commits []*Commits
	// Unresolved lists members whose MAC is unknown: their traffic cannot
	// be delivered until the agent resolves it.
	Unresolved []netip.Addr
	// Affinity maps the service id of each group with session affinity to
	// its client_ip_timeout_s: the owners of the learned flows in
	// DLB_AFFINITY (cookie Cookie(KindAffinity, id, 0)). Learned flows of
	// other ids are left over from groups that went.
	Affinity map[uint32]int
}

// AllFlows is every flow of the output, the commits' included, as
// ovs-ofctl would list them (for printing; the reconciler diffs commits
// in their own form).
func (o *Output) AllFlows() []*of.Flow {
	out := slices.Clone(o.Flows)
	for _, set := range o.Commits {
		for i := range set.Members {
			out = append(out, set.Flow(i))
		}
	}
	return out
}

// Compile computes the flows and groups of the pipeline. It is a pure
// function of its input.
func Compile(in Input) (*Output, error) { return NewCompiler().Compile(in) }

// Compiler compiles again and again, reusing what did not change: a group
// whose document and id are the same as last time keeps its flows and
// select group (the same pointers, so a reconciler can skip them without
// comparing).
// The result is the same as Compile's.
type Compiler struct {
	ids    *serviceIDAssigner   // service ids of the last set of names
	key    string               // config, ports and MACs the cache is valid for
	cfgKey string               // config the shapes are valid for
	groups map[string]*groupOut // by group name
	shared map[string]*sharedOut
	// layouts are the groups' member indexes and slots, by group name;
	// shapes the select groups, by shape (shapeKey) and by id. Both outlive
	// a change of ports or MACs (which recompiles every group).
	layouts  map[string]*memberLayout
	shapes   map[string]*shapeOut
	shapeIDs map[uint32]*shapeOut
	// adopted is the installed state being taken over, during a Compile
	// given one.
	adopted *adoption
	gen     uint64 // compile generation, stamping the shared flows emitted
	// Scratch space kept between compiles, so that a one-group change at
	// 10,000 groups allocates little more than its output.
	prints  []uint64
	names   []string
	scratch []byte
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
	shapes     []*shapeOut
	flows      []*of.Flow
	commits    []*Commits
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
	return &Compiler{ids: newServiceIDAssigner(serviceBits), groups: map[string]*groupOut{}, shared: map[string]*sharedOut{},
		layouts: map[string]*memberLayout{}, shapes: map[string]*shapeOut{}, shapeIDs: map[uint32]*shapeOut{}}
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
	if key := fmt.Sprintf("%+v", in.Config); key != k.cfgKey {
		k.cfgKey, k.shapes, k.shapeIDs = key, map[string]*shapeOut{}, map[uint32]*shapeOut{}
	}
	k.gen++
	// print computes a group's fingerprint, or returns the cached one for a
	// group the caller says did not change.
	print := func(g *lb.Checked) uint64 {
		if in.Changed != nil && !in.Changed[g.Name] {
			if e := k.groups[g.Name]; e != nil {
				return e.print
			}
		}
		p := g.Fingerprint()
		if q, ok := in.Slots[g.Name]; ok {
			for _, n := range q {
				p = (p ^ uint64(n)) * 1099511628211
			}
			p = (p ^ 0xff) * 1099511628211
		}
		return p
	}
	k.prints = slices.Grow(k.prints[:0], len(in.Groups))[:len(in.Groups)]
	prints := k.prints
	for i := range in.Groups {
		prints[i] = print(&in.Groups[i])
	}
	if !in.Validated {
		if err := lb.CheckSet(in.Groups); err != nil {
			return nil, err
		}
	}
	c := &compiler{in: in, cfg: in.Config, unresolved: map[netip.Addr]bool{}, cache: k,
		out: &Output{Flows: make([]*of.Flow, 0, len(k.shared)+3*len(in.Groups)), Affinity: map[uint32]int{}}}
	if in.Installed != nil {
		c.adopt(in.Installed)
		defer func() { k.adopted = nil }()
	}
	c.pipeline()
	c.probeAnswers()
	k.names = k.names[:0]
	for i := range in.Groups {
		k.names = append(k.names, in.Groups[i].Name)
	}
	ids := k.ids.update(k.names, in.Changed)
	// Groups in input order: the output is the same for the same input.
	// The cache is updated in place; entries of groups no longer there are
	// swept by generation afterwards.
	for i := range in.Groups {
		g := &in.Groups[i]
		e := k.groups[g.Name]
		if e == nil || e.id != ids[g.Name] || e.print != prints[i] {
			e = c.service(g, ids[g.Name])
			k.groups[g.Name] = e
		}
		e.gen = k.gen
		for _, sh := range e.shapes {
			c.useShape(sh)
		}
		c.out.Flows = append(c.out.Flows, e.flows...)
		c.out.Commits = append(c.out.Commits, e.commits...)
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
	if len(k.layouts) != len(in.Groups) {
		for name := range k.layouts {
			if e := k.groups[name]; e == nil || e.gen != k.gen {
				delete(k.layouts, name)
			}
		}
	}
	if len(k.shapes) != len(c.out.Groups) {
		for key, sh := range k.shapes {
			if sh.gen != k.gen {
				delete(k.shapes, key)
				delete(k.shapeIDs, sh.id)
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

type compiler struct {
	in         Input
	cfg        Config
	out        *Output
	unresolved map[netip.Addr]bool
	cache      *Compiler
	fixed      int // fixed flows emitted so far
	arpHead    []of.Action
	// portsOf indexes the VM ports (with a number) by address, in port
	// order; built on first use (localMemberPorts).
	portsOf map[netip.Addr][]LocalPort
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
	if c.first(&sh.gen) {
		c.out.Flows = append(c.out.Flows, sh.flow)
	}
}

// first stamps gen with this compile and reports whether it was the first
// to (what several groups share is output once).
func (c *compiler) first(gen *uint64) bool {
	if *gen == c.cache.gen {
		return false
	}
	*gen = c.cache.gen
	return true
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

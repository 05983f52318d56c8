package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovs-dlb/dlb/lb"
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/ovsdb"
	"github.com/ovs-dlb/dlb/pipeline"
)

// switchConn is what the reconciler needs of an OpenFlow connection to
// the bridge (an *ofctrl.Conn): read back what is installed, and apply a
// change as one bundle.
type switchConn interface {
	DumpFlows(ctx context.Context, table uint8, cookie, mask uint64) ([]ofctrl.FlowStats, error)
	DumpGroups(ctx context.Context) ([]*ofctrl.Group, error)
	Apply(ctx context.Context, mods ...ofctrl.Mod) error
	statsSource
}

// bridgeSwitch hands out the bridge's current connection, or an error
// while there is none (an *ofctrl.Switch, through switchOf).
type bridgeSwitch interface {
	TryConn() (switchConn, error)
}

// switchOf is an *ofctrl.Switch as a bridgeSwitch.
type switchOf struct{ *ofctrl.Switch }

func (s switchOf) TryConn() (switchConn, error) {
	c, err := s.Switch.TryConn()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// portInventory is the bridge's ports (an *ovsdb.Inventory).
type portInventory interface {
	Ports() []ovsdb.Port
}

// flusher removes the conntrack entries of departed members (a
// *conntrackFlusher) and returns what failed.
type flusher interface {
	flush(ctx context.Context, gone []lb.Departure) []error
}

// reconciler keeps the bridge's DLB flows and groups equal to what the
// pipeline computes from the groups and the VM ports. It never flushes:
// it diffs desired against installed and applies the difference in one
// bundle, and on a new connection it first reads what is installed, so an
// agent restart changes nothing that is already right.
type reconciler struct {
	cfg     pipeline.Config
	comp    *pipeline.Compiler
	inv     portInventory
	log     *slog.Logger
	metrics *metrics

	kick chan struct{}

	mu sync.Mutex // guards everything below; held for a whole reconcile
	// groups is the desired group set; nil until a source delivered one;
	// version is its source's version of it, and applied the version last
	// installed (told to onApplied).
	groups           []lb.Checked
	version, applied uint64
	versionAt        time.Time
	onApplied        func(uint64)
	// prints are the groups' fingerprints; changed names the groups that
	// changed since the last compile (nil: all may have).
	// sparePrints is the map before, kept for its room.
	prints, sparePrints map[string]uint64
	changed             map[string]bool
	// compiled are the groups of the last compile installed, and byName
	// their positions (made when first needed): what the members' counters
	// are named after (resolveCommits); commitGen counts the bundles
	// applied.
	compiled  []lb.Checked
	byName    map[string]int
	commitGen atomic.Uint64
	// first is closed once a reconcile installed what was wanted: the
	// counters are read only then (a first install of 300,000 flows goes
	// faster without a dump of them beside it).
	first     chan struct{}
	firstOnce sync.Once
	// flows and ofGroups are what is installed, as last read or applied;
	// valid only for conn.
	conn     switchConn
	flows    map[string]*installed
	commits  map[pipeline.SetKey]*installedCommits // by VIP port and role
	ofGroups map[uint32]*ofctrl.Group
	// adopt says the next compile takes over what was read (members'
	// indexes and slots), rather than going on from its own last output.
	adopt bool
	gen   uint64 // reconcile generation, for sweeping flows no longer wanted
	// learned are the service ids that may have learned affinity flows on
	// the switch (which the diff leaves alone); affinity are the current
	// groups' affinity timeouts, by service id.
	learned  map[uint32]bool
	affinity map[uint32]int
	// departed are members that left their groups, whose conntrack
	// entries go once the switch no longer sends new connections to them
	// (handed to flushes after the bundle that stopped those).
	departed []lb.Departure
	flusher  flusher
	flushes  *flushQueue
	// grace is how long a new version may wait for members' MACs before
	// it is reported applied anyway (unresolvedGrace).
	grace time.Duration

	// slots are the least-connections groups' shares (the balancer's),
	// by group name.
	slots map[string][]int
	// probes are the health probes whose answers the pipeline catches
	// (the prober's).
	probes []pipeline.Probe

	macMu sync.Mutex                      // guards macs
	macs  map[netip.Addr]net.HardwareAddr // members' MACs the resolver learned
	// resolve, when set, is told which members still need a MAC (member ->
	// a VIP of theirs).
	resolve func(map[netip.Addr]netip.Addr)
}

// learnMAC records a member's MAC (from the resolver) and reconciles if it
// is new or changed.
func (r *reconciler) learnMAC(ip netip.Addr, mac net.HardwareAddr) {
	r.macMu.Lock()
	old := r.macs[ip]
	changed := old.String() != mac.String()
	if changed {
		r.macs[ip] = mac
	}
	r.macMu.Unlock()
	if changed {
		r.trigger()
	}
}

func (r *reconciler) knownMACs() map[netip.Addr]net.HardwareAddr {
	r.macMu.Lock()
	defer r.macMu.Unlock()
	m := make(map[netip.Addr]net.HardwareAddr, len(r.macs))
	for k, v := range r.macs {
		m[k] = v
	}
	return m
}

// installed is a flow on the switch and the last reconcile that wanted it.
type installed struct {
	flow *ofctrl.Flow
	gen  uint64
}

func newReconciler(cfg pipeline.Config, inv portInventory, log *slog.Logger, m *metrics) *reconciler {
	return &reconciler{cfg: cfg, comp: pipeline.NewCompiler(), inv: inv, log: log, metrics: m, kick: make(chan struct{}, 1),
		macs: map[netip.Addr]net.HardwareAddr{}, flushes: newFlushQueue(), grace: unresolvedGrace, first: make(chan struct{})}
}

// trigger asks for a reconcile soon.
func (r *reconciler) trigger() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// setGroups installs a new desired group set, noting which groups changed
// so that the compiler looks at those only.
func (r *reconciler) setGroups(groups []lb.Checked, version uint64) {
	if groups == nil {
		// A delivered set is a set, if empty (a groups file emptied to ""
		// or "{}"): nil would read as "no source has spoken yet" and leave
		// the old groups installed.
		groups = []lb.Checked{}
	}
	r.mu.Lock()
	// The fingerprints go in the map the set before last had (a set of
	// 10,000 groups on every change: its room is kept).
	prints := r.sparePrints
	if prints == nil {
		prints = make(map[string]uint64, len(groups))
	}
	clear(prints)
	for i := range groups {
		prints[groups[i].Name] = groups[i].Fingerprint()
	}
	if r.prints != nil && (r.changed != nil || r.groups == nil) {
		if r.changed == nil {
			r.changed = map[string]bool{}
		}
		for name, p := range prints {
			if old, ok := r.prints[name]; !ok || old != p {
				r.changed[name] = true
			}
		}
	}
	if r.groups != nil {
		// Only groups that changed or went can have lost members.
		var touched []lb.Checked
		for i := range r.groups {
			if p, ok := prints[r.groups[i].Name]; !ok || p != r.prints[r.groups[i].Name] {
				touched = append(touched, r.groups[i])
			}
		}
		if len(touched) > 0 {
			// (Departed indexes the whole new set: not for a creation.)
			r.departed = append(r.departed, lb.Departed(touched, groups)...)
		}
	}
	if version != r.version {
		r.versionAt = time.Now()
	}
	r.groups, r.prints, r.sparePrints, r.version = groups, prints, r.prints, version
	r.mu.Unlock()
	r.trigger()
}

// setSlots installs the shares of the least-connections groups named in
// changed (slots has every such group's), and reconciles.
func (r *reconciler) setSlots(slots map[string][]int, changed []string) {
	r.mu.Lock()
	r.slots = slots
	if r.changed != nil {
		for _, name := range changed {
			r.changed[name] = true
		}
	}
	r.mu.Unlock()
	r.trigger()
}

// setProbes installs the flows that catch the prober's answers.
func (r *reconciler) setProbes(probes []pipeline.Probe) {
	r.mu.Lock()
	r.probes = probes
	r.mu.Unlock()
	r.trigger()
}

// lcGroup is a least-connections group as the balancer sees it.
type lcGroup struct {
	name, view string
	// keys are the members' labels, capacity their weights (0 for those
	// that take no new connections), in the group's order.
	keys     []string
	capacity []int
}

// lcGroups are the desired least-connections groups.
func (r *reconciler) lcGroups() []lcGroup {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []lcGroup
	for i := range r.groups {
		g := &r.groups[i]
		if !g.LeastConnections() {
			continue
		}
		e := lcGroup{name: g.Name, view: g.LoadViewOf(), keys: make([]string, len(g.Members)), capacity: lb.ActiveWeights(&g.Group)}
		for m := range g.Members {
			e.keys[m] = lb.MemberLabel(g.MemberAddr(m), g.Members[m].Port)
		}
		out = append(out, e)
	}
	return out
}

// run reconciles whenever something changed, and retries failures.
func (r *reconciler) run(ctx context.Context, sw bridgeSwitch) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-retry.C:
		}
		conn, err := sw.TryConn()
		if err != nil {
			// OnConnect reconciles when the switch is back; but a change
			// that arrives while OnConnect's reconcile runs (the switch is
			// not handed out until it returns) must not be lost: try again.
			retry.Reset(50 * time.Millisecond)
			continue
		}
		if err := r.reconcile(ctx, conn); err != nil {
			r.log.Error("reconcile failed", "err", err, "retry_in", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// onConnect is the Switch's OnConnect: it reconciles on the new
// connection before anyone else uses it.
func (r *reconciler) onConnect(ctx context.Context, c switchConn) error {
	r.metrics.connects.Inc()
	return r.reconcile(ctx, c)
}

func (r *reconciler) localPorts() []pipeline.LocalPort {
	var out []pipeline.LocalPort
	for _, p := range r.inv.Ports() {
		if !p.IsVM() || p.OFPort <= 0 {
			continue
		}
		out = append(out, pipeline.LocalPort{Name: p.Name, OFPort: uint32(p.OFPort), IfaceID: p.IfaceID, MAC: p.MAC, IPs: p.IPs, Labels: p.ExternalIDs})
	}
	return out
}

// readInstalled loads what the DLB has on the switch.
func (r *reconciler) readInstalled(ctx context.Context, c switchConn) error {
	fs, err := c.DumpFlows(ctx, ofctrl.TableAll, pipeline.CookieMagic, pipeline.CookieMagicMask)
	if err != nil {
		return err
	}
	gs, err := c.DumpGroups(ctx)
	if err != nil {
		return err
	}
	r.learned = map[uint32]bool{}
	var rest []*ofctrl.Flow
	for _, f := range fs {
		if pipeline.CookieKind(f.Flow.Cookie) == pipeline.KindAffinity {
			r.learned[pipeline.CookieService(f.Flow.Cookie)] = true
			continue
		}
		rest = append(rest, f.Flow)
	}
	r.commits, rest = readCommits(rest, r.cfg)
	r.seedMACs()
	r.flows = make(map[string]*installed, len(rest))
	for _, f := range rest {
		r.flows[f.Key()] = &installed{flow: f}
	}
	r.ofGroups = map[uint32]*ofctrl.Group{}
	for _, g := range gs {
		if pipeline.IsDLBGroup(g.ID) {
			r.ofGroups[g.ID] = g
		}
	}
	r.conn, r.adopt = c, true
	r.log.Info("read installed state", "flows", len(r.flows)+commitCount(r.commits), "groups", len(r.ofGroups))
	return nil
}

// seedMACs takes the MACs the installed commits record for members whose
// MAC the agent does not know yet (a restarted agent): the commits then
// stay as they are instead of losing their MAC until it is resolved again.
func (r *reconciler) seedMACs() {
	r.macMu.Lock()
	defer r.macMu.Unlock()
	for _, e := range r.commits {
		for _, m := range e.set.Members {
			if ip, mac, ok := pipeline.CommitMAC(m.Action); ok && r.macs[ip] == nil {
				r.macs[ip] = mac
			}
		}
	}
}

// reconcile makes the switch match the desired state, in one bundle.
func (r *reconciler) reconcile(ctx context.Context, c switchConn) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.groups == nil {
		return nil // no source has spoken yet: leave what is installed alone
	}
	start := time.Now()
	if r.conn != c {
		if err := r.readInstalled(ctx, c); err != nil {
			return fmt.Errorf("read installed flows: %w", err)
		}
	}
	var inst *pipeline.Installed
	if r.adopt {
		inst = &pipeline.Installed{Groups: r.ofGroups, Flows: make([]*ofctrl.Flow, 0, len(r.flows))}
		for _, e := range r.flows {
			inst.Flows = append(inst.Flows, e.flow)
		}
		for _, e := range r.commits {
			inst.Commits = append(inst.Commits, e.set)
		}
	}
	// Sources deliver only checked sets (lb.Checked, the set through lb.CheckSet).
	out, err := r.comp.Compile(pipeline.Input{Config: r.cfg, Groups: r.groups, Ports: r.localPorts(), MACs: r.knownMACs(),
		Installed: inst, Validated: true, Changed: r.changed, Slots: r.slots, Probes: r.probes})
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	r.adopt = false
	r.changed = map[string]bool{} // the compiler has seen every change so far
	// The diff updates the installed state in place; if the switch refuses
	// the bundle, the state is dropped and read again.
	r.gen++
	mods, st := diff(r.flows, r.commits, r.ofGroups, out, r.gen)
	mods = append(mods, r.forgetAffinity(out.Affinity)...)
	computed := time.Now()
	if len(mods) > 0 {
		if err := c.Apply(ctx, mods...); err != nil {
			r.metrics.errors.Inc()
			r.conn = nil // re-read the switch next time
			return err
		}
	}
	if len(mods) > 0 {
		r.commitGen.Add(1)
	}
	r.compiled, r.byName = r.groups, nil
	r.firstOnce.Do(func() { close(r.first) })
	r.flushDeparted()
	took := time.Since(start)
	r.metrics.observe(st, took, len(r.flows)+commitCount(r.commits), len(r.ofGroups))
	if len(mods) > 0 {
		level := slog.LevelInfo
		if st.flowAdd+st.flowDel == 0 && st.groupMod == 0 {
			// A least-connections group's new shares (a new select
			// group, its flow pointed at it, the old one deleted) every
			// interval: not news.
			level = slog.LevelDebug
		}
		r.log.Log(ctx, level, "reconciled", "flow_adds", st.flowAdd, "flow_mods", st.flowMod, "flow_dels", st.flowDel,
			"group_adds", st.groupAdd, "group_mods", st.groupMod, "group_dels", st.groupDel, "took", took,
			"computing", computed.Sub(start), "switch", took-computed.Sub(start))
	}
	r.askFor(out.Unresolved)
	// A version is applied once installed with every member's MAC known
	// (until then a new member gets no connection), or, for members that
	// do not answer, once the resolver had its time.
	if r.version != r.applied {
		if len(out.Unresolved) == 0 || time.Since(r.versionAt) >= r.grace {
			r.applied = r.version
			if r.onApplied != nil {
				r.onApplied(r.version)
			}
		} else {
			time.AfterFunc(r.grace-time.Since(r.versionAt), r.trigger)
		}
	}
	return nil
}

// unresolvedGrace is how long a new version may wait for members' MACs
// before it is reported applied anyway.
const unresolvedGrace = 2 * time.Second

// forgetAffinity deletes the learned affinity flows of groups that went or
// no longer ask for affinity, and notes whose flows may now be learned.
func (r *reconciler) forgetAffinity(want map[uint32]int) []ofctrl.Mod {
	var mods []ofctrl.Mod
	for svc := range r.learned {
		if _, ok := want[svc]; !ok {
			mods = append(mods, ofctrl.DeleteFlows(r.cfg.Table(pipeline.TableAffinity), pipeline.Cookie(pipeline.KindAffinity, svc, 0), pipeline.CookieKindMask|pipeline.CookieServiceMask))
			delete(r.learned, svc)
		}
	}
	for svc := range want {
		r.learned[svc] = true
	}
	r.affinity = want
	return mods
}

// flushDeparted hands the members that left their groups to the flushes,
// now that no new connection goes to them.
func (r *reconciler) flushDeparted() {
	if len(r.departed) > 0 && r.flusher != nil {
		r.flushes.push(r.departed)
	}
	r.departed = nil
}

// runFlushes removes the conntrack entries of departed members, one batch
// at a time and in order, apart from the reconciles (a flush waits for a
// revalidation round of ovs-vswitchd, up to half a second, which must not
// hold up the next change). A failure is counted and logged, not retried
// (the entries then expire on their own). When ctx ends it still does
// the flushes handed over, each within flushTimeout, then returns.
func (r *reconciler) runFlushes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
		case <-r.flushes.ready:
		}
		r.flushPending(ctx)
		if ctx.Err() != nil {
			return
		}
	}
}

// flushPending does the flushes handed over so far, in order, each within
// flushTimeout even when ctx has ended.
func (r *reconciler) flushPending(ctx context.Context) {
	for _, gone := range r.flushes.take() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		r.flushOnce(fctx, gone)
		cancel()
	}
}

// flushTimeout bounds one batch of flushes (a revalidation round and a
// unixctl call per departed member's port).
const flushTimeout = 10 * time.Second

func (r *reconciler) flushOnce(ctx context.Context, gone []lb.Departure) {
	gone = r.stillGone(gone)
	if len(gone) == 0 {
		return
	}
	failed := r.flusher.flush(ctx, gone)
	r.metrics.flushes.WithLabelValues("ok").Add(float64(len(gone) - len(failed)))
	for _, err := range failed {
		r.metrics.flushes.WithLabelValues("error").Inc()
		r.log.Error("flushing a departed member's connections", "err", err)
	}
	r.log.Info("flushed departed members' connections", "members", len(gone)-len(failed))
}

// flushQueue holds the batches of departures not flushed yet.
type flushQueue struct {
	mu      sync.Mutex // guards batches
	batches [][]lb.Departure
	ready   chan struct{} // a batch was pushed
}

func newFlushQueue() *flushQueue { return &flushQueue{ready: make(chan struct{}, 1)} }

func (q *flushQueue) push(gone []lb.Departure) {
	q.mu.Lock()
	q.batches = append(q.batches, gone)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *flushQueue) take() [][]lb.Departure {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.batches
	q.batches = nil
	return b
}

// stillGone drops the departures whose member is back in its group's VIP
// port by now: its new connections must not be flushed.
func (r *reconciler) stillGone(gone []lb.Departure) []lb.Departure {
	r.mu.Lock()
	groups := r.groups
	r.mu.Unlock()
	// Only groups on the departures' VIPs can have taken them back (a
	// pass over every member of 10,000 groups per flush was the agent's
	// busiest work while groups came and went).
	vips := make(map[netip.Addr]bool, len(gone))
	for _, d := range gone {
		vips[d.VIP] = true
	}
	var onVIPs []lb.Checked
	for i := range groups {
		if vips[groups[i].VIPAddr] {
			onVIPs = append(onVIPs, groups[i])
		}
	}
	back := map[lb.Departure]bool{}
	for _, d := range lb.Departed(onVIPs, nil) {
		d.Scope = nil
		back[d] = true
	}
	var out []lb.Departure
	for _, d := range gone {
		k := d
		k.Scope = nil
		if !back[k] {
			out = append(out, d)
		}
	}
	return out
}

// askFor hands the members without a MAC to the resolver, each with a VIP
// of one of its groups to ask as.
func (r *reconciler) askFor(unresolved []netip.Addr) {
	if r.resolve == nil {
		return
	}
	want := make(map[netip.Addr]netip.Addr, len(unresolved))
	if len(unresolved) > 0 {
		missing := make(map[netip.Addr]bool, len(unresolved))
		for _, ip := range unresolved {
			missing[ip] = true
		}
		for i := range r.groups {
			g := &r.groups[i]
			for j := range g.Members {
				if ip := g.MemberAddr(j); missing[ip] {
					want[ip] = g.VIPAddr
				}
			}
		}
		r.log.Debug("resolving members' MACs", "members", unresolved)
	}
	r.resolve(want)
}

type diffStats struct{ flowAdd, flowMod, flowDel, groupAdd, groupMod, groupDel int }

func (s diffStats) total() int {
	return s.flowAdd + s.flowMod + s.flowDel + s.groupAdd + s.groupMod + s.groupDel
}

// diff lists the mods that turn installed into desired, ordered so that a
// bundle applies them: groups are added before the flows that use them and
// deleted after. It updates flows and groups to the desired state (gen
// marks the flows wanted now). Objects the compiler reused are the very
// ones installed, so unchanged groups cost a pointer comparison.
func diff(flows map[string]*installed, commits map[pipeline.SetKey]*installedCommits, groups map[uint32]*ofctrl.Group, out *pipeline.Output, gen uint64) ([]ofctrl.Mod, diffStats) {
	var st diffStats
	var groupAdds, flowMods, flowDels, groupDels []ofctrl.Mod
	for _, g := range out.Groups {
		have, ok := groups[g.ID]
		switch {
		case have == g: // the compiler reused what is installed
			continue
		case !ok:
			groupAdds = append(groupAdds, g.Add())
			st.groupAdd++
		case have.String() != g.String():
			// Always the full bucket list: OVS 3.1 mishandles bucket
			// commands on dp_hash groups.
			groupAdds = append(groupAdds, g.Modify())
			st.groupMod++
		}
		groups[g.ID] = g
	}
	// Group ids in an output are distinct, so when as many are installed
	// as wanted, none is stale: no set to build at 10,000 groups.
	if len(groups) != len(out.Groups) {
		want := make(map[uint32]bool, len(out.Groups))
		for _, g := range out.Groups {
			want[g.ID] = true
		}
		for id := range groups {
			if !want[id] {
				groupDels = append(groupDels, ofctrl.DeleteGroup(id))
				delete(groups, id)
				st.groupDel++
			}
		}
	}
	stamped := 0 // distinct installed flows stamped with this generation
	for _, f := range out.Flows {
		k := f.Key()
		have, ok := flows[k]
		switch {
		case !ok:
			flowMods = append(flowMods, f.Add())
			flows[k] = &installed{flow: f, gen: gen}
			st.flowAdd++
			stamped++
			continue
		case have.gen == gen: // the same flow twice in one output
		default:
			stamped++
		}
		switch {
		case have.flow == f:
		case have.flow.String() == f.String():
		case have.flow.Cookie == f.Cookie && have.flow.IdleTimeout == f.IdleTimeout && have.flow.HardTimeout == f.HardTimeout:
			// Same flow, other actions: modify keeps its counters.
			flowMods = append(flowMods, f.ModifyStrict())
			st.flowMod++
		default:
			flowMods = append(flowMods, f.Add())
			st.flowMod++
		}
		have.flow, have.gen = f, gen
	}
	// Every installed flow not stamped is stale; when all are stamped there
	// is nothing to sweep.
	if stamped != len(flows) {
		var gone []string
		for k, e := range flows {
			if e.gen != gen {
				gone = append(gone, k)
			}
		}
		sort.Strings(gone)
		for _, k := range gone {
			flowDels = append(flowDels, flows[k].flow.DeleteStrict())
			delete(flows, k)
			st.flowDel++
		}
	}
	commitMods, commitDels := diffCommits(commits, out.Commits, gen, &st)
	flowMods = append(flowMods, commitMods...)
	flowDels = append(flowDels, commitDels...)
	sort.Slice(groupDels, func(i, j int) bool { return groupDels[i].String() < groupDels[j].String() })
	mods := make([]ofctrl.Mod, 0, st.total())
	mods = append(mods, groupAdds...)
	mods = append(mods, flowMods...)
	mods = append(mods, flowDels...)
	mods = append(mods, groupDels...)
	return mods, st
}

// resolveCommits names the members of commit flows as the last compile
// installed them (zero for a flow it did not make).
func (r *reconciler) resolveCommits(keys []commitKey) []memberRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName == nil {
		r.byName = make(map[string]int, len(r.compiled))
		for i := range r.compiled {
			r.byName[r.compiled[i].Name] = i
		}
	}
	out := make([]memberRef, len(keys))
	type portOf struct {
		group string
		port  int
	}
	ports := map[portOf]string{} // one label string a port
	for i, k := range keys {
		name, p, m, ok := r.comp.CommitMember(k.cookie, k.index)
		if !ok {
			continue
		}
		gi, ok := r.byName[name]
		if !ok {
			continue
		}
		g := &r.compiled[gi]
		if p >= len(g.Ports) || m >= len(g.Members) {
			continue
		}
		out[i] = refOf(g, p, m)
		if label, ok := ports[portOf{name, p}]; ok {
			out[i].Port = label
		} else {
			ports[portOf{name, p}] = out[i].Port
		}
	}
	return out
}

// commitChanges is how many bundles the reconciler applied so far.
func (r *reconciler) commitChanges() uint64 { return r.commitGen.Load() }

package pipeline

import (
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// Commits are one VIP port's flows of one role, one per member: its
// commit flows in DLB_MEMBER (one per active member),
//
//	table=DLB_MEMBER, priority=100, cookie=Cookie, PROTO,reg0=Port,reg2=Index actions=Action
//
// or its counting flows in DLB_COUNT, for each direction (one per member
// with an index: draining and disabled ones' connections are counted too),
//
//	table=DLB_COUNT, priority=100, cookie=Cookie, ct_state=-rpl+trk (+rpl+trk),ct_label=LABEL/MASK actions=drop
//
// with LABEL the port id and member index the member's commit writes
// (MemberLabel). A host has one of each per VIP port and member (100,000
// for 10,000 VIPs of 10), so they are kept in this form, about 70 bytes a
// member, rather than as flows of about 350 bytes each; Flow gives each as
// the flow it stands for.
type Commits struct {
	Role   Role
	Table  uint8
	Cookie uint64
	Port   uint32 // PortID, matched in RegService
	V6     bool
	Proto  uint8
	// Members in index order, each index once.
	Members []Commit
}

// Role is what a set's flows do.
type Role uint8

// Roles.
const (
	RoleCommit    Role = iota // a new connection's commit (DLB_MEMBER)
	RoleCountTo               // counts the packets to the member (DLB_COUNT)
	RoleCountFrom             // counts the packets from the member (DLB_COUNT)
	numRoles
)

// Commit is one member's commit: its index (matched in RegMember) and the
// action (an of.CTCommitNAT, or an of.CT in DSR mode; nil in a set of
// counting flows).
type Commit struct {
	Index  uint16
	Action of.Action
}

// commitPriority is the priority of every commit flow.
const commitPriority = 100

// Flow is the flow of member i.
func (c *Commits) Flow(i int) *of.Flow {
	m := c.Members[i]
	// send_flow_rem: when the agent removes it (its member left or
	// drained), OVS sends its final count (the member statistics).
	fb := of.NewFlow(c.Table, commitPriority).Cookie(c.Cookie).SendFlowRemoved()
	if c.Role != RoleCommit {
		rpl := of.CTState(of.CTTrk, of.CTRpl|of.CTTrk)
		if c.Role == RoleCountFrom {
			rpl = of.CTState(of.CTRpl|of.CTTrk, of.CTRpl|of.CTTrk)
		}
		v, mask := MemberLabel(c.Port, m.Index, nil).Bytes(), labelMemberMask.Bytes()
		return fb.Match(rpl, of.CTLabel(v, mask)).Done()
	}
	return fb.Match(of.RegEq(RegService, c.Port), of.RegEq(RegMember, uint32(m.Index)), of.L4(c.V6, c.Proto)).
		Actions(m.Action).Done()
}

// SameHeader reports whether two sets' flows differ only by member: same
// role, table, cookie and match but for the member index.
func (c *Commits) SameHeader(o *Commits) bool {
	return c.Role == o.Role && c.Table == o.Table && c.Cookie == o.Cookie && c.Port == o.Port && c.V6 == o.V6 && c.Proto == o.Proto
}

// Key is a set's place among the installed ones: its VIP port and role.
func (c *Commits) Key() SetKey { return SetKey{Port: c.Port, Role: c.Role} }

// SetKey identifies a VIP port's set of one role.
type SetKey struct {
	Port uint32
	Role Role
}

// CommitsOf reads a flow back as a commit or a counting flow: a flow of
// DLB_MEMBER or DLB_COUNT (of the pipeline at cfg's table base) with such
// a flow's cookie, priority and match. ok is false for any other flow.
func CommitsOf(f *of.Flow, cfg Config) (set Commits, m Commit, ok bool) {
	if f.Priority != commitPriority {
		return Commits{}, Commit{}, false
	}
	switch kind := CookieKind(f.Cookie); {
	case f.Table == cfg.Table(TableCount) && (kind == KindCountTo || kind == KindCountFrom):
		return countOf(f, kind)
	case f.Table != cfg.Table(TableMember) || kind != KindMember || len(f.Actions) != 1 || f.Match.Len() != 4:
		return Commits{}, Commit{}, false
	}
	if _, goto_ := f.GotoTable(); goto_ || f.IdleTimeout != 0 || f.HardTimeout != 0 {
		return Commits{}, Commit{}, false
	}
	port, ok1 := regOf(f, RegService)
	idx, ok2 := regOf(f, RegMember)
	et, _, ok3 := f.Match.Value(of.FieldEthType)
	proto, _, ok4 := f.Match.Value(of.FieldIPProto)
	if !ok1 || !ok2 || !ok3 || !ok4 || len(et) != 2 || len(proto) != 1 || idx == 0 || idx > 0xffff {
		return Commits{}, Commit{}, false
	}
	v6 := uint16(et[0])<<8|uint16(et[1]) == of.EthTypeIPv6
	set = Commits{Role: RoleCommit, Table: f.Table, Cookie: f.Cookie, Port: port, V6: v6, Proto: proto[0]}
	// The match must be exactly the one Flow builds.
	probe := set
	probe.Members = []Commit{{Index: uint16(idx), Action: f.Actions[0]}}
	if probe.Flow(0).Key() != f.Key() {
		return Commits{}, Commit{}, false
	}
	return set, probe.Members[0], true
}

// countOf reads a counting flow back.
func countOf(f *of.Flow, kind uint8) (set Commits, m Commit, ok bool) {
	if len(f.Actions) != 0 || f.Match.Len() != 2 {
		return Commits{}, Commit{}, false
	}
	v, mask, ok := f.Match.Value(of.FieldCTLabel)
	if !ok || of.LabelOf(mask) != labelMemberMask {
		return Commits{}, Commit{}, false
	}
	port, index, ok := LabelMember(of.LabelOf(v))
	if !ok {
		return Commits{}, Commit{}, false
	}
	role := RoleCountTo
	if kind == KindCountFrom {
		role = RoleCountFrom
	}
	set = Commits{Role: role, Table: f.Table, Cookie: f.Cookie, Port: port}
	probe := set
	probe.Members = []Commit{{Index: index}}
	if probe.Flow(0).Key() != f.Key() {
		return Commits{}, Commit{}, false
	}
	return set, probe.Members[0], true
}

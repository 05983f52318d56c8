package pipeline

import (
	of "github.com/ovs-dlb/dlb/ofctrl"
)

// Commits are the commit flows of one VIP port in DLB_MEMBER, one per
// active member:
//
//	table=DLB_MEMBER, priority=100, cookie=Cookie, PROTO,reg0=Port,reg2=Index actions=Action
//
// A host has one per VIP port and member (100,000 for 10,000 VIPs of 10),
// so they are kept in this form, about 70 bytes a member, rather than as
// flows of about 350 bytes each; Flow gives each as the flow it stands for.
type Commits struct {
	Table  uint8
	Cookie uint64
	Port   uint32 // PortID, matched in RegService
	V6     bool
	Proto  uint8
	// Members in index order, each index once.
	Members []Commit
}

// Commit is one member's commit: its index (matched in RegMember) and the
// action (an of.CTCommitNAT, or an of.CT in DSR mode).
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
	return of.NewFlow(c.Table, commitPriority).Cookie(c.Cookie).SendFlowRemoved().
		Match(of.RegEq(RegService, c.Port), of.RegEq(RegMember, uint32(m.Index)), of.L4(c.V6, c.Proto)).
		Actions(m.Action).Done()
}

// SameHeader reports whether two sets' flows differ only by member: same
// table, cookie and match but for the member index.
func (c *Commits) SameHeader(o *Commits) bool {
	return c.Table == o.Table && c.Cookie == o.Cookie && c.Port == o.Port && c.V6 == o.V6 && c.Proto == o.Proto
}

// CommitsOf reads a flow back as a commit: a flow of DLB_MEMBER (at table
// offset memberTable) with a member commit's cookie, priority and match,
// and one action. ok is false for any other flow.
func CommitsOf(f *of.Flow, memberTable uint8) (set Commits, m Commit, ok bool) {
	if f.Table != memberTable || f.Priority != commitPriority || CookieKind(f.Cookie) != KindMember ||
		len(f.Actions) != 1 || f.Match.Len() != 4 {
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
	set = Commits{Table: f.Table, Cookie: f.Cookie, Port: port, V6: v6, Proto: proto[0]}
	// The match must be exactly the one Flow builds.
	probe := set
	probe.Members = []Commit{{Index: uint16(idx), Action: f.Actions[0]}}
	if probe.Flow(0).Key() != f.Key() {
		return Commits{}, Commit{}, false
	}
	return set, probe.Members[0], true
}

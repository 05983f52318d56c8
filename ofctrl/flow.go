package ofctrl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	of "antrea.io/libOpenflow/openflow15"
)

// DefaultPriority is OpenFlow's default flow priority; ovs-ofctl omits it.
const DefaultPriority = 32768

// Flow is one OpenFlow flow entry: where it lives, what it matches, what
// it does. Build flows with NewFlow, and do not change one after Done.
type Flow struct {
	Table       uint8
	Priority    uint16
	Cookie      uint64
	IdleTimeout uint16
	HardTimeout uint16
	// Flags are the flow's OpenFlow flags: FlagSendFlowRemoved or 0.
	Flags   uint16
	Match   Match
	Actions []Action
	// hasGoto and gotoTable are the goto_table instruction.
	hasGoto   bool
	gotoTable uint8
	// key memoises Key(); a flow must not change once built.
	key string
}

// GotoTable returns the flow's goto_table instruction, if any.
func (f *Flow) GotoTable() (uint8, bool) { return f.gotoTable, f.hasGoto }

// FlowBuilder builds a flow in the order ovs-ofctl reads one:
//
//	ofctrl.NewFlow(1, 100).Cookie(c).
//		Match(ofctrl.TCP, ofctrl.IPDst(vip), ofctrl.DstPort(ofctrl.ProtoTCP, 80)).
//		Actions(ct, ofctrl.ToGroup(7)).
//		Done()
type FlowBuilder struct{ f Flow }

// FlagSendFlowRemoved (OFPFF_SEND_FLOW_REM) has the switch send a flow
// removed message, with the flow's final counters, when it removes the
// flow (ConnOptions.FlowRemoved).
const FlagSendFlowRemoved uint16 = 1

// NewFlow starts a flow in a table with a priority.
func NewFlow(table uint8, priority uint16) *FlowBuilder {
	return &FlowBuilder{f: Flow{Table: table, Priority: priority}}
}

// Cookie sets the flow's cookie.
func (b *FlowBuilder) Cookie(c uint64) *FlowBuilder { b.f.Cookie = c; return b }

// SendFlowRemoved sets FlagSendFlowRemoved.
func (b *FlowBuilder) SendFlowRemoved() *FlowBuilder { b.f.Flags |= FlagSendFlowRemoved; return b }

// IdleTimeout removes the flow after it matched nothing for d.
func (b *FlowBuilder) IdleTimeout(d time.Duration) *FlowBuilder {
	b.f.IdleTimeout = uint16(d / time.Second)
	return b
}

// HardTimeout removes the flow d after it was added.
func (b *FlowBuilder) HardTimeout(d time.Duration) *FlowBuilder {
	b.f.HardTimeout = uint16(d / time.Second)
	return b
}

// Match adds match conditions.
func (b *FlowBuilder) Match(opts ...MatchOption) *FlowBuilder {
	if e := b.f.Match.entries; cap(e)-len(e) < len(opts)+1 {
		// Options add one field each, a protocol shorthand two: size the
		// entries once rather than let appends double them.
		b.f.Match.entries = append(make([]matchEntry, 0, len(e)+len(opts)+1), e...)
		b.f.Match.buf = append(make([]byte, 0, len(b.f.Match.buf)+8*len(opts)), b.f.Match.buf...)
	}
	for _, o := range opts {
		o(&b.f.Match)
	}
	return b
}

// Actions appends actions.
func (b *FlowBuilder) Actions(as ...Action) *FlowBuilder {
	b.f.Actions = append(b.f.Actions, as...)
	return b
}

// Goto continues processing in table t after the actions.
func (b *FlowBuilder) Goto(t uint8) *FlowBuilder {
	b.f.hasGoto, b.f.gotoTable = true, t
	return b
}

// Done returns the flow. The builder must not be used afterwards.
func (b *FlowBuilder) Done() *Flow {
	f := new(Flow)
	*f = b.f
	f.Match.compact()
	b.f = Flow{} // its match and actions now belong to the flow
	return f
}

// String renders the flow exactly as "ovs-ofctl --no-stats dump-flows"
// prints it (without the leading space).
func (f *Flow) String() string {
	var s strings.Builder
	if f.Cookie != 0 {
		fmt.Fprintf(&s, "cookie=%#x, ", f.Cookie)
	}
	if f.Table != 0 {
		fmt.Fprintf(&s, "table=%d, ", f.Table)
	}
	if f.IdleTimeout != 0 {
		fmt.Fprintf(&s, "idle_timeout=%d, ", f.IdleTimeout)
	}
	if f.HardTimeout != 0 {
		fmt.Fprintf(&s, "hard_timeout=%d, ", f.HardTimeout)
	}
	if f.Flags&FlagSendFlowRemoved != 0 {
		s.WriteString("send_flow_rem ")
	}
	s.WriteString(f.matchString())
	if s.Len() > 0 && !strings.HasSuffix(s.String(), " ") {
		s.WriteByte(' ')
	}
	s.WriteString("actions=")
	s.WriteString(f.actionsString())
	return s.String()
}

// Key identifies the flow on the switch: table, priority and match.
// Two flows with the same key replace each other.
func (f *Flow) Key() string {
	if f.key == "" {
		f.key = strconv.Itoa(int(f.Table)) + "/" + f.matchString()
	}
	return f.key
}

func (f *Flow) matchString() string {
	m := f.Match.String()
	if f.Priority == DefaultPriority {
		return m
	}
	if m == "" {
		return "priority=" + strconv.Itoa(int(f.Priority))
	}
	return "priority=" + strconv.Itoa(int(f.Priority)) + "," + m
}

func (f *Flow) actionsString() string {
	if f.hasGoto {
		g := "goto_table:" + strconv.Itoa(int(f.gotoTable))
		if len(f.Actions) == 0 {
			return g
		}
		return formatActions(f.Actions) + "," + g
	}
	return formatActions(f.Actions)
}

// FlowCommand is what a flow mod does.
type FlowCommand uint8

// Flow mod commands.
const (
	FlowAdd          FlowCommand = of.FC_ADD
	FlowModify       FlowCommand = of.FC_MODIFY
	FlowModifyStrict FlowCommand = of.FC_MODIFY_STRICT
	FlowDelete       FlowCommand = of.FC_DELETE
	FlowDeleteStrict FlowCommand = of.FC_DELETE_STRICT
)

var flowCommandNames = map[FlowCommand]string{FlowAdd: "ADD", FlowModify: "MODIFY", FlowModifyStrict: "MODIFY_STRICT", FlowDelete: "DELETE", FlowDeleteStrict: "DELETE_STRICT"}

func (c FlowCommand) String() string { return flowCommandNames[c] }

// Mod is a message that changes the switch: a flow mod or a group mod.
type Mod interface {
	// appendTo encodes the message with the given xid.
	appendTo(b []byte, xid uint32) []byte
	// String describes the change for errors and logs.
	String() string
}

// FlowMod adds, modifies or deletes flows.
type FlowMod struct {
	Command FlowCommand
	Flow    *Flow
	// CookieMask restricts modify and delete (non-strict) to flows whose
	// cookie matches Flow.Cookie under the mask.
	CookieMask uint64
}

// Add returns a mod that adds the flow (replacing one with the same key).
func (f *Flow) Add() FlowMod { return FlowMod{Command: FlowAdd, Flow: f} }

// ModifyStrict returns a mod that replaces the actions of the flow with
// exactly this table, priority and match.
func (f *Flow) ModifyStrict() FlowMod { return FlowMod{Command: FlowModifyStrict, Flow: f} }

// DeleteStrict returns a mod that deletes the flow with exactly this
// table, priority and match.
func (f *Flow) DeleteStrict() FlowMod { return FlowMod{Command: FlowDeleteStrict, Flow: f} }

// TableAll selects every table in DeleteFlows and flow statistics.
const TableAll uint8 = 0xff

// DeleteFlows deletes every flow of a table (TableAll for all) whose
// cookie matches cookie under mask (mask 0: any cookie).
func DeleteFlows(table uint8, cookie, mask uint64) FlowMod {
	return FlowMod{Command: FlowDelete, Flow: &Flow{Table: table, Cookie: cookie}, CookieMask: mask}
}

// ModifyFlows replaces the actions of every flow that the flow's match
// covers (loose) and whose cookie matches under mask.
func ModifyFlows(f *Flow, mask uint64) FlowMod {
	return FlowMod{Command: FlowModify, Flow: f, CookieMask: mask}
}

func (m FlowMod) String() string {
	f := m.Flow
	s := fmt.Sprintf("flow_mod %s table=%d", m.Command, f.Table)
	if f.Table == TableAll {
		s = fmt.Sprintf("flow_mod %s table=all", m.Command)
	}
	switch {
	case m.CookieMask != 0 && m.Command != FlowAdd:
		s += fmt.Sprintf(" cookie=%#x/%#x", f.Cookie, m.CookieMask)
	case f.Cookie != 0:
		s += fmt.Sprintf(" cookie=%#x", f.Cookie)
	}
	if m.Command == FlowDelete && f.Match.Len() == 0 {
		return s
	}
	return s + ": " + f.String()
}

const (
	ofpHeaderLen = 8
	bufferNone   = 0xffffffff
	groupAny     = 0xffffffff
)

func appendHeader(b []byte, typ uint8, xid uint32) ([]byte, int) {
	start := len(b)
	b = append(b, of.VERSION, typ, 0, 0)
	return put32(b, xid), start
}

func finishMessage(b []byte, start int) []byte {
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

// FlowSource gives flows by index, built when asked for: a compact set of
// many flows (an agent's per-member flows) that is not kept as Flows.
type FlowSource interface {
	Flow(i int) *Flow
}

// SourcedFlowMod is a flow mod of flow I of Src, built only while it is
// encoded (or named in an error), so that a bundle of 100,000 such mods
// does not hold 100,000 flows.
type SourcedFlowMod struct {
	Command FlowCommand
	Src     FlowSource
	I       int
}

func (m SourcedFlowMod) mod() FlowMod { return FlowMod{Command: m.Command, Flow: m.Src.Flow(m.I)} }

func (m SourcedFlowMod) appendTo(b []byte, xid uint32) []byte { return m.mod().appendTo(b, xid) }

// String describes the change as FlowMod does.
func (m SourcedFlowMod) String() string { return m.mod().String() }

func (m FlowMod) appendTo(b []byte, xid uint32) []byte {
	f := m.Flow
	b, start := appendHeader(b, of.Type_FlowMod, xid)
	b = put64(b, f.Cookie)
	mask := m.CookieMask
	if m.Command == FlowAdd {
		mask = 0
	}
	b = put64(b, mask)
	b = append(b, f.Table, uint8(m.Command))
	b = put16(b, f.IdleTimeout)
	b = put16(b, f.HardTimeout)
	b = put16(b, f.Priority)
	b = put32(b, bufferNone)
	b = put32(b, PortAny)
	b = put32(b, groupAny)
	b = put16(b, f.Flags)
	b = put16(b, 0) // importance
	b = f.Match.appendTo(b)
	if m.Command != FlowDelete && m.Command != FlowDeleteStrict {
		b = f.appendInstructions(b)
	}
	return finishMessage(b, start)
}

func (f *Flow) appendInstructions(b []byte) []byte {
	if len(f.Actions) > 0 {
		start := len(b)
		b = put16(b, 4) // OFPIT_APPLY_ACTIONS
		b = put16(b, 0)
		b = zeros(b, 4)
		b = appendActions(b, f.Actions)
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	if f.hasGoto {
		b = put16(b, 1) // OFPIT_GOTO_TABLE
		b = put16(b, 8)
		b = append(b, f.gotoTable, 0, 0, 0)
	}
	return b
}

// fieldRank orders OXM fields so prerequisites come first, as OVS checks
// them while it parses.
func fieldRank(f *Field) int {
	switch f {
	case FieldEthType:
		return 0
	case FieldIPProto:
		return 1
	case FieldICMPType, FieldICMPv6Type:
		return 2
	}
	return 3
}

func (m *Match) appendTo(b []byte) []byte {
	start := len(b)
	b = put16(b, 1) // OFPMT_OXM
	b = put16(b, 0)
	entries := append([]matchEntry(nil), m.entries...)
	sort.SliceStable(entries, func(i, j int) bool { return fieldRank(entries[i].field) < fieldRank(entries[j].field) })
	for i := range entries {
		e := &entries[i]
		b = put32(b, e.field.header(e.masked))
		b = append(b, m.value(e)...)
		b = append(b, m.mask(e)...)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	n := len(b) - start
	return zeros(b, pad8(n)-n)
}

// decodeMatch reads an ofp_match and returns it with its padded length.
// Unknown fields are an error when strict, and skipped otherwise.
func decodeMatch(b []byte, strict bool) (Match, int, error) {
	var m Match
	if len(b) < 4 || be16(b) != 1 {
		return m, 0, errors.New("not an OXM match")
	}
	n := int(be16(b[2:]))
	if n < 4 || pad8(n) > len(b) {
		return m, 0, fmt.Errorf("match length %d (padded to 8) past the end of %d bytes", n, len(b))
	}
	p := b[4:n]
	for len(p) >= 4 {
		h := be32(p)
		l := int(h & 0xff)
		if 4+l > len(p) {
			return m, 0, errors.New("truncated match field")
		}
		v := p[4 : 4+l]
		if h>>16 == of.OXM_CLASS_PACKET_REGS {
			// OpenFlow 1.5 switches report reg2N and reg2N+1 as the
			// 64-bit packet register xregN: reg2N is its high half.
			if err := m.setXreg(int(h>>9&0x7f), v, h&0x100 != 0, strict); err != nil {
				return m, 0, err
			}
			p = p[4+l:]
			continue
		}
		f := fieldByHeader(h)
		want := 0
		if f != nil {
			want = f.bytes
			if h&0x100 != 0 {
				want *= 2
			}
		}
		if f == nil || l != want {
			switch {
			case !strict:
			case f == nil:
				return m, 0, fmt.Errorf("match on unknown field %#x", h)
			default:
				return m, 0, fmt.Errorf("match on %s of %d bytes, want %d", f.name, l, want)
			}
			p = p[4+l:]
			continue
		}
		if strict && m.get(f) != nil {
			// As OVS does (OFPBMC_DUP_FIELD): the readers that do not
			// build a match (FlowCounter) take the first, this one the
			// last, and a switch never sends a field twice.
			return m, 0, fmt.Errorf("match on %s twice", f.name)
		}
		if h&0x100 != 0 {
			m.set(f, v[:l/2], v[l/2:])
		} else {
			m.set(f, v, nil)
		}
		p = p[4+l:]
	}
	return m, pad8(n), nil
}

func (m *Match) setXreg(x int, v []byte, masked, strict bool) error {
	if 2*x+1 >= len(Regs) || len(v) < 8 || masked && len(v) < 16 {
		return fmt.Errorf("bad packet register xreg%d", x)
	}
	value, mask := v[:8], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if masked {
		mask = v[8:16]
	}
	for half := 0; half < 2; half++ {
		hv, hm := value[4*half:4*half+4], mask[4*half:4*half+4]
		if !isZero(hm) {
			if strict && m.get(Regs[2*x+half]) != nil {
				return fmt.Errorf("match on %s twice", Regs[2*x+half].name)
			}
			m.set(Regs[2*x+half], hv, hm)
		}
	}
	return nil
}

// decodeInstructions fills a flow's actions and goto_table.
func (f *Flow) decodeInstructions(b []byte) error {
	for len(b) >= 4 {
		typ, n := be16(b), int(be16(b[2:]))
		if n < 8 || n > len(b) {
			return fmt.Errorf("instruction length %d of %d bytes", n, len(b))
		}
		switch typ {
		case 1:
			f.hasGoto, f.gotoTable = true, b[4]
		case 4:
			as, err := decodeActions(b[8:n])
			if err != nil {
				return err
			}
			f.Actions = append(f.Actions, as...)
		default:
			return fmt.Errorf("unsupported instruction type %d", typ)
		}
		b = b[n:]
	}
	return nil
}

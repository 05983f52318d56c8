package ofctrl

import (
	"encoding/binary"
	"fmt"
	"time"
)

// RoundTripFlow encodes a flow's match and instructions as a flow mod does
// and decodes them as a flow dump does.
func RoundTripFlow(f *Flow) (*Flow, error) {
	m, _, err := decodeMatch(f.Match.appendTo(nil), true)
	if err != nil {
		return nil, err
	}
	g := &Flow{Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, IdleTimeout: f.IdleTimeout, HardTimeout: f.HardTimeout, Match: m}
	return g, g.decodeInstructions(f.appendInstructions(nil))
}

// RoundTripGroup encodes a group add and decodes it as a group dump does.
func RoundTripGroup(g *Group) (*Group, error) { return decodeGroupDesc(GroupDesc(g)) }

// GroupDesc encodes a group as a group dump's ofp_group_desc.
func GroupDesc(g *Group) []byte {
	mod := g.Add().appendTo(nil, 1)
	// ofp_group_mod after its header: command, type, pad, group_id,
	// bucket_array_len, pad[2], command_bucket_id; ofp_group_desc:
	// length, type, pad, group_id, bucket_array_len, pad[6].
	desc := make([]byte, 16, len(mod))
	desc[2] = mod[10]
	copy(desc[4:8], mod[12:16])
	copy(desc[8:10], mod[16:18])
	desc = append(desc, mod[24:]...)
	binary.BigEndian.PutUint16(desc, uint16(len(desc)))
	return desc
}

// DecodeGroupDesc decodes an ofp_group_desc as DumpGroups does.
func DecodeGroupDesc(b []byte) (*Group, error) { return decodeGroupDesc(b) }

// FlowDesc encodes a flow as a flow dump's ofp_flow_desc, with a duration
// of 1.5 s and a packet count of 7.
func FlowDesc(f *Flow) []byte {
	b := make([]byte, 24)
	b[4] = f.Table
	binary.BigEndian.PutUint16(b[6:], f.Priority)
	binary.BigEndian.PutUint16(b[8:], f.IdleTimeout)
	binary.BigEndian.PutUint16(b[10:], f.HardTimeout)
	binary.BigEndian.PutUint64(b[16:], f.Cookie)
	b = f.Match.appendTo(b)
	// ofp_stats: reserved, length, OXS duration and packet_count.
	s := len(b)
	b = put32(b, 0)
	b = put32(b, 0x80020008) // OFPXST_OFB_DURATION
	b = put32(b, 1)
	b = put32(b, uint32(500*time.Millisecond))
	b = put32(b, 0x80020808) // OFPXST_OFB_PACKET_COUNT
	b = put64(b, 7)
	binary.BigEndian.PutUint16(b[s+2:], uint16(len(b)-s))
	b = zeros(b, pad8(len(b)-s)-(len(b)-s))
	b = f.appendInstructions(b)
	binary.BigEndian.PutUint16(b, uint16(len(b)))
	return b
}

// DecodeFlowDesc decodes an ofp_flow_desc as DumpFlows does.
func DecodeFlowDesc(b []byte) (FlowStats, error) { return decodeFlowDesc(b) }

// DecodeActions decodes an action list as flow and group dumps do.
func DecodeActions(b []byte) ([]Action, error) { return decodeActions(b) }

// AppendActions encodes an action list as flow and group mods do.
func AppendActions(b []byte, as []Action) []byte { return appendActions(b, as) }

// ErrShortAction is what a truncated action's error wraps.
var ErrShortAction = errShort

// EncodeAction is an action's wire bytes.
func EncodeAction(a Action) []byte { return a.appendTo(nil) }

// CompareFlowCounter reads a flow desc as EachFlowCounter does (b of at
// least 24 bytes, as the dump's loop guarantees) and, when the full
// decoder reads it too, says where the two disagree: cookie, counters, or
// a register the match requires exactly.
func CompareFlowCounter(b []byte) error {
	if len(b) < 24 {
		return nil
	}
	var fc FlowCounter
	lerr := readFlowCounter(b, &fc)
	var regs [16]uint32
	var has [16]bool
	if lerr == nil {
		for i := range regs {
			regs[i], has[i] = fc.Reg(i)
		}
	}
	fs, err := decodeFlowDesc(b)
	if err != nil || lerr != nil {
		return nil
	}
	if fc.Cookie != fs.Flow.Cookie || fc.Packets != fs.Packets || fc.Bytes != fs.Bytes || fc.Duration != fs.Duration {
		return fmt.Errorf("light read %+v, full read %+v", fc, fs)
	}
	for i := range regs {
		v, m, ok := fs.Flow.Match.Value(Reg(i))
		exact := ok && len(v) == 4 && (m == nil || allOnes(m))
		if exact != has[i] || exact && regs[i] != be32(v) {
			return fmt.Errorf("reg%d: light read %#x (%v), full read %x/%x", i, regs[i], has[i], v, m)
		}
	}
	return nil
}

// ReadFlowCounterReg reads a flow desc as EachFlowCounter does and returns
// what FlowCounter.Reg says of register i.
func ReadFlowCounterReg(b []byte, i int) (uint32, bool) {
	var fc FlowCounter
	if readFlowCounter(b, &fc) != nil {
		return 0, false
	}
	return fc.Reg(i)
}

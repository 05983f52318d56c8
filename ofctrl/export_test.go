package ofctrl

import "encoding/binary"

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
func RoundTripGroup(g *Group) (*Group, error) {
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
	return decodeGroupDesc(desc)
}

// DecodeActions decodes an action list as flow and group dumps do.
func DecodeActions(b []byte) ([]Action, error) { return decodeActions(b) }

// AppendActions encodes an action list as flow and group mods do.
func AppendActions(b []byte, as []Action) []byte { return appendActions(b, as) }

// ErrShortAction is what a truncated action's error wraps.
var ErrShortAction = errShort

package ofctrl_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	. "github.com/ovs-dlb/dlb/ofctrl"
)

// enc encodes actions as a flow mod does.
func enc(as ...Action) []byte { return AppendActions(nil, as) }

// cut keeps the first n bytes of one encoded action and makes its length
// say n, so that the action's own decoder gets the short body.
func cut(b []byte, n int) []byte {
	out := append([]byte(nil), b[:n]...)
	binary.BigEndian.PutUint16(out[2:], uint16(n))
	return out
}

// withLen returns b with its first action's length field set to n.
func withLen(b []byte, n int) []byte {
	out := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(out[2:], uint16(n))
	return out
}

// nx builds a Nicira action of subtype sub around body, padded to a
// multiple of 8.
func nx(sub uint16, body ...byte) []byte {
	b := []byte{0xff, 0xff, 0, 0, 0, 0, 0x23, 0x20, byte(sub >> 8), byte(sub)}
	b = append(b, body...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// ctWith builds a ct action (commit, zone 1, no recirculation) holding the
// given raw nested actions.
func ctWith(nested ...byte) []byte {
	body := []byte{0, 1, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0}
	return withLen(append(nx(35, body...), nested...), 24+len(nested))
}

// learnWith builds a learn action (table 1) with the given raw specs.
func learnWith(specs ...byte) []byte {
	body := make([]byte, 22)
	body[16] = 1
	return nx(16, append(body, specs...)...)
}

// controller2 builds a controller2 action with the given raw properties.
func controller2(props ...byte) []byte {
	return nx(37, append(make([]byte, 6), props...)...)
}

func TestDecodeActionsRefusesMalformed(t *testing.T) {
	v6 := netip.MustParseAddr("fd00::1")
	ctNAT := enc(commit(9, 3, &NAT{Dst: true, AddrMin: v6, PortMin: 80}))
	learn := enc(Learn{Table: 4, Specs: []LearnSpec{LearnMatchField(All(FieldIPv4Src))}})
	learnImm := enc(Learn{Table: 4, Specs: []LearnSpec{LearnMatchValue(All(FieldIPv6Dst), 1)}})
	// The learn is 46 bytes and 2 of padding: a second spec's header
	// there has no source.
	require.Len(t, learn, 48)
	learnSrcCut := append([]byte(nil), learn...)
	learnSrcCut[47] = 0x20
	natV6 := []byte{0, 0, 0, 2, 0, 4} // pad, flags dst, range: ipv6 min
	tests := []struct {
		name string
		in   []byte
		// want is in the error: the action it names.
		want  string
		short bool
	}{
		{"3 bytes", []byte{0, 0, 0}, "action", true},
		{"length 0", []byte{0, 0, 0, 0, 0, 0, 0, 0}, "length 0", false},
		{"length 4", []byte{0, 0, 0, 4, 0, 0, 0, 0}, "length 4", false},
		{"length 12, not a multiple of 8", withLen(enc(OutputPort(1)), 12), "length 12", false},
		{"length past the end", withLen(enc(OutputPort(1)), 24), "length 24", true},
		{"length past the end of a list", append(enc(OutputPort(1)), withLen(enc(ToGroup(1)), 16)...), "length 16", true},
		{"output of 8 bytes", cut(enc(OutputPort(1)), 8), "output", true},
		{"set_field of 8 bytes", cut(enc(Set(FieldCTLabel, 1)), 8), "set_field", true},
		{"set_field value past the end", cut(enc(Set(FieldCTLabel, 1)), 16), "set_field", true},
		{"set_field mask past the end", cut(enc(SetMasked(FieldCTLabel, 1, 1)), 32), "set_field", true},
		{"set_field of an unknown field", withLen(append([]byte{0, 25, 0, 0, 0xde, 0xad, 0xbe, 0x04}, 0, 0, 0, 0, 0, 0, 0, 0), 16), "set_field", false},
		{"copy_field of 16 bytes", cut(enc(Move{All(FieldEthSrc), All(FieldEthDst)}), 16), "copy_field", true},
		{"reg_move of 16 bytes", nx(6, 0, 48, 0, 0, 0, 0), "reg_move", true},
		{"8-byte Nicira action", cut(enc(CTClear{}), 8), "Nicira", true},
		{"output_reg of 16 bytes", cut(enc(OutputReg{Src: Sub(Reg(0), 0, 15)}), 16), "output_reg", true},
		{"multipath of 24 bytes", cut(enc(Multipath{Dst: Sub(Reg(3), 0, 1)}), 24), "multipath", true},
		{"truncated ct body", cut(ctNAT, 16), "ct", true},
		{"ct whose nested action runs past it", withLen(ctNAT, 32), "ct", true},
		{"ct with a truncated nested nat", ctWith(nx(36, natV6...)...), "nat", true},
		{"ct with an 8-byte nested action", ctWith(0xff, 0xff, 0, 8, 0, 0, 0x23, 0x20), "ct", true},
		{"truncated nat", nx(36, natV6...), "nat", true},
		{"nat with an IPv4 minimum and an IPv6 maximum", nx(36, append([]byte{0, 0, 0, 2, 0, 1 | 8}, make([]byte, 20)...)...), "nat", false},
		{"nat ports past the end", nx(36, append([]byte{0, 0, 0, 2, 0, 4 | 16 | 32}, v6.AsSlice()...)...), "nat", true},
		{"truncated learn body", cut(learn, 24), "learn", true},
		{"learn spec's source past the end", learnSrcCut, "learn", true},
		{"learn spec's destination past the end", cut(learn, 40), "learn", true},
		{"learn spec's immediate value past the end", cut(learnImm, 40), "learn", true},
		{"learn spec of 0 bits", learnWith(0x20, 0, 0, 0, 0, 0), "learn", false},
		{"learn spec of reserved kind", learnWith(0x18, 0x10, 0, 1, 0x04, 0x04, 0, 0), "learn", false},
		{"learn output of an immediate", learnWith(0x30, 0x10, 0, 1), "learn", false},
		{"learn of an unknown field", learnWith(0x00, 0x20, 0xde, 0xad, 0xbe, 0x04, 0, 0), "learn", false},
		{"controller2 of 8 bytes", cut(enc(Controller{ID: 1}), 8), "Nicira", true},
		{"controller2 max_len property of 4 bytes", controller2(0, 0, 0, 4), "controller2", true},
		{"controller2 id property of 5 bytes", controller2(0, 1, 0, 5, 1), "controller2", true},
		{"controller2 reason property of 4 bytes", controller2(0, 2, 0, 4), "controller2", true},
		{"controller2 property length past the end", controller2(0, 3, 0, 64, 1, 2, 3, 4), "controller2", true},
		{"controller2 property length under 4", controller2(0, 3, 0, 2, 0, 0, 0, 0), "controller2", false},
		{"unknown Nicira action", nx(99), "Nicira action 99", false},
		{"unknown experimenter", []byte{0xff, 0xff, 0, 8, 0, 0, 0, 1}, "experimenter", false},
		{"unknown action type", []byte{0, 99, 0, 8, 0, 0, 0, 0}, "type 99", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var as []Action
			var err error
			require.NotPanics(t, func() { as, err = DecodeActions(tt.in) }, "% x", tt.in)
			require.Error(t, err, "decoded %v from % x", as, tt.in)
			assert.Nil(t, as)
			assert.Contains(t, err.Error(), tt.want)
			if tt.short {
				assert.ErrorIs(t, err, ErrShortAction)
			}
		})
	}
}

func TestDecodeActionsEmpty(t *testing.T) {
	as, err := DecodeActions(nil)
	require.NoError(t, err)
	assert.Empty(t, as)
}

func TestLoadBits(t *testing.T) {
	tests := []struct {
		a    SetField
		want string
	}{
		{LoadBits(Reg(4), 5, 5, 1), "set_field:0x20/0x20->reg4"},
		{LoadBits(Reg(4), 0, 31, 0x1234), "set_field:0x1234->reg4"},
		{LoadBits(Reg(4), 8, 15, 0x1ff), "set_field:0xff00/0xff00->reg4"},
		{LoadBits(FieldMetadata, 0, 63, 7), "set_field:0x7->metadata"},
		{LoadBits(FieldCTLabel, 0, 47, 0x2000a00000b), "set_field:0x2000a00000b/0xffffffffffff->ct_label"},
		{LoadBits(FieldCTLabel, 32, 63, 1), "set_field:0x100000000/0xffffffff00000000->ct_label"},
		// Past bit 63 of a wide field.
		{LoadBits(FieldCTLabel, 100, 103, 5), "set_field:0x50000000000000000000000000/0xf0000000000000000000000000->ct_label"},
		{LoadBits(FieldCTLabel, 64, 127, 3), "set_field:0x30000000000000000/0xffffffffffffffff0000000000000000->ct_label"},
		{LoadBits(FieldIPv6Dst, 120, 127, 0xfd), "set_field:fd00::/8->ipv6_dst"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.a.String())
		got, err := DecodeActions(AppendActions(nil, []Action{tt.a}))
		require.NoError(t, err, tt.want)
		assert.Equal(t, tt.want, formatList(got))
	}
}

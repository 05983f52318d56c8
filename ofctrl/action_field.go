package ofctrl

import (
	"errors"
	"fmt"
	"net/netip"
)

// SetField writes a value (under an optional mask) into a field.
type SetField struct {
	Field *Field
	Value []byte
	// Mask is nil to write the whole field.
	Mask []byte
}

// Set writes v into the whole of field f.
func Set(f *Field, v uint64) SetField { return SetField{Field: f, Value: putUint(f.bytes, v)} }

// SetMasked writes the bits of v that are set in mask into field f.
func SetMasked(f *Field, v, mask uint64) SetField {
	return SetField{Field: f, Value: putUint(f.bytes, v&mask), Mask: putUint(f.bytes, mask)}
}

// SetBytes writes a big-endian value into the whole of field f.
func SetBytes(f *Field, v []byte) SetField { return SetField{Field: f, Value: pad(v, f.bytes)} }

// SetAddr writes an IPv4 or IPv6 address into f4 or f6 by its family.
func SetAddr(f4, f6 *Field, a netip.Addr) SetField {
	if a.Is6() {
		return SetBytes(f6, a.AsSlice())
	}
	return SetBytes(f4, a.AsSlice())
}

// LoadBits writes v into bits start..end of f, like ovs-ofctl's load: at
// most 64 bits, anywhere in the field (ct_label's bits 64..127 too).
func LoadBits(f *Field, start, end int, v uint64) SetField {
	value, mask := make([]byte, f.bytes), make([]byte, f.bytes)
	loadBits(f, start, end, v, value, mask)
	return SetField{Field: f, Value: value, Mask: mask}
}

// loadBits writes LoadBits's value and mask into value and mask (f's
// size each, zero).
func loadBits(f *Field, start, end int, v uint64, value, mask []byte) {
	for i := 0; i <= end-start && i < 64; i++ {
		bit := start + i
		if bit >= 8*f.bytes {
			break
		}
		k, m := f.bytes-1-bit/8, byte(1)<<(bit%8)
		mask[k] |= m
		if v>>i&1 != 0 {
			value[k] |= m
		}
	}
}

func (a SetField) String() string {
	return "set_field:" + a.Field.format(a.Value, a.Mask) + "->" + a.Field.name
}

func (a SetField) appendTo(b []byte) []byte {
	start := len(b)
	b = put16(b, ofpatSetField)
	b = put16(b, 0)
	b = put32(b, a.Field.header(a.Mask != nil))
	b = append(b, a.Value...)
	if a.Mask != nil {
		b = append(b, a.Mask...)
	}
	return finishAction(b, start)
}

// decodeSetField decodes ofp_action_set_field: an OXM header, the value,
// the mask if the header says so, and padding.
func decodeSetField(b []byte) (Action, error) {
	if err := need("set_field", b, 8); err != nil {
		return nil, err
	}
	h := be32(b[4:])
	f := fieldByHeader(h)
	if f == nil {
		return nil, fmt.Errorf("set_field of unknown field %#x", h)
	}
	masked := h&0x100 != 0
	n := f.bytes
	if masked {
		n *= 2
	}
	if l := int(h & 0xff); l != n {
		return nil, fmt.Errorf("set_field of %s: OXM length %d, want %d", f.name, l, n)
	}
	if err := need("set_field", b, 8+n); err != nil {
		return nil, err
	}
	a := SetField{Field: f, Value: clone(b[8 : 8+f.bytes])}
	if masked {
		a.Mask = clone(b[8+f.bytes : 8+2*f.bytes])
	}
	return a, nil
}

// Move copies bits between fields.
type Move struct{ Src, Dst Subfield }

func (a Move) String() string { return "move:" + a.Src.String() + "->" + a.Dst.String() }

// appendTo encodes OpenFlow 1.5's copy_field, which OVS wants in place of
// Nicira's reg_move on 1.5 connections.
func (a Move) appendTo(b []byte) []byte {
	start := len(b)
	b = put16(b, ofpatCopyField)
	b = put16(b, 0)
	b = put16(b, uint16(a.Src.NBits))
	b = put16(b, uint16(a.Src.Start))
	b = put16(b, uint16(a.Dst.Start))
	b = zeros(b, 2)
	b = put32(b, a.Src.Field.header(false))
	b = put32(b, a.Dst.Field.header(false))
	return finishAction(b, start)
}

// decodeCopyField decodes OpenFlow 1.5's copy_field: n_bits, src_offset,
// dst_offset, pad[2], then the source's and destination's OXM headers.
func decodeCopyField(b []byte) (Action, error) {
	if err := need("copy_field", b, 20); err != nil {
		return nil, err
	}
	nbits, srcOfs, dstOfs := be16(b[4:]), be16(b[6:]), be16(b[8:])
	src, dst := fieldByHeader(be32(b[12:])), fieldByHeader(be32(b[16:]))
	if src == nil || dst == nil {
		return nil, errors.New("copy_field of unknown field")
	}
	return Move{Subfield{src, int(srcOfs), int(nbits)}, Subfield{dst, int(dstOfs), int(nbits)}}, nil
}

// decodeRegMove decodes Nicira's reg_move: n_bits, src_ofs, dst_ofs,
// then the source's and destination's NXM headers.
func decodeRegMove(b []byte) (Action, error) {
	if err := need("reg_move", b, 24); err != nil {
		return nil, err
	}
	body := b[nxHeaderLen:]
	nbits, srcOfs, dstOfs := be16(body), be16(body[2:]), be16(body[4:])
	src, dst := fieldByHeader(be32(body[6:])), fieldByHeader(be32(body[10:]))
	if src == nil || dst == nil {
		return nil, errors.New("move of unknown field")
	}
	return Move{Subfield{src, int(srcOfs), int(nbits)}, Subfield{dst, int(dstOfs), int(nbits)}}, nil
}

// DecTTL decrements the IP TTL or hop limit.
type DecTTL struct{}

func (DecTTL) String() string { return "dec_ttl" }
func (DecTTL) appendTo(b []byte) []byte {
	b = put16(b, ofpatDecNwTTL)
	b = put16(b, 8)
	return zeros(b, 4)
}

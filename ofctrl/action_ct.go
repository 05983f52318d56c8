package ofctrl

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// NoTable is CT.Table when the packet is not recirculated.
const NoTable = 0xff

// ConnTrack returns a ct action in zone that does not recirculate; set
// Table to continue the pipeline in a table after conntrack.
func ConnTrack(zone uint16) CT { return CT{Zone: zone, Table: NoTable} }

// CT sends the packet through connection tracking. Build it with
// ConnTrack: the zero value recirculates to table 0.
type CT struct {
	Commit bool
	Force  bool
	// Table recirculates the packet to a table after conntrack; NoTable
	// (the zero value is table 0) does not.
	Table uint8
	Zone  uint16
	// ZoneSrc, when set, takes the zone from a subfield instead.
	ZoneSrc *Subfield
	NAT     *NAT
	// Exec runs on committed connections: set_field on ct_mark or ct_label.
	Exec []Action
	Alg  uint16
}

// NAT is the nat(...) of a ct action. The zero value (no Src or Dst)
// means "translate as the connection was translated".
type NAT struct {
	Src, Dst           bool
	AddrMin, AddrMax   netip.Addr
	PortMin, PortMax   uint16
	Persistent, Random bool
	Hash               bool
}

func (a CT) String() string {
	var p []string
	if a.Commit {
		p = append(p, "commit")
	}
	if a.Force {
		p = append(p, "force")
	}
	if a.Table != NoTable {
		p = append(p, "table="+strconv.Itoa(int(a.Table)))
	}
	if a.ZoneSrc != nil {
		p = append(p, "zone="+a.ZoneSrc.String())
	} else if a.Zone != 0 {
		p = append(p, "zone="+strconv.Itoa(int(a.Zone)))
	}
	if a.NAT != nil {
		p = append(p, a.NAT.String())
	}
	if len(a.Exec) > 0 {
		p = append(p, "exec("+formatActions(a.Exec)+")")
	}
	if a.Alg != 0 {
		alg := strconv.Itoa(int(a.Alg))
		switch a.Alg {
		case 21:
			alg = "ftp"
		case 69:
			alg = "tftp"
		}
		p = append(p, "alg="+alg)
	}
	return "ct(" + strings.Join(p, ",") + ")"
}

func (n *NAT) String() string {
	if !n.Src && !n.Dst {
		return "nat"
	}
	s := "nat(dst="
	if n.Src {
		s = "nat(src="
	}
	if n.AddrMin.IsValid() {
		addr := func(a netip.Addr) string {
			if a.Is6() && n.PortMin != 0 {
				return "[" + a.String() + "]"
			}
			return a.String()
		}
		s += addr(n.AddrMin)
		if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
			s += "-" + addr(n.AddrMax)
		}
		if n.PortMin != 0 {
			s += ":" + strconv.Itoa(int(n.PortMin))
			if n.PortMax != 0 && n.PortMax != n.PortMin {
				s += "-" + strconv.Itoa(int(n.PortMax))
			}
		}
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{n.Persistent, "persistent"}, {n.Hash, "hash"}, {n.Random, "random"}} {
		if f.on {
			s += "," + f.name
		}
	}
	return s + ")"
}

func (a CT) appendTo(b []byte) []byte {
	b, start := nxHeader(b, nxastCT)
	var flags uint16
	if a.Commit {
		flags |= 1
	}
	if a.Force {
		flags |= 2
	}
	b = put16(b, flags)
	if a.ZoneSrc != nil {
		b = put32(b, a.ZoneSrc.Field.header(false))
		b = put16(b, a.ZoneSrc.ofsNbits())
	} else {
		b = put32(b, 0)
		b = put16(b, a.Zone)
	}
	b = append(b, a.Table, 0, 0, 0)
	b = put16(b, a.Alg)
	if a.NAT != nil {
		b = a.NAT.appendTo(b)
	}
	for _, x := range a.Exec {
		b = x.appendTo(b)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

func (n *NAT) appendTo(b []byte) []byte {
	b, start := nxHeader(b, nxastNAT)
	b = zeros(b, 2)
	var flags, present uint16
	if n.Src {
		flags |= 1
	}
	if n.Dst {
		flags |= 2
	}
	if n.Persistent {
		flags |= 4
	}
	if n.Hash {
		flags |= 8
	}
	if n.Random {
		flags |= 16
	}
	var room [36]byte // two IPv6 addresses and two ports: no allocation
	tail := room[:0]
	if n.AddrMin.IsValid() {
		if n.AddrMin.Is4() {
			present |= 1
			tail = append(tail, n.AddrMin.AsSlice()...)
			if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
				present |= 2
				tail = append(tail, n.AddrMax.AsSlice()...)
			}
		} else {
			present |= 4
			tail = append(tail, n.AddrMin.AsSlice()...)
			if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
				present |= 8
				tail = append(tail, n.AddrMax.AsSlice()...)
			}
		}
	}
	if n.PortMin != 0 {
		present |= 16
		tail = put16(tail, n.PortMin)
		if n.PortMax != 0 && n.PortMax != n.PortMin {
			present |= 32
			tail = put16(tail, n.PortMax)
		}
	}
	b = put16(b, flags)
	b = put16(b, present)
	b = append(b, tail...)
	return finishAction(b, start)
}

// CTClear clears the packet's conntrack state.
type CTClear struct{}

func (CTClear) String() string { return "ct_clear" }
func (CTClear) appendTo(b []byte) []byte {
	b, start := nxHeader(b, nxastCTClear)
	return finishAction(b, start)
}

// natAction lets a decoded nat sit in a CT's action list until decodeCT
// lifts it out.
type natAction struct{ *NAT }

func (n natAction) appendTo(b []byte) []byte { return n.NAT.appendTo(b) }

// decodeNAT decodes nx_action_nat: pad[2], flags, range_present, then
// the range's parts that range_present names, in order: IPv4 minimum and
// maximum, IPv6 minimum and maximum, port minimum and maximum.
func decodeNAT(b []byte) (Action, error) {
	if err := need("nat", b, nxHeaderLen+6); err != nil {
		return nil, err
	}
	body := b[nxHeaderLen:]
	flags, present := be16(body[2:]), be16(body[4:])
	if present&(1|2) != 0 && present&(4|8) != 0 {
		return nil, fmt.Errorf("nat: range of both IPv4 and IPv6 addresses (range_present %#x)", present)
	}
	want := nxHeaderLen + 6
	for _, r := range []struct {
		bit uint16
		n   int
	}{{1, 4}, {2, 4}, {4, 16}, {8, 16}, {16, 2}, {32, 2}} {
		if present&r.bit != 0 {
			want += r.n
		}
	}
	if err := need("nat", b, want); err != nil {
		return nil, err
	}
	n := &NAT{Src: flags&1 != 0, Dst: flags&2 != 0, Persistent: flags&4 != 0, Hash: flags&8 != 0, Random: flags&16 != 0}
	p := body[6:]
	take := func(k int) []byte { v := p[:k]; p = p[k:]; return v }
	if present&1 != 0 {
		n.AddrMin, _ = netip.AddrFromSlice(take(4))
	}
	if present&2 != 0 {
		n.AddrMax, _ = netip.AddrFromSlice(take(4))
	}
	if present&4 != 0 {
		n.AddrMin, _ = netip.AddrFromSlice(take(16))
	}
	if present&8 != 0 {
		n.AddrMax, _ = netip.AddrFromSlice(take(16))
	}
	if present&16 != 0 {
		n.PortMin = be16(take(2))
	}
	if present&32 != 0 {
		n.PortMax = be16(take(2))
	}
	return natAction{n}, nil
}

// decodeCT decodes nx_action_conntrack: flags, zone_src, zone_ofs_nbits
// (or the zone), recirc_table, pad[3], alg, then nested actions (a nat,
// and the exec actions).
func decodeCT(b []byte) (Action, error) {
	if err := need("ct", b, 24); err != nil {
		return nil, err
	}
	body := b[nxHeaderLen:]
	flags := be16(body)
	a := CT{Commit: flags&1 != 0, Force: flags&2 != 0, Table: body[8], Alg: be16(body[12:])}
	if zs := be32(body[2:]); zs != 0 {
		sf, err := subfieldFrom(zs, be16(body[6:]))
		if err != nil {
			return nil, fmt.Errorf("ct zone: %w", err)
		}
		a.ZoneSrc = &sf
	} else {
		a.Zone = be16(body[6:])
	}
	nested, err := decodeActions(b[24:])
	if err != nil {
		return nil, fmt.Errorf("ct: %w", err)
	}
	for _, x := range nested {
		if n, ok := x.(natAction); ok {
			a.NAT = n.NAT
			continue
		}
		a.Exec = append(a.Exec, x)
	}
	return a, nil
}

// CTCommitNAT is a compact form of a ct action that commits the connection
// with destination NAT and may write bits of its label:
//
//	ct(commit,table=Table,zone=Zone,nat(dst=Dst),exec(set_field:VALUE/MASK->ct_label))
//
// The exec, there when LabelBits is not 0, writes Label into ct_label bits
// LabelStart..LabelStart+LabelBits-1, as LoadBits does (at most 64 bits).
// Table is as in CT (NoTable does not recirculate); a Dst without a port
// translates the address only. It renders and encodes exactly as that CT
// does, in a fifth of the memory (48 bytes), for pipelines that hold
// hundreds of thousands of them; read back from the switch, it is that CT.
type CTCommitNAT struct {
	Zone  uint16
	Table uint8
	// LoBits and HiBits are how many of Label's low bits of each half the
	// exec writes into ct_label: bits 0..LoBits-1 and 64..64+HiBits-1 (no
	// exec when both are 0).
	LoBits, HiBits uint8
	Dst            netip.AddrPort
	Label          Label128
}

// LabelMask is the mask of the bits the exec writes.
func (a CTCommitNAT) LabelMask() Label128 {
	return Label128{Hi: lowBits(a.HiBits), Lo: lowBits(a.LoBits)}
}

func lowBits(n uint8) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// Label128 is a value of the 128-bit ct_label: Hi is bits 64..127, Lo bits
// 0..63.
type Label128 struct{ Hi, Lo uint64 }

// Bytes is the label as the ct_label field carries it (network order).
func (l Label128) Bytes() (b [16]byte) {
	binary.BigEndian.PutUint64(b[:8], l.Hi)
	binary.BigEndian.PutUint64(b[8:], l.Lo)
	return b
}

// IsZero reports whether no bit is set.
func (l Label128) IsZero() bool { return l.Hi == 0 && l.Lo == 0 }

// LabelOf reads a label from the ct_label field's 16 bytes.
func LabelOf(b []byte) Label128 {
	if len(b) != 16 {
		return Label128{}
	}
	return Label128{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}
}

// CT expands the action.
func (a CTCommitNAT) CT() CT {
	ct := CT{Commit: true, Zone: a.Zone, Table: a.Table, NAT: &NAT{Dst: true, AddrMin: a.Dst.Addr(), PortMin: a.Dst.Port()}}
	if a.LoBits != 0 || a.HiBits != 0 {
		v, m := a.labelSet()
		ct.Exec = []Action{SetField{Field: FieldCTLabel, Value: v[:], Mask: m[:]}}
	}
	return ct
}

// labelSet is the exec's set_field value and mask.
func (a CTCommitNAT) labelSet() (v, m [16]byte) {
	v, m = a.Label.Bytes(), a.LabelMask().Bytes()
	for i := range v {
		v[i] &= m[i]
	}
	return v, m
}

func (a CTCommitNAT) String() string { return a.CT().String() }

// appendTo encodes what CT() does, without building it: a pipeline
// encodes hundreds of thousands of these at once (TestCTCommitNATIsCT
// keeps the bytes the same).
func (a CTCommitNAT) appendTo(b []byte) []byte {
	b, start := nxHeader(b, nxastCT)
	b = put16(b, 1) // commit
	b = put32(b, 0)
	b = put16(b, a.Zone)
	b = append(b, a.Table, 0, 0, 0)
	b = put16(b, 0) // alg
	nat := NAT{Dst: true, AddrMin: a.Dst.Addr(), PortMin: a.Dst.Port()}
	b = nat.appendTo(b)
	if a.LoBits != 0 || a.HiBits != 0 {
		v, m := a.labelSet()
		b = SetField{Field: FieldCTLabel, Value: v[:], Mask: m[:]}.appendTo(b)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

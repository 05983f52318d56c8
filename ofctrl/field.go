package ofctrl

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"

	of "antrea.io/libOpenflow/openflow15"
)

// valueKind says how a field's value is written in ovs-ofctl syntax.
type valueKind uint8

const (
	kindDec valueKind = iota
	kindHex
	kindPort
	kindMAC
	kindIPv4
	kindIPv6
	kindCTState
	kindTCPFlags
)

// Field is a packet or pipeline field that flows match on, set, move or
// learn. Fields are values; compare them by pointer to the predefined ones.
type Field struct {
	// name is OVS's canonical name, used by set_field and learn.
	name string
	// nxm is the name used in subfields: move, output, learn, multipath.
	nxm string
	// class and code are the OXM/NXM header the field is encoded with.
	class uint16
	code  uint8
	// alt are other headers the switch may use for the same field.
	alt   []uint32
	bytes int
	// bits is the width in bits, for subfields ([] means all of them).
	bits int
	kind valueKind
	// prereq is checked by Flow.Validate: what the match must pin first.
	prereq prereq
}

type prereq uint8

const (
	needNone prereq = iota
	needIPv4
	needIPv6
	needIP // either
	needARP
	needTCP
	needUDP
	needSCTP
	needICMPv4
	needICMPv6
	needND
)

// Name returns OVS's name for the field ("ip_dst", "reg0", "ct_mark").
func (f *Field) Name() string { return f.name }

// Bits returns the field's width.
func (f *Field) Bits() int { return f.bits }

func (f *Field) header(masked bool) uint32 {
	n := f.bytes
	m := uint32(0)
	if masked {
		n *= 2
		m = 1
	}
	return uint32(f.class)<<16 | uint32(f.code)<<9 | m<<8 | uint32(n)
}

func oxmHeader(class uint16, code uint8, bytes int) uint32 {
	return uint32(class)<<16 | uint32(code)<<9 | uint32(bytes)
}

func nxm0(code uint8, bytes int) uint32 { return oxmHeader(of.OXM_CLASS_NXM_0, code, bytes) }
func basic(code uint8, bytes int) uint32 {
	return oxmHeader(of.OXM_CLASS_OPENFLOW_BASIC, code, bytes)
}

func newField(name, nxm string, class uint16, code uint8, bytes, bits int, kind valueKind, pre prereq, alt ...uint32) *Field {
	return &Field{name: name, nxm: nxm, class: class, code: code, bytes: bytes, bits: bits, kind: kind, prereq: pre, alt: alt}
}

// The fields this package knows. Encoding uses the OXM basic class where
// OpenFlow 1.5 has one and Nicira's NXM classes otherwise; decoding
// accepts both.
var (
	FieldInPort     = newField("in_port", "OXM_OF_IN_PORT", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IN_PORT, 4, 32, kindPort, needNone)
	FieldInPort16   = newField("in_port", "NXM_OF_IN_PORT", of.OXM_CLASS_NXM_0, of.NXM_OF_IN_PORT, 2, 16, kindPort, needNone)
	FieldMetadata   = newField("metadata", "OXM_OF_METADATA", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_METADATA, 8, 64, kindHex, needNone)
	FieldEthDst     = newField("eth_dst", "NXM_OF_ETH_DST", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ETH_DST, 6, 48, kindMAC, needNone, nxm0(of.NXM_OF_ETH_DST, 6))
	FieldEthSrc     = newField("eth_src", "NXM_OF_ETH_SRC", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ETH_SRC, 6, 48, kindMAC, needNone, nxm0(of.NXM_OF_ETH_SRC, 6))
	FieldEthType    = newField("eth_type", "NXM_OF_ETH_TYPE", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ETH_TYPE, 2, 16, kindHex, needNone, nxm0(of.NXM_OF_ETH_TYPE, 2))
	FieldIPProto    = newField("nw_proto", "NXM_OF_IP_PROTO", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IP_PROTO, 1, 8, kindDec, needIP, nxm0(of.NXM_OF_IP_PROTO, 1))
	FieldIPTTL      = newField("nw_ttl", "NXM_NX_IP_TTL", of.OXM_CLASS_NXM_1, of.NXM_NX_IP_TTL, 1, 8, kindDec, needIP)
	FieldIPv4Src    = newField("ip_src", "NXM_OF_IP_SRC", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IPV4_SRC, 4, 32, kindIPv4, needIPv4, nxm0(of.NXM_OF_IP_SRC, 4))
	FieldIPv4Dst    = newField("ip_dst", "NXM_OF_IP_DST", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IPV4_DST, 4, 32, kindIPv4, needIPv4, nxm0(of.NXM_OF_IP_DST, 4))
	FieldIPv6Src    = newField("ipv6_src", "NXM_NX_IPV6_SRC", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IPV6_SRC, 16, 128, kindIPv6, needIPv6, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_IPV6_SRC, 16))
	FieldIPv6Dst    = newField("ipv6_dst", "NXM_NX_IPV6_DST", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IPV6_DST, 16, 128, kindIPv6, needIPv6, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_IPV6_DST, 16))
	FieldTCPSrc     = newField("tcp_src", "NXM_OF_TCP_SRC", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_TCP_SRC, 2, 16, kindDec, needTCP, nxm0(of.NXM_OF_TCP_SRC, 2))
	FieldTCPDst     = newField("tcp_dst", "NXM_OF_TCP_DST", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_TCP_DST, 2, 16, kindDec, needTCP, nxm0(of.NXM_OF_TCP_DST, 2))
	FieldUDPSrc     = newField("udp_src", "NXM_OF_UDP_SRC", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_UDP_SRC, 2, 16, kindDec, needUDP, nxm0(of.NXM_OF_UDP_SRC, 2))
	FieldUDPDst     = newField("udp_dst", "NXM_OF_UDP_DST", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_UDP_DST, 2, 16, kindDec, needUDP, nxm0(of.NXM_OF_UDP_DST, 2))
	FieldSCTPSrc    = newField("sctp_src", "OXM_OF_SCTP_SRC", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_SCTP_SRC, 2, 16, kindDec, needSCTP)
	FieldSCTPDst    = newField("sctp_dst", "OXM_OF_SCTP_DST", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_SCTP_DST, 2, 16, kindDec, needSCTP)
	FieldTCPFlags   = newField("tcp_flags", "OXM_OF_TCP_FLAGS", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_TCP_FLAGS, 2, 12, kindTCPFlags, needTCP, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_TCP_FLAGS, 2))
	FieldICMPType   = newField("icmp_type", "NXM_OF_ICMP_TYPE", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ICMPV4_TYPE, 1, 8, kindDec, needICMPv4, nxm0(of.NXM_OF_ICMP_TYPE, 1))
	FieldICMPCode   = newField("icmp_code", "NXM_OF_ICMP_CODE", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ICMPV4_CODE, 1, 8, kindDec, needICMPv4, nxm0(of.NXM_OF_ICMP_CODE, 1))
	FieldICMPv6Type = newField("icmpv6_type", "NXM_NX_ICMPV6_TYPE", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ICMPV6_TYPE, 1, 8, kindDec, needICMPv6, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_ICMPV6_TYPE, 1))
	FieldICMPv6Code = newField("icmpv6_code", "NXM_NX_ICMPV6_CODE", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ICMPV6_CODE, 1, 8, kindDec, needICMPv6, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_ICMPV6_CODE, 1))
	FieldNDTarget   = newField("nd_target", "NXM_NX_ND_TARGET", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IPV6_ND_TARGET, 16, 128, kindIPv6, needND, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_ND_TARGET, 16))
	FieldNDSLL      = newField("nd_sll", "NXM_NX_ND_SLL", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IPV6_ND_SLL, 6, 48, kindMAC, needND, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_ND_SLL, 6))
	FieldNDTLL      = newField("nd_tll", "NXM_NX_ND_TLL", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_IPV6_ND_TLL, 6, 48, kindMAC, needND, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_ND_TLL, 6))
	FieldARPOp      = newField("arp_op", "NXM_OF_ARP_OP", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ARP_OP, 2, 16, kindDec, needARP, nxm0(of.NXM_OF_ARP_OP, 2))
	FieldARPSPA     = newField("arp_spa", "NXM_OF_ARP_SPA", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ARP_SPA, 4, 32, kindIPv4, needARP, nxm0(of.NXM_OF_ARP_SPA, 4))
	FieldARPTPA     = newField("arp_tpa", "NXM_OF_ARP_TPA", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ARP_TPA, 4, 32, kindIPv4, needARP, nxm0(of.NXM_OF_ARP_TPA, 4))
	FieldARPSHA     = newField("arp_sha", "NXM_NX_ARP_SHA", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ARP_SHA, 6, 48, kindMAC, needARP, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_ARP_SHA, 6))
	FieldARPTHA     = newField("arp_tha", "NXM_NX_ARP_THA", of.OXM_CLASS_OPENFLOW_BASIC, of.OXM_FIELD_ARP_THA, 6, 48, kindMAC, needARP, oxmHeader(of.OXM_CLASS_NXM_1, of.NXM_NX_ARP_THA, 6))
	FieldPktMark    = newField("pkt_mark", "NXM_NX_PKT_MARK", of.OXM_CLASS_NXM_1, of.NXM_NX_PKT_MARK, 4, 32, kindHex, needNone)
	FieldDPHash     = newField("dp_hash", "NXM_NX_DP_HASH", of.OXM_CLASS_NXM_1, of.NXM_NX_DP_HASH, 4, 32, kindHex, needNone)
	FieldConjID     = newField("conj_id", "NXM_NX_CONJ_ID", of.OXM_CLASS_NXM_1, of.NXM_NX_CONJ_ID, 4, 32, kindDec, needNone)
	FieldCTState    = newField("ct_state", "NXM_NX_CT_STATE", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_STATE, 4, 32, kindCTState, needNone)
	FieldCTZone     = newField("ct_zone", "NXM_NX_CT_ZONE", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_ZONE, 2, 16, kindDec, needNone)
	FieldCTMark     = newField("ct_mark", "NXM_NX_CT_MARK", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_MARK, 4, 32, kindHex, needNone)
	FieldCTLabel    = newField("ct_label", "NXM_NX_CT_LABEL", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_LABEL, 16, 128, kindHex, needNone)
	FieldCTNWProto  = newField("ct_nw_proto", "NXM_NX_CT_NW_PROTO", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_NW_PROTO, 1, 8, kindDec, needNone)
	FieldCTNWSrc    = newField("ct_nw_src", "NXM_NX_CT_NW_SRC", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_NW_SRC, 4, 32, kindIPv4, needIPv4)
	FieldCTNWDst    = newField("ct_nw_dst", "NXM_NX_CT_NW_DST", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_NW_DST, 4, 32, kindIPv4, needIPv4)
	FieldCTIPv6Src  = newField("ct_ipv6_src", "NXM_NX_CT_IPV6_SRC", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_IPV6_SRC, 16, 128, kindIPv6, needIPv6)
	FieldCTIPv6Dst  = newField("ct_ipv6_dst", "NXM_NX_CT_IPV6_DST", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_IPV6_DST, 16, 128, kindIPv6, needIPv6)
	FieldCTTPSrc    = newField("ct_tp_src", "NXM_NX_CT_TP_SRC", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_TP_SRC, 2, 16, kindDec, needNone)
	FieldCTTPDst    = newField("ct_tp_dst", "NXM_NX_CT_TP_DST", of.OXM_CLASS_NXM_1, of.NXM_NX_CT_TP_DST, 2, 16, kindDec, needNone)

	// Regs are the 32-bit registers reg0..reg15.
	Regs = func() [16]*Field {
		var r [16]*Field
		for i := range r {
			r[i] = newField(fmt.Sprintf("reg%d", i), fmt.Sprintf("NXM_NX_REG%d", i), of.OXM_CLASS_NXM_1, uint8(of.NXM_NX_REG0+i), 4, 32, kindHex, needNone)
		}
		return r
	}()
)

// Reg returns register i (0..15).
func Reg(i int) *Field { return Regs[i] }

var fieldsByHeader = func() map[uint32]*Field {
	m := map[uint32]*Field{}
	all := []*Field{FieldInPort, FieldInPort16, FieldMetadata, FieldEthDst, FieldEthSrc, FieldEthType, FieldIPProto, FieldIPTTL,
		FieldIPv4Src, FieldIPv4Dst, FieldIPv6Src, FieldIPv6Dst, FieldTCPSrc, FieldTCPDst, FieldUDPSrc, FieldUDPDst,
		FieldSCTPSrc, FieldSCTPDst, FieldTCPFlags, FieldICMPType, FieldICMPCode, FieldICMPv6Type, FieldICMPv6Code,
		FieldNDTarget, FieldNDSLL, FieldNDTLL, FieldARPOp, FieldARPSPA, FieldARPTPA, FieldARPSHA, FieldARPTHA,
		FieldPktMark, FieldDPHash, FieldConjID, FieldCTState, FieldCTZone, FieldCTMark, FieldCTLabel,
		FieldCTNWProto, FieldCTNWSrc, FieldCTNWDst, FieldCTIPv6Src, FieldCTIPv6Dst, FieldCTTPSrc, FieldCTTPDst}
	all = append(all, Regs[:]...)
	for _, f := range all {
		m[f.header(false)&^0x1ff] = f
		for _, h := range f.alt {
			m[h&^0x1ff] = f
		}
	}
	return m
}()

// fieldByHeader finds the field of an OXM/NXM header (mask bit and
// length ignored).
func fieldByHeader(h uint32) *Field { return fieldsByHeader[h&^0x1ff] }

// Value formatting, after OVS's mf_format.

func (f *Field) format(value, mask []byte) string {
	exact := mask == nil || allOnes(mask)
	switch f.kind {
	case kindDec:
		if exact {
			return strconv.FormatUint(toUint(value), 10)
		}
		return hexBytes(value) + "/" + hexBytes(mask)
	case kindHex:
		if exact {
			return hexBytes(value)
		}
		return hexBytes(value) + "/" + hexBytes(mask)
	case kindPort:
		return formatPort(uint32(toUint(value)), f.bytes == 2)
	case kindMAC:
		s := net.HardwareAddr(value).String()
		if !exact {
			s += "/" + net.HardwareAddr(mask).String()
		}
		return s
	case kindIPv4, kindIPv6:
		return formatIPMasked(value, mask)
	case kindCTState:
		return formatFlags(uint32(toUint(value)), maskOr(mask, 0xffffffff), ctStateNames)
	case kindTCPFlags:
		return formatFlags(uint32(toUint(value)), maskOr(mask, 0xfff), tcpFlagNames)
	}
	return hexBytes(value)
}

func maskOr(mask []byte, def uint32) uint32 {
	if mask == nil {
		return def
	}
	return uint32(toUint(mask))
}

func allOnes(b []byte) bool {
	for _, x := range b {
		if x != 0xff {
			return false
		}
	}
	return true
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func toUint(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func putUint(n int, v uint64) []byte {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

// hexBytes writes a big-endian number as OVS does: "0x5", and "0" for zero.
func hexBytes(b []byte) string {
	if isZero(b) {
		return "0"
	}
	if len(b) <= 8 {
		return "0x" + strconv.FormatUint(toUint(b), 16)
	}
	return "0x" + new(big.Int).SetBytes(b).Text(16)
}

func formatIPMasked(value, mask []byte) string {
	a, _ := netip.AddrFromSlice(value)
	if mask == nil || allOnes(mask) {
		return a.String()
	}
	ones, ok := prefixLen(mask)
	if ok {
		return fmt.Sprintf("%s/%d", a, ones)
	}
	m, _ := netip.AddrFromSlice(mask)
	return a.String() + "/" + m.String()
}

// prefixLen returns the length of a CIDR mask, or false if the mask is not
// contiguous.
func prefixLen(mask []byte) (int, bool) {
	n := 0
	seenZero := false
	for _, b := range mask {
		for i := 7; i >= 0; i-- {
			if b&(1<<i) != 0 {
				if seenZero {
					return 0, false
				}
				n++
			} else {
				seenZero = true
			}
		}
	}
	return n, true
}

// Special OpenFlow 1.5 port numbers.
const (
	PortInPort     uint32 = 0xfffffff8
	PortTable      uint32 = 0xfffffff9
	PortNormal     uint32 = 0xfffffffa
	PortFlood      uint32 = 0xfffffffb
	PortAll        uint32 = 0xfffffffc
	PortController uint32 = 0xfffffffd
	PortLocal      uint32 = 0xfffffffe
	PortAny        uint32 = 0xffffffff
)

var portNames = map[uint32]string{
	PortInPort: "IN_PORT", PortTable: "TABLE", PortNormal: "NORMAL", PortFlood: "FLOOD",
	PortAll: "ALL", PortController: "CONTROLLER", PortLocal: "LOCAL", PortAny: "ANY",
}

func formatPort(p uint32, short bool) string {
	if short && p >= 0xfff8 {
		p |= 0xffff0000
	}
	if n, ok := portNames[p]; ok {
		return n
	}
	return strconv.FormatUint(uint64(p), 10)
}

// Connection tracking states, in bit order.
const (
	CTNew uint32 = 1 << iota
	CTEst
	CTRel
	CTRpl
	CTInv
	CTTrk
	CTSNAT
	CTDNAT
)

var ctStateNames = []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}

// TCP flags, in bit order.
const (
	TCPFin uint16 = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
	TCPNs
)

var tcpFlagNames = []string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"}

// formatFlags writes "+new-rpl+trk": each masked bit, in bit order.
func formatFlags(v, mask uint32, names []string) string {
	var b strings.Builder
	for i, n := range names {
		bit := uint32(1) << i
		if mask&bit == 0 {
			continue
		}
		if v&bit != 0 {
			b.WriteByte('+')
		} else {
			b.WriteByte('-')
		}
		b.WriteString(n)
	}
	if b.Len() == 0 {
		return "0"
	}
	return b.String()
}

// ParseFlags parses "+new+trk-rpl" into value and mask.
func ParseFlags(s string, names []string) (value, mask uint32, err error) {
	for s != "" {
		sign := s[0]
		if sign != '+' && sign != '-' {
			return 0, 0, fmt.Errorf("flags %q: want +name or -name", s)
		}
		s = s[1:]
		end := strings.IndexAny(s, "+-")
		if end < 0 {
			end = len(s)
		}
		name := s[:end]
		s = s[end:]
		found := false
		for i, n := range names {
			if n == name {
				bit := uint32(1) << i
				mask |= bit
				if sign == '+' {
					value |= bit
				}
				found = true
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("unknown flag %q", name)
		}
	}
	return value, mask, nil
}

// Subfield is a bit range of a field, as in NXM_NX_REG0[0..15].
type Subfield struct {
	Field *Field
	Start int
	NBits int
}

// Sub returns bits start..end (inclusive) of f.
func Sub(f *Field, start, end int) Subfield {
	return Subfield{Field: f, Start: start, NBits: end - start + 1}
}

// All returns the whole of f.
func All(f *Field) Subfield { return Subfield{Field: f, NBits: f.bits} }

func (s Subfield) String() string {
	switch {
	case s.Start == 0 && s.NBits == s.Field.bits:
		return s.Field.nxm + "[]"
	case s.NBits == 1:
		return fmt.Sprintf("%s[%d]", s.Field.nxm, s.Start)
	}
	return fmt.Sprintf("%s[%d..%d]", s.Field.nxm, s.Start, s.Start+s.NBits-1)
}

func (s Subfield) ofsNbits() uint16 { return uint16(s.Start)<<6 | uint16(s.NBits-1) }

func subfieldFrom(header uint32, ofsNbits uint16) (Subfield, error) {
	f := fieldByHeader(header)
	if f == nil {
		return Subfield{}, fmt.Errorf("unknown field header %#x", header)
	}
	return Subfield{Field: f, Start: int(ofsNbits >> 6), NBits: int(ofsNbits&0x3f) + 1}, nil
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// ParseCTState parses ct_state flags as ovs-ofctl writes them ("+new+trk").
func ParseCTState(s string) (value, mask uint32, err error) { return ParseFlags(s, ctStateNames) }

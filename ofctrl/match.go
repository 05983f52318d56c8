package ofctrl

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Ethernet types and IP protocols the builder knows by name.
const (
	EthTypeIPv4 uint16 = 0x0800
	EthTypeARP  uint16 = 0x0806
	EthTypeIPv6 uint16 = 0x86dd

	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
	ProtoSCTP   uint8 = 132
)

// matchEntry is one condition; its value (and mask, when masked) are in
// the match's buf, so that a flow's match is two allocations, not one per
// field (an agent holds 100,000s of them).
type matchEntry struct {
	field  *Field
	off    uint16 // value at buf[off:off+n], then the mask if masked
	n      uint8
	masked bool
}

// Match is a set of field conditions, at most one per field.
type Match struct {
	entries []matchEntry
	buf     []byte
}

// value and mask of an entry (mask nil for an exact match). Callers must
// not change them.
func (m *Match) value(e *matchEntry) []byte {
	end := int(e.off) + int(e.n)
	return m.buf[e.off:end:end]
}

func (m *Match) mask(e *matchEntry) []byte {
	if !e.masked {
		return nil
	}
	start := int(e.off) + int(e.n)
	return m.buf[start : start+int(e.n) : start+int(e.n)]
}

// MatchOption adds a condition to a match.
type MatchOption func(*Match)

func (m *Match) set(f *Field, value, mask []byte) {
	if mask != nil && allOnes(mask) {
		mask = nil
	}
	e := matchEntry{field: f, off: uint16(len(m.buf)), n: uint8(len(value)), masked: mask != nil}
	m.buf = append(m.buf, value...)
	if mask != nil {
		// OpenFlow requires value bits outside the mask to be zero.
		v := m.buf[e.off:]
		for i := range v {
			v[i] &= mask[i]
		}
		m.buf = append(m.buf, mask...)
	}
	for i := range m.entries {
		if m.entries[i].field == f {
			m.entries[i] = e // the old bytes stay unused in buf
			return
		}
	}
	m.entries = append(m.entries, e)
}

// compact trims the match's storage to what it uses.
func (m *Match) compact() {
	if cap(m.buf)-len(m.buf) > 8 {
		m.buf = append([]byte(nil), m.buf...)
	}
	if cap(m.entries) > len(m.entries) {
		m.entries = append([]matchEntry(nil), m.entries...)
	}
}

func (m *Match) get(f *Field) *matchEntry {
	for i := range m.entries {
		if m.entries[i].field == f {
			return &m.entries[i]
		}
	}
	return nil
}

// Value returns the value and mask (nil when exact) matched on f.
func (m *Match) Value(f *Field) (value, mask []byte, ok bool) {
	e := m.get(f)
	if e == nil {
		return nil, nil, false
	}
	return m.value(e), m.mask(e), true
}

func (m *Match) uintOf(f *Field) (uint64, bool) {
	e := m.get(f)
	if e == nil || e.masked {
		return 0, false
	}
	return toUint(m.value(e)), true
}

// Len is the number of matched fields.
func (m *Match) Len() int { return len(m.entries) }

// Equal reports whether two matches have the same conditions.
func (m *Match) Equal(o *Match) bool {
	if len(m.entries) != len(o.entries) {
		return false
	}
	for i := range m.entries {
		e := &m.entries[i]
		x := o.get(e.field)
		if x == nil || !bytes.Equal(m.value(e), o.value(x)) || !bytes.Equal(m.mask(e), o.mask(x)) {
			return false
		}
	}
	return true
}

// FieldExact matches a field exactly; value is big-endian, the field's width.
func FieldExact(f *Field, value []byte) MatchOption {
	return func(m *Match) { m.set(f, pad(value, f.bytes), nil) }
}

// FieldMasked matches the bits of a field that are set in mask.
func FieldMasked(f *Field, value, mask []byte) MatchOption {
	return func(m *Match) { m.set(f, pad(value, f.bytes), pad(mask, f.bytes)) }
}

func pad(b []byte, n int) []byte {
	if len(b) >= n {
		return b[len(b)-n:]
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}

func uintMatch(f *Field, v uint64) MatchOption {
	return func(m *Match) { m.set(f, putUint(f.bytes, v), nil) }
}

func uintMasked(f *Field, v, mask uint64) MatchOption {
	return func(m *Match) { m.set(f, putUint(f.bytes, v), putUint(f.bytes, mask)) }
}

// InPort matches the ingress port.
func InPort(port uint32) MatchOption { return uintMatch(FieldInPort, uint64(port)) }

// EthSrc matches the Ethernet source.
func EthSrc(mac net.HardwareAddr) MatchOption { return FieldExact(FieldEthSrc, mac) }

// EthDst matches the Ethernet destination.
func EthDst(mac net.HardwareAddr) MatchOption { return FieldExact(FieldEthDst, mac) }

// EthDstMasked matches the bits of the Ethernet destination set in mask.
func EthDstMasked(mac, mask net.HardwareAddr) MatchOption {
	return FieldMasked(FieldEthDst, mac, mask)
}

// EthType matches the Ethernet type.
func EthType(t uint16) MatchOption { return uintMatch(FieldEthType, uint64(t)) }

// IPProto matches the IP protocol.
func IPProto(p uint8) MatchOption { return uintMatch(FieldIPProto, uint64(p)) }

// Protocol shorthands, as ovs-ofctl has them.
var (
	IP     = EthType(EthTypeIPv4)
	IPv6   = EthType(EthTypeIPv6)
	ARP    = EthType(EthTypeARP)
	TCP    = both(IP, IPProto(ProtoTCP))
	UDP    = both(IP, IPProto(ProtoUDP))
	SCTP   = both(IP, IPProto(ProtoSCTP))
	ICMP   = both(IP, IPProto(ProtoICMP))
	TCP6   = both(IPv6, IPProto(ProtoTCP))
	UDP6   = both(IPv6, IPProto(ProtoUDP))
	SCTP6  = both(IPv6, IPProto(ProtoSCTP))
	ICMPv6 = both(IPv6, IPProto(ProtoICMPv6))
)

func both(a, b MatchOption) MatchOption { return func(m *Match) { a(m); b(m) } }

// L4 matches an IP version and transport protocol: TCP, UDP or SCTP over
// IPv4 or IPv6.
func L4(v6 bool, proto uint8) MatchOption {
	if v6 {
		return both(IPv6, IPProto(proto))
	}
	return both(IP, IPProto(proto))
}

// IPSrc matches an IPv4 or IPv6 source prefix (a single address is a
// full-length prefix).
func IPSrc(p netip.Prefix) MatchOption { return ipMatch(FieldIPv4Src, FieldIPv6Src, p) }

// IPDst matches an IPv4 or IPv6 destination prefix.
func IPDst(p netip.Prefix) MatchOption { return ipMatch(FieldIPv4Dst, FieldIPv6Dst, p) }

// Host is the full-length prefix of an address.
func Host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func ipMatch(f4, f6 *Field, p netip.Prefix) MatchOption {
	f := f4
	if p.Addr().Is6() {
		f = f6
	}
	return prefixMatch(f, p)
}

func prefixMatch(f *Field, p netip.Prefix) MatchOption {
	return func(m *Match) {
		p = p.Masked()
		m.set(f, p.Addr().AsSlice(), prefixMask(p))
	}
}

func prefixMask(p netip.Prefix) []byte {
	n := p.Addr().BitLen() / 8
	mask := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return mask
}

// SrcPort and DstPort match a transport port of TCP, UDP or SCTP.
func SrcPort(proto uint8, port uint16) MatchOption {
	return uintMatch(portField(proto, true), uint64(port))
}

// DstPort matches a transport destination port of TCP, UDP or SCTP.
func DstPort(proto uint8, port uint16) MatchOption {
	return uintMatch(portField(proto, false), uint64(port))
}

// DstPortMasked matches the bits of a destination port set in mask.
func DstPortMasked(proto uint8, port, mask uint16) MatchOption {
	return uintMasked(portField(proto, false), uint64(port), uint64(mask))
}

// L4PortField is the source (src) or destination port field of TCP, UDP or
// SCTP.
func L4PortField(proto uint8, src bool) *Field { return portField(proto, src) }

func portField(proto uint8, src bool) *Field {
	switch {
	case proto == ProtoUDP && src:
		return FieldUDPSrc
	case proto == ProtoUDP:
		return FieldUDPDst
	case proto == ProtoSCTP && src:
		return FieldSCTPSrc
	case proto == ProtoSCTP:
		return FieldSCTPDst
	case src:
		return FieldTCPSrc
	}
	return FieldTCPDst
}

// TCPFlags matches the TCP flags set in mask (TCPSyn, TCPAck, ...).
func TCPFlags(value, mask uint16) MatchOption {
	return uintMasked(FieldTCPFlags, uint64(value), uint64(mask))
}

// ICMPType and ICMPCode match ICMPv4; ICMPv6Type and ICMPv6Code ICMPv6.
func ICMPType(t uint8) MatchOption { return uintMatch(FieldICMPType, uint64(t)) }

// ICMPCode matches the ICMPv4 code.
func ICMPCode(c uint8) MatchOption { return uintMatch(FieldICMPCode, uint64(c)) }

// ICMPv6Type matches the ICMPv6 type.
func ICMPv6Type(t uint8) MatchOption { return uintMatch(FieldICMPv6Type, uint64(t)) }

// ICMPv6Code matches the ICMPv6 code.
func ICMPv6Code(c uint8) MatchOption { return uintMatch(FieldICMPv6Code, uint64(c)) }

// NDTarget matches the target of a neighbour solicitation/advertisement.
func NDTarget(a netip.Addr) MatchOption { return FieldExact(FieldNDTarget, a.AsSlice()) }

// NDSLL matches the source link-layer address option of an ND message.
func NDSLL(mac net.HardwareAddr) MatchOption { return FieldExact(FieldNDSLL, mac) }

// NDTLL matches the target link-layer address option of an ND message.
func NDTLL(mac net.HardwareAddr) MatchOption { return FieldExact(FieldNDTLL, mac) }

// ARPOp matches the ARP opcode (1 request, 2 reply).
func ARPOp(op uint16) MatchOption { return uintMatch(FieldARPOp, uint64(op)) }

// ARPSPA matches the ARP sender protocol address.
func ARPSPA(a netip.Addr) MatchOption { return FieldExact(FieldARPSPA, a.AsSlice()) }

// ARPTPA matches the ARP target protocol address.
func ARPTPA(a netip.Addr) MatchOption { return FieldExact(FieldARPTPA, a.AsSlice()) }

// ARPSHA matches the ARP sender hardware address.
func ARPSHA(mac net.HardwareAddr) MatchOption { return FieldExact(FieldARPSHA, mac) }

// ARPTHA matches the ARP target hardware address.
func ARPTHA(mac net.HardwareAddr) MatchOption { return FieldExact(FieldARPTHA, mac) }

// CTState matches the conntrack state bits set in mask (CTNew, CTTrk, ...).
func CTState(value, mask uint32) MatchOption {
	return uintMasked(FieldCTState, uint64(value), uint64(mask))
}

// CTZone matches the conntrack zone.
func CTZone(z uint16) MatchOption { return uintMatch(FieldCTZone, uint64(z)) }

// CTMark matches the bits of the conntrack mark set in mask.
func CTMark(value, mask uint32) MatchOption {
	return uintMasked(FieldCTMark, uint64(value), uint64(mask))
}

// CTLabel matches the bits of the 128-bit conntrack label set in mask.
func CTLabel(value, mask [16]byte) MatchOption { return FieldMasked(FieldCTLabel, value[:], mask[:]) }

// CTNWDst matches the original destination address of the connection.
func CTNWDst(a netip.Addr) MatchOption {
	if a.Is6() {
		return FieldExact(FieldCTIPv6Dst, a.AsSlice())
	}
	return FieldExact(FieldCTNWDst, a.AsSlice())
}

// CTNWProto matches the connection's IP protocol.
func CTNWProto(p uint8) MatchOption { return uintMatch(FieldCTNWProto, uint64(p)) }

// CTTPDst matches the connection's original transport destination port.
func CTTPDst(p uint16) MatchOption { return uintMatch(FieldCTTPDst, uint64(p)) }

// RegEq matches register i exactly.
func RegEq(i int, v uint32) MatchOption { return uintMatch(Regs[i], uint64(v)) }

// RegMasked matches the bits of register i set in mask.
func RegMasked(i int, v, mask uint32) MatchOption {
	return uintMasked(Regs[i], uint64(v), uint64(mask))
}

// Metadata matches the bits of the metadata set in mask.
func Metadata(v, mask uint64) MatchOption { return uintMasked(FieldMetadata, v, mask) }

// PktMark matches the bits of the packet mark set in mask.
func PktMark(v, mask uint32) MatchOption { return uintMasked(FieldPktMark, uint64(v), uint64(mask)) }

// NWTTL matches the IP TTL or hop limit.
func NWTTL(ttl uint8) MatchOption { return uintMatch(FieldIPTTL, uint64(ttl)) }

// String renders the match as ovs-ofctl prints it (without priority), in
// OVS's order of fields.
func (m *Match) String() string {
	var parts []string
	add := func(name, v string) { parts = append(parts, name+"="+v) }
	field := func(f *Field, name string) {
		if e := m.get(f); e != nil {
			add(name, matchValue(f, m.value(e), m.mask(e)))
		}
	}
	field(FieldPktMark, "pkt_mark")
	field(FieldDPHash, "dp_hash")
	field(FieldConjID, "conj_id")
	field(FieldCTState, "ct_state")
	field(FieldCTZone, "ct_zone")
	field(FieldCTMark, "ct_mark")
	field(FieldCTLabel, "ct_label")
	field(FieldCTNWSrc, "ct_nw_src")
	field(FieldCTNWDst, "ct_nw_dst")
	field(FieldCTIPv6Src, "ct_ipv6_src")
	field(FieldCTIPv6Dst, "ct_ipv6_dst")
	field(FieldCTNWProto, "ct_nw_proto")
	field(FieldCTTPSrc, "ct_tp_src")
	field(FieldCTTPDst, "ct_tp_dst")

	ethType, haveType := m.uintOf(FieldEthType)
	proto, haveProto := m.uintOf(FieldIPProto)
	skipType, skipProto := false, false
	if haveType {
		skipType = true
		short := map[uint64]string{}
		switch uint16(ethType) {
		case EthTypeIPv4:
			short = map[uint64]string{uint64(ProtoICMP): "icmp", 2: "igmp", uint64(ProtoTCP): "tcp", uint64(ProtoUDP): "udp", uint64(ProtoSCTP): "sctp"}
			parts = append(parts, protoShorthand(short, proto, haveProto, "ip", &skipProto))
		case EthTypeIPv6:
			short = map[uint64]string{uint64(ProtoICMPv6): "icmp6", uint64(ProtoTCP): "tcp6", uint64(ProtoUDP): "udp6", uint64(ProtoSCTP): "sctp6"}
			parts = append(parts, protoShorthand(short, proto, haveProto, "ipv6", &skipProto))
		case EthTypeARP:
			parts = append(parts, "arp")
		default:
			skipType = false
		}
	}
	for _, r := range Regs {
		field(r, r.name)
	}
	field(FieldMetadata, "metadata")
	field(FieldInPort, "in_port")
	field(FieldInPort16, "in_port")
	field(FieldEthSrc, "dl_src")
	field(FieldEthDst, "dl_dst")
	if haveType && !skipType {
		add("dl_type", fmt.Sprintf("0x%04x", ethType))
	}
	field(FieldIPv6Src, "ipv6_src")
	field(FieldIPv6Dst, "ipv6_dst")
	field(FieldARPSPA, "arp_spa")
	field(FieldARPTPA, "arp_tpa")
	field(FieldIPv4Src, "nw_src")
	field(FieldIPv4Dst, "nw_dst")
	if haveProto && !skipProto {
		add("nw_proto", fmt.Sprint(proto))
	}
	field(FieldARPOp, "arp_op")
	field(FieldARPSHA, "arp_sha")
	field(FieldARPTHA, "arp_tha")
	field(FieldIPTTL, "nw_ttl")
	field(FieldICMPType, "icmp_type")
	field(FieldICMPCode, "icmp_code")
	field(FieldICMPv6Type, "icmp_type")
	field(FieldICMPv6Code, "icmp_code")
	field(FieldNDTarget, "nd_target")
	field(FieldNDSLL, "nd_sll")
	field(FieldNDTLL, "nd_tll")
	for _, f := range []*Field{FieldTCPSrc, FieldUDPSrc, FieldSCTPSrc} {
		field(f, "tp_src")
	}
	for _, f := range []*Field{FieldTCPDst, FieldUDPDst, FieldSCTPDst} {
		field(f, "tp_dst")
	}
	field(FieldTCPFlags, "tcp_flags")
	return strings.Join(parts, ",")
}

func protoShorthand(short map[uint64]string, proto uint64, have bool, def string, skip *bool) string {
	if have {
		if s, ok := short[proto]; ok {
			*skip = true
			return s
		}
	}
	return def
}

// matchValue formats a value as OVS's match_format does, which differs
// from set_field's formatting for some fields.
func matchValue(f *Field, value, mask []byte) string {
	switch f.kind {
	case kindDec:
		// format_be16_masked and friends: decimal when exact.
		if mask == nil {
			return f.format(value, nil)
		}
		return hexBytes(value) + "/" + hexBytes(mask)
	case kindCTState:
		return formatFlags(uint32(toUint(value)), maskOr(mask, 0xff), ctStateNames)
	}
	return f.format(value, mask)
}

package agent

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// The packets of health probes: what the prober sends into a member's VM
// port (packet-outs) and reads back from the answers the pipeline hands
// it (packet-ins). docs/architecture.md, "Health checks", shows them.

const tcpPSH = 0x08

// probeFrame is an Ethernet frame from srcMAC and src to dstMAC and dst
// carrying l4 (a TCP segment or a UDP datagram whose checksum field is
// zero: it is filled in here).
func probeFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	v6 := dst.Is6()
	ipLen := ipv4Len
	etherType := uint16(0x0800)
	if v6 {
		ipLen, etherType = ipv6Len, 0x86dd
	}
	out := make([]byte, ethLen+ipLen+len(l4))
	copy(out[0:6], dstMAC)
	copy(out[6:12], srcMAC)
	binary.BigEndian.PutUint16(out[12:], etherType)
	h := out[ethLen:]
	s, d := src.AsSlice(), dst.AsSlice()
	if v6 {
		h[0] = 6 << 4
		binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
		h[6], h[7] = proto, 64
		copy(h[8:24], s)
		copy(h[24:40], d)
	} else {
		h[0] = 4<<4 | 5
		binary.BigEndian.PutUint16(h[2:], uint16(ipv4Len+len(l4)))
		h[6] = 0x40 // don't fragment
		h[8], h[9] = 64, proto
		copy(h[12:16], s)
		copy(h[16:20], d)
		binary.BigEndian.PutUint16(h[10:], checksum(nil, h[:ipv4Len]))
	}
	seg := out[ethLen+ipLen:]
	copy(seg, l4)
	var pseudo []byte
	if v6 {
		pseudo = pseudo6(s, d, proto, len(l4))
	} else {
		pseudo = pseudo4(s, d, proto, len(l4))
	}
	at := 16 // TCP's checksum
	if proto == protoUDP {
		at = 6
	}
	sum := checksum(pseudo, seg)
	if proto == protoUDP && sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(seg[at:], sum)
	return out
}

// tcpSegment is a TCP segment without options (checksum zero).
func tcpSegment(sport, dport uint16, seq, ack uint32, flags uint8, data []byte) []byte {
	b := make([]byte, tcpLen+len(data))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = 5 << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 64240) // window
	copy(b[tcpLen:], data)
	return b
}

// udpDatagram is a UDP datagram (checksum zero).
func udpDatagram(sport, dport uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(data)))
	copy(b[8:], data)
	return b
}

// probeAnswer is what a probe's answer says: from member:port to the
// probe's source:probePort. An ICMP error about a probe datagram fills in
// the datagram's ports the same way (port from the datagram's
// destination, probePort from its source).
type probeAnswer struct {
	member, source netip.Addr
	proto          uint8
	port           uint16
	probePort      uint16
	// TCP: flags, sequence and acknowledgement numbers, data.
	flags    uint8
	seq, ack uint32
	data     []byte
	// unreachable: an ICMP destination unreachable (code: port
	// unreachable is 3 for IPv4, 4 for IPv6).
	unreachable bool
	code        uint8
}

// parseProbeAnswer reads a frame the pipeline handed over for a probe.
func parseProbeAnswer(f []byte) (probeAnswer, bool) {
	var a probeAnswer
	if len(f) < ethLen {
		return a, false
	}
	ip := f[ethLen:]
	var l4 []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		if len(ip) < ipv4Len || ip[0]>>4 != 4 {
			return a, false
		}
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ihl < ipv4Len || total < ihl || len(ip) < ihl {
			return a, false
		}
		a.proto = ip[9]
		a.member, _ = netip.AddrFromSlice(ip[12:16])
		a.source, _ = netip.AddrFromSlice(ip[16:20])
		l4 = ip[ihl:min(total, len(ip))]
	case 0x86dd:
		if len(ip) < ipv6Len || ip[0]>>4 != 6 {
			return a, false
		}
		a.proto = ip[6]
		a.member, _ = netip.AddrFromSlice(ip[8:24])
		a.source, _ = netip.AddrFromSlice(ip[24:40])
		l4 = ip[ipv6Len:min(ipv6Len+int(binary.BigEndian.Uint16(ip[4:])), len(ip))]
	default:
		return a, false
	}
	switch a.proto {
	case protoTCP:
		if len(l4) < tcpLen {
			return a, false
		}
		a.port, a.probePort = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		a.seq, a.ack = binary.BigEndian.Uint32(l4[4:]), binary.BigEndian.Uint32(l4[8:])
		off := int(l4[12]>>4) * 4
		if off < tcpLen || off > len(l4) {
			return a, false
		}
		a.flags, a.data = l4[13], l4[off:]
		return a, true
	case protoUDP:
		if len(l4) < 8 {
			return a, false
		}
		a.port, a.probePort, a.data = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:]), l4[8:]
		return a, true
	case 1, 58: // ICMP, ICMPv6: a destination unreachable about a datagram
		v6 := a.proto == 58
		if len(l4) < 8 || (!v6 && l4[0] != 3) || (v6 && l4[0] != 1) {
			return a, false
		}
		a.unreachable, a.code = true, l4[1]
		inner := l4[8:]
		var innerL4 []byte
		if v6 {
			if len(inner) < ipv6Len+8 || inner[6] != protoUDP {
				return a, false
			}
			innerL4 = inner[ipv6Len:]
		} else {
			if len(inner) < ipv4Len+8 || inner[9] != protoUDP {
				return a, false
			}
			ihl := int(inner[0]&0x0f) * 4
			if ihl < ipv4Len || len(inner) < ihl+8 {
				return a, false
			}
			innerL4 = inner[ihl:]
		}
		a.proto = protoUDP
		a.probePort, a.port = binary.BigEndian.Uint16(innerL4[0:]), binary.BigEndian.Uint16(innerL4[2:])
		return a, true
	}
	return a, false
}

package agent

import (
	"encoding/binary"
	"net"
	"sync"
	"time"
)

// Refusals: a VIP port with no available member sends each new
// connection's first packet to the agent (lb.KindReject), which answers
// from the VIP as a closed port would: a TCP reset, or an ICMP (ICMPv6)
// port unreachable for UDP and SCTP. OVS cannot build either packet.

const (
	ethLen   = 14
	ipv4Len  = 20
	ipv6Len  = 40
	tcpLen   = 20
	protoTCP = 6
	protoUDP = 17
	protoSCT = 132
	protoI6  = 58

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// refusal builds the answer to a refused packet (an Ethernet frame, maybe
// truncated after its transport header), sent from mac; false when the
// packet is not one to answer (a reset, a fragment, too short).
func refusal(frame []byte, mac net.HardwareAddr) ([]byte, bool) {
	if len(frame) < ethLen+ipv4Len {
		return nil, false
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case 0x0800:
		return refuse4(frame, mac)
	case 0x86dd:
		return refuse6(frame, mac)
	}
	return nil, false
}

func refuse4(frame []byte, mac net.HardwareAddr) ([]byte, bool) {
	ip := frame[ethLen:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < ipv4Len || len(ip) < ihl+8 || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
		return nil, false // not IPv4, short, or a non-first fragment
	}
	src, dst := ip[12:16], ip[16:20]
	total := int(binary.BigEndian.Uint16(ip[2:]))
	l4 := ip[ihl:]
	var payload []byte
	proto := ip[9]
	switch proto {
	case protoTCP:
		seg, ok := reset(l4, total-ihl)
		if !ok {
			return nil, false
		}
		binary.BigEndian.PutUint16(seg[16:], 0)
		binary.BigEndian.PutUint16(seg[16:], checksum(pseudo4(dst, src, protoTCP, len(seg)), seg))
		payload = seg
	case protoUDP, protoSCT:
		// Destination unreachable, port unreachable, quoting the IP header
		// and the first 8 bytes of its payload.
		quote := ip[:ihl+8]
		payload = make([]byte, 8+len(quote))
		payload[0], payload[1] = 3, 3
		copy(payload[8:], quote)
		binary.BigEndian.PutUint16(payload[2:], checksum(nil, payload))
		proto = 1
	default:
		return nil, false
	}
	out := make([]byte, ethLen+ipv4Len+len(payload))
	ethernet(out, frame, mac, 0x0800)
	h := out[ethLen:]
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(ipv4Len+len(payload)))
	binary.BigEndian.PutUint16(h[6:], 0x4000) // don't fragment
	h[8], h[9] = 64, proto
	copy(h[12:16], dst)
	copy(h[16:20], src)
	binary.BigEndian.PutUint16(h[10:], checksum(nil, h[:ipv4Len]))
	copy(h[ipv4Len:], payload)
	return out, true
}

func refuse6(frame []byte, mac net.HardwareAddr) ([]byte, bool) {
	ip := frame[ethLen:]
	if len(ip) < ipv6Len+8 || ip[0]>>4 != 6 {
		return nil, false
	}
	src, dst := ip[8:24], ip[24:40]
	var payload []byte
	nh := ip[6]
	switch nh {
	case protoTCP:
		seg, ok := reset(ip[ipv6Len:], int(binary.BigEndian.Uint16(ip[4:])))
		if !ok {
			return nil, false
		}
		binary.BigEndian.PutUint16(seg[16:], checksum(pseudo6(dst, src, protoTCP, len(seg)), seg))
		payload = seg
	case protoUDP, protoSCT:
		// Destination unreachable, port unreachable, quoting as much of the
		// packet as the agent got (an IPv6 error may quote up to 1,232
		// bytes).
		quote := ip
		if len(quote) > 1232 {
			quote = quote[:1232]
		}
		payload = make([]byte, 8+len(quote))
		payload[0], payload[1] = 1, 4
		copy(payload[8:], quote)
		binary.BigEndian.PutUint16(payload[2:], checksum(pseudo6(dst, src, protoI6, len(payload)), payload))
		nh = protoI6
	default:
		return nil, false
	}
	out := make([]byte, ethLen+ipv6Len+len(payload))
	ethernet(out, frame, mac, 0x86dd)
	h := out[ethLen:]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = nh, 64
	copy(h[8:24], dst)
	copy(h[24:40], src)
	copy(h[ipv6Len:], payload)
	return out, true
}

// ethernet writes the answer's Ethernet header: back to the sender, from
// mac.
func ethernet(out, frame []byte, mac net.HardwareAddr, etherType uint16) {
	copy(out[0:6], frame[6:12])
	copy(out[6:12], mac)
	binary.BigEndian.PutUint16(out[12:], etherType)
}

// reset builds the TCP reset (checksum zero) answering segment seg, whose
// IP payload is l4len bytes long, as RFC 9293 has a closed port do; false
// for a reset, which is never answered, or a short segment.
func reset(seg []byte, l4len int) ([]byte, bool) {
	if len(seg) < 14 {
		return nil, false
	}
	flags := seg[13]
	if flags&tcpRST != 0 {
		return nil, false
	}
	out := make([]byte, tcpLen)
	copy(out[0:2], seg[2:4]) // from the port it was sent to
	copy(out[2:4], seg[0:2])
	out[12] = 5 << 4
	if flags&tcpACK != 0 {
		copy(out[4:8], seg[8:12]) // seq = its ack
		out[13] = tcpRST
		return out, true
	}
	dataLen := l4len - int(seg[12]>>4)*4
	if dataLen < 0 {
		dataLen = 0
	}
	ack := binary.BigEndian.Uint32(seg[4:]) + uint32(dataLen)
	if flags&tcpSYN != 0 {
		ack++
	}
	if flags&tcpFIN != 0 {
		ack++
	}
	binary.BigEndian.PutUint32(out[8:], ack)
	out[13] = tcpRST | tcpACK
	return out, true
}

// isReset reports whether an answer refusal built is a TCP reset.
func isReset(frame []byte) bool {
	switch binary.BigEndian.Uint16(frame[12:]) {
	case 0x0800:
		return frame[ethLen+9] == protoTCP
	case 0x86dd:
		return frame[ethLen+6] == protoTCP
	}
	return false
}

func pseudo4(src, dst []byte, proto uint8, n int) []byte {
	p := make([]byte, 12)
	copy(p, src)
	copy(p[4:], dst)
	p[9] = proto
	binary.BigEndian.PutUint16(p[10:], uint16(n))
	return p
}

func pseudo6(src, dst []byte, nh uint8, n int) []byte {
	p := make([]byte, 40)
	copy(p, src)
	copy(p[16:], dst)
	binary.BigEndian.PutUint32(p[32:], uint32(n))
	p[39] = nh
	return p
}

// checksum is the Internet checksum of a pseudo-header (or nil) and data.
func checksum(pseudo, data []byte) uint16 {
	var sum uint32
	for _, b := range [][]byte{pseudo, data} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// refusalsPerSecond caps the refusals an agent sends.
const refusalsPerSecond = 2000

// limiter caps refusals per second, so that a flood to a VIP with no
// member costs the agent and the switch a bounded amount of work.
type limiter struct {
	mu     sync.Mutex
	perSec int
	window time.Time
	used   int
}

func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.used = now, 0
	}
	if l.used >= l.perSec {
		return false
	}
	l.used++
	return true
}

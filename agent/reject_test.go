package agent

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	clientMAC = net.HardwareAddr{2, 0, 10, 0, 0, 1}
	dlbMAC    = net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}
)

// packet builds an Ethernet frame from client to VIP with a transport
// header: TCP (seq 1000, ack 7 when flags have ACK), or UDP/SCTP ports.
func packet(t *testing.T, src, dst string, proto uint8, flags byte, data int) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	l4 := make([]byte, 8)
	binary.BigEndian.PutUint16(l4[0:], 40000)
	binary.BigEndian.PutUint16(l4[2:], 80)
	if proto == protoTCP {
		l4 = make([]byte, tcpLen)
		binary.BigEndian.PutUint16(l4[0:], 40000)
		binary.BigEndian.PutUint16(l4[2:], 80)
		binary.BigEndian.PutUint32(l4[4:], 1000)
		binary.BigEndian.PutUint32(l4[8:], 7)
		l4[12], l4[13] = 5<<4, flags
	}
	l4 = append(l4, make([]byte, data)...)
	out := append([]byte{}, dlbMAC...)
	out = append(out, clientMAC...)
	if s.Is4() {
		out = binary.BigEndian.AppendUint16(out, 0x0800)
		h := make([]byte, ipv4Len)
		h[0], h[8], h[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(h[2:], uint16(ipv4Len+len(l4)))
		copy(h[12:], s.AsSlice())
		copy(h[16:], d.AsSlice())
		return append(append(out, h...), l4...)
	}
	out = binary.BigEndian.AppendUint16(out, 0x86dd)
	h := make([]byte, ipv6Len)
	h[0], h[6], h[7] = 0x60, proto, 64
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	copy(h[8:], s.AsSlice())
	copy(h[24:], d.AsSlice())
	return append(append(out, h...), l4...)
}

func TestRefusal(t *testing.T) {
	tests := []struct {
		name        string
		src, dst    string
		proto       uint8
		flags       byte
		data        int
		answer      bool
		wantProto   uint8 // of the answer's IP header
		seq, ack    uint32
		rflags      byte
		icmpType    byte
		icmpCode    byte
		quotedBytes int
	}{
		{name: "tcp syn v4", src: "10.0.0.1", dst: "10.96.0.10", proto: protoTCP, flags: tcpSYN, answer: true, wantProto: protoTCP, ack: 1001, rflags: tcpRST | tcpACK},
		{name: "tcp data with ack v4", src: "10.0.0.1", dst: "10.96.0.10", proto: protoTCP, flags: tcpACK | 0x08, data: 10, answer: true, wantProto: protoTCP, seq: 7, rflags: tcpRST},
		{name: "tcp fin with data, no ack", src: "10.0.0.1", dst: "10.96.0.10", proto: protoTCP, flags: tcpFIN, data: 5, answer: true, wantProto: protoTCP, ack: 1006, rflags: tcpRST | tcpACK},
		{name: "tcp reset is not answered", src: "10.0.0.1", dst: "10.96.0.10", proto: protoTCP, flags: tcpRST},
		{name: "udp v4", src: "10.0.0.1", dst: "10.96.0.10", proto: protoUDP, data: 20, answer: true, wantProto: 1, icmpType: 3, icmpCode: 3, quotedBytes: ipv4Len + 8},
		{name: "sctp v4", src: "10.0.0.1", dst: "10.96.0.10", proto: protoSCT, data: 20, answer: true, wantProto: 1, icmpType: 3, icmpCode: 3, quotedBytes: ipv4Len + 8},
		{name: "tcp syn v6", src: "fd00::1", dst: "fd00::10", proto: protoTCP, flags: tcpSYN, answer: true, wantProto: protoTCP, ack: 1001, rflags: tcpRST | tcpACK},
		{name: "udp v6", src: "fd00::1", dst: "fd00::10", proto: protoUDP, data: 20, answer: true, wantProto: protoI6, icmpType: 1, icmpCode: 4, quotedBytes: ipv6Len + 8 + 20},
		{name: "icmp is not answered", src: "10.0.0.1", dst: "10.96.0.10", proto: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := packet(t, tt.src, tt.dst, tt.proto, tt.flags, tt.data)
			out, ok := refusal(in, dlbMAC)
			require.Equal(t, tt.answer, ok)
			if !ok {
				return
			}
			assert.Equal(t, []byte(clientMAC), out[0:6], "back to the client")
			assert.Equal(t, []byte(dlbMAC), out[6:12], "from the DLB's MAC")
			v6 := netip.MustParseAddr(tt.src).Is6()
			ip := out[ethLen:]
			var src, dst []byte
			var l4 []byte
			var pseudo []byte
			if v6 {
				src, dst, l4 = ip[8:24], ip[24:40], ip[ipv6Len:]
				assert.Equal(t, tt.wantProto, ip[6])
				assert.Equal(t, len(l4), int(binary.BigEndian.Uint16(ip[4:])))
				pseudo = pseudo6(src, dst, ip[6], len(l4))
			} else {
				src, dst, l4 = ip[12:16], ip[16:20], ip[ipv4Len:]
				assert.Equal(t, tt.wantProto, ip[9])
				assert.Zero(t, checksum(nil, ip[:ipv4Len]), "IPv4 header checksum verifies")
				assert.Equal(t, len(ip), int(binary.BigEndian.Uint16(ip[2:])))
				if tt.wantProto == protoTCP {
					pseudo = pseudo4(src, dst, protoTCP, len(l4))
				}
			}
			assert.Equal(t, netip.MustParseAddr(tt.dst).AsSlice(), src, "from the VIP")
			assert.Equal(t, netip.MustParseAddr(tt.src).AsSlice(), dst, "to the client")
			assert.Zero(t, checksum(pseudo, l4), "transport checksum verifies")
			if tt.wantProto == protoTCP {
				assert.Equal(t, uint16(80), binary.BigEndian.Uint16(l4[0:]))
				assert.Equal(t, uint16(40000), binary.BigEndian.Uint16(l4[2:]))
				assert.Equal(t, tt.seq, binary.BigEndian.Uint32(l4[4:]), "seq")
				assert.Equal(t, tt.ack, binary.BigEndian.Uint32(l4[8:]), "ack")
				assert.Equal(t, tt.rflags, l4[13], "flags")
				return
			}
			assert.Equal(t, tt.icmpType, l4[0])
			assert.Equal(t, tt.icmpCode, l4[1])
			assert.Equal(t, in[ethLen:ethLen+tt.quotedBytes], l4[8:], "quotes the refused packet")
		})
	}
}

func TestLimiter(t *testing.T) {
	l := &limiter{perSec: 3}
	now := l.window.Add(30 * time.Second)
	got := 0
	for i := 0; i < 10; i++ {
		if l.allow(now) {
			got++
		}
	}
	assert.Equal(t, 3, got)
	assert.True(t, l.allow(now.Add(1001*time.Millisecond)), "a new second allows again")
}

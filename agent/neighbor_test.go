package agent

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNeighborAdvert(t *testing.T) {
	client := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dlb := net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}
	src, vip := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::100")
	ns := make([]byte, 14+40+32)
	copy(ns[0:6], []byte{0x33, 0x33, 0xff, 0, 1, 0})
	copy(ns[6:12], client)
	binary.BigEndian.PutUint16(ns[12:], 0x86dd)
	ns[14] = 0x60
	binary.BigEndian.PutUint16(ns[18:], 32)
	ns[20], ns[21] = 58, 255
	s16, v16 := src.As16(), vip.As16()
	copy(ns[22:38], s16[:])
	ns[54] = 135
	copy(ns[62:78], v16[:])

	na, ok := neighborAdvert(ns, dlb)
	require.True(t, ok)
	assert.Equal(t, []byte(client), na[0:6])
	assert.Equal(t, []byte(dlb), na[6:12])
	assert.Equal(t, v16[:], na[22:38], "from the VIP")
	assert.Equal(t, s16[:], na[38:54], "to the soliciting client")
	assert.Equal(t, byte(136), na[54])
	assert.Equal(t, uint32(0x60000000), binary.BigEndian.Uint32(na[58:]))
	assert.Equal(t, []byte(dlb), na[80:86], "target link-layer address option")
	// A correct checksum sums to zero over pseudo-header and message.
	assert.Equal(t, uint16(0), icmpv6Checksum(na[22:38], na[38:54], na[54:]))
	_, ok = neighborAdvert(ns[:60], dlb)
	assert.False(t, ok, "a truncated frame is ignored")
}

func TestProbesAndAnswers(t *testing.T) {
	dlb := net.HardwareAddr{0x0a, 0xdb, 0, 0, 0, 1}
	member := net.HardwareAddr{2, 0, 0, 0, 0, 0x0b}
	req := arpRequest(dlb, netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("10.0.0.11"))
	// Turn the request into the member's reply, as its kernel would.
	reply := append([]byte(nil), req...)
	copy(reply[0:6], dlb)
	copy(reply[6:12], member)
	binary.BigEndian.PutUint16(reply[20:], 2)
	copy(reply[22:28], member)
	copy(reply[28:32], req[38:42])
	copy(reply[32:38], dlb)
	copy(reply[38:42], req[28:32])
	ip, mac, ok := parseAnswer(reply)
	require.True(t, ok)
	assert.Equal(t, "10.0.0.11", ip.String())
	assert.Equal(t, member, mac)
	_, _, ok = parseAnswer(req)
	assert.False(t, ok, "a request is not an answer")

	ns := neighborSolicit(dlb, netip.MustParseAddr("fd00::100"), netip.MustParseAddr("fd00::12"))
	assert.Equal(t, []byte{0x33, 0x33, 0xff, 0, 0, 0x12}, ns[0:6])
	assert.Equal(t, uint16(0), icmpv6Checksum(ns[22:38], ns[38:54], ns[54:]))
	na, ok := neighborAdvert(ns, member)
	require.True(t, ok)
	ip, mac, ok = parseAnswer(na)
	require.True(t, ok)
	assert.Equal(t, "fd00::12", ip.String())
	assert.Equal(t, member, mac)
}

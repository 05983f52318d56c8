package main

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/ovs-dlb/dlb/ofctrl"
)

// responder answers IPv6 neighbour solicitations for VIPs, which the
// pipeline sends to the agent as packet-ins (ARP for IPv4 VIPs is answered
// by flows alone: OVS cannot turn a solicitation into an advertisement).
type responder struct {
	sw  *ofctrl.Switch
	mac net.HardwareAddr
	log *slog.Logger
}

func (r *responder) packetIn(p *ofctrl.PacketIn) {
	na, ok := neighborAdvert(p.Data, r.mac)
	if !ok {
		return
	}
	c, err := r.sw.TryConn()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Send(ctx, ofctrl.PacketOut{InPort: p.InPort(), Actions: []ofctrl.Action{ofctrl.OutInPort()}, Data: na}); err != nil {
		r.log.Warn("neighbour advertisement not sent", "err", err)
	}
}

// neighborAdvert builds the solicited advertisement that answers an
// Ethernet frame carrying an ICMPv6 neighbour solicitation.
func neighborAdvert(frame []byte, mac net.HardwareAddr) ([]byte, bool) {
	const eth, ip6 = 14, 40
	if len(frame) < eth+ip6+24 || binary.BigEndian.Uint16(frame[12:]) != 0x86dd || frame[eth+6] != 58 || frame[eth+ip6] != 135 {
		return nil, false
	}
	src, _ := netip.AddrFromSlice(frame[eth+8 : eth+24])
	target := frame[eth+ip6+8 : eth+ip6+24]
	dst := src
	flags := uint32(0x60000000) // solicited, override
	if src.IsUnspecified() {
		dst = netip.MustParseAddr("ff02::1")
		flags = 0x20000000 // override only, to all nodes
	}
	out := make([]byte, eth+ip6+32)
	copy(out[0:6], frame[6:12])
	copy(out[6:12], mac)
	binary.BigEndian.PutUint16(out[12:], 0x86dd)
	h := out[eth:]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], 32)
	h[6], h[7] = 58, 255
	copy(h[8:24], target)
	d := dst.As16()
	copy(h[24:40], d[:])
	icmp := h[ip6:]
	icmp[0] = 136
	binary.BigEndian.PutUint32(icmp[4:], flags)
	copy(icmp[8:24], target)
	icmp[24], icmp[25] = 2, 1 // target link-layer address option
	copy(icmp[26:32], mac)
	binary.BigEndian.PutUint16(icmp[2:], icmpv6Checksum(h[8:24], h[24:40], icmp))
	return out, true
}

func icmpv6Checksum(src, dst, payload []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src)
	add(dst)
	var ph [8]byte
	binary.BigEndian.PutUint32(ph[0:], uint32(len(payload)))
	ph[7] = 58
	add(ph[:])
	add(payload)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

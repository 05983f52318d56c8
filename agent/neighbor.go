package agent

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

// responder answers IPv6 neighbour solicitations for VIPs, which the
// pipeline sends to the agent as packet-ins (ARP for IPv4 VIPs is answered
// by flows alone: OVS cannot turn a solicitation into an advertisement).
//
// It also refuses new connections to VIP ports without an available
// member (reject.go).
type responder struct {
	sw       *ofctrl.Switch
	mac      net.HardwareAddr
	log      *slog.Logger
	res      *resolver
	refusals *prometheus.CounterVec
	limit    *limiter
	// probe takes health probes' answers.
	probe func(inPort uint32, frame []byte)
}

func (r *responder) packetIn(p *ofctrl.PacketIn) {
	switch pipeline.CookieKind(p.Cookie) {
	case pipeline.KindReject:
		r.refuse(p)
		return
	case pipeline.KindProbe:
		if r.probe != nil {
			r.probe(p.InPort(), p.Data)
		}
		return
	}
	if r.res != nil && r.res.answer(p.Data) {
		return
	}
	na, ok := neighborAdvert(p.Data, r.mac)
	if !ok {
		return
	}
	if err := r.sendBack(p, na); err != nil {
		r.log.Warn("neighbour advertisement not sent", "err", err)
	}
}

// refuse answers a new connection to a VIP port with no available member.
func (r *responder) refuse(p *ofctrl.PacketIn) {
	if !r.limit.allow(time.Now()) {
		r.refusals.WithLabelValues("limited").Inc()
		return
	}
	answer, ok := refusal(p.Data, r.mac)
	if !ok {
		return
	}
	kind := "unreachable"
	if isReset(answer) {
		kind = "reset"
	}
	if err := r.sendBack(p, answer); err != nil {
		r.refusals.WithLabelValues("failed").Inc()
		r.log.Warn("refusal not sent", "err", err)
		return
	}
	r.refusals.WithLabelValues(kind).Inc()
}

// sendBack sends a frame out of the port a packet-in came from.
func (r *responder) sendBack(p *ofctrl.PacketIn, frame []byte) error {
	return switchSender{r.sw}.post(ofctrl.PacketOut{InPort: p.InPort(), Actions: []ofctrl.Action{ofctrl.OutInPort()}, Data: frame})
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
	icmp := make([]byte, 32)
	icmp[0] = 136
	binary.BigEndian.PutUint32(icmp[4:], flags)
	copy(icmp[8:24], target)
	icmp[24], icmp[25] = 2, 1 // target link-layer address option
	copy(icmp[26:32], mac)
	t, _ := netip.AddrFromSlice(target)
	return icmpv6Frame(net.HardwareAddr(frame[6:12]), mac, t, dst, icmp), true
}

// icmpv6Frame wraps an ICMPv6 message (checksum field zero) in IPv6, hop
// limit 255, and Ethernet, and fills in the checksum.
func icmpv6Frame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, icmp []byte) []byte {
	const eth, ip6 = 14, 40
	out := make([]byte, eth+ip6+len(icmp))
	copy(out[0:6], dstMAC)
	copy(out[6:12], srcMAC)
	binary.BigEndian.PutUint16(out[12:], 0x86dd)
	h := out[eth:]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(icmp)))
	h[6], h[7] = 58, 255
	s16, d16 := src.As16(), dst.As16()
	copy(h[8:24], s16[:])
	copy(h[24:40], d16[:])
	copy(h[ip6:], icmp)
	binary.BigEndian.PutUint16(h[ip6+2:], icmpv6Checksum(h[8:24], h[24:40], h[ip6:]))
	return out
}

// icmpv6Checksum is the ICMPv6 checksum of a message between src and dst.
func icmpv6Checksum(src, dst, payload []byte) uint16 {
	return checksum(pseudo6(src, dst, protoI6, len(payload)), payload)
}

// resolver finds members' MAC addresses that neither the group nor the
// local inventory gives: it floods ARP requests (IPv4) or neighbour
// solicitations (IPv6) from the DLB's MAC, asking as the member's VIP, and
// learns from the answers, which the pipeline sends to the agent.
type resolver struct {
	sw    *ofctrl.Switch
	mac   net.HardwareAddr
	log   *slog.Logger
	learn func(ip netip.Addr, mac net.HardwareAddr)

	mu     sync.Mutex
	wanted map[netip.Addr]netip.Addr // member -> a VIP to ask as; guarded by mu
	last   map[netip.Addr]time.Time  // last probe; guarded by mu
}

func newResolver(sw *ofctrl.Switch, mac net.HardwareAddr, log *slog.Logger, learn func(netip.Addr, net.HardwareAddr)) *resolver {
	return &resolver{sw: sw, mac: mac, log: log, learn: learn, wanted: map[netip.Addr]netip.Addr{}, last: map[netip.Addr]time.Time{}}
}

// want sets the members to resolve (member -> VIP of one of its groups).
func (r *resolver) want(members map[netip.Addr]netip.Addr) {
	r.mu.Lock()
	r.wanted = members
	r.mu.Unlock()
}

// run probes wanted members, each at most once a second, until ctx ends.
func (r *resolver) run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c, err := r.sw.TryConn()
		if err != nil {
			continue
		}
		now := time.Now()
		var outs []ofctrl.Mod
		r.mu.Lock()
		for ip, vip := range r.wanted {
			if now.Sub(r.last[ip]) < time.Second {
				continue
			}
			r.last[ip] = now
			var frame []byte
			if ip.Is6() {
				frame = neighborSolicit(r.mac, vip, ip)
			} else {
				frame = arpRequest(r.mac, vip, ip)
			}
			outs = append(outs, ofctrl.PacketOut{InPort: ofctrl.PortController, Actions: []ofctrl.Action{ofctrl.OutputPort(ofctrl.PortFlood)}, Data: frame})
		}
		r.mu.Unlock()
		if len(outs) > 0 {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			if err := c.Send(sctx, outs...); err != nil {
				r.log.Warn("neighbour probes not sent", "err", err)
			}
			cancel()
		}
	}
}

// answer learns from an ARP reply or neighbour advertisement; it reports
// whether the frame was one.
func (r *resolver) answer(frame []byte) bool {
	ip, mac, ok := parseAnswer(frame)
	if !ok {
		return false
	}
	r.mu.Lock()
	_, wanted := r.wanted[ip]
	r.mu.Unlock()
	if wanted {
		r.log.Info("resolved member", "ip", ip, "mac", mac)
	}
	r.learn(ip, mac)
	return true
}

func arpRequest(mac net.HardwareAddr, from, target netip.Addr) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1)
	copy(a[8:14], mac)
	if from.Is4() {
		s := from.As4()
		copy(a[14:18], s[:])
	}
	t := target.As4()
	copy(a[24:28], t[:])
	return f
}

func neighborSolicit(mac net.HardwareAddr, from, target netip.Addr) []byte {
	t := target.As16()
	group := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]})
	icmp := make([]byte, 32)
	icmp[0] = 135
	copy(icmp[8:24], t[:])
	icmp[24], icmp[25] = 1, 1 // source link-layer address option
	copy(icmp[26:32], mac)
	return icmpv6Frame(net.HardwareAddr{0x33, 0x33, 0xff, t[13], t[14], t[15]}, mac, from, group, icmp)
}

// parseAnswer reads the sender of an ARP reply or the target of a
// neighbour advertisement, with its MAC.
func parseAnswer(f []byte) (netip.Addr, net.HardwareAddr, bool) {
	if len(f) < 42 {
		return netip.Addr{}, nil, false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0806:
		a := f[14:]
		if binary.BigEndian.Uint16(a[6:]) != 2 {
			return netip.Addr{}, nil, false
		}
		ip, _ := netip.AddrFromSlice(a[14:18])
		return ip, net.HardwareAddr(append([]byte(nil), a[8:14]...)), true
	case 0x86dd:
		const eth, ip6 = 14, 40
		if len(f) < eth+ip6+24 || f[eth+6] != 58 || f[eth+ip6] != 136 {
			return netip.Addr{}, nil, false
		}
		icmp := f[eth+ip6:]
		ip, _ := netip.AddrFromSlice(icmp[8:24])
		mac := net.HardwareAddr(append([]byte(nil), f[6:12]...))
		for opt := icmp[24:]; len(opt) >= 8 && opt[1] > 0; opt = opt[min(int(opt[1])*8, len(opt)):] {
			if opt[0] == 2 {
				mac = net.HardwareAddr(append([]byte(nil), opt[2:8]...))
			}
		}
		return ip, mac, true
	}
	return netip.Addr{}, nil, false
}

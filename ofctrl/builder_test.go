package ofctrl_test

import (
	"net"
	"net/netip"
	"time"

	. "github.com/ovs-dlb/dlb/ofctrl"
)

var (
	vip4  = netip.MustParseAddr("10.96.0.1")
	vip6  = netip.MustParseAddr("fd00::100")
	dcn1  = netip.MustParseAddr("10.0.0.11")
	dcn2  = netip.MustParseAddr("10.0.0.12")
	mac1  = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	mac2  = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	mcast = net.HardwareAddr{0x01, 0, 0, 0, 0, 0}
)

func nat(a netip.Addr, port uint16) *NAT {
	return &NAT{Dst: true, AddrMin: a, PortMin: port}
}

func ctTo(zone uint16, table uint8) CT {
	c := ConnTrack(zone)
	c.Table = table
	return c
}

func commit(zone uint16, table uint8, n *NAT, exec ...Action) CT {
	c := ctTo(zone, table)
	c.Commit, c.NAT, c.Exec = true, n, exec
	return c
}

// builderGroups are installed before builderFlows, which refer to them.
func builderGroups() []*Group {
	return []*Group{
		NewGroup(7, GroupSelect).WithSelection("dp_hash", 0).
			Bucket(0, 100, commit(65000, 3, nat(dcn1, 8080))).
			Bucket(1, 50, commit(65000, 3, nat(dcn2, 8080))),
		NewGroup(8, GroupSelect).WithSelection("hash", 0, FieldIPv4Src, FieldIPv4Dst, FieldTCPSrc, FieldTCPDst).
			Bucket(0, 10, OutputPort(1)).
			Bucket(1, 20, OutputPort(2)),
		NewGroup(9, GroupAll).Bucket(0, 0, OutputPort(1)).Bucket(1, 0, OutputPort(2)),
		NewGroup(10, GroupSelect).
			Bucket(3, 1, SetBytes(FieldEthDst, mac1), Normal()).
			Bucket(5, 65535, SetBytes(FieldEthDst, mac2), Normal()),
		NewGroup(11, GroupIndirect).Bucket(0, 0, Set(Reg(3), 7), ResubmitTable(12)),
		{ID: 12, Type: GroupFF, Buckets: []Bucket{
			{ID: 0, WatchPort: 1, Actions: []Action{OutputPort(1)}},
			{ID: 1, WatchPort: 2, Actions: []Action{OutputPort(2)}},
		}},
		NewGroup(13, GroupSelect).WithSelection("dp_hash", 0).
			Bucket(0, 100, commit(7, NoTable, &NAT{Dst: true, AddrMin: netip.MustParseAddr("fd00::11"), PortMin: 80})),
	}
}

// builderFlows covers every match field and action the builder offers.
func builderFlows() []*Flow {
	v4 := Host(vip4)
	learn := Learn{Table: 4, IdleTimeout: 300, Priority: 200, DeleteLearned: true, Specs: []LearnSpec{
		LearnMatchValue(All(FieldEthType), uint64(EthTypeIPv4)),
		LearnMatchField(All(FieldIPv4Src)),
		LearnMatchField(All(FieldIPv4Dst)),
		LearnLoadField(All(Reg(1)), All(Reg(2))),
	}}
	learn2 := Learn{Table: 9, HardTimeout: 10, FinIdleTimeout: 5, FinHardTimeout: 6, Priority: 7, Cookie: 0x55, SendFlowRem: true, Specs: []LearnSpec{
		LearnMatchValue(All(FieldEthType), uint64(EthTypeIPv4)),
		LearnMatchValue(All(FieldIPProto), uint64(ProtoUDP)),
		LearnMatchField(All(FieldIPv4Dst), All(FieldIPv4Src)),
		LearnMatchField(All(FieldUDPDst), All(FieldUDPSrc)),
		LearnMatchValue(Sub(Reg(1), 0, 7), 3),
		LearnLoadValue(Sub(Reg(2), 0, 3), 5),
		LearnOutput(All(FieldInPort16)),
	}}
	zoneReg := Sub(Reg(4), 0, 15)
	forced := ConnTrack(0)
	forced.Commit, forced.Force, forced.ZoneSrc = true, true, &zoneReg
	forced.Exec = []Action{Set(FieldCTLabel, 1), SetMasked(FieldCTMark, 8, 8)}
	srcNAT := ConnTrack(9)
	srcNAT.Commit = true
	srcNAT.NAT = &NAT{Src: true, AddrMin: netip.MustParseAddr("10.0.0.1"), AddrMax: netip.MustParseAddr("10.0.0.9"), PortMin: 100, PortMax: 200, Random: true}
	unNAT := ctTo(65000, 1)
	unNAT.NAT = &NAT{}
	return []*Flow{
		NewFlow(0, 0).Actions(Normal()).Done(),
		NewFlow(0, 100).Match(TCP, InPort(1), IPDst(v4), DstPort(ProtoTCP, 80)).Actions(unNAT).Done(),
		NewFlow(0, 90).Match(UDP6, IPDst(Host(vip6)), DstPort(ProtoUDP, 53)).Actions(ctTo(5, 2)).Done(),
		NewFlow(1, 100).Match(CTState(CTNew|CTTrk, CTNew|CTTrk), IP, RegMasked(0, 5, 0xff)).Actions(ToGroup(7)).Done(),
		NewFlow(1, 101).Match(CTState(CTEst|CTTrk, CTEst|CTTrk|CTRpl), CTZone(65000), CTMark(1, 1), CTLabel([16]byte{15: 1}, [16]byte{15: 0xff}), IP).
			Actions(ResubmitTable(3)).Done(),
		NewFlow(1, 10).Match(ARP, ARPTPA(vip4), ARPOp(1)).Actions(
			Move{All(FieldEthSrc), All(FieldEthDst)}, SetBytes(FieldEthSrc, mac1), Set(FieldARPOp, 2),
			Move{All(FieldARPSHA), All(FieldARPTHA)}, Move{All(FieldARPSPA), All(FieldARPTPA)},
			SetBytes(FieldARPSHA, mac1), SetAddr(FieldARPSPA, FieldARPSPA, vip4), OutInPort()).Done(),
		NewFlow(2, 5).Cookie(0xdead0001).Match(SCTP, EthSrc(mac1), EthDstMasked(mcast, mcast), SrcPort(ProtoSCTP, 9)).
			Actions(OutputPort(1), Normal(), Controller{Reason: ReasonNoMatch, Userdata: []byte{1, 2}}).Done(),
		NewFlow(3, 1).IdleTimeout(30*time.Second).HardTimeout(time.Minute).
			Match(IP, IPSrc(netip.MustParsePrefix("10.0.0.0/24"))).Actions(learn).Goto(4).Done(),
		NewFlow(4, 1).Match(IP).Actions(
			Multipath{Fields: HashSymmetricL4, Basis: 1024, Algorithm: AlgHRW, MaxLink: 2, Dst: Sub(Reg(3), 0, 1)},
			commit(1, NoTable, nat(dcn1, 8080), SetMasked(FieldCTMark, 1, 1))).Done(),
		NewFlow(5, 1).Match(ICMPv6, ICMPv6Type(135), NDTarget(vip6)).Actions(
			SetAddr(FieldIPv4Dst, FieldIPv6Dst, netip.MustParseAddr("fd00::2")), DecTTL{}, CTClear{}, Resubmit{Port: 1, Table: 6}).Done(),
		NewFlow(5, 2).Match(TCP, TCPFlags(TCPSyn, TCPSyn|TCPAck)).Actions(
			Output{Port: PortController, MaxLen: 65535}, OutputReg{Src: Sub(Reg(0), 0, 15)}).Done(),
		NewFlow(6, 2).Match(UDP, Metadata(1, ^uint64(0)), RegEq(15, 0x10), PktMark(3, 0xffffffff)).Done(),
		NewFlow(6, 3).Match(TCP, RegEq(1, 1)).Actions(forced).Done(),
		NewFlow(6, 4).Match(UDP).Actions(srcNAT).Done(),
		NewFlow(6, 5).Match(TCP6).Actions(commit(0, NoTable, &NAT{Dst: true, AddrMin: netip.MustParseAddr("fd00::1"), PortMin: 80})).Done(),
		NewFlow(6, 6).Match(IP).Actions(commit(0, NoTable, &NAT{Dst: true, AddrMin: netip.MustParseAddr("10.0.0.5")})).Done(),
		NewFlow(7, 3).Match(TCP6, IPSrc(netip.MustParsePrefix("fd00::/64")), DstPortMasked(ProtoTCP, 0x1000, 0xf000)).Actions(DecTTL{}).Done(),
		NewFlow(7, 4).Match(UDP6, PktMark(5, 0xf)).Actions(Normal()).Done(),
		NewFlow(7, 5).Match(ICMP, ICMPType(3), ICMPCode(3)).Done(),
		NewFlow(7, 6).Match(ICMPv6, ICMPv6Type(136), NDTarget(netip.MustParseAddr("fd00::1")), NDTLL(mac1)).Actions(
			SetAddr(FieldNDTarget, FieldNDTarget, netip.MustParseAddr("fd00::5")), SetBytes(FieldNDTLL, mac2),
			Set(FieldICMPv6Type, 136), Set(FieldICMPv6Code, 0), OutInPort()).Done(),
		NewFlow(7, 7).Match(UDP, InPort(PortLocal), SrcPort(ProtoUDP, 5)).Actions(OutputPort(PortLocal)).Done(),
		NewFlow(7, 8).Match(ARP, ARPOp(2), ARPSHA(mac1), ARPSPA(dcn1), ARPTHA(mac2)).Actions(SetBytes(FieldARPSHA, mac2)).Done(),
		NewFlow(7, 9).Match(IP, NWTTL(1)).Actions(Controller{Reason: ReasonInvalidTTL, MaxLen: 128}).Done(),
		NewFlow(8, 1).Match(CTState(CTTrk, CTTrk|CTInv), TCP, CTNWDst(vip4), CTNWProto(ProtoTCP), CTTPDst(80)).Actions(ResubmitTable(9)).Done(),
		NewFlow(8, 2).Match(TCP).Actions(LoadBits(Reg(4), 5, 5, 1), Move{Sub(FieldInPort16, 0, 15), Sub(Reg(0), 0, 15)},
			Move{All(FieldTCPDst), Sub(Reg(3), 16, 31)}, SetAddr(FieldIPv4Dst, FieldIPv6Dst, dcn1), Set(FieldTCPDst, 8080)).Done(),
		NewFlow(8, 3).Match(UDP, CTState(CTTrk, CTTrk|CTInv)).Actions(Resubmit{Table: 5, CT: true}).Done(),
		NewFlow(8, 4).Match(IPv6).Goto(9).Done(),
		NewFlow(8, 5).Match(IP, EthDst(mac2)).Actions(ctTo(3, 10)).Done(),
		NewFlow(8, 6).Match(UDP).Actions(Controller{ID: 2, Userdata: []byte{0xab}, Pause: true}).Done(),
		NewFlow(8, 7).Match(UDP, RegEq(2, 1)).Actions(learn2, Multipath{Fields: HashEthSrc, Basis: 50, Algorithm: AlgModuloN, MaxLink: 11, Dst: Sub(Reg(4), 0, 3)}).Done(),
		NewFlow(8, 8).Match(IP, RegEq(5, 0)).Actions(OutputPort(3), ToGroup(9)).Done(),
		NewFlow(9, DefaultPriority).Match(TCP, EthSrc(mac1)).Actions(SetBytes(FieldEthDst, mac2), Set(FieldPktMark, 0x10), Normal()).Done(),
		NewFlow(9, 3).Match(UDP, CTState(0, CTTrk)).Actions(ctTo(0, 9)).Done(),
		NewFlow(10, 1).Match(IPv6, IPDst(netip.MustParsePrefix("fd00::/16")), IPSrc(Host(vip6))).Actions(ToGroup(13)).Done(),
		NewFlow(10, 2).Match(ICMP).Actions(ToGroup(11), ToGroup(10), ToGroup(8), ToGroup(12)).Done(),
	}
}

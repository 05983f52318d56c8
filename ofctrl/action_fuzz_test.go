package ofctrl_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	. "github.com/ovs-dlb/dlb/ofctrl"
)

// seedActions are the actions the builder table uses and those the load
// balancer's pipeline builds: conntrack with NAT and a label, learn,
// multipath, controller, set_field, move, resubmit, group and output.
func seedActions() []Action {
	var as []Action
	for _, f := range builderFlows() {
		as = append(as, f.Actions...)
	}
	for _, g := range builderGroups() {
		for _, b := range g.Buckets {
			as = append(as, b.Actions...)
		}
	}
	dcn := netip.MustParseAddrPort("10.0.0.11:8080")
	dcn6 := netip.MustParseAddrPort("[fd00::11]:80")
	mac := []byte{2, 0, 0xa, 0, 0, 0xb}
	labelled := ConnTrack(65000)
	labelled.Commit, labelled.Table = true, 30
	labelled.Exec = []Action{LoadBits(FieldCTLabel, 0, 47, 0x2000a00000b)}
	hairpin := ConnTrack(65001)
	hairpin.Commit, hairpin.Table = true, 40
	hairpin.NAT = &NAT{Src: true, AddrMin: netip.MustParseAddr("10.96.0.1")}
	lookup := ctTo(65000, 20)
	lookup.NAT = &NAT{}
	for _, v6 := range []bool{false, true} {
		et, src := EthTypeIPv4, FieldIPv4Src
		if v6 {
			et, src = EthTypeIPv6, FieldIPv6Src
		}
		as = append(as, Learn{Table: 25, IdleTimeout: 300, Priority: 100, Cookie: 0x300000001, Specs: []LearnSpec{
			LearnMatchValue(All(FieldEthType), uint64(et)),
			LearnMatchField(Sub(Reg(6), 8, 23)),
			LearnMatchField(All(src)),
			LearnLoadField(All(Reg(7)), All(Reg(7))),
		}})
	}
	return append(as,
		CTCommitNAT{Zone: 65000, Table: 30, Dst: dcn, Label: Label128{Lo: 0x2000a00000b}, LoBits: 48},
		CTCommitNAT{Zone: 65000, Table: 30, Dst: dcn, Label: Label128{Hi: 0x1dd289a00, Lo: 0x2000a00000b}, HiBits: 48, LoBits: 48},
		CTCommitNAT{Zone: 65000, Table: 30, Dst: dcn6},
		labelled, hairpin, lookup,
		Move{Src: All(L4PortField(ProtoTCP, true)), Dst: Sub(Reg(8), 0, 15)},
		Move{Src: Sub(FieldCTLabel, 0, 47), Dst: All(FieldEthDst)},
		Set(Reg(6), 0x10203), SetMasked(Reg(5), 1, 1), SetBytes(FieldEthSrc, mac),
		SetBytes(FieldARPSPA, netip.MustParseAddr("10.96.0.1").AsSlice()),
		Controller{MaxLen: 128}, Controller{},
		ResubmitTable(25), ToGroup(70000), OutputPort(7), OutInPort(), Normal(),
	)
}

func formatList(as []Action) string {
	p := make([]string, len(as))
	for i, a := range as {
		p[i] = a.String()
	}
	return strings.Join(p, ",")
}

// TestActionsRoundTrip: each seed action decodes to what prints as it.
func TestActionsRoundTrip(t *testing.T) {
	for _, a := range seedActions() {
		got, err := DecodeActions(AppendActions(nil, []Action{a}))
		require.NoError(t, err, a.String())
		assert.Equal(t, a.String(), formatList(got))
	}
}

// FuzzDecodeActions: no input makes the decoder panic, and what it decodes
// encodes to what decodes to the same actions again.
func FuzzDecodeActions(f *testing.F) {
	seeds := seedActions()
	f.Add(AppendActions(nil, seeds))
	for _, a := range seeds {
		b := AppendActions(nil, []Action{a})
		f.Add(b)
		// And each cut short at a multiple of 8 bytes.
		for n := 8; n < len(b); n += 8 {
			f.Add(cut(b, n))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		as, err := DecodeActions(b)
		if err != nil {
			return
		}
		s := formatList(as)
		again, err := DecodeActions(AppendActions(nil, as))
		require.NoError(t, err, "%s re-encoded", s)
		assert.Equal(t, s, formatList(again))
	})
}

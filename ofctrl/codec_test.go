package ofctrl_test

import (
	"net/netip"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	. "github.com/ovs-dlb/dlb/ofctrl"
)

// TestCodecRoundTrip: every flow and group of the builder table decodes to
// what it encoded (no switch needed; TestBuilderRendersLikeOVS checks the
// same table against OVS).
func TestCodecRoundTrip(t *testing.T) {
	for _, f := range builderFlows() {
		got, err := RoundTripFlow(f)
		require.NoError(t, err, f.String())
		assert.Equal(t, f.String(), got.String())
	}
	for _, g := range builderGroups() {
		got, err := RoundTripGroup(g)
		require.NoError(t, err, g.String())
		assert.Equal(t, g.String(), got.String())
	}
}

func TestRenderGolden(t *testing.T) {
	vip := netip.MustParseAddr("10.96.0.1")
	tests := []struct {
		flow *Flow
		want string
	}{
		{NewFlow(0, 0).Actions(Normal()).Done(), "priority=0 actions=NORMAL"},
		{NewFlow(0, DefaultPriority).Done(), "actions=drop"},
		{NewFlow(2, 100).Cookie(0x1f).Match(TCP, IPDst(Host(vip)), DstPort(ProtoTCP, 80), CTState(CTNew|CTTrk, CTNew|CTTrk)).Actions(ToGroup(7)).Done(),
			"cookie=0x1f, table=2, priority=100,ct_state=+new+trk,tcp,nw_dst=10.96.0.1,tp_dst=80 actions=group:7"},
		{NewFlow(1, 5).Match(IP, IPSrc(netip.MustParsePrefix("10.0.0.0/8")), RegMasked(3, 0, 0xff)).Goto(4).Done(),
			"table=1, priority=5,ip,reg3=0/0xff,nw_src=10.0.0.0/8 actions=goto_table:4"},
		{NewFlow(3, 7).Match(UDP6).Actions(commit(9, 4, &NAT{Dst: true, AddrMin: netip.MustParseAddr("fd00::1"), PortMin: 53})).Done(),
			"table=3, priority=7,udp6 actions=ct(commit,table=4,zone=9,nat(dst=[fd00::1]:53))"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.flow.String())
	}
	g := NewGroup(5, GroupSelect).WithSelection("dp_hash", 0).Bucket(0, 100, OutputPort(3)).Bucket(1, 1, OutputPort(4))
	assert.Equal(t, "group_id=5,type=select,selection_method=dp_hash,bucket=bucket_id:0,weight:100,actions=output:3,bucket=bucket_id:1,actions=output:4", g.String())
}

func TestParseFlags(t *testing.T) {
	v, m, err := ParseCTState("+new+trk-rpl")
	require.NoError(t, err)
	assert.Equal(t, CTNew|CTTrk, v)
	assert.Equal(t, CTNew|CTTrk|CTRpl, m)
	_, _, err = ParseFlags("+bogus", []string{"new"})
	assert.Error(t, err)
}

func TestSlotGroupIsItsBuckets(t *testing.T) {
	a, b := []Action{OutputPort(1)}, []Action{OutputPort(2)}
	compact := &Group{ID: 4, Type: GroupSelect, Slots: []uint16{0, 1, 1, 0}, SlotActions: [][]Action{a, b}}
	full := NewGroup(4, GroupSelect).Bucket(0, 1, a...).Bucket(1, 1, b...).Bucket(2, 1, b...).Bucket(3, 1, a...)
	assert.Equal(t, full.String(), compact.String())
	back, err := RoundTripGroup(compact)
	require.NoError(t, err)
	assert.Equal(t, full.String(), back.String(), "it encodes as the buckets it stands for")
	assert.Equal(t, 4, back.NumBuckets())
}

func TestCTCommitNATIsCT(t *testing.T) {
	dst := netip.MustParseAddrPort("10.0.0.11:8080")
	tests := []struct {
		a    CTCommitNAT
		want string
	}{
		{CTCommitNAT{Zone: 9, Table: 3, Dst: dst, Label: Label128{Lo: 0x2000000000b}, LoBits: 48},
			"ct(commit,table=3,zone=9,nat(dst=10.0.0.11:8080),exec(set_field:0x2000000000b/0xffffffffffff->ct_label))"},
		{CTCommitNAT{Zone: 9, Table: 3, Dst: dst},
			"ct(commit,table=3,zone=9,nat(dst=10.0.0.11:8080))"},
		{CTCommitNAT{Zone: 1, Table: NoTable, Dst: netip.AddrPortFrom(dcn2, 0), Label: Label128{Hi: 5}, HiBits: 4},
			"ct(commit,zone=1,nat(dst=10.0.0.12),exec(set_field:0x50000000000000000/0xf0000000000000000->ct_label))"},
		{CTCommitNAT{Zone: 65000, Table: 30, Dst: netip.MustParseAddrPort("[fd00::11]:80"), Label: Label128{Hi: 1 << 63, Lo: 1}, HiBits: 64, LoBits: 1},
			"ct(commit,table=30,zone=65000,nat(dst=[fd00::11]:80),exec(set_field:0x80000000000000000000000000000001/0xffffffffffffffff0000000000000001->ct_label))"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.a.String())
		assert.Equal(t, tt.want, tt.a.CT().String())
		assert.Equal(t, EncodeAction(tt.a.CT()), EncodeAction(tt.a), "the same bytes as the CT it stands for")
		g := NewGroup(1, GroupSelect).Bucket(0, 1, tt.a)
		back, err := RoundTripGroup(g)
		require.NoError(t, err)
		assert.Equal(t, g.String(), back.String(), "it encodes as the CT it stands for")
	}
	assert.LessOrEqual(t, unsafe.Sizeof(CTCommitNAT{}), uintptr(56), "compact: pipelines hold one a member")
}

package ofctrl_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	. "github.com/ovs-dlb/dlb/ofctrl"
)

func TestFlowDescRoundTrip(t *testing.T) {
	for _, f := range builderFlows() {
		fs, err := DecodeFlowDesc(FlowDesc(f))
		require.NoError(t, err, f.String())
		assert.Equal(t, f.String(), fs.Flow.String())
		assert.Equal(t, 1500*time.Millisecond, fs.Duration)
		assert.Equal(t, uint64(7), fs.Packets)
	}
}

// mutations are b cut at every length (its length field saying so), and b
// with each byte in turn set to 0, 0xff and one more than it was.
func mutations(b []byte) [][]byte {
	var out [][]byte
	for n := range len(b) {
		c := append([]byte(nil), b[:n]...)
		if n >= 2 {
			binary.BigEndian.PutUint16(c, uint16(n))
		}
		out = append(out, c)
	}
	for i := range b {
		for _, v := range []byte{0, 0xff, b[i] + 1} {
			c := append([]byte(nil), b...)
			c[i] = v
			out = append(out, c)
		}
	}
	return out
}

// TestDescsRefuseMalformed: a flow or group desc cut short or with any one
// byte changed decodes or is an error, never a panic, and what decodes
// prints.
func TestDescsRefuseMalformed(t *testing.T) {
	for _, f := range builderFlows() {
		for _, b := range mutations(FlowDesc(f)) {
			require.NotPanics(t, func() {
				if fs, err := DecodeFlowDesc(b); err == nil {
					_ = fs.Flow.String()
				}
			}, "% x", b)
		}
	}
	for _, g := range builderGroups() {
		for _, b := range mutations(GroupDesc(g)) {
			require.NotPanics(t, func() {
				if g, err := DecodeGroupDesc(b); err == nil {
					_ = g.String()
				}
			}, "% x", b)
		}
	}
}

// FuzzDecodeFlowDesc: no flow desc makes the decoder panic, and what
// decodes prints.
func FuzzDecodeFlowDesc(f *testing.F) {
	for _, fl := range builderFlows() {
		f.Add(FlowDesc(fl))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if fs, err := DecodeFlowDesc(b); err == nil {
			_ = fs.Flow.String()
		}
		// The light reader never panics either, and agrees with the full
		// one on what both read.
		if err := CompareFlowCounter(b); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeGroupDesc: no group desc makes the decoder panic, and what
// decodes prints.
func FuzzDecodeGroupDesc(f *testing.F) {
	for _, g := range builderGroups() {
		f.Add(GroupDesc(g))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if g, err := DecodeGroupDesc(b); err == nil {
			_ = g.String()
		}
	})
}

// rawFlowDesc is an ofp_flow_desc with the given OXM fields as its match,
// a duration and a packet count, and no instructions.
func rawFlowDesc(fields ...[]byte) []byte {
	b := make([]byte, 24)
	m := []byte{0, 1, 0, 0}
	for _, f := range fields {
		m = append(m, f...)
	}
	binary.BigEndian.PutUint16(m[2:], uint16(len(m)))
	for len(m)%8 != 0 {
		m = append(m, 0)
	}
	b = append(b, m...)
	// ofp_stats: reserved, length 16, a packet count of 7.
	b = append(b, 0, 0, 0, 16, 0x80, 0x02, 0x08, 0x08, 0, 0, 0, 0, 0, 0, 0, 7)
	binary.BigEndian.PutUint16(b, uint16(len(b)))
	return b
}

// oxm is one OXM field: its header and its bytes.
func oxm(h uint32, v ...byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, h|uint32(len(v))), v...)
}

// TestFlowDescRegisters: the full decoder and the light reader
// (FlowCounter.Reg) agree on every register a match names, and a field
// named twice is refused, as OVS refuses it (OFPBMC_DUP_FIELD). The
// duplicate case is what the fuzzer found.
func TestFlowDescRegisters(t *testing.T) {
	const reg15, xreg7 = 0x00011e00, 0x80010e00
	for _, tc := range []struct {
		name   string
		desc   []byte
		bad    bool
		want   uint32
		exact  bool
		onReg  int
		wantOK bool
	}{
		{name: "reg15 exact", desc: rawFlowDesc(oxm(reg15, 0, 0, 0, 9)), onReg: 15, want: 9, wantOK: true},
		{name: "reg15 twice", desc: rawFlowDesc(oxm(reg15, 0x30, 0x30, 0x30, 0x30), oxm(reg15, 0x30, 0x30, 0x30, 0x31)), bad: true},
		{name: "xreg7 low half then reg15",
			desc:  rawFlowDesc(oxm(xreg7|0x100, 0, 0, 0, 5, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), oxm(reg15, 0, 0, 0, 9)),
			onReg: 15, want: 9, wantOK: true},
		{name: "xreg7 high half is reg14", desc: rawFlowDesc(oxm(xreg7|0x100, 0, 0, 0, 5, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0)), onReg: 14, want: 5, wantOK: true},
		{name: "xreg7 and reg14 twice",
			desc: rawFlowDesc(oxm(xreg7|0x100, 0, 0, 0, 5, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), oxm(0x00011c00, 0, 0, 0, 9)), bad: true},
		{name: "reg15 partly masked", desc: rawFlowDesc(oxm(reg15|0x100, 0, 0, 0, 9, 0, 0, 0, 0xff)), onReg: 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, CompareFlowCounter(tc.desc))
			fs, err := DecodeFlowDesc(tc.desc)
			if tc.bad {
				require.ErrorContains(t, err, "twice")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, uint64(7), fs.Packets)
			v, ok := ReadFlowCounterReg(tc.desc, tc.onReg)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.want, v)
		})
	}
}

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

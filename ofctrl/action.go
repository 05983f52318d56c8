package ofctrl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	of "antrea.io/libOpenflow/openflow15"
)

// Action is one OpenFlow action. String renders it as ovs-ofctl does.
type Action interface {
	String() string
	appendTo(b []byte) []byte
}

// Wire constants not named by libOpenflow.
const (
	nxVendor          = of.NxExperimenterID
	nxastRegMove      = 6
	nxastResubmitTab  = 14
	nxastOutputReg    = 15
	nxastLearn        = 16
	nxastMultipath    = 10
	nxastCT           = 35
	nxastNAT          = 36
	nxastController2  = 37
	nxastCTClear      = 43
	nxastResubmitTCT  = 44
	ofpatOutput       = 0
	ofpatGroup        = 22
	ofpatDecNwTTL     = 24
	ofpatSetField     = 25
	ofpatCopyField    = 28
	ofpatExperimenter = 0xffff
)

func put16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func put32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func put64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func zeros(b []byte, n int) []byte {
	for i := 0; i < n; i++ {
		b = append(b, 0)
	}
	return b
}
func pad8(n int) int { return (n + 7) &^ 7 }

// nxHeader starts a Nicira action; the caller fixes the length with
// finishAction.
func nxHeader(b []byte, subtype uint16) ([]byte, int) {
	start := len(b)
	b = put16(b, ofpatExperimenter)
	b = put16(b, 0)
	b = put32(b, nxVendor)
	b = put16(b, subtype)
	return b, start
}

// finishAction pads an action to a multiple of 8 and writes its length.
func finishAction(b []byte, start int) []byte {
	n := len(b) - start
	b = zeros(b, pad8(n)-n)
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

func formatActions(as []Action) string {
	if len(as) == 0 {
		return "drop"
	}
	p := make([]string, len(as))
	for i, a := range as {
		p[i] = a.String()
	}
	return strings.Join(p, ",")
}

func appendActions(b []byte, as []Action) []byte {
	for _, a := range as {
		b = a.appendTo(b)
	}
	return b
}

// Decoding, for flow and group statistics. The switch's bytes are not
// trusted: each decoder checks that what it reads is there, so a short or
// malformed action is an error naming the action, never a panic
// (FuzzDecodeActions holds them to it).

// errShort is what the error of an action cut short wraps.
var errShort = errors.New("truncated action")

// nxHeaderLen is the length of a Nicira action's header: type, length,
// vendor and subtype.
const nxHeaderLen = 10

// need returns an error unless action b, named name, holds n bytes.
func need(name string, b []byte, n int) error {
	if len(b) < n {
		return fmt.Errorf("%s action of %d bytes, want at least %d: %w", name, len(b), n, errShort)
	}
	return nil
}

// decodeActions decodes a list of actions, each a multiple of 8 bytes long.
func decodeActions(b []byte) ([]Action, error) {
	var out []Action
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("action header of %d bytes: %w", len(b), errShort)
		}
		typ, n := be16(b), int(be16(b[2:]))
		if n < 8 || n%8 != 0 {
			return nil, fmt.Errorf("action type %d: length %d is not a positive multiple of 8", typ, n)
		}
		if n > len(b) {
			return nil, fmt.Errorf("action type %d: length %d past the end of %d bytes: %w", typ, n, len(b), errShort)
		}
		a, err := decodeAction(b[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		b = b[n:]
	}
	return out, nil
}

// decodeAction decodes one action of exactly len(b) bytes.
func decodeAction(b []byte) (Action, error) {
	if err := need("OpenFlow", b, 8); err != nil {
		return nil, err
	}
	typ := be16(b)
	switch typ {
	case ofpatOutput:
		return decodeOutput(b)
	case ofpatGroup:
		return decodeToGroup(b)
	case ofpatDecNwTTL:
		return DecTTL{}, nil
	case ofpatSetField:
		return decodeSetField(b)
	case ofpatCopyField:
		return decodeCopyField(b)
	case ofpatExperimenter:
		if be32(b[4:]) != nxVendor {
			return nil, fmt.Errorf("action of experimenter %#x", be32(b[4:]))
		}
		return decodeNX(b)
	}
	return nil, fmt.Errorf("unsupported action type %d", typ)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// decodeNX decodes a Nicira action. Each decoder gets the whole action
// and checks its length.
func decodeNX(b []byte) (Action, error) {
	if err := need("Nicira", b, nxHeaderLen); err != nil {
		return nil, err
	}
	sub := be16(b[8:])
	switch sub {
	case nxastCTClear:
		return CTClear{}, nil
	case nxastResubmitTab, nxastResubmitTCT:
		return decodeResubmit(b)
	case nxastRegMove:
		return decodeRegMove(b)
	case nxastOutputReg:
		return decodeOutputReg(b)
	case nxastMultipath:
		return decodeMultipath(b)
	case nxastCT:
		return decodeCT(b)
	case nxastNAT:
		return decodeNAT(b)
	case nxastController2:
		return decodeController2(b)
	case nxastLearn:
		return decodeLearn(b)
	}
	return nil, fmt.Errorf("unsupported Nicira action %d", sub)
}

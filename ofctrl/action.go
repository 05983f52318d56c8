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

// Decoding, for flow and group statistics.

var errShort = errors.New("truncated action")

func decodeActions(b []byte) ([]Action, error) {
	var out []Action
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errShort
		}
		n := int(be16(b[2:]))
		if n < 8 || n > len(b) {
			return nil, fmt.Errorf("action length %d of %d bytes", n, len(b))
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

func decodeAction(b []byte) (Action, error) {
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

func decodeNX(b []byte) (Action, error) {
	sub := be16(b[8:])
	body := b[10:]
	switch sub {
	case nxastCTClear:
		return CTClear{}, nil
	case nxastResubmitTab, nxastResubmitTCT:
		return decodeResubmit(sub, body)
	case nxastRegMove:
		return decodeRegMove(body)
	case nxastOutputReg:
		return decodeOutputReg(body)
	case nxastMultipath:
		return decodeMultipath(body)
	case nxastCT:
		return decodeCT(b, body)
	case nxastNAT:
		return decodeNAT(body), nil
	case nxastController2:
		return decodeController2(body[6:])
	case nxastLearn:
		return decodeLearn(body)
	}
	return nil, fmt.Errorf("unsupported Nicira action %d", sub)
}

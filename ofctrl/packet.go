package ofctrl

import (
	"encoding/binary"
	"errors"
	"fmt"

	of "antrea.io/libOpenflow/openflow15"
)

// PacketIn is a packet the switch sent to the controller.
type PacketIn struct {
	// Reason is OpenFlow 1.5's: 0 no match, 1 action, 2 invalid TTL,
	// 3 action set, 4 group, 5 packet-out.
	Reason   uint8
	Table    uint8
	Cookie   uint64
	TotalLen uint16
	// Match holds the packet's metadata: in_port, registers, conntrack
	// fields, as the switch reports them.
	Match Match
	Data  []byte
}

// InPort is the port the packet came in on.
func (p *PacketIn) InPort() uint32 {
	v, _ := p.Match.uintOf(FieldInPort)
	return uint32(v)
}

func decodePacketIn(msg []byte) (*PacketIn, error) {
	if len(msg) < 24 {
		return nil, errors.New("packet-in too short")
	}
	p := &PacketIn{TotalLen: be16(msg[12:]), Reason: msg[14], Table: msg[15], Cookie: be64(msg[16:])}
	m, n, err := decodeMatch(msg[24:], false)
	if err != nil {
		return nil, fmt.Errorf("packet-in match: %w", err)
	}
	p.Match = m
	if off := 24 + n + 2; off <= len(msg) {
		p.Data = msg[off:]
	}
	return p, nil
}

// PacketOut sends a packet through actions, as if it came in on InPort
// (PortController when it did not come from anywhere).
type PacketOut struct {
	InPort  uint32
	Actions []Action
	Data    []byte
}

// String describes the packet-out for errors.
func (p PacketOut) String() string {
	return fmt.Sprintf("packet_out in_port=%s actions=%s (%d bytes)", formatPort(p.InPort, false), formatActions(p.Actions), len(p.Data))
}

func (p PacketOut) appendTo(b []byte, xid uint32) []byte {
	b, start := appendHeader(b, of.Type_PacketOut, xid)
	b = put32(b, bufferNone)
	alenAt := len(b)
	b = put16(b, 0)
	b = zeros(b, 2)
	var m Match
	InPort(p.InPort)(&m)
	b = m.appendTo(b)
	astart := len(b)
	b = appendActions(b, p.Actions)
	binary.BigEndian.PutUint16(b[alenAt:], uint16(len(b)-astart))
	b = append(b, p.Data...)
	return finishMessage(b, start)
}

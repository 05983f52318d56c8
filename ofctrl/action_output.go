package ofctrl

import (
	"fmt"
	"strconv"
	"strings"
)

// Output sends the packet to a port (or to NORMAL, IN_PORT, LOCAL, ...).
type Output struct {
	Port uint32
	// MaxLen is the number of bytes sent to the controller (PortController).
	MaxLen uint16
}

// OutputPort returns an output action to port.
func OutputPort(port uint32) Output { return Output{Port: port} }

// Normal forwards like a learning switch.
func Normal() Output { return Output{Port: PortNormal} }

// OutInPort sends the packet back out of its ingress port.
func OutInPort() Output { return Output{Port: PortInPort} }

func (a Output) String() string {
	switch a.Port {
	case PortController:
		return "CONTROLLER:" + strconv.Itoa(int(a.MaxLen))
	case PortNormal, PortInPort, PortLocal, PortAll, PortFlood, PortTable:
		return portNames[a.Port]
	}
	return "output:" + strconv.FormatUint(uint64(a.Port), 10)
}

func (a Output) appendTo(b []byte) []byte {
	b = put16(b, ofpatOutput)
	b = put16(b, 16)
	b = put32(b, a.Port)
	b = put16(b, a.MaxLen)
	return zeros(b, 6)
}

// decodeOutput decodes ofp_action_output: port, max_len, pad[6].
func decodeOutput(b []byte) (Action, error) {
	if err := need("output", b, 16); err != nil {
		return nil, err
	}
	return Output{Port: be32(b[4:]), MaxLen: be16(b[8:])}, nil
}

// ToGroup sends the packet to a group.
type ToGroup uint32

func (a ToGroup) String() string { return "group:" + strconv.FormatUint(uint64(a), 10) }
func (a ToGroup) appendTo(b []byte) []byte {
	b = put16(b, ofpatGroup)
	b = put16(b, 8)
	return put32(b, uint32(a))
}

// decodeToGroup decodes ofp_action_group: group_id.
func decodeToGroup(b []byte) (Action, error) {
	if err := need("group", b, 8); err != nil {
		return nil, err
	}
	return ToGroup(be32(b[4:])), nil
}

// OutputReg outputs to the port number held in a subfield.
type OutputReg struct {
	Src    Subfield
	MaxLen uint16
}

func (a OutputReg) String() string { return "output:" + a.Src.String() }
func (a OutputReg) appendTo(b []byte) []byte {
	b, start := nxHeader(b, nxastOutputReg)
	b = put16(b, a.Src.ofsNbits())
	b = put32(b, a.Src.Field.header(false))
	b = put16(b, a.MaxLen)
	return finishAction(b, start)
}

// decodeOutputReg decodes nx_action_output_reg: ofs_nbits, src,
// max_len, zero[6].
func decodeOutputReg(b []byte) (Action, error) {
	if err := need("output_reg", b, 24); err != nil {
		return nil, err
	}
	body := b[nxHeaderLen:]
	src, err := subfieldFrom(be32(body[2:]), be16(body))
	if err != nil {
		return nil, fmt.Errorf("output_reg: %w", err)
	}
	return OutputReg{Src: src, MaxLen: be16(body[6:])}, nil
}

// PacketInReason is the reason a Controller action gives. The zero value
// is ReasonAction, as in ovs-ofctl's "controller" action.
type PacketInReason uint8

// Packet-in reasons for Controller.
const (
	ReasonAction PacketInReason = iota
	ReasonNoMatch
	ReasonInvalidTTL
)

var reasonWire = map[PacketInReason]uint8{ReasonAction: 1, ReasonNoMatch: 0, ReasonInvalidTTL: 2}

// Controller sends the packet to the controller as a packet-in. (OVS 3.1
// delivers none for a controller action inside a group bucket reached from
// a packet-out: resubmit to a flow that has it instead.)
type Controller struct {
	// MaxLen is how much of the packet to send; 0 means all of it.
	MaxLen   uint16
	ID       uint16
	Reason   PacketInReason
	Userdata []byte
	Pause    bool
}

func (a Controller) maxLen() uint16 {
	if a.MaxLen == 0 {
		return 0xffff
	}
	return a.MaxLen
}

func (a Controller) String() string {
	if a.Reason == ReasonAction && a.ID == 0 && len(a.Userdata) == 0 && !a.Pause {
		return "CONTROLLER:" + strconv.Itoa(int(a.maxLen()))
	}
	var p []string
	if a.Reason != ReasonAction {
		p = append(p, "reason="+reasonName(a.Reason))
	}
	if a.maxLen() != 0xffff {
		p = append(p, "max_len="+strconv.Itoa(int(a.MaxLen)))
	}
	if a.ID != 0 {
		p = append(p, "id="+strconv.Itoa(int(a.ID)))
	}
	if len(a.Userdata) > 0 {
		h := make([]string, len(a.Userdata))
		for i, x := range a.Userdata {
			h[i] = fmt.Sprintf("%02x", x)
		}
		p = append(p, "userdata="+strings.Join(h, "."))
	}
	if a.Pause {
		p = append(p, "pause")
	}
	return "controller(" + strings.Join(p, ",") + ")"
}

func reasonName(r PacketInReason) string {
	switch r {
	case ReasonNoMatch:
		return "no_match"
	case ReasonInvalidTTL:
		return "invalid_ttl"
	}
	return "action"
}

func (a Controller) appendTo(b []byte) []byte {
	b, start := nxHeader(b, nxastController2)
	b = zeros(b, 6)
	prop := func(typ uint16, val []byte) {
		ps := len(b)
		b = put16(b, typ)
		b = put16(b, uint16(4+len(val)))
		b = append(b, val...)
		b = zeros(b, pad8(len(b)-ps)-(len(b)-ps))
	}
	if a.maxLen() != 0xffff {
		prop(0, put16(nil, a.MaxLen))
	}
	if a.ID != 0 {
		prop(1, put16(nil, a.ID))
	}
	if a.Reason != ReasonAction {
		prop(2, []byte{reasonWire[a.Reason]})
	}
	if len(a.Userdata) > 0 {
		prop(3, a.Userdata)
	}
	if a.Pause {
		prop(4, nil)
	}
	return finishAction(b, start)
}

// decodeController2 decodes nx_action_controller2: pad[6], then
// properties, each type, length, value and padding to 8 bytes.
func decodeController2(b []byte) (Action, error) {
	if err := need("controller2", b, nxHeaderLen+6); err != nil {
		return nil, err
	}
	p := b[nxHeaderLen+6:]
	a := Controller{Reason: ReasonAction}
	for len(p) >= 4 {
		typ, n := be16(p), int(be16(p[2:]))
		if n < 4 {
			return nil, fmt.Errorf("controller2: property %d of length %d", typ, n)
		}
		if n > len(p) {
			return nil, fmt.Errorf("controller2: property %d of length %d past the end of %d bytes: %w", typ, n, len(p), errShort)
		}
		v := p[4:n]
		want := 0 // bytes of value the property's decoding reads
		switch typ {
		case 0, 1:
			want = 2
		case 2:
			want = 1
		}
		if len(v) < want {
			return nil, fmt.Errorf("controller2: property %d of %d bytes, want %d: %w", typ, len(v), want, errShort)
		}
		switch typ {
		case 0:
			a.MaxLen = be16(v)
		case 1:
			a.ID = be16(v)
		case 2:
			for r, w := range reasonWire {
				if w == v[0] {
					a.Reason = r
				}
			}
		case 3:
			a.Userdata = clone(v)
		case 4:
			a.Pause = true
		}
		p = p[min(pad8(n), len(p)):]
	}
	return a, nil
}

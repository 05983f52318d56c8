package ofctrl

import "fmt"

// Resubmit processes the packet again in another table (or the same
// one). With CT set, it uses the conntrack original direction's tuple.
type Resubmit struct {
	// Port is the in_port to pretend; 0 keeps the packet's own.
	Port  uint32
	Table uint8
	CT    bool
}

// ResubmitTable resubmits to table t.
func ResubmitTable(t uint8) Resubmit { return Resubmit{Table: t} }

func (a Resubmit) String() string {
	port := ""
	if a.Port != 0 {
		port = formatPort(a.Port, false)
	}
	s := fmt.Sprintf("resubmit(%s,%d", port, a.Table)
	if a.CT {
		s += ",ct"
	}
	return s + ")"
}

func (a Resubmit) appendTo(b []byte) []byte {
	sub := uint16(nxastResubmitTab)
	if a.CT {
		sub = nxastResubmitTCT
	}
	b, start := nxHeader(b, sub)
	port := uint16(0xfff8) // OFPP_IN_PORT: keep the packet's in_port
	if a.Port != 0 {
		port = uint16(a.Port)
	}
	b = put16(b, port)
	b = append(b, a.Table)
	return finishAction(b, start)
}

// decodeResubmit decodes nx_action_resubmit: in_port, table, pad[3].
func decodeResubmit(b []byte) (Action, error) {
	if err := need("resubmit", b, 16); err != nil {
		return nil, err
	}
	body := b[nxHeaderLen:]
	a := Resubmit{Table: body[2], CT: be16(b[8:]) == nxastResubmitTCT}
	if p := be16(body); p != 0xfff8 {
		a.Port = uint32(p)
		if p >= 0xfff8 {
			a.Port |= 0xffff0000
		}
	}
	return a, nil
}

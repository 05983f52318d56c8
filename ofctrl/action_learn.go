package ofctrl

import (
	"fmt"
	"strconv"
	"strings"
)

// Learn adds or refreshes a flow built from the packet.
type Learn struct {
	Table          uint8
	IdleTimeout    uint16
	HardTimeout    uint16
	FinIdleTimeout uint16
	FinHardTimeout uint16
	// Priority of the learned flow; 0 means OpenFlow's default, 32768.
	Priority      uint16
	Cookie        uint64
	SendFlowRem   bool
	DeleteLearned bool
	Specs         []LearnSpec
}

// LearnSpec is one part of a learned flow: a match or an action.
type LearnSpec struct {
	kind uint16 // learnMatch, learnLoad or learnOutput
	Dst  Subfield
	// Src is the source field, unless Value is set.
	Src   Subfield
	Value []byte
}

const (
	learnMatch  = 0 << 11
	learnLoad   = 1 << 11
	learnOutput = 2 << 11
	learnImm    = 1 << 13
)

// LearnMatchField makes the learned flow match dst on the value this
// packet has in src (the same field when only one is given).
func LearnMatchField(dst Subfield, src ...Subfield) LearnSpec {
	s := dst
	if len(src) > 0 {
		s = src[0]
	}
	return LearnSpec{kind: learnMatch, Dst: dst, Src: s}
}

// LearnMatchValue makes the learned flow match dst on a constant.
func LearnMatchValue(dst Subfield, v uint64) LearnSpec {
	return LearnSpec{kind: learnMatch, Dst: dst, Value: immediate(dst.NBits, v)}
}

// LearnLoadField makes the learned flow copy this packet's src into dst.
func LearnLoadField(src, dst Subfield) LearnSpec {
	return LearnSpec{kind: learnLoad, Dst: dst, Src: src}
}

// LearnLoadValue makes the learned flow load a constant into dst.
func LearnLoadValue(dst Subfield, v uint64) LearnSpec {
	return LearnSpec{kind: learnLoad, Dst: dst, Value: immediate(dst.NBits, v)}
}

// LearnOutput makes the learned flow output to the port in src.
func LearnOutput(src Subfield) LearnSpec { return LearnSpec{kind: learnOutput, Src: src} }

func immediate(nbits int, v uint64) []byte {
	return putUint(2*((nbits+15)/16), v)
}

func (a Learn) String() string {
	p := []string{"table=" + strconv.Itoa(int(a.Table))}
	num := func(name string, v uint16) {
		if v != 0 {
			p = append(p, name+"="+strconv.Itoa(int(v)))
		}
	}
	num("idle_timeout", a.IdleTimeout)
	num("hard_timeout", a.HardTimeout)
	num("fin_idle_timeout", a.FinIdleTimeout)
	num("fin_hard_timeout", a.FinHardTimeout)
	if a.Priority != 0 && a.Priority != 32768 {
		p = append(p, "priority="+strconv.Itoa(int(a.Priority)))
	}
	if a.SendFlowRem {
		p = append(p, "send_flow_rem")
	}
	if a.DeleteLearned {
		p = append(p, "delete_learned")
	}
	if a.Cookie != 0 {
		p = append(p, "cookie="+hexBytes(put64(nil, a.Cookie)))
	}
	for _, s := range a.Specs {
		p = append(p, s.String())
	}
	return "learn(" + strings.Join(p, ",") + ")"
}

func (s LearnSpec) String() string {
	switch s.kind {
	case learnMatch:
		if s.Value != nil {
			if s.Dst.Start == 0 && s.Dst.NBits == s.Dst.Field.bits {
				return s.Dst.Field.name + "=" + s.Dst.Field.format(pad(s.Value, s.Dst.Field.bytes), nil)
			}
			return s.Dst.String() + "=" + hexBytes(s.Value)
		}
		if s.Src == s.Dst {
			return s.Dst.String()
		}
		return s.Dst.String() + "=" + s.Src.String()
	case learnLoad:
		if s.Value != nil {
			return "load:" + hexBytes(s.Value) + "->" + s.Dst.String()
		}
		return "load:" + s.Src.String() + "->" + s.Dst.String()
	}
	return "output:" + s.Src.String()
}

func (a Learn) appendTo(b []byte) []byte {
	b, start := nxHeader(b, nxastLearn)
	b = put16(b, a.IdleTimeout)
	b = put16(b, a.HardTimeout)
	prio := a.Priority
	if prio == 0 {
		prio = 32768
	}
	b = put16(b, prio)
	b = put64(b, a.Cookie)
	var flags uint16
	if a.SendFlowRem {
		flags |= 1
	}
	if a.DeleteLearned {
		flags |= 2
	}
	b = put16(b, flags)
	b = append(b, a.Table, 0)
	b = put16(b, a.FinIdleTimeout)
	b = put16(b, a.FinHardTimeout)
	for _, s := range a.Specs {
		nbits := s.Dst.NBits
		if s.kind == learnOutput {
			nbits = s.Src.NBits
		}
		h := s.kind | uint16(nbits)
		if s.Value != nil {
			h |= learnImm
		}
		b = put16(b, h)
		if s.Value != nil {
			b = append(b, s.Value...)
		} else {
			b = put32(b, s.Src.Field.header(false))
			b = put16(b, uint16(s.Src.Start))
		}
		if s.kind != learnOutput {
			b = put32(b, s.Dst.Field.header(false))
			b = put16(b, uint16(s.Dst.Start))
		}
	}
	return finishAction(b, start)
}

// decodeLearn decodes nx_action_learn: idle_timeout, hard_timeout,
// priority, cookie, flags, table_id, pad, fin_idle_timeout,
// fin_hard_timeout, then flow_mod_specs up to a zero header or the end.
func decodeLearn(b []byte) (Action, error) {
	if err := need("learn", b, nxHeaderLen+22); err != nil {
		return nil, err
	}
	body := b[nxHeaderLen:]
	a := Learn{IdleTimeout: be16(body), HardTimeout: be16(body[2:]), Priority: be16(body[4:]),
		Cookie: be64(body[6:]), Table: body[16], FinIdleTimeout: be16(body[18:]), FinHardTimeout: be16(body[20:])}
	flags := be16(body[14:])
	a.SendFlowRem, a.DeleteLearned = flags&1 != 0, flags&2 != 0
	p := body[22:]
	for len(p) >= 2 {
		h := be16(p)
		if h == 0 {
			break
		}
		p = p[2:]
		i := len(a.Specs)
		s := LearnSpec{kind: h & (3 << 11)}
		nbits := int(h & 0x7ff)
		switch {
		case s.kind != learnMatch && s.kind != learnLoad && s.kind != learnOutput:
			return nil, fmt.Errorf("learn: spec %d of reserved kind %d", i, s.kind>>11)
		case nbits == 0:
			return nil, fmt.Errorf("learn: spec %d of 0 bits", i)
		case s.kind == learnOutput && h&learnImm != 0:
			return nil, fmt.Errorf("learn: spec %d outputs to an immediate value", i)
		}
		// subfield reads an NXM header and an offset.
		subfield := func(what string) (Subfield, error) {
			if len(p) < 6 {
				return Subfield{}, fmt.Errorf("learn: spec %d's %s of %d bytes, want 6: %w", i, what, len(p), errShort)
			}
			f := fieldByHeader(be32(p))
			if f == nil {
				return Subfield{}, fmt.Errorf("learn: spec %d's %s: unknown field %#x", i, what, be32(p))
			}
			sf := Subfield{f, int(be16(p[4:])), nbits}
			p = p[6:]
			return sf, nil
		}
		var err error
		if h&learnImm != 0 {
			k := 2 * ((nbits + 15) / 16)
			if len(p) < k {
				return nil, fmt.Errorf("learn: spec %d's value of %d bytes, want %d: %w", i, len(p), k, errShort)
			}
			s.Value = clone(p[:k])
			p = p[k:]
		} else if s.Src, err = subfield("source"); err != nil {
			return nil, err
		}
		if s.kind != learnOutput {
			if s.Dst, err = subfield("destination"); err != nil {
				return nil, err
			}
		}
		a.Specs = append(a.Specs, s)
	}
	return a, nil
}

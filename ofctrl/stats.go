package ofctrl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	of "antrea.io/libOpenflow/openflow15"
)

// Multipart types (OpenFlow 1.5).
const (
	mpFlowDesc   = 1
	mpGroupStats = 6
	mpGroupDesc  = 7
	mpPortDesc   = 13
)

// FlowStats is a flow as the switch holds it, with its counters.
type FlowStats struct {
	Flow     *Flow
	Duration time.Duration
	IdleAge  time.Duration
	Packets  uint64
	Bytes    uint64
}

// DumpFlows returns the flows of a table (TableAll for every table) whose
// cookie matches cookie under mask (mask 0: every cookie).
func (c *Conn) DumpFlows(ctx context.Context, table uint8, cookie, mask uint64) ([]FlowStats, error) {
	body, err := c.multipart(ctx, mpFlowDesc, flowDumpRequest(table, cookie, mask))
	if err != nil {
		return nil, fmt.Errorf("dump flows: %w", err)
	}
	var out []FlowStats
	for len(body) > 0 {
		if len(body) < 24 {
			return nil, errShort
		}
		n := int(be16(body))
		if n < 24 || n > len(body) {
			return nil, fmt.Errorf("flow desc length %d", n)
		}
		fs, err := decodeFlowDesc(body[:n])
		if err != nil {
			return nil, fmt.Errorf("dump flows: %w", err)
		}
		out = append(out, fs)
		body = body[n:]
	}
	return out, nil
}

// FlowCounter is a flow's identity and counters as a flow dump reads them,
// without making objects of its match and actions: for collectors that
// read many flows often (EachFlowCounter).
type FlowCounter struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Duration time.Duration
	Packets  uint64
	Bytes    uint64
	// match is the flow's OXM fields, valid during the callback only.
	match []byte
}

// Reg is the value the flow's match requires of register i (ok false
// when it does not match on it exactly), read from the raw match without
// allocating. OpenFlow 1.5 switches report registers as 64-bit packet
// registers: reg2N is the high half of xregN.
func (fc *FlowCounter) Reg(i int) (uint32, bool) {
	for p := fc.match; len(p) >= 4; {
		h := be32(p)
		l := int(h & 0xff)
		if 4+l > len(p) {
			return 0, false
		}
		v := p[4 : 4+l]
		masked := h&0x100 != 0
		switch {
		case h>>16 == of.OXM_CLASS_PACKET_REGS && int(h>>9&0x7f) == i/2 && len(v) >= 8:
			half := 4 * (i % 2)
			switch {
			case !masked:
				return be32(v[half:]), true
			case len(v) < 16:
				return 0, false
			case be32(v[8+half:]) == 0xffffffff:
				return be32(v[half:]), true
			case be32(v[8+half:]) != 0:
				return 0, false
			}
			// The other half of the packet register: this one may
			// come later as regN.

		case h>>16 == of.OXM_CLASS_NXM_1 && int(h>>9&0x7f) == int(of.NXM_NX_REG0)+i && len(v) >= 4:
			if masked && (len(v) < 8 || be32(v[4:]) != 0xffffffff) {
				return 0, false
			}
			return be32(v), true
		}
		p = p[4+l:]
	}
	return 0, false
}

// Label is what the flow's match requires of ct_label: the value and the
// mask (all ones for an exact match); ok false when it does not match on
// it. Read from the raw match without allocating.
func (fc *FlowCounter) Label() (value, mask Label128, ok bool) {
	for p := fc.match; len(p) >= 4; {
		h := be32(p)
		l := int(h & 0xff)
		if 4+l > len(p) {
			return Label128{}, Label128{}, false
		}
		if v := p[4 : 4+l]; h>>16 == of.OXM_CLASS_NXM_1 && int(h>>9&0x7f) == of.NXM_NX_CT_LABEL {
			switch {
			case h&0x100 == 0 && l == 16:
				return LabelOf(v), Label128{Hi: ^uint64(0), Lo: ^uint64(0)}, true
			case h&0x100 != 0 && l == 32:
				return LabelOf(v[:16]), LabelOf(v[16:]), true
			}
			return Label128{}, Label128{}, false
		}
		p = p[4+l:]
	}
	return Label128{}, Label128{}, false
}

// EachFlowCounter dumps the flows of a table (TableAll for every table)
// whose cookie matches cookie under mask, and calls fn with each as the
// reply's parts arrive, on the connection's reader (fn must be quick and
// must not keep its argument). A flow it cannot read ends the dump with
// an error, after the reply.
func (c *Conn) EachFlowCounter(ctx context.Context, table uint8, cookie, mask uint64, fn func(*FlowCounter)) error {
	var bad error
	var fc FlowCounter
	err := c.multipartEach(ctx, mpFlowDesc, flowDumpRequest(table, cookie, mask), func(body []byte) {
		for len(body) > 0 && bad == nil {
			n := 0
			if len(body) >= 24 {
				n = int(be16(body))
			}
			if n < 24 || n > len(body) {
				bad = fmt.Errorf("flow desc length %d of %d bytes", n, len(body))
				return
			}
			if err := readFlowCounter(body[:n], &fc); err != nil {
				bad = err
				return
			}
			fn(&fc)
			body = body[n:]
		}
	})
	if err != nil {
		return fmt.Errorf("dump flow counters: %w", err)
	}
	if bad != nil {
		return fmt.Errorf("dump flow counters: %w", bad)
	}
	return nil
}

// readFlowCounter reads an ofp_flow_desc's header, match and stats into
// fc (its match pointing into b).
func readFlowCounter(b []byte, fc *FlowCounter) error {
	*fc = FlowCounter{Table: b[4], Priority: be16(b[6:]), Cookie: be64(b[16:])}
	return readMatchAndStats(b[24:], fc)
}

// readFlowRemoved reads an OpenFlow 1.5 flow removed message (header,
// table, reason, priority, timeouts, cookie, then the match and the
// stats) into fc.
func readFlowRemoved(msg []byte, fc *FlowCounter) error {
	if len(msg) < 24 {
		return fmt.Errorf("flow removed of %d bytes: %w", len(msg), errShort)
	}
	*fc = FlowCounter{Table: msg[8], Priority: be16(msg[10:]), Cookie: be64(msg[16:])}
	return readMatchAndStats(msg[24:], fc)
}

// readMatchAndStats reads an ofp_match (kept raw in fc) and the ofp_stats
// after it.
func readMatchAndStats(m []byte, fc *FlowCounter) error {
	if len(m) < 4 || be16(m) != 1 {
		return errors.New("not an OXM match")
	}
	n := int(be16(m[2:]))
	if n < 4 || pad8(n) > len(m) {
		return fmt.Errorf("match length %d (padded to 8) past the end of %d bytes", n, len(m))
	}
	fc.match = m[4:n]
	p := m[pad8(n):]
	if len(p) < 4 {
		return fmt.Errorf("flow stats of %d bytes: %w", len(p), errShort)
	}
	slen := int(be16(p[2:]))
	if slen < 4 || slen > len(p) {
		return fmt.Errorf("flow stats length %d past the end of %d bytes", slen, len(p))
	}
	var fs FlowStats
	if err := readStats(p[4:slen], &fs); err != nil {
		return err
	}
	fc.Duration, fc.Packets, fc.Bytes = fs.Duration, fs.Packets, fs.Bytes
	return nil
}

// flowDumpRequest is the body of a flow dump's multipart request: the
// flows of table (TableAll: every table) whose cookie matches cookie under
// mask, any match.
func flowDumpRequest(table uint8, cookie, mask uint64) []byte {
	var req []byte
	req = append(req, table, 0, 0, 0)
	req = put32(req, PortAny)
	req = put32(req, groupAny)
	req = zeros(req, 4)
	req = put64(req, cookie)
	req = put64(req, mask)
	return (&Match{}).appendTo(req)
}

// readStats reads an ofp_stats' OXS fields (after its header) into fs's
// duration, idle age and counters.
func readStats(s []byte, fs *FlowStats) error {
	for len(s) >= 4 {
		h := be32(s)
		l := int(h & 0xff)
		if 4+l > len(s) {
			return fmt.Errorf("flow stat %#x of %d bytes past the end: %w", h, l, errShort)
		}
		v := s[4 : 4+l]
		switch h >> 9 & 0x7f {
		case 0, 1, 4, 5:
			if len(v) < 8 {
				return fmt.Errorf("flow stat %#x of %d bytes, want 8", h, l)
			}
		}
		switch h >> 9 & 0x7f {
		case 0: // duration
			fs.Duration = time.Duration(be32(v))*time.Second + time.Duration(be32(v[4:]))
		case 1: // idle time
			fs.IdleAge = time.Duration(be32(v))*time.Second + time.Duration(be32(v[4:]))
		case 4: // packet count
			fs.Packets = be64(v)
		case 5: // byte count
			fs.Bytes = be64(v)
		}
		s = s[4+l:]
	}
	return nil
}

// decodeFlowDesc reads one ofp_flow_desc: length, pad, table_id, pad,
// priority, idle and hard timeouts, flags, importance, cookie, then the
// match, the ofp_stats and the instructions.
func decodeFlowDesc(b []byte) (FlowStats, error) {
	if len(b) < 24 {
		return FlowStats{}, fmt.Errorf("flow desc of %d bytes: %w", len(b), errShort)
	}
	f := &Flow{Table: b[4], Priority: be16(b[6:]), IdleTimeout: be16(b[8:]), HardTimeout: be16(b[10:]), Flags: be16(b[12:]) & FlagSendFlowRemoved, Cookie: be64(b[16:])}
	m, n, err := decodeMatch(b[24:], true)
	if err != nil {
		return FlowStats{}, err
	}
	f.Match = m
	p := b[24+n:]
	// ofp_stats: reserved, length, then OXS fields.
	if len(p) < 4 {
		return FlowStats{}, fmt.Errorf("%s: flow stats of %d bytes: %w", f.matchString(), len(p), errShort)
	}
	slen := int(be16(p[2:]))
	if slen < 4 || pad8(slen) > len(p) {
		return FlowStats{}, fmt.Errorf("%s: flow stats length %d (padded to 8) past the end of %d bytes", f.matchString(), slen, len(p))
	}
	fs := FlowStats{Flow: f}
	if err := readStats(p[4:slen], &fs); err != nil {
		return FlowStats{}, fmt.Errorf("%s: %w", f.matchString(), err)
	}
	if err := f.decodeInstructions(p[pad8(slen):]); err != nil {
		return FlowStats{}, fmt.Errorf("%s: %w", f.matchString(), err)
	}
	return fs, nil
}

// DumpGroups returns every group with its buckets.
func (c *Conn) DumpGroups(ctx context.Context) ([]*Group, error) {
	req := put32(nil, GroupIDAll)
	req = zeros(req, 4)
	body, err := c.multipart(ctx, mpGroupDesc, req)
	if err != nil {
		return nil, fmt.Errorf("dump groups: %w", err)
	}
	var out []*Group
	for len(body) >= 2 {
		n := int(be16(body))
		if n < 16 || n > len(body) {
			return nil, fmt.Errorf("group desc length %d", n)
		}
		g, err := decodeGroupDesc(body[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, g)
		body = body[n:]
	}
	return out, nil
}

// GroupStats is a group's counters, per bucket too.
type GroupStats struct {
	ID       uint32
	RefCount uint32
	Packets  uint64
	Bytes    uint64
	Duration time.Duration
	Buckets  []BucketStats
}

// BucketStats is one bucket's counters, in bucket order.
type BucketStats struct{ Packets, Bytes uint64 }

// GroupStats returns the counters of a group (GroupIDAll for every group).
func (c *Conn) GroupStats(ctx context.Context, id uint32) ([]GroupStats, error) {
	req := put32(nil, id)
	req = zeros(req, 4)
	body, err := c.multipart(ctx, mpGroupStats, req)
	if err != nil {
		return nil, fmt.Errorf("group stats: %w", err)
	}
	var out []GroupStats
	for len(body) >= 40 {
		n := int(be16(body))
		if n < 40 || n > len(body) {
			return nil, fmt.Errorf("group stats length %d", n)
		}
		e := body[:n]
		gs := GroupStats{ID: be32(e[4:]), RefCount: be32(e[8:]), Packets: be64(e[16:]), Bytes: be64(e[24:]),
			Duration: time.Duration(be32(e[32:]))*time.Second + time.Duration(be32(e[36:]))}
		for bs := e[40:]; len(bs) >= 16; bs = bs[16:] {
			gs.Buckets = append(gs.Buckets, BucketStats{Packets: be64(bs), Bytes: be64(bs[8:])})
		}
		out = append(out, gs)
		body = body[n:]
	}
	return out, nil
}

// Port is one of the switch's ports.
type Port struct {
	Number uint32
	Name   string
	HWAddr net.HardwareAddr
	// Down is set when the port is administratively down or has no link.
	Down bool
}

// Ports returns the switch's ports.
func (c *Conn) Ports(ctx context.Context) ([]Port, error) {
	req := put32(nil, PortAny)
	req = zeros(req, 4)
	body, err := c.multipart(ctx, mpPortDesc, req)
	if err != nil {
		return nil, fmt.Errorf("port desc: %w", err)
	}
	var out []Port
	for len(body) >= 40 {
		n := int(be16(body[4:]))
		if n < 40 || n > len(body) {
			return nil, fmt.Errorf("port desc length %d", n)
		}
		config, state := be32(body[32:]), be32(body[36:])
		out = append(out, Port{
			Number: be32(body), HWAddr: net.HardwareAddr(clone(body[8:14])),
			Name: strings.TrimRight(string(body[16:32]), "\x00"), Down: config&1 != 0 || state&1 != 0,
		})
		body = body[n:]
	}
	return out, nil
}

package ofctrl

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
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
	var req []byte
	req = append(req, table, 0, 0, 0)
	req = put32(req, PortAny)
	req = put32(req, groupAny)
	req = zeros(req, 4)
	req = put64(req, cookie)
	req = put64(req, mask)
	req = (&Match{}).appendTo(req)
	body, err := c.multipart(ctx, mpFlowDesc, req)
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

// decodeFlowDesc reads one ofp_flow_desc: length, pad, table_id, pad,
// priority, idle and hard timeouts, flags, importance, cookie, then the
// match, the ofp_stats and the instructions.
func decodeFlowDesc(b []byte) (FlowStats, error) {
	if len(b) < 24 {
		return FlowStats{}, fmt.Errorf("flow desc of %d bytes: %w", len(b), errShort)
	}
	f := &Flow{Table: b[4], Priority: be16(b[6:]), IdleTimeout: be16(b[8:]), HardTimeout: be16(b[10:]), Cookie: be64(b[16:])}
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
	for s := p[4:slen]; len(s) >= 4; {
		h := be32(s)
		l := int(h & 0xff)
		if 4+l > len(s) {
			return FlowStats{}, fmt.Errorf("%s: flow stat %#x of %d bytes past the end: %w", f.matchString(), h, l, errShort)
		}
		v := s[4 : 4+l]
		switch h >> 9 & 0x7f {
		case 0, 1, 4, 5:
			if len(v) < 8 {
				return FlowStats{}, fmt.Errorf("%s: flow stat %#x of %d bytes, want 8", f.matchString(), h, l)
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

package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

// Active connections are read from the switch's conntrack table: each
// entry of a DLB connection carries, in its label, the VIP port and member
// index its member's commit wrote (pipeline.MemberLabel). OpenFlow cannot
// list conntrack entries; ovs-vswitchd's dpctl/dump-conntrack can (the
// userspace datapath has no per-entry packet counters, which is why bytes
// are counted by flows). The dump goes through ovs-vswitchd's main thread,
// so it is paced like the flow reads, by its own cost.

// conntrackDumper dumps the switch's conntrack table as
// `ovs-appctl dpctl/dump-conntrack` prints it, its lines separated by
// newlines or, as a unixctl reply carries them escaped, by "\\n"; buf is
// the last dump's room, for the next one.
type conntrackDumper interface {
	dumpConntrack(ctx context.Context, buf []byte) (dump, room []byte, err error)
}

// unixctlDumper dumps through ovs-vswitchd's control socket.
type unixctlDumper struct{ ctl func() (string, error) }

func (u unixctlDumper) dumpConntrack(ctx context.Context, buf []byte) ([]byte, []byte, error) {
	path, err := u.ctl()
	if err != nil {
		return nil, buf, err
	}
	reply, err := unixctlRaw(ctx, path, buf, "dpctl/dump-conntrack")
	if err != nil {
		return nil, reply, err
	}
	dump, err := replyResult(reply)
	return dump, reply, err
}

// activeCounts counts, in a conntrack dump, each member's connections
// that are not closed: TCP entries in any state but TIME_WAIT and CLOSED
// (half-closed ones are still open), and every other entry (a UDP flow is
// open until its entry expires, 30 s after its last packet by OVS's
// default). Entries without a member label (another zone's, the hairpin
// zone's, or committed by an agent before labels named members) count for
// none.
func activeCounts(dump []byte, into map[commitKey]uint32) error {
	for len(dump) > 0 {
		line := dump
		if i, n := lineEnd(dump); i >= 0 {
			line, dump = dump[:i], dump[i+n:]
		} else {
			dump = nil
		}
		i := bytes.Index(line, []byte("labels=0x"))
		if i < 0 {
			continue
		}
		hexLabel := line[i+len("labels=0x"):]
		if j := bytes.IndexByte(hexLabel, ','); j >= 0 {
			hexLabel = hexLabel[:j]
		}
		l, err := parseLabel(hexLabel)
		if err != nil {
			return fmt.Errorf("conntrack entry %q: %w", line, err)
		}
		port, index, ok := pipeline.LabelMember(l)
		if !ok {
			continue
		}
		if bytes.Contains(line, []byte("state=TIME_WAIT")) || bytes.Contains(line, []byte("state=CLOSED")) {
			continue
		}
		into[commitKey{pipeline.PortCookie(pipeline.KindMember, port), index}]++
	}
	return nil
}

// lineEnd finds the first line's end: a newline, or an escaped one
// ("\\n", as a unixctl reply carries it); n is its length.
func lineEnd(b []byte) (i, n int) {
	for k, c := range b {
		switch {
		case c == '\n':
			return k, 1
		case c == '\\' && k+1 < len(b) && b[k+1] == 'n':
			return k, 2
		}
	}
	return -1, 0
}

// parseLabel reads a label as dump-conntrack prints it: up to 32 hex
// digits, leading zeros left out.
func parseLabel(h []byte) (ofctrl.Label128, error) {
	if len(h) == 0 || len(h) > 32 {
		return ofctrl.Label128{}, fmt.Errorf("label of %d hex digits", len(h))
	}
	var full [32]byte
	for i := range full {
		full[i] = '0'
	}
	copy(full[32-len(h):], h)
	var b [16]byte
	if _, err := hex.Decode(b[:], full[:]); err != nil {
		return ofctrl.Label128{}, fmt.Errorf("label: %w", err)
	}
	return ofctrl.LabelOf(b[:]), nil
}

// readActive dumps conntrack and sets each member's active connections
// (0 for those with none).
func (s *memberStats) readActive(ctx context.Context, d conntrackDumper) error {
	start := time.Now()
	dump, room, err := d.dumpConntrack(ctx, s.ctRoom)
	s.ctRoom = room[:0]
	if err != nil {
		return fmt.Errorf("dump conntrack: %w", err)
	}
	counts := s.ctCounts
	if counts == nil {
		counts = map[commitKey]uint32{}
		s.ctCounts = counts
	}
	clear(counts)
	if err := activeCounts(dump, counts); err != nil {
		return err
	}
	s.setActive(counts)
	s.ctDumped = time.Since(start)
	return nil
}

// setActive sets each member's active connections.
func (s *memberStats) setActive(counts map[commitKey]uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cookie, p := range s.ports {
		for i := range p.members {
			c := &p.members[i]
			c.active = counts[commitKey{cookie, c.index}]
			c.newAtDump = c.total[pipeline.RoleCommit].packets
		}
	}
}

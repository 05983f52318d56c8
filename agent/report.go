package agent

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ovs-dlb/dlb/controller/client"
	"github.com/ovs-dlb/dlb/controller/wire"
)

// send reports the members' counters that changed since the controller
// last took them (all of them at the start, and after the controller
// asked for everything or refused a report; none, when none changed),
// every is how often it reports. What was not delivered goes with the
// next report.
func (s *memberStats) send(ctx context.Context, every time.Duration) {
	type sentRef struct {
		c      *memberCount
		total  [numRoles]tally
		active uint32
	}
	s.mu.Lock()
	r := wire.StatsReport{Full: s.full, IntervalS: every.Seconds(), Members: []wire.MemberCount{}}
	var refs []sentRef
	for _, p := range s.ports {
		for i := range p.members {
			c := &p.members[i]
			if !s.full && c.total == c.sent && c.active == c.activeSent {
				continue
			}
			n := c.counts()
			r.Members = append(r.Members, wire.MemberCount{Group: p.group, Port: p.port, Member: memberLabel(c.member()), NewConnections: n.New,
				PacketsToMember: n.To.packets, BytesToMember: n.To.bytes, PacketsFromMember: n.From.packets, BytesFromMember: n.From.bytes, ActiveConnections: uint64(c.active)})
			refs = append(refs, sentRef{c, c.total, c.active})
		}
	}
	full := s.full
	s.mu.Unlock()
	taken := func() {}
	if s.bal != nil {
		taken = s.bal.report(&r, full)
	}
	// Sent even when nothing changed: the controller takes a host silent
	// for three intervals for stale.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ans, err := s.report(rctx, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case client.IsStatus(err, http.StatusUnprocessableEntity):
		// Refused whole (a group deleted since the read, say): everything
		// again next time.
		s.sent.WithLabelValues("refused").Inc()
		s.log.Warn("the controller refused the members' counters; sending all of them next time", "err", err)
		s.full = true
		if s.bal != nil {
			s.bal.refused()
		}
		return
	case errors.Is(err, client.ErrNotRegistered):
		s.sent.WithLabelValues("error").Inc()
		s.full = true
		if s.bal != nil {
			s.bal.refused()
		}
		return
	case err != nil:
		s.sent.WithLabelValues("error").Inc()
		s.log.Debug("members' counters not reported", "err", err)
		return
	}
	s.sent.WithLabelValues("ok").Inc()
	s.full = ans.WantFull
	taken()
	if s.bal != nil {
		s.bal.answered(ans, time.Now())
	}
	// No read came in between (reads and reports take turns on one
	// goroutine): refs still point into the counts.
	for _, ref := range refs {
		ref.c.sent, ref.c.activeSent = ref.total, ref.active
	}
}

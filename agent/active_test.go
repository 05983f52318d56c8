package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/pipeline"
)

type fakeDumper struct{ dump string }

func (f *fakeDumper) dumpConntrack(_ context.Context, buf []byte) ([]byte, []byte, error) {
	buf = append(buf[:0], f.dump...)
	return buf, buf, nil
}

// ctEntry is a dump-conntrack line of a connection to member index of
// VIP port (service 7, port index 0).
func ctEntry(proto string, sport, index int, state string) string {
	l := pipeline.MemberLabel(pipeline.PortID(7, 0), uint16(index), []byte{0x02, 0, 0x0a, 0, 0, 0x0b})
	line := fmt.Sprintf("%s,orig=(src=10.0.0.101,dst=10.96.0.10,sport=%d,dport=80),reply=(src=10.0.0.11,dst=10.0.0.101,sport=8080,dport=%d),zone=56064,labels=0x%x%016x", proto, sport, sport, l.Hi, l.Lo)
	if state != "" {
		line += ",protoinfo=(state=" + state + ")"
	}
	return line + "\n"
}

// TestActiveCounts: a member's active connections are its entries in the
// dump that are not closed; entries without a member in their label
// count for none; a label that is no label is an error.
func TestActiveCounts(t *testing.T) {
	dump := ctEntry("tcp", 1000, 1, "ESTABLISHED") + ctEntry("tcp", 1001, 1, "TIME_WAIT") + ctEntry("tcp", 1002, 1, "FIN_WAIT_2") +
		ctEntry("tcp", 1003, 2, "SYN_SENT") + ctEntry("udp", 1004, 2, "") + ctEntry("tcp", 1005, 2, "CLOSED") +
		"tcp,orig=(src=10.0.0.1,dst=10.96.0.10,sport=1,dport=80),reply=(src=10.0.0.11,dst=10.0.0.1,sport=80,dport=1),zone=56064,labels=0x2000a00000b,protoinfo=(state=ESTABLISHED)\n" +
		"tcp,orig=(src=10.0.0.11,dst=10.0.0.11,sport=1,dport=80),reply=(src=10.0.0.11,dst=10.96.0.10,sport=80,dport=1),zone=56065,protoinfo=(state=ESTABLISHED)\n" +
		"icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=1,type=8,code=0),reply=(src=10.0.0.2,dst=10.0.0.1,id=1,type=0,code=0),zone=0"
	got := map[commitKey]uint32{}
	require.NoError(t, activeCounts([]byte(dump), got))
	web := pipeline.Cookie(pipeline.KindMember, 7, 1)
	assert.Equal(t, map[commitKey]uint32{{web, 1}: 2, {web, 2}: 2}, got)
	assert.Error(t, activeCounts([]byte("tcp,labels=0xzz\n"), map[commitKey]uint32{}))
	assert.Error(t, activeCounts([]byte("tcp,labels=0x123456789012345678901234567890123\n"), map[commitKey]uint32{}))
}

// TestActiveReported: active connections are set on the members counted,
// reported when they change (to 0 as well), and exported.
func TestActiveReported(t *testing.T) {
	web := pipeline.Cookie(pipeline.KindMember, 7, 1)
	res := &fakeResolver{refs: map[commitKey]memberRef{
		{web, 1}: {"web", "tcp/80", netip.MustParseAddrPort("10.0.0.11:0")}, {web, 2}: {"web", "tcp/80", netip.MustParseAddrPort("10.0.0.12:0")}}}
	s := newMemberStats(testCfg, 100, res, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	got := captureReports(s)
	s.observe([]flowCount{commitFlow(web, 1, 3, time.Hour), commitFlow(web, 2, 1, time.Hour)}, time.Unix(1000, 0), 0)
	d := &fakeDumper{ctEntry("tcp", 1, 1, "ESTABLISHED") + ctEntry("tcp", 2, 1, "ESTABLISHED") + ctEntry("tcp", 3, 2, "ESTABLISHED")}
	require.NoError(t, s.readActive(context.Background(), d))
	s.send(context.Background(), time.Second)
	active := func(r wire.StatsReport) map[string]uint64 {
		out := map[string]uint64{}
		for _, m := range r.Members {
			out[m.Member] = m.ActiveConnections
		}
		return out
	}
	assert.Equal(t, map[string]uint64{"10.0.0.11": 2, "10.0.0.12": 1}, active((*got)[0]))
	d.dump = ctEntry("tcp", 1, 1, "ESTABLISHED") + ctEntry("tcp", 2, 1, "ESTABLISHED") + ctEntry("tcp", 3, 2, "TIME_WAIT")
	require.NoError(t, s.readActive(context.Background(), d))
	s.send(context.Background(), time.Second)
	assert.Equal(t, map[string]uint64{"10.0.0.12": 0}, active((*got)[1]), "only what changed, to 0 too")
	assert.Equal(t, uint64(2), s.countsOf()[res.refs[commitKey{web, 1}]].Active)
}

// TestRawReply: a unixctl reply read raw, in pieces of any size, ends at
// its object's closing brace (not at one inside its string), and its
// result is counted as it is, escaped; an error reply is an error.
func TestRawReply(t *testing.T) {
	dump := ctEntry("tcp", 1, 1, "ESTABLISHED") + ctEntry("tcp", 2, 1, "TIME_WAIT") + ctEntry("udp", 3, 2, "") + `weird "quoted" {brace}` + "\n"
	reply, err := json.Marshal(map[string]any{"error": nil, "id": 0, "result": dump})
	require.NoError(t, err)
	stream := append(append([]byte{}, reply...), []byte(`{"next":1}`)...)
	for _, piece := range []int{1, 7, 100, len(stream)} {
		var o objectEnd
		end := -1
		for off := 0; off < len(stream) && end < 0; off += piece {
			if e := o.scan(stream[off:min(off+piece, len(stream))]); e >= 0 {
				end = off + e
			}
		}
		assert.Equal(t, len(reply)-1, end, "pieces of %d", piece)
	}
	res, err := replyResult(reply)
	require.NoError(t, err)
	got := map[commitKey]uint32{}
	require.NoError(t, activeCounts(res, got))
	web := pipeline.Cookie(pipeline.KindMember, 7, 1)
	assert.Equal(t, map[commitKey]uint32{{web, 1}: 1, {web, 2}: 1}, got)
	_, err = replyResult([]byte(`{"error":"\"dpctl/dump-conntrack\" is not a valid command","id":0,"result":null}`))
	assert.ErrorContains(t, err, "not a valid command")
}

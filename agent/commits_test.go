package agent

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

func TestDiffCommits(t *testing.T) {
	nat := func(addr string) ofctrl.Action {
		return ofctrl.CTCommitNAT{Zone: 1, Table: 3, Dst: netip.MustParseAddrPort(addr)}
	}
	set := func(cookie uint64, members ...pipeline.Commit) *pipeline.Commits {
		return &pipeline.Commits{Table: 8, Cookie: cookie, Port: 0xd0000100, Proto: ofctrl.ProtoTCP, Members: members}
	}
	a, b, c := pipeline.Commit{Index: 1, Action: nat("10.0.0.1:80")}, pipeline.Commit{Index: 2, Action: nat("10.0.0.2:80")}, pipeline.Commit{Index: 3, Action: nat("10.0.0.3:80")}
	b2 := pipeline.Commit{Index: 2, Action: nat("10.0.0.2:8080")}
	tests := []struct {
		name       string
		have, want *pipeline.Commits
		stats      diffStats
		mods       []string
	}{
		{"new port", nil, set(7, a, b), diffStats{flowAdd: 2}, []string{"ADD", "ADD"}},
		{"same", set(7, a, b), set(7, a, b), diffStats{}, nil},
		{"a member added", set(7, a, b), set(7, a, b, c), diffStats{flowAdd: 1}, []string{"ADD"}},
		{"a member gone", set(7, a, b, c), set(7, a, c), diffStats{flowDel: 1}, []string{"DELETE_STRICT"}},
		{"a member's port changed", set(7, a, b), set(7, a, b2), diffStats{flowMod: 1}, []string{"MODIFY_STRICT"}},
		{"another cookie", set(7, a), set(8, a), diffStats{flowMod: 1}, []string{"ADD"}},
		{"port gone", set(7, a, b), nil, diffStats{flowDel: 2}, []string{"DELETE_STRICT", "DELETE_STRICT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			commits := map[pipeline.SetKey]*installedCommits{}
			if tt.have != nil {
				commits[tt.have.Key()] = &installedCommits{set: tt.have, gen: 1}
			}
			var want []*pipeline.Commits
			if tt.want != nil {
				want = append(want, tt.want)
			}
			var st diffStats
			mods, dels := diffCommits(commits, want, 2, &st)
			assert.Equal(t, tt.stats, st)
			var got []string
			for _, m := range append(mods, dels...) {
				got = append(got, m.(ofctrl.SourcedFlowMod).Command.String())
			}
			assert.Equal(t, tt.mods, got)
			assert.Equal(t, len(want), len(commits), "the installed state is what was wanted")
			again, againDels := diffCommits(commits, want, 3, &st)
			assert.Empty(t, append(again, againDels...), "a second diff finds nothing")
		})
	}
}

func TestReadCommits(t *testing.T) {
	s := &pipeline.Commits{Table: 8, Cookie: pipeline.Cookie(pipeline.KindMember, 5, 1), Port: 0xd0000500, Proto: ofctrl.ProtoUDP,
		Members: []pipeline.Commit{{Index: 1, Action: ofctrl.CTCommitNAT{Dst: netip.MustParseAddrPort("10.0.0.1:53")}}, {Index: 4, Action: ofctrl.CTCommitNAT{Dst: netip.MustParseAddrPort("10.0.0.4:53")}}}}
	other := ofctrl.NewFlow(8, 0).Cookie(pipeline.Cookie(pipeline.KindPipeline, 0, 0)).Done()
	commits, rest := readCommits([]*ofctrl.Flow{s.Flow(0), other, s.Flow(1)}, testCfg)
	assert.Equal(t, []*ofctrl.Flow{other}, rest)
	if assert.Contains(t, commits, s.Key()) {
		got := commits[s.Key()].set
		assert.True(t, got.SameHeader(s))
		assert.Len(t, got.Members, 2)
	}
}

// TestUnflaggedCommitsAddedAgain: commits an agent before the member
// statistics installed (no send_flow_rem) are added again, flag included,
// once; the same set read back with the flag changes nothing.
func TestUnflaggedCommitsAddedAgain(t *testing.T) {
	s := &pipeline.Commits{Table: 8, Cookie: pipeline.Cookie(pipeline.KindMember, 5, 1), Port: 0xd0000500, Proto: ofctrl.ProtoUDP,
		Members: []pipeline.Commit{{Index: 1, Action: ofctrl.CTCommitNAT{Dst: netip.MustParseAddrPort("10.0.0.1:53")}}}}
	flagged := s.Flow(0)
	unflagged := *flagged
	unflagged.Flags = 0
	for _, tc := range []struct {
		name  string
		flow  *ofctrl.Flow
		mods  int
		again int
	}{{"unflagged", &unflagged, 1, 0}, {"flagged", flagged, 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			commits, _ := readCommits([]*ofctrl.Flow{tc.flow}, testCfg)
			var st diffStats
			mods, dels := diffCommits(commits, []*pipeline.Commits{s}, 1, &st)
			assert.Len(t, mods, tc.mods)
			assert.Empty(t, dels)
			for _, m := range mods {
				assert.Contains(t, m.(ofctrl.SourcedFlowMod).String(), "send_flow_rem")
			}
			mods, _ = diffCommits(commits, []*pipeline.Commits{s}, 2, &st)
			assert.Len(t, mods, tc.again, "once")
		})
	}
}

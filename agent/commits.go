package agent

import (
	"github.com/ovs-dlb/dlb/ofctrl"
	"github.com/ovs-dlb/dlb/pipeline"
)

// installedCommits is a VIP port's commit flows (or counting flows of one
// direction) on the switch and the last reconcile that wanted them.
type installedCommits struct {
	set *pipeline.Commits
	gen uint64
	// unflagged: read back without send_flow_rem (an agent before the
	// member statistics installed them): added again, flag included.
	unflagged bool
}

// readCommits sorts flows read from the switch into commit and counting
// sets (by VIP port and role) and the rest.
func readCommits(fs []*ofctrl.Flow, cfg pipeline.Config) (map[pipeline.SetKey]*installedCommits, []*ofctrl.Flow) {
	commits := map[pipeline.SetKey]*installedCommits{}
	var rest []*ofctrl.Flow
	for _, f := range fs {
		head, m, ok := pipeline.CommitsOf(f, cfg)
		if !ok {
			rest = append(rest, f)
			continue
		}
		e := commits[head.Key()]
		if e == nil {
			set := head
			e = &installedCommits{set: &set}
			commits[head.Key()] = e
		} else if !e.set.SameHeader(&head) {
			// Commits of one port with two cookies: keep the first set's,
			// the other flow is replaced or deleted like any stale one.
			rest = append(rest, f)
			continue
		}
		e.set.Members = append(e.set.Members, m)
		e.unflagged = e.unflagged || f.Flags&ofctrl.FlagSendFlowRemoved == 0
	}
	return commits, rest
}

// commitCount is the number of commit and counting flows installed.
func commitCount(commits map[pipeline.SetKey]*installedCommits) int {
	n := 0
	for _, e := range commits {
		n += len(e.set.Members)
	}
	return n
}

// diffCommits compares the wanted commit sets with the installed ones,
// member by member (a set the compiler reused is skipped by pointer), and
// records the wanted ones as installed.
func diffCommits(commits map[pipeline.SetKey]*installedCommits, want []*pipeline.Commits, gen uint64, st *diffStats) (mods, dels []ofctrl.Mod) {
	for _, w := range want {
		have := commits[w.Key()]
		switch {
		case have == nil:
			for i := range w.Members {
				mods = append(mods, ofctrl.SourcedFlowMod{Command: ofctrl.FlowAdd, Src: w, I: i})
				st.flowAdd++
			}
		case have.set == w && !have.unflagged:
		default:
			mods, dels = diffCommitSet(have.set, w, have.unflagged, mods, dels, st)
		}
		if have == nil {
			commits[w.Key()] = &installedCommits{set: w, gen: gen}
		} else {
			have.set, have.gen, have.unflagged = w, gen, false
		}
	}
	if len(commits) != len(want) {
		for port, e := range commits {
			if e.gen == gen {
				continue
			}
			for i := range e.set.Members {
				dels = append(dels, ofctrl.SourcedFlowMod{Command: ofctrl.FlowDeleteStrict, Src: e.set, I: i})
				st.flowDel++
			}
			delete(commits, port)
		}
	}
	return mods, dels
}

// diffCommitSet is the mods from one port's installed commits to the
// wanted ones; with replace, every wanted one is added again.
func diffCommitSet(have, want *pipeline.Commits, replace bool, mods, dels []ofctrl.Mod, st *diffStats) ([]ofctrl.Mod, []ofctrl.Mod) {
	sameMatch := have.Table == want.Table && have.Port == want.Port && have.V6 == want.V6 && have.Proto == want.Proto
	byIndex := make(map[uint16]int, len(have.Members))
	for i, m := range have.Members {
		byIndex[m.Index] = i
	}
	kept := make(map[uint16]bool, len(want.Members))
	for i, m := range want.Members {
		j, ok := byIndex[m.Index]
		switch {
		case !ok || !sameMatch:
			mods = append(mods, ofctrl.SourcedFlowMod{Command: ofctrl.FlowAdd, Src: want, I: i})
			st.flowAdd++
		case have.Cookie != want.Cookie || replace:
			mods = append(mods, ofctrl.SourcedFlowMod{Command: ofctrl.FlowAdd, Src: want, I: i}) // replaces it, cookie and flags included
			st.flowMod++
		case want.Role == pipeline.RoleCommit && have.Members[j].Action.String() != m.Action.String():
			mods = append(mods, ofctrl.SourcedFlowMod{Command: ofctrl.FlowModifyStrict, Src: want, I: i}) // keeps its counters
			st.flowMod++
		}
		if ok && sameMatch {
			kept[m.Index] = true
		}
	}
	for i, m := range have.Members {
		if !kept[m.Index] {
			dels = append(dels, ofctrl.SourcedFlowMod{Command: ofctrl.FlowDeleteStrict, Src: have, I: i})
			st.flowDel++
		}
	}
	return mods, dels
}

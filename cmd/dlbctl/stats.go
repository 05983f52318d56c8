package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovs-dlb/dlb/controller/client"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

func groupStatsCmd(a *app) *cobra.Command {
	var byHost, watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "stats NAME",
		Short: "Show a group's members' statistics over every host",
		Long: `Shows each member of the group on each of its ports: its state and weight,
new connections a second and in all (from every host), and its share of the
port's new connections beside its weight's share of the active weights;
for a health-checked group, its health (up, down, unknown, held), since
when, and why (the last probe, or the reason). --by-host adds a line per
host (with the age of its last report); hosts that stopped reporting are
named, their counts kept in the totals but not in the rates. --watch shows
it again every --every (default 1s) until interrupted.`,
		Example: `  dlbctl group stats web
  dlbctl group stats web --by-host
  dlbctl group stats web -o json
  dlbctl group stats web --watch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, c, err := a.printerAndClient()
			if err != nil {
				return err
			}
			show := func(ctx context.Context) error {
				g, err := c.GetGroup(ctx, args[0], client.Blocking{})
				if err != nil {
					return err
				}
				st, err := c.GroupStats(ctx, args[0])
				if err != nil {
					return err
				}
				return p.print(st.Raw, func(w io.Writer) { writeGroupStats(w, &g.Doc.Group, st.Doc, byHost, time.Now()) })
			}
			if !watch {
				return show(cmd.Context())
			}
			if every < 100*time.Millisecond {
				return fmt.Errorf("--every: %v is below 100ms", every)
			}
			for {
				if p.format == formatTable {
					fmt.Fprintf(a.stdout, "%s\n", time.Now().Format(time.TimeOnly))
				}
				if err := show(cmd.Context()); err != nil {
					return err
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
				fmt.Fprintln(a.stdout)
			}
		},
	}
	cmd.Flags().BoolVar(&byHost, "by-host", false, "a line per host under each member")
	cmd.Flags().BoolVar(&watch, "watch", false, "show it again every --every until interrupted")
	cmd.Flags().DurationVar(&every, "every", time.Second, "with --watch, how often")
	return cmd
}

// writeGroupStats is the stats table: a line per port and member (and
// per host with byHost), with, for a health-checked group, each member's
// health (ages as of now); then the stale hosts.
func writeGroupStats(w io.Writer, g *lb.Group, st wire.GroupStats, byHost bool, now time.Time) {
	type member struct{ state, weight, weightShare string }
	byLabel := map[string]member{}
	weights := lb.ActiveWeights(g)
	sum := 0
	for _, x := range weights {
		sum += x
	}
	for i, label := range g.MemberLabels() {
		m := member{state: string(g.Members[i].StateOf()), weight: strconv.Itoa(g.Members[i].WeightOf()), weightShare: "-"}
		if sum > 0 {
			m.weightShare = fmt.Sprintf("%.1f %%", 100*float64(weights[i])/float64(sum))
		}
		byLabel[label] = m
	}
	portTotal := map[string]uint64{}
	for _, m := range st.Members {
		portTotal[m.Port] += m.NewConnections
	}
	health := healthByMember(g, st.Health)
	// A host's line has cells up to the health's, so that they stay
	// aligned under their heads.
	head, hostEnd := "PORT\tMEMBER\tSTATE\tWEIGHT\tCONN/S\tNEW CONNS\tACTIVE\tB/S IN\tB/S OUT\tSHARE\tWEIGHT SHARE", "\t"
	if health != nil {
		head, hostEnd = head+"\tHEALTH\tSINCE\tDETAIL", "\t\t\t\t"
	}
	fmt.Fprintln(w, head)
	for _, m := range st.Members {
		d := byLabel[m.Member]
		share := "-"
		if portTotal[m.Port] > 0 {
			share = fmt.Sprintf("%.1f %%", 100*float64(m.NewConnections)/float64(portTotal[m.Port]))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1f\t%d\t%d\t%s\t%s\t%s\t%s", m.Port, m.Member, d.state, d.weight, m.NewPerSecond, m.NewConnections,
			m.ActiveConnections, siRate(m.BytesToPerSecond), siRate(m.BytesFromPerSecond), share, d.weightShare)
		if health != nil {
			h, ok := health[m.Member]
			c := healthCellsOf(h, ok, now)
			fmt.Fprintf(w, "\t%s\t%s\t%s", c.state, c.since, c.detail)
		}
		fmt.Fprintln(w)
		if !byHost {
			continue
		}
		for _, h := range m.Hosts {
			stale := ""
			if h.Stale {
				stale = ", stale"
			}
			fmt.Fprintf(w, "\t  on %s\t\t\t\t%d\t%d\t\t\t(report %.1f s old%s)%s\n", h.Host, h.NewConnections, h.ActiveConnections, h.AgeS, stale, hostEnd)
		}
	}
	if len(st.StaleHosts) > 0 {
		fmt.Fprintf(w, "Stale hosts (no report for three of their intervals; counted in the totals, not in the rates): %v\n", st.StaleHosts)
	}
	writeShares(w, g, st.Balancing)
}

// writeShares is a least-connections group's shares on each host: a
// line per host with the figures it follows, its last recomputation and
// each member's share of its new connections.
func writeShares(w io.Writer, g *lb.Group, hosts []wire.HostShares) {
	if !g.LeastConnections() {
		return
	}
	fmt.Fprintf(w, "\nAlgorithm: least-connections, %s load; each host's shares of new connections:\n", g.LoadViewOf())
	if len(hosts) == 0 {
		fmt.Fprintln(w, "  (no host reported shares yet)")
		return
	}
	head := "HOST\tVIEW\tRECOMPUTED"
	for _, m := range hosts[0].Members {
		head += "\t" + m.Member
	}
	fmt.Fprintln(w, head)
	for _, h := range hosts {
		at := "-"
		if h.RecomputedAt != nil {
			at = h.RecomputedAt.Local().Format("15:04:05.000")
		}
		view := h.View
		if h.Stale {
			view += " (stale)"
		}
		line := h.Host + "\t" + view + "\t" + at
		for _, m := range h.Members {
			line += fmt.Sprintf("\t%.1f %%", 100*m.Share)
		}
		fmt.Fprintln(w, line)
	}
}

// siRate writes a rate with an SI prefix: 950, 12.3k, 4.56M.
func siRate(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

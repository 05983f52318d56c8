package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// format is the value of -o.
type format string

const (
	formatTable format = "table"
	formatJSON  format = "json"
	formatYAML  format = "yaml"
)

func parseFormat(s string) (format, error) {
	switch f := format(strings.ToLower(strings.TrimSpace(s))); f {
	case formatTable, formatJSON, formatYAML:
		return f, nil
	default:
		return "", fmt.Errorf("invalid value %q for -o/--output: want table, json or yaml", s)
	}
}

// printer writes the server's answers in the chosen format: json and yaml
// show the answer as the server sent it, table a view for people.
type printer struct {
	out    io.Writer
	format format
}

// print writes raw (one JSON answer) as JSON or YAML, or calls table.
func (p printer) print(raw []byte, table func(w io.Writer)) error {
	switch p.format {
	case formatJSON:
		var buf bytes.Buffer
		if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
			return fmt.Errorf("format the answer as JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := p.out.Write(buf.Bytes())
		return err
	case formatYAML:
		data, err := jsonToYAML(raw)
		if err != nil {
			return err
		}
		_, err = p.out.Write(data)
		return err
	default:
		tw := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
}

// jsonToYAML converts a JSON document to block-style YAML, keeping the
// order of its keys.
func jsonToYAML(raw []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("format the answer as YAML: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("format the answer as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("format the answer as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// blockStyle drops the flow and quoting styles the JSON parse gave the
// nodes; the encoder still quotes strings that would read as another type.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// joinRaw makes {"groups": [raw...]} of several group answers.
func joinRaw(raws [][]byte) ([]byte, error) {
	list := make([]json.RawMessage, len(raws))
	for i, r := range raws {
		list[i] = r
	}
	return json.Marshal(struct {
		Groups []json.RawMessage `json:"groups"`
	}{list})
}

// portsString shows a group's ports as "tcp/80→8080,udp/53".
func portsString(ports []lb.PortSpec) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		s := strings.ToLower(p.Protocol) + "/" + strconv.Itoa(p.Port)
		if p.TargetPort != 0 && p.TargetPort != p.Port {
			s += "→" + strconv.Itoa(p.TargetPort)
		}
		parts[i] = s
	}
	return strings.Join(parts, ",")
}

// membersString shows "active/total".
func membersString(members []lb.Member) string {
	active := 0
	for _, m := range members {
		if m.StateOf() == lb.StateActive {
			active++
		}
	}
	return fmt.Sprintf("%d/%d", active, len(members))
}

func modeOf(g lb.Group) string {
	if g.Mode == "" {
		return lb.ModeDNAT
	}
	return g.Mode
}

// writeGroupsTable writes one line per group. BALANCE comes last, so the
// columns before it keep their places for scripts.
func writeGroupsTable(w io.Writer, groups []Group) {
	fmt.Fprintln(w, "NAME\tVIP\tPORTS\tMEMBERS\tMODE\tINDEX\tBALANCE")
	for _, g := range groups {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", g.Name, g.VIP, portsString(g.Ports), membersString(g.Members), modeOf(g.Group), g.ModifyIndex, balanceShort(g.Balance))
	}
}

// balanceShort is a group's balance in the list: the verdict, with the
// figure that matters for it.
func balanceShort(b *wire.Balance) string {
	switch {
	case b == nil:
		return "-" // a controller older than the field
	case b.ActiveMembers == 0:
		return "no active member"
	case b.WithinBound && b.WorstShareErrorPP == 0:
		return "within, exact"
	case b.WithinBound:
		return fmt.Sprintf("within, %.2f points", b.WorstShareErrorPP)
	}
	share, ratio := missed(b)
	if ratio && !share {
		return fmt.Sprintf("NOT within, max/mean %.3f", b.MaxOverMean)
	}
	return fmt.Sprintf("NOT within, %.2f points", b.WorstShareErrorPP)
}

// balanceLine says how closely a group's slots follow its active members'
// weights and whether that is within the bound lb holds the split to,
// naming the bound it misses, so that a group 256 slots cannot balance is
// seen as such (the controller's figures: docs/api.md, "Balance").
func balanceLine(b *wire.Balance) string {
	if b.ActiveMembers == 0 {
		return "no active member: no slots, new connections are refused"
	}
	line := fmt.Sprintf("%d slots, every share exact", b.Slots)
	if b.WorstShareErrorPP != 0 {
		line = fmt.Sprintf("%d slots, worst share error %.2f points", b.Slots, b.WorstShareErrorPP)
		if b.WorstMember != "" {
			line += " (" + b.WorstMember + ")"
		}
		if b.MaxOverMean != 0 {
			line += fmt.Sprintf(", max/mean %.3f", b.MaxOverMean)
		}
	}
	if b.WithinBound {
		return line + ", within the bound"
	}
	var bounds []string
	share, ratio := missed(b)
	if share {
		bounds = append(bounds, "max(0.5 points, 3 % of share)")
	}
	if ratio {
		bounds = append(bounds, fmt.Sprintf("max/mean %.2f (equal weights)", 1+lb.RelShareError))
	}
	return fmt.Sprintf("%s, NOT within %s: %d active members on %d slots", line, strings.Join(bounds, " nor "), b.ActiveMembers, b.Slots)
}

// missed tells which of the bounds a balance outside them misses: each
// member's share (with unequal weights, the only one), or, with equal
// weights, max/mean. At least one is true.
func missed(b *wire.Balance) (share, ratio bool) {
	if b.MaxOverMean == 0 {
		return true, false
	}
	// Equal weights: every member's share is 1/n, so the worst error says
	// whether the share bound holds. The controller's figures are rounded
	// to 1e-6, hence the slack.
	allowed := 100 * max(lb.AbsShareError, lb.RelShareError/float64(b.ActiveMembers))
	share = b.WorstShareErrorPP > allowed+1e-5
	ratio = b.MaxOverMean > 1+lb.RelShareError-1e-5 || !share
	return share, ratio
}

// writeGroupDetail writes one group: a header block, then its members
// (with their health for a health-checked group, ages as of now).
func writeGroupDetail(w io.Writer, g Group, now time.Time) {
	fmt.Fprintf(w, "Name:\t%s\n", g.Name)
	fmt.Fprintf(w, "VIP:\t%s\n", g.VIP)
	fmt.Fprintf(w, "Ports:\t%s\n", portsString(g.Ports))
	fmt.Fprintf(w, "Mode:\t%s\n", modeOf(g.Group))
	fmt.Fprintf(w, "Algorithm:\t%s\n", algorithmString(g))
	if g.Affinity != nil {
		fmt.Fprintf(w, "Affinity:\tclient IP, %d s\n", g.Affinity.ClientIPTimeoutS)
	} else {
		fmt.Fprintf(w, "Affinity:\tnone\n")
	}
	fmt.Fprintf(w, "Scope:\t%s\n", scopeString(g.Scope))
	if g.HealthCheck != nil {
		for i, line := range healthCheckLines(g.HealthCheck) {
			key := "Health check:"
			if i > 0 {
				key = ""
			}
			fmt.Fprintf(w, "%s\t%s\n", key, line)
		}
	}
	fmt.Fprintf(w, "Members:\t%s active\n", membersString(g.Members))
	health := healthByMember(&g.Group, g.Health)
	if health != nil {
		fmt.Fprintf(w, "Health:\t%s\n", healthSummary(g.Health))
	}
	fmt.Fprintf(w, "Index:\tcreated %d, modified %d\n", g.CreateIndex, g.ModifyIndex)
	if g.Applied != nil {
		fmt.Fprintf(w, "Applied:\t%d/%d hosts have the latest version installed\n", g.Applied.Applied, g.Applied.Hosts)
	}
	if g.Balance != nil {
		fmt.Fprintf(w, "Balance:\t%s\n", balanceLine(g.Balance))
	}
	if len(g.Members) == 0 {
		return
	}
	withMAC := false
	for _, m := range g.Members {
		withMAC = withMAC || m.MAC != ""
	}
	fmt.Fprintln(w)
	head := "IP\tPORT\tWEIGHT\tSTATE"
	if withMAC {
		head += "\tMAC"
	}
	if health != nil {
		head += "\tHEALTH\tSINCE\tPROBER\tDETAIL"
	}
	fmt.Fprintln(w, head)
	labels := g.MemberLabels()
	for i, m := range g.Members {
		port := "-"
		if m.Port != 0 {
			port = strconv.Itoa(m.Port)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s", m.IP, port, m.WeightOf(), m.StateOf())
		if withMAC {
			fmt.Fprintf(w, "\t%s", m.MAC)
		}
		if health != nil {
			h, ok := health[labels[i]]
			c := healthCellsOf(h, ok, now)
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", c.state, c.since, c.prober, c.detail)
		}
		fmt.Fprintln(w)
	}
}

// healthCheckLines show a health check with its defaults: what is probed
// and how often, then how flapping is damped.
func healthCheckLines(hc *lb.HealthCheck) []string {
	p, err := hc.Probe()
	if err != nil {
		return []string{fmt.Sprintf("%s (%v)", hc.Type, err)}
	}
	port := "each member's target port"
	if p.Port != 0 {
		port = "port " + strconv.Itoa(p.Port)
	}
	var extras []string
	switch p.Type {
	case lb.CheckHTTP:
		extras = append(extras, "GET "+p.Path)
		if p.Host != "" {
			extras = append(extras, "Host "+p.Host)
		}
		extras = append(extras, "expect "+expectString(p.Expect))
	case lb.CheckUDP:
		extras = append(extras, fmt.Sprintf("payload %q", p.Payload))
		if p.UDPSilenceOK {
			extras = append(extras, "silence is up")
		}
	}
	what := p.Type + " to " + port
	if len(extras) > 0 {
		what += " (" + strings.Join(extras, ", ") + ")"
	}
	return []string{
		fmt.Sprintf("%s, every %s (%s while in question), timeout %s, rise %d, fall %d", what, p.Interval, p.FastInterval, p.Timeout, p.Rise, p.Fall),
		fmt.Sprintf("flapping (%d changes in %s) holds a member down %s, doubling up to %s", p.FlapChanges, p.FlapWindow, p.Hold, p.MaxHold),
	}
}

// expectString shows HTTP status ranges as "200-399,404".
func expectString(rs []lb.StatusRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.Itoa(r.Lo)
		if r.Hi != r.Lo {
			parts[i] += "-" + strconv.Itoa(r.Hi)
		}
	}
	return strings.Join(parts, ",")
}

// healthByMember is a health-checked group's members' health by member
// label (IP, or IP:PORT); nil for a group without health check, or when
// the answer carries no health (the answers of writes).
func healthByMember(g *lb.Group, hs []wire.MemberHealth) map[string]wire.MemberHealth {
	if g.HealthCheck == nil || len(hs) == 0 {
		return nil
	}
	out := make(map[string]wire.MemberHealth, len(hs))
	for _, h := range hs {
		out[h.Member] = h
	}
	return out
}

// healthSummary counts the members by health: "2 up, 1 down".
func healthSummary(hs []wire.MemberHealth) string {
	n := map[string]int{}
	for _, h := range hs {
		n[h.State]++
	}
	var parts []string
	for _, s := range []string{lb.HealthUp, lb.HealthDown, lb.HealthHeld, lb.HealthUnknown} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// healthCells are a member's health as the tables show it.
type healthCells struct{ state, since, prober, detail string }

// healthCellsOf is h's cells ("-" where unknown; all of them when !ok:
// the controller sent no health for the member, just added).
func healthCellsOf(h wire.MemberHealth, ok bool, now time.Time) healthCells {
	c := healthCells{state: "-", since: "-", prober: "-", detail: "-"}
	if !ok {
		return c
	}
	c.state = h.State
	if h.Since != nil {
		c.since = age(*h.Since, now)
	}
	if h.Prober != "" {
		c.prober = h.Prober
	}
	if d := healthDetail(h, now); d != "" {
		c.detail = d
	}
	return c
}

// healthDetail says why a member is in its state: for an up member its
// last probe's detail, else the reason; and the last probe when it
// disagrees with an up or down state (an up member's failed probe, a
// down one's passed one), or when a held member's hold ends.
func healthDetail(h wire.MemberHealth, now time.Time) string {
	d := h.Reason
	switch l := h.Last; {
	case h.State == lb.HealthHeld && h.HeldUntil != nil:
		d = joinDetail(d, "hold ends in "+max(h.HeldUntil.Sub(now), 0).Round(time.Second).String())
	case l == nil || l.Detail == "":
	case h.State == lb.HealthUp && l.OK:
		d = l.Detail
	case h.State == lb.HealthUp:
		d = joinDetail(d, "last probe failed: "+l.Detail)
	case h.State == lb.HealthDown && l.OK:
		d = joinDetail(d, "last probe passed: "+l.Detail)
	}
	return d
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// age is how long before now t was, to the second: "12s ago".
func age(t, now time.Time) string {
	return max(now.Sub(t), 0).Round(time.Second).String() + " ago"
}

// algorithmString is a group's algorithm, with, for least connections,
// its load view and how its hosts balance it.
func algorithmString(g Group) string {
	if !g.LeastConnections() {
		return lb.AlgorithmWeighted
	}
	s := fmt.Sprintf("%s (%s load)", lb.AlgorithmLeastConnections, g.LoadViewOf())
	if b := g.Balancing; b != nil {
		s += fmt.Sprintf("; %d hosts: %d on global figures, %d on local ones, %d fell back to the weights, %d stale", b.Hosts, b.Global, b.Local, b.Weights, b.Stale)
		if b.LastRecomputed != nil {
			s += "; last recomputed " + b.LastRecomputed.Local().Format("15:04:05.000")
		}
	}
	return s
}

// scopeString shows a scope on one line.
func scopeString(s *lb.Scope) string {
	if s == nil || len(s.IfaceIDs) == 0 && len(s.Labels) == 0 && len(s.Hosts) == 0 {
		return "every VM port"
	}
	var parts []string
	if len(s.IfaceIDs) > 0 {
		parts = append(parts, "iface_ids="+strings.Join(s.IfaceIDs, ","))
	}
	if len(s.Labels) > 0 {
		parts = append(parts, "labels="+pairs(s.Labels))
	}
	if len(s.Hosts) > 0 {
		parts = append(parts, "hosts="+strings.Join(s.Hosts, ","))
	}
	return strings.Join(parts, " ")
}

// pairs shows a map as "k1=v1,k2=v2", sorted by key.
func pairs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

// writeHostsTable writes one line per host.
func writeHostsTable(w io.Writer, hosts []Host) {
	fmt.Fprintln(w, "NAME\tCONNECTED\tAPPLIED\tVM PORTS\tVERSION\tLAST HEARTBEAT")
	for _, h := range hosts {
		connected := "no"
		if h.Connected {
			connected = "yes"
		}
		seen := "never"
		if h.LastHeartbeat != nil {
			seen = age(*h.LastHeartbeat, time.Now())
		}
		var ports []string
		for _, p := range h.Ports {
			ports = append(ports, p.Name)
		}
		portList := strings.Join(ports, ",")
		if portList == "" {
			portList = "-"
		}
		version := h.Version
		if version == "" {
			version = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", h.Name, connected, h.AppliedIndex, portList, version, seen)
	}
}

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

// writeGroupsTable writes one line per group.
func writeGroupsTable(w io.Writer, groups []Group) {
	fmt.Fprintln(w, "NAME\tVIP\tPORTS\tMEMBERS\tMODE\tINDEX")
	for _, g := range groups {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", g.Name, g.VIP, portsString(g.Ports), membersString(g.Members), modeOf(g.Group), g.ModifyIndex)
	}
}

// writeGroupDetail writes one group: a header block, then its members.
func writeGroupDetail(w io.Writer, g Group) {
	fmt.Fprintf(w, "Name:\t%s\n", g.Name)
	fmt.Fprintf(w, "VIP:\t%s\n", g.VIP)
	fmt.Fprintf(w, "Ports:\t%s\n", portsString(g.Ports))
	fmt.Fprintf(w, "Mode:\t%s\n", modeOf(g.Group))
	if g.Affinity != nil {
		fmt.Fprintf(w, "Affinity:\tclient IP, %d s\n", g.Affinity.ClientIPTimeoutS)
	} else {
		fmt.Fprintf(w, "Affinity:\tnone\n")
	}
	fmt.Fprintf(w, "Scope:\t%s\n", scopeString(g.Scope))
	fmt.Fprintf(w, "Members:\t%s active\n", membersString(g.Members))
	fmt.Fprintf(w, "Index:\tcreated %d, modified %d\n", g.CreateIndex, g.ModifyIndex)
	if g.Applied != nil {
		fmt.Fprintf(w, "Applied:\t%d/%d hosts have the latest version installed\n", g.Applied.Applied, g.Applied.Hosts)
	}
	if len(g.Members) == 0 {
		return
	}
	withMAC := false
	for _, m := range g.Members {
		withMAC = withMAC || m.MAC != ""
	}
	fmt.Fprintln(w)
	if withMAC {
		fmt.Fprintln(w, "IP\tPORT\tWEIGHT\tSTATE\tMAC")
	} else {
		fmt.Fprintln(w, "IP\tPORT\tWEIGHT\tSTATE")
	}
	for _, m := range g.Members {
		port := "-"
		if m.Port != 0 {
			port = strconv.Itoa(m.Port)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s", m.IP, port, m.WeightOf(), m.StateOf())
		if withMAC {
			fmt.Fprintf(w, "\t%s", m.MAC)
		}
		fmt.Fprintln(w)
	}
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
			seen = time.Since(*h.LastHeartbeat).Round(time.Second).String() + " ago"
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

package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovs-dlb/dlb/controller/client"
	"github.com/ovs-dlb/dlb/lb"
)

// memberSpec names a member on the command line: IP, IP:PORT, or
// [IPv6]:PORT. Port 0 means none (the member uses the group's ports).
type memberSpec struct {
	IP   netip.Addr
	Port int
}

// String is the member's name in the API's paths.
func (m memberSpec) String() string {
	if m.Port == 0 {
		return m.IP.String()
	}
	return netip.AddrPortFrom(m.IP, uint16(m.Port)).String()
}

// parseMemberSpec reads IP, IP:PORT, [IPv6] or [IPv6]:PORT.
func parseMemberSpec(s string) (memberSpec, error) {
	bad := func(why string) (memberSpec, error) {
		return memberSpec{}, fmt.Errorf("member %q: %s (want IP, IPv4:PORT or [IPv6]:PORT)", s, why)
	}
	var host, port string
	switch {
	case s == "":
		return bad("empty")
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad("no closing ]")
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return bad("unexpected text after ]")
			}
			port = port[1:]
			if port == "" {
				return bad("no port after the colon")
			}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return bad("brackets hold an IPv6 address")
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return bad("no port after the colon")
		}
	default:
		host = s
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return bad("not an IP address")
	}
	if ip.Zone() != "" {
		return bad("an IPv6 zone is not allowed")
	}
	m := memberSpec{IP: ip}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return bad(fmt.Sprintf("%q is not a port (1..65535)", port))
		}
		m.Port = p
	}
	return m, nil
}

func memberCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "member",
		Aliases: []string{"members", "m"},
		Short:   "Add, drain, enable, disable, reweigh and remove the members of a group",
		Long: `Changes one member of a group. A member is named by its IP, or IP:PORT when
it has a port of its own ([IPv6]:PORT for IPv6). States: active (takes new
connections), draining (keeps its connections, takes no new one), disabled
(takes nothing).`,
	}
	cmd.AddCommand(
		memberAddCmd(a),
		memberSetCmd(a),
		memberStateCmd(a, "drain", lb.StateDraining, "Drain a member: it keeps its connections and takes no new one"),
		memberStateCmd(a, "enable", lb.StateActive, "Make a member active: it takes new connections"),
		memberStateCmd(a, "disable", lb.StateDisabled, "Disable a member: it takes no traffic at all"),
		memberRemoveCmd(a),
	)
	return cmd
}

// memberRun runs a member command: it parses GROUP and MEMBER, calls the
// API and prints the group after the change.
func memberRun(a *app, cmd *cobra.Command, args []string, verb string,
	call func(c *Client, group string, m memberSpec) (*client.Answer[Group], error)) error {
	p, err := a.printer()
	if err != nil {
		return err
	}
	m, err := parseMemberSpec(args[1])
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	g, err := call(c, args[0], m)
	if err != nil {
		return err
	}
	if p.format == formatTable {
		fmt.Fprintf(a.stdout, "member %s %s group %q\n\n", m, verb, g.Doc.Name)
	}
	return p.print(g.Raw, func(w io.Writer) { writeGroupDetail(w, g.Doc, time.Now()) })
}

func memberAddCmd(a *app) *cobra.Command {
	var weight int
	var state, mac string
	cmd := &cobra.Command{
		Use:     "add GROUP IP[:PORT]",
		Short:   "Add a member to a group",
		Example: "  dlbctl member add web 10.0.0.13 --weight 50\n  dlbctl member add web6 [fd00::13]:8080",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return memberRun(a, cmd, args, "added to", func(c *Client, group string, m memberSpec) (*client.Answer[Group], error) {
				doc := lb.Member{IP: m.IP.String(), Port: m.Port, State: state, MAC: mac}
				if cmd.Flags().Changed("weight") {
					doc.Weight = &weight
				}
				return c.AddMember(cmd.Context(), group, doc)
			})
		},
	}
	cmd.Flags().IntVar(&weight, "weight", lb.DefaultWeight, "weight, 1..65535")
	cmd.Flags().StringVar(&state, "state", "", "state: active (the default), draining or disabled")
	cmd.Flags().StringVar(&mac, "mac", "", "the member's MAC address, when agents should not look it up")
	return cmd
}

func memberSetCmd(a *app) *cobra.Command {
	var weight int
	var state string
	cmd := &cobra.Command{
		Use:     "set GROUP IP[:PORT] [--weight N] [--state STATE]",
		Short:   "Change a member's weight or state",
		Example: "  dlbctl member set web 10.0.0.13 --weight 200",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var patch MemberPatch
			if cmd.Flags().Changed("weight") {
				patch.Weight = &weight
			}
			if state != "" {
				patch.State = &state
			}
			if patch.Weight == nil && patch.State == nil {
				return errors.New("member set: give --weight, --state or both")
			}
			return memberRun(a, cmd, args, "changed in", func(c *Client, group string, m memberSpec) (*client.Answer[Group], error) {
				return c.PatchMember(cmd.Context(), group, m.String(), patch)
			})
		},
	}
	cmd.Flags().IntVar(&weight, "weight", 0, "new weight, 1..65535")
	cmd.Flags().StringVar(&state, "state", "", "new state: active, draining or disabled")
	return cmd
}

func memberStateCmd(a *app, verb, state, short string) *cobra.Command {
	done := map[string]string{lb.StateDraining: "draining in", lb.StateActive: "enabled in", lb.StateDisabled: "disabled in"}[state]
	return &cobra.Command{
		Use:   verb + " GROUP IP[:PORT]",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return memberRun(a, cmd, args, done, func(c *Client, group string, m memberSpec) (*client.Answer[Group], error) {
				return c.PatchMember(cmd.Context(), group, m.String(), MemberPatch{State: &state})
			})
		},
	}
}

func memberRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "remove GROUP IP[:PORT]",
		Aliases: []string{"rm", "delete"},
		Short:   "Take a member out of a group",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return memberRun(a, cmd, args, "removed from", func(c *Client, group string, m memberSpec) (*client.Answer[Group], error) {
				return c.RemoveMember(cmd.Context(), group, m.String())
			})
		},
	}
}

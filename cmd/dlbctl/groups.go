package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/ovs-dlb/dlb/controller/client"
	"github.com/ovs-dlb/dlb/lb"
)

func groupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups", "g"},
		Short:   "Create, show, edit and delete DCN groups",
	}
	cmd.AddCommand(groupCreateCmd(a), groupGetCmd(a), groupEditCmd(a), groupDeleteCmd(a), groupStatsCmd(a))
	return cmd
}

func groupCreateCmd(a *app) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create the groups of a YAML or JSON file",
		Long: `Creates the group a file describes, or each group of its "groups:" list
(several YAML documents may follow one another). FILE "-" is stdin. The whole
file is checked before any group is created; a name already in use is refused.`,
		Example: `  dlbctl group create -f web.yaml
  dlbctl group get web -o yaml | sed 's/web/web2/' | dlbctl group create -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.printer()
			if err != nil {
				return err
			}
			docs, err := readGroupFile(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var created []Group
			var raws [][]byte
			var errs []error
			for _, d := range docs.groups {
				ans, err := c.CreateGroup(cmd.Context(), d.Group)
				if err != nil {
					errs = append(errs, fmt.Errorf("create group %q: %w", d.Name, err))
					continue
				}
				created = append(created, ans.Doc)
				raws = append(raws, ans.Raw)
			}
			if len(created) > 0 {
				raw := raws[0]
				if docs.list {
					if raw, err = joinRaw(raws); err != nil {
						return err
					}
				}
				if err := p.print(raw, func(w io.Writer) { writeGroupsTable(w, created) }); err != nil {
					return err
				}
			}
			if len(errs) > 0 && len(docs.groups) > 1 {
				errs = append(errs, fmt.Errorf("%d of %d groups created", len(created), len(docs.groups)))
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML or JSON file with a group or a groups: list (- for stdin)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func groupGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "get [NAME]",
		Aliases: []string{"list", "ls", "show"},
		Short:   "Show one group, or list them all",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, c, err := a.printerAndClient()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				g, err := c.GetGroup(cmd.Context(), args[0], client.Blocking{})
				if err != nil {
					return err
				}
				return p.print(g.Raw, func(w io.Writer) { writeGroupDetail(w, g.Doc, time.Now()) })
			}
			list, err := c.ListGroups(cmd.Context(), client.Blocking{})
			if err != nil {
				return err
			}
			if p.format == formatTable && len(list.Doc.Groups) == 0 {
				fmt.Fprintln(a.stderr, "No groups.")
				return nil
			}
			return p.print(list.Raw, func(w io.Writer) { writeGroupsTable(w, list.Doc.Groups) })
		},
	}
}

func groupEditCmd(a *app) *cobra.Command {
	var file string
	var ifMatch uint64
	cmd := &cobra.Command{
		Use:   "edit NAME [-f FILE]",
		Short: "Edit a group in $EDITOR, or replace it with a file",
		Long: `Opens the group in $EDITOR (default vi) as YAML and replaces it with what you
save, unless someone changed it in the meantime: then nothing is changed and
you are told to run edit again. Saving it unchanged changes nothing; an empty
file cancels.

With -f FILE the group is replaced by the file's group, without an editor. The
replacement is refused if the group changed since --if-match INDEX, else since
the file's modify_index (as 'dlbctl group get NAME -o yaml' writes it), else
since it was fetched just before.`,
		Example: `  dlbctl group edit web
  dlbctl group get web -o yaml > web.yaml && vi web.yaml && dlbctl group edit web -f web.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, c, err := a.printerAndClient()
			if err != nil {
				return err
			}
			var match *uint64
			if cmd.Flags().Changed("if-match") {
				match = &ifMatch
			}
			e := &editor{a: a, c: c, p: p, cmd: cmd, name: args[0], ifMatch: match}
			if file != "" {
				return e.fromFile(file)
			}
			return e.interactive()
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "replace the group with this file's group (- for stdin) instead of opening an editor")
	cmd.Flags().Uint64Var(&ifMatch, "if-match", 0, "replace only if the group's modify index is still INDEX")
	return cmd
}

// editor carries out one group edit.
type editor struct {
	a       *app
	c       *Client
	p       printer
	cmd     *cobra.Command
	name    string
	ifMatch *uint64
}

func (e *editor) ctx() context.Context { return e.cmd.Context() }

// fromFile replaces the group with a file's.
func (e *editor) fromFile(file string) error {
	docs, err := readGroupFile(e.cmd.InOrStdin(), file)
	if err != nil {
		return err
	}
	if len(docs.groups) != 1 {
		return fmt.Errorf("%s holds %d groups: edit takes one", displayName(file), len(docs.groups))
	}
	cur, err := e.c.GetGroup(e.ctx(), e.name, client.Blocking{})
	if err != nil {
		return err
	}
	index := cur.Doc.ModifyIndex
	if docs.groups[0].ModifyIndex != 0 {
		index = docs.groups[0].ModifyIndex
	}
	return e.replace(&cur.Doc, docs.groups[0].Group, index)
}

// interactive edits the group in $EDITOR.
func (e *editor) interactive() error {
	got, err := e.c.GetGroup(e.ctx(), e.name, client.Blocking{})
	if err != nil {
		return err
	}
	cur := &got.Doc
	text, err := editText(cur)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "dlbctl-edit-"+safeFileName(e.name)+"-*.yaml")
	if err != nil {
		return fmt.Errorf("edit group %q: %w", e.name, err)
	}
	path := f.Name()
	_, err = f.Write(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("edit group %q: write %s: %w", e.name, path, err)
	}
	if err := e.runEditor(path); err != nil {
		os.Remove(path)
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("edit group %q: %w", e.name, err)
	}
	if len(bytes.TrimSpace(stripComments(data))) == 0 {
		os.Remove(path)
		fmt.Fprintf(e.a.stderr, "edit of group %q cancelled: the file was emptied\n", e.name)
		return nil
	}
	keep := func(err error) error {
		return fmt.Errorf("%w\nyour edit is kept in %s: fix it and apply it with 'dlbctl group edit %s -f %s'", err, path, e.name, path)
	}
	docs, err := parseGroupFile(data, path)
	if err != nil {
		return keep(err)
	}
	if len(docs.groups) != 1 {
		return keep(fmt.Errorf("the edited file holds %d groups: want one", len(docs.groups)))
	}
	if err := e.replace(cur, docs.groups[0].Group, cur.ModifyIndex); err != nil {
		if client.IsStatus(err, http.StatusConflict) {
			// The edit is of an old version: a retry must start from the new one.
			os.Remove(path)
			return err
		}
		return keep(err)
	}
	os.Remove(path)
	return nil
}

// replace PUTs g in place of cur if the group is still at index (or at
// --if-match), or says "no change" when g is cur.
func (e *editor) replace(cur *Group, g lb.Group, index uint64) error {
	if e.ifMatch != nil {
		index = *e.ifMatch
	}
	if g.Name == "" {
		g.Name = e.name
	}
	if g.Name != e.name {
		return fmt.Errorf("the edited group is named %q: a group cannot be renamed (create %q and delete %q instead)", g.Name, g.Name, e.name)
	}
	// Nothing to write, so nothing to overwrite either: the index does not
	// matter then.
	if sameGroup(cur.Group, g) {
		fmt.Fprintf(e.a.stderr, "group %q: no change\n", e.name)
		return nil
	}
	updated, err := e.c.PutGroup(e.ctx(), g, &index)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict {
			return &APIError{
				Status: ae.Status,
				Message: fmt.Sprintf("group %q changed meanwhile (it is no longer at modify index %d), so your edit was not applied: run 'dlbctl group edit %s' again (the controller said: %s)",
					e.name, index, e.name, ae.Message),
				Fields: ae.Fields,
			}
		}
		return err
	}
	return e.p.print(updated.Raw, func(w io.Writer) { writeGroupDetail(w, updated.Doc, time.Now()) })
}

// runEditor opens path in $EDITOR (which may carry arguments).
func (e *editor) runEditor(path string) error {
	ed := strings.TrimSpace(os.Getenv("EDITOR"))
	if ed == "" {
		ed = "vi"
	}
	c := exec.CommandContext(e.ctx(), "sh", "-c", ed+` "$1"`, "sh", path)
	c.Stdin, c.Stdout, c.Stderr = e.cmd.InOrStdin(), e.a.stdout, e.a.stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("edit group %q: editor %q: %w (set $EDITOR)", e.name, ed, err)
	}
	return nil
}

// editText is the group as the editor shows it: YAML without the indexes.
func editText(g *Group) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Group %q at modify index %d. Save to apply your changes; they are\n", g.Name, g.ModifyIndex)
	fmt.Fprintf(&buf, "# refused if someone changed the group meanwhile. An empty file cancels.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(g.Group); err != nil {
		return nil, fmt.Errorf("edit group %q: %w", g.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("edit group %q: %w", g.Name, err)
	}
	return buf.Bytes(), nil
}

// stripComments drops the lines that are only a YAML comment.
func stripComments(data []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// safeFileName keeps a group name usable in a temporary file's name.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// sameGroup tells whether two documents mean the same group, defaults
// filled in.
func sameGroup(a, b lb.Group) bool {
	return reflect.DeepEqual(normalized(a), normalized(b))
}

func normalized(g lb.Group) lb.Group {
	g = g.Clone()
	if g.Mode == "" {
		g.Mode = lb.ModeDNAT
	}
	g.Algorithm, g.LoadView = g.AlgorithmOf(), g.LoadViewOf()
	for i := range g.Ports {
		g.Ports[i].Protocol = strings.ToLower(g.Ports[i].Protocol)
		if g.Ports[i].TargetPort == 0 {
			g.Ports[i].TargetPort = g.Ports[i].Port
		}
	}
	for i, m := range g.Members {
		w := m.WeightOf()
		g.Members[i].Weight = &w
		g.Members[i].State = m.StateOf()
	}
	if len(g.Ports) == 0 {
		g.Ports = nil
	}
	if len(g.Members) == 0 {
		g.Members = nil
	}
	if s := g.Scope; s != nil {
		if len(s.IfaceIDs) == 0 {
			s.IfaceIDs = nil
		}
		if len(s.Labels) == 0 {
			s.Labels = nil
		}
		if len(s.Hosts) == 0 {
			s.Hosts = nil
		}
		if s.IfaceIDs == nil && s.Labels == nil && s.Hosts == nil {
			g.Scope = nil
		}
	}
	return g
}

func groupDeleteCmd(a *app) *cobra.Command {
	var ifMatch uint64
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a group",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var match *uint64
			if cmd.Flags().Changed("if-match") {
				match = &ifMatch
			}
			name := args[0]
			if err := c.DeleteGroup(cmd.Context(), name, match); err != nil {
				var ae *APIError
				if match != nil && errors.As(err, &ae) && ae.Status == http.StatusConflict {
					return &APIError{Status: ae.Status, Fields: ae.Fields, Message: fmt.Sprintf(
						"group %q changed meanwhile (it is no longer at modify index %d), so it was not deleted (the controller said: %s)", name, *match, ae.Message)}
				}
				return err
			}
			fmt.Fprintf(a.stdout, "group %q deleted\n", name)
			return nil
		},
	}
	cmd.Flags().Uint64Var(&ifMatch, "if-match", 0, "delete only if the group's modify index is still INDEX")
	return cmd
}

// groupFile is what a group file holds (lb.ParseFileOf reads the format,
// with the API's group documents: a file may carry their indexes).
type groupFile struct {
	groups []Group
	// list is true when the file had a list (a groups: list, a JSON list
	// or several documents) rather than one group.
	list bool
}

// readGroupFile reads and checks a group file; "-" is in.
func readGroupFile(in io.Reader, file string) (*groupFile, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(in)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", displayName(file), err)
	}
	return parseGroupFile(data, file)
}

func displayName(file string) string {
	if file == "-" {
		return "stdin"
	}
	return file
}

// parseGroupFile decodes a group file and checks its groups with the
// rules the controller applies, so that a mistake in the third group does
// not leave the first two created.
func parseGroupFile(data []byte, file string) (*groupFile, error) {
	name := displayName(file)
	groups, list, err := lb.ParseFileOf(data, func(g *Group) *lb.Group { return &g.Group })
	var ve *lb.ValidationError
	switch {
	case errors.As(err, &ve):
		e := &APIError{Message: "invalid"}
		for _, p := range ve.Problems {
			e.Fields = append(e.Fields, FieldError{Path: p.Path, Message: p.Msg})
		}
		return nil, fmt.Errorf("%s: %w", name, e)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	case len(groups) == 0:
		return nil, fmt.Errorf("%s holds no group", name)
	}
	return &groupFile{groups: groups, list: list}, nil
}

package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func hostCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "host",
		Aliases: []string{"hosts"},
		Short:   "Show the hosts whose agents the controller knows",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Aliases: []string{"ls", "get"},
		Short:   "List the hosts",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.printer()
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, raw, err := c.ListHosts(cmd.Context())
			if err != nil {
				return err
			}
			if p.format == formatTable && len(list.Hosts) == 0 {
				fmt.Fprintln(a.stderr, "No hosts.")
				return nil
			}
			return p.print(raw, func(w io.Writer) { writeHostsTable(w, list.Hosts) })
		},
	})
	return cmd
}

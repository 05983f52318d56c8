package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ovs-dlb/dlb/controller/client"
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
			p, c, err := a.printerAndClient()
			if err != nil {
				return err
			}
			list, err := c.ListHosts(cmd.Context(), client.Blocking{})
			if err != nil {
				return err
			}
			if p.format == formatTable && len(list.Doc.Hosts) == 0 {
				fmt.Fprintln(a.stderr, "No hosts.")
				return nil
			}
			return p.print(list.Raw, func(w io.Writer) { writeHostsTable(w, list.Doc.Hosts) })
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "delete NAME",
		Short: "Forget a host (a host whose agent still runs registers again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteHost(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "host %q deleted\n", args[0])
			return nil
		},
	})
	return cmd
}

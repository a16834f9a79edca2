package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newConnectionsCmd) }

func newConnectionsCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "connections [-o json]",
		Aliases: []string{"conns"},
		Short:   "List the configured connections and how many IKE SAs each has",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			conns, err := f.client().Connections(ctx)
			if err != nil {
				return fmt.Errorf("connections: %w", err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), conns)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tLOCAL\tREMOTE\tLOCAL ID\tREMOTE ID\tCHILDREN\tIKE SAS")
			for _, c := range conns {
				var children []string
				for _, ch := range c.Children {
					children = append(children, fmt.Sprintf("%s(%s === %s, %s)", ch.Name, strings.Join(ch.LocalTS, ","),
						strings.Join(ch.RemoteTS, ","), ch.StartAction))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", c.Name, c.Local, c.Remote, c.LocalID, c.RemoteID,
					strings.Join(children, " "), c.SAs)
			}
			return tw.Flush()
		},
	}
	f.add(cmd, true)
	return cmd
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newDownCmd) }

func newDownCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "down NAME",
		Short: "Delete a connection's IKE SAs (the peer is told with an INFORMATIONAL delete)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := f.context(cmd)
			defer cancel()
			res, err := f.client().Down(ctx, args[0])
			if err != nil {
				return fmt.Errorf("down %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: deleted %d IKE SA(s)\n", res.Conn, res.Deleted)
			return nil
		},
	}
	f.add(cmd, false)
	return cmd
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newDownCmd) }

func newDownCmd() *cobra.Command {
	var f clientFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "down NAME",
		Short: "Delete a connection's IKE SAs (the peer is told with an INFORMATIONAL delete)",
		Long: `Delete a connection's IKE SAs and their Child SAs. The peer is told with an
INFORMATIONAL Delete, and down waits for its answer (retransmitting, as
RFC 7296 §2.1 asks) up to --timeout. With --force the Delete is sent once
and the SAs are removed at once, for a peer that no longer answers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := f.context(cmd)
			defer cancel()
			down := f.client().Down
			if force {
				down = f.client().DownNow
			}
			res, err := down(ctx, args[0])
			if err != nil {
				return fmt.Errorf("down %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: deleted %d IKE SA(s)\n", res.Conn, res.Deleted)
			return nil
		},
	}
	f.add(cmd, false)
	cmd.Flags().BoolVar(&force, "force", false, "send the Delete once and remove the SAs without waiting for the peer")
	return cmd
}

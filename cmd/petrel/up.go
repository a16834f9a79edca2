package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newUpCmd) }

func newUpCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "up NAME",
		Short: "Initiate a connection and wait until its Child SA is up",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := f.context(cmd)
			defer cancel()
			res, err := f.client().Up(ctx, args[0])
			if err != nil {
				return fmt.Errorf("up %s: %w", args[0], err)
			}
			e := res.Event
			fmt.Fprintf(cmd.OutOrStdout(), "%s: established: IKE SA %s/%s, Child SA %s (SPIs in %s, out %s)\n",
				res.Conn, e.SPIi, e.SPIr, e.Child, e.InSPI, e.OutSPI)
			return nil
		},
	}
	f.add(cmd, false)
	return cmd
}

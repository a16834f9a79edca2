package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newReloadCmd) }

func newReloadCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon re-read its configuration (as SIGHUP does)",
		Long: `reload asks the daemon to load its configuration file again and apply it:
added connections are started if their start_action is start, removed ones
deleted, changed ones deleted and re-established, and untouched SAs keep
running. A configuration with errors is refused and nothing changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			res, err := f.client().Reload(ctx)
			if err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reloaded: %s\n", res)
			return nil
		},
	}
	f.add(cmd, true)
	return cmd
}

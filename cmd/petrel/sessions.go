package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newSessionsCmd) }

func newSessionsCmd() *cobra.Command {
	var f clientFlags
	var detail bool
	cmd := &cobra.Command{
		Use:   "sessions [--detail] [-o json]",
		Short: "List IKE SAs with their Child SAs and counters",
		Long: `sessions prints one line per IKE SA. --detail prints what Cisco's
"show vpn-sessiondb detail l2l" shows (connection, index, peer, protocol,
encryption, hashing, bytes, login time, duration, IKEv2 and IPsec tunnels) plus
PRF, DH group, identities, auth methods, NAT-T, time to rekey, Child SA SPIs,
traffic selectors, packets and drops. -o json prints everything as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			sessions, err := f.client().Sessions(ctx)
			if err != nil {
				return fmt.Errorf("sessions: %w", err)
			}
			switch {
			case asJSON:
				return writeJSON(cmd.OutOrStdout(), sessions)
			case detail:
				return writeSessionDetail(cmd.OutOrStdout(), sessions)
			}
			return writeSessionTable(cmd.OutOrStdout(), sessions)
		},
	}
	cmd.Flags().BoolVarP(&detail, "detail", "d", false, "show every field of every session")
	f.add(cmd, true)
	return cmd
}

package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/petrel-vpn/petrel/node"
)

func init() { subcommands = append(subcommands, newEventsCmd) }

func newEventsCmd() *cobra.Command {
	var f clientFlags
	var count int
	cmd := &cobra.Command{
		Use:   "events [-o json] [-n COUNT]",
		Short: "Follow up/down/rekey events of IKE and Child SAs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if f.timeout > 0 && cmd.Flags().Changed("timeout") {
				var cancel func()
				ctx, cancel = f.context(cmd)
				defer cancel()
			}
			w := cmd.OutOrStdout()
			seen := 0
			err = f.client().Events(ctx, func(e node.Event) bool {
				if asJSON {
					b, _ := json.Marshal(e)
					fmt.Fprintf(w, "%s\n", b)
				} else {
					writeEvent(w, e)
				}
				seen++
				return count <= 0 || seen < count
			})
			if err == io.EOF {
				return fmt.Errorf("events: the daemon closed the stream")
			}
			if err != nil {
				return fmt.Errorf("events: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&count, "count", "n", 0, "exit after this many events (0 = follow until interrupted)")
	f.add(cmd, true)
	cmd.Flags().Lookup("timeout").DefValue = "0s"
	f.timeout = 0
	return cmd
}

func writeEvent(w io.Writer, e node.Event) {
	line := fmt.Sprintf("%s %-12s %s", e.Time.UTC().Format("15:04:05.000"), e.Kind, e.Conn)
	if e.Child != "" {
		line += "/" + e.Child
	}
	if e.SPIi != "" {
		line += fmt.Sprintf(" ike %s/%s", e.SPIi, e.SPIr)
	}
	if e.InSPI != "" {
		line += fmt.Sprintf(" esp in %s out %s", e.InSPI, e.OutSPI)
	}
	if e.Remote != "" {
		line += " peer " + e.Remote
	}
	if e.LocalAuth != "" {
		line += " auth " + e.LocalAuth + "/" + e.RemoteAuth
	}
	if e.RemoteCertSubject != "" {
		line += fmt.Sprintf(" cert %q issuer %q", e.RemoteCertSubject, e.RemoteCertIssuer)
	}
	if e.Reason != "" {
		line += " reason " + e.Reason
	}
	fmt.Fprintln(w, line)
}

package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-vpn/petrel/config"
	"github.com/petrel-vpn/petrel/wire"
)

func init() { subcommands = append(subcommands, newConfigCmd) }

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with petrel's YAML configuration",
	}
	var verbose bool
	check := &cobra.Command{
		Use:   "check [-v] FILE",
		Short: "Validate a configuration file and its includes without starting anything",
		Long: `check loads FILE and the files its include: entries name, validates every
setting, reads the secrets (inline, files, environment variables) and converts
the connections to the protocol core's form. It prints "FILE: ok, N
connections (names)", or the first error as FILE:LINE: FIELD: problem; expected
... and exits non-zero. With -v it also prints what each connection resolved
to; secret values are never printed, only where they came from.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigCheck(cmd.OutOrStdout(), args[0], verbose)
		},
	}
	check.Flags().BoolVarP(&verbose, "verbose", "v", false, "print each connection as resolved")
	cmd.AddCommand(check)
	return cmd
}

func runConfigCheck(w io.Writer, path string, verbose bool) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if _, err := cfg.IKEConnections(); err != nil {
		return err
	}
	names := make([]string, len(cfg.Connections))
	for i, c := range cfg.Connections {
		names[i] = c.Name
	}
	noun := "connections"
	if len(names) == 1 {
		noun = "connection"
	}
	list := ""
	if len(names) > 0 {
		list = " (" + strings.Join(names, ", ") + ")"
	}
	if _, err := fmt.Fprintf(w, "%s: ok, %d %s%s\n", path, len(names), noun, list); err != nil {
		return err
	}
	if verbose {
		for _, c := range cfg.Connections {
			describeConnection(w, c)
		}
	}
	return nil
}

func describeConnection(w io.Writer, c *config.Connection) {
	fmt.Fprintf(w, "  %s: %s:%d -> %s:%d\n", c.Name, addrOrAny(c.LocalAddr), c.LocalPort, addrOrAny(c.RemoteAddr), c.RemotePort)
	fmt.Fprintf(w, "    local %s %s, remote %s %s\n", c.Local.Method, c.Local.ID, c.Remote.Method, c.Remote.ID)
	if c.PSK != nil {
		fmt.Fprintf(w, "    psk: secret %q from %s\n", c.PSK.Name, c.PSK.Source)
	}
	fmt.Fprintf(w, "    ike: %s\n", proposals(c.Proposals))
	for _, ch := range c.Children {
		mode := "tunnel"
		if ch.Transport {
			mode = "transport"
		}
		fmt.Fprintf(w, "    child %s: %s === %s, %s, start %s, esp: %s\n", ch.Name, selectors(ch.LocalTS),
			selectors(ch.RemoteTS), mode, ch.StartAction, proposals(ch.Proposals))
	}
}

func proposals(ps [][]wire.Transform) string {
	if ps == nil {
		return "default"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = config.ProposalString(p)
	}
	return strings.Join(s, ", ")
}

func selectors(ts []config.TrafficSelector) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

func addrOrAny(a netip.Addr) string {
	if !a.IsValid() {
		return "%any"
	}
	return a.String()
}

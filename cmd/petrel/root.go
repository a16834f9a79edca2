package main

import (
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "petrel",
		Short:         "petrel: an IKEv2/IPsec VPN daemon with a userspace ESP data plane",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	return root
}

// subcommands holds one constructor per subcommand; each command's file
// registers itself in an init function.
var subcommands []func() *cobra.Command

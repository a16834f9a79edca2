package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-vpn/petrel/config"
	"github.com/petrel-vpn/petrel/daemon"
)

// Helpers shared by the commands that talk to the daemon's control API.

// clientFlags are --socket and, for listings, -o.
type clientFlags struct {
	socket  string
	output  string
	timeout time.Duration
}

func (f *clientFlags) add(cmd *cobra.Command, listing bool) {
	def := os.Getenv("PETREL_SOCKET")
	if def == "" {
		def = config.DefaultControlSocket
	}
	cmd.Flags().StringVar(&f.socket, "socket", def, "the daemon's control socket (env PETREL_SOCKET)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 35*time.Second, "give up after this long")
	if listing {
		cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	}
}

func (f *clientFlags) client() *daemon.Client { return daemon.NewClient(f.socket) }

func (f *clientFlags) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, f.timeout)
}

// json reports whether -o json was given, and rejects unknown formats.
func (f *clientFlags) json() (bool, error) {
	switch f.output {
	case "table", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("unknown output format %q; expected table or json", f.output)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

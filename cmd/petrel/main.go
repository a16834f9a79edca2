// Command petrel is the petrel IKEv2 VPN daemon and its tools, one cobra
// subcommand per file.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "petrel:", err)
		os.Exit(1)
	}
}

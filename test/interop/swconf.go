package interop

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// SwanConn describes one swanctl.conf connection with PSK authentication
// and one tunnel-mode Child SA. It covers the scenarios' needs; a scenario
// that needs more writes swanctl.conf text itself.
type SwanConn struct {
	Name         string // connection name; the child is Name+"-child" unless Child is set
	Child        string
	LocalAddrs   string
	RemoteAddrs  string // "%any" on a responder for road warriors
	LocalID      string
	RemoteID     string
	PSK          string // raw secret, stored base64
	Proposals    string // IKE proposals, e.g. "aes256gcm16-prfsha256-x25519"
	ESPProposals string
	LocalTS      string
	RemoteTS     string
	StartAction  string   // none (default), start, trap
	Extra        []string // more lines in the connection section
	ChildExtra   []string // more lines in the child section
}

// ChildName returns the Child SA name used in swanctl.conf.
func (c SwanConn) ChildName() string {
	if c.Child != "" {
		return c.Child
	}
	return c.Name + "-child"
}

// SwanctlConf renders connections and their PSK secrets as swanctl.conf,
// one key per line (strongSwan rejects several keys on one line).
func SwanctlConf(conns ...SwanConn) string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for _, c := range conns {
		start := c.StartAction
		if start == "" {
			start = "none"
		}
		fmt.Fprintf(&b, "\t%s {\n\t\tversion = 2\n\t\tlocal_addrs = %s\n\t\tremote_addrs = %s\n\t\tproposals = %s\n",
			c.Name, c.LocalAddrs, c.RemoteAddrs, c.Proposals)
		for _, l := range c.Extra {
			fmt.Fprintf(&b, "\t\t%s\n", l)
		}
		fmt.Fprintf(&b, "\t\tlocal {\n\t\t\tauth = psk\n\t\t\tid = %s\n\t\t}\n", c.LocalID)
		fmt.Fprintf(&b, "\t\tremote {\n\t\t\tauth = psk\n\t\t\tid = %s\n\t\t}\n", c.RemoteID)
		fmt.Fprintf(&b, "\t\tchildren {\n\t\t\t%s {\n\t\t\t\tmode = tunnel\n\t\t\t\tlocal_ts = %s\n\t\t\t\tremote_ts = %s\n\t\t\t\tesp_proposals = %s\n\t\t\t\tstart_action = %s\n",
			c.ChildName(), c.LocalTS, c.RemoteTS, c.ESPProposals, start)
		for _, l := range c.ChildExtra {
			fmt.Fprintf(&b, "\t\t\t\t%s\n", l)
		}
		b.WriteString("\t\t\t}\n\t\t}\n\t}\n")
	}
	b.WriteString("}\nsecrets {\n")
	for i, c := range conns {
		fmt.Fprintf(&b, "\tike-%d {\n\t\tid-a = %s\n\t\tid-b = %s\n\t\tsecret = 0s%s\n\t}\n",
			i, c.LocalID, c.RemoteID, base64.StdEncoding.EncodeToString([]byte(c.PSK)))
	}
	b.WriteString("}\n")
	return b.String()
}

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/petrel-vpn/petrel/node"
)

// Session tables, shared by `petrel sessions` and `petrel demo`.

// writeSessionTable prints one line per IKE SA.
func writeSessionTable(w io.Writer, sessions []node.Session) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTION\tINDEX\tSTATE\tPEER\tREMOTE ID\tENCRYPTION\tCHILD SAS\tBYTES TX\tBYTES RX\tDURATION")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", dash(s.Conn), s.Index, s.State, s.Remote,
			dash(s.RemoteID), dash(s.Encr), s.IPsecTunnels, s.BytesTx, s.BytesRx, hms(s.Duration))
	}
	return tw.Flush()
}

// writeSessionDetail prints each session the way Cisco's `show
// vpn-sessiondb detail l2l` does, plus PRF, DH group, identities, auth
// methods, NAT-T, time to rekey, Child SA SPIs, selectors, packets and
// drops.
func writeSessionDetail(w io.Writer, sessions []node.Session) error {
	if len(sessions) == 0 {
		_, err := fmt.Fprintln(w, "no sessions")
		return err
	}
	var b strings.Builder
	b.WriteString("Session Type: LAN-to-LAN Detailed\n")
	row := func(k1, v1, k2, v2 string) {
		if k2 == "" {
			fmt.Fprintf(&b, "%-14s: %s\n", k1, v1)
			return
		}
		fmt.Fprintf(&b, "%-14s: %-28s %-14s: %s\n", k1, v1, k2, v2)
	}
	for _, s := range sessions {
		b.WriteString("\n")
		row("Connection", dash(s.Conn), "", "")
		row("Index", fmt.Sprint(s.Index), "IP Addr", s.Remote)
		row("Protocol", s.Protocol, "State", s.State)
		encrs, integs := []string{}, []string{}
		for _, c := range s.Children {
			encrs, integs = append(encrs, c.Encr), append(integs, c.Integ)
		}
		row("Encryption", "IKEv2: "+dash(s.Encr), "IPsec", dash(strings.Join(encrs, ", ")))
		row("Hashing", "IKEv2: "+dash(s.Integ), "IPsec", dash(strings.Join(integs, ", ")))
		row("Bytes Tx", fmt.Sprint(s.BytesTx), "Bytes Rx", fmt.Sprint(s.BytesRx))
		row("Pkts Tx", fmt.Sprint(s.PacketsTx), "Pkts Rx", fmt.Sprint(s.PacketsRx))
		row("Pkts Dropped", fmt.Sprint(s.Drops), "", "")
		login := "-"
		if !s.Login.IsZero() {
			login = s.Login.UTC().Format("15:04:05 UTC Mon Jan 2 2006")
		}
		row("Login Time", login, "", "")
		row("Duration", hms(s.Duration), "", "")
		row("IKEv2 Tunnels", fmt.Sprint(s.IKETunnels), "", "")
		row("IPsec Tunnels", fmt.Sprint(s.IPsecTunnels), "", "")
		b.WriteString("\nIKEv2:\n")
		b.WriteString(indent(func(row func(k1, v1, k2, v2 string)) {
			row("Tunnel ID", fmt.Sprintf("%d.1", s.Index), "Role", s.Role)
			row("SPI (I)", s.SPIi, "SPI (R)", s.SPIr)
			row("Local Addr", s.Local, "Remote Addr", s.Remote)
			row("Local ID", dash(s.LocalID), "Remote ID", dash(s.RemoteID))
			row("Loc Auth Mode", authName(s.LocalAuth), "Rem Auth Mode", authName(s.RemoteAuth))
			if s.LocalCertSubject != "" {
				row("Local Cert", s.LocalCertSubject, "", "")
			}
			if s.RemoteCertSubject != "" {
				row("Remote Cert", s.RemoteCertSubject, "", "")
				row("Remote Issuer", s.RemoteCertIssuer, "", "")
			}
			row("Encryption", dash(s.Encr), "Hashing", dash(s.Integ))
			row("PRF", dash(s.PRF), "D/H Group", dash(s.DHGroup))
			row("NAT-T", yesNo(s.NATT), "Rekey Left(T)", rekey(s.RekeyIn))
		}))
		for i, c := range s.Children {
			b.WriteString("\nIPsec:\n")
			b.WriteString(indent(func(row func(k1, v1, k2, v2 string)) {
				row("Tunnel ID", fmt.Sprintf("%d.%d", s.Index, i+2), "Child", c.Name)
				row("Local Addr", strings.Join(c.LocalTS, ", "), "", "")
				row("Remote Addr", strings.Join(c.RemoteTS, ", "), "", "")
				row("SPI In", c.InSPI, "SPI Out", c.OutSPI)
				row("Encryption", c.Encr, "Hashing", c.Integ)
				encap := "Tunnel"
				if c.Mode == "transport" {
					encap = "Transport"
				}
				if c.UDPEncap {
					encap += ", NAT-T (UDP)"
				}
				row("Encapsulation", encap, "ESN", yesNo(c.ESN))
				row("Rekey Left(T)", rekey(c.RekeyIn), "Installed", installedAt(c))
				row("Bytes Tx", fmt.Sprint(c.BytesTx), "Bytes Rx", fmt.Sprint(c.BytesRx))
				row("Pkts Tx", fmt.Sprint(c.PacketsTx), "Pkts Rx", fmt.Sprint(c.PacketsRx))
				row("Replay Drops", fmt.Sprint(c.ReplayDrops), "ICV Drops", fmt.Sprint(c.AuthDrops))
				row("Invalid Drops", fmt.Sprint(c.InvalidDrops), "Policy Drops", fmt.Sprint(c.PolicyDrops))
			}))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func indent(f func(row func(k1, v1, k2, v2 string))) string {
	var b strings.Builder
	f(func(k1, v1, k2, v2 string) {
		if k2 == "" {
			fmt.Fprintf(&b, "  %-14s: %s\n", k1, v1)
			return
		}
		fmt.Fprintf(&b, "  %-14s: %-26s %-14s: %s\n", k1, v1, k2, v2)
	})
	return b.String()
}

func installedAt(c node.Child) string {
	if c.Installed.IsZero() {
		return "-"
	}
	return c.Installed.UTC().Format("15:04:05 UTC")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func authName(m string) string {
	switch m {
	case "psk":
		return "preSharedKeys"
	case "":
		return "-"
	}
	if d, ok := strings.CutPrefix(m, "pubkey "); ok {
		return "certificate (" + d + ")"
	}
	return m
}

func rekey(s int64) string {
	if s <= 0 {
		return "-"
	}
	return fmt.Sprintf("%d Seconds", s)
}

// hms formats seconds as Cisco does: 0h:01m:05s.
func hms(sec int64) string {
	d := time.Duration(sec) * time.Second
	return fmt.Sprintf("%dh:%02dm:%02ds", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

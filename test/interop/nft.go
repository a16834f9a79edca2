package interop

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// nft loads an nftables ruleset (nft -f -) inside the namespace.
func (n *Netns) nft(ruleset string) error {
	cmd := n.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if _, err := runCmdTimeout(cmd, 10*time.Second); err != nil {
		return fmt.Errorf("nft in %s: %w\nruleset:\n%s", n.Name, err, ruleset)
	}
	return nil
}

// runCmdTimeout starts cmd (built without a context) and kills it after d.
func runCmdTimeout(cmd *exec.Cmd, d time.Duration) (string, error) {
	t := time.AfterFunc(d, func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	})
	defer t.Stop()
	return runCmd(cmd)
}

// Masquerade makes n a NAT router: packets it forwards out of dev get dev's
// address as their source (nftables masquerade), the way a home router
// hides a road warrior.
func (n *Netns) Masquerade(dev string) {
	n.s.t.Helper()
	rules := fmt.Sprintf(`table ip pi_nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname %q masquerade
	}
}
`, dev)
	if err := n.nft(rules); err != nil {
		n.s.Fatalf("%v", err)
	}
}

// SetLoss drops percent % of the packets arriving at each end of the link
// (nftables `numgen random mod 100 < N drop` on the netdev ingress hook of
// both veth ends), so each direction loses about percent %. Zero removes the
// rules. Packet captures on the link still see the dropped packets, since
// taps run before the ingress hook.
func (l *Link) SetLoss(percent int) {
	l.A.s.t.Helper()
	if percent < 0 || percent > 100 {
		l.A.s.Fatalf("loss %d%% out of range", percent)
	}
	for _, e := range []struct {
		ns  *Netns
		dev string
	}{{l.A, l.IfA}, {l.B, l.IfB}} {
		table := "pi_loss_" + strings.ReplaceAll(e.dev, "-", "_")
		rules := fmt.Sprintf("table netdev %s\ndelete table netdev %s\n", table, table)
		if percent > 0 {
			rules += fmt.Sprintf(`table netdev %s {
	chain in {
		type filter hook ingress device %q priority filter; policy accept;
		numgen random mod 100 < %d counter drop
	}
}
`, table, e.dev, percent)
		}
		if err := e.ns.nft(rules); err != nil {
			l.A.s.Fatalf("%v", err)
		}
	}
}

var nftCounter = regexp.MustCompile(`counter packets (\d+)`)

// Dropped returns how many packets the loss rules of the link have dropped
// so far, both ends together.
func (l *Link) Dropped() (int, error) {
	total := 0
	for _, e := range []struct {
		ns  *Netns
		dev string
	}{{l.A, l.IfA}, {l.B, l.IfB}} {
		table := "pi_loss_" + strings.ReplaceAll(e.dev, "-", "_")
		out, err := e.ns.Run(10*time.Second, "nft", "list", "table", "netdev", table)
		if err != nil {
			return 0, err
		}
		m := nftCounter.FindStringSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("interop: no loss counter in %s table %s", e.ns.Name, table)
		}
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total, nil
}

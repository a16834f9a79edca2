package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// WaitEstablished polls n's SA listing until an ESTABLISHED IKE SA named
// ike holds an INSTALLED Child SA named child, for at most timeout, and
// returns that IKE SA.
func (s *Scenario) WaitEstablished(n Node, ike, child string, timeout time.Duration) IKESA {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []IKESA
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last, lastErr = n.ListSAs(ctx)
		cancel()
		for _, sa := range last {
			if sa.Name != ike || sa.State != "ESTABLISHED" {
				continue
			}
			for _, c := range sa.Children {
				if c.Name == child && c.State == "INSTALLED" {
					return sa
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		s.Fatalf("%s: no established %s/%s after %s: %v", n.Name(), ike, child, timeout, lastErr)
	}
	s.Fatalf("%s: no established %s/%s after %s; it lists %s", n.Name(), ike, child, timeout, describeSAs(last))
	return IKESA{}
}

// WaitSameSA polls n until it lists an ESTABLISHED IKE SA with the SPIs
// of sa (as its peer reported them), for at most timeout.
func (s *Scenario) WaitSameSA(n Node, sa IKESA, timeout time.Duration) IKESA {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []IKESA
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last, _ = n.ListSAs(ctx)
		cancel()
		for _, x := range last {
			if x.SPIi == sa.SPIi && x.SPIr == sa.SPIr && x.State == "ESTABLISHED" {
				return x
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Fatalf("%s: IKE SA %s_i %s_r not established after %s; it lists %s", n.Name(), sa.SPIi, sa.SPIr, timeout, describeSAs(last))
	return IKESA{}
}

func describeSAs(sas []IKESA) string {
	if len(sas) == 0 {
		return "no SAs"
	}
	var parts []string
	for _, sa := range sas {
		p := fmt.Sprintf("%s[%s] %s", sa.Name, sa.UniqueID, sa.State)
		for _, c := range sa.Children {
			p += fmt.Sprintf(" %s %s", c.Name, c.State)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// Initiate asks n to bring up child, bounded by timeout.
func (s *Scenario) Initiate(n Node, child string, timeout time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t0 := time.Now()
	if err := n.Initiate(ctx, child); err != nil {
		s.Fatalf("%v", err)
	}
	s.Logf("%s initiated %s in %.0f ms", n.Name(), child, float64(time.Since(t0).Microseconds())/1000)
}

// RequirePing pings dst from src in ns, interval apart and bounded by
// count*interval + 3 s, and fails unless at least min of count replies
// come back.
func (s *Scenario) RequirePing(ns *Netns, src, dst netip.Addr, count, min int, interval time.Duration) PingResult {
	s.t.Helper()
	r, err := ns.Ping(src, dst, count, interval, time.Duration(count)*interval+3*time.Second)
	if err != nil {
		s.Fatalf("%v", err)
	}
	if r.Received < min {
		s.Fatalf("ping %s -> %s through the tunnel: %d of %d replies, want at least %d", src, dst, r.Received, r.Sent, min)
	}
	s.Logf("ping %s -> %s: %d/%d replies", src, dst, r.Received, r.Sent)
	return r
}

// CheckCapture stops c, decodes it with the key logs of nodes, keeps the
// key tables and the decoded summary in the results folder, and fails on
// malformed packets, expert errors, bad ICVs, SK payloads left encrypted,
// or a capture without a decrypted IKE message.
func (s *Scenario) CheckCapture(c *Capture, nodes ...Node) CaptureReport {
	s.t.Helper()
	if err := c.Stop(); err != nil {
		s.Fatalf("capture: %v", err)
	}
	var kl KeyLog
	for _, n := range nodes {
		k, err := n.KeyLog()
		if err != nil {
			s.Fatalf("key log: %v", err)
		}
		if err := kl.Add(k); err != nil {
			s.Fatalf("%v", err)
		}
	}
	if err := WriteKeyTables(s.Path("keys"), kl); err != nil {
		s.Fatalf("%v", err)
	}
	r, err := s.Analyze(c.Path, kl)
	if err != nil {
		s.Fatalf("%v", err)
	}
	_ = os.WriteFile(strings.TrimSuffix(c.Path, ".pcap")+".decoded.txt", []byte(r.Summary()+"\n"+strings.Join(r.Problems, "\n")+"\n"), 0o644)
	s.Logf("capture %s: %s", c.Path[len(s.Dir)+1:], r.Summary()[strings.LastIndexByte(r.Summary(), '\n')+1:])
	if len(r.Problems) > 0 {
		s.Fatalf("capture %s: %d problems, first: %s", c.Path[len(s.Dir)+1:], len(r.Problems), r.Problems[0])
	}
	decrypted := 0
	for _, m := range r.IKE {
		if m.Decrypted {
			decrypted++
		}
	}
	if decrypted == 0 {
		s.Fatalf("capture %s: %d IKE messages, none encrypted and decrypted (%d key table lines)", c.Path[len(s.Dir)+1:], len(r.IKE), len(kl.IKE))
	}
	return r
}

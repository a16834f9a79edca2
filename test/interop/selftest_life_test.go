package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// waitGone polls n until it lists no IKE SA named ike, for at most timeout,
// and returns how long that took.
func waitGone(s *Scenario, n Node, ike string, timeout time.Duration) time.Duration {
	s.t.Helper()
	t0 := time.Now()
	var last []IKESA
	for time.Since(t0) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		sas, err := n.ListSAs(ctx)
		cancel()
		if err == nil && !hasSA(sas, ike) {
			return time.Since(t0)
		}
		last = sas
		time.Sleep(100 * time.Millisecond)
	}
	s.Fatalf("%s still lists %s after %s: %s", n.Name(), ike, timeout, describeSAs(last))
	return 0
}

// TestSelfDeleteByResponder: the responder deletes the IKE SA; the
// initiator must drop it too, and the DELETE must cross the wire encrypted.
func TestSelfDeleteByResponder(t *testing.T) {
	s := Begin(t, "self-delete-by-responder", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	s.StartNode(a)
	s.StartNode(b)
	capture := s.StartCapture(topo.B, "eth0", "link")
	s.Initiate(a, ca.ChildName(), 20*time.Second)
	s.WaitEstablished(b, "s2s", cb.ChildName(), 5*time.Second)
	if err := b.Terminate(s.ctx(15*time.Second), "s2s", false); err != nil {
		s.Fatalf("%v", err)
	}
	took := waitGone(s, a, "s2s", 5*time.Second)
	r := s.CheckCapture(capture, a, b)
	deletes := 0
	for _, m := range r.IKE {
		if m.Exchange == 37 && !m.Response && containsInt(m.Payloads, 42) && m.Src == topo.AddrB.String()+":4500" {
			deletes++
		}
	}
	if deletes != 1 {
		s.Fatalf("capture: %d INFORMATIONAL requests with a Delete payload from gwb, want 1", deletes)
	}
	s.Logf("gwa dropped the SA %.0f ms after gwb's DELETE", float64(took.Milliseconds()))
}

// TestSelfDPDAfterKill: the responder dies by SIGKILL; the initiator's
// dead peer detection (RFC 7296 §2.4, empty INFORMATIONAL) must notice and
// drop the SA.
func TestSelfDPDAfterKill(t *testing.T) {
	s := Begin(t, "self-dpd-after-kill-9", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)
	// Without MOBIKE, whose address update right after setup would be the
	// liveness probe, only DPD talks to the dead peer.
	ca.Extra = []string{"dpd_delay = 1s", "mobike = no"}
	cb.Extra = []string{"mobike = no"}
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	a.Charon = "retransmit_timeout = 0.5\nretransmit_base = 1.4\nretransmit_tries = 2"
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	s.StartNode(a)
	s.StartNode(b)
	capture := s.StartCapture(topo.A, "eth0", "link")
	s.Initiate(a, ca.ChildName(), 20*time.Second)
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 5, 5, 50*time.Millisecond)
	if err := b.Kill(); err != nil {
		s.Fatalf("%v", err)
	}
	took := waitGone(s, a, "s2s", 15*time.Second)
	r := s.CheckCapture(capture, a, b) // gwb's log outlives it
	// DPD is an empty INFORMATIONAL request, retransmitted with one ID.
	probes := map[uint32]int{}
	for _, m := range r.IKE {
		if m.Exchange == 37 && !m.Response && len(m.Payloads) == 1 && m.Payloads[0] == 46 && m.Decrypted &&
			strings.HasPrefix(m.Src, topo.AddrA.String()+":") {
			probes[m.MsgID]++
		}
	}
	best := 0
	for _, n := range probes {
		best = max(best, n)
	}
	if best < 3 {
		s.Fatalf("capture: DPD probes per message ID %v, want one sent 3 times (2 retransmits) before giving up", probes)
	}
	s.Logf("gwa dropped the SA %.1f s after gwb was killed, after %d unanswered DPD probes", took.Seconds(), best)
}

// TestSelfIdentitySelection: one responder with three connections that
// differ only in the peer identity; each initiator identity must land on
// its own connection.
func TestSelfIdentitySelection(t *testing.T) {
	s := Begin(t, "self-identity-selection", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, _ := siteToSiteConns(topo)
	var conns []SwanConn
	for i := 1; i <= 3; i++ {
		_, c := siteToSiteConns(topo)
		c.Name = fmt.Sprintf("peer%d", i)
		c.RemoteAddrs = "%any"
		c.RemoteID = fmt.Sprintf("gwa%d.example", i)
		c.PSK = fmt.Sprintf("%s-%d", selfPSK, i)
		conns = append(conns, c)
	}
	ca.LocalID = "gwa2.example"
	ca.PSK = selfPSK + "-2"
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(conns...))
	s.StartNode(a)
	s.StartNode(b)
	s.Initiate(a, ca.ChildName(), 20*time.Second)
	s.WaitEstablished(b, "peer2", "peer2-child", 5*time.Second)
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 5, 5, 50*time.Millisecond)
}
